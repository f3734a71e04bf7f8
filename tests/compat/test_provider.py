"""modelkit's StorageProvider and AssetsManager keywords and checks."""

from __future__ import annotations

from pathlib import Path

import pytest

from modelkit_assets import errors
from modelkit_assets.manager import AssetsManager
from modelkit_assets.remote import StorageProvider, get_size


@pytest.fixture
def bucket(tmp_path: Path) -> Path:
    path = tmp_path / "bucket"
    path.mkdir()
    return path


def test_force_download_on_the_provider_is_honoured(bucket: Path, tmp_path: Path) -> None:
    source = tmp_path / "f.txt"
    source.write_text("x")
    store = StorageProvider(provider="local", bucket=str(bucket), force_download=True)
    store.new(str(source), "asset")
    (tmp_path / "assets").mkdir()
    manager = AssetsManager(assets_dir=str(tmp_path / "assets"), storage_provider=store)
    assert manager.fetch_asset("asset:0.0", return_info=True)["from_cache"] is False
    assert manager.fetch_asset("asset:0.0", return_info=True)["from_cache"] is False
    assert manager.fetch_asset("asset:0.0", return_info=True, force_download=False)["from_cache"]


@pytest.mark.parametrize("timeout", ["abc", "-1", 0])
def test_the_timeout_is_validated(tmp_path: Path, timeout: object) -> None:
    with pytest.raises(ValueError):
        AssetsManager(assets_dir=str(tmp_path), timeout=timeout)  # type: ignore[arg-type]
    assert AssetsManager(assets_dir=str(tmp_path), timeout="12").timeout == 12


def test_an_assets_dir_inside_the_store_is_refused(
    bucket: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    inside = bucket / "modelkit-assets"
    (inside / "deeper").mkdir(parents=True)
    store = StorageProvider(provider="local", bucket=str(bucket))
    for assets_dir in (inside, inside / "deeper"):
        with pytest.raises(errors.StorageDriverError):
            AssetsManager(assets_dir=str(assets_dir), storage_provider=store)
    monkeypatch.setenv("MODELKIT_STORAGE_PROVIDER", "local")
    monkeypatch.setenv("MODELKIT_STORAGE_BUCKET", str(bucket))
    with pytest.raises(errors.StorageDriverError):
        AssetsManager(assets_dir=str(inside))
    AssetsManager(assets_dir=str(bucket.parent))  # beside the store is fine


def test_lazy_driver_keyword_and_modelkit_attributes(bucket: Path) -> None:
    store = StorageProvider(provider="local", bucket=str(bucket), prefix="p", lazy_driver=True)
    assert store.driver.bucket == str(bucket)
    assert (store.prefix, store.timeout, store.force_download) == ("p", 300, False)
    assert store.get_object_name("a/b", "1.0") == "p/a/b/1.0"
    assert store.get_meta_object_name("a/b", "1.0") == "p/a/b/1.0.meta"
    assert store.get_versions_object_name("a/b") == "p/a/b.versions"


def test_get_size(tmp_path: Path) -> None:
    (tmp_path / "d" / "e").mkdir(parents=True)
    (tmp_path / "d" / "a").write_bytes(b"12345")
    (tmp_path / "d" / "e" / "b").write_bytes(b"123")
    assert get_size(str(tmp_path / "d")) == 8
    assert get_size(str(tmp_path / "d" / "a")) == 5


def test_remote_has_the_names_modelkit_imports_into_it() -> None:
    """modelkit code reads ``remote.has_s3`` and imports driver classes from ``remote``; here
    they resolve on first access, so importing the module loads no SDK."""
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from modelkit_assets import remote\n"
        "assert 'boto3' not in sys.modules and 'google.cloud.storage' not in sys.modules\n"
        "assert remote.has_s3 and remote.has_gcs and remote.has_az\n"
        "from modelkit_assets.remote import (AssetSpec, AzureStorageDriver,"
        " GCSStorageDriverSettings, LocalStorageDriver, S3StorageDriver, StorageDriver)\n"
        "assert issubclass(S3StorageDriver, StorageDriver)"
        " and issubclass(AzureStorageDriver, StorageDriver)\n"
        "assert AssetSpec.__name__ == 'AssetSpec'\n"
        "assert GCSStorageDriverSettings and LocalStorageDriver\n"
        "assert 'boto3' not in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
    from modelkit_assets import remote

    with pytest.raises(AttributeError):
        remote.NoSuchDriver  # noqa: B018
