"""AssetsManager: resolution, the cache, pre-downloaded mode, integrity and atomic downloads."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest

from modelkit_assets import AssetsManager, StorageProvider, errors
from modelkit_assets.cache import AssetsCache
from tests.cli_runner import fails, ok
from tests.conftest import StoreEnv


@pytest.fixture
def pushed(store_env: StoreEnv, tmp_path: Path) -> StorageProvider:
    """An asset `asset` with versions 0.0 (a file) and 0.1, 1.0 (directories)."""
    file = tmp_path / "file.txt"
    file.write_text("file v0.0")
    folder = tmp_path / "folder"
    (folder / "sub").mkdir(parents=True)
    (folder / "a.txt").write_text("a")
    (folder / "sub" / "b.txt").write_text("b" * 5000)
    store = StorageProvider()
    store.new(str(file), "asset")
    store.update(str(folder), "asset", "0.1")
    store.update(str(folder), "asset", "1.0")
    return store


def test_pre_downloaded_mode_uses_the_newest_local_version(
    pushed: StorageProvider, store_env: StoreEnv, monkeypatch: pytest.MonkeyPatch
) -> None:
    AssetsManager().fetch_asset("asset:0.0")
    AssetsManager().fetch_asset("asset:0.1")
    monkeypatch.delenv("MODELKIT_STORAGE_PROVIDER")
    manager = AssetsManager()
    assert manager.storage_provider is None
    info = manager.fetch_asset("asset", return_info=True)
    assert (info["version"], info["from_cache"]) == ("0.1", True)
    assert manager.fetch_asset("asset:0", return_info=True)["version"] == "0.1"
    assert "asset:1.0" in fails("fetch", "asset:1.0")
    assert "asset" in fails("fetch", "asset:1")


def test_local_paths_resolve_against_assets_dir_then_cwd_then_absolute(
    store_env: StoreEnv, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Only strings that are not specs, or pre-downloaded mode, look up local paths: with a
    provider configured, a spec names an asset of the store (DESIGN section 5)."""
    (store_env.assets_dir / "some").mkdir()
    (store_env.assets_dir / "some" / "file.txt").write_text("in assets dir")
    elsewhere = tmp_path / "cwd"
    elsewhere.mkdir()
    (elsewhere / "local.bin").write_text("in cwd")
    monkeypatch.chdir(elsewhere)
    manager = AssetsManager()
    with pytest.raises(errors.ObjectDoesNotExistError):
        manager.fetch_asset("some/file.txt")  # a spec: the store has no such asset
    absolute = tmp_path / "abs file.txt"
    absolute.write_text("x")
    assert manager.fetch_asset(str(absolute)) == str(absolute)  # not a spec: a path
    monkeypatch.delenv("MODELKIT_STORAGE_PROVIDER")
    predownloaded = AssetsManager()
    assert predownloaded.fetch_asset("some/file.txt") == str(
        store_env.assets_dir / "some" / "file.txt"
    )
    assert predownloaded.fetch_asset("local.bin") == str(elsewhere / "local.bin")


def test_a_version_without_its_success_marker_is_downloaded_again(
    pushed: StorageProvider, store_env: StoreEnv
) -> None:
    manager = AssetsManager()
    path = Path(manager.fetch_asset("asset:0.1"))
    (path / ".SUCCESS").unlink()
    (path / "a.txt").write_text("garbage")
    info = manager.fetch_asset("asset:0.1", return_info=True)
    assert info["from_cache"] is False
    assert (path / "a.txt").read_text() == "a"
    file_path = Path(manager.fetch_asset("asset:0.0"))
    (file_path.parent / ".0.0.SUCCESS").unlink()
    assert manager.fetch_asset("asset:0.0", return_info=True)["from_cache"] is False
    assert file_path.read_text() == "file v0.0"


def test_integrity_mismatch_is_an_error_never_a_cached_asset(
    pushed: StorageProvider, store_env: StoreEnv, tmp_path: Path
) -> None:
    tampered = tmp_path / "tampered"
    tampered.write_text("B" * 5000)  # same size, other bytes
    pushed.driver.upload_object(
        str(tampered), pushed.get_object_name("asset", "1.0") + "/sub/b.txt"
    )
    line = fails("fetch", "asset:1.0")
    assert "integrity" in line
    assert not (store_env.assets_dir / "asset" / "1.0").exists()
    tampered.write_text("short")
    pushed.driver.upload_object(str(tampered), pushed.get_object_name("asset", "0.0"))
    assert "integrity" in fails("fetch", "asset:0.0")
    assert not (store_env.assets_dir / "asset" / "0.0").exists()
    leftovers = [p for p in (store_env.assets_dir / "asset").iterdir() if ".tmp-" in p.name]
    assert leftovers == []


def test_a_failed_download_leaves_nothing_under_the_final_name(
    pushed: StorageProvider, store_env: StoreEnv
) -> None:
    pushed.driver.delete_object(pushed.get_object_name("asset", "1.0") + "/sub/b.txt")
    assert "does not exist" in fails("fetch", "asset:1.0")
    assert sorted(os.listdir(store_env.assets_dir / "asset")) == []


def test_stale_temporaries_of_a_dead_download_are_cleaned(
    pushed: StorageProvider, store_env: StoreEnv
) -> None:
    folder = store_env.assets_dir / "asset"
    folder.mkdir()
    (folder / ".0.1.tmp-deadbeef").mkdir()
    (folder / ".0.1.tmp-deadbeef" / "a.txt").write_text("half")
    (folder / ".1.0.tmp-cafe").write_text("another version's, also dead")
    ok("fetch", "asset:0.1")
    assert sorted(os.listdir(folder)) == ["0.1"]


def test_force_download_replaces_a_cached_directory(
    pushed: StorageProvider, store_env: StoreEnv
) -> None:
    manager = AssetsManager()
    path = Path(manager.fetch_asset("asset:1.0"))
    (path / "extra.txt").write_text("not part of the asset")
    manager.fetch_asset("asset:1.0", force_download=True)
    assert sorted(p.name for p in path.iterdir()) == [".SUCCESS", "a.txt", "sub"]


def test_store_download_is_modelkit_compatible(pushed: StorageProvider, tmp_path: Path) -> None:
    destination = tmp_path / "elsewhere"
    destination.mkdir()
    result = pushed.download("asset", "0.1", str(destination))
    assert result["path"] == str(destination / "asset" / "0.1")
    assert result["meta"]["contents"] == ["a.txt", "sub/b.txt"]
    assert (destination / "asset" / "0.1" / "sub" / "b.txt").read_text() == "b" * 5000


def test_cache_refuses_names_that_escape(tmp_path: Path) -> None:
    cache = AssetsCache(str(tmp_path))
    with pytest.raises(errors.UnsafePathError):
        cache.asset_path("../x", "0.0")


def test_assets_manager_requires_an_existing_assets_dir(tmp_path: Path) -> None:
    with pytest.raises(errors.AssetsDirDoesNotExistError):
        AssetsManager(assets_dir=str(tmp_path / "nope"))


@pytest.mark.parametrize("spec", [5, None, b"asset:0.0", Path("asset")])
def test_a_spec_of_another_type_is_a_type_error_that_names_it(tmp_path: Path, spec: object) -> None:
    manager = AssetsManager(assets_dir=str(tmp_path))
    with pytest.raises(TypeError, match=f"not {type(spec).__name__}$"):
        manager.fetch_asset(spec)  # type: ignore[call-overload]


def test_metas_that_recorded_sha256_are_checked_with_sha256(
    pushed: StorageProvider, store_env: StoreEnv, tmp_path: Path
) -> None:
    """Earlier versions recorded sha256: those metas still fetch, and are still checked."""
    meta_name = pushed.get_meta_object_name("asset", "1.0")
    meta = json.loads(pushed.driver.read_object(meta_name)[0])
    assert set(meta["files"]["a.txt"]) == {"size", "blake3"}
    folder = tmp_path / "folder"
    meta["files"] = {
        part: {
            "size": info["size"],
            "sha256": hashlib.sha256((folder / part).read_bytes()).hexdigest(),
        }
        for part, info in meta["files"].items()
    }
    pushed.driver.write_object(json.dumps(meta).encode(), meta_name)
    assert pushed.read_meta("asset", "1.0").digests["a.txt"].algorithm == "sha256"
    path = AssetsManager().fetch_asset("asset:1.0")
    assert (Path(path) / "sub" / "b.txt").read_text() == "b" * 5000
    # The bytes stay right; the recorded sha256 changes: the check must use sha256.
    meta["files"]["a.txt"]["sha256"] = hashlib.sha256(b"not a").hexdigest()
    pushed.driver.write_object(json.dumps(meta).encode(), meta_name)
    assert "sha256" in fails("fetch", "asset:1.0", "--force")
