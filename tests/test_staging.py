"""Large files of an API push are staged into the store as they are hashed (local driver), then
committed after the claim; nothing staged outlives the push, whatever its outcome."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from modelkit_assets import AssetsManager, StorageProvider, errors
from modelkit_assets.drivers.local import LocalStorageDriver
from modelkit_assets.hashing import digest_file
from tests.conftest import StoreEnv

MiB = 1024 * 1024


def staged_left(store: StorageProvider) -> list[str]:
    if not isinstance(store.driver, LocalStorageDriver):
        return []
    staging = Path(store.driver.bucket) / ".modelkit-staging"
    return sorted(os.listdir(staging)) if staging.exists() else []


def tree(path: Path) -> dict[str, bytes]:
    return {str(p.relative_to(path)): p.read_bytes() for p in path.rglob("*") if p.is_file()}


def test_large_and_small_files_push_and_fetch_whole(store_env: StoreEnv, tmp_path: Path) -> None:
    folder = tmp_path / "model"
    (folder / "sub").mkdir(parents=True)
    (folder / "weights.bin").write_bytes(os.urandom(9 * MiB))
    (folder / "sub" / "vocab.txt").write_bytes(b"a b c")
    store = StorageProvider()
    store.new(str(folder), "model")
    assert staged_left(store) == []
    fetched = Path(AssetsManager().fetch_asset("model:0.0"))
    assert {k: v for k, v in tree(fetched).items() if k != ".SUCCESS"} == tree(folder)
    # Another content at a taken version is refused, and its staged copy dropped.
    (folder / "weights.bin").write_bytes(os.urandom(9 * MiB))
    store.driver.delete_object(store.get_versions_object_name("model"))
    with pytest.raises(errors.VersionConflictError):
        store.new(str(folder), "model")
    assert staged_left(store) == []
    # update_next keeps its staged copies across the versions it tries.
    store.new(str(folder), "model", "1.0")
    plan = store.update_next(str(folder), "model")
    assert plan.version == "1.1"
    assert staged_left(store) == []


def test_local_staged_file_commits_once(tmp_path: Path) -> None:
    bucket = tmp_path / "bucket"
    bucket.mkdir()
    source = tmp_path / "big.bin"
    source.write_bytes(os.urandom(3 * MiB + 5))
    driver = LocalStorageDriver(str(bucket))
    staged = driver.stage_file(str(source), "blake3")
    assert staged is not None
    assert staged.digest == digest_file(str(source))
    assert list(driver.iterate_objects()) == []  # staged is not an object
    staged.commit("p/a/0.0")
    with pytest.raises(errors.ObjectAlreadyExistsError):
        staged.commit("p/a/0.0")
    staged.discard()
    assert list(driver.iterate_objects()) == ["p/a/0.0"]
    assert (bucket / "p" / "a" / "0.0").read_bytes() == source.read_bytes()
    assert os.listdir(bucket / ".modelkit-staging") == []
