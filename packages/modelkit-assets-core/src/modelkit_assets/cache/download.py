"""Downloading one version into the cache: resumed, reused, checked, then published.

:func:`fetch_version` brings ``name:version`` into ``ASSETS_DIR/{name}/.{version}.partial``
(the caller holds the asset's download lock), then publishes it with one rename:

1. What an interrupted download left there (:mod:`.partial`) is kept if it belongs to the same
   ``.meta``: each file of the right size is hashed and kept if it matches its digest (a mismatch
   discards it); a large file fetched in ranges keeps the ranges its log lists, and only the
   others are asked for. A ``.meta`` written by modelkit records no digests: such a version is
   never resumed, always fetched from scratch.
2. Files whose size and digest match a complete cached file are cloned from it (:mod:`.reuse`).
3. The rest is downloaded: files larger than :data:`RANGED_MIN` in parallel byte ranges when the
   driver reads ranges (capability ``ranged_reads``), each range logged as it lands; all the
   others in one :meth:`~modelkit_assets.drivers.base.StorageDriver.download_many` call. A
   transient fault (StorageUnavailableError) is retried within the storage timeout, each attempt
   going on from what the previous ones left.
4. Every file has been checked against the ``.meta``'s size and digest; a file that fails twice
   in a row when downloaded afresh is an AssetIntegrityError (once may be a corruption in
   transit). The version's record is written (:mod:`.records`), then it is published.

A failure keeps the partial download for the next attempt, whichever process makes it, except
when the store cannot serve the version as its ``.meta`` says (an object is missing or fails its
check, access is refused: any error of the store but StorageUnavailableError): then nothing is
kept. Progress counts the bytes actually received.
"""

from __future__ import annotations

import contextlib
import functools
import os
import threading
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, Final

import attrs

from .. import errors
from ..background import periodically
from ..hashing import SMALL, digest_file
from ..meta import DEFAULT_ALGORITHM, AssetMeta, FileDigest
from ..paths import SUCCESS_MARKER, safe_join
from ..progress import NO_PROGRESS, HighWater, NoProgress, TransferProgress
from ..ranged import DEFAULT_PART_SIZE, fill_ranges, missing_ranges, split_ranges
from ..records import RANGED_READS
from .layout import AssetsCache, clean_stale_downloads, remove
from .partial import PARTIALS, PartialLog
from .records import write_record
from .reuse import ReuseIndex, clone_verified

if TYPE_CHECKING:
    from ..store import StorageProvider

#: Files larger than this are fetched in ranges of :data:`PART_SIZE` by drivers that can.
RANGED_MIN: Final = DEFAULT_PART_SIZE
PART_SIZE: Final = DEFAULT_PART_SIZE
#: Ranges in flight at once (memory: one chunk of at most 1 MiB each).
RANGE_WORKERS: Final = 8
#: The largest range asked for in one request.
MAX_PART_SIZE: Final = 8 * DEFAULT_PART_SIZE
#: Tries of a range whose body breaks off, inside one attempt of the whole download.
_RANGE_ATTEMPTS: Final = 3
_POLL_S: Final = 0.2


def part_size_for(size: int) -> int:
    """The range size for a file of ``size`` bytes: about one range per stream, in multiples of
    :data:`PART_SIZE`, at most :data:`MAX_PART_SIZE`. Fewer, larger requests cost less per
    byte: on SeaweedFS a 256 MiB fetch took 0.25 s in 8 ranges of 32 MiB against 0.29 s in 32
    of 8 MiB. A resumed download still asks only for the bytes missing (every chunk written is
    logged), whatever the range size."""
    per_stream = -(-size // RANGE_WORKERS)
    rounded = -(-per_stream // PART_SIZE) * PART_SIZE
    return max(PART_SIZE, min(MAX_PART_SIZE, rounded))


@attrs.frozen
class FetchResult:
    """What a download did."""

    meta: AssetMeta
    #: Size and digest of every file, as checked ("" for a file asset).
    files: Mapping[str, FileDigest]
    #: Bytes received from the store.
    received_bytes: int = 0
    #: Files and bytes kept from an earlier, interrupted download (checked again).
    resumed_files: int = 0
    resumed_bytes: int = 0
    #: Files and bytes cloned from other cached versions instead of downloaded.
    reused_files: int = 0
    reused_bytes: int = 0

    def counts(self) -> dict[str, int]:
        """The figures that ``fetch_asset(..., return_info=True)`` reports."""
        return {
            "received_bytes": self.received_bytes,
            "resumed_files": self.resumed_files,
            "resumed_bytes": self.resumed_bytes,
            "reused_files": self.reused_files,
            "reused_bytes": self.reused_bytes,
        }


def fetch_version(
    provider: StorageProvider,
    cache: AssetsCache,
    name: str,
    version: str,
    *,
    progress: TransferProgress = NO_PROGRESS,
    reuse: bool = True,
) -> FetchResult:
    """Download ``name:version`` into the cache and publish it (see the module's docstring);
    call with ``name``'s download lock held. ``reuse=False`` downloads every file."""
    meta = provider.read_meta(name, version)
    if meta.is_directory and SUCCESS_MARKER in (*meta.contents, *meta.digests):  # by another tool
        raise errors.MarkerNameError(f"{name}:{version}", pushing=False)
    staging = cache.partial_path(name, version)
    os.makedirs(os.path.dirname(staging), exist_ok=True)
    log = None
    if meta.digests:
        log = PartialLog(cache.internal_path(PARTIALS, name, version, ".log"), meta)
    if log is None or not log.resumed:
        remove(staging)
    index = ReuseIndex(cache, meta.digests.values(), name) if reuse and meta.digests else None
    try:
        result = _Download(provider, name, version, meta, staging, log, progress, index).run()
    except BaseException as exc:
        if log is None or not _resumable_after(exc):
            remove(staging)
            if log is not None:
                log.remove()
        else:
            log.close()
        raise
    write_record(cache, name, version, meta, result.files, provider.get_object_uri(name, version))
    cache.publish(staging, name, version)
    if log is not None:
        log.remove()
    return result


def _resumable_after(exc: BaseException) -> bool:
    """Whether a download that failed with ``exc`` keeps its partial state for the next one:
    after a kill, an interruption, a network that stayed down past the retries or a local
    fault (a full disk). Any other error of the store (an object missing or damaged, access
    refused, an SDK's checksum failure) says it cannot serve the version as its ``.meta``
    says: nothing is kept."""
    if isinstance(exc, errors.StorageUnavailableError):
        return True
    return not isinstance(exc, errors.ModelkitAssetsError)


def download_to(
    provider: StorageProvider,
    name: str,
    version: str,
    target: str,
    meta: AssetMeta | None = None,
    progress: TransferProgress = NO_PROGRESS,
) -> AssetMeta:
    """Download a version to ``target`` (a new file, or a new directory), checking every file
    against the sizes and digests of its meta; nothing is kept for a later call, reused from
    the cache or recorded (a transient fault still resumes within the storage timeout)."""
    meta = meta or provider.read_meta(name, version)
    log = PartialLog(None, meta) if meta.digests else None  # resumes within this call only
    _Download(provider, name, version, meta, target, log, progress, None).run()
    return meta


def download(
    provider: StorageProvider, name: str, version: str, destination: str
) -> dict[str, Any]:
    """Download ``name:version`` to ``destination/name/version`` (modelkit's
    ``StorageProvider.download``), resumably, under the asset's download lock."""
    cache = AssetsCache(destination)
    with cache.download_lock(name):
        clean_stale_downloads(cache, name)
        result = fetch_version(provider, cache, name, version)
    return {"path": cache.asset_path(name, version), "meta": result.meta.to_public()}


@attrs.define
class _Part:
    """One file of the version being downloaded."""

    part: str
    object_name: str
    path: str
    expected: FileDigest | None
    #: Size and digest of the file in place, once checked.
    digest: FileDigest | None = None
    #: Bytes of it already in place, from an earlier attempt (ranged files).
    kept: int = 0
    #: Downloads of it in a row that failed their check.
    mismatches: int = 0

    @property
    def what(self) -> str:
        return f"[{self.part}]" if self.part else ""


class _Download:
    """One version's download into ``target`` (the partial folder or file)."""

    def __init__(
        self,
        provider: StorageProvider,
        name: str,
        version: str,
        meta: AssetMeta,
        target: str,
        log: PartialLog | None,
        progress: TransferProgress,
        reuse: ReuseIndex | None,
    ) -> None:
        self.provider, self.driver = provider, provider.driver
        self.name, self.version, self.meta, self.target = name, version, meta, target
        self.log, self.progress, self.reuse = log, progress, reuse
        base = provider.get_object_name(name, version)
        self.parts = [
            _Part(
                part,
                f"{base}/{part}" if part else base,
                safe_join(target, part, "the meta") if part else target,
                meta.digests.get(part),
            )
            for part in (meta.contents if meta.is_directory else ("",))
        ]
        self.ranged_reads = self.driver.supports(RANGED_READS) and self.driver._in_charge(
            "read_range", "download_object"
        )
        self._lock = threading.Lock()
        self._pool: ThreadPoolExecutor | None = None
        self.received = self.resumed_files = self.resumed_bytes = 0
        self.reused_files = self.reused_bytes = 0

    def run(self) -> FetchResult:
        self._make_folders()
        if self.log is not None and self.log.resumed:
            self._keep_what_checks()
        if self.reuse is not None:
            self._reuse()
        pending = [p for p in self.parts if p.digest is None]
        to_receive = sum(p.expected.size - p.kept for p in pending if p.expected is not None)
        self.progress.start(f"fetch {self.name}:{self.version}", to_receive, len(self.parts))
        if len(pending) < len(self.parts):
            self.progress.advance(files=len(self.parts) - len(pending))
        try:
            self.provider.retry(self._attempt, f"{self.name}:{self.version}")
        finally:
            self.progress.finish()
            if self._pool is not None:
                self._pool.shutdown(cancel_futures=True)
        files = {p.part: p.digest for p in self.parts if p.digest is not None}
        return FetchResult(
            self.meta,
            files,
            self.received,
            self.resumed_files,
            self.resumed_bytes,
            self.reused_files,
            self.reused_bytes,
        )

    def _make_folders(self) -> None:
        if not self.meta.is_directory:
            return
        os.makedirs(self.target, exist_ok=True)
        for folder in sorted({os.path.dirname(p.path) for p in self.parts} - {self.target}):
            os.makedirs(folder, exist_ok=True)  # once each, not once per file

    def _is_ranged(self, part: _Part) -> bool:
        return self.ranged_reads and part.expected is not None and part.expected.size > RANGED_MIN

    # -- 1. what an earlier attempt left ------------------------------------------------------

    def _keep_what_checks(self) -> None:
        """Keep the files of an earlier attempt that match their digests, and the logged
        ranges of the large files it had begun; discard the rest."""
        assert self.log is not None
        to_check: list[_Part] = []
        for part in self.parts:
            assert part.expected is not None  # a resumable meta has every digest
            try:
                size = os.stat(part.path).st_size
            except FileNotFoundError:
                self.log.forget(part.part)
                continue
            ranges = self.log.ranges(part.part)
            missing = missing_ranges(ranges, part.expected.size)
            if self._is_ranged(part) and size == part.expected.size and ranges and missing:
                part.kept = part.expected.size - sum(end - start for start, end in missing)
            elif size == part.expected.size:
                to_check.append(part)
            else:
                self._discard(part)
        for part, digest in zip(to_check, _digests(to_check), strict=True):
            if digest is not None and digest == part.expected:
                part.digest = digest
                self.resumed_files += 1
                self.resumed_bytes += digest.size
            else:
                self._discard(part)
        self.resumed_bytes += sum(p.kept for p in self.parts)

    def _discard(self, part: _Part) -> None:
        if self.log is not None:
            self.log.forget(part.part)
        part.kept = 0
        with contextlib.suppress(FileNotFoundError):
            os.unlink(part.path)

    # -- 2. files other cached versions have ---------------------------------------------------

    def _reuse(self) -> None:
        assert self.reuse is not None
        for part in self.parts:
            if part.digest is not None or part.kept or part.expected is None:
                continue
            for source in self.reuse.candidates(part.expected):
                if clone_verified(source, part.path, part.expected):
                    part.digest = part.expected
                    self.reused_files += 1
                    self.reused_bytes += part.expected.size
                    break

    # -- 3. the store ---------------------------------------------------------------------------

    def _attempt(self) -> None:
        """Fetch what is still missing. A transient failure is raised once everything else
        has been tried, so that the retry asks only for what failed."""
        whole = [p for p in self.parts if p.digest is None and not self._is_ranged(p)]
        transient = self._fetch_whole(whole) if whole else None
        for part in self.parts:
            if part.digest is None and self._is_ranged(part):
                try:
                    self._fetch_ranged(part)
                except errors.StorageUnavailableError as exc:
                    transient = transient or exc
        if transient is not None:
            raise transient

    def _fetch_whole(self, parts: list[_Part]) -> errors.StorageUnavailableError | None:
        """Download ``parts`` whole, in one ``download_many`` call per digest algorithm (one,
        in practice); a file that fails its check once is downloaded again at once."""
        transient: errors.StorageUnavailableError | None = None
        marks = {p.part: HighWater(self.progress.advance) for p in parts}
        with self._watching(parts, marks):
            while parts:
                again: list[_Part] = []
                for algorithm, group in _by_algorithm(parts).items():
                    jobs = [(p.object_name, p.path) for p in group]
                    outcomes = self.driver.download_objects(
                        jobs, algorithm, self.provider.max_downloads
                    )
                    try:
                        for index, outcome in outcomes:
                            part = group[index]
                            if isinstance(outcome, errors.StorageUnavailableError):
                                transient = transient or outcome
                            elif isinstance(outcome, BaseException):
                                raise outcome
                            elif self._accept(part, outcome):
                                marks[part.part].reached(outcome.size)
                                self.progress.advance(files=1)
                                with self._lock:
                                    self.received += outcome.size
                            else:
                                again.append(part)
                    finally:
                        _close(outcomes)
                parts = again
        return transient

    def _accept(self, part: _Part, digest: FileDigest) -> bool:
        """Whether a freshly downloaded file matches its digest (a file with none is taken
        as it came); raise AssetIntegrityError on its second mismatch in a row."""
        if part.expected is None or digest == part.expected:
            part.digest = digest
            return True
        part.mismatches += 1
        self._discard(part)
        if part.mismatches >= 2:
            raise errors.AssetIntegrityError(
                f"{self.name}:{self.version}{part.what}", f"expected {part.expected}, got {digest}"
            )
        return False

    def _fetch_ranged(self, part: _Part) -> None:
        """Download the ranges of a large file that are not in place yet, then check it all; a
        resumed file that fails its check is downloaded again whole."""
        assert part.expected is not None
        while part.digest is None:
            resumed = self._fill(part, part.expected.size)
            digest = digest_file(part.path, part.expected.algorithm)
            if digest == part.expected:
                part.digest = digest
                self.progress.advance(files=1)
            elif resumed:
                self._discard(part)  # kept bytes went bad on disk: start this file over
            else:
                self._accept(part, digest)  # raises on the second mismatch

    def _fill(self, part: _Part, size: int) -> bool:
        """Write the missing ranges of ``part``; whether some were kept from before."""
        fd = os.open(part.path, os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o666)
        try:
            present = os.fstat(fd).st_size
            if present != size:
                if self.log is not None:
                    self.log.forget(part.part)
                if present:
                    os.ftruncate(fd, 0)
                # The ranges fill a file of the right size, in any order. (Not truncated to 0
                # when empty: ext4 then flushes the whole file on close, 0.1 s per 256 MiB.)
                os.ftruncate(fd, size)
            written = self.log.ranges(part.part) if self.log is not None else []
            fill_ranges(
                fd,
                split_ranges(missing_ranges(written, size), part_size_for(size)),
                functools.partial(self.driver.read_range, part.object_name),
                self._range_pool(),
                on_written=functools.partial(self._landed, part.part),
                retry_on=(errors.StorageUnavailableError,),
                attempts=_RANGE_ATTEMPTS,
            )
        finally:
            os.close(fd)
        return bool(written)

    def _landed(self, part: str, start: int, end: int) -> None:
        if self.log is not None:
            self.log.written(part, start, end)
        with self._lock:
            self.received += end - start
        self.progress.advance(end - start)

    def _range_pool(self) -> ThreadPoolExecutor:
        if self._pool is None:
            workers = max(1, min(RANGE_WORKERS, self.provider.max_downloads * 2) - 1)
            self._pool = ThreadPoolExecutor(workers, "modelkit-assets-range")
        return self._pool

    @contextlib.contextmanager
    def _watching(self, parts: list[_Part], marks: Mapping[str, HighWater]) -> Iterator[None]:
        """Report the bytes written so far into the large files being downloaded whole
        (drivers report nothing while they write), so that the bar moves; each byte is counted
        once. Bytes written, not sizes: a driver may size the file first and fill it in
        ranges (see :func:`written_bytes`)."""
        large = [p for p in parts if p.expected is None or p.expected.size > SMALL]
        if isinstance(self.progress, NoProgress) or not large:
            yield
            return

        def poll() -> None:
            for part in large:
                if part.digest is None:
                    with contextlib.suppress(OSError):
                        marks[part.part].reached(written_bytes(part.path))

        with periodically(_POLL_S, poll, "progress"):
            yield


def written_bytes(path: str) -> int:
    """Bytes written into the file at ``path`` so far, as far as the file system tells: its
    allocated blocks, up to its size. A file sized in advance (``ftruncate``) and filled in
    ranges has its full size at once but its blocks only as they are written; where the file
    system cannot leave holes, this is the size, as before."""
    stat = os.stat(path)
    blocks = getattr(stat, "st_blocks", None)
    return stat.st_size if blocks is None else min(stat.st_size, blocks * 512)


def _by_algorithm(parts: Sequence[_Part]) -> dict[str, list[_Part]]:
    groups: dict[str, list[_Part]] = {}
    for part in parts:
        algorithm = part.expected.algorithm if part.expected else DEFAULT_ALGORITHM
        groups.setdefault(algorithm, []).append(part)
    return groups


def _close(iterator: object) -> None:
    """Close a generator that was not run to its end: its thread pool starts nothing more."""
    close = getattr(iterator, "close", None)
    if close is not None:
        close()


def _digests(parts: Sequence[_Part]) -> list[FileDigest | None]:
    """The digest of each part's file, hashed on a few threads (hashing releases the GIL)."""

    def digest(part: _Part) -> FileDigest | None:
        assert part.expected is not None
        try:
            return digest_file(part.path, part.expected.algorithm)
        except OSError:
            return None

    if len(parts) <= 1:
        return [digest(p) for p in parts]
    with ThreadPoolExecutor(min(len(parts), os.cpu_count() or 2)) as pool:
        return list(pool.map(digest, parts))
