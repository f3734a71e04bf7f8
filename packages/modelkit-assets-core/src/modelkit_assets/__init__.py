"""modelkit-assets: versioned, immutable ML assets in object storage, cached where used.

Names are imported on first access (PEP 562), so ``import modelkit_assets`` and
``modelkit assets --help`` stay fast; plugin discovery and drivers load only when used.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from . import errors
    from .drivers.base import StorageDriver
    from .hookspecs import hookimpl
    from .manager import AssetsManager
    from .records import StorageDriverPlugin, VersioningSystemPlugin
    from .spec import AssetSpec
    from .store import StorageProvider
    from .versioning.base import AssetsVersioningSystem

_LAZY = {
    "AssetSpec": ".spec",
    "AssetsManager": ".manager",
    "AssetsVersioningSystem": ".versioning.base",
    "StorageDriver": ".drivers.base",
    "StorageDriverPlugin": ".records",
    "StorageProvider": ".store",
    "VersioningSystemPlugin": ".records",
    "hookimpl": ".hookspecs",
}

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


def __getattr__(name: str) -> Any:
    if name == "errors":
        return importlib.import_module(".errors", __name__)
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name], __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
