"""Versioning systems: how versions are written, ordered, resolved and incremented."""

from __future__ import annotations

from .base import AssetsVersioningSystem

__all__ = ["AssetsVersioningSystem"]
