"""Building the google-cloud-storage client from the settings, as modelkit documents it.

- ``credentials_path`` (else ``GOOGLE_APPLICATION_CREDENTIALS``) names a service-account JSON:
  the client is ``storage.Client.from_service_account_json(path)``. An ``authorized_user`` JSON
  (``gcloud auth application-default login``) is loaded as such; other kinds named by the
  environment variable (``external_account``, ...) are left to google-auth's default lookup,
  which reads that same file.
- Otherwise ``storage.Client()`` finds the machine's default credentials.
- ``STORAGE_EMULATOR_HOST`` is left to the SDK: it sends every request to the emulator and, when
  no credentials are given, makes the client anonymous; credentials given explicitly (a
  service-account file) are still used, so their tokens are still fetched.
"""

from __future__ import annotations

import json
import os
from typing import TYPE_CHECKING, Any, Final

from modelkit_assets import errors

if TYPE_CHECKING:
    from google.cloud import storage

#: The environment variable modelkit documents for a service-account JSON.
CREDENTIALS_ENV: Final = "GOOGLE_APPLICATION_CREDENTIALS"

#: HTTP connections kept per host: the core transfers with up to 16 threads on one client.
POOL_SIZE: Final = 32

_NO_CREDENTIALS: Final = (
    "no Google Cloud credentials found: set GOOGLE_APPLICATION_CREDENTIALS to a service-account "
    "JSON, or run `gcloud auth application-default login`"
)
_FIX: Final = f"fix {CREDENTIALS_ENV} or the credentials_path setting"


def build_client(
    project: str | None, credentials_path: str | None, env_credentials_path: str | None
) -> storage.Client:
    """A storage client from ``credentials_path`` (a setting), else ``env_credentials_path``
    (from GOOGLE_APPLICATION_CREDENTIALS), else from the machine's default credentials."""
    from google.auth import exceptions as auth_exceptions
    from google.cloud import storage

    kwargs = {"project": project} if project else {}
    try:
        if credentials_path:
            client = _client_from_file(os.path.expanduser(credentials_path), kwargs, False)
        elif env_credentials_path:
            client = _client_from_file(os.path.expanduser(env_credentials_path), kwargs, True)
        else:
            client = storage.Client(**kwargs)
    except auth_exceptions.DefaultCredentialsError:
        raise errors.ConfigurationError(_NO_CREDENTIALS) from None
    _widen_connection_pool(client)
    return client


def _client_from_file(path: str, kwargs: dict[str, str], from_env: bool) -> storage.Client:
    from google.auth import exceptions as auth_exceptions
    from google.cloud import storage
    from google.oauth2 import credentials as user_credentials

    kind = _credentials_type(path)
    try:
        if kind == "service_account":
            return storage.Client.from_service_account_json(path, **kwargs)
        if kind == "authorized_user":
            credentials = user_credentials.Credentials.from_authorized_user_file(path)  # type: ignore[no-untyped-call]
            return storage.Client(credentials=credentials, **kwargs)
        if from_env:
            # Other kinds (external_account, ...): google.auth.default() reads the same file.
            return storage.Client(**kwargs)
    except (ValueError, KeyError, auth_exceptions.DefaultCredentialsError) as exc:
        raise errors.ConfigurationError(
            f"{path!r} is not a usable Google credentials file ({_first_line(exc)}); {_FIX}"
        ) from None
    raise errors.ConfigurationError(
        f"credentials_path {path!r} holds {kind!r} credentials: give a service_account or "
        f"authorized_user JSON, or name the file in {CREDENTIALS_ENV}"
    )


def _credentials_type(path: str) -> str:
    """The ``type`` of a credentials JSON; a file without one is taken as a service account."""
    try:
        with open(path, encoding="utf-8") as f:
            info: Any = json.load(f)
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise errors.ConfigurationError(
            f"cannot read the Google credentials file {path!r} ({reason}); {_FIX}"
        ) from None
    except ValueError:
        raise errors.ConfigurationError(
            f"the Google credentials file {path!r} is not JSON; {_FIX}"
        ) from None
    if not isinstance(info, dict):
        raise errors.ConfigurationError(
            f"the Google credentials file {path!r} is not a JSON object; {_FIX}"
        )
    return str(info.get("type") or "service_account")


def _widen_connection_pool(client: storage.Client) -> None:
    """Keep a connection per worker thread (requests keeps 10 per host, then discards)."""
    import requests.adapters

    session = client._http
    for prefix in ("https://", "http://"):
        # A special adapter (mutual TLS) is left as it is.
        if type(session.get_adapter(prefix)) is requests.adapters.HTTPAdapter:
            session.mount(prefix, requests.adapters.HTTPAdapter(pool_maxsize=POOL_SIZE))


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0][:200] if lines else type(exc).__name__
