"""Turning google-cloud-storage and google-auth exceptions into modelkit-assets errors.

============================================  =========================================
SDK exception                                 modelkit-assets error
============================================  =========================================
NotFound on an object                         ObjectDoesNotExistError, or
                                              BucketDoesNotExistError if the bucket is
                                              missing (the driver asks the bucket)
NotFound on the bucket (listing)              BucketDoesNotExistError
PreconditionFailed (412)                      PreconditionFailedError, or
                                              ObjectAlreadyExistsError (in the driver)
Forbidden (403), Unauthorized (401),          StorageAccessDeniedError
a refused credentials refresh, a 401 to an
anonymous client
RetryError, 5xx and 429, connection errors    StorageUnavailableError (the SDK's retry
and timeouts                                  policy gave up within the time budget)
a CRC32C or MD5 mismatch (DataCorruption),    StorageDriverError
anything else from the SDK
============================================  =========================================

Messages are one line: the status and the first line of the server's message, never the request
headers, tokens or key material.
"""

from __future__ import annotations

import http
import json
import re
import urllib.parse
from typing import TYPE_CHECKING, Any, Final

from modelkit_assets import errors

if TYPE_CHECKING:
    import requests

PROVIDER: Final = "gcs"
_MAX_DETAIL: Final = 200
#: The OS's words in urllib3's nested connection errors: ``[Errno 111] Connection refused``.
_ERRNO: Final = re.compile(r"\[Errno -?\d+\] ([^'\")\]]+)")
#: How the SDK starts its messages: ``GET https://...: `` (some with the status first).
_REQUEST_PREFIX: Final = re.compile(r"^(?:\d{3} )?[A-Z]+ \S+: ")


def foreign_answer(exc: BaseException) -> errors.NotAStoreEndpointError | None:
    """The error for an answer from some other web server than GCS (or its emulator): an
    error page in HTML without the ``x-guploader-uploadid`` header Google's servers send (GCS
    answers errors in JSON, or in text with that header; fake-gcs-server in JSON or plain
    text). None for any other exception."""
    response = getattr(exc, "response", None)
    status = getattr(response, "status_code", None)
    if not isinstance(status, int) or status < 400 or (status >= 500 and status != 501):
        return None
    if status in (408, 429):  # throttling, perhaps by a proxy: transient, retried
        return None
    headers = getattr(response, "headers", None) or {}
    kind = str(headers.get("content-type", "")).split(";")[0].strip().lower()
    if "x-guploader-uploadid" in headers or kind != "text/html":
        return None
    url = urllib.parse.urlsplit(str(getattr(response, "url", "") or ""))
    emulator = _emulated()
    return errors.NotAStoreEndpointError(
        PROVIDER,
        f"{url.scheme}://{url.netloc}",
        "a GCS" if not emulator else "a GCS (emulator)",
        f"HTTP {status} in {kind}",
        "STORAGE_EMULATOR_HOST" if emulator else "HTTPS_PROXY and what lies between you and Google",
    )


def translate(exc: BaseException, bucket: str) -> errors.StorageDriverError | None:
    """The modelkit-assets error for ``exc``; None if it is not a storage fault."""
    import requests
    from google.api_core import exceptions as api
    from google.auth import exceptions as auth
    from google.cloud.storage.exceptions import DataCorruption

    if isinstance(exc, api.RetryError):
        cause = exc.cause if exc.cause is not None else exc
        return errors.StorageUnavailableError(
            PROVIDER,
            f"{exc.message.rstrip('.')} while retrying: {detail(cause)}",
            refused=errors.is_connection_refused(cause),
        )
    if isinstance(exc, api.NotFound):
        return errors.BucketDoesNotExistError(PROVIDER, bucket)
    if isinstance(exc, (api.Forbidden, api.Unauthorized)):
        return errors.StorageAccessDeniedError(PROVIDER, bucket, detail(exc))
    if isinstance(exc, auth.RefreshError) and not exc.retryable:
        return errors.StorageAccessDeniedError(
            PROVIDER, bucket, f"the credentials were refused: {detail(exc)}"
        )
    if isinstance(exc, auth.InvalidOperation):  # a 401 to an anonymous client
        return errors.StorageAccessDeniedError(
            PROVIDER, bucket, f"the store wants credentials: {detail(exc)}"
        )
    if is_transient(exc):
        refused = errors.is_connection_refused(exc)
        where = " (check STORAGE_EMULATOR_HOST)" if refused and _emulated() else ""
        return errors.StorageUnavailableError(PROVIDER, detail(exc) + where, refused=refused)
    if isinstance(exc, DataCorruption):
        return errors.StorageDriverError(
            f"{PROVIDER} transfer failed its checksum ({_one_line(str(exc))}); retry it"
        )
    if isinstance(exc, (api.GoogleAPIError, auth.GoogleAuthError, requests.RequestException)):
        return errors.StorageDriverError(f"{PROVIDER} request failed: {detail(exc)}")
    return None


def _emulated() -> bool:
    """Whether the SDK talks to an emulator (``STORAGE_EMULATOR_HOST``), not to Google."""
    import os

    return bool(os.environ.get("STORAGE_EMULATOR_HOST"))


def is_transient(exc: BaseException) -> bool:
    """A fault the SDK's retry policy retries: its own predicate decides, so the two agree."""
    from google.auth import exceptions as auth
    from google.cloud.storage.retry import _should_retry

    if isinstance(exc, auth.RefreshError):
        return bool(exc.retryable)
    return bool(_should_retry(exc))


def detail(exc: BaseException) -> str:
    """A short, single-line description of ``exc``: its status and its first line."""
    import requests
    from google.api_core import exceptions as api

    if isinstance(exc, requests.ConnectionError) and not isinstance(exc, requests.Timeout):
        return _connection_detail(exc)
    if isinstance(exc, api.GoogleAPICallError) and exc.code is not None:
        try:
            reason = http.HTTPStatus(exc.code).phrase
        except ValueError:
            reason = ""
        return f"HTTP {exc.code} {reason}".strip() + _server_message(exc.message)
    return _one_line(f"{type(exc).__name__}: {exc}")


def _connection_detail(exc: requests.ConnectionError) -> str:
    """``cannot connect to http://host:port (Connection refused)`` from urllib3's nesting."""
    url = str(exc.request.url or "") if exc.request is not None else ""
    parts = urllib.parse.urlsplit(url)
    where = f" to {parts.scheme}://{parts.netloc}" if parts.netloc else ""
    reason = exc.args[0] if exc.args else exc
    errno = _ERRNO.search(str(getattr(reason, "reason", reason)))
    return f"cannot connect{where}" + (f" ({errno.group(1).strip()})" if errno else "")


def _server_message(message: str) -> str:
    """The server's own words from ``'METHOD URL: message'`` (JSON or text), unless they add
    nothing to the status."""
    lines = message.strip().splitlines()
    text = _REQUEST_PREFIX.sub("", lines[0] if lines else "", count=1).strip()
    try:  # media errors go on after the JSON body: ``{...}: ('Request failed...')``
        payload: Any = json.JSONDecoder().raw_decode(text)[0]
    except ValueError:
        payload = None
    if isinstance(payload, dict):
        error = payload.get("error")
        text = str(error.get("message", "") if isinstance(error, dict) else error or "")
    words = _one_line(text).strip(" .")
    generic = {"", "not found", "forbidden", "unauthorized", "precondition failed"}
    return "" if words.lower() in generic else f" ({words})"


def _one_line(text: str) -> str:
    line = " ".join(text.split())
    return line if len(line) <= _MAX_DETAIL else line[: _MAX_DETAIL - 3] + "..."
