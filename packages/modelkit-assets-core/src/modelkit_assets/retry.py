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
one; the last error is then raised as it is.
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


def retry_transient(call: Callable[[], T], timeout_s: float, what: str) -> T:
    """``call()``, repeated while it raises StorageUnavailableError and time is left."""
    deadline = time.monotonic() + timeout_s
    backoff = FIRST_BACKOFF_S
    while True:
        try:
            return call()
        except errors.StorageUnavailableError as exc:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise
            pause = min(random.uniform(backoff / 2, backoff), remaining)
            logger.info("%s failed (%s); retrying in %.2f s", what, exc, pause)
            time.sleep(pause)
            backoff = min(backoff * 2, MAX_BACKOFF_S)
