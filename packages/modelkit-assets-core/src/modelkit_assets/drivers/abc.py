"""modelkit's ``modelkit.assets.drivers.abc``: the driver base class and its settings.

A thin alias of :mod:`modelkit_assets.drivers.base` and :mod:`modelkit_assets.drivers.settings`.
"""

from __future__ import annotations

from .base import StorageDriver
from .settings import StorageDriverSettings

__all__ = ["StorageDriver", "StorageDriverSettings"]
