"""Guarantee 6: every downloaded file is checked against the size and digest of its ``.meta``.

A mismatch, whether the object was damaged in the store or its bytes in transit, is an error,
never a cached asset: nothing is left under the final name, no SUCCESS marker, no temporary.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from modelkit_assets import AssetsManager, StorageProvider, errors
from modelkit_assets.cache import AssetsCache
from tests.cli_runner import fails
from tests.conftest import StoreEnv
from tests.faultproxy import Faults
from tests.guarantees.assets import KIB, leftovers, make_file, make_tree, tree_bytes
from tests.guarantees.faults import FaultInjector
from tests.guarantees.figures import record
from tests.servers import Backend


def assert_not_cached(assets_dir: Path, name: str, version: str) -> None:
    cache = AssetsCache(str(assets_dir))
    assert not cache.is_complete(name, version)
    assert not os.path.lexists(cache.asset_path(name, version))
    assert leftovers(assets_dir) == []


def replace_object(store: StorageProvider, object_name: str, data: bytes, tmp_path: Path) -> None:
    """Overwrite an object behind the core's back, as damage in the store would."""
    damaged = tmp_path / "damaged"
    damaged.write_bytes(data)
    store.driver.upload_object(str(damaged), object_name)


def test_objects_damaged_in_the_store_are_refused_and_never_cached(
    backend: Backend, store_env: StoreEnv, tmp_path: Path
) -> None:
    file = make_file(tmp_path / "weights.bin", 100 * KIB)
    tree = make_tree(tmp_path / "model", {"a.bin": 50 * KIB, "sub/b.bin": 50 * KIB})
    store = StorageProvider()
    store.new(str(file), "weights")
    store.new(str(tree), "model")
    flipped = bytearray(file.read_bytes())
    flipped[12345] ^= 0x01
    replace_object(store, store.get_object_name("weights", "0.0"), bytes(flipped), tmp_path)
    part = f"{store.get_object_name('model', '0.0')}/sub/b.bin"
    replace_object(store, part, (tree / "sub" / "b.bin").read_bytes()[:-1], tmp_path)

    manager = AssetsManager()
    refused = 0
    for spec, what in (("weights", "weights:0.0"), ("model:0", "model:0.0[sub/b.bin]")):
        with pytest.raises(errors.AssetIntegrityError) as raised:
            manager.fetch_asset(spec)
        assert what in str(raised.value)
        assert_not_cached(store_env.assets_dir, spec.split(":")[0], "0.0")
        refused += 1
    assert "integrity" in fails("fetch", "weights")
    assert_not_cached(store_env.assets_dir, "weights", "0.0")
    record("6 damaged in store", backend, mismatches=refused + 1, refused=refused + 1, cached=0)

    replace_object(store, store.get_object_name("weights", "0.0"), file.read_bytes(), tmp_path)
    assert tree_bytes(manager.fetch_asset("weights")) == tree_bytes(file)


def test_bytes_damaged_in_transit_are_never_cached(
    backend: Backend, store_env: StoreEnv, injector: FaultInjector, tmp_path: Path
) -> None:
    file = make_file(tmp_path / "weights.bin", 1024 * KIB)
    StorageProvider().new(str(file), "weights")
    injector.set(Faults(corruptions=1, corrupt_at=(200 * KIB, 800 * KIB)))
    try:
        path = AssetsManager().fetch_asset("weights")
    except (errors.AssetIntegrityError, errors.StorageDriverError) as exc:
        outcome = type(exc).__name__  # refused; a driver may also catch it with its checksum
        assert_not_cached(store_env.assets_dir, "weights", "0.0")
    else:
        outcome = "detected and downloaded again"
        assert tree_bytes(path) == tree_bytes(file)
    stats = injector.stats
    injector.set(Faults())
    record("6 damaged in transit", backend, corruptions=stats.corruptions, outcome=outcome)
    assert stats.corruptions == 1
    assert tree_bytes(AssetsManager().fetch_asset("weights")) == tree_bytes(file)
