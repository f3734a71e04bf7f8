"""Bad input: one clear line on stderr, a non-zero exit, no traceback, nothing lost."""

from __future__ import annotations

from pathlib import Path

import pytest

from modelkit_assets import StorageProvider
from tests.cli_runner import fails, ok
from tests.conftest import StoreEnv


@pytest.fixture
def asset_file(tmp_path: Path) -> Path:
    path = tmp_path / "asset.txt"
    path.write_text("content")
    return path


@pytest.fixture
def local_store(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    bucket = tmp_path / "bucket"
    assets = tmp_path / "assets"
    bucket.mkdir()
    assets.mkdir()
    monkeypatch.setenv("MODELKIT_STORAGE_PROVIDER", "local")
    monkeypatch.setenv("MODELKIT_STORAGE_BUCKET", str(bucket))
    monkeypatch.setenv("MODELKIT_ASSETS_DIR", str(assets))
    return bucket


def test_missing_source_path(local_store: Path, tmp_path: Path) -> None:
    line = fails("new", str(tmp_path / "nope"), "name", "--yes")
    assert "nope" in line
    assert "does not exist" in line


@pytest.mark.parametrize(
    "name", ["bad name!", "../escape", "/abs", "a/../b", "a//b", "_under", "trailing-", "C:\\x"]
)
def test_invalid_names(local_store: Path, asset_file: Path, name: str) -> None:
    line = fails("new", str(asset_file), name, "--yes", code=2)
    assert "invalid" in line or "unsafe" in line


def test_new_on_existing_asset_leaves_it_untouched(
    store_env: StoreEnv, asset_file: Path, tmp_path: Path
) -> None:
    ok("new", str(asset_file), "name", "--yes")
    other = tmp_path / "other.txt"
    other.write_text("other content")
    assert "already exists" in fails("new", str(other), "name", "--yes")
    path = Path(ok("fetch", "name:0.0").stdout.strip())
    assert path.read_text() == "content"
    assert StorageProvider().get_versions_info("name") == ["0.0"]


def test_update_unknown_asset_or_major(store_env: StoreEnv, asset_file: Path) -> None:
    assert "does not exist" in fails("update", str(asset_file), "unknown", "--yes")
    ok("new", str(asset_file), "name", "--yes")
    line = fails("update", str(asset_file), "name:3", "--yes")
    assert "no major version 3" in line
    assert "name:0.0" not in fails("update", str(asset_file), "name:0.0", "--yes", code=2)


def test_fetch_unknown_asset_or_version(store_env: StoreEnv, asset_file: Path) -> None:
    assert "does not exist" in fails("fetch", "unknown")
    ok("new", str(asset_file), "name", "--yes")
    assert "name:0.7" in fails("fetch", "name:0.7")
    assert "name:4" in fails("fetch", "name:4")


def test_unknown_provider_lists_the_available_ones(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("MODELKIT_STORAGE_PROVIDER", "ftp")
    monkeypatch.setenv("MODELKIT_ASSETS_DIR", str(tmp_path))
    line = fails("list", code=2)  # a bad setting value: a usage error
    assert "unknown storage provider 'ftp'" in line
    assert "MODELKIT_STORAGE_PROVIDER" in line
    assert "local" in line
    assert "ftp" in fails("fetch", "name:1.0", code=2)


def test_local_bucket_that_does_not_exist(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("MODELKIT_STORAGE_PROVIDER", "local")
    monkeypatch.setenv("MODELKIT_STORAGE_BUCKET", str(tmp_path / "missing-bucket"))
    assert "missing-bucket" in fails("list")


def test_assets_dir_that_does_not_exist(
    local_store: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("MODELKIT_ASSETS_DIR", str(tmp_path / "missing-assets"))
    line = fails("fetch", "name:0.0")
    assert "missing-assets" in line
    assert "MODELKIT_ASSETS_DIR" in line


def _corrupt(store: StorageProvider, object_name: str, data: bytes) -> None:
    store.driver.write_object(data, object_name)


@pytest.mark.parametrize(
    "content",
    [
        b"not json",
        b"[]",
        b'{"is_directory": true}',
        b'{"push_date": "x", "is_directory": 1}',
        b'{"push_date": "2024-01-01T00:00:00+00:00", "is_directory": true, "contents": "a"}',
    ],
)
def test_corrupt_meta(store_env: StoreEnv, asset_file: Path, content: bytes) -> None:
    store = StorageProvider()
    store.new(str(asset_file), "name")
    _corrupt(store, store.get_meta_object_name("name", "0.0"), content)
    line = fails("fetch", "name:0.0")
    assert "corrupt" in line
    assert ".meta" in line
    assert not (store_env.assets_dir / "name" / "0.0").exists()


@pytest.mark.parametrize("content", [b"{", b'{"versions": "0.0"}', b'{"versions": ["x.y"]}', b"{}"])
def test_corrupt_versions(store_env: StoreEnv, asset_file: Path, content: bytes) -> None:
    store = StorageProvider()
    store.new(str(asset_file), "name")
    _corrupt(store, store.get_versions_object_name("name"), content)
    assert "corrupt" in fails("fetch", "name")
    assert "corrupt" in fails("list")
    assert "corrupt" in fails("update", str(asset_file), "name", "--yes")


@pytest.mark.parametrize(
    "spec", ["name:1.2.3.4", "name:1.x", "name:[broken", "name:", "name[a]]", "name:01"]
)
def test_malformed_specs(local_store: Path, spec: str) -> None:
    line = fails("fetch", spec, code=2)  # a usage error
    assert "invalid" in line


def test_unsafe_meta_contents_are_refused(store_env: StoreEnv, asset_file: Path) -> None:
    store = StorageProvider()
    store.new(str(asset_file), "name")
    for part in ("../../escaped", "/etc/passwd", "C:/windows", "a/../../b"):
        _corrupt(
            store,
            store.get_meta_object_name("name", "0.0"),
            b'{"push_date": "2024-01-01T00:00:00+00:00", "is_directory": true, "contents": ["%s"]}'
            % part.encode(),
        )
        line = fails("fetch", "name:0.0")
        assert "unsafe" in line
    assert not (store_env.assets_dir.parent / "escaped").exists()


def test_unsafe_sub_part(local_store: Path) -> None:
    assert "unsafe" in fails("fetch", "name:0.0[../../x]", code=2)
    assert "unsafe" in fails("fetch", "name:0.0[C:/windows]", code=2)


def test_invalid_prefix(local_store: Path, asset_file: Path) -> None:
    line = fails("new", str(asset_file), "name", "--storage-prefix", "../up", "--yes", code=2)
    assert "unsafe" in line


def test_usage_errors_exit_2(local_store: Path) -> None:
    from tests.cli_runner import run

    assert run("new").exit_code == 2
    assert run("fetch", "--nope").exit_code == 2


def test_new_at_a_given_version(store_env: StoreEnv, asset_file: Path) -> None:
    assert "complete version" in fails("new", str(asset_file), "name:1", "--yes", code=2)
    assert "name:2.3" in ok("new", str(asset_file), "name:2.3", "--yes").stdout
    assert StorageProvider().get_versions_info("name") == ["2.3"]


def test_new_after_an_interrupted_new_with_other_content_says_what_to_do(
    store_env: StoreEnv, asset_file: Path, tmp_path: Path
) -> None:
    store = StorageProvider()
    other = tmp_path / "other.txt"
    other.write_text("what the interrupted push sent")
    # what a push killed right after its claim leaves: a .meta, no .versions
    store.push(str(other), "name", "0.0")
    store.driver.delete_object(store.get_versions_object_name("name"))
    line = fails("new", str(asset_file), "name", "--yes")
    assert "unfinished push" in line
    assert "name:VERSION" in line
    assert "does not exist" in fails("update", str(asset_file), "name", "--yes")
    ok("new", str(asset_file), "name:0.1", "--yes")
    assert Path(ok("fetch", "name").stdout.strip()).read_text() == "content"
    store.push(str(other), "resumed", "0.0")
    store.driver.delete_object(store.get_versions_object_name("resumed"))
    ok("new", str(other), "resumed", "--yes")  # the same content as the claim: it resumes
    assert store.get_versions_info("resumed") == ["0.0"]
