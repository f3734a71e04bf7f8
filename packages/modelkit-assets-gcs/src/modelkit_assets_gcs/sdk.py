"""google-cloud-storage's exception classes and retry policies, imported when first asked for.

Importing google.cloud.storage costs about 0.2 s (google.api_core alone 0.1 s), most of a small
fetch's process when obstore reads the objects and no SDK client is ever built. The driver's
``except`` clauses name these classes through functions: Python evaluates an ``except``
expression only when an exception reaches it, so a fetch that never touches the SDK never
imports it.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Final

from modelkit_assets import errors
from modelkit_assets.retry import FIRST_BACKOFF_S, MAX_BACKOFF_S

if TYPE_CHECKING:
    from google.api_core.retry import Retry
    from google.cloud.storage.retry import ConditionalRetryPolicy

#: The SDK's own timeout of a request (``google.cloud.storage.constants._DEFAULT_TIMEOUT``),
#: kept here so that the driver's constructor imports nothing of the SDK.
SDK_TIMEOUT_S: Final = 60.0


@functools.cache
def not_found() -> type[Exception]:
    """``google.api_core.exceptions.NotFound`` (a 404)."""
    from google.api_core import exceptions as api

    return api.NotFound


@functools.cache
def precondition_failed() -> type[Exception]:
    """``google.api_core.exceptions.PreconditionFailed`` (a 412)."""
    from google.api_core import exceptions as api

    return api.PreconditionFailed


@functools.cache
def forbidden() -> type[Exception]:
    """``google.api_core.exceptions.Forbidden`` (a 403)."""
    from google.api_core import exceptions as api

    return api.Forbidden


def retry_policy(timeout_s: float) -> Retry:
    """The SDK's retry policy within ``timeout_s``, with the core's delays, leaving refused
    connections to the core.

    The SDK's delays (1 s, doubled up to 60 s) would spend the whole budget on a few broken
    bodies, leaving the core no time for its own retries: the core's are used. A refused
    connection is not the SDK's to retry: the core retries it, for no longer than its
    refused-connection budget (the CLI's few seconds)."""
    from google.cloud.storage.retry import DEFAULT_RETRY

    retry: Retry = (
        DEFAULT_RETRY.with_timeout(max(0.0, timeout_s))
        .with_delay(initial=FIRST_BACKOFF_S, maximum=MAX_BACKOFF_S, multiplier=2.0)
        .with_predicate(_retried_by_the_sdk)
    )
    return retry


def retry_if_generation(retry: Retry) -> ConditionalRetryPolicy:
    """``retry`` for requests with a generation precondition only (writes are retried safely
    only then)."""
    from google.cloud.storage.retry import ConditionalRetryPolicy, is_generation_specified

    return ConditionalRetryPolicy(retry, is_generation_specified, ["query_params"])


def _retried_by_the_sdk(exc: Exception) -> bool:
    """The SDK's own predicate, but for refused connections (see :func:`retry_policy`)."""
    from google.cloud.storage.retry import _should_retry

    return bool(_should_retry(exc)) and not errors.is_connection_refused(exc)
