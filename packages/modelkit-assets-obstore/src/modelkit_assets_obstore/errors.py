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

import os
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
#: fake-gcs-server's answer to an XML listing of a missing bucket (a 500, not GCS's 404).
_NO_BUCKET_EMULATED: Final = re.compile(r"<Message>no bucket named ")
#: scheme://host:port of the request, never a path or a query (no signature shown).
_URL: Final = re.compile(r"\b(https?://[^/\s]+)")


def status_of(exc: BaseException) -> int | None:
    """The HTTP status an obstore error names, if any."""
    match = _STATUS.search(str(exc))
    return int(match.group(1)) if match else None


#: An error page in HTML where the store answers XML (``<Error>``): another web server.
_HTML_ANSWER: Final = re.compile(r"non-2xx status code: (\d{3})[^:]*:\s*<(?:!DOCTYPE|html)", re.I)
#: How each provider is named in messages, and the setting that names its endpoint.
_SERVICES: Final = {
    "s3": ("an S3", "S3_ENDPOINT"),
    "az": ("an Azure blob", "the BlobEndpoint of AZURE_STORAGE_CONNECTION_STRING"),
    "gcs": ("a GCS", "HTTPS_PROXY and what lies between you and Google"),
}
#: The setting that names a provider's emulator, which then stands for its endpoint (the SDK
#: drivers' words: "a GCS (emulator)", "check STORAGE_EMULATOR_HOST").
_EMULATORS: Final = {"gcs": "STORAGE_EMULATOR_HOST"}
#: What a refused TCP connection looks like in obstore's (Rust's) error chain.
_REFUSED: Final = re.compile(r"ConnectionRefused|Connection refused|os error 111")


def foreign_answer(exc: BaseException, provider: str) -> errors.NotAStoreEndpointError | None:
    """The error for an answer that came from some other web server at the endpoint (an HTML
    error page, not the store's XML), or None. 5xx pages other than 501 are left alone: a proxy
    in front of the store may be failing for a moment. HEAD answers carry no body to tell."""
    text = str(exc)
    match = _HTML_ANSWER.search(text)
    if match is None or "<Error>" in text:
        return None
    status = int(match.group(1))
    if (status >= 500 and status != 501) or status in _TRANSIENT_4XX:
        return None
    service, setting = _service(provider)
    endpoint = _URL.search(text)
    return errors.NotAStoreEndpointError(
        provider,
        endpoint.group(1) if endpoint else "configured",
        service,
        f"HTTP {status} in text/html",
        setting,
    )


def _service(provider: str) -> tuple[str, str]:
    """How ``provider``'s service is named, and the setting that names its endpoint."""
    emulator = _EMULATORS.get(provider)
    if emulator is not None and os.environ.get(emulator):
        return f"{_SERVICES[provider][0]} (emulator)", emulator
    return _SERVICES.get(provider, (f"a {provider}", "the endpoint setting"))


def is_refused(exc: BaseException) -> bool:
    """Whether the connection was refused (nothing listens at the endpoint)."""
    return bool(_REFUSED.search(str(exc))) or errors.is_connection_refused(exc)


def is_missing(exc: BaseException) -> bool:
    """A 404 from the store itself (not another web server's error page)."""
    return (
        isinstance(exc, FileNotFoundError)
        and not is_local(exc)
        and not _HTML_ANSWER.search(str(exc))
    )


def is_local(exc: BaseException) -> bool:
    """An error of this machine's files (a full disk, a read-only folder), raised while the
    engine writes a download: an ``OSError`` with an ``errno``. obstore's own errors (a 404 is
    a ``FileNotFoundError``) carry none. Such an error is the caller's to report as it is: a
    store that cannot be reached would be retried, for as long as the storage timeout."""
    return isinstance(exc, OSError) and exc.errno is not None


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


#: A delete of Azure's (a batch request) answers a missing container in words, not a code.
_NO_CONTAINER_WORDS: Final = "The specified container does not exist"


def bucket_is_missing(exc: BaseException) -> bool:
    return (
        code_of(exc) in _NO_BUCKET
        or _NO_CONTAINER_WORDS in str(exc)
        or bool(_NO_BUCKET_EMULATED.search(str(exc)))
    )


def translate(
    exc: BaseException, provider: str, bucket: str, object_name: str | None, action: str
) -> errors.ModelkitAssetsError:
    """The modelkit-assets error for an obstore failure other than a missing object or a lost
    conditional write (the engine tells those apart itself), worded as the SDK drivers word
    theirs."""
    what = f" of {object_name!r}" if object_name else ""
    foreign = foreign_answer(exc, provider)
    if foreign is not None:
        return foreign
    status, code = status_of(exc), code_of(exc)
    if bucket_is_missing(exc):
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
    if is_refused(exc):
        _, setting = _service(provider)
        return errors.StorageUnavailableError(
            provider,
            f"{action}: the endpoint{where} refused the connection (check {setting})",
            refused=True,
        )
    return errors.StorageUnavailableError(
        provider,
        f"{action} could not reach the endpoint{where} ({_cause(exc)}), even after retries",
    )


def _cause(exc: BaseException) -> str:
    """The last part of obstore's message ("error sending request"...), short."""
    text = " ".join(str(exc).split("Debug source:")[0].split())
    tail = text.rsplit(" - ", 1)[-1]
    return tail if len(tail) <= 80 else tail[:77] + "..."
