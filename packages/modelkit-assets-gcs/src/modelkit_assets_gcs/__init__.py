"""Google Cloud Storage for modelkit-assets: provider ``gcs``, URIs ``gs://bucket/key``.

The driver lives in :mod:`modelkit_assets_gcs.driver` and is imported only when a ``gcs`` store
is first used, so discovering this plugin does not import google-cloud-storage.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .driver import GCSStorageDriver
    from .settings import GCSStorageDriverSettings

__all__ = ["GCSStorageDriver", "GCSStorageDriverSettings"]


def __getattr__(name: str) -> object:
    if name == "GCSStorageDriver":
        from .driver import GCSStorageDriver

        return GCSStorageDriver
    if name == "GCSStorageDriverSettings":
        from .settings import GCSStorageDriverSettings

        return GCSStorageDriverSettings
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
