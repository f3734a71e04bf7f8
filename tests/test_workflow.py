"""The documented workflow end to end through the CLI, on every backend."""

from __future__ import annotations

import datetime
import json
import os
import types
from pathlib import Path
from typing import Any

import blake3
import pytest

import modelkit_assets.push
from modelkit_assets import AssetsManager, StorageProvider, errors
from modelkit_assets.meta import AssetMeta
from modelkit_assets.push import Pusher
from tests.cli_runner import as_json, ok, run
from tests.conftest import StoreEnv


@pytest.fixture
def sources(tmp_path: Path) -> dict[str, Path]:
    """A file and a directory with nested folders and hidden files."""
    weights = tmp_path / "src" / "weights.bin"
    weights.parent.mkdir()
    weights.write_bytes(b"\x00weights\xff" * 100)
    folder = tmp_path / "src" / "model"
    (folder / "vocab" / ".hidden").mkdir(parents=True)
    (folder / "config.json").write_text('{"dim": 3}')
    (folder / "vocab" / "words.txt").write_text("hello\nworld\n")
    (folder / "vocab" / ".hidden" / ".secret").write_text("s")
    (folder / ".gitignore").write_text("*")
    return {"file": weights, "dir": folder}


def test_new_update_bump_list_fetch(store_env: StoreEnv, sources: dict[str, Path]) -> None:
    assert "0.0" in ok("new", str(sources["file"]), "cat/name", "--yes").stdout
    assert "cat/name:0.1" in ok("update", str(sources["dir"]), "cat/name", "--yes").stdout
    assert (
        "cat/name:1.0"
        in ok("update", str(sources["file"]), "cat/name", "--bump-major", "--yes").stdout
    )
    assert "cat/name:0.2" in ok("update", str(sources["dir"]), "cat/name:0", "--yes").stdout
    assert "cat/name:1.1" in ok("update", str(sources["dir"]), "cat/name", "--yes").stdout

    listing = as_json(ok("list", "--json"))
    assert listing["assets"] == [
        {
            "name": "cat/name",
            "versions": ["1.1", "1.0", "0.2", "0.1", "0.0"],
            "latest": "1.1",
            "push_date": listing["assets"][0]["push_date"],
            "versioning": "major_minor",
            "error": None,
        }
    ]
    assert "cat/name" in ok("list").stdout

    path = Path(ok("fetch", "cat/name:0.1").stdout.strip())
    assert path == store_env.assets_dir / "cat" / "name" / "0.1"
    assert (path / "vocab" / "words.txt").read_text() == "hello\nworld\n"
    assert (path / "vocab" / ".hidden" / ".secret").read_text() == "s"
    assert (path / ".gitignore").read_text() == "*"
    file_path = Path(ok("fetch", "cat/name:1.0").stdout.strip())
    assert file_path.read_bytes() == sources["file"].read_bytes()


def test_fetch_resolves_partial_versions_and_sub_parts(
    store_env: StoreEnv, sources: dict[str, Path]
) -> None:
    store = StorageProvider()
    store.new(str(sources["dir"]), "name")
    for version in ("0.1", "1.0", "10.0", "1.1"):
        store.update(str(sources["dir"]), "name", version)
    manager = AssetsManager()
    assert manager.fetch_asset("name", return_info=True)["version"] == "10.0"
    assert manager.fetch_asset("name:1", return_info=True)["version"] == "1.1"  # never 10.x
    assert manager.fetch_asset("name:0", return_info=True)["version"] == "0.1"
    assert manager.fetch_asset("name:1.0", return_info=True)["version"] == "1.0"
    info = manager.fetch_asset("name:0[vocab/words.txt]", return_info=True)
    assert Path(info["path"]).read_text() == "hello\nworld\n"
    assert info["base_asset_path"] == str(store_env.assets_dir / "name" / "0.1")


def test_second_fetch_comes_from_cache_and_force_downloads(
    store_env: StoreEnv, sources: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    StorageProvider().new(str(sources["file"]), "asset")
    manager = AssetsManager()
    first = manager.fetch_asset("asset:0.0", return_info=True)
    assert first["from_cache"] is False
    assert first["meta"]["is_directory"] is False
    assert manager.fetch_asset("asset:0.0", return_info=True)["from_cache"] is True
    assert manager.fetch_asset("asset", return_info=True)["from_cache"] is True
    assert (
        manager.fetch_asset("asset", return_info=True, force_download=True)["from_cache"] is False
    )
    monkeypatch.setenv("MODELKIT_STORAGE_FORCE_DOWNLOAD", "1")
    assert manager.fetch_asset("asset:0.0", return_info=True)["from_cache"] is False
    assert json.loads(ok("fetch", "asset:0.0", "--json").stdout)["from_cache"] is False


def test_simple_date_versions(
    store_env: StoreEnv, sources: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MODELKIT_ASSETS_VERSIONING_SYSTEM", "simple_date")
    ok("new", str(sources["file"]), "dated", "--yes")
    ok("update", str(sources["dir"]), "dated", "--yes")
    versions = as_json(ok("list", "--json"))["assets"][0]["versions"]
    assert len(versions) == 2
    assert versions[0] > versions[1]
    for version in versions:
        assert len(version) == len("2024-01-31T12-00-00Z")
        assert version[10] == "T"
        assert version.endswith("Z")
    path = Path(ok("fetch", "dated").stdout.strip())
    assert path.name == versions[0]
    assert (path / "config.json").exists()


def test_confirmation_prompt(store_env: StoreEnv, sources: dict[str, Path]) -> None:
    result = run("new", str(sources["file"]), "asked", input="n\n")
    assert result.exit_code == 1
    assert "Aborted" in result.stderr
    assert "0.0" in result.stderr  # what would be pushed is shown before asking
    assert not StorageProvider().asset_exists("asked")
    run("new", str(sources["file"]), "asked", input="whatever\n")
    assert not StorageProvider().asset_exists("asked")
    assert ok("new", str(sources["file"]), "asked", input="y\n").stdout.startswith("Pushed")
    assert run("update", str(sources["file"]), "asked", input="\n").exit_code == 1
    assert StorageProvider().get_versions_info("asked") == ["0.0"]


def test_dry_run_writes_nothing(store_env: StoreEnv, sources: dict[str, Path]) -> None:
    assert "Dry run" in ok("new", str(sources["dir"]), "dry", "--dry-run").stdout
    store = StorageProvider()
    assert list(store.driver.iterate_objects(store.prefix + "/")) == []
    ok("new", str(sources["dir"]), "dry", "--yes")
    before = sorted(store.driver.iterate_objects(store.prefix + "/"))
    assert "0.1" in ok("update", str(sources["file"]), "dry", "--dry-run").stdout
    assert sorted(store.driver.iterate_objects(store.prefix + "/")) == before


def test_store_layout_is_modelkits(store_env: StoreEnv, sources: dict[str, Path]) -> None:
    store = StorageProvider()
    store.new(str(sources["dir"]), "layout/dir")
    store.update(str(sources["file"]), "layout/dir", "0.1")
    p = store.prefix
    assert sorted(store.driver.iterate_objects(p + "/")) == sorted(
        [
            f"{p}/layout/dir.versions",
            f"{p}/layout/dir/0.0.meta",
            f"{p}/layout/dir/0.0/.gitignore",
            f"{p}/layout/dir/0.0/config.json",
            f"{p}/layout/dir/0.0/vocab/.hidden/.secret",
            f"{p}/layout/dir/0.0/vocab/words.txt",
            f"{p}/layout/dir/0.1.meta",
            f"{p}/layout/dir/0.1",
        ]
    )
    versions = json.loads(store.driver.read_object(f"{p}/layout/dir.versions")[0])
    # modelkit's shape, with the asset's versioning system recorded (modelkit ignores the key)
    assert versions == {"versions": ["0.1", "0.0"], "versioning": "major_minor"}
    meta = json.loads(store.driver.read_object(f"{p}/layout/dir/0.0.meta")[0])
    assert meta["is_directory"] is True
    assert meta["contents"] == [
        ".gitignore",
        "config.json",
        "vocab/.hidden/.secret",
        "vocab/words.txt",
    ]
    assert set(meta["files"]) == set(meta["contents"])
    assert meta["files"]["config.json"]["size"] == len('{"dim": 3}')
    file_meta = json.loads(store.driver.read_object(f"{p}/layout/dir/0.1.meta")[0])
    assert file_meta["is_directory"] is False
    assert file_meta["size"] == sources["file"].stat().st_size
    assert file_meta["blake3"] == blake3.blake3(sources["file"].read_bytes()).hexdigest()


def test_a_push_replaces_an_object_a_killed_push_left_half_written(
    store_env: StoreEnv, tmp_path: Path
) -> None:
    """A push killed while copying leaves its claim and an object cut short (the local driver
    creates objects in place); pushing the same content again completes the version."""
    weights = tmp_path / "weights.bin"
    weights.write_bytes(os.urandom(300_000))
    store = StorageProvider()
    store.new(str(weights), "half")
    # Back to the state the killed push left: claimed, unpublished, the object cut short.
    store.driver.delete_object(store.get_versions_object_name("half"))
    cut = tmp_path / "cut.bin"
    cut.write_bytes(weights.read_bytes()[:1000])
    store.driver.upload_object(str(cut), store.get_object_name("half", "0.0"))
    store.new(str(weights), "half")
    assert store.get_versions_info("half") == ["0.0"]
    fetched = AssetsManager().fetch_asset("half:0.0")
    assert Path(fetched).read_bytes() == weights.read_bytes()
    # Other content never replaces anything: the claim says whose version it is.
    weights.write_bytes(b"other")
    store.driver.delete_object(store.get_versions_object_name("half"))
    with pytest.raises(errors.VersionConflictError):
        store.new(str(weights), "half")


def test_a_replaced_object_gets_the_bytes_that_were_hashed(
    store_env: StoreEnv, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The source changes after the scan of a push that finds an object half-written: what
    replaces it is what the scan hashed (and the .meta records), so every fetch checks out."""
    weights = tmp_path / "weights.bin"
    weights.write_bytes(os.urandom(300_000))
    scanned = weights.read_bytes()
    store = StorageProvider()
    store.new(str(weights), "edited")
    store.driver.delete_object(store.get_versions_object_name("edited"))
    store.driver.write_object(scanned[:1000], store.get_object_name("edited", "0.0"))
    claim = Pusher.claim

    def claim_then_edit(self: Pusher, *args: Any, **kwargs: Any) -> str | None:
        claimed = claim(self, *args, **kwargs)
        weights.write_bytes(b"edited after the scan")
        return claimed

    monkeypatch.setattr(Pusher, "claim", claim_then_edit)
    store.new(str(weights), "edited")
    fetched = AssetsManager().fetch_asset("edited:0.0", force_download=True)
    assert Path(fetched).read_bytes() == scanned


def test_twin_updates_at_the_same_instant_get_their_own_versions(
    store_env: StoreEnv, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two processes updating with the same bytes within one microsecond: the second must not
    take the first one's claim for its own (push dates coincide; claim tokens do not)."""
    weights = tmp_path / "weights.bin"
    weights.write_bytes(b"the same bytes")
    store = StorageProvider()
    store.new(str(weights), "twins")
    # Now: a claim older than MODELKIT_STORAGE_CLAIM_TIMEOUT_S would rightly be taken over.
    instant = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)

    class Frozen(datetime.datetime):
        @classmethod
        def now(cls, tz: datetime.tzinfo | None = None) -> Frozen:
            return cls.fromtimestamp(instant.timestamp(), tz)

    # The store's clock only (signing requests with a frozen clock would fail).
    clock = types.SimpleNamespace(datetime=Frozen, timezone=datetime.timezone)
    monkeypatch.setattr(modelkit_assets.push, "datetime", clock)
    # The first twin has claimed 0.1 at that instant and not published it yet.
    digest = store.scan(str(weights)).files[0].digest
    first = AssetMeta(instant, is_directory=False, digests={"": digest}, claim="first twin")
    store.driver.write_object(first.to_json(), store.get_meta_object_name("twins", "0.1"))
    assert store.update_next(str(weights), "twins").version == "0.2"
