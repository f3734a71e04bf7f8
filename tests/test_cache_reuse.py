"""Reuse across versions (DESIGN.md 10): a file the cache already holds, with the same size and
digest, is cloned (reflink, else copy), checked on the way, never hard-linked and never
downloaded again."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from modelkit_assets import AssetsManager, StorageProvider
from tests.cache_support import cached_store, count_downloads
from tests.conftest import StoreEnv
from tests.faultproxy import FaultProxy, Stats
from tests.guarantees.assets import KIB, make_file, make_tree, tree_bytes
from tests.guarantees.faults import endpoint_port, redirected

__all__ = ["cached_store"]


def parts(objects: list[str]) -> list[str]:
    return sorted(o.rsplit("/", 1)[1] for o in objects)


@pytest.fixture
def model(cached_store: StoreEnv, tmp_path: Path) -> Path:
    """``model`` 0.0 (a.txt, b.bin, c.bin) fetched; 0.1 pushed with b.bin changed."""
    source = make_tree(tmp_path / "model", {"a.txt": 1000, "b.bin": 300 * KIB, "c.bin": 2 * KIB})
    store = StorageProvider()
    store.new(str(source), "model")
    AssetsManager().fetch_asset("model:0.0")
    make_file(source / "b.bin", 300 * KIB)
    store.update(str(source), "model", "0.1")
    return source


@pytest.mark.parametrize("cached_store", ["local", "gcs"], indirect=True)
def test_unchanged_files_are_cloned_from_the_cached_version(
    model: Path, cached_store: StoreEnv, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = StorageProvider()
    downloads = count_downloads(store, monkeypatch)
    info = AssetsManager(storage_provider=store).fetch_asset("model:0.1", return_info=True)
    assert tree_bytes(info["path"]) == tree_bytes(model)
    assert parts(downloads["objects"]) == ["b.bin"]
    assert (info["reused_files"], info["reused_bytes"]) == (2, 1000 + 2 * KIB)
    assert info["received_bytes"] == 300 * KIB


def test_clones_are_copies_never_links(model: Path, cached_store: StoreEnv) -> None:
    new = Path(AssetsManager().fetch_asset("model:0.1"))
    old = cached_store.assets_dir / "model" / "0.0"
    for name in ("a.txt", "c.bin"):
        assert (new / name).stat().st_ino != (old / name).stat().st_ino
        assert (new / name).stat().st_nlink == 1
    (new / "a.txt").write_bytes(b"edited in 0.1")
    assert (old / "a.txt").read_bytes() == (model / "a.txt").read_bytes()


def test_a_cached_file_edited_by_hand_is_not_propagated(
    model: Path, cached_store: StoreEnv, monkeypatch: pytest.MonkeyPatch
) -> None:
    edited = cached_store.assets_dir / "model" / "0.0" / "a.txt"
    edited.write_bytes(b"z" * 1000)  # same size, other bytes: fails the check on the way
    store = StorageProvider()
    downloads = count_downloads(store, monkeypatch)
    info = AssetsManager(storage_provider=store).fetch_asset("model:0.1", return_info=True)
    assert tree_bytes(info["path"]) == tree_bytes(model)
    assert parts(downloads["objects"]) == ["a.txt", "b.bin"]
    assert info["reused_files"] == 1


def test_files_are_reused_across_assets_but_not_by_a_forced_download(
    model: Path, cached_store: StoreEnv, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = StorageProvider()
    store.new(str(model / "c.bin"), "other")  # a file asset with the bytes of model's c.bin
    downloads = count_downloads(store, monkeypatch)
    manager = AssetsManager(storage_provider=store)
    info = manager.fetch_asset("other:0.0", return_info=True)
    assert (info["reused_files"], downloads["objects"]) == (1, [])
    assert Path(info["path"]).read_bytes() == (model / "c.bin").read_bytes()
    forced = manager.fetch_asset("model:0.1", return_info=True, force_download=True)
    assert forced["reused_files"] == 0
    assert parts(downloads["objects"]) == ["a.txt", "b.bin", "c.bin"]


def test_an_unchanged_file_is_found_by_size_and_digest_only(
    cached_store: StoreEnv, tmp_path: Path
) -> None:
    """A file of another name, in another folder, with the same bytes: reused too."""
    store = StorageProvider()
    store.new(str(make_tree(tmp_path / "one", {"x/weights": 5000})), "one")
    AssetsManager().fetch_asset("one:0.0")
    (tmp_path / "two" / "y").mkdir(parents=True)
    os.replace(tmp_path / "one" / "x" / "weights", tmp_path / "two" / "y" / "renamed")
    store.new(str(tmp_path / "two"), "two")
    info = AssetsManager().fetch_asset("two:0.0", return_info=True)
    assert (info["reused_files"], info["received_bytes"]) == (1, 0)


@pytest.mark.parametrize("cached_store", ["gcs"], indirect=True)
def test_a_new_version_of_a_1000_file_folder_moves_the_changed_file_only(
    cached_store: StoreEnv, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Byte counts on the wire, through the fault proxy in front of fake-gcs-server."""
    source = make_tree(tmp_path / "model", {f"d{i % 10}/f{i:04}": 10 * KIB for i in range(1000)})
    store = StorageProvider()
    store.new(str(source), "model")
    AssetsManager(storage_provider=store).fetch_asset("model:0.0")
    make_file(source / "d3" / "f0123", 10 * KIB)
    store.update(str(source), "model", "0.1")
    meta = len(store.driver.read_object(store.get_meta_object_name("model", "0.1"))[0])
    backend = cached_store.backend
    with FaultProxy(endpoint_port(backend.env)) as proxy:
        for key, value in redirected(backend.env, proxy.port).items():
            monkeypatch.setenv(key, value)
        proxy.stats = Stats()
        info = AssetsManager().fetch_asset("model:0.1", return_info=True)
        moved = proxy.stats.bytes_down
    assert tree_bytes(info["path"]) == tree_bytes(source)
    assert (info["reused_files"], info["received_bytes"]) == (999, 10 * KIB)
    # The .meta (1000 digests), the .versions, one file, and HTTP headers: nothing else.
    assert moved < meta + 10 * KIB + 20 * KIB, (moved, meta)
    assert moved < 0.03 * 1000 * 10 * KIB
