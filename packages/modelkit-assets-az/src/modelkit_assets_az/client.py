"""Building the ``BlobServiceClient``: the retry policy, timeouts and the connection pool.

Transient faults are retried by the SDK's own :class:`ExponentialRetry`, stopped early when the
driver's time budget (``MODELKIT_STORAGE_TIMEOUT_S``) is spent; connect and read timeouts are
bounded by the same budget, so no call hangs longer than it allows. This module imports the
SDK: the driver loads it only when it builds a client.
"""

from __future__ import annotations

import random
import time
from typing import Any, Final

import requests
from azure.core.exceptions import AzureError
from azure.core.pipeline import PipelineRequest, PipelineResponse
from azure.storage.blob import BlobServiceClient, ExponentialRetry
from urllib3.util.retry import Retry

from modelkit_assets import errors

from .connection import CONNECTION_STRING_ENV, Secret, account_name, redact
from .tuning import AzureSettings

__all__ = [
    "CONNECTION_STRING_ENV",
    "AzureSettings",
    "DeadlineRetry",
    "Secret",
    "account_name",
    "build_service_client",
    "redact",
]

#: Longest single connect / socket read; the retry budget bounds the whole call.
_MAX_CONNECT_S: Final = 20.0
_MAX_READ_S: Final = 120.0


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
