"""Azure Blob Storage driver for modelkit-assets, registered as the ``az`` provider.

Importing this package does not import the Azure SDK: ``AzureStorageDriver`` loads on first
access, so discovering plugins stays cheap.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .driver import AzureStorageDriver
    from .settings import AzureStorageDriverSettings

__all__ = ["AzureStorageDriver", "AzureStorageDriverSettings"]


def __getattr__(name: str) -> Any:
    if name == "AzureStorageDriver":
        from .driver import AzureStorageDriver

        return AzureStorageDriver
    if name == "AzureStorageDriverSettings":
        from .settings import AzureStorageDriverSettings

        return AzureStorageDriverSettings
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
