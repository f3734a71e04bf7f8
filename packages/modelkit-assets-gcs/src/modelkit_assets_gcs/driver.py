"""The ``gcs`` driver: objects in a Google Cloud Storage bucket, through google-cloud-storage.

- One client per driver, built when the driver is (or on first use with ``lazy=True``); the SDK's
  client is shared by the core's worker threads.
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
from collections.abc import Callable, Iterator
from typing import Any, BinaryIO, ClassVar, Final, TypeVar

from google.api_core import exceptions as api
from google.cloud import storage
from google.cloud.storage.constants import _DEFAULT_TIMEOUT
from google.cloud.storage.retry import (
    DEFAULT_RETRY,
    ConditionalRetryPolicy,
    _should_retry,
    is_generation_specified,
)

from modelkit_assets import environment, errors
from modelkit_assets.drivers.base import StorageDriver
from modelkit_assets.hashing import digest_file
from modelkit_assets.meta import FileDigest
from modelkit_assets.progress import HighWater
from modelkit_assets.records import CONDITIONAL_WRITES, RANGED_READS
from modelkit_assets.retry import FIRST_BACKOFF_S, MAX_BACKOFF_S

from .client import CREDENTIALS_ENV, build_client
from .translate import PROVIDER, foreign_answer, translate

__all__ = ["DEFAULT_CHUNK_SIZE", "GCSStorageDriver"]

T = TypeVar("T")

#: Piece size of resumable uploads: memory used per upload, and bytes per request.
DEFAULT_CHUNK_SIZE: Final = 16 * 1024 * 1024
#: GCS wants resumable pieces in multiples of 256 KiB.
_CHUNK_QUANTUM: Final = 256 * 1024
#: Bytes per request of a ranged read: the SDK's public API answers a range whole, in memory.
_RANGE_REQUEST: Final = 1024 * 1024


class GCSStorageDriver(StorageDriver):
    """A Google Cloud Storage bucket.

    Settings (keyword arguments, else the environment):

    - ``credentials_path``: a service-account JSON (else ``GOOGLE_APPLICATION_CREDENTIALS``;
      unset: the machine's default credentials);
    - ``project``: the Google Cloud project (else the one of the credentials);
    - ``chunk_size``: bytes per resumable-upload request, a multiple of 256 KiB (16 MiB);
    - ``page_size``: objects per listing request (the server's default: 1000).

    ``client=`` takes a ready ``google.cloud.storage.Client`` instead. ``STORAGE_EMULATOR_HOST``
    works as in the SDK.
    """

    provider_name = PROVIDER
    capabilities: ClassVar[frozenset[str]] = frozenset({CONDITIONAL_WRITES, RANGED_READS})

    def __init__(
        self,
        bucket: str | None = None,
        *,
        client: storage.Client | None = None,
        timeout_s: float = 300.0,
        lazy: bool = False,
        credentials_path: str | None = None,
        project: str | None = None,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
        page_size: int | None = None,
    ) -> None:
        super().__init__(bucket, client=client, timeout_s=timeout_s, lazy=lazy)
        if chunk_size <= 0 or chunk_size % _CHUNK_QUANTUM:
            raise errors.ConfigurationError(
                f"gcs chunk_size must be a positive multiple of 256 KiB, not {chunk_size}"
            )
        if page_size is not None and page_size <= 0:
            raise errors.ConfigurationError(f"gcs page_size must be positive, not {page_size}")
        self._client_settings = (project, credentials_path, environment.env_str(CREDENTIALS_ENV))
        self._chunk_size = chunk_size
        self._page_size = page_size
        # The SDK's delays (1 s, doubled up to 60 s) would spend the whole budget on a few
        # broken bodies, leaving the core no time for its own retries: the core's are used.
        # A refused connection is not the SDK's to retry: the core retries it, for no longer
        # than its refused-connection budget (the CLI's few seconds).
        self._retry = (
            DEFAULT_RETRY.with_timeout(max(0.0, timeout_s))
            .with_delay(initial=FIRST_BACKOFF_S, maximum=MAX_BACKOFF_S, multiplier=2.0)
            .with_predicate(_retried_by_the_sdk)
        )
        self._retry_if_generation = ConditionalRetryPolicy(
            self._retry, is_generation_specified, ["query_params"]
        )
        # No single request waits longer than the whole budget (nor less than a second).
        self._request_timeout = max(1.0, min(float(_DEFAULT_TIMEOUT), timeout_s))
        self._client_lock = threading.Lock()
        self._bucket_seen = False
        self._client = client
        if client is None and not lazy:
            self._client = build_client(*self._client_settings)

    @property
    def client(self) -> storage.Client:
        """The driver's one SDK client, built on first use when the driver is lazy."""
        if self._client is None:
            with self._client_lock:
                if self._client is None:
                    self._client = build_client(*self._client_settings)
        return self._client

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
        the rest once the upload is done (a retry that seeks back counts nothing twice)."""
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
        except api.NotFound as exc:
            foreign = foreign_answer(exc)
            if foreign is not None:
                raise foreign from None
            error = self._not_found(object_name)
            cause: BaseException = exc
        except api.PreconditionFailed as exc:
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
        except api.Forbidden:
            return True  # allowed to read objects but not bucket metadata: the bucket is there
        self._bucket_seen = exists
        return exists


def _retried_by_the_sdk(exc: Exception) -> bool:
    """The SDK's own predicate, but for refused connections (see ``self._retry``)."""
    return bool(_should_retry(exc)) and not errors.is_connection_refused(exc)


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
