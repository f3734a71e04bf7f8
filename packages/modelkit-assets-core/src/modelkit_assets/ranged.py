"""Download one large object as byte ranges in parallel, each written where it belongs.

A driver whose store serves byte ranges (S3, GCS...) gives :func:`download_in_ranges` a way to
read one range as chunks; worker threads each write their own chunks into the file with
``os.pwrite`` at their offset. There is no reordering queue and no single writer thread, and
the memory held is one chunk per worker. This is why it beats s3transfer's downloader, which
funnels every 256 KiB chunk of every range through one I/O thread: 256 MiB from SeaweedFS on
2 cores took 0.28 s here against 0.42 s through the transfer manager (medians of 6).

A range whose body breaks off is asked for again from the first byte not yet written, up to
``attempts`` times in all; the first failure that is not retried stops the other ranges at
their next chunk (ranges not started yet are never asked for) and is raised once they have
stopped. The caller removes the file then, or, for a resumable download (:func:`fill_ranges`
with ``on_written``, see :mod:`modelkit_assets.cache.download`), keeps it with the log of the
ranges that did land, and asks later for the others only (:func:`missing_ranges`).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Executor, Future, wait
from typing import Final

from . import errors

#: Reads the bytes ``[start, end)`` of the object, as chunks of bounded size (bytes, or
#: memoryviews of the client's buffers).
RangeReader = Callable[[int, int], Iterable[bytes | memoryview]]

#: Range requests sent for one object, and their default size.
DEFAULT_PART_SIZE: Final = 8 * 1024 * 1024


class ShortRangeError(errors.StorageUnavailableError):
    """A range ended before its last byte without a transport error: a transient fault,
    retried like one (here, then by the core's retries)."""

    def __init__(self, detail: str) -> None:
        super().__init__("ranged download", detail)


class _Stopped(Exception):
    """Another range failed: this one stops at its next chunk."""


def download_in_ranges(
    destination_path: str,
    size: int,
    read_range: RangeReader,
    pool: Executor,
    *,
    part_size: int = DEFAULT_PART_SIZE,
    first_part: Iterable[bytes | memoryview] | None = None,
    retry_on: tuple[type[BaseException], ...] = (),
    attempts: int = 3,
) -> None:
    """Write the ``size`` bytes of an object into ``destination_path`` (created or truncated),
    ``part_size`` bytes per range, the ranges after the first on ``pool``.

    ``first_part`` is the body of a request for ``[0, part_size)`` the caller has already sent
    (it learnt the size from it); it is written on the calling thread while the pool fetches the
    rest. Errors in ``retry_on``, and a range that ends early, send the range again from where
    it stopped.
    """
    fd = os.open(destination_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o666)
    try:
        os.ftruncate(fd, size)  # the ranges fill a file of the right size, in any order
        fill_ranges(
            fd,
            split_ranges([(0, size)], part_size),
            read_range,
            pool,
            first_part=first_part,
            retry_on=retry_on,
            attempts=attempts,
        )
    finally:
        os.close(fd)


def split_ranges(ranges: Iterable[tuple[int, int]], part_size: int) -> list[tuple[int, int]]:
    """``ranges`` cut into pieces of at most ``part_size`` bytes, in order."""
    return [
        (start, min(start + part_size, end))
        for first, end in ranges
        for start in range(first, end, part_size)
    ]


def missing_ranges(written: Iterable[tuple[int, int]], size: int) -> list[tuple[int, int]]:
    """The ranges of ``[0, size)`` that none of the ``written`` ranges covers, in order."""
    missing: list[tuple[int, int]] = []
    position = 0
    for start, end in sorted(r for r in written if r[0] < r[1]):
        if start > position:
            missing.append((position, min(start, size)))
        position = max(position, end)
        if position >= size:
            break
    if position < size:
        missing.append((position, size))
    return [(start, end) for start, end in missing if start < end]


def fill_ranges(
    fd: int,
    ranges: Sequence[tuple[int, int]],
    read_range: RangeReader,
    pool: Executor,
    *,
    first_part: Iterable[bytes | memoryview] | None = None,
    on_written: Callable[[int, int], None] | None = None,
    retry_on: tuple[type[BaseException], ...] = (),
    attempts: int = 3,
) -> None:
    """Write each ``[start, end)`` of ``ranges`` into the open file ``fd`` at its offset, the
    first on the calling thread (from ``first_part`` if given), the others on ``pool``.

    ``on_written(start, end)`` is called, on the thread that wrote them, once the bytes
    ``[start, end)`` are in the file: a resumable download logs them, so that a later attempt
    asks only for what is still missing.
    """
    stop = threading.Event()

    def write(start: int, end: int, chunks: Iterable[bytes | memoryview] | None = None) -> None:
        if stop.is_set():
            raise _Stopped  # a range has failed: do not even ask for this one
        try:
            _write_range(fd, start, end, read_range, chunks, retry_on, attempts, stop, on_written)
        except _Stopped:
            raise
        except BaseException:
            stop.set()  # at once, not when the caller gets to this range's future
            raise

    if not ranges:
        return
    futures: list[Future[None]] = [pool.submit(write, *piece) for piece in ranges[1:]]
    try:
        write(*ranges[0], first_part)
        for future in futures:
            future.result()
    except BaseException as exc:
        stop.set()
        for future in futures:
            future.cancel()
        wait(futures)
        if isinstance(exc, _Stopped):
            raise _first_failure(futures) from None
        raise


def _first_failure(futures: list[Future[None]]) -> BaseException:
    """The error of the range that stopped the others (the first one, by offset)."""
    for future in futures:
        if not future.cancelled():
            failure = future.exception()
            if failure is not None and not isinstance(failure, _Stopped):
                return failure
    return errors.StorageDriverError("a ranged download stopped without an error")


def _write_range(
    fd: int,
    start: int,
    end: int,
    read_range: RangeReader,
    chunks: Iterable[bytes | memoryview] | None,
    retry_on: tuple[type[BaseException], ...],
    attempts: int,
    stop: threading.Event,
    on_written: Callable[[int, int], None] | None = None,
) -> None:
    offset = start
    retried: tuple[type[BaseException], ...] = (*retry_on, ShortRangeError)
    for attempt in range(1, attempts + 1):
        try:
            for chunk in chunks if chunks is not None else read_range(offset, end):
                if offset + len(chunk) > end:
                    raise errors.StorageDriverError(
                        f"the store sent more than the {end - start} bytes asked for from {start}"
                    )
                written = _pwrite_all(fd, chunk, offset)
                if on_written is not None and written:
                    on_written(offset, offset + written)
                offset += written
                if stop.is_set():  # after writing: a resumed download keeps the chunk received
                    raise _Stopped
            if offset >= end:
                return
            raise ShortRangeError(
                f"the store sent {offset - start} of the {end - start} bytes from {start}"
            )
        except retried:
            if attempt == attempts:
                raise
            chunks = None


def _pwrite_all(fd: int, data: bytes | memoryview, offset: int) -> int:
    view = memoryview(data)
    while view:
        written = os.pwrite(fd, view, offset)
        view, offset = view[written:], offset + written
    return len(data)
