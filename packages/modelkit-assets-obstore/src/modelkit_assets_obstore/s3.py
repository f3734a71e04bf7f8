"""The engine of the ``s3`` driver: an obstore ``S3Store`` configured as the driver's client.

Credentials are found as boto3 finds them, so that users configure nothing new: keys given
to the driver win; then a ``profile_name=`` (resolved by boto3, as everything below); then
``AWS_ACCESS_KEY_ID`` / ``AWS_SECRET_ACCESS_KEY`` (``AWS_SESSION_TOKEN``) in the environment;
anything else (``AWS_PROFILE``, ``~/.aws``, SSO, web identity, instance metadata) goes
through boto3's own credential chain, asked again whenever the credentials it gave expire.
Only the last two cases import boto3: with keys at hand, a fetch never loads an SDK.

Not the engine's, left to the driver's boto3 client: a ready ``client=`` (its own settings
apply), and with ``aws_kms_key_id`` every write (SSE-KMS). Large uploads (multipart,
create-only), copies and anything the driver does not delegate stay on boto3 in every case.

Timeouts and retries are those of :mod:`.transport`, within the driver's ``timeout_s``.
"""

from __future__ import annotations

from typing import Any, Final

from obstore.store import S3Store

from modelkit_assets import errors
from modelkit_assets.environment import env_str
from modelkit_assets_s3.settings import max_attempts

from . import transport
from .engine import ObstoreEngine
from .keeps import users_own_client

#: Region of S3-compatible stores that ignore it, when none is configured (boto3's default).
_DEFAULT_REGION: Final = "us-east-1"


def s3_engine(driver: Any) -> ObstoreEngine | None:
    """The engine of an ``S3StorageDriver``, or None if the SDK keeps everything."""
    from modelkit_assets_s3.driver import S3StorageDriver

    if users_own_client(
        driver, S3StorageDriver, client_given=driver.__dict__.get("_client") is not None
    ):
        return None
    settings = driver.settings
    config: dict[str, Any] = {"region": _region(settings)}
    credentials = _static_credentials(settings)
    provider = None
    if credentials is None:
        provider = _Boto3Credentials(settings)  # imports boto3: no keys at hand
    else:
        config.update(credentials)
    if settings.endpoint_url:
        config["endpoint"] = settings.endpoint_url
        config["virtual_hosted_style_request"] = False  # as the driver: path-style addressing
    timeout = float(driver.timeout_s)
    endpoint = settings.endpoint_url or ""
    client_options = transport.client_options(timeout, allow_http=endpoint.startswith("http:"))
    retry_config = transport.retry_config(timeout, max_attempts(timeout))
    try:
        store = S3Store(
            driver.bucket,
            config=config,  # type: ignore[arg-type]  # keys checked by S3Store itself
            client_options=client_options,  # type: ignore[arg-type]
            retry_config=retry_config,
            credential_provider=provider,  # type: ignore[arg-type]  # a callable, as typed
        )
    except Exception as exc:  # an invalid endpoint URL, bucket name...
        raise errors.ConfigurationError(f"cannot configure the s3 client: {exc}") from None
    return ObstoreEngine(store, "s3", driver.bucket, uploads=not settings.aws_kms_key_id)


def _static_credentials(settings: Any) -> dict[str, str] | None:
    """Keys as boto3 would take them without a credential chain, or None."""
    if settings.aws_access_key_id and settings.aws_secret_access_key:
        return _keys(
            settings.aws_access_key_id, settings.aws_secret_access_key, settings.aws_session_token
        )
    if settings.profile_name:
        return None
    key, secret = env_str("AWS_ACCESS_KEY_ID"), env_str("AWS_SECRET_ACCESS_KEY")
    if key and secret:
        return _keys(key, secret, env_str("AWS_SESSION_TOKEN"))
    return None


def _keys(key: str, secret: str, token: str | None) -> dict[str, str]:
    keys = {"access_key_id": key, "secret_access_key": secret}
    if token:
        keys["session_token"] = token
    return keys


def _region(settings: Any) -> str:
    region = settings.region_name or env_str("AWS_REGION") or env_str("AWS_DEFAULT_REGION")
    if region:
        return str(region)
    if settings.endpoint_url:
        return _DEFAULT_REGION
    import botocore.session  # ~/.aws/config, the profile's region

    session = botocore.session.Session(profile=settings.profile_name)
    return str(session.get_config_variable("region") or _DEFAULT_REGION)


class _Boto3Credentials:
    """boto3's credential chain as an obstore credential provider (refreshed on expiry)."""

    def __init__(self, settings: Any) -> None:
        import boto3
        from botocore.exceptions import BotoCoreError

        try:  # a profile that does not exist is a configuration error, at once (as boto3's)
            self._session = boto3.Session(profile_name=settings.profile_name)
        except BotoCoreError as exc:
            raise errors.ConfigurationError(f"cannot configure the s3 client: {exc}") from None
        self._credentials: Any = None

    def __call__(self) -> dict[str, Any]:
        if self._credentials is None:
            self._credentials = self._session.get_credentials()
            if self._credentials is None:
                raise errors.StorageAccessDeniedError(
                    "s3", "", "no credentials found (keys, profile or instance role)"
                )
        frozen = self._credentials.get_frozen_credentials()
        expiry = getattr(self._credentials, "_expiry_time", None)
        return {
            "access_key_id": frozen.access_key,
            "secret_access_key": frozen.secret_key,
            "token": frozen.token,
            "expires_at": expiry,
        }
