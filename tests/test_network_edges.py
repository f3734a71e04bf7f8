"""The cloud drivers at the network's edges (issue 16 items 5, 9, 10 and the wrong endpoint):
bodies that break off are retried, a dead endpoint is reported at once and given up on soon,
progress counts the bytes that arrived, an endpoint that is not a store says so.

Every test runs against a real server (SeaweedFS, fake-gcs-server, Azurite) through
:class:`tests.faultproxy.FaultProxy`, whose counters prove that the faults happened.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from modelkit_assets import AssetsManager, StorageProvider
from tests.conftest import StoreEnv
from tests.faultproxy import Faults
from tests.guarantees.assets import KIB, make_tree, tree_bytes
from tests.guarantees.faults import ProxyInjector
from tests.servers import Backend

MIB = 1024 * KIB
RESETS = 20
CLOUD = ["s3-seaweedfs", "gcs", "az"]


@pytest.fixture(params=CLOUD)
def cloud(request: pytest.FixtureRequest) -> Backend:
    """Each cloud backend on a real server (not moto: SeaweedFS is the S3 store here)."""
    backend: Backend = request.getfixturevalue(f"{request.param.replace('-', '_')}_backend")
    return backend


@pytest.fixture
def cloud_env(cloud: Backend, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> StoreEnv:
    """MODELKIT_* pointed at ``cloud`` under a fresh prefix, with a fresh assets dir."""
    assets_dir = tmp_path / "assets"
    assets_dir.mkdir()
    env = StoreEnv(cloud, f"test-{uuid.uuid4().hex[:12]}", assets_dir)
    for key, value in env.env.items():
        monkeypatch.setenv(key, value)
    return env


@pytest.fixture
def proxied(
    cloud: Backend, cloud_env: StoreEnv, monkeypatch: pytest.MonkeyPatch
) -> Iterator[ProxyInjector]:
    """The test's store, reached through a fault proxy (no faults until the test sets some)."""
    injector = ProxyInjector(cloud)
    for key, value in injector.env.items():
        monkeypatch.setenv(key, value)
    try:
        yield injector
    finally:
        injector.close()


@pytest.mark.parametrize("graceful", [False, True], ids=["reset", "cut-short"])
def test_bodies_that_break_off_are_retried_until_the_fetch_succeeds(
    graceful: bool,
    proxied: ProxyInjector,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Connections are reset (or closed short of their Content-Length) in the middle of their
    bodies, more often than the drivers' own GET attempts per file: the core's retries take
    over, within the timeout."""
    monkeypatch.setenv("MODELKIT_STORAGE_TIMEOUT_S", "60")
    caplog.set_level(logging.INFO, logger="modelkit_assets.retry")
    tree = make_tree(
        tmp_path / "model",
        {"a.bin": 600 * KIB, "b.bin": 700 * KIB, "sub/c.bin": 900 * KIB, "large.bin": 9 * MIB},
    )
    StorageProvider().new(str(tree), "model")
    proxied.set(
        Faults(
            resets=RESETS,
            reset_after=(64 * KIB, 512 * KIB),
            cut_gracefully=graceful,
            bytes_per_s=16 * MIB,
        )
    )
    fetched = AssetsManager().fetch_asset("model:0.0")
    stats = proxied.stats
    proxied.set(Faults())
    assert tree_bytes(fetched) == tree_bytes(tree)
    assert stats.resets == RESETS, stats
    print("core retries:", sum("retrying" in r.getMessage() for r in caplog.records))
