"""Pushes report their bytes as they go out, on every backend, each byte counted once."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from modelkit_assets import StorageProvider
from modelkit_assets.drivers.local import LocalStorageDriver
from modelkit_assets.progress import HighWater
from tests.conftest import StoreEnv

MiB = 1024 * 1024


class RecordingProgress:
    """A TransferProgress that keeps every call."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.started: tuple[str, int, int] | None = None
        self.byte_reports: list[int] = []
        self.files = 0
        self.finished = False

    def start(self, description: str, total_bytes: int, total_files: int) -> None:
        self.started = (description, total_bytes, total_files)

    def advance(self, nbytes: int = 0, files: int = 0) -> None:
        with self.lock:
            assert not self.finished
            if nbytes:
                self.byte_reports.append(nbytes)
            self.files += files

    def finish(self) -> None:
        self.finished = True


def test_a_large_push_moves_the_bar_before_it_ends(store_env: StoreEnv, tmp_path: Path) -> None:
    """20 MiB go out in several reports (parts, chunks, blocks), which add up to the file."""
    size = 20 * MiB + 1
    path = tmp_path / "weights.bin"
    path.write_bytes(os.urandom(size))
    progress = RecordingProgress()
    StorageProvider().new(str(path), "big", progress=progress)
    assert progress.started == ("push big:0.0", size, 1)
    assert len(progress.byte_reports) >= 2, progress.byte_reports
    assert all(count > 0 for count in progress.byte_reports)
    assert sum(progress.byte_reports) == size
    assert (progress.files, progress.finished) == (1, True)


def test_many_small_files_count_bytes_and_files(store_env: StoreEnv, tmp_path: Path) -> None:
    folder = tmp_path / "folder"
    folder.mkdir()
    for i in range(20):
        (folder / f"f{i}").write_bytes(b"x" * (i + 1))
    progress = RecordingProgress()
    StorageProvider().new(str(folder), "many", progress=progress)
    assert sum(progress.byte_reports) == sum(range(1, 21))
    assert progress.files == 20


@given(st.lists(st.tuples(st.booleans(), st.integers(0, 1000)), max_size=30))
def test_high_water_counts_each_byte_once(steps: list[tuple[bool, int]]) -> None:
    """Positions that go back (a retried transfer) never report the same bytes twice."""
    reports: list[int] = []
    sent = HighWater(reports.append)
    position = highest = 0
    for restart, step in steps:
        position = 0 if restart else position + step
        sent.reached(position)
        highest = max(highest, position)
    assert all(count > 0 for count in reports)
    assert sum(reports) == highest == sent.position


def test_a_replaced_create_object_stays_in_charge(tmp_path: Path) -> None:
    """A subclass (or a wrapper on the instance) that replaces create_object is called, and
    the whole file is reported once it is stored."""
    calls: list[str] = []

    class Audited(LocalStorageDriver):
        def create_object(self, file_path: str, object_name: str) -> None:
            calls.append(object_name)
            super().create_object(file_path, object_name)

    (tmp_path / "bucket").mkdir()
    source = tmp_path / "f.bin"
    source.write_bytes(b"x" * 1000)
    reports: list[int] = []
    Audited(str(tmp_path / "bucket")).create_object_with_progress(
        str(source), "a/b", reports.append
    )
    plain = LocalStorageDriver(str(tmp_path / "bucket"))
    wrapped: list[str] = []
    real = plain.create_object
    plain.create_object = lambda f, o: (wrapped.append(o), real(f, o))[-1]  # type: ignore[method-assign]
    plain.create_object_with_progress(str(source), "a/c", reports.append)
    assert (calls, wrapped, reports) == (["a/b"], ["a/c"], [1000, 1000])


def test_small_files_go_through_a_replaced_create_object(tmp_path: Path) -> None:
    """A push hands its small files' bytes to create_object_from_bytes; a driver whose
    create_object (or create_reporting) was replaced gets the file instead, as before, while
    an unchanged local driver writes the bytes it was given (what the push hashed)."""
    calls: list[tuple[str, bytes]] = []

    class Audited(LocalStorageDriver):
        def create_object(self, file_path: str, object_name: str) -> None:
            calls.append((object_name, Path(file_path).read_bytes()))
            super().create_object(file_path, object_name)

    class Reporting(LocalStorageDriver):
        def create_reporting(
            self, file_path: str, object_name: str, on_bytes: Callable[[int], None] | None
        ) -> None:
            calls.append((object_name, Path(file_path).read_bytes()))
            super().create_reporting(file_path, object_name, on_bytes)

    bucket = tmp_path / "bucket"
    bucket.mkdir()
    source = tmp_path / "f.bin"
    source.write_bytes(b"on disk")
    Audited(str(bucket)).create_object_from_bytes(b"on disk", "a/audited", str(source))
    Reporting(str(bucket)).create_object_from_bytes(b"on disk", "a/reporting", str(source))
    LocalStorageDriver(str(bucket)).create_object_from_bytes(b"hashed", "a/plain", str(source))
    assert calls == [("a/audited", b"on disk"), ("a/reporting", b"on disk")]
    assert (bucket / "a" / "plain").read_bytes() == b"hashed"


def test_a_method_patched_on_the_class_later_takes_charge(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Which path a driver class takes is kept, for speed; a method patched on a subclass
    after that (or on the instance) is still the one called, and undoing it restores the fast
    path."""

    class Plain(LocalStorageDriver):
        pass

    bucket = tmp_path / "bucket"
    bucket.mkdir()
    source = tmp_path / "f.bin"
    source.write_bytes(b"on disk")
    driver = Plain(str(bucket))
    driver.create_object_from_bytes(b"hashed", "a/1", str(source))  # the class's answer, kept
    calls: list[str] = []
    real = LocalStorageDriver.create_object

    def audited(self: LocalStorageDriver, file_path: str, object_name: str) -> None:
        calls.append(object_name)
        real(self, file_path, object_name)

    with monkeypatch.context() as patch:
        patch.setattr(Plain, "create_object", audited, raising=False)
        driver.create_object_from_bytes(b"hashed", "a/2", str(source))
    driver.create_object_from_bytes(b"hashed", "a/3", str(source))
    driver.create_object = lambda f, o: (calls.append(o), real(driver, f, o))[-1]  # type: ignore[method-assign]
    driver.create_object_from_bytes(b"hashed", "a/4", str(source))
    assert calls == ["a/2", "a/4"]
    contents = {p.name: p.read_bytes() for p in (bucket / "a").iterdir()}
    assert contents == {"1": b"hashed", "2": b"on disk", "3": b"hashed", "4": b"on disk"}
