"""modelkit's ``modelkit.assets.remote``: :class:`StorageProvider` and the errors it raises
when a provider cannot be built, where modelkit code imports them from."""

from __future__ import annotations

import os

from .errors import DriverNotInstalledError, NoConfiguredProviderError, UnknownDriverError
from .store import StorageProvider

__all__ = [
    "DriverNotInstalledError",
    "NoConfiguredProviderError",
    "StorageProvider",
    "UnknownDriverError",
    "get_size",
]


def get_size(dir_path: str) -> int:
    """Bytes of a file, or of every file under a folder (modelkit's helper)."""
    if os.path.isfile(dir_path):
        return os.stat(dir_path).st_size
    return sum(
        os.stat(os.path.join(folder, name)).st_size
        for folder, _, names in os.walk(dir_path)
        for name in names
    )
