"""The ``gcs`` driver: objects in a Google Cloud Storage bucket, through google-cloud-storage.

- One client per driver, built when the driver is (or on first use with ``lazy=True``, or when
  obstore does the reads: see :mod:`modelkit_assets_obstore.gcs`); the SDK's client is shared
  by the core's worker threads. google-cloud-storage is imported only once needed (see
  :mod:`.sdk`).
- Files stream: uploads of more than 8 MiB go as resumable uploads in ``chunk_size`` pieces, and
  downloads are streamed to the file with the SDK's CRC32C check, resuming where they stopped
  when a retry happens. No file is read whole into memory.
- Conditional writes use object generations: ``if_generation_match=0`` creates only if absent,
  ``if_generation_match=<generation>`` replaces only that generation; the version token is the
  generation. GCS refuses a lost race with 412, which becomes PreconditionFailedError (or
  ObjectAlreadyExistsError for a create).
- Transient faults are retried with the SDK's policy (``DEFAULT_RETRY``, and the same policy
  behind ``ConditionalRetryPolicy`` for writes with a precondition), for at most ``timeout_s``.
"""

from __future__ import annotations

import contextlib
import functools
import os
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any, BinaryIO, ClassVar, Final, TypeVar

from modelkit_assets import environment, errors
from modelkit_assets.drivers.base import StorageDriver
from modelkit_assets.drivers.settings import ClientConfiguration
from modelkit_assets.engines import delegating, engine_of
from modelkit_assets.hashing import digest_file
from modelkit_assets.meta import FileDigest
from modelkit_assets.progress import HighWater, ignore_bytes
from modelkit_assets.records import CONDITIONAL_WRITES, RANGED_READS, SERVER_SIDE_COPY

from . import sdk
from .client import CREDENTIALS_ENV, build_client
from .settings import GCSStorageDriverSettings
from .translate import PROVIDER, foreign_answer, translate

if TYPE_CHECKING:
    from google.api_core.retry import Retry
    from google.cloud import storage
    from google.cloud.storage.retry import ConditionalRetryPolicy

    from . import resumable

__all__ = ["DEFAULT_CHUNK_SIZE", "GCSStorageDriver"]

T = TypeVar("T")

#: Piece size of resumable uploads: memory used per upload, and bytes per request.
DEFAULT_CHUNK_SIZE: Final = 16 * 1024 * 1024
#: Files past this size are sent as resumable uploads that a retry goes on with (the SDK's
#: own threshold between one-request and resumable uploads).
_RESUMABLE_THRESHOLD: Final = 8 * 1024 * 1024
#: GCS wants resumable pieces in multiples of 256 KiB.
_CHUNK_QUANTUM: Final = 256 * 1024
#: Bytes per request of a ranged read: the SDK's public API answers a range whole, in memory.
_RANGE_REQUEST: Final = 1024 * 1024

#: What the obstore engine (the ``fast`` extra) takes when installed: reads only, every write
#: stays on the SDK (see modelkit_assets_obstore.gcs and modelkit_assets.engines).
_ENGINE_METHODS: Final = (
    "download_many", "download_hashing", "read_range", "read_object", "exists", "iterate_objects",
)  # fmt: skip


@delegating(*_ENGINE_METHODS)
class GCSStorageDriver(StorageDriver):
    """A Google Cloud Storage bucket.

    Settings (keyword arguments, else the environment):

    - ``credentials_path``: a service-account JSON (else ``GOOGLE_APPLICATION_CREDENTIALS``;
      unset: the machine's default credentials);
    - ``project``: the Google Cloud project (else the one of the credentials);
    - ``chunk_size``: bytes per resumable-upload request, a multiple of 256 KiB (16 MiB);
    - ``page_size``: objects per listing request (the server's default: 1000).

    ``client=`` takes a ready ``google.cloud.storage.Client`` instead. ``STORAGE_EMULATOR_HOST``
    works as in the SDK. With the ``fast`` extra, obstore does the reads (see
    :mod:`modelkit_assets_obstore.gcs`) and the SDK client is built only once a write, or
    anything else obstore does not do here, needs it; google-cloud-storage is imported then.
    """

    provider_name = PROVIDER
    #: GCS object names are at most 1024 bytes of UTF-8.
    max_object_name_bytes = 1024
    capabilities: ClassVar[frozenset[str]] = frozenset(
        {CONDITIONAL_WRITES, RANGED_READS, SERVER_SIDE_COPY}
    )
    settings_class = GCSStorageDriverSettings

    def __init__(
        self,
        bucket: str | GCSStorageDriverSettings | Mapping[str, Any] | None = None,
        client: storage.Client | None = None,
        *,
        timeout_s: float = 300.0,
        lazy: bool | None = None,
        settings: GCSStorageDriverSettings | Mapping[str, Any] | None = None,
        **keywords: Any,
    ) -> None:
        """``GCSStorageDriver(bucket, credentials_path=...)``, or modelkit's
        ``GCSStorageDriver(settings, client)`` (``service_account_path`` is taken as a keyword
        too)."""
        name, is_lazy, options = self.resolve_settings(bucket, settings, lazy, keywords)
        super().__init__(name, client, timeout_s=timeout_s, lazy=is_lazy)
        credentials_path: str | None = options.get("credentials_path")
        project: str | None = options.get("project")
        chunk_size: int = options.get("chunk_size", DEFAULT_CHUNK_SIZE)
        page_size: int | None = options.get("page_size")
        if chunk_size <= 0 or chunk_size % _CHUNK_QUANTUM:
            raise errors.ConfigurationError(
                f"gcs chunk_size must be a positive multiple of 256 KiB, not {chunk_size}"
            )
        if page_size is not None and page_size <= 0:
            raise errors.ConfigurationError(f"gcs page_size must be positive, not {page_size}")
        self._project, self._credentials_path = project, credentials_path
        self._chunk_size = chunk_size
        self._page_size = page_size
        # No single request waits longer than the whole budget (nor less than a second).
        self._request_timeout = max(1.0, min(sdk.SDK_TIMEOUT_S, timeout_s))
        self._client_lock = threading.Lock()
        self._bucket_seen = False
        self._client = client
        if client is None and not is_lazy and engine_of(self) is None:
            self._client = self.build_client(self.client_configuration)

    #: Pickling leaves out the client and its lock; the unpickled driver builds its own client
    #: on first use (a client given as ``client=`` does not travel).
    rebuilt_after_unpickling: ClassVar[Mapping[str, Callable[[], Any]]] = {
        "_client": lambda: None,
        "_client_lock": threading.Lock,
    }

    @functools.cached_property
    def _retry(self) -> Retry:
        """The SDK's retry policy within ``timeout_s`` (see :func:`.sdk.retry_policy`); made on
        first use, as it imports the SDK."""
        return sdk.retry_policy(self.timeout_s)

    @functools.cached_property
    def _retry_if_generation(self) -> ConditionalRetryPolicy:
        return sdk.retry_if_generation(self._retry)

    @property
    def client(self) -> storage.Client:
        """The driver's one SDK client (modelkit's ``driver.client``), built by
        :meth:`build_client` on first use when the driver is lazy."""
        if self._client is None:
            with self._client_lock:
                if self._client is None:
                    self._client = self.build_client(self.client_configuration)
        return self._client

    @property
    def client_configuration(self) -> ClientConfiguration:
        """modelkit's ``client_configuration``: ``service_account_path`` (None: the file
        GOOGLE_APPLICATION_CREDENTIALS names, else the machine's default credentials) and
        ``project``."""
        return ClientConfiguration(
            {"service_account_path": self._credentials_path, "project": self._project}
        )

    @staticmethod
    def build_client(client_configuration: Mapping[str, Any]) -> storage.Client:
        """modelkit's ``GCSStorageDriver.build_client``: a client from the service account
        JSON ``service_account_path``, else from GOOGLE_APPLICATION_CREDENTIALS (read now), else
        from the machine's default credentials. A subclass may override it: the driver builds
        every client through it."""
        return build_client(
            client_configuration.get("project"),
            client_configuration.get("service_account_path"),
            environment.env_str(CREDENTIALS_ENV),
        )

    def _blob(self, object_name: str, chunk_size: int | None = None) -> storage.Blob:
        return self.client.bucket(self.bucket).blob(object_name, chunk_size=chunk_size)

    # -- the interface ----------------------------------------------------------------------

    def iterate_objects(self, prefix: str | None = None) -> Iterator[str]:
        listing = self.client.list_blobs(
            self.bucket,
            prefix=prefix or None,
            page_size=self._page_size,
            fields="items(name),nextPageToken",
            retry=self._retry,
            timeout=self._request_timeout,
        )
        blobs = iter(listing)  # each page is fetched as the previous one runs out
        while (blob := self._call(lambda: next(blobs, None))) is not None:
            yield str(blob.name)

    def upload_object(self, file_path: str, object_name: str) -> None:
        blob = self._blob(object_name, self._chunk_size)
        self._call(
            lambda: blob.upload_from_filename(
                file_path, retry=self._retry, timeout=self._request_timeout
            ),
            object_name,
        )

    def download_object(self, object_name: str, destination_path: str) -> None:
        # No chunk_size here: one streamed request, checked end to end with CRC32C, resumed
        # from the last byte received if a retry happens (ranged chunks skip the check).
        self._download(object_name, destination_path, "auto")

    def download_hashing(
        self, object_name: str, destination_path: str, algorithm: str
    ) -> FileDigest:
        """The digest the caller checks against the ``.meta`` covers every byte end to end, so
        the SDK's CRC32C of the same bytes is skipped (256 MiB from fake-gcs-server: 0.44 s
        instead of 0.46 s)."""
        self._download(object_name, destination_path, None)
        return digest_file(destination_path, algorithm)

    def _download(self, object_name: str, destination_path: str, checksum: str | None) -> None:
        blob = self._blob(object_name)
        try:
            self._call(
                lambda: blob.download_to_filename(
                    destination_path,
                    retry=self._retry,
                    timeout=self._request_timeout,
                    checksum=checksum,
                ),
                object_name,
            )
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(destination_path)  # never leave half an object behind
            raise

    def read_range(self, object_name: str, start: int, end: int) -> Iterator[bytes]:
        """``[start, end)`` in requests of 1 MiB, through the SDK's public ranged download
        (``download_as_bytes(start=, end=)``, which holds its whole answer in memory: one
        request per chunk bounds memory to a chunk per worker). Each request is retried by
        the SDK; a body that still breaks off is a StorageUnavailableError."""
        blob = self._blob(object_name)
        for offset in range(start, end, _RANGE_REQUEST):
            last = min(offset + _RANGE_REQUEST, end) - 1  # inclusive, as HTTP ranges are
            download = functools.partial(
                blob.download_as_bytes,
                start=offset,
                end=last,
                raw_download=True,
                checksum=None,  # ranges carry no checksum; the core checks the file's digest
                retry=self._retry,
                timeout=self._request_timeout,
            )
            yield self._call(download, object_name)

    def delete_object(self, object_name: str) -> None:
        blob = self._blob(object_name)
        with contextlib.suppress(errors.ObjectDoesNotExistError):
            self._call(
                lambda: blob.delete(retry=self._retry, timeout=self._request_timeout),
                object_name,
            )

    def exists(self, object_name: str) -> bool:
        blob = self._blob(object_name)
        try:
            self._call(
                lambda: blob.reload(retry=self._retry, timeout=self._request_timeout),
                object_name,
            )
        except errors.ObjectDoesNotExistError:
            return False
        return True

    def get_object_uri(self, object_name: str, sub_part: str | None = None) -> str:
        return self.uri_for("gs", object_name, sub_part)

    # -- conditional writes --------------------------------------------------------------------

    def create_object(self, file_path: str, object_name: str) -> None:
        self.create_reporting(file_path, object_name, None)

    def create_reporting(
        self, file_path: str, object_name: str, on_bytes: Callable[[int], None] | None
    ) -> None:
        """Reports each ``chunk_size`` piece of a resumable upload as GCS acknowledges it, and
        the rest once the upload is done (a retry that seeks back counts nothing twice). Past
        8 MiB, the upload goes on with the session an interrupted upload of these bytes
        recorded (see :mod:`.resumable`)."""
        size = os.path.getsize(file_path)
        if size > _RESUMABLE_THRESHOLD:
            self._create_resumable(file_path, size, object_name, on_bytes)
            return
        # Past 8 MiB this is a resumable upload: GCS checks the precondition when the upload
        # finishes (fake-gcs-server does not check it there: see the tests).
        blob = self._blob(object_name, self._chunk_size)
        sent = HighWater(on_bytes) if on_bytes is not None else None
        with open(file_path, "rb") as f:
            source: Any = f if sent is None else _ReportingReader(f, sent)
            size = os.fstat(f.fileno()).st_size
            self._call(
                lambda: blob.upload_from_file(
                    source,
                    size=size,
                    if_generation_match=0,
                    retry=self._retry_if_generation,
                    timeout=self._request_timeout,
                ),
                object_name,
                conflict=lambda: errors.ObjectAlreadyExistsError(object_name),
            )
        if sent is not None:
            sent.reached(size)

    def _create_resumable(
        self,
        file_path: str,
        size: int,
        object_name: str,
        on_bytes: Callable[[int], None] | None,
    ) -> None:
        """A create-only resumable upload that goes on with a recorded session whose
        confirmed bytes the file still holds, else with a new one; a finished object whose
        size or CRC32C differs from the file's is deleted and made again, once."""
        from . import resumable

        endpoint = str(getattr(self.client._connection, "API_BASE_URL", ""))
        path = resumable.record_path(endpoint, self.bucket, object_name, size)
        sent = HighWater(on_bytes or ignore_bytes)
        conflict = lambda: errors.ObjectAlreadyExistsError(object_name)  # noqa: E731
        with resumable.exclusive(path) as ours, open(file_path, "rb") as file:
            recorded = resumable.load(path) if ours else None
            for _ in range(2):
                upload = self._resumed(file, recorded, (endpoint, object_name), sent, path)
                resumed = upload is not None
                if upload is None:
                    url = self._call(
                        lambda: self._new_session(object_name, size), object_name, conflict
                    )
                    record = resumable.SessionRecord(
                        endpoint, self.bucket, object_name, size, url, time.time()
                    )
                    upload = self._upload(file, record, sent, path if ours else None)
                    if ours:
                        resumable.save(path, record)
                recorded = None  # a second attempt starts afresh
                try:
                    metadata = self._call(upload.send, object_name, conflict)
                except resumable.SessionLostError:
                    if not resumed:  # a session just made: the bucket went away, or worse
                        self._call(lambda: self.client.get_bucket(self.bucket), object_name)
                        raise errors.StorageUnavailableError(
                            PROVIDER, f"gcs lost the upload session of {object_name!r}"
                        ) from None
                    continue  # the session expired, or the server forgot it
                if resumable.matches_file(metadata, size, upload.crc):
                    if ours:
                        resumable.forget(path)
                    return
                self._discard(object_name, metadata)
        raise errors.StorageDriverError(
            f"gcs stored {object_name!r} with other bytes than {file_path!r} twice "
            "(did the file change during the upload?)"
        )

    def _resumed(
        self,
        file: Any,
        record: resumable.SessionRecord | None,
        target: tuple[str, str],
        sent: HighWater,
        path: Any,
    ) -> resumable.Upload | None:
        """The upload going on with ``record``'s session, if it is for this very upload
        (``target``: endpoint and object name) and the file still holds the bytes it
        confirmed; else None (its session is cancelled)."""
        if record is None:
            return None
        endpoint, object_name = target
        size = os.fstat(file.fileno()).st_size
        if record.matches(endpoint, self.bucket, object_name, size):
            upload = self._upload(file, record, sent, path)
            if upload.kept():
                return upload
        with contextlib.suppress(Exception):
            self.client._http.request("DELETE", record.url, timeout=self._request_timeout)
        return None

    def _upload(
        self, file: Any, record: resumable.SessionRecord, sent: HighWater, path: Any
    ) -> resumable.Upload:
        from . import resumable

        return resumable.Upload(
            session=self.client._http,
            file=file,
            record=record,
            chunk_size=self._chunk_size,
            timeout=self._request_timeout,
            retry=self._retry,
            reached=sent.reached,
            save=(lambda r: resumable.save(path, r)) if path is not None else (lambda r: None),
        )

    def _new_session(self, object_name: str, size: int) -> str:
        """A new resumable session for a create-only upload of ``size`` bytes (GCS checks
        ``ifGenerationMatch=0`` when the upload finishes)."""
        url: str = self._blob(object_name).create_resumable_upload_session(
            content_type="application/octet-stream",
            size=size,
            timeout=self._request_timeout,
            checksum=None,
            if_generation_match=0,
            retry=self._retry,
        )
        return url

    def _discard(self, object_name: str, metadata: dict[str, Any]) -> None:
        """Delete the object an upload just made with the wrong bytes (that very generation:
        nothing else)."""
        generation = metadata.get("generation")
        blob = self._blob(object_name)
        with contextlib.suppress(errors.ObjectDoesNotExistError, errors.PreconditionFailedError):
            self._call(
                lambda: blob.delete(
                    if_generation_match=int(generation) if generation else None,
                    retry=self._retry_if_generation,
                    timeout=self._request_timeout,
                ),
                object_name,
                conflict=lambda: errors.PreconditionFailedError(object_name),
            )

    def create_bytes(self, data: bytes, object_name: str) -> None:
        """One upload of bytes already read, create-only."""
        blob = self._blob(object_name)
        self._call(
            lambda: blob.upload_from_string(
                data,
                if_generation_match=0,
                retry=self._retry_if_generation,
                timeout=self._request_timeout,
            ),
            object_name,
            conflict=lambda: errors.ObjectAlreadyExistsError(object_name),
        )

    def copy_object(self, source_name: str, object_name: str) -> int:
        """A rewrite inside the bucket, create-only (``if_generation_match=0``). GCS may
        answer a large or cross-location rewrite in several calls, each returning a token to
        go on with: it is called again until the copy is whole.

        The target is looked up first: fake-gcs-server 1.54 ignores every precondition of a
        rewrite (GCS honours them), and the look-up keeps the copy create-only for sequential
        writers there. A writer racing in between can only be a retry of the same push,
        which writes the same bytes: an update copies only into the names of the version
        whose claim it holds."""
        source = self._blob(source_name)
        target = self._blob(object_name)
        if self.exists(object_name):
            raise errors.ObjectAlreadyExistsError(object_name)
        token: str | None = None
        while True:
            token, _, total = self._call(
                functools.partial(
                    target.rewrite,
                    source,
                    token=token,
                    if_generation_match=0,
                    retry=self._retry_if_generation,
                    timeout=self._request_timeout,
                ),
                source_name,
                conflict=lambda: errors.ObjectAlreadyExistsError(object_name),
            )
            if token is None:
                return int(total)

    def read_object(self, object_name: str) -> tuple[bytes, str | None]:
        blob = self._blob(object_name)
        data: bytes = self._call(
            lambda: blob.download_as_bytes(retry=self._retry, timeout=self._request_timeout),
            object_name,
        )
        # The generation comes from the same response as the bytes, so they always match.
        if blob.generation is None:
            raise errors.StorageDriverError(
                f"gcs returned {object_name!r} without its generation; cannot update it safely"
            )
        return data, str(blob.generation)

    def write_object(
        self,
        data: bytes,
        object_name: str,
        *,
        if_match: str | None = None,
        if_absent: bool = False,
    ) -> None:
        generation = 0 if if_absent else _generation(if_match, object_name)
        retry = self._retry if generation is None else self._retry_if_generation
        blob = self._blob(object_name, self._chunk_size)
        self._call(
            lambda: blob.upload_from_string(
                data,
                content_type="application/octet-stream",
                if_generation_match=generation,
                retry=retry,
                timeout=self._request_timeout,
            ),
            object_name,
            conflict=lambda: errors.PreconditionFailedError(object_name),
        )

    # -- errors ---------------------------------------------------------------------------

    def _call(
        self,
        func: Callable[[], T],
        object_name: str | None = None,
        conflict: Callable[[], errors.StorageDriverError] | None = None,
    ) -> T:
        """``func()``, with SDK exceptions turned into modelkit-assets errors."""
        try:
            return func()
        except sdk.not_found() as exc:
            foreign = foreign_answer(exc)
            if foreign is not None:
                raise foreign from None
            error = self._not_found(object_name)
            cause: BaseException = exc
        except sdk.precondition_failed() as exc:
            if conflict is None:
                raise errors.StorageDriverError(
                    f"gcs refused an unconditional write of {object_name!r} (HTTP 412)"
                ) from exc
            raise conflict() from exc
        except Exception as exc:
            foreign = foreign_answer(exc)
            if foreign is not None:
                raise foreign from None
            translated = translate(exc, self.bucket)
            if translated is None:
                raise
            raise translated from exc
        raise error from cause

    def _not_found(self, object_name: str | None) -> errors.StorageDriverError:
        """What a 404 means: GCS says "not found" alike for a missing object and bucket."""
        if object_name is None or not self._call(self._bucket_exists):
            return errors.BucketDoesNotExistError(PROVIDER, self.bucket)
        return errors.ObjectDoesNotExistError(PROVIDER, self.bucket, object_name)

    def _bucket_exists(self) -> bool:
        if self._bucket_seen:
            return True
        bucket = self.client.bucket(self.bucket)
        try:
            exists = bool(bucket.exists(retry=self._retry, timeout=self._request_timeout))
        except sdk.forbidden():
            return True  # allowed to read objects but not bucket metadata: the bucket is there
        self._bucket_seen = exists
        return exists


def _generation(token: str | None, object_name: str) -> int | None:
    """The generation a version token stands for (tokens are generations, as strings)."""
    if token is None:
        return None
    try:
        generation = int(token)
    except ValueError:
        generation = -1
    if generation <= 0:
        raise errors.StorageDriverError(
            f"invalid gcs version token {token!r} for {object_name!r}: use read_object's token"
        )
    return generation


class _ReportingReader:
    """A binary file that tells a :class:`HighWater` how far GCS has received it.

    The SDK reads each piece of a resumable upload, sends it, and reads the next one only once
    GCS has acknowledged it: a read reports what the reads before it covered (the last piece
    is reported by the caller, once the upload is done). Reporting what was read would run a
    whole piece (16 MiB) ahead of the network.
    """

    def __init__(self, file: BinaryIO, sent: HighWater) -> None:
        self._file = file
        self._sent = sent
        self._read_up_to = file.tell()

    def read(self, size: int = -1) -> bytes:
        self._sent.reached(self._read_up_to)
        data = self._file.read(size)
        self._read_up_to = self._file.tell()
        return data

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        """A retry seeks back: what the next read reports starts from there."""
        position = self._file.seek(offset, whence)
        self._read_up_to = position
        return position

    def __getattr__(self, name: str) -> Any:  # seek, tell, name... as the file has them
        return getattr(self._file, name)
