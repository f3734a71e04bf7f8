"""botocore's and s3transfer's exception classes, imported when first asked for.

Importing botocore and s3transfer costs 50-80 ms, a quarter of a small fetch's process when
obstore moves the bytes and no boto3 client is ever built. The driver's ``except`` clauses name
these tuples through functions: Python evaluates an ``except`` expression only when an exception
reaches it, so a fetch that never touches boto3 never imports it.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from botocore.exceptions import ClientError

ExceptionTypes = tuple[type[Exception], ...]


@functools.cache
def client_error() -> type[ClientError]:
    """botocore's ``ClientError`` (an answer of the store that is an error)."""
    from botocore.exceptions import ClientError

    return ClientError


@functools.cache
def sdk_errors() -> ExceptionTypes:
    """Whatever boto3, botocore and s3transfer raise; anything else is a bug."""
    from botocore.exceptions import BotoCoreError, ClientError
    from s3transfer.exceptions import RetriesExceededError

    return (ClientError, BotoCoreError, RetriesExceededError)


@functools.cache
def body_errors() -> ExceptionTypes:
    """A GET whose body broke off or stalled: sent again."""
    from botocore.exceptions import (
        ConnectionClosedError,
        IncompleteReadError,
        ReadTimeoutError,
        ResponseStreamingError,
    )

    return (ConnectionClosedError, IncompleteReadError, ReadTimeoutError, ResponseStreamingError)


@functools.cache
def unreachable_errors() -> ExceptionTypes:
    """The store could not be reached, or stopped answering, after botocore's retries."""
    from botocore import exceptions as boto
    from s3transfer.exceptions import RetriesExceededError

    return (
        boto.IncompleteReadError,  # the body stopped short of its Content-Length
        boto.EndpointConnectionError,
        boto.ConnectionClosedError,
        boto.ConnectTimeoutError,
        boto.ReadTimeoutError,
        boto.ProxyConnectionError,
        boto.HTTPClientError,
        RetriesExceededError,
    )


@functools.cache
def no_credentials_errors() -> ExceptionTypes:
    """No credentials found, or only part of them."""
    from botocore import exceptions as boto

    return (boto.NoCredentialsError, boto.PartialCredentialsError, boto.CredentialRetrievalError)


@functools.cache
def param_validation_error() -> type[Exception]:
    """A request botocore refused to send (an invalid bucket name, a bad argument)."""
    from botocore.exceptions import ParamValidationError

    return ParamValidationError
