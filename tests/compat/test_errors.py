"""modelkit's ``except`` clauses still catch: the same class, raised in the same case."""

from __future__ import annotations

from pathlib import Path

import pytest

from modelkit_assets import errors
from modelkit_assets.errors import (
    AssetAlreadyExistsError,
    AssetDoesNotExistError,
    AssetsManagerError,
    InvalidAssetSpecError,
    LocalAssetDoesNotExistError,
    ObjectDoesNotExistError,
    StorageDriverError,
)
from modelkit_assets.manager import AssetFetchError, AssetsManager
from modelkit_assets.remote import (
    DriverNotInstalledError,
    NoConfiguredProviderError,
    StorageProvider,
    UnknownDriverError,
)


@pytest.fixture
def local_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> StorageProvider:
    (tmp_path / "bucket").mkdir()
    (tmp_path / "assets").mkdir()
    monkeypatch.setenv("MODELKIT_STORAGE_PROVIDER", "local")
    monkeypatch.setenv("MODELKIT_STORAGE_BUCKET", str(tmp_path / "bucket"))
    monkeypatch.setenv("MODELKIT_ASSETS_DIR", str(tmp_path / "assets"))
    source = tmp_path / "f.txt"
    source.write_text("x")
    store = StorageProvider()
    store.new(str(source), "present", "0.0")
    return store


def test_a_missing_asset_is_an_object_that_does_not_exist(local_store: StorageProvider) -> None:
    manager = AssetsManager()
    for spec in ("missing", "missing:1", "missing:1.0", "present:0.7", "present:3"):
        with pytest.raises(ObjectDoesNotExistError):
            manager.fetch_asset(spec)
    with pytest.raises(ObjectDoesNotExistError):
        local_store.get_versions_info("missing")
    with pytest.raises(ObjectDoesNotExistError):
        local_store.get_asset_meta("present", "0.7")
    with pytest.raises(ObjectDoesNotExistError):
        local_store.download("missing", "0.0", str(Path(manager.assets_dir)))


def test_pushes_raise_modelkits_asset_errors(local_store: StorageProvider, tmp_path: Path) -> None:
    source = tmp_path / "f.txt"
    with pytest.raises(AssetAlreadyExistsError):
        local_store.new(str(source), "present", "0.0")
    with pytest.raises(AssetDoesNotExistError):
        local_store.update(str(source), "missing", "0.1")
    with pytest.raises(AssetsManagerError):
        local_store.update(str(source), "missing", "0.1")


def test_pre_downloaded_mode_partial_version_is_a_local_asset_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MODELKIT_ASSETS_DIR", str(tmp_path))
    manager = AssetsManager()
    with pytest.raises(LocalAssetDoesNotExistError):
        manager.fetch_asset("name:1")
    with pytest.raises(LocalAssetDoesNotExistError):
        manager.fetch_asset("name:1.0")
    with pytest.raises(AssetDoesNotExistError):
        manager.fetch_asset("name")


def test_a_missing_assets_dir_is_a_file_not_found_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        AssetsManager(assets_dir=str(tmp_path / "nope"))


def test_provider_errors_from_modelkits_module(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(UnknownDriverError):
        StorageProvider(provider="nope", bucket="b")
    with pytest.raises(NoConfiguredProviderError):
        StorageProvider()
    assert issubclass(DriverNotInstalledError, errors.ConfigurationError)


def test_spec_errors_are_asset_manager_errors() -> None:
    assert issubclass(InvalidAssetSpecError, AssetsManagerError)
    assert issubclass(errors.UnknownAssetsVersioningSystemError, AssetsManagerError)
    assert issubclass(AssetFetchError, Exception)
    assert issubclass(ObjectDoesNotExistError, StorageDriverError)
