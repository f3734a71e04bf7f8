"""Timeouts and retries of an obstore store, set as the SDK clients of the drivers are.

Requests are retried by obstore (5xx, throttling, broken connections) a few times within 5 s,
then by the core within the driver's ``timeout_s``, as the SDKs' are: obstore cannot be told
to leave a refused connection alone, and retrying one for the whole timeout would hide a dead
endpoint (the first failure is reported, and the CLI gives up on a refused connection, from
the core). A connection takes at most 10 s to open and a read at most 60 s to answer.

A request that keeps moving bytes is not cut short: obstore's own limit on a whole request
(30 s by default, connection to last byte) failed every object and part that a slow link takes
longer than that to send, on every retry, and the core then reported the store out of reach
(a download resumes from the bytes it has, and crept on). It is an hour here, the limit of a
request that hangs without stalling a read.
"""

from __future__ import annotations

import datetime
from typing import Any, Final

_CONNECT_TIMEOUT_S: Final = 10.0
_READ_TIMEOUT_S: Final = 60.0
#: The longest a whole request may take (obstore's default: 30 s).
REQUEST_TIMEOUT_S: Final = 3600.0
#: obstore's own retries of a request, and how long they may take, before the core retries.
_QUICK_RETRIES: Final = 3
_QUICK_RETRY_S: Final = 5.0


def client_options(timeout_s: float, *, allow_http: bool) -> dict[str, Any]:
    """obstore's ``client_options``: timeouts within the driver's time budget."""
    timeout = max(float(timeout_s), 0.1)
    return {
        "allow_http": allow_http,
        "connect_timeout": datetime.timedelta(seconds=min(_CONNECT_TIMEOUT_S, timeout)),
        "read_timeout": datetime.timedelta(seconds=min(_READ_TIMEOUT_S, timeout)),
        "timeout": datetime.timedelta(seconds=REQUEST_TIMEOUT_S),
    }


def retry_config(timeout_s: float, max_attempts: int) -> Any:
    """obstore's ``retry_config``: a few quick tries (at most ``max_attempts`` in all), then
    the core's retries take over."""
    timeout = max(float(timeout_s), 0.1)
    return {
        "max_retries": max(0, min(_QUICK_RETRIES, max_attempts - 1)),
        "retry_timeout": datetime.timedelta(seconds=min(_QUICK_RETRY_S, timeout)),
        "backoff": {
            "init_backoff": datetime.timedelta(milliseconds=100),
            "max_backoff": datetime.timedelta(seconds=min(20.0, timeout)),
            "base": 2,
        },
    }
