"""Building the ``BlobServiceClient``: settings, the retry policy, and keeping the key secret.

Transient faults are retried by the SDK's own :class:`ExponentialRetry`, stopped early when the
driver's time budget (``MODELKIT_STORAGE_TIMEOUT_S``) is spent; connect and read timeouts are
bounded by the same budget, so no call hangs longer than it allows.
"""

from __future__ import annotations

import random
import re
import time
from typing import Any, Final

import attrs
import requests
from azure.core.exceptions import AzureError
from azure.core.pipeline import PipelineRequest, PipelineResponse
from azure.storage.blob import BlobServiceClient, ExponentialRetry
from urllib3.util.retry import Retry

from modelkit_assets import errors

CONNECTION_STRING_ENV: Final = "AZURE_STORAGE_CONNECTION_STRING"

_MiB: Final = 1024 * 1024
#: Longest single connect / socket read; the retry budget bounds the whole call.
_MAX_CONNECT_S: Final = 20.0
_MAX_READ_S: Final = 120.0
_SECRET_RE: Final = re.compile(r"(AccountKey|SharedAccessSignature|sig)=[^;&\s]+", re.IGNORECASE)


class Secret:
    """A string that never shows in ``repr()``, ``str()`` or tracebacks' locals."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('***')"

    __str__ = __repr__


def redact(text: str) -> str:
    """``text`` with account keys and SAS signatures masked."""
    return _SECRET_RE.sub(r"\1=***", text)


def account_name(connection_string: str) -> str | None:
    """The ``AccountName`` of a connection string (not a secret), if it names one."""
    for field in connection_string.split(";"):
        key, _, value = field.partition("=")
        if key.strip().lower() == "accountname":
            return value.strip() or None
    return None


def _positive_int(_: object, attribute: attrs.Attribute[int], value: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise errors.ConfigurationError(
            f"az driver setting {attribute.name} must be a positive integer, not {value!r}"
        )


def _positive_number(_: object, attribute: attrs.Attribute[float], value: float) -> None:
    if not isinstance(value, (int, float)) or isinstance(value, bool) or value <= 0:
        raise errors.ConfigurationError(
            f"az driver setting {attribute.name} must be a positive number, not {value!r}"
        )


@attrs.frozen(kw_only=True)
class AzureSettings:
    """Tuning of transfers and retries; every field is also a keyword of the driver."""

    #: Parallel connections per upload or download (the SDK's ``max_concurrency``).
    max_concurrency: int = attrs.field(default=4, validator=_positive_int)
    #: Files up to this size are sent in one request; larger ones in blocks.
    max_single_put_size: int = attrs.field(default=8 * _MiB, validator=_positive_int)
    max_block_size: int = attrs.field(default=4 * _MiB, validator=_positive_int)
    #: Size of the first ranged GET of a download, then of each further chunk.
    max_single_get_size: int = attrs.field(default=4 * _MiB, validator=_positive_int)
    max_chunk_get_size: int = attrs.field(default=4 * _MiB, validator=_positive_int)
    #: Blobs per listing request (the service's maximum is 5000).
    list_page_size: int = attrs.field(default=5000, validator=_positive_int)
    #: Retries of one request; the time budget may stop them sooner.
    retry_total: int = attrs.field(default=10, validator=_positive_int)
    #: Wait before the first retry, doubled for each next one (with +-25 % jitter).
    retry_backoff_s: float = attrs.field(default=0.5, validator=_positive_number)
    #: HTTP connections kept open to the service (threads of the core times max_concurrency).
    connection_pool_size: int = attrs.field(default=64, validator=_positive_int)

    @classmethod
    def from_kwargs(cls, settings: dict[str, Any]) -> AzureSettings:
        """Settings from the driver's keywords; an unknown keyword is a configuration error."""
        known = {field.name for field in attrs.fields(cls)}
        unknown = sorted(set(settings) - known)
        if unknown:
            raise errors.ConfigurationError(
                f"unknown az driver setting(s) {', '.join(unknown)}; "
                f"known: connection_string, client, {', '.join(sorted(known))}"
            )
        return cls(**settings)


class DeadlineRetry(ExponentialRetry):
    """The SDK's exponential retry, which also gives up once ``budget_s`` has passed.

    The SDK decides what is retried (connection errors, timeouts, 408, 429, 5xx) and rewinds
    upload streams; this class only shortens its waits (``backoff_s``, doubled each time) and
    stops when the budget is spent.
    """

    def __init__(self, budget_s: float, backoff_s: float, **kwargs: Any) -> None:
        self.budget_s = budget_s
        self.backoff_s = backoff_s
        super().__init__(**kwargs)

    def configure_retries(self, request: PipelineRequest[Any]) -> dict[str, Any]:
        settings = super().configure_retries(request)
        settings["deadline"] = time.monotonic() + self.budget_s
        return settings

    def increment(
        self,
        settings: dict[str, Any],
        request: Any,
        response: PipelineResponse[Any, Any] | None = None,
        error: AzureError | None = None,
    ) -> bool:
        retry = super().increment(settings, request, response, error)
        if error is not None and errors.is_connection_refused(error):
            return False  # the core retries it, within its refused-connection budget
        return retry and time.monotonic() < settings["deadline"]

    def get_backoff_time(self, settings: dict[str, Any]) -> float:
        retries: int = settings["count"]  # 1 before the first retry
        backoff = self.backoff_s * 2.0 ** max(retries - 1, 0) * random.uniform(0.75, 1.25)
        remaining: float = settings["deadline"] - time.monotonic()
        return max(0.0, min(backoff, remaining))


def _session(pool_size: int) -> requests.Session:
    """A session whose pool fits our threads (requests keeps only 10 connections by default).

    Retries are the SDK's job, so urllib3's are off, as in the SDK's own transport.
    """
    session = requests.Session()
    adapter = requests.adapters.HTTPAdapter(
        pool_connections=pool_size,
        pool_maxsize=pool_size,
        max_retries=Retry(total=False, redirect=False, raise_on_status=False),
    )
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


def build_service_client(
    connection_string: Secret, timeout_s: float, settings: AzureSettings
) -> BlobServiceClient:
    """A client for the account of ``connection_string``, retrying within ``timeout_s``."""
    retry = DeadlineRetry(timeout_s, settings.retry_backoff_s, retry_total=settings.retry_total)
    try:
        return BlobServiceClient.from_connection_string(
            connection_string.reveal(),
            retry_policy=retry,
            connection_timeout=max(0.1, min(timeout_s, _MAX_CONNECT_S)),
            read_timeout=max(0.1, min(timeout_s, _MAX_READ_S)),
            max_single_put_size=settings.max_single_put_size,
            max_block_size=settings.max_block_size,
            max_single_get_size=settings.max_single_get_size,
            max_chunk_get_size=settings.max_chunk_get_size,
            session=_session(settings.connection_pool_size),
        )
    except ValueError:
        raise errors.ConfigurationError(
            f"the Azure connection string ({CONNECTION_STRING_ENV}) is malformed: expected "
            "AccountName=...;AccountKey=...;BlobEndpoint=... or DefaultEndpointsProtocol=... "
            "(its value is not shown)"
        ) from None
