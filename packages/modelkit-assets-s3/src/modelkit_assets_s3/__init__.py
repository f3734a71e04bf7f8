"""The ``s3`` storage provider of modelkit-assets: AWS S3 and S3-compatible stores, via boto3.

Importing this package stays cheap: boto3 is imported when the driver is first used.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .driver import S3StorageDriver
    from .settings import S3StorageDriverSettings

__all__ = ["S3StorageDriver", "S3StorageDriverSettings"]


def __getattr__(name: str) -> object:
    if name == "S3StorageDriver":
        from .driver import S3StorageDriver

        return S3StorageDriver
    if name == "S3StorageDriverSettings":
        from .settings import S3StorageDriverSettings

        return S3StorageDriverSettings
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
