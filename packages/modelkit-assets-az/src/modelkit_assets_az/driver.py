"""The ``az`` driver: a container of an Azure storage account holds the objects.

Conditional writes are atomic on the service: create-only is ``If-None-Match: *`` (the SDK's
``overwrite=False``, answered 409 ``BlobAlreadyExists``), compare-and-swap is ``If-Match`` on the
ETag read with the data (answered 412 ``ConditionNotMet``). An object is never deleted and
re-uploaded: readers would find it missing in between. Large files move in blocks and ranged GETs
with ``max_concurrency`` connections, streamed between the file and the network. A large
create-only upload stages blocks whose ids say what they hold, and keeps those a killed push left
uncommitted when the file's bytes match them (see :mod:`.blocks`).
"""

from __future__ import annotations

import contextlib
import enum
import io
import logging
import os
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any, ClassVar, Final

import attrs

from modelkit_assets import errors
from modelkit_assets.drivers.base import StorageDriver
from modelkit_assets.drivers.settings import ClientConfiguration
from modelkit_assets.engines import delegating, engine_of
from modelkit_assets.hashing import digest_file
from modelkit_assets.meta import FileDigest
from modelkit_assets.progress import HighWater, summed_into
from modelkit_assets.records import CONDITIONAL_WRITES, RANGED_READS, SERVER_SIDE_COPY

from . import sdk
from .connection import CONNECTION_STRING_ENV, Secret, account_name, redact
from .settings import AzureStorageDriverSettings
from .tuning import AzureSettings

if TYPE_CHECKING:
    from azure.core.exceptions import HttpResponseError
    from azure.storage.blob import BlobClient, BlobServiceClient, ContainerClient

_NAME: Final = "az"
_NO_CREDENTIALS: Final = (
    f"no Azure credentials: set {CONNECTION_STRING_ENV}, or pass connection_string= or client="
)
#: The time budget of a client built from a configuration that does not say.
_DEFAULT_TIMEOUT_S: Final = 300.0


class _ForeignAnswerNoise(logging.Filter):
    """Drops the SDK's warning about an error body it cannot decode: the driver reports that
    answer itself, in one line (see ``_foreign_answer``)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith("Unexpected return type")


logging.getLogger("azure.storage.blob._shared.response_handlers").addFilter(_ForeignAnswerNoise())
_CONFLICT_CODES: Final = frozenset({"BlobAlreadyExists", "ConditionNotMet"})
_DENIED_STATUSES: Final = frozenset({401, 403})
_TRANSIENT_STATUSES: Final = frozenset({408, 429})
#: First and longest wait between two looks at a pending copy.
_COPY_POLL_S: Final = (0.05, 2.0)

_MiB: Final = 1024 * 1024
#: Bytes per request of a ranged read at most: the SDK holds a request's answer in memory
#: (twice over, while it joins its pieces). A fetch of 256 MiB on 8 range workers peaked at
#: 85 MB of RSS with 1 MiB, 114 MB with 2 MiB and 144 MB with 4 MiB, in the same time.
_RANGE_REQUEST: Final = _MiB


def _error_code(exc: HttpResponseError) -> str:
    code = getattr(exc, "error_code", None)  # absent when signing failed before any request
    if isinstance(code, enum.Enum):
        return str(code.value)
    return str(code or "")


def _is_service_client(client: Any) -> bool:
    from azure.storage.blob import BlobServiceClient

    return isinstance(client, BlobServiceClient)


def _one_line(exc: BaseException) -> str:
    first = (str(exc).strip().splitlines() or [""])[0]
    return redact(f"{type(exc).__name__}: {first}" if first else type(exc).__name__)


#: What the obstore engine (the ``fast`` extra) takes when installed; see modelkit_assets.engines.
_ENGINE_METHODS: Final = (
    "download_many", "download_hashing", "read_range", "create_many", "create_bytes",
    "read_object", "write_object", "exists", "iterate_objects", "delete_object",
)  # fmt: skip


@delegating(*_ENGINE_METHODS)
class AzureStorageDriver(StorageDriver):
    """Objects are block blobs in the container ``bucket``.

    Credentials: ``client=`` (a ready ``BlobServiceClient``), else ``connection_string=``, else
    ``AZURE_STORAGE_CONNECTION_STRING``. Further keywords tune transfers (see
    :class:`~modelkit_assets_az.client.AzureSettings`).
    """

    provider_name = _NAME
    #: Blob names are at most 1024 characters (1024 bytes: the stricter reading).
    max_object_name_bytes = 1024
    capabilities: ClassVar[frozenset[str]] = frozenset(
        {CONDITIONAL_WRITES, RANGED_READS, SERVER_SIDE_COPY}
    )
    settings_class = AzureStorageDriverSettings

    def __init__(
        self,
        bucket: str | AzureStorageDriverSettings | Mapping[str, Any] | None = None,
        client: Any = None,
        *,
        timeout_s: float = 300.0,
        lazy: bool | None = None,
        settings: AzureStorageDriverSettings | Mapping[str, Any] | None = None,
        **keywords: Any,
    ) -> None:
        """``AzureStorageDriver(container, connection_string=...)``, or modelkit's
        ``AzureStorageDriver(settings, client)``."""
        name, is_lazy, options = self.resolve_settings(bucket, settings, lazy, keywords)
        super().__init__(name, client, timeout_s=timeout_s, lazy=is_lazy)
        connection_string: str | None = options.pop("connection_string", None)
        self.settings = AzureSettings.from_kwargs(options)
        if client is not None and not _is_service_client(client):
            raise errors.ConfigurationError(
                f"client= must be an azure.storage.blob.BlobServiceClient, "
                f"not {type(client).__name__}"
            )
        self._service: BlobServiceClient | None = client
        self._connection_string = Secret(
            connection_string or os.environ.get(CONNECTION_STRING_ENV, "").strip()
        )
        if client is None and not self._connection_string.reveal():
            raise errors.ConfigurationError(_NO_CREDENTIALS)
        self._container: ContainerClient | None = None
        self._lock = threading.Lock()
        #: Whether the caller gave the SDK client (the engine then leaves every call to it).
        self.client_given = client is not None
        if not is_lazy and engine_of(self) is None:
            self._container_client()

    def __repr__(self) -> str:
        account = (
            self._service.account_name
            if self._service is not None
            else account_name(self._connection_string.reveal())
        )
        return f"{type(self).__name__}(bucket={self.bucket!r}, account={account!r})"

    # -- the client, built once and shared by every thread ---------------------------------------

    #: Pickling leaves out the clients and the lock; the unpickled driver builds its own
    #: client from its connection string on first use (a client given as ``client=`` does not
    #: travel: without a connection string, the unpickled driver cannot reach the store).
    rebuilt_after_unpickling: ClassVar[Mapping[str, Callable[[], Any]]] = {
        "_service": lambda: None,
        "_container": lambda: None,
        "_lock": threading.Lock,
        "client_given": lambda: False,
    }

    @property
    def client(self) -> BlobServiceClient:
        """The account's ``BlobServiceClient`` (modelkit's ``driver.client``), built by
        :meth:`build_client` on first use when the driver is lazy."""
        if self._service is None:
            with self._lock:
                if self._service is None:
                    self._service = self.build_client(self.client_configuration)
        return self._service

    @property
    def container_client(self) -> ContainerClient:
        """The client of the container the driver's objects are in."""
        return self._container_client()

    @property
    def client_configuration(self) -> ClientConfiguration:
        """modelkit's ``client_configuration``: the ``connection_string`` (masked in the
        ``repr()``), the time budget and the transfer settings :meth:`build_client` takes."""
        values = {
            "connection_string": self._connection_string.reveal() or None,
            "timeout_s": self.timeout_s,
            **attrs.asdict(self.settings),
        }
        return ClientConfiguration(values, ("connection_string",))

    @staticmethod
    def build_client(client_configuration: Mapping[str, Any]) -> BlobServiceClient:
        """modelkit's ``AzureStorageDriver.build_client``: a ``BlobServiceClient`` from the
        ``connection_string`` of ``client_configuration`` (and optionally ``timeout_s`` and the
        transfer settings), retrying within the time budget. A subclass may override it: the
        driver builds every client through it."""
        options = dict(client_configuration)
        connection_string = options.pop("connection_string", None)
        timeout_s = float(options.pop("timeout_s", _DEFAULT_TIMEOUT_S))
        if not connection_string:
            raise errors.ConfigurationError(_NO_CREDENTIALS)
        secret = connection_string if isinstance(connection_string, Secret) else None
        from .client import build_service_client  # the SDK: only when a client is built

        return build_service_client(
            secret or Secret(str(connection_string)), timeout_s, AzureSettings.from_kwargs(options)
        )

    def _container_client(self) -> ContainerClient:
        if self._container is None:
            service = self.client
            with self._lock:
                if self._container is None:
                    self._container = service.get_container_client(self.bucket)
        return self._container

    def _endpoint(self) -> str:
        """``scheme://host:port`` of the blob service (no secret is in it)."""
        url = urllib.parse.urlsplit(self._container_client().url)
        return f"{url.scheme}://{url.netloc}"

    def _blob(self, object_name: str) -> BlobClient:
        return self._container_client().get_blob_client(object_name)

    # -- errors --------------------------------------------------------------------------------

    @contextlib.contextmanager
    def _translate(
        self,
        object_name: str | None = None,
        conflict: errors.StorageDriverError | None = None,
    ) -> Iterator[None]:
        """Turn the SDK's exceptions into the core's, without their (possibly secret) details.

        ``conflict`` is raised when a conditional write finds its condition unmet.
        """
        try:
            yield
        except sdk.http_response_error() as exc:
            raise self._mapped(exc, object_name, conflict) from None
        except sdk.azure_error() as exc:  # no answer: connection refused, timeout, reset...
            if errors.is_connection_refused(exc):
                raise errors.StorageUnavailableError(
                    _NAME,
                    f"the endpoint {self._endpoint()} refused the connection (check the "
                    f"BlobEndpoint of {CONNECTION_STRING_ENV})",
                    refused=True,
                ) from None
            raise errors.StorageUnavailableError(
                _NAME, f"{_one_line(exc)} (retried for up to {self.timeout_s:g} s)"
            ) from None

    def _mapped(
        self,
        exc: HttpResponseError,
        object_name: str | None,
        conflict: errors.StorageDriverError | None,
    ) -> errors.StorageDriverError:
        code, status = _error_code(exc), exc.status_code
        foreign = self._foreign_answer(exc)
        if foreign is not None:
            return foreign
        if conflict is not None and status in (409, 412) and code in _CONFLICT_CODES:
            return conflict
        if code == "ContainerNotFound":
            return errors.BucketDoesNotExistError(_NAME, self.bucket)
        if object_name is not None and (code == "BlobNotFound" or status == 404):
            return errors.ObjectDoesNotExistError(_NAME, self.bucket, object_name)
        if status in _DENIED_STATUSES or sdk.is_authentication_error(exc):
            detail = code or ("the account key is not valid" if status is None else str(status))
            return errors.StorageAccessDeniedError(_NAME, self.bucket, detail)
        if status is None or status >= 500 or status in _TRANSIENT_STATUSES:
            return errors.StorageUnavailableError(
                _NAME, f"{code or status} (retried for up to {self.timeout_s:g} s)"
            )
        what = f" on {object_name!r}" if object_name else ""
        return errors.StorageDriverError(
            f"az request{what} in container {self.bucket!r} failed with {status} "
            f"{code}: {_one_line(exc)}"
        )

    def _foreign_answer(self, exc: HttpResponseError) -> errors.StorageDriverError | None:
        """An error answered without the ``x-ms-request-id`` header that the blob service
        and Azurite send with every answer: some other web server is at the BlobEndpoint.
        Throttling (408, 429) and 5xx other than 501 are left alone: a proxy in front of the
        store may be failing for a moment, and the core retries those."""
        response, status = exc.response, exc.status_code
        if response is None or status is None or status < 400 or (500 <= status != 501):
            return None
        if status in _TRANSIENT_STATUSES:
            return None
        headers = getattr(response, "headers", None) or {}
        if "x-ms-request-id" in headers:
            return None
        kind = str(headers.get("content-type", "")).split(";")[0].strip() or "no type"
        return errors.NotAStoreEndpointError(
            _NAME,
            self._endpoint(),
            "an Azure blob",
            f"HTTP {status} in {kind}",
            f"the BlobEndpoint of {CONNECTION_STRING_ENV}",
        )

    # -- the interface ---------------------------------------------------------------------------

    def iterate_objects(self, prefix: str | None = None) -> Iterator[str]:
        container = self._container_client()
        with self._translate():
            pages = container.list_blobs(
                name_starts_with=prefix or None, results_per_page=self.settings.list_page_size
            ).by_page()
            for page in pages:
                for blob in page:
                    yield blob.name

    def upload_object(self, file_path: str, object_name: str) -> None:
        self._upload_file(file_path, object_name, overwrite=True)

    def create_object(self, file_path: str, object_name: str) -> None:
        self.create_reporting(file_path, object_name, None)

    def create_reporting(
        self, file_path: str, object_name: str, on_bytes: Callable[[int], None] | None
    ) -> None:
        """Reports through the SDK's ``progress_hook``: each block as it is staged."""
        self._upload_file(
            file_path,
            object_name,
            overwrite=False,
            conflict=errors.ObjectAlreadyExistsError(object_name),
            on_bytes=on_bytes,
        )

    def create_bytes(self, data: bytes, object_name: str) -> None:
        """One upload of bytes already read, create-only (``If-None-Match: *``)."""
        blob = self._blob(object_name)
        with self._translate(object_name, errors.ObjectAlreadyExistsError(object_name)):
            blob.upload_blob(data, length=len(data), overwrite=False)

    def _upload_file(
        self,
        file_path: str,
        object_name: str,
        overwrite: bool,
        conflict: errors.StorageDriverError | None = None,
        on_bytes: Callable[[int], None] | None = None,
    ) -> None:
        blob = self._blob(object_name)
        size = os.path.getsize(file_path)
        if not overwrite and size > self.settings.max_single_put_size:
            # Large creates resume: blocks a killed push staged are kept when they match.
            from . import blocks  # the SDK's block calls

            try:
                with self._translate(object_name, conflict):
                    blocks.upload_blocks(
                        blob,
                        file_path,
                        size,
                        self.settings.max_block_size,
                        self.settings.max_concurrency,
                        summed_into(HighWater(on_bytes)) if on_bytes else None,
                    )
            except blocks.BlobExistsError:
                raise conflict or errors.ObjectAlreadyExistsError(object_name) from None
            return
        extra: dict[str, Any] = {}
        if on_bytes:
            sent = HighWater(on_bytes)  # the hook gives totals, which restart on a retry
            extra["progress_hook"] = lambda current, _total: sent.reached(current)
        with open(file_path, "rb") as f, self._translate(object_name, conflict):
            # overwrite=False sends If-None-Match: * with the single PUT or the block list commit
            blob.upload_blob(
                f,
                length=os.fstat(f.fileno()).st_size,
                overwrite=overwrite,
                max_concurrency=self.settings.max_concurrency,
                **extra,
            )

    def download_object(self, object_name: str, destination_path: str) -> None:
        blob = self._blob(object_name)
        with self._translate(object_name):
            # The first GET answers 404 before the destination is created; later chunks are
            # pinned to its ETag by the SDK, so a concurrent overwrite cannot mix versions.
            stream = blob.download_blob(max_concurrency=self.settings.max_concurrency)
            try:
                with open(destination_path, "wb") as f:
                    stream.readinto(f)
            except BaseException:
                with contextlib.suppress(OSError):
                    os.unlink(destination_path)
                raise

    def download_hashing(
        self, object_name: str, destination_path: str, algorithm: str
    ) -> FileDigest:
        """:meth:`download_object`, then the file hashed from the page cache (the SDK writes
        its chunks out of order, on ``max_concurrency`` threads). The obstore engine, when
        installed, hashes the bytes as they arrive instead."""
        self.download_object(object_name, destination_path)
        return digest_file(destination_path, algorithm)

    def copy_object(self, source_name: str, object_name: str) -> int:
        """Copy Blob from the source's URL, create-only (``If-None-Match: *``, answered 409
        ``BlobAlreadyExists``), then waited for: the service may copy in the background
        (``copy_status`` pending), and the object must be whole when this returns.

        The source is in the same account, so the request's own credentials (Shared Key)
        authorise reading it: no SAS is needed (Azurite agrees). Not Put Blob From URL
        (``upload_blob_from_url``): Azurite 3.35 answers 501, and on Azure it needs a SAS or
        a token for the source and stops at 5000 MiB."""
        source = self._blob(source_name)
        target = self._blob(object_name)
        with self._translate(source_name, errors.ObjectAlreadyExistsError(object_name)):
            started = target.start_copy_from_url(source.url, if_none_match="*")
        if started.get("copy_status") != "success":
            self._wait_for_copy(target, object_name, str(started.get("copy_id")))
        with self._translate(object_name):
            return int(target.get_blob_properties().size)

    def _wait_for_copy(self, target: BlobClient, object_name: str, copy_id: str) -> None:
        """Poll a pending copy until it succeeds; one that fails, or outlasts the driver's
        timeout, is aborted and its target deleted (this copy created it), and the error is
        transient: the core tries again."""
        deadline = time.monotonic() + self.timeout_s
        delay, longest = _COPY_POLL_S
        while True:
            with self._translate(object_name):
                copy = target.get_blob_properties().copy
            if copy.status == "success":
                return
            if copy.status != "pending" or time.monotonic() > deadline:
                with contextlib.suppress(sdk.http_response_error()):
                    if copy.status == "pending":
                        target.abort_copy(copy_id)
                self.delete_object(object_name)
                raise errors.StorageUnavailableError(
                    _NAME,
                    f"the copy to {object_name!r} ended {copy.status}: {copy.status_description}",
                )
            time.sleep(delay)
            delay = min(longest, delay * 2)

    def read_range(self, object_name: str, start: int, end: int) -> Iterator[bytes]:
        """``[start, end)`` in GETs of 1 MiB (or ``max_single_get_size``, if smaller), one
        request each: ``download_blob(offset, length)`` reads its first
        ``max_single_get_size`` bytes (32 MiB by the SDK's default) into memory at once, so
        asking for no more than a chunk bounds memory to a chunk per worker."""
        blob = self._blob(object_name)
        step = min(_RANGE_REQUEST, self.settings.max_single_get_size)
        for offset in range(start, end, step):
            with self._translate(object_name):
                yield blob.download_blob(offset=offset, length=min(step, end - offset)).readall()

    def delete_object(self, object_name: str) -> None:
        blob = self._blob(object_name)
        with contextlib.suppress(errors.ObjectDoesNotExistError), self._translate(object_name):
            blob.delete_blob(delete_snapshots="include")

    def exists(self, object_name: str) -> bool:
        blob = self._blob(object_name)
        try:
            with self._translate(object_name):
                blob.get_blob_properties()
        except errors.ObjectDoesNotExistError:
            return False
        return True

    def get_object_uri(self, object_name: str, sub_part: str | None = None) -> str:
        return self.uri_for("az", object_name, sub_part)

    # -- conditional writes ----------------------------------------------------------------------

    def read_object(self, object_name: str) -> tuple[bytes, str | None]:
        """The object's bytes and the ETag of that very content."""
        blob = self._blob(object_name)
        with self._translate(object_name):
            while True:
                buffer = io.BytesIO()
                stream = blob.download_blob()
                stream.readinto(buffer)
                etag = stream.properties.etag
                if buffer.tell() or self._still_empty(blob, etag):
                    return buffer.getvalue(), etag

    @staticmethod
    def _still_empty(blob: BlobClient, etag: str) -> bool:
        """Whether the blob at ``etag`` really is empty.

        The SDK reads an empty blob in two GETs (a ranged one answered 416, then a plain one
        whose body it drops and whose ETag it keeps): a write between them would pair the new
        ETag with no content, and a compare-and-swap on it would lose that write.
        """
        properties = blob.get_blob_properties()
        return bool(properties.etag == etag and properties.size == 0)

    def write_object(
        self,
        data: bytes,
        object_name: str,
        *,
        if_match: str | None = None,
        if_absent: bool = False,
    ) -> None:
        conditions: dict[str, Any] = {"overwrite": not if_absent}
        if if_match is not None and not if_absent:
            conditions.update(etag=if_match, match_condition=sdk.if_not_modified())
        blob = self._blob(object_name)
        try:
            with self._translate(object_name, errors.PreconditionFailedError(object_name)):
                blob.upload_blob(data, **conditions)
        except errors.ObjectDoesNotExistError:
            if if_match is None:
                raise
            raise errors.PreconditionFailedError(object_name) from None
