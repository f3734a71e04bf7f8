"""The engine of the ``az`` driver: an obstore ``AzureStore`` on the driver's connection string.

The connection string is read as the SDK reads it: ``AccountName`` with ``AccountKey`` (Shared
Key) or ``SharedAccessSignature``, at ``BlobEndpoint`` (Azurite's is
``http://host:port/account``), else at ``{DefaultEndpointsProtocol}://{account}.blob.
{EndpointSuffix}``. Anything else (``UseDevelopmentStorage``, a string without a key or a SAS,
a malformed one, one obstore refuses) is left to the SDK, which says what is wrong with it,
in the words users know; so is a ready
``client=`` and a subclass's own ``build_client``.

The engine reads, and writes what fits in one request: small files, ``.meta`` and
``.versions`` (create-only is ``If-None-Match: *``, answered 409; compare-and-swap is
``If-Match``, answered 412). Large uploads (blocks that a killed push resumes from) and copies
stay on the SDK. Timeouts and retries are those of :mod:`.transport`.
"""

from __future__ import annotations

import urllib.parse
from typing import Any

from obstore.store import AzureStore

from . import transport
from .engine import ObstoreEngine
from .keeps import users_own_client

_DEFAULT_SUFFIX = "core.windows.net"


def azure_engine(driver: Any) -> ObstoreEngine | None:
    """The engine of an ``AzureStorageDriver``, or None if the SDK keeps everything."""
    from modelkit_assets_az.connection import fields
    from modelkit_assets_az.driver import AzureStorageDriver

    if users_own_client(
        driver, AzureStorageDriver, client_given=getattr(driver, "client_given", True)
    ):
        return None

    config = _config(fields(driver._connection_string.reveal()))
    if config is None:
        return None
    timeout = float(driver.timeout_s)
    try:
        store = AzureStore(
            driver.bucket,
            config=config,  # type: ignore[arg-type]  # keys checked by AzureStore itself
            client_options=transport.client_options(
                timeout, allow_http=config["endpoint"].startswith("http:")
            ),  # type: ignore[arg-type]
            retry_config=transport.retry_config(timeout, driver.settings.retry_total + 1),
        )
    except Exception:  # a key that is not base64, an invalid endpoint URL...
        return None  # the SDK reports it as it always has (an invalid key: access denied)
    return ObstoreEngine(store, "az", driver.bucket)


def _config(found: dict[str, str]) -> dict[str, str] | None:
    """obstore's configuration for a connection string's fields, or None (the SDK's case)."""
    endpoint = found.get("blobendpoint", "").rstrip("/")
    account = found.get("accountname") or _account_of(endpoint)
    if not account or found.get("usedevelopmentstorage"):
        return None
    config = {"account_name": account}
    if found.get("accountkey"):
        config["account_key"] = found["accountkey"]
    elif found.get("sharedaccesssignature"):
        config["sas_key"] = found["sharedaccesssignature"].lstrip("?")
    else:
        return None
    if not endpoint:
        protocol = found.get("defaultendpointsprotocol") or "https"
        suffix = found.get("endpointsuffix") or _DEFAULT_SUFFIX
        endpoint = f"{protocol}://{account}.blob.{suffix}"
    config["endpoint"] = endpoint
    return config


def _account_of(endpoint: str) -> str | None:
    """The account a ``BlobEndpoint`` names (a SAS connection string may name no
    ``AccountName``): ``{account}.blob.…``, else the first path segment (an emulator's
    ``http://host:port/{account}``)."""
    url = urllib.parse.urlsplit(endpoint)
    host = url.hostname or ""
    if ".blob." in host:
        return host.split(".", 1)[0]
    return url.path.strip("/").split("/", 1)[0] or None
