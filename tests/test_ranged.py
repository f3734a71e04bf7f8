"""The parallel ranged download (``modelkit_assets.ranged``), with readers over bytes in memory:
every byte lands at its offset, broken ranges resume where they stopped, one failure stops all."""

from __future__ import annotations

import itertools
import os
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from modelkit_assets import errors
from modelkit_assets.ranged import (
    ShortRangeError,
    download_in_ranges,
    fill_ranges,
    missing_ranges,
    split_ranges,
)


class Broken(Exception):
    """A body that breaks off, as a transport error."""


class Store:
    """An object in memory, read in chunks of ``chunk`` bytes; ``faults`` maps the start of a
    part (of ``part_size`` bytes) to what goes wrong the first times it is read, retries
    included: "break" (after one chunk), "short" (ends early without an error), "long" (more
    bytes than asked for)."""

    def __init__(
        self,
        data: bytes,
        chunk: int = 3,
        faults: dict[int, list[str]] | None = None,
        part_size: int = 20,
    ) -> None:
        self.data, self.chunk, self.part_size = data, chunk, part_size
        self.faults = faults or {}
        self.requests: list[tuple[int, int]] = []
        self.lock = threading.Lock()

    def read(self, start: int, end: int) -> Iterator[bytes]:
        with self.lock:
            self.requests.append((start, end))
            pending = self.faults.get(start - start % self.part_size)
            fault = pending.pop(0) if pending else None
        if fault == "long":
            end += 1
        for offset in range(start, end, self.chunk):
            if fault == "short" and offset > start:
                return
            yield self.data[offset : min(offset + self.chunk, end)]
            if fault == "break":
                raise Broken


@pytest.fixture(scope="module")
def pool() -> Iterator[ThreadPoolExecutor]:
    with ThreadPoolExecutor(4) as executor:
        yield executor


@settings(max_examples=60, deadline=None)
@given(
    data=st.binary(min_size=1, max_size=200),
    part_size=st.integers(1, 64),
    chunk=st.integers(1, 16),
    with_first=st.booleans(),
)
def test_every_byte_lands_at_its_offset(
    tmp_path_factory: pytest.TempPathFactory,
    pool: ThreadPoolExecutor,
    data: bytes,
    part_size: int,
    chunk: int,
    with_first: bool,
) -> None:
    store = Store(data, chunk)
    destination = tmp_path_factory.mktemp("ranged") / "out"
    destination.write_bytes(b"x" * 500)  # longer than any object: truncated first
    first = store.read(0, min(part_size, len(data))) if with_first else None
    download_in_ranges(
        str(destination), len(data), store.read, pool, part_size=part_size, first_part=first
    )
    assert destination.read_bytes() == data
    starts = sorted(start for start, _ in store.requests)
    assert starts == list(range(0, len(data), part_size))


@pytest.mark.parametrize("fault", ["break", "short"])
def test_a_broken_range_resumes_from_its_first_missing_byte(
    tmp_path: Path, pool: ThreadPoolExecutor, fault: str
) -> None:
    data = bytes(range(100))
    store = Store(data, chunk=4, faults={0: [fault], 40: [fault, fault]})
    download_in_ranges(
        str(tmp_path / "out"), 100, store.read, pool, part_size=20, retry_on=(Broken,)
    )
    assert (tmp_path / "out").read_bytes() == data
    # The first chunk of each broken range was kept: the retries ask for the rest only.
    assert (4, 20) in store.requests
    assert (44, 60) in store.requests
    assert (48, 60) in store.requests


def test_a_range_that_keeps_breaking_fails_after_its_attempts(
    tmp_path: Path, pool: ThreadPoolExecutor
) -> None:
    store = Store(bytes(100), faults={20: ["break"] * 3})
    with pytest.raises(Broken):
        download_in_ranges(
            str(tmp_path / "out"), 100, store.read, pool, part_size=20, retry_on=(Broken,)
        )
    assert sum(start >= 20 and start < 40 for start, _ in store.requests) == 3


def test_short_ranges_are_an_error_once_the_attempts_are_spent(
    tmp_path: Path, pool: ThreadPoolExecutor
) -> None:
    store = Store(bytes(100), faults={60: ["short"] * 2})
    with pytest.raises(ShortRangeError, match="sent 6 of the 20 bytes from 60"):
        download_in_ranges(str(tmp_path / "out"), 100, store.read, pool, part_size=20, attempts=2)


def test_more_bytes_than_asked_for_are_refused(tmp_path: Path, pool: ThreadPoolExecutor) -> None:
    store = Store(bytes(100), chunk=20, faults={40: ["long"]})
    with pytest.raises(errors.StorageDriverError, match="more than the 20 bytes"):
        download_in_ranges(str(tmp_path / "out"), 100, store.read, pool, part_size=20)
    assert (tmp_path / "out").stat().st_size == 100  # nothing written past the object's end


def test_one_failure_stops_the_other_ranges(tmp_path: Path) -> None:
    """The failing range's error is raised, once every other range has stopped; the ranges not
    started when it failed are never asked for (the failure stops them at once, not when the
    calling thread, busy with the first range, gets to it)."""
    release = threading.Event()
    started: list[int] = []

    def read(start: int, end: int) -> Iterator[bytes]:
        started.append(start)
        if start == 10:
            raise errors.StorageDriverError("refused")
        yield b"\0"
        release.wait(5)
        yield b"\0" * (end - start - 1)

    with ThreadPoolExecutor(2) as pool:
        timer = threading.Timer(0.5, release.set)
        timer.start()
        with pytest.raises(errors.StorageDriverError, match="refused"):
            download_in_ranges(str(tmp_path / "out"), 1000, read, pool, part_size=10)
        timer.cancel()
    # At most the ranges already running when 10 failed: the caller's and the workers' first.
    assert 10 in started
    assert set(started) <= {0, 10, 20}


def test_the_local_driver_reads_ranges_in_chunks_of_at_most_one_mib(tmp_path: Path) -> None:
    from modelkit_assets.drivers.local import LocalStorageDriver
    from modelkit_assets.records import RANGED_READS

    (tmp_path / "bucket" / "p").mkdir(parents=True)
    data = os.urandom(2 * 1024 * 1024 + 5)
    (tmp_path / "bucket" / "p" / "o").write_bytes(data)
    driver = LocalStorageDriver(str(tmp_path / "bucket"))
    assert driver.supports(RANGED_READS)
    chunks = list(driver.read_range("p/o", 3, len(data)))
    assert b"".join(chunks) == data[3:]
    assert max(len(c) for c in chunks) <= 1024 * 1024
    assert b"".join(driver.read_range("p/o", 10, 20)) == data[10:20]
    assert b"".join(driver.read_range("p/o", len(data) - 2, len(data) + 10)) == data[-2:]
    for missing in ("p/nope", "p"):
        with pytest.raises(errors.ObjectDoesNotExistError):
            list(driver.read_range(missing, 0, 1))


@settings(max_examples=80, deadline=None)
@given(
    size=st.integers(0, 120),
    written=st.lists(st.tuples(st.integers(0, 130), st.integers(0, 40)), max_size=8),
)
def test_missing_ranges_are_exactly_the_bytes_no_written_range_covers(
    size: int, written: list[tuple[int, int]]
) -> None:
    ranges = [(start, start + length) for start, length in written]
    covered = {i for start, end in ranges for i in range(start, end)}
    missing = missing_ranges(ranges, size)
    assert [i for start, end in missing for i in range(start, end)] == [
        i for i in range(size) if i not in covered
    ]
    assert all(a[1] < b[0] for a, b in itertools.pairwise(missing))  # disjoint, not touching


def test_filling_the_missing_ranges_completes_a_file_and_reports_what_landed(
    tmp_path: Path, pool: ThreadPoolExecutor
) -> None:
    """A resumed download: the kept bytes stay as they are (never asked for again), the
    missing ones are written where they belong, and each write is reported."""
    data = os.urandom(1000)
    path = tmp_path / "partial"
    kept = [(0, 130), (400, 420), (990, 1000)]
    content = bytearray(1000)
    for start, end in kept:
        content[start:end] = data[start:end]
    path.write_bytes(bytes(content))
    store = Store(data, chunk=7, part_size=1000)
    landed: list[tuple[int, int]] = []
    lock = threading.Lock()

    def on_written(start: int, end: int) -> None:
        with lock:
            landed.append((start, end))

    fd = os.open(path, os.O_WRONLY)
    try:
        fill_ranges(
            fd,
            split_ranges(missing_ranges(kept, 1000), 64),
            store.read,
            pool,
            on_written=on_written,
        )
    finally:
        os.close(fd)
    assert path.read_bytes() == data
    assert missing_ranges(kept + landed, 1000) == []
    assert sum(end - start for start, end in landed) == 1000 - 160
    assert all(not (s < 130 or 400 <= s < 420 or s >= 990) for s, _ in store.requests)
