"""Storage drivers: the interface, and the built-in local driver."""

from __future__ import annotations

from .base import StorageDriver

__all__ = ["StorageDriver"]
