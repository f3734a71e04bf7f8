"""The obstore engine of modelkit-assets' cloud drivers (see :mod:`modelkit_assets.engines`).

:func:`engine_for` is what the core calls: it returns the engine of a driver, or None when the
driver's configuration is one the SDK must keep (a ready ``client=``) or its provider is not
covered.
"""

from __future__ import annotations

from typing import Any

from .engine import ObstoreEngine

__all__ = ["ObstoreEngine", "engine_for"]


def engine_for(driver: Any) -> ObstoreEngine | None:
    """The engine for ``driver`` (an S3 driver today), or None: the SDK does everything."""
    if getattr(driver, "provider_name", None) == "s3":
        from .s3 import s3_engine

        return s3_engine(driver)
    return None
