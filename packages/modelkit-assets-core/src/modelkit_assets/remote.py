"""modelkit's ``modelkit.assets.remote``: :class:`StorageProvider`, the errors it raises when a
provider cannot be built, and the driver names modelkit's module imports, where modelkit code
imports them from.

modelkit imports every installed driver here at once (and sets ``has_s3``, ``has_gcs``,
``has_az``); this module resolves those names on first access instead, so that importing it
loads no cloud package and no SDK.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
from typing import Final

from .drivers.abc import StorageDriver
from .drivers.local import LocalStorageDriver
from .drivers.settings import LocalStorageDriverSettings
from .errors import DriverNotInstalledError, NoConfiguredProviderError, UnknownDriverError
from .settings import AssetSpec
from .store import StorageProvider

__all__ = [
    "AssetSpec",
    "DriverNotInstalledError",
    "LocalStorageDriver",
    "LocalStorageDriverSettings",
    "NoConfiguredProviderError",
    "StorageDriver",
    "StorageProvider",
    "UnknownDriverError",
    "get_size",
]

#: modelkit's flags, and the package each stands for.
_FLAGS: Final = {
    "has_s3": "modelkit_assets_s3",
    "has_gcs": "modelkit_assets_gcs",
    "has_az": "modelkit_assets_az",
}
#: modelkit's driver names, and the package each comes from.
_DRIVERS: Final = {
    "S3StorageDriver": "modelkit_assets_s3",
    "S3StorageDriverSettings": "modelkit_assets_s3",
    "GCSStorageDriver": "modelkit_assets_gcs",
    "GCSStorageDriverSettings": "modelkit_assets_gcs",
    "AzureStorageDriver": "modelkit_assets_az",
    "AzureStorageDriverSettings": "modelkit_assets_az",
}


def __getattr__(name: str) -> object:
    if name in _FLAGS:
        return importlib.util.find_spec(_FLAGS[name]) is not None
    if name in _DRIVERS:
        try:
            package = importlib.import_module(_DRIVERS[name])
        except ModuleNotFoundError:
            # modelkit's module lacks the name when the driver is not installed
            raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None
        return getattr(package, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def get_size(dir_path: str) -> int:
    """Bytes of a file, or of every file under a folder (modelkit's helper)."""
    if os.path.isfile(dir_path):
        return os.stat(dir_path).st_size
    return sum(
        os.stat(os.path.join(folder, name)).st_size
        for folder, _, names in os.walk(dir_path)
        for name in names
    )
