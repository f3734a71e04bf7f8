"""The obstore engine of modelkit-assets' cloud drivers (see :mod:`modelkit_assets.engines`).

:func:`engine_for` is what the core calls: it returns the engine of a driver, or None when the
driver's configuration is one the SDK must keep (a ready ``client=``) or its provider is not
covered: ``s3`` (:mod:`.s3`) and ``az`` (:mod:`.azure`): reads and small writes; ``gcs``
(:mod:`.gcs`): reads only.
"""

from __future__ import annotations

import os
from typing import Any

from .engine import ObstoreEngine

__all__ = ["ObstoreEngine", "engine_for"]


#: The process in which obstore was first put to work. obstore's Rust runtime does not survive
#: a fork: in a forked child (a server that fetched its models, then forked its workers) every
#: request would wait forever, so such a child keeps to the SDK.
_STARTED_IN: list[int] = []


def engine_for(driver: Any) -> ObstoreEngine | None:
    """The engine for ``driver`` (an S3 or Azure driver, or a GCS driver's reads), or None:
    the SDK does everything."""
    if _STARTED_IN and _STARTED_IN[0] != os.getpid():
        return None  # a forked child of a process that used obstore
    provider = getattr(driver, "provider_name", None)
    engine: ObstoreEngine | None = None
    if provider == "s3":
        from .s3 import s3_engine

        engine = s3_engine(driver)
    elif provider == "az":
        from .azure import azure_engine

        engine = azure_engine(driver)
    elif provider == "gcs":
        from .gcs import gcs_engine

        engine = gcs_engine(driver)
    if engine is not None and not _STARTED_IN:
        _STARTED_IN.append(os.getpid())
    return engine
