"""How the driver reaches S3: settings from keyword arguments, the environment and ~/.aws.

Keyword arguments win; then ``S3_ENDPOINT`` and ``AWS_KMS_KEY_ID``, which boto3 does not read
itself; everything else (``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``, ``AWS_SESSION_TOKEN``,
``AWS_DEFAULT_REGION``, ``AWS_PROFILE``, ``~/.aws/config`` and ``~/.aws/credentials``...) is left
to boto3, which reads it in its usual order: keys in the environment beat ``AWS_PROFILE``, and
a ``profile_name=`` argument beats keys in the environment.

Transient faults are retried by botocore itself; the number of attempts is chosen so that the
worst-case backoff fits in the driver's ``timeout_s`` (``MODELKIT_STORAGE_TIMEOUT_S``).
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any, Final

import attrs

from modelkit_assets import errors
from modelkit_assets.drivers.settings import SettingField, StorageDriverSettings

from .errors import no_retry_when_refused, refuse_foreign_answers

if TYPE_CHECKING:
    from botocore.config import Config
    from mypy_boto3_s3 import S3Client

#: Keyword arguments the driver accepts, as in ``boto3.client(...)``, plus the KMS key.
SETTING_NAMES: Final = (
    "aws_access_key_id",
    "aws_secret_access_key",
    "aws_session_token",
    "region_name",
    "endpoint_url",
    "aws_kms_key_id",
    "profile_name",
    "retry_mode",
)

RETRY_MODES: Final = ("standard", "adaptive", "legacy")

#: Concurrent connections per driver: the core runs up to 16 transfers, each of which may run
#: several part requests; a full pool only costs a new connection and a warning, so be generous.
MAX_POOL_CONNECTIONS: Final = 64

# botocore's standard backoff for throttling: rand(0, 1) * min(2 ** i, 20) seconds.
_MAX_BACKOFF_S: Final = 20.0
_MAX_ATTEMPTS: Final = 30


def _env(name: str) -> str | None:
    return os.environ.get(name, "").strip() or None


def max_attempts(timeout_s: float) -> int:
    """Attempts whose worst-case backoff (before the last) adds up to at most ``timeout_s``."""
    attempts, waited = 1, 0.0
    while attempts < _MAX_ATTEMPTS:
        waited += min(2.0 ** (attempts - 1), _MAX_BACKOFF_S)
        if waited > timeout_s:
            break
        attempts += 1
    return attempts


@attrs.frozen
class S3Settings:
    """Everything needed to build a client; secrets are kept out of ``repr()``."""

    aws_access_key_id: str | None = attrs.field(default=None, repr=False)
    aws_secret_access_key: str | None = attrs.field(default=None, repr=False)
    aws_session_token: str | None = attrs.field(default=None, repr=False)
    region_name: str | None = None
    endpoint_url: str | None = None
    aws_kms_key_id: str | None = None
    profile_name: str | None = None
    retry_mode: str = "standard"

    @classmethod
    def from_kwargs(cls, settings: dict[str, Any]) -> S3Settings:
        """Keyword arguments, with ``S3_ENDPOINT``, ``AWS_KMS_KEY_ID`` and ``AWS_RETRY_MODE``
        from the environment as fallbacks."""
        unknown = sorted(set(settings) - set(SETTING_NAMES))
        if unknown:
            raise errors.ConfigurationError(
                f"unknown s3 setting(s) {', '.join(unknown)}; known: {', '.join(SETTING_NAMES)}"
            )
        values: dict[str, Any] = {
            k: (str(v) if v not in (None, "") else None) for k, v in settings.items()
        }
        values["endpoint_url"] = values.get("endpoint_url") or _env("S3_ENDPOINT")
        values["aws_kms_key_id"] = values.get("aws_kms_key_id") or _env("AWS_KMS_KEY_ID")
        mode = values.get("retry_mode") or _env("AWS_RETRY_MODE") or "standard"
        if mode not in RETRY_MODES:
            raise errors.ConfigurationError(
                f"unknown retry mode {mode!r}: use one of {', '.join(RETRY_MODES)}"
            )
        values["retry_mode"] = mode
        return cls(**values)

    @property
    def upload_args(self) -> dict[str, str]:
        """Extra arguments of every upload: SSE-KMS with the configured key, if any."""
        if not self.aws_kms_key_id:
            return {}
        return {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": self.aws_kms_key_id}

    def client_config(self, timeout_s: float, sign_payloads: bool = True) -> Config:
        """Retries, timeouts and pool size, all bounded by ``timeout_s``.

        ``sign_payloads=False`` leaves request bodies out of the SigV4 signature (botocore
        already does so for streamed bodies over HTTPS). Over plain HTTP botocore would
        otherwise read every body once more to SHA-256 it: for a 256 MiB push to SeaweedFS,
        0.19 s of a 1.9 s upload on the 2 cores the client shares with the server.

        Parameters are not checked against the service model before each call
        (``parameter_validation=False``): this driver builds every call itself, from strings
        and bytes, and bucket names are still checked (by their own botocore handler) and
        every request by the server. Validation was 5% of the client's CPU time: 1000 PUTs of
        10 KiB on 16 threads to SeaweedFS used 1.53 s of CPU with it, 1.45 s without (wall
        1.71 s against 1.64 s, medians of 5).
        """
        from botocore.config import Config

        s3: dict[str, Any] = {} if sign_payloads else {"payload_signing_enabled": False}
        if self.endpoint_url:
            # S3-compatible stores (MinIO, SeaweedFS...) rarely serve bucket.host names.
            s3["addressing_style"] = "path"
        options: dict[str, Any] = {
            "retries": {"mode": self.retry_mode, "total_max_attempts": max_attempts(timeout_s)},
            "connect_timeout": max(min(10.0, timeout_s), 0.1),
            "read_timeout": max(min(60.0, timeout_s), 0.1),
            "max_pool_connections": MAX_POOL_CONNECTIONS,
            "parameter_validation": False,
        }
        if s3:
            options["s3"] = s3
        return Config(**options)

    def make_client(self, timeout_s: float) -> S3Client:
        """A new client, from its own boto3 Session (sessions are not thread-safe).

        Request bodies are not signed when botocore sends a CRC32 checksum of each (its default,
        ``request_checksum_calculation = when_supported``): the server checks that checksum,
        which the signature covers, and every fetch checks the digests of the ``.meta``. With
        checksums only "when_required", bodies stay signed, as botocore would have them.
        Small bodies go without "Expect: 100-continue" (see :mod:`.continue_header`).
        """
        import boto3
        import botocore.session
        from botocore.exceptions import BotoCoreError

        from . import continue_header

        try:
            core = botocore.session.Session()
            session = boto3.Session(
                aws_access_key_id=self.aws_access_key_id,
                aws_secret_access_key=self.aws_secret_access_key,
                aws_session_token=self.aws_session_token,
                region_name=self.region_name,
                botocore_session=core,
                profile_name=self.profile_name,
            )
            checksums = core.get_config_variable("request_checksum_calculation")
            config = self.client_config(timeout_s, sign_payloads=checksums != "when_supported")
            client = session.client("s3", endpoint_url=self.endpoint_url, config=config)
        except BotoCoreError as exc:  # ProfileNotFound, an invalid endpoint URL...
            raise errors.ConfigurationError(f"cannot configure the s3 client: {exc}") from None
        except ValueError as exc:  # botocore rejects some endpoint URLs with a ValueError
            raise errors.ConfigurationError(f"cannot configure the s3 client: {exc}") from None
        continue_header.install(client)
        client.meta.events.register_first(
            "needs-retry.s3",
            no_retry_when_refused,  # type: ignore[arg-type]  # botocore uses its answer
        )
        client.meta.events.register("after-call.s3", refuse_foreign_answers)
        return client


class S3StorageDriverSettings(StorageDriverSettings):
    """modelkit's settings of the ``s3`` driver, with its field names: ``aws_default_region``
    and ``s3_endpoint`` stand for ``region_name`` and ``endpoint_url``; this driver's other
    keywords (``profile_name``, ``retry_mode``...) are accepted too. Fields left out are read
    from the environment, as modelkit does."""

    provider = "s3"
    fields = {
        **StorageDriverSettings.fields,
        "aws_access_key_id": SettingField("AWS_ACCESS_KEY_ID", "aws_access_key_id", secret=True),
        "aws_secret_access_key": SettingField(
            "AWS_SECRET_ACCESS_KEY", "aws_secret_access_key", secret=True
        ),
        "aws_default_region": SettingField("AWS_DEFAULT_REGION", "region_name"),
        "aws_session_token": SettingField("AWS_SESSION_TOKEN", "aws_session_token", secret=True),
        "s3_endpoint": SettingField("S3_ENDPOINT", "endpoint_url"),
        "aws_kms_key_id": SettingField("AWS_KMS_KEY_ID", "aws_kms_key_id"),
    }
    driver_options = SETTING_NAMES

    aws_access_key_id: str | None
    aws_secret_access_key: str | None
    aws_default_region: str | None
    aws_session_token: str | None
    s3_endpoint: str | None
    aws_kms_key_id: str | None
