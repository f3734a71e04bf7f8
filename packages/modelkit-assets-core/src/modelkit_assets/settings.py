"""modelkit's ``modelkit.assets.settings``: where modelkit code imports :class:`AssetSpec` from.

A thin alias of :mod:`modelkit_assets.spec`; this project's environment settings live in
:mod:`modelkit_assets.environment`.
"""

from __future__ import annotations

from .spec import AssetSpec

__all__ = ["AssetSpec"]
