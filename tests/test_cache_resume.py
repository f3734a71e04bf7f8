"""Resumable downloads (DESIGN.md 11): an interrupted fetch keeps what it wrote and checked,
the next one asks only for the rest, and nothing kept is served unchecked.

Interruptions here are faults injected into the driver (a body that breaks off after so many
bytes, a store that goes down after so many objects) with no retry budget, so that the first
fetch fails and leaves its partial download; tests/guarantees/test_resume.py does the same with
``kill -9`` and real processes.
"""

from __future__ import annotations

import functools
import json
import os
from pathlib import Path

import pytest

from modelkit_assets import AssetsManager, StorageProvider, errors
from modelkit_assets.cache import AssetsCache
from modelkit_assets.meta import FileDigest
from tests.cache_support import MiB, Recorder, break_ranges_after, cached_store, count_downloads
from tests.conftest import StoreEnv
from tests.guarantees.assets import leftovers, make_file, make_tree, tree_bytes

__all__ = ["cached_store"]

SIZE = 20 * MiB  # three ranges of 8 MiB: 8, 8, 4


@pytest.fixture
def no_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MODELKIT_STORAGE_TIMEOUT_S", "0.001")


def partial_log(assets_dir: Path) -> list[object]:
    (log,) = (assets_dir / ".cache" / ".partials").iterdir()
    return [json.loads(line) for line in log.read_text().splitlines()]


@pytest.mark.parametrize("cached_store", ["local", "gcs"], indirect=True)
def test_an_interrupted_large_file_resumes_from_its_missing_ranges(
    cached_store: StoreEnv, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, no_retries: None
) -> None:
    source = make_file(tmp_path / "big.bin", SIZE)
    store = StorageProvider()
    store.new(str(source), "big")
    counts = break_ranges_after(store, monkeypatch, 11 * MiB)
    with pytest.raises(errors.StorageUnavailableError):
        AssetsManager(storage_provider=store).fetch_asset("big:0.0")
    partial = cached_store.assets_dir / "big" / ".0.0.partial"
    assert partial.stat().st_size == SIZE  # its ranges are written in place
    assert not AssetsCache(str(cached_store.assets_dir)).is_complete("big", "0.0")
    logged = sum(e[2] - e[1] for e in partial_log(cached_store.assets_dir)[1:])  # type: ignore[index]
    assert 10 * MiB <= logged <= 11 * MiB + MiB

    counts = break_ranges_after(store, monkeypatch, SIZE)
    progress = Recorder()
    manager = AssetsManager(storage_provider=store)
    manager.progress = progress
    info = manager.fetch_asset("big:0.0", return_info=True)
    assert tree_bytes(info["path"]) == tree_bytes(source)
    assert counts["bytes"] == SIZE - logged  # only what was missing
    assert info["resumed_bytes"] == logged
    assert info["received_bytes"] == SIZE - logged
    assert progress.total == progress.advanced == SIZE - logged
    assert leftovers(cached_store.assets_dir) == []


def test_complete_files_of_an_interrupted_folder_are_kept(
    cached_store: StoreEnv, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, no_retries: None
) -> None:
    sizes = {f"f{i:02}.bin": 1000 + i for i in range(30)}
    source = make_tree(tmp_path / "model", sizes)
    store = StorageProvider()
    store.new(str(source), "model")
    first = count_downloads(store, monkeypatch, fail_after=12)
    with pytest.raises(errors.StorageUnavailableError):
        AssetsManager(storage_provider=store).fetch_asset("model:0.0")
    assert len(first["objects"]) == 12

    second = count_downloads(store, monkeypatch)
    info = AssetsManager(storage_provider=store).fetch_asset("model:0.0", return_info=True)
    assert tree_bytes(info["path"]) == tree_bytes(source)
    assert len(second["objects"]) == 30 - 12
    assert not set(first["objects"]) & set(second["objects"])
    assert (info["resumed_files"], info["reused_files"]) == (12, 0)


def test_kept_files_and_ranges_are_checked_again_and_fixed(
    cached_store: StoreEnv, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, no_retries: None
) -> None:
    """Between the attempts, a byte of a kept small file and a byte of a kept range of the
    large file go bad on disk: the resumed download finds both and fetches those files whole."""
    source = make_tree(tmp_path / "model", {"big.bin": SIZE, "a.txt": 500, "b.txt": 600})
    store = StorageProvider()
    store.new(str(source), "model")
    break_ranges_after(store, monkeypatch, 9 * MiB)
    with pytest.raises(errors.StorageUnavailableError):
        AssetsManager(storage_provider=store).fetch_asset("model:0.0")
    partial = cached_store.assets_dir / "model" / ".0.0.partial"
    _, part, start, end = [None, *partial_log(cached_store.assets_dir)[1]]  # type: ignore[misc]
    assert part == "big.bin"
    assert end > start
    flip(partial / "big.bin", (start + end) // 2)
    flip(partial / "a.txt", 7)

    counts = break_ranges_after(store, monkeypatch, 10 * SIZE)
    downloads = count_downloads(store, monkeypatch)
    info = AssetsManager(storage_provider=store).fetch_asset("model:0.0", return_info=True)
    assert tree_bytes(info["path"]) == tree_bytes(source)
    assert [o.rsplit("/", 1)[1] for o in downloads["objects"]] == ["a.txt"]
    assert counts["bytes"] > SIZE - 10 * MiB  # the large file is fetched again, beyond its gap


def flip(path: Path, offset: int) -> None:
    with open(path, "r+b") as f:
        f.seek(offset)
        byte = f.read(1)
        f.seek(offset)
        f.write(bytes([byte[0] ^ 0x55]))


def test_a_partial_download_of_another_meta_is_started_over(
    cached_store: StoreEnv, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, no_retries: None
) -> None:
    """Two stores share the assets dir and both have ``model:0.0``, with other bytes: what one
    left half-downloaded is not resumed from the other."""
    store = StorageProvider()
    store.new(str(make_tree(tmp_path / "one", {"a": 3000, "b": 3000})), "model")
    count_downloads(store, monkeypatch, fail_after=1)
    with pytest.raises(errors.StorageUnavailableError):
        AssetsManager(storage_provider=store).fetch_asset("model:0.0")
    other = StorageProvider(prefix=f"{cached_store.prefix}-other")
    second = make_tree(tmp_path / "two", {"a": 3000, "b": 3000})
    other.new(str(second), "model")
    info = AssetsManager(storage_provider=other).fetch_asset("model:0.0", return_info=True)
    assert tree_bytes(info["path"]) == tree_bytes(second)
    assert info["resumed_files"] == 0


def test_a_transient_fault_mid_range_resumes_within_the_timeout(
    cached_store: StoreEnv, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With a retry budget, a body that breaks off costs only its missing bytes, not a restart
    (the range is asked for again from where it stopped, then the attempt from the log)."""
    monkeypatch.setenv("MODELKIT_STORAGE_TIMEOUT_S", "20")
    source = make_file(tmp_path / "big.bin", SIZE)
    store = StorageProvider()
    store.new(str(source), "big")
    real = store.driver.read_range
    state = {"bytes": 0, "breaks": 0}

    def read_range(object_name: str, start: int, end: int):  # type: ignore[no-untyped-def]
        for chunk in real(object_name, start, end):
            state["bytes"] += len(chunk)
            if state["breaks"] < 5 and state["bytes"] > (state["breaks"] + 1) * 3 * MiB:
                state["breaks"] += 1
                raise errors.StorageUnavailableError("local", "injected: reset")
            yield chunk

    monkeypatch.setattr(store.driver, "read_range", read_range)
    info = AssetsManager(storage_provider=store).fetch_asset("big:0.0", return_info=True)
    assert tree_bytes(info["path"]) == tree_bytes(source)
    assert state["breaks"] == 5
    assert state["bytes"] <= SIZE + 5 * MiB  # each break loses at most the chunk in flight


def test_a_store_down_for_a_moment_costs_only_the_files_that_failed(
    cached_store: StoreEnv, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Within the storage timeout, the retry asks only for the files whose download failed."""
    monkeypatch.setenv("MODELKIT_STORAGE_TIMEOUT_S", "20")
    source = make_tree(tmp_path / "model", {f"f{i:02}.bin": 2000 + i for i in range(30)})
    store = StorageProvider()
    store.new(str(source), "model")
    real = functools.partial(type(store.driver).download_object_with_digest, store.driver)
    calls: list[str] = []

    def flaky(object_name: str, destination: str, algorithm: str) -> FileDigest:
        calls.append(object_name)
        if 10 <= len(calls) < 15:
            raise errors.StorageUnavailableError("local", "injected: down for a moment")
        return real(object_name, destination, algorithm)

    monkeypatch.setattr(store.driver, "download_object_with_digest", flaky)
    info = AssetsManager(storage_provider=store).fetch_asset("model:0.0", return_info=True)
    assert tree_bytes(info["path"]) == tree_bytes(source)
    assert len(calls) == 30 + 5
    assert info["received_bytes"] == sum(2000 + i for i in range(30))


def test_drivers_without_ranged_reads_resume_whole_files(
    cached_store: StoreEnv, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, no_retries: None
) -> None:
    source = make_tree(tmp_path / "model", {"big.bin": 9 * MiB, "small": 10})
    store = StorageProvider()
    store.new(str(source), "model")
    monkeypatch.setattr(type(store.driver), "capabilities", frozenset({"conditional_writes"}))
    first = count_downloads(store, monkeypatch, fail_after=1)
    with pytest.raises(errors.StorageUnavailableError):
        AssetsManager(storage_provider=store).fetch_asset("model:0.0")
    second = count_downloads(store, monkeypatch)
    info = AssetsManager(storage_provider=store).fetch_asset("model:0.0", return_info=True)
    assert tree_bytes(info["path"]) == tree_bytes(source)
    assert len(first["objects"]) + len(second["objects"]) == 2
    assert info["resumed_files"] == 1


def test_metas_written_by_modelkit_are_fetched_from_scratch(
    cached_store: StoreEnv, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, no_retries: None
) -> None:
    """No digests to check kept files against: nothing is kept; and the files' own digests,
    taken on the way in, go into the record."""
    source = make_tree(tmp_path / "model", {"a": 100, "b": 200})
    store = StorageProvider()
    store.new(str(source), "model")
    meta_name = store.get_meta_object_name("model", "0.0")
    meta = json.loads(store.driver.read_object(meta_name)[0])
    modelkit_meta = {k: meta[k] for k in ("push_date", "is_directory", "contents")}
    store.driver.write_object(json.dumps(modelkit_meta).encode(), meta_name)
    count_downloads(store, monkeypatch, fail_after=1)
    with pytest.raises(errors.StorageUnavailableError):
        AssetsManager(storage_provider=store).fetch_asset("model:0.0")
    assert leftovers(cached_store.assets_dir) == []
    second = count_downloads(store, monkeypatch)
    info = AssetsManager(storage_provider=store).fetch_asset("model:0.0", return_info=True)
    assert tree_bytes(info["path"]) == tree_bytes(source)
    assert len(second["objects"]) == 2
    record = (cached_store.assets_dir / ".cache" / ".records" / "model%3A0.0.json").read_text()
    files = json.loads(record.splitlines()[1])
    assert files == {
        p: {"size": s, "blake3": files[p]["blake3"]} for p, s in (("a", 100), ("b", 200))
    }


def test_a_store_that_lacks_an_object_leaves_no_partial_download(
    cached_store: StoreEnv, tmp_path: Path
) -> None:
    store = StorageProvider()
    store.new(str(make_tree(tmp_path / "model", {"a": 10, "b": 10})), "model")
    store.driver.delete_object(store.get_object_name("model", "0.0") + "/b")
    with pytest.raises(errors.ObjectDoesNotExistError):
        AssetsManager(storage_provider=store).fetch_asset("model:0.0")
    assert leftovers(cached_store.assets_dir) == []
    assert os.listdir(cached_store.assets_dir / "model") == []
