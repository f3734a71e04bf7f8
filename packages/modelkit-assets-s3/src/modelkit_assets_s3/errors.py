"""botocore's exceptions, told apart and turned into modelkit-assets errors.

===============================================  =========================================
botocore / S3                                    modelkit-assets
===============================================  =========================================
NoSuchKey, 404 on an object                      ObjectDoesNotExistError
NoSuchBucket (a bare 404 is probed by the driver)  BucketDoesNotExistError
412 PreconditionFailed, 409 ConditionalRequest-  PreconditionFailedError (create-only
Conflict                                         writes: ObjectAlreadyExistsError)
403, AccessDenied, InvalidAccessKeyId,           StorageAccessDeniedError
SignatureDoesNotMatch, expired tokens, no
credentials at all
connection refused/reset, timeouts, 5xx and      StorageUnavailableError (botocore has
throttling that outlived botocore's retries,     already retried them; a refused
a body that broke off (IncompleteReadError)      connection is flagged ``refused``)
invalid parameters (a malformed bucket name)     ConfigurationError
anything else                                    StorageDriverError
===============================================  =========================================

Messages are one line and carry the S3 error code; only errors outside the table add the
server's message (cut to one short line). Nothing from the credentials is ever included.
"""

from __future__ import annotations

import urllib.parse
from typing import Any, Final

from modelkit_assets import errors

from .sdk import (
    client_error,
    no_credentials_errors,
    param_validation_error,
    unreachable_errors,
)

PROVIDER: Final = "s3"

_MISSING_OBJECT: Final = frozenset({"NoSuchKey", "404", "NotFound"})
_PRECONDITION: Final = frozenset({"PreconditionFailed", "412", "ConditionalRequestConflict"})
_DENIED: Final = frozenset(
    {
        "403",
        "AccessDenied",
        "AllAccessDisabled",
        "AccountProblem",
        "ExpiredToken",
        "InvalidAccessKeyId",
        "InvalidToken",
        "SignatureDoesNotMatch",
        "TokenRefreshRequired",
        "InvalidSecurity",
    }
)
_TRANSIENT: Final = frozenset(
    {
        "InternalError",
        "RequestTimeout",
        "RequestTimeTooSkewed",
        "ServiceUnavailable",
        "SlowDown",
        "Throttling",
        "ThrottlingException",
        "RequestLimitExceeded",
        "BandwidthLimitExceeded",
        "TooManyRequestsException",
    }
)


def error_code(exc: BaseException) -> str:
    """The S3 error code of a ClientError (``'NoSuchKey'``, ``'404'``...), else ''."""
    if not isinstance(exc, client_error()):
        return ""
    error = exc.response.get("Error", {})
    return str(error.get("Code") or exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode"))


def http_status(exc: BaseException) -> int:
    if not isinstance(exc, client_error()):
        return 0
    return int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)


def is_missing(exc: BaseException) -> bool:
    """A 404 that does not say the bucket is missing (HEAD answers carry no code at all)."""
    return error_code(exc) in _MISSING_OBJECT or (
        http_status(exc) == 404 and error_code(exc) not in {"NoSuchBucket", "NoSuchUpload"}
    )


def is_precondition_failed(exc: BaseException) -> bool:
    return error_code(exc) in _PRECONDITION or http_status(exc) == 412


def redact_url(url: str) -> str:
    """``url`` without any ``user:password@`` part."""
    parts = urllib.parse.urlsplit(url)
    if parts.username is None and parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urllib.parse.urlunsplit(parts._replace(netloc=netloc))


def translate(
    exc: Exception, bucket: str, object_name: str | None = None, action: str = "request"
) -> errors.ModelkitAssetsError:
    """The modelkit-assets error for a boto3/botocore exception raised by ``action``."""
    if isinstance(exc, errors.ModelkitAssetsError):
        return exc
    code, status = error_code(exc), http_status(exc)
    if code == "NoSuchBucket":
        return errors.BucketDoesNotExistError(PROVIDER, bucket)
    if object_name is not None and is_missing(exc):
        return errors.ObjectDoesNotExistError(PROVIDER, bucket, object_name)
    if object_name is not None and is_precondition_failed(exc):
        return errors.PreconditionFailedError(object_name)
    if code in _DENIED or status == 403:
        return errors.StorageAccessDeniedError(PROVIDER, bucket, code)
    if isinstance(exc, no_credentials_errors()):
        return errors.StorageAccessDeniedError(
            PROVIDER,
            bucket,
            "no AWS credentials found; set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, "
            "or AWS_PROFILE",
        )
    if code in _TRANSIENT or status >= 500 or status == 429:
        return errors.StorageUnavailableError(
            PROVIDER, f"{action} failed with {code} after retries"
        )
    if isinstance(exc, unreachable_errors()):
        refused = errors.is_connection_refused(exc)
        return errors.StorageUnavailableError(
            PROVIDER, _unreachable_detail(exc, action, refused), refused=refused
        )
    if isinstance(exc, param_validation_error()):
        return errors.ConfigurationError(f"invalid s3 {action}: {_one_line(str(exc))}")
    what = f" of {object_name!r}" if object_name else ""
    detail = code or type(exc).__name__
    return errors.StorageDriverError(
        f"s3 {action}{what} in bucket {bucket!r} failed: {detail}"
        + (f" ({_one_line(_message(exc))})" if _message(exc) else "")
    )


def _unreachable_detail(exc: Exception, action: str, refused: bool) -> str:
    endpoint = getattr(exc, "kwargs", {}).get("endpoint_url")
    where = f" {_origin(redact_url(str(endpoint)))}" if endpoint else ""
    if refused:
        return f"{action}: the endpoint{where} refused the connection (check S3_ENDPOINT)"
    return (
        f"{action} could not reach the endpoint{where} ({type(exc).__name__}), even after retries"
    )


def _origin(url: str) -> str:
    """``scheme://host:port`` of a request's URL: the endpoint, without bucket and key."""
    parts = urllib.parse.urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}" if parts.netloc else url


def refuse_foreign_answers(http_response: Any = None, model: Any = None, **_: object) -> None:
    """An ``after-call`` handler: an error page in HTML or plain text, without any of the
    ``x-amz-*`` headers S3 servers send, comes from some other web server at S3_ENDPOINT (S3
    errors are XML ``<Error>`` documents): say so, rather than "no such bucket". Answers to
    HEAD have no body to tell (moto answers them in text/html, without ``x-amz-*``)."""
    if http_response is None or str(getattr(model, "name", "")).startswith("Head"):
        return
    status = int(http_response.status_code)
    if status < 400 or (status >= 500 and status != 501) or status in (408, 429):
        return  # 5xx, throttling: a proxy in front of the store may be failing for a moment
    headers = http_response.headers
    if any(str(key).lower().startswith("x-amz-") for key in headers):
        return
    kind = str(headers.get("content-type", "")).split(";")[0].strip().lower()
    if kind not in ("text/html", "text/plain") or b"<Error" in (http_response.content or b""):
        return
    raise errors.NotAStoreEndpointError(
        PROVIDER,
        _origin(redact_url(str(http_response.url))),
        "an S3",
        f"HTTP {status} in {kind}",
        "S3_ENDPOINT",
    )


def no_retry_when_refused(
    caught_exception: BaseException | None = None, **_: object
) -> bool | None:
    """A ``needs-retry`` handler, called before botocore's own: a refused connection is not
    retried by botocore (False stops it), but raised at once as a refused
    StorageUnavailableError, for the core to retry within its refused-connection budget."""
    if caught_exception is not None and errors.is_connection_refused(caught_exception):
        return False
    return None


def _message(exc: Exception) -> str:
    if isinstance(exc, client_error()):
        return str(exc.response.get("Error", {}).get("Message") or "")
    return ""


def _one_line(text: str, limit: int = 200) -> str:
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 3] + "..."
