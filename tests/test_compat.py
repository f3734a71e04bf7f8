"""Stores and caches written by modelkit read here, byte for byte."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from modelkit_assets import AssetsManager, StorageProvider
from tests.cli_runner import as_json, ok

DATA = Path(__file__).parent / "data"


@pytest.fixture
def modelkit_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    bucket = tmp_path / "bucket"
    shutil.copytree(DATA / "modelkit_store", bucket)
    (tmp_path / "assets").mkdir()
    monkeypatch.setenv("MODELKIT_STORAGE_PROVIDER", "local")
    monkeypatch.setenv("MODELKIT_STORAGE_BUCKET", str(bucket))
    monkeypatch.setenv("MODELKIT_ASSETS_DIR", str(tmp_path / "assets"))
    return tmp_path / "assets"


def test_fetch_from_a_modelkit_store(modelkit_store: Path) -> None:
    manager = AssetsManager()
    file_info = manager.fetch_asset("category/model:0.0", return_info=True)
    assert Path(file_info["path"]).read_text() == "model weights v0.0\n"
    assert file_info["meta"]["push_date"].year == 2021
    latest = manager.fetch_asset("category/model[sub/nested.txt]", return_info=True)
    assert latest["version"] == "0.1"
    assert Path(latest["path"]).read_text() == "nested v0.1\n"
    # the cache is laid out as modelkit lays it out
    assert (modelkit_store / "category" / "model" / ".0.0.SUCCESS").is_file()
    assert (modelkit_store / "category" / "model" / "0.1" / ".SUCCESS").is_file()


def test_list_and_update_a_modelkit_store(modelkit_store: Path, tmp_path: Path) -> None:
    listing = as_json(ok("list", "--json"))["assets"]
    assert listing[0]["name"] == "category/model"
    assert listing[0]["versions"] == ["0.1", "0.0"]
    assert listing[0]["push_date"].startswith("2021-06-02T08:30:00")
    source = tmp_path / "new.txt"
    source.write_text("new")
    ok("update", str(source), "category/model", "--yes")
    assert StorageProvider().get_versions_info("category/model") == ["0.2", "0.1", "0.0"]
    meta = StorageProvider().get_asset_meta("category/model", "0.1")
    assert meta["contents"] == ["config.txt", "sub/nested.txt"]


def test_pre_downloaded_mode_reads_a_modelkit_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assets = tmp_path / "assets"
    shutil.copytree(DATA / "modelkit_cache", assets)
    monkeypatch.setenv("MODELKIT_ASSETS_DIR", str(assets))
    manager = AssetsManager()
    # 1.0 has no SUCCESS marker: it is incomplete and never served
    assert manager.fetch_asset("category/model", return_info=True)["version"] == "0.1"
    assert Path(manager.fetch_asset("category/model:0.0")).read_text() == "model weights v0.0\n"
    assert Path(manager.fetch_asset("category/model:0[sub/nested.txt]")).exists()
    assert ok("fetch", "category/model:0.1").stdout.strip() == str(
        assets / "category" / "model" / "0.1"
    )
