"""Retrying storage calls that failed on a transient fault, within the storage time budget.

Drivers retry their own requests with their SDK's policy, but some faults outlive it, or are
not the SDK's to retry: a connection reset in the middle of a download the SDK does not resume,
a throttled burst that lasts longer than its backoff, a third-party driver with no retries at
all. The core therefore retries, on :class:`~modelkit_assets.errors.StorageUnavailableError`
only, the calls that are safe to repeat:

- reads and downloads, which change nothing;
- the conditional writes of a push: a create-only write or a compare-and-swap that did succeed
  before its answer was lost fails when repeated (the object is there, the token has changed),
  and the push protocol in :mod:`.store` recognises its own earlier write by its content.

Attempts stop once ``timeout_s`` (``MODELKIT_STORAGE_TIMEOUT_S``) has passed since the first
one; the last error is then raised as it is. A refused connection (nothing listens at the
endpoint: ``StorageUnavailableError.refused``) stops sooner when ``refused_timeout_s`` is set:
the CLI sets a few seconds, as a person is waiting and a dead endpoint is more often a wrong
setting than an outage. The first failure is logged at WARNING at once, with how long the
retries will go on, so that a dead store is never a silent wait.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from typing import Final, TypeVar

from . import errors

logger = logging.getLogger(__name__)

T = TypeVar("T")

#: Backoff before the second attempt, doubled after each failure up to the maximum.
FIRST_BACKOFF_S: Final = 0.1
MAX_BACKOFF_S: Final = 5.0


def retry_transient(
    call: Callable[[], T], timeout_s: float, what: str, refused_timeout_s: float | None = None
) -> T:
    """``call()``, repeated while it raises StorageUnavailableError and time is left (no more
    than ``refused_timeout_s`` for a refused connection, when set)."""
    started = time.monotonic()
    backoff = FIRST_BACKOFF_S
    warned = False
    while True:
        try:
            return call()
        except errors.StorageUnavailableError as exc:
            budget = _budget(exc, timeout_s, refused_timeout_s)
            remaining = started + budget - time.monotonic()
            if remaining <= 0:
                raise
            pause = min(random.uniform(backoff / 2, backoff), remaining)
            if warned:
                logger.info("%s failed (%s); retrying in %.2f s", what, exc, pause)
            else:
                logger.warning(
                    "%s failed (%s); retrying in %.2f s, for up to %s",
                    what,
                    exc,
                    pause,
                    _how_long(exc, budget, refused_timeout_s),
                )
                warned = True
            time.sleep(pause)
            backoff = min(backoff * 2, MAX_BACKOFF_S)


def _budget(
    exc: errors.StorageUnavailableError, timeout_s: float, refused_timeout_s: float | None
) -> float:
    if getattr(exc, "refused", False) and refused_timeout_s is not None:
        return min(timeout_s, refused_timeout_s)
    return timeout_s


def _how_long(
    exc: errors.StorageUnavailableError, budget: float, refused_timeout_s: float | None
) -> str:
    """How long the retries go on, and which setting says so."""
    if getattr(exc, "refused", False) and refused_timeout_s is not None:
        return f"{budget:g} s, as nothing answers there (MODELKIT_STORAGE_TIMEOUT_S waits longer)"
    return f"{budget:g} s (MODELKIT_STORAGE_TIMEOUT_S)"
