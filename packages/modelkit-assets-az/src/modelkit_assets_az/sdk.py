"""The Azure SDK's exception classes and constants, imported when first asked for.

Importing azure-storage-blob costs about 0.2 s, half of a small fetch's process when obstore
moves the bytes and no SDK client is ever built. The driver's ``except`` clauses name these
classes through functions: Python evaluates an ``except`` expression only when an exception
reaches it, so a fetch that never touches the SDK never imports it.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from azure.core.exceptions import AzureError, HttpResponseError


@functools.cache
def http_response_error() -> type[HttpResponseError]:
    """An answer of the service that is an error (it has a status and an error code)."""
    from azure.core.exceptions import HttpResponseError

    return HttpResponseError


@functools.cache
def azure_error() -> type[AzureError]:
    """Whatever the SDK raises, answers and failures to get one alike."""
    from azure.core.exceptions import AzureError

    return AzureError


def is_authentication_error(exc: BaseException) -> bool:
    """Whether the SDK refused to sign or the service refused the signature."""
    from azure.core.exceptions import ClientAuthenticationError

    return isinstance(exc, ClientAuthenticationError)


def if_not_modified() -> Any:
    """``MatchConditions.IfNotModified``: a write that holds only while the ETag matches."""
    from azure.core import MatchConditions

    return MatchConditions.IfNotModified
