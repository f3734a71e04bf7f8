"""The engine: a driver's data path on one obstore store, many requests at once.

Many-file calls (:meth:`ObstoreEngine.download_many`, :meth:`ObstoreEngine.create_many`) run
as tasks of an asyncio loop that the caller's thread runs while it waits for results (see
:mod:`.loop`), with up to ``max_workers`` requests in flight (``MODELKIT_STORAGE_MAX_WORKERS``;
64 when unset, see :data:`DEFAULT_TASKS`). Results come back as each request finishes.
Single calls use obstore's blocking API, which releases the GIL while it waits; asyncio is
imported only by the first many-file call (15 ms, with ssl, of a process that fetches one
large file or a cached asset).

Every download is hashed as its bytes arrive and written as they come, a chunk at a time (at
most :data:`CHUNK` held per stream): a 1 GiB file never sits in memory. Objects from
:data:`RANGED_MIN` on come in parallel ranges, written at their offsets, then hashed from the
page cache. A download that fails leaves no file behind.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator, Sequence
from typing import Any, ClassVar, Final

import obstore

from modelkit_assets import errors
from modelkit_assets.hashing import digest_file, new_hasher
from modelkit_assets.meta import FileDigest

from .errors import (
    bucket_is_missing,
    foreign_answer,
    is_conflict,
    is_local,
    is_missing,
    status_of,
    translate,
)

#: Bytes per chunk of a streamed body (and the largest body read whole, in one piece).
CHUNK: Final = 1024 * 1024
#: Objects from this size on are downloaded in :data:`RANGE_STREAMS` parallel ranges of
#: :data:`RANGE_PART` bytes: on the 2-core bench machine, SeaweedFS serves 256 MiB in 4 streams
#: in 0.6 of the time of one GET (rclone's choice too).
RANGED_MIN: Final = 32 * 1024 * 1024
RANGE_PART: Final = 16 * 1024 * 1024
RANGE_STREAMS: Final = 4
_CLOEXEC: Final = getattr(os, "O_CLOEXEC", 0)
_WRITE_FLAGS: Final = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | _CLOEXEC | getattr(os, "O_BINARY", 0)
#: Requests in flight when ``MODELKIT_STORAGE_MAX_WORKERS`` is unset (the SDK's default is 16
#: threads; a task costs far less than a thread, and small requests mostly wait), and at most.
DEFAULT_TASKS: Final = 64
MAX_TASKS: Final = 256


class ObstoreEngine:
    """The data path of one driver on ``store`` (an obstore store of the driver's bucket).

    ``uploads`` is False when the SDK must write the objects (SSE-KMS, every GCS write): the
    engine then only reads. ``missing`` turns a 404 on an object into the driver's error (the
    object, or the bucket, is missing). ``token`` names the field of obstore's object metadata
    that :meth:`read_object` returns as the version token: the one the driver's conditional
    writes take (S3's ETag; GCS's generation, obstore's ``version``)."""

    name: Final = "obstore"
    #: The driver's default of transfers in flight while this engine moves its bytes, and of
    #: downloads (see :attr:`~modelkit_assets.drivers.base.StorageDriver.default_max_downloads`).
    default_max_workers: ClassVar[int] = DEFAULT_TASKS
    default_max_downloads: ClassVar[int] = DEFAULT_TASKS

    def __init__(
        self,
        store: Any,
        provider: str,
        bucket: str,
        *,
        uploads: bool = True,
        missing: Callable[[str], errors.StorageDriverError] | None = None,
        token: str = "e_tag",
    ) -> None:
        self.store = store
        self.provider = provider
        self.bucket = bucket
        self.uploads = uploads
        self._missing_hook = missing
        self._token = token
        self._bucket_seen = False

    def __repr__(self) -> str:
        return f"ObstoreEngine({self.provider}, bucket={self.bucket!r})"

    # -- what the engine takes -------------------------------------------------------------------

    _WRITES: ClassVar = frozenset({"create_many", "create_bytes", "write_object"})

    def handles(self, method: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> bool:
        return self.uploads or method not in self._WRITES

    # -- errors ----------------------------------------------------------------------------------

    def _error(self, exc: BaseException, object_name: str | None, action: str) -> BaseException:
        if isinstance(exc, errors.ModelkitAssetsError) or is_local(exc):
            return exc
        foreign = foreign_answer(exc, self.provider)
        if foreign is not None:
            return foreign
        if bucket_is_missing(exc):
            return errors.BucketDoesNotExistError(self.provider, self.bucket)
        if object_name is not None and is_missing(exc):
            return self.missing(object_name)
        if not isinstance(exc, Exception):
            return exc  # KeyboardInterrupt and the like go on as they are
        if isinstance(exc, ValueError):  # obstore refused an argument (a path it cannot parse)
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            what = f" of {object_name!r}" if object_name else ""
            return errors.StorageDriverError(f"{self.provider} {action}{what} refused: {first}")
        return translate(exc, self.provider, self.bucket, object_name, action)

    def missing(self, object_name: str) -> errors.StorageDriverError:
        """A 404 on an object: the object is missing, or the whole bucket."""
        if self._missing_hook is not None:
            try:
                return self._missing_hook(object_name)
            except errors.StorageDriverError as exc:  # the driver could not tell (unreachable)
                return exc
        if self._bucket_exists(object_name):
            return errors.ObjectDoesNotExistError(self.provider, self.bucket, object_name)
        return errors.BucketDoesNotExistError(self.provider, self.bucket)

    def _bucket_exists(self, object_name: str) -> bool:
        """Whether the bucket exists, asked by listing under the name of the object that was
        not found: that answers at once, where a listing from the bucket's root sends a page of
        up to 5000 names (on Azurite, with a container of a few thousand objects, a second of
        every push that created an asset)."""
        if self._bucket_seen:
            return True
        try:
            next(iter(obstore.list(self.store, prefix=object_name, chunk_size=1)), None)
        except Exception as exc:  # listing a missing bucket is a "generic" 404 (NoSuchBucket)
            foreign = foreign_answer(exc, self.provider)
            if foreign is not None:
                raise foreign from None
            if isinstance(exc, FileNotFoundError):
                return False
            # Without the right to list (403) the object was missing all the same.
            return not (status_of(exc) == 404 or "NoSuchBucket" in str(exc))
        self._bucket_seen = True
        return True

    # -- downloads -------------------------------------------------------------------------------

    def download_hashing(
        self, object_name: str, destination_path: str, algorithm: str
    ) -> FileDigest:
        try:
            response = obstore.get(self.store, object_name)
            return _write_hashing(
                response.stream(min_chunk_size=CHUNK), destination_path, algorithm
            )
        except BaseException as exc:
            _remove(destination_path)
            raise self._error(exc, object_name, "download") from None

    def read_range(self, object_name: str, start: int, end: int) -> Iterator[bytes | memoryview]:
        """The bytes ``[start, end)``, in chunks of at most :data:`CHUNK`: views of obstore's
        buffers, not copies."""
        if start >= end:
            return
        try:
            response = obstore.get(self.store, object_name, options={"range": (start, end)})
            for chunk in response.stream(min_chunk_size=CHUNK):
                view = memoryview(chunk)
                for offset in range(0, len(view), CHUNK):
                    yield view[offset : offset + CHUNK]
        except GeneratorExit:
            raise
        except BaseException as exc:
            raise self._error(exc, object_name, "ranged read") from None

    def download_many(
        self, jobs: Sequence[tuple[str, str]], algorithm: str, max_workers: int
    ) -> Iterator[tuple[int, FileDigest | BaseException]]:
        async def one(index: int, job: tuple[str, str]) -> FileDigest:
            object_name, path = job
            try:
                head = await self._first_chunk_async(object_name)
                if head is None:  # an empty object: no range of it can be served
                    response = await obstore.get_async(self.store, object_name)
                    return _write_whole(await response.bytes_async(), path, algorithm)
                if len(head) < CHUNK:  # the answer stopped where the object ends
                    return _write_whole(head, path, algorithm)
                # The rest from the head's last byte on, a range that exists even when the
                # object is exactly one chunk long (one starting past the end is an error).
                rest = await obstore.get_async(
                    self.store, object_name, options={"range": {"offset": CHUNK - 1}}
                )
                if rest.meta["size"] >= RANGED_MIN:  # a large file the core sent whole
                    whole = await obstore.get_async(self.store, object_name)
                    return await self._ranged_async(whole, object_name, path, algorithm)
                return await _write_hashing_async(
                    rest.stream(min_chunk_size=CHUNK), path, algorithm, first=head, skip=1
                )
            except BaseException:
                _remove(path)
                raise

        return self._run_many(jobs, one, max_workers, "download", lambda job: job[0])

    async def _first_chunk_async(self, object_name: str) -> Any:
        """The object's first :data:`CHUNK` bytes, or all of it if shorter, in one request and
        one hand-back from obstore's threads (a GET and then its body are two: 1000 files of
        10 KiB took 0.36 s that way against 0.29 s, on SeaweedFS); None if the object is empty
        (416: no byte of it can be served)."""
        try:
            return await obstore.get_range_async(self.store, object_name, start=0, end=CHUNK)
        except Exception as exc:
            if status_of(exc) == 416:
                return None
            raise

    async def _ranged_async(
        self, response: Any, object_name: str, path: str, algorithm: str
    ) -> FileDigest:
        """A large object in :data:`RANGE_STREAMS` parallel streams: the first part from the
        answer already open, the others as ranges pinned to its ETag (a 412 if the object
        changed meanwhile), each written at its offset; then hashed from the page cache by
        BLAKE3's threads (256 MiB: about 40 ms), off the loop."""
        import asyncio

        size, etag = response.meta["size"], response.meta.get("e_tag")
        options: dict[str, Any] = {"if_match": etag} if etag else {}
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | _CLOEXEC, 0o666)
        try:
            os.ftruncate(fd, size)
            slots = asyncio.Semaphore(RANGE_STREAMS - 1)

            async def first() -> None:
                written = 0
                async for chunk in response.stream(min_chunk_size=CHUNK):
                    view = memoryview(chunk)[: RANGE_PART - written]
                    os.pwrite(fd, view, written)
                    written += len(view)
                    if written >= RANGE_PART:
                        return  # the rest comes in ranges: this answer is dropped here

            async def part(start: int, end: int) -> None:
                async with slots:
                    answer = await obstore.get_async(
                        self.store,
                        object_name,
                        options={**options, "range": (start, end)},  # type: ignore[arg-type]
                    )
                    offset = start
                    async for chunk in answer.stream(min_chunk_size=CHUNK):
                        os.pwrite(fd, chunk, offset)
                        offset += len(chunk)
                    if offset != end:
                        raise errors.StorageUnavailableError(
                            self.provider, f"download of {object_name!r}: a range broke off"
                        )

            ranges = [(s, min(s + RANGE_PART, size)) for s in range(RANGE_PART, size, RANGE_PART)]
            await asyncio.gather(first(), *(part(s, e) for s, e in ranges))
        finally:
            os.close(fd)
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(None, digest_file, path, algorithm)

    # -- uploads ---------------------------------------------------------------------------------

    def create_many(
        self, jobs: Sequence[tuple[bytes, str, str]], max_workers: int
    ) -> Iterator[tuple[int, BaseException | None]]:
        async def one(index: int, job: tuple[bytes, str, str]) -> None:
            data, object_name, _ = job
            try:
                await obstore.put_async(self.store, object_name, data, mode="create")
            except Exception as exc:
                if is_conflict(exc):
                    raise errors.ObjectAlreadyExistsError(object_name) from None
                raise

        return self._run_many(jobs, one, max_workers, "upload", lambda job: job[1])

    def create_bytes(self, data: bytes, object_name: str) -> None:
        try:
            obstore.put(self.store, object_name, data, mode="create")
        except Exception as exc:
            if is_conflict(exc):
                raise errors.ObjectAlreadyExistsError(object_name) from None
            raise self._error(exc, object_name, "upload") from None

    # -- small objects: .meta, .versions ----------------------------------------------------------

    def read_object(self, object_name: str) -> tuple[bytes, str | None]:
        try:
            response = obstore.get(self.store, object_name)
            data, token = bytes(response.bytes()), response.meta.get(self._token)
        except Exception as exc:
            raise self._error(exc, object_name, "read") from None
        if token is None:  # as the SDK drivers: no token, no safe update
            raise errors.StorageDriverError(
                f"{self.provider} returned {object_name!r} without its {self._token}; "
                "cannot update it safely"
            )
        return data, str(token)

    def write_object(
        self,
        data: bytes,
        object_name: str,
        *,
        if_match: str | None = None,
        if_absent: bool = False,
    ) -> None:
        mode: Any = "overwrite"
        if if_absent:
            mode = "create"
        elif if_match is not None:
            mode = {"e_tag": if_match}
        try:
            obstore.put(self.store, object_name, data, mode=mode)
        except Exception as exc:
            # AWS answers If-Match on a missing object with 404, other stores with 412.
            if mode != "overwrite" and self._lost(exc, object_name):
                raise errors.PreconditionFailedError(object_name) from None
            raise self._error(exc, object_name, "write") from None

    def _lost(self, exc: BaseException, object_name: str) -> bool:
        """Whether a conditional write was refused for its condition (a 404 on a missing
        object counts, a 404 on a missing bucket does not)."""
        if is_conflict(exc):
            return True
        return is_missing(exc) and not bucket_is_missing(exc) and self._bucket_exists(object_name)

    def exists(self, object_name: str) -> bool:
        try:
            obstore.head(self.store, object_name)
        except FileNotFoundError as exc:
            error = self._error(exc, object_name, "existence check")
            if isinstance(error, errors.ObjectDoesNotExistError):
                return False
            raise error from None
        except Exception as exc:
            raise self._error(exc, object_name, "existence check") from None
        return True

    def iterate_objects(self, prefix: str | None = None) -> Iterator[str]:
        """Names starting with ``prefix`` (a string prefix: obstore lists by folder, so the
        folder of ``prefix`` is listed and the names filtered)."""
        prefix = prefix or ""
        folder = prefix.rsplit("/", 1)[0] if "/" in prefix else None
        try:
            for batch in obstore.list(self.store, prefix=folder):
                for item in batch:
                    path = item["path"]
                    if path.startswith(prefix):
                        yield path
        except GeneratorExit:
            raise
        except Exception as exc:
            if is_missing(exc):
                raise errors.BucketDoesNotExistError(self.provider, self.bucket) from None
            raise self._error(exc, None, "listing") from None

    def delete_object(self, object_name: str) -> None:
        try:
            obstore.delete(self.store, object_name)
        except Exception as exc:
            if is_missing(exc) and not bucket_is_missing(exc):
                return
            raise self._error(exc, object_name, "delete") from None

    # -- many requests at once -------------------------------------------------------------------

    def _run_many(
        self,
        jobs: Sequence[Any],
        one: Callable[[int, Any], Any],
        max_workers: int,
        action: str,
        name_of: Callable[[Any], str],
    ) -> Iterator[tuple[int, Any]]:
        """``(index, result or error)`` of ``one(index, job)`` for every job, as each
        finishes, with up to ``max_workers`` in flight; the tasks are cancelled if the caller
        stops early. Where their loop runs is :func:`~.loop.run_workers`' business."""
        if not jobs:
            return
        import asyncio  # here, not at the top: 15 ms of a fetch that needs no loop

        from .loop import run_workers

        pending = iter(enumerate(jobs))
        limit = max(1, min(MAX_TASKS, max_workers, len(jobs)))

        async def worker(put: Callable[[tuple[int, Any]], None]) -> None:
            for index, job in pending:
                try:
                    outcome = await one(index, job)
                except (asyncio.CancelledError, KeyboardInterrupt, SystemExit):
                    raise
                except BaseException as exc:
                    outcome = self._error(exc, name_of(job), action)
                put((index, outcome))

        yield from run_workers(worker, limit, len(jobs))


def _write_whole(data: Any, path: str, algorithm: str) -> FileDigest:
    """A small body, hashed and written with bare system calls (no file object: a fifth of
    the loop's time for 1000 files of 10 KiB went into ``open()``)."""
    hasher = new_hasher(algorithm)
    hasher.update(data)
    view = memoryview(data)
    fd = os.open(path, _WRITE_FLAGS, 0o666)
    try:
        while view:
            view = view[os.write(fd, view) :]
    finally:
        os.close(fd)
    return FileDigest(len(data), hasher.hexdigest(), algorithm)


def _write_hashing(chunks: Any, path: str, algorithm: str) -> FileDigest:
    hasher, size = new_hasher(algorithm), 0
    with open(path, "wb") as f:
        for chunk in chunks:
            f.write(chunk)
            hasher.update(chunk)
            size += len(chunk)
    return FileDigest(size, hasher.hexdigest(), algorithm)


async def _write_hashing_async(
    chunks: Any, path: str, algorithm: str, first: Any = b"", skip: int = 0
) -> FileDigest:
    """``first``, then the ``chunks`` as they arrive but for their first ``skip`` bytes,
    written and hashed."""
    hasher, size = new_hasher(algorithm), len(first)
    hasher.update(first)
    with open(path, "wb") as f:
        f.write(first)
        async for whole in chunks:
            chunk = memoryview(whole)[skip:]
            skip -= len(whole) - len(chunk)
            f.write(chunk)
            hasher.update(chunk)
            size += len(chunk)
    return FileDigest(size, hasher.hexdigest(), algorithm)


def _remove(path: str) -> None:
    with contextlib.suppress(OSError):
        os.unlink(path)
