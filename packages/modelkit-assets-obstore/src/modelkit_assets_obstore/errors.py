"""obstore's exceptions turned into modelkit-assets errors, one line each, no secrets.

===============================================  =========================================
obstore                                          modelkit-assets
===============================================  =========================================
FileNotFoundError (a 404)                        ObjectDoesNotExistError, or
                                                 BucketDoesNotExistError (the engine asks)
AlreadyExistsError, PreconditionError            per call: ObjectAlreadyExistsError for
                                                 create-only writes, PreconditionFailedError
PermissionDeniedError, UnauthenticatedError,     StorageAccessDeniedError
a 401 or 403 answer
a 4xx answer other than 408 and 429              StorageDriverError
connection failures, timeouts, 5xx, 408, 429     StorageUnavailableError (obstore retried
(anything else)                                  them first, within the driver's timeout)
===============================================  =========================================
"""

from __future__ import annotations

import re
from typing import Final

from obstore import exceptions as obe

from modelkit_assets import errors

_STATUS: Final = re.compile(r"\b(?:status(?: code)?:?|with status)\s*(\d{3})\b", re.IGNORECASE)
_DENIED_STATUS: Final = frozenset({401, 403})
_TRANSIENT_4XX: Final = frozenset({408, 429})
#: Messages are cut to this many characters (server bodies can be long).
_MAX_DETAIL: Final = 200
_CONFLICTS: Final = (obe.AlreadyExistsError, obe.PreconditionError)
_CODE: Final = re.compile(r"<Code>(\w+)</Code>")
_NO_BUCKET: Final = frozenset({"NoSuchBucket", "ContainerNotFound"})
#: scheme://host:port of the request, never a path or a query (no signature shown).
_URL: Final = re.compile(r"\b(https?://[^/\s]+)")


def status_of(exc: BaseException) -> int | None:
    """The HTTP status an obstore error names, if any."""
    match = _STATUS.search(str(exc))
    return int(match.group(1)) if match else None


def is_missing(exc: BaseException) -> bool:
    return isinstance(exc, FileNotFoundError)


def is_conflict(exc: BaseException) -> bool:
    """A conditional write lost: the object exists (create-only) or changed (compare-and-swap)."""
    return isinstance(exc, _CONFLICTS) or status_of(exc) == 412


def detail(exc: BaseException) -> str:
    """The first line of the message, short."""
    text = " ".join(str(exc).split())
    return text if len(text) <= _MAX_DETAIL else text[: _MAX_DETAIL - 3] + "..."


def code_of(exc: BaseException) -> str:
    """The store's error code (S3's ``<Code>``), or ''."""
    match = _CODE.search(str(exc))
    return match.group(1) if match else ""


def bucket_is_missing(exc: BaseException) -> bool:
    return code_of(exc) in _NO_BUCKET


def translate(
    exc: BaseException, provider: str, bucket: str, object_name: str | None, action: str
) -> errors.ModelkitAssetsError:
    """The modelkit-assets error for an obstore failure other than a missing object or a lost
    conditional write (the engine tells those apart itself), worded as the SDK drivers word
    theirs."""
    what = f" of {object_name!r}" if object_name else ""
    status, code = status_of(exc), code_of(exc)
    if code in _NO_BUCKET:
        return errors.BucketDoesNotExistError(provider, bucket)
    if isinstance(exc, obe.PermissionDeniedError | obe.UnauthenticatedError) or (
        status in _DENIED_STATUS
    ):
        return errors.StorageAccessDeniedError(provider, bucket, code or str(status or ""))
    if status is not None and (status >= 500 or status in _TRANSIENT_4XX):
        return errors.StorageUnavailableError(
            provider, f"{action} failed with {code or status} after retries"
        )
    if status is not None and 400 <= status < 500:
        return errors.StorageDriverError(
            f"{provider} {action}{what} in bucket {bucket!r} failed: {code or status}"
        )
    endpoint = _URL.search(str(exc))
    where = f" {endpoint.group(1)}" if endpoint else ""
    return errors.StorageUnavailableError(
        provider,
        f"{action} could not reach the endpoint{where} ({_cause(exc)}), even after retries",
    )


def _cause(exc: BaseException) -> str:
    """The last part of obstore's message ("error sending request"...), short."""
    text = " ".join(str(exc).split("Debug source:")[0].split())
    tail = text.rsplit(" - ", 1)[-1]
    return tail if len(tail) <= 80 else tail[:77] + "..."
