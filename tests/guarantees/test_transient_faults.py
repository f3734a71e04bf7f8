"""Guarantee 4: transient faults are survived, and the asset arrives intact.

Connections reset in the middle of uploads and downloads and 5xx answers on a throttled link,
and a short outage, injected between the client and each backend (a fault proxy on loopback,
or the ``faulty-local`` driver), are retried within ``MODELKIT_STORAGE_TIMEOUT_S``. (Slow links
alone are the subject of test_one_download.py and test_crashes.py.)
"""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path
from typing import Any

import attrs
import pytest

from modelkit_assets import AssetsManager, StorageProvider, errors
from tests.conftest import StoreEnv
from tests.faultproxy import Faults, Stats
from tests.guarantees.assets import KIB, leftovers, make_file, make_tree, tree_bytes
from tests.guarantees.faults import FaultInjector
from tests.guarantees.figures import record
from tests.servers import Backend

TIMEOUT_S = 20.0
RESETS = 2
HTTP_ERRORS = 1
#: The link while faults are injected: slow enough that transfers overlap the faults.
RATE = 4096 * KIB
OUTAGE_S = 0.8


@pytest.fixture
def sources(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    """A directory asset and a file asset of random bytes; a retry budget for the test."""
    monkeypatch.setenv("MODELKIT_STORAGE_TIMEOUT_S", str(TIMEOUT_S))
    tree = make_tree(tmp_path / "model", {"a.bin": 384 * KIB, "sub/b.bin": 192 * KIB, "c": 2})
    return tree, make_file(tmp_path / "weights.bin", 512 * KIB)


def check_fetched(manager: AssetsManager, tree: Path, file: Path, force: bool = False) -> None:
    assert tree_bytes(manager.fetch_asset("model:0.0", force_download=force)) == tree_bytes(tree)
    assert tree_bytes(manager.fetch_asset("weights", force_download=force)) == tree_bytes(file)


def mid_transfer_faults(status: int) -> Faults:
    return Faults(
        resets=RESETS,
        reset_after=(0, 256 * KIB),
        http_errors=HTTP_ERRORS,
        http_status=status,
        bytes_per_s=RATE,
    )


def core_retries(caplog: pytest.LogCaptureFixture) -> int:
    """Faults that outlived the driver's own retries and were retried by the core."""
    return sum("retrying in" in r.getMessage() for r in caplog.records)


def test_resets_and_error_answers_mid_transfer_are_survived(
    backend: Backend,
    store_env: StoreEnv,
    injector: FaultInjector,
    sources: tuple[Path, Path],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="modelkit_assets.retry")
    tree, file = sources
    injector.set(mid_transfer_faults(429))  # throttled
    store = StorageProvider()
    store.new(str(tree), "model")
    store.new(str(file), "weights")
    pushed = injector.stats
    injector.set(mid_transfer_faults(503))
    check_fetched(AssetsManager(), tree, file)
    fetched = injector.stats
    injector.set(Faults())

    injected = pushed.faults + fetched.faults
    record(
        "4 resets, 429 and 503",
        backend,
        push_resets=pushed.resets,
        push_http_errors=pushed.http_errors,
        fetch_resets=fetched.resets,
        fetch_http_errors=fetched.http_errors,
        faults_injected=injected,
        faults_survived=injected,
        core_retries=core_retries(caplog),
    )
    assert leftovers(store_env.assets_dir) == []
    assert (pushed.http_errors, fetched.http_errors) == (HTTP_ERRORS, HTTP_ERRORS)
    assert pushed.resets >= 1
    assert fetched.resets >= 1
    # The store holds exactly what was pushed: a second, fault-free fetch agrees.
    check_fetched(AssetsManager(), tree, file, force=True)


def test_an_outage_shorter_than_the_timeout_is_ridden_out(
    backend: Backend,
    store_env: StoreEnv,
    injector: FaultInjector,
    sources: tuple[Path, Path],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="modelkit_assets.retry")
    file = sources[1]
    StorageProvider().new(str(file), "weights")
    outage: list[Stats] = []

    stop = threading.Event()

    def heal() -> None:
        """End the outage OUTAGE_S after the client first met it: on a loaded machine the
        client can take longer than that to make its first request."""
        first_seen = time.monotonic() + 30
        while not stop.is_set() and time.monotonic() < first_seen:
            if injector.stats.refused:
                break
            time.sleep(0.01)
        if not stop.wait(OUTAGE_S):
            outage.append(attrs.evolve(injector.stats))
            injector.set(Faults())

    injector.set(Faults(refuse=True))
    healer = threading.Thread(target=heal, daemon=True)
    healer.start()
    started = time.monotonic()
    try:
        path = AssetsManager().fetch_asset("weights")
    finally:
        stop.set()
        healer.join()
    elapsed = time.monotonic() - started
    assert outage, "the fetch ended before the outage did"
    record(
        "4 outage",
        backend,
        outage_s=OUTAGE_S,
        seconds=round(elapsed, 2),
        faults_injected=outage[0].refused,
        faults_survived=outage[0].refused,
        core_retries=core_retries(caplog),
    )
    assert tree_bytes(path) == tree_bytes(file)
    assert outage[0].refused >= 1
    assert elapsed < TIMEOUT_S


def test_writes_whose_answer_was_lost_are_recognised(
    backend: Backend,
    store_env: StoreEnv,
    sources: tuple[Path, Path],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Each write of an update lands, then fails as if its answer had been lost on the way
    back; the retried write finds it, and the update keeps its version, listed once."""
    file = sources[1]
    store = StorageProvider()
    store.new(str(file), "weights")
    driver = store.driver
    lost: list[str] = []

    def landed_but_lost(method: str) -> Any:
        real = getattr(driver, method)

        def call(data: Any, object_name: str, **kwargs: Any) -> Any:
            result = real(data, object_name, **kwargs)
            kind = next((k for k in ("meta", "versions") if object_name.endswith(k)), "data")
            if kind not in lost:
                lost.append(kind)
                raise errors.StorageUnavailableError(backend.provider, "the answer was lost")
            return result

        return call

    for method in ("create_object", "write_object"):
        monkeypatch.setattr(driver, method, landed_but_lost(method))
    plan = store.update_next(str(file), "weights")
    record("4 lost answers", backend, faults_injected=len(lost), faults_survived=len(lost))
    assert lost == ["meta", "data", "versions"]
    assert plan.version == "0.1"
    assert store.get_versions_info("weights") == ["0.1", "0.0"]
    assert tree_bytes(AssetsManager().fetch_asset("weights:0.1")) == tree_bytes(file)
