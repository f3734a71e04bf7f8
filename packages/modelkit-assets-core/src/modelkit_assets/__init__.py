"""modelkit-assets: versioned, immutable ML assets in object storage, cached where used."""

from __future__ import annotations

from . import errors
from .drivers.base import StorageDriver
from .hookspecs import hookimpl
from .manager import AssetsManager
from .records import StorageDriverPlugin, VersioningSystemPlugin
from .spec import AssetSpec
from .store import StorageProvider
from .versioning.base import AssetsVersioningSystem

__all__ = [
    "AssetSpec",
    "AssetsManager",
    "AssetsVersioningSystem",
    "StorageDriver",
    "StorageDriverPlugin",
    "StorageProvider",
    "VersioningSystemPlugin",
    "errors",
    "hookimpl",
]
