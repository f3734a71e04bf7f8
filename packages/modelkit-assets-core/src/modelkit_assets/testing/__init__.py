"""Test helpers shipped with modelkit-assets, for our drivers and third parties' alike."""

from __future__ import annotations

from .conformance import StorageDriverConformance

__all__ = ["StorageDriverConformance"]
