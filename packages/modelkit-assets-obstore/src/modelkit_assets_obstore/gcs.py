"""The read engine of the ``gcs`` driver: an obstore ``GCSStore`` (GCS's XML API) on the bucket.

Only reads: downloads, ranged reads, ``.meta`` and ``.versions`` reads, existence checks and
listings (but for a driver given a ``page_size``: obstore lists in the server's pages). Every
write stays on google-cloud-storage (resumable uploads, create-only writes with
``ifGenerationMatch``): fake-gcs-server does not take XML-API uploads, so a write through
obstore could not be tested here. The version token :meth:`read_object` returns is the object's
generation (obstore's ``version``: the ``x-goog-generation`` header), the one the SDK's
compare-and-swap writes take.

Credentials are found as the driver's SDK client finds them (see
:mod:`modelkit_assets_gcs.client`): with ``STORAGE_EMULATOR_HOST`` set, requests go to the
emulator, anonymous unless a credentials file is named; a service-account JSON
(``credentials_path``, else ``GOOGLE_APPLICATION_CREDENTIALS``) is read by obstore, which signs
its own tokens; an ``authorized_user`` JSON, other kinds named by the environment variable and
the machine's default credentials go through google-auth (imported only then), asked again
when the token it gave expires. A file the SDK would refuse, a ready ``client=``, a subclass's
own ``build_client`` and ``API_ENDPOINT_OVERRIDE`` leave everything to the SDK, which reports
or applies them as it always did.

Timeouts and retries are those of :mod:`.transport`, within the driver's ``timeout_s``.
"""

from __future__ import annotations

import datetime
import os
import weakref
from collections.abc import Callable
from typing import Any, ClassVar, Final

from obstore.store import GCSStore

from modelkit_assets.environment import DEFAULT_MAX_WORKERS, env_str

from . import transport
from .engine import DEFAULT_TASKS, ObstoreEngine
from .keeps import users_own_client

_EMULATOR_ENV: Final = "STORAGE_EMULATOR_HOST"
_CREDENTIALS_ENV: Final = "GOOGLE_APPLICATION_CREDENTIALS"
#: The SDK's experimental endpoint override: not followed here.
_ENDPOINT_OVERRIDE_ENV: Final = "API_ENDPOINT_OVERRIDE"
#: Attempts of a request before the core's retries take over (obstore's first and its retries).
_QUICK_ATTEMPTS: Final = 4
#: How long the emulator's anonymous token is taken to be good for (obstore asks again then).
_ANONYMOUS_FOR: Final = datetime.timedelta(hours=12)


def gcs_engine(driver: Any) -> ObstoreEngine | None:
    """The read engine of a ``GCSStorageDriver``, or None if the SDK keeps everything."""
    from modelkit_assets_gcs.driver import GCSStorageDriver

    if users_own_client(
        driver, GCSStorageDriver, client_given=driver.__dict__.get("_client") is not None
    ):
        return None
    emulator = env_str(_EMULATOR_ENV)
    if emulator is None and env_str(_ENDPOINT_OVERRIDE_ENV):
        return None
    config: dict[str, Any] = {}
    if emulator is not None:
        config["base_url"] = emulator.rstrip("/")
    credentials = _credentials(driver, anonymous=emulator is not None)
    if credentials is None:
        return None
    provider = None
    if isinstance(credentials, str):
        config["service_account"] = credentials
    else:
        provider = credentials
    timeout = float(driver.timeout_s)
    client_options = transport.client_options(
        timeout, allow_http=bool(emulator and emulator.startswith("http:"))
    )
    retry_config = transport.retry_config(timeout, _QUICK_ATTEMPTS)
    try:
        store = GCSStore(
            driver.bucket,
            config=config,  # type: ignore[arg-type]  # keys checked by GCSStore itself
            client_options=client_options,  # type: ignore[arg-type]
            retry_config=retry_config,
            credential_provider=provider,  # type: ignore[arg-type]  # a callable, as typed
        )
    except Exception:  # a service-account file obstore cannot use: the SDK says what is wrong
        return None
    engine = _GCSEngine(
        store, "gcs", driver.bucket, uploads=False, missing=_asking(driver), token="version"
    )
    engine.page_size = driver._page_size
    return engine


class _GCSEngine(ObstoreEngine):
    """The engine, but a listing in pages of ``page_size`` (a driver setting) stays on the SDK."""

    #: Uploads in flight: the core's default, as without the engine. Pushes run on the SDK's
    #: threads, and more of them cost (1000 files of 10 KiB to fake-gcs-server on 2 cores:
    #: 2.7 s with 16, 2.9 s with 32, 3.1 s with 64).
    default_max_workers: ClassVar[int] = DEFAULT_MAX_WORKERS
    #: Downloads are tasks of the engine's loop, where more in flight cost little: a CLI fetch
    #: of 1000 x 10 KiB from fake-gcs-server took 0.55 s with 16, 0.51 s with 32, 0.48 s with 64
    #: (7 runs, alternating). A number the user chose holds for both.
    default_max_downloads: ClassVar[int] = DEFAULT_TASKS
    page_size: int | None = None

    def handles(self, method: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> bool:
        if method == "iterate_objects" and self.page_size is not None:
            return False
        return super().handles(method, args, kwargs)


def _asking(driver: Any) -> Callable[[str], Any]:
    """What a 404 on an object means, as the driver finds out (through the SDK's JSON API):
    GCS's XML answers may say (``NoSuchKey``, ``NoSuchBucket``), fake-gcs-server's do not.
    The driver is held weakly: the core keeps each engine for as long as its driver lives."""
    ref = weakref.ref(driver)

    def missing(object_name: str) -> Any:
        owner = ref()
        if owner is None:  # pragma: no cover - the engine outlived its driver
            raise RuntimeError("the gcs driver of this engine is gone")
        return owner._not_found(object_name)

    return missing


def _credentials(driver: Any, *, anonymous: bool) -> str | Callable[[], dict[str, Any]] | None:
    """The path of a service-account JSON (obstore reads it), a credential provider, or None
    (credentials obstore cannot take as google-auth does: the SDK keeps everything)."""
    from modelkit_assets import errors
    from modelkit_assets_gcs.client import _credentials_type

    setting = driver.client_configuration.get("service_account_path")
    path = setting or env_str(_CREDENTIALS_ENV)
    if path is None:
        if anonymous:
            return _anonymous
        return _GoogleAuthCredentials.default()
    path = os.path.expanduser(path)
    try:
        kind = _credentials_type(path)
    except errors.ConfigurationError:
        return None  # unreadable, or not JSON: the SDK reports it
    if kind == "service_account":
        return path
    if kind == "authorized_user":
        return _GoogleAuthCredentials.authorized_user(path)
    if setting:
        return None  # other kinds are refused as a setting (the SDK says so)
    return _GoogleAuthCredentials.default()  # google-auth reads the same file


def _anonymous() -> dict[str, Any]:
    """The emulator's token: it takes any (obstore cannot skip signing GCS requests)."""
    expires = datetime.datetime.now(datetime.timezone.utc) + _ANONYMOUS_FOR
    return {"token": "anonymous", "expires_at": expires}


class _GoogleAuthCredentials:
    """google-auth's credentials as an obstore credential provider (refreshed on expiry)."""

    def __init__(self, credentials: Any) -> None:
        from google.auth.transport.requests import Request

        self._credentials = credentials
        self._request = Request()

    @classmethod
    def default(cls) -> _GoogleAuthCredentials | None:
        """The machine's default credentials, with the SDK's scope; None when there are none
        (the SDK then reports it)."""
        import google.auth
        from google.auth import exceptions

        try:
            credentials, _ = google.auth.default(scopes=_SCOPES)
        except exceptions.DefaultCredentialsError:
            return None
        return cls(credentials)

    @classmethod
    def authorized_user(cls, path: str) -> _GoogleAuthCredentials | None:
        from google.oauth2 import credentials as user_credentials

        try:
            credentials = user_credentials.Credentials.from_authorized_user_file(path)  # type: ignore[no-untyped-call]
        except (ValueError, KeyError):
            return None
        return cls(credentials)

    def __call__(self) -> dict[str, Any]:
        from google.auth import exceptions

        from modelkit_assets import errors

        if not self._credentials.valid:
            try:
                self._credentials.refresh(self._request)
            except exceptions.RefreshError as exc:
                if exc.retryable:
                    raise
                raise errors.StorageAccessDeniedError(
                    "gcs", "", f"the credentials were refused: {str(exc).splitlines()[0][:200]}"
                ) from None
        expiry = self._credentials.expiry
        if expiry is not None and expiry.tzinfo is None:  # google-auth's expiries are UTC
            expiry = expiry.replace(tzinfo=datetime.timezone.utc)
        return {"token": self._credentials.token, "expires_at": expiry}


#: What the SDK's client asks for (``google.cloud.storage.Client.SCOPE``).
_SCOPES: Final = (
    "https://www.googleapis.com/auth/devstorage.full_control",
    "https://www.googleapis.com/auth/devstorage.read_only",
    "https://www.googleapis.com/auth/devstorage.read_write",
)
