"""The ``s3`` driver: one boto3 client (one connection pool) per driver, shared by all threads.

A download starts with one GET of the object's first 8 MiB, which is all a small object needs
(assets are mostly small files: one request, and little Python per file). A larger object's
answer tells its size; the rest comes in parallel 8 MiB ranges pinned to the first answer's ETag,
each written at its offset (:mod:`modelkit_assets.ranged`, faster than s3transfer's downloader,
whose single writer thread was the bottleneck). Plain uploads go through s3transfer's
``TransferManager``.

Conditional writes are atomic on the server: create-only is ``PutObject`` (or
``CompleteMultipartUpload``, for large files) with ``If-None-Match: *``, compare-and-swap is
``PutObject`` with ``If-Match: <ETag>``.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, ClassVar, Final, TypeVar

import attrs

from modelkit_assets import errors
from modelkit_assets.drivers.base import StorageDriver
from modelkit_assets.drivers.settings import ClientConfiguration
from modelkit_assets.engines import delegating, engine_of
from modelkit_assets.hashing import digest_file, new_hasher
from modelkit_assets.meta import FileDigest
from modelkit_assets.progress import HighWater, summed_into
from modelkit_assets.ranged import download_in_ranges
from modelkit_assets.records import CONDITIONAL_WRITES, RANGED_READS, SERVER_SIDE_COPY

from .copy import copy_if_absent
from .errors import PROVIDER, error_code, http_status, is_missing, is_precondition_failed, translate
from .errors import redact_url as _redact_url
from .multipart import MULTIPART_THRESHOLD, UploadLostError, upload_if_absent
from .sdk import body_errors, client_error, sdk_errors
from .settings import S3Settings, S3StorageDriverSettings

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from s3transfer.manager import TransferManager

T = TypeVar("T")

#: Keys of :attr:`S3StorageDriver.client_configuration` whose values are secret.
_SECRET_KEYS: Final = ("aws_access_key_id", "aws_secret_access_key", "aws_session_token")
#: The time budget of a client built from a configuration that does not say.
DEFAULT_TIMEOUT_S: Final = 300.0

#: Part uploads and ranged downloads of large objects in flight at once, per driver.
_PART_WORKERS: Final = 8
#: Requests in flight at once for the transfer manager's plain uploads, per driver.
_TRANSFER_WORKERS: Final = 16
#: Bytes per ranged GET; the first GET of every download asks for this much.
_DOWNLOAD_PART: Final = MULTIPART_THRESHOLD
#: Bytes held per download request in flight (memory: one chunk per part worker).
_STREAM_CHUNK: Final = 1024 * 1024
#: A copy whose source changes while it is made is measured and made again, this many times.
_COPY_ATTEMPTS: Final = 3
#: A GET whose body breaks off is sent again, this many times in all.
_GET_ATTEMPTS: Final = 3


#: What the obstore engine (the ``fast`` extra) takes when installed; see modelkit_assets.engines.
_ENGINE_METHODS: Final = (
    "download_many", "download_hashing", "read_range", "create_many", "create_bytes",
    "read_object", "write_object", "exists", "iterate_objects", "delete_object",
)  # fmt: skip


@delegating(*_ENGINE_METHODS)
class S3StorageDriver(StorageDriver):
    """Objects in an S3 bucket (AWS, or any S3-compatible store through ``endpoint_url``).

    Settings are keyword arguments named as for ``boto3.client`` (``aws_access_key_id``,
    ``aws_secret_access_key``, ``aws_session_token``, ``region_name``, ``endpoint_url``), plus
    ``aws_kms_key_id``, ``profile_name`` and ``retry_mode``; see :mod:`.settings` for the
    environment variables they fall back to. ``client=`` takes a ready boto3 S3 client, used as
    it is (its own retry and timeout configuration then applies).
    """

    provider_name = PROVIDER
    #: S3 keys are at most 1024 bytes of UTF-8.
    max_object_name_bytes = 1024
    capabilities: ClassVar[frozenset[str]] = frozenset(
        {CONDITIONAL_WRITES, RANGED_READS, SERVER_SIDE_COPY}
    )
    settings_class = S3StorageDriverSettings

    def __init__(
        self,
        bucket: str | S3StorageDriverSettings | Mapping[str, Any] | None = None,
        client: Any = None,
        *,
        timeout_s: float = 300.0,
        lazy: bool | None = None,
        settings: S3StorageDriverSettings | Mapping[str, Any] | None = None,
        **keywords: Any,
    ) -> None:
        """``S3StorageDriver(bucket, region_name=...)``, or modelkit's
        ``S3StorageDriver(settings, client)`` (modelkit's field names are taken as keywords
        too: ``aws_default_region``, ``s3_endpoint``)."""
        name, is_lazy, options = self.resolve_settings(bucket, settings, lazy, keywords)
        super().__init__(name, client, timeout_s=timeout_s, lazy=is_lazy)
        self.settings = S3Settings.from_kwargs(options)
        self._client: S3Client | None = client
        self._transfer: TransferManager | None = None
        self._parts: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()
        self._bucket_seen = False
        if self._client is None and not is_lazy and engine_of(self) is None:
            self._client = self.build_client(self.client_configuration)

    def __repr__(self) -> str:
        endpoint = self.settings.endpoint_url
        where = f", endpoint_url={_redact_url(endpoint)!r}" if endpoint else ""
        return f"{type(self).__name__}(bucket={self.bucket!r}{where})"

    # -- the client and its helpers, built once (on first use when lazy) -------------------------

    #: Pickling leaves out the client, the transfer threads and the lock; the unpickled driver
    #: builds its own client from its settings on first use (a client given as ``client=``
    #: does not travel).
    rebuilt_after_unpickling: ClassVar[Mapping[str, Callable[[], Any]]] = {
        "_client": lambda: None,
        "_transfer": lambda: None,
        "_parts": lambda: None,
        "_lock": threading.Lock,
    }

    @property
    def client(self) -> S3Client:
        """The boto3 S3 client every call of this driver uses (modelkit's ``driver.client``),
        built by :meth:`build_client` on first use when the driver is lazy."""
        if self._client is None:
            with self._lock:
                if self._client is None:
                    self._client = self.build_client(self.client_configuration)
        return self._client

    @property
    def client_configuration(self) -> ClientConfiguration:
        """modelkit's ``client_configuration``: what :meth:`build_client` takes (boto3's
        names, plus this driver's profile, retry mode and time budget); secrets are masked in
        its ``repr()``."""
        values = attrs.asdict(self.settings)
        values.pop("aws_kms_key_id")  # an upload argument, not the client's
        return ClientConfiguration({**values, "timeout_s": self.timeout_s}, _SECRET_KEYS)

    @staticmethod
    def build_client(client_configuration: Mapping[str, Any]) -> S3Client:
        """modelkit's ``S3StorageDriver.build_client``: a boto3 S3 client from
        ``client_configuration`` (``endpoint_url``, ``aws_access_key_id``,
        ``aws_secret_access_key``, ``region_name``, ``aws_session_token``, and optionally
        ``profile_name``, ``retry_mode``, ``timeout_s``), with this driver's retries and
        timeouts. A subclass may override it: the driver builds every client through it."""
        options = dict(client_configuration)
        timeout_s = float(options.pop("timeout_s", DEFAULT_TIMEOUT_S))
        return S3Settings.from_kwargs(options).make_client(timeout_s)

    @property
    def aws_kms_key_id(self) -> str | None:
        """modelkit's attribute: the KMS key uploads are encrypted with, if any."""
        return self.settings.aws_kms_key_id

    @property
    def transfer(self) -> TransferManager:
        """The transfer manager for plain uploads, on :attr:`client`."""
        if self._transfer is None:
            client = self.client
            with self._lock:
                if self._transfer is None:
                    from boto3.s3.transfer import TransferConfig, create_transfer_manager

                    config = TransferConfig(
                        multipart_threshold=MULTIPART_THRESHOLD,
                        max_concurrency=_TRANSFER_WORKERS,
                        preferred_transfer_client="classic",
                    )
                    self._transfer = create_transfer_manager(client, config)
        return self._transfer

    def _part_pool(self) -> ThreadPoolExecutor:
        if self._parts is None:
            with self._lock:
                if self._parts is None:
                    self._parts = ThreadPoolExecutor(_PART_WORKERS, "modelkit-s3-part")
        return self._parts

    def close(self) -> None:
        """Stop the transfer threads (the driver can still be used: they restart on demand)."""
        with self._lock:
            transfer, self._transfer = self._transfer, None
            parts, self._parts = self._parts, None
        if transfer is not None:
            transfer.shutdown()
        if parts is not None:
            parts.shutdown()

    def _call(self, action: str, object_name: str | None, call: Callable[[], T]) -> T:
        """Run one SDK call, turning its exceptions into modelkit-assets errors."""
        try:
            return call()
        except sdk_errors() as exc:
            if object_name is not None and is_missing(exc):
                raise self._missing(object_name) from None
            raise translate(exc, self.bucket, object_name, action) from None

    def _missing(self, object_name: str) -> errors.StorageDriverError:
        """A 404 on an object: HEAD answers do not say whether the object or the bucket."""
        if self._bucket_exists():
            return errors.ObjectDoesNotExistError(PROVIDER, self.bucket, object_name)
        return errors.BucketDoesNotExistError(PROVIDER, self.bucket)

    def _bucket_exists(self) -> bool:
        if self._bucket_seen:
            return True
        try:
            self.client.head_bucket(Bucket=self.bucket)
        except sdk_errors() as exc:
            # Without s3:ListBucket the answer is 403: the object was missing all the same.
            return not (http_status(exc) == 404 or error_code(exc) == "NoSuchBucket")
        self._bucket_seen = True
        return True

    # -- the driver interface --------------------------------------------------------------------

    def iterate_objects(self, prefix: str | None = None) -> Iterator[str]:
        paginator = self.client.get_paginator("list_objects_v2")
        pages = paginator.paginate(Bucket=self.bucket, Prefix=prefix or "")
        try:
            for page in pages:
                for item in page.get("Contents", ()):
                    yield item["Key"]
        except sdk_errors() as exc:
            raise translate(exc, self.bucket, None, "listing") from None

    def upload_object(self, file_path: str, object_name: str) -> None:
        args = self.settings.upload_args
        self._call(
            "upload",
            object_name,
            lambda: self.transfer.upload(file_path, self.bucket, object_name, args).result(),
        )

    def download_object(self, object_name: str, destination_path: str) -> None:
        self._download_or_clean(object_name, destination_path)

    def download_hashing(
        self, object_name: str, destination_path: str, algorithm: str
    ) -> FileDigest:
        digest = self._download_or_clean(object_name, destination_path, algorithm)
        # A small object was hashed as it arrived; a large one, written in ranges, is read again
        # (from the page cache, by BLAKE3's threads: 256 MiB in 35 ms).
        return digest if digest is not None else digest_file(destination_path, algorithm)

    def _download_or_clean(
        self, object_name: str, destination_path: str, algorithm: str | None = None
    ) -> FileDigest | None:
        try:
            return self._call(
                "download",
                object_name,
                lambda: self._download(object_name, destination_path, algorithm),
            )
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(destination_path)  # never leave half an object behind
            raise

    def _download(
        self, object_name: str, destination_path: str, algorithm: str | None
    ) -> FileDigest | None:
        for attempt in range(1, _GET_ATTEMPTS + 1):
            response = self._get_first_part(object_name)
            body, size = response["Body"], _object_size(response)
            if size > response["ContentLength"]:
                with contextlib.closing(body):
                    download_in_ranges(
                        destination_path,
                        size,
                        self._range_reader(object_name, response.get("ETag")),
                        self._part_pool(),
                        part_size=_DOWNLOAD_PART,
                        first_part=body.iter_chunks(_STREAM_CHUNK),
                        retry_on=body_errors(),
                        attempts=_GET_ATTEMPTS,
                    )
                return None
            hasher, size = new_hasher(algorithm) if algorithm else None, 0
            try:
                with contextlib.closing(body), open(destination_path, "wb") as f:
                    for chunk in body.iter_chunks(_STREAM_CHUNK):
                        f.write(chunk)
                        if hasher:
                            hasher.update(chunk)
                        size += len(chunk)
                if hasher is None or algorithm is None:
                    return None
                return FileDigest(size, hasher.hexdigest(), algorithm)
            except body_errors():
                if attempt == _GET_ATTEMPTS:
                    raise
        raise AssertionError("unreachable")

    def _get_first_part(self, object_name: str) -> Any:
        """The object's first :data:`_DOWNLOAD_PART` bytes (all of a small object)."""
        try:
            return self.client.get_object(
                Bucket=self.bucket, Key=object_name, Range=f"bytes=0-{_DOWNLOAD_PART - 1}"
            )
        except client_error() as exc:
            if http_status(exc) != 416:
                raise
        # 416: an empty object has no byte 0 to start a range from.
        return self.client.get_object(Bucket=self.bucket, Key=object_name)

    def _range_reader(
        self, object_name: str, etag: str | None
    ) -> Callable[[int, int], Iterator[bytes]]:
        """Reads ``[start, end)`` of the object; refused (412) if it is no longer the one whose
        first part was read."""
        condition = {"IfMatch": etag} if etag else {}

        def read(start: int, end: int) -> Iterator[bytes]:
            response = self.client.get_object(
                Bucket=self.bucket,
                Key=object_name,
                Range=f"bytes={start}-{end - 1}",
                **condition,  # type: ignore[arg-type]
            )
            with contextlib.closing(response["Body"]) as body:
                yield from body.iter_chunks(_STREAM_CHUNK)

        return read

    def read_range(self, object_name: str, start: int, end: int) -> Iterator[bytes]:
        """One ranged GET, streamed in chunks of 1 MiB; a body that breaks off is a
        StorageUnavailableError (the core asks again from the first byte it did not get)."""
        if start >= end:
            return
        response = self._call(
            "ranged download",
            object_name,
            lambda: self.client.get_object(
                Bucket=self.bucket, Key=object_name, Range=f"bytes={start}-{end - 1}"
            ),
        )
        body = response["Body"]
        try:
            yield from body.iter_chunks(_STREAM_CHUNK)
        except sdk_errors() as exc:
            raise translate(exc, self.bucket, object_name, "ranged download") from None
        finally:
            body.close()

    def delete_object(self, object_name: str) -> None:
        self._call(
            "delete",
            object_name,
            lambda: self.client.delete_object(Bucket=self.bucket, Key=object_name),
        )

    def exists(self, object_name: str) -> bool:
        try:
            self.client.head_object(Bucket=self.bucket, Key=object_name)
        except sdk_errors() as exc:
            if not is_missing(exc):
                raise translate(exc, self.bucket, object_name, "existence check") from None
            if not self._bucket_exists():
                raise errors.BucketDoesNotExistError(PROVIDER, self.bucket) from None
            return False
        return True

    def get_object_uri(self, object_name: str, sub_part: str | None = None) -> str:
        return self.uri_for("s3", object_name, sub_part)

    # -- conditional writes ------------------------------------------------------------------------

    def create_object(self, file_path: str, object_name: str) -> None:
        self.create_reporting(file_path, object_name, None)

    def create_reporting(
        self, file_path: str, object_name: str, on_bytes: Callable[[int], None] | None
    ) -> None:
        """Large files report each part as S3 acknowledges it; small ones, one request, at
        the end."""
        size = os.path.getsize(file_path)
        with self._creating(object_name):
            if size < MULTIPART_THRESHOLD:
                with open(file_path, "rb") as body:
                    self._put(object_name, body, IfNoneMatch="*")
            else:
                self._create_large(file_path, size, object_name, on_bytes)
                return
        if on_bytes:
            on_bytes(size)

    def create_bytes(self, data: bytes, object_name: str) -> None:
        """One PUT, create-only."""
        with self._creating(object_name):
            self._put(object_name, data, IfNoneMatch="*")

    @contextlib.contextmanager
    def _creating(self, object_name: str) -> Iterator[None]:
        """Create-only writes: a 412 means the object exists; other SDK errors are
        translated."""
        try:
            yield
        except sdk_errors() as exc:
            if is_precondition_failed(exc):
                raise errors.ObjectAlreadyExistsError(object_name) from None
            raise translate(exc, self.bucket, object_name, "upload") from None

    def _create_large(
        self,
        file_path: str,
        size: int,
        object_name: str,
        on_bytes: Callable[[int], None] | None,
    ) -> None:
        # Resumed pushes find their large files already there: skip re-sending them.
        with contextlib.suppress(client_error()):
            self.client.head_object(Bucket=self.bucket, Key=object_name)
            raise errors.ObjectAlreadyExistsError(object_name)
        # A killed push left its upload open: it is adopted, and only the parts missing (or
        # no longer matching the file) are sent. Lost to another process (which completed or
        # aborted it), the upload either made the object, or starts afresh once.
        sent = HighWater(on_bytes) if on_bytes else None  # a fresh start counts nothing twice
        for resume in (True, False):
            try:
                upload_if_absent(
                    self.client,
                    self._part_pool(),
                    file_path,
                    size,
                    self.bucket,
                    object_name,
                    self.settings.upload_args,
                    on_part=summed_into(sent) if sent else None,
                    resume=resume,
                )
                return
            except UploadLostError:
                if self.exists(object_name):
                    raise errors.ObjectAlreadyExistsError(object_name) from None
        raise errors.StorageUnavailableError(
            PROVIDER, f"the multipart upload of {object_name!r} was aborted by another client"
        )

    def copy_object(self, source_name: str, object_name: str) -> int:
        """``CopyObject`` (``UploadPartCopy`` past 5 GiB), create-only, pinned to the source's
        ETag, with the driver's SSE-KMS settings (see :mod:`.copy`). A 412 is either the
        target, which exists, or the source, which changed since it was measured: then it is
        measured and copied again."""
        for _ in range(_COPY_ATTEMPTS):
            source = self._call(
                "copy",
                source_name,
                lambda: self.client.head_object(Bucket=self.bucket, Key=source_name),
            )
            if self.exists(object_name):
                raise errors.ObjectAlreadyExistsError(object_name)
            try:
                copy_if_absent(
                    self.client,
                    self._part_pool(),
                    self.bucket,
                    source_name,
                    source["ETag"],
                    source["ContentLength"],
                    object_name,
                    self.settings.upload_args,
                )
            except sdk_errors() as exc:
                if is_missing(exc):
                    raise self._missing(source_name) from None
                if not is_precondition_failed(exc):
                    raise translate(exc, self.bucket, object_name, "copy") from None
                if self.exists(object_name):
                    raise errors.ObjectAlreadyExistsError(object_name) from None
                continue
            return source["ContentLength"]
        raise errors.PreconditionFailedError(source_name)

    def read_object(self, object_name: str) -> tuple[bytes, str | None]:
        def get() -> tuple[bytes, str | None]:
            response = self.client.get_object(Bucket=self.bucket, Key=object_name)
            with contextlib.closing(response["Body"]):
                return response["Body"].read(), response.get("ETag")

        return self._call("read", object_name, get)

    def write_object(
        self,
        data: bytes,
        object_name: str,
        *,
        if_match: str | None = None,
        if_absent: bool = False,
    ) -> None:
        condition = {"IfNoneMatch": "*"} if if_absent else {}
        if if_match is not None and not if_absent:
            condition = {"IfMatch": if_match}
        try:
            self._put(object_name, data, **condition)
        except sdk_errors() as exc:
            # AWS answers If-Match on a missing object with 404 NoSuchKey, others with 412.
            lost = is_precondition_failed(exc) or (bool(condition) and is_missing(exc))
            if lost and error_code(exc) != "NoSuchBucket":
                raise errors.PreconditionFailedError(object_name) from None
            raise translate(exc, self.bucket, object_name, "write") from None

    def _put(self, object_name: str, body: Any, **condition: str) -> None:
        self.client.put_object(
            Bucket=self.bucket,
            Key=object_name,
            Body=body,
            **self.settings.upload_args,  # type: ignore[arg-type]
            **condition,  # type: ignore[arg-type]
        )


def _object_size(response: Any) -> int:
    """The whole object's size, from a GET answer: ``Content-Range: bytes 0-N/SIZE`` for a
    range (a store that ignores ranges answers with the whole object)."""
    content_range = response.get("ContentRange")
    if content_range and "/" in content_range:
        with contextlib.suppress(ValueError):
            return int(content_range.rsplit("/", 1)[1])
    return int(response["ContentLength"])
