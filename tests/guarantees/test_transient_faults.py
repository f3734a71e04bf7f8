"""Guarantee 4: transient faults are survived, and the asset arrives intact.

Connections reset in the middle of uploads and downloads, 5xx answers, slow links and a short
outage, injected between the client and each backend (a fault proxy on loopback, or the
``faulty-local`` driver), are retried within ``MODELKIT_STORAGE_TIMEOUT_S``.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import attrs
import pytest

from modelkit_assets import AssetsManager, StorageProvider
from tests.conftest import StoreEnv
from tests.faultproxy import Faults, Stats
from tests.guarantees.assets import KIB, leftovers, make_file, make_tree, tree_bytes
from tests.guarantees.faults import FaultInjector
from tests.guarantees.figures import record
from tests.servers import Backend

TIMEOUT_S = 20.0
RESETS = 3
HTTP_ERRORS = 2


@pytest.fixture
def sources(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    """A directory asset and a file asset of random bytes; a retry budget for the test."""
    monkeypatch.setenv("MODELKIT_STORAGE_TIMEOUT_S", str(TIMEOUT_S))
    tree = make_tree(tmp_path / "model", {"a.bin": 600 * KIB, "sub/b.bin": 300 * KIB, "c": 2})
    return tree, make_file(tmp_path / "weights.bin", 1024 * KIB)


def check_fetched(manager: AssetsManager, tree: Path, file: Path, force: bool = False) -> None:
    assert tree_bytes(manager.fetch_asset("model:0.0", force_download=force)) == tree_bytes(tree)
    assert tree_bytes(manager.fetch_asset("weights", force_download=force)) == tree_bytes(file)


def mid_transfer_faults(status: int) -> Faults:
    return Faults(
        resets=RESETS, reset_after=(0, 400 * KIB), http_errors=HTTP_ERRORS, http_status=status
    )


def test_resets_and_error_answers_mid_transfer_are_survived(
    backend: Backend,
    store_env: StoreEnv,
    injector: FaultInjector,
    sources: tuple[Path, Path],
) -> None:
    tree, file = sources
    injector.set(mid_transfer_faults(503))
    store = StorageProvider()
    store.new(str(tree), "model")
    store.new(str(file), "weights")
    pushed = injector.stats
    injector.set(mid_transfer_faults(500))
    check_fetched(AssetsManager(), tree, file)
    fetched = injector.stats
    injector.set(Faults())

    injected = pushed.faults + fetched.faults
    record(
        "4 resets and 5xx",
        backend,
        push_resets=pushed.resets,
        push_http_errors=pushed.http_errors,
        fetch_resets=fetched.resets,
        fetch_http_errors=fetched.http_errors,
        faults_injected=injected,
        faults_survived=injected,
    )
    assert leftovers(store_env.assets_dir) == []
    assert (pushed.http_errors, fetched.http_errors) == (HTTP_ERRORS, HTTP_ERRORS)
    assert pushed.resets >= 1
    assert fetched.resets >= 1
    # The store holds exactly what was pushed: a second, fault-free fetch agrees.
    check_fetched(AssetsManager(), tree, file, force=True)


def test_slow_links_deliver_intact_assets(
    backend: Backend,
    store_env: StoreEnv,
    injector: FaultInjector,
    sources: tuple[Path, Path],
) -> None:
    tree, file = sources
    store = StorageProvider()
    store.new(str(tree), "model")
    store.new(str(file), "weights")
    rate = 2048 * KIB
    injector.set(Faults(bytes_per_s=rate, connect_delay_s=0.05))
    started = time.monotonic()
    check_fetched(AssetsManager(), tree, file)
    elapsed = time.monotonic() - started
    stats = injector.stats
    injector.set(Faults())
    record("4 slow link", backend, bytes_per_s=rate, seconds=round(elapsed, 2))
    # At least the 1 MiB file went through at the throttled rate.
    assert elapsed >= 0.8 * (1024 * KIB) / rate
    assert stats.bytes_down >= 1024 * KIB + 900 * KIB


def test_an_outage_shorter_than_the_timeout_is_ridden_out(
    backend: Backend,
    store_env: StoreEnv,
    injector: FaultInjector,
    sources: tuple[Path, Path],
) -> None:
    file = sources[1]
    StorageProvider().new(str(file), "weights")
    outage: list[Stats] = []

    def heal() -> None:
        outage.append(attrs.evolve(injector.stats))
        injector.set(Faults())

    injector.set(Faults(refuse=True))
    timer = threading.Timer(1.5, heal)
    timer.start()
    started = time.monotonic()
    try:
        path = AssetsManager().fetch_asset("weights")
    finally:
        timer.cancel()
    elapsed = time.monotonic() - started
    assert outage, "the fetch ended before the outage did"
    record(
        "4 outage",
        backend,
        outage_s=1.5,
        seconds=round(elapsed, 2),
        faults_injected=outage[0].refused,
        faults_survived=outage[0].refused,
    )
    assert tree_bytes(path) == tree_bytes(file)
    assert outage[0].refused >= 1
    assert elapsed < TIMEOUT_S
