"""Guarantee 3: one download, many waiters, however long it takes, and a takeover if it dies.

Processes fetch one asset into one assets dir at once over a slow link: the download takes
several times ``MODELKIT_ASSETS_TIMEOUT_S``, yet the waiters wait for it as long as it makes
progress and do not download it again. If its owner is killed, a waiter takes over; if the
owner stalls (SIGSTOP), waiters give up after ``MODELKIT_ASSETS_TIMEOUT_S``, not before.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from modelkit_assets import AssetsManager, StorageProvider
from tests.conftest import StoreEnv
from tests.faultproxy import Faults, Stats
from tests.guarantees.assets import KIB, leftovers, make_file, tree_bytes
from tests.guarantees.faults import FaultInjector
from tests.guarantees.figures import record
from tests.guarantees.processes import Worker, Workers
from tests.servers import Backend

SIZE = 1024 * KIB
#: The link: the download takes 1.33 s, 2.7 times the stall timeout below.
RATE = 768 * KIB
STALL_TIMEOUT_S = 0.5
WAITERS = 3


@pytest.fixture
def push_big(
    store_env: StoreEnv, injector: FaultInjector, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Callable[[], Path]:
    """Short stalls for the workers started from now on; the returned function pushes the
    file asset ``big`` (while they build their clients), then slows the link down."""
    monkeypatch.setenv("MODELKIT_ASSETS_TIMEOUT_S", str(STALL_TIMEOUT_S))

    def push() -> Path:
        source = make_file(tmp_path / "big.bin", SIZE)
        StorageProvider().new(str(source), "big")
        injector.set(Faults(bytes_per_s=RATE))
        return source

    return push


def downloads(stats: Stats) -> float:
    """Downloads of the asset that went through the injector (bytes / size for a network)."""
    return stats.downloads if stats.downloads else round(stats.bytes_down / SIZE, 2)


def wait_for_download_start(assets_dir: Path, owner: Worker, timeout_s: float = 10.0) -> None:
    """Wait until the owner holds the lock and downloads (its heartbeat is there)."""
    heartbeat = assets_dir / ".cache" / "big.lock.heartbeat"
    deadline = time.monotonic() + timeout_s
    while not heartbeat.exists() and time.monotonic() < deadline:
        assert owner.process.is_alive(), owner.finish(expect_exit=None)
        time.sleep(0.01)
    assert heartbeat.exists(), "the owner never started downloading"
    time.sleep(0.1)


def test_waiters_wait_for_a_slow_download_and_do_not_repeat_it(
    backend: Backend,
    store_env: StoreEnv,
    injector: FaultInjector,
    push_big: Callable[[], Path],
    workers: Workers,
) -> None:
    fetchers = workers.start([["fetch", "big"]] * WAITERS)
    asset = push_big()
    started = time.monotonic()
    workers.go(fetchers)
    results = [w.finish()[0] for w in fetchers]
    elapsed = time.monotonic() - started
    stats = injector.stats
    record(
        "3 one download",
        backend,
        processes=WAITERS,
        downloads=downloads(stats),
        seconds=round(elapsed, 2),
        stall_timeout_s=STALL_TIMEOUT_S,
    )
    assert sorted(r["from_cache"] for r in results) == [False] + [True] * (WAITERS - 1)
    for result in results:
        assert tree_bytes(result["path"]) == tree_bytes(asset)
    assert elapsed > 2 * STALL_TIMEOUT_S  # the download did outlast the stall timeout
    assert downloads(stats) < 1.5
    assert leftovers(store_env.assets_dir) == []


def test_a_waiter_takes_over_when_the_owner_dies(
    backend: Backend,
    store_env: StoreEnv,
    injector: FaultInjector,
    push_big: Callable[[], Path],
    workers: Workers,
) -> None:
    (owner,) = workers.start([["fetch", "big"]])
    asset = push_big()
    workers.go([owner])
    waiters = workers.start([["fetch", "big"]] * 2)
    wait_for_download_start(store_env.assets_dir, owner)
    workers.go(waiters)
    time.sleep(0.2)
    assert owner.kill_after(0), "the owner finished before it could be killed"
    results = [w.finish()[0] for w in waiters]
    record("3 takeover", backend, kills=1, downloads=downloads(injector.stats))
    assert sorted(r["from_cache"] for r in results) == [False, True]
    for result in results:
        assert tree_bytes(result["path"]) == tree_bytes(asset)
    assert leftovers(store_env.assets_dir) == []


def test_a_stalled_owner_is_given_up_on_after_the_stall_timeout(
    backend: Backend,
    store_env: StoreEnv,
    injector: FaultInjector,
    push_big: Callable[[], Path],
    workers: Workers,
) -> None:
    owner, waiter = workers.start([["fetch", "big"]] * 2)
    asset = push_big()
    workers.go([owner])
    wait_for_download_start(store_env.assets_dir, owner)
    os.kill(owner.pid, signal.SIGSTOP)
    try:
        workers.go([waiter])
        events = waiter.finish(expect_exit=1)
        waited = time.monotonic() - waiter.started_at
    finally:
        owner.process.kill()
        with contextlib.suppress(ProcessLookupError):
            os.kill(owner.pid, signal.SIGCONT)
    record("3 stalled owner", backend, waited_s=round(waited, 2), stall_timeout_s=STALL_TIMEOUT_S)
    assert events[0]["error"] == "LockTimeoutError", events
    assert STALL_TIMEOUT_S <= waited < STALL_TIMEOUT_S + 5
    owner.finish(expect_exit=None)
    injector.set(Faults())
    info = AssetsManager().fetch_asset("big", return_info=True)  # the dead owner's lock is free
    assert tree_bytes(info["path"]) == tree_bytes(asset)
    assert leftovers(store_env.assets_dir) == []
