"""A read-only shared tier: ``MODELKIT_ASSETS_DIR=first:second:...`` (``os.pathsep``). The first
folder is where downloads go; the others are searched in order for complete versions and never
written (a team's read-only volume, a baked image)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from modelkit_assets import AssetsManager, StorageProvider
from modelkit_assets.cache import AssetsCache, holds
from tests.cache_support import cached_store, count_downloads
from tests.cli_runner import as_json, fails, ok
from tests.conftest import StoreEnv
from tests.guarantees.assets import KIB, make_file, make_tree, tree_bytes

__all__ = ["cached_store"]


def snapshot(root: Path) -> dict[str, tuple[int, int]]:
    """Every path under ``root`` with its size and modification time (ns)."""
    return {
        str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns)
        for p in sorted(root.rglob("*"))
    }


@pytest.fixture
def tiers(cached_store: StoreEnv, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """``model`` 0.0 and 0.1 in the store, 0.0 baked into a read-only tier behind the (empty)
    first folder; returns the tier."""
    source = make_tree(tmp_path / "model", {"a.txt": 1000, "w.bin": 100 * KIB})
    store = StorageProvider()
    store.new(str(source), "model")
    baked = tmp_path / "baked"
    baked.mkdir()
    AssetsManager(assets_dir=str(baked)).fetch_asset("model:0.0")  # as an image build would
    holds.release_all()
    make_file(source / "a.txt", 1000)
    store.update(str(source), "model", "0.1")
    monkeypatch.setenv(
        "MODELKIT_ASSETS_DIR", os.pathsep.join([str(cached_store.assets_dir), str(baked)])
    )
    return baked


def test_versions_of_a_read_only_tier_are_served_from_it(
    tiers: Path, cached_store: StoreEnv, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = snapshot(tiers)
    store = StorageProvider()
    downloads = count_downloads(store, monkeypatch)
    info = AssetsManager(storage_provider=store).fetch_asset("model:0.0[w.bin]", return_info=True)
    assert info["path"] == str(tiers / "model" / "0.0" / "w.bin")
    assert info["from_cache"]
    assert downloads["objects"] == []
    monkeypatch.delenv("MODELKIT_STORAGE_PROVIDER")  # pre-downloaded mode sees the tier too
    assert AssetsManager().fetch_asset("model", return_info=True)["version"] == "0.0"
    assert snapshot(tiers) == before


def test_downloads_go_to_the_first_folder_and_reuse_the_tier(
    tiers: Path, cached_store: StoreEnv, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = snapshot(tiers)
    store = StorageProvider()
    downloads = count_downloads(store, monkeypatch)
    info = AssetsManager(storage_provider=store).fetch_asset("model:0.1", return_info=True)
    assert info["path"] == str(cached_store.assets_dir / "model" / "0.1")
    assert [o.rsplit("/", 1)[1] for o in downloads["objects"]] == ["a.txt"]
    assert info["reused_files"] == 1  # w.bin, cloned from the tier
    assert snapshot(tiers) == before


def test_the_cache_commands_never_write_a_read_only_tier(
    tiers: Path, cached_store: StoreEnv
) -> None:
    AssetsManager().fetch_asset("model:0.1")
    holds.release_all()
    before = snapshot(tiers)
    entries = as_json(ok("cache", "list", "--json"))["entries"]
    assert [(e["version"], e["read_only"]) for e in entries] == [("0.0", True), ("0.1", False)]
    assert "read-only" in ok("cache", "list").stdout
    report = as_json(ok("cache", "prune", "--max-size", "0", "--yes", "--json"))
    assert [r["version"] for r in report["removed"]] == ["0.1"]
    assert "read-only folder" in fails("cache", "rm", "model:0.0", "--yes")
    (tiers / "model" / "0.0" / "a.txt").write_bytes(b"x" * 1000)
    before = snapshot(tiers)
    assert "model:0.0[a.txt]" in fails("cache", "verify")
    ok("cache", "verify", "--repair")  # into the first folder, which then serves it
    assert snapshot(tiers) == before
    repaired = AssetsCache(os.environ["MODELKIT_ASSETS_DIR"]).locate("model", "0.0")
    assert repaired == str(cached_store.assets_dir / "model" / "0.0")
    assert tree_bytes(repaired)["a.txt"] != b"x" * 1000


def test_a_missing_tier_is_ignored_with_a_warning(
    cached_store: StoreEnv, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    cache = AssetsCache(os.pathsep.join([str(cached_store.assets_dir), str(tmp_path / "nope")]))
    assert cache.tiers == (str(cached_store.assets_dir),)
    assert "nope does not exist; ignored" in caplog.text
