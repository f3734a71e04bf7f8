"""modelkit's ``modelkit.assets.versioning.versioning``: the base class of versioning systems."""

from __future__ import annotations

from .base import AssetsVersioningSystem

__all__ = ["AssetsVersioningSystem"]
