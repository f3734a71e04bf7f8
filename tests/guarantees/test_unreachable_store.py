"""Guarantee 5: an unreachable store does not take a service down.

The cache holds versions 0.0 and 0.1 of ``model``; the store also has 0.2. With the store
unreachable, in every way it can be, an unpinned fetch (``model``, ``model:0``) returns 0.1,
the newest complete local version, with a warning on stderr, and a pinned fetch of a cached
version (``model:0.0``) touches no network at all. An asset with no local version fails with
the store's error. Each way runs in its own worker process, all at once.

Only network faults fall back: a bucket that does not exist or refused credentials are
mistakes to fix, and fail at once; so does a forced download when the store is out of reach.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from modelkit_assets import AssetsManager, StorageProvider
from modelkit_assets.plugins import reset_registry
from tests.conftest import StoreEnv
from tests.faultproxy import Faults, Stats
from tests.guarantees.assets import make_file
from tests.guarantees.faults import (
    LocalInjector,
    ProxyInjector,
    install_faulty_local,
    redirected,
)
from tests.guarantees.figures import record
from tests.guarantees.processes import Workers
from tests.servers import Backend
from tests.servers.process import free_port

#: Every storage call gives up after this long, so that a black hole costs seconds.
TIMEOUT_S = "0.5"
WARNING = re.compile(r"the store cannot be reached \(.+\); using model:0\.1 from ")


class Ways:
    """The ways a store can be unreachable, each an environment for a worker."""

    def __init__(self, backend: Backend, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
        self.envs: dict[str, dict[str, str]] = {}
        self.proxies: list[ProxyInjector] = []
        self.counters: dict[str, LocalInjector | ProxyInjector] = {}
        if backend.provider == "local":
            self._local(backend, tmp_path, monkeypatch)
        else:
            self._network(backend)

    def _network(self, backend: Backend) -> None:
        self.envs["refused"] = redirected(backend.env, free_port())
        self.envs["unknown host"] = {
            key: value.replace("//127.0.0.1:", "//store.invalid:")
            for key, value in backend.env.items()
        }
        faults = {
            "reset": Faults(refuse=True),
            "503 forever": Faults(http_errors=10**9, http_status=503),
            "black hole": Faults(blackhole=True),
            "pinned": Faults(),  # a working link: the pinned fetch must not even use it
        }
        for way, fault in faults.items():
            proxy = ProxyInjector(backend)
            proxy.set(fault)
            self.proxies.append(proxy)
            self.counters[way] = proxy
            self.envs[way] = proxy.env

    def _local(self, backend: Backend, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        site = tmp_path / "site"
        install_faulty_local(site)
        faults = {
            "refused": Faults(refuse=True),
            "503 forever": Faults(http_errors=10**9, http_status=503),
            "black hole": Faults(blackhole=True),
            "pinned": Faults(),
        }
        for i, (way, fault) in enumerate(faults.items()):
            injector = LocalInjector(site, tmp_path / f"faults-{i}")
            injector.set(fault)
            self.counters[way] = injector
            self.envs[way] = injector.env

    def stats(self, way: str) -> Stats:
        return self.counters[way].stats

    def close(self) -> None:
        for proxy in self.proxies:
            proxy.close()


@pytest.fixture
def ways(
    backend: Backend, store_env: StoreEnv, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Ways]:
    monkeypatch.setenv("MODELKIT_STORAGE_TIMEOUT_S", TIMEOUT_S)
    built = Ways(backend, tmp_path, monkeypatch)
    try:
        yield built
    finally:
        built.close()


def populate(tmp_path: Path) -> None:
    """``model`` 0.0, 0.1 cached and 0.2 in the store, ``other`` only in the store."""
    store = StorageProvider()
    for version in ("0.0", "0.1", "0.2"):
        source = make_file(tmp_path / f"model-{version}.bin", 1000)
        store.push(str(source), "model", version)
    store.new(str(make_file(tmp_path / "other.bin", 10)), "other")
    manager = AssetsManager(storage_provider=store)
    for version in ("0.0", "0.1"):
        manager.fetch_asset(f"model:{version}")


def test_unpinned_fetches_fall_back_to_local_versions_and_pinned_need_no_network(
    backend: Backend, store_env: StoreEnv, ways: Ways, workers: Workers, tmp_path: Path
) -> None:
    unreachable = [way for way in ways.envs if way != "pinned"]
    fetching = {
        way: workers.start([["fetch", "model,model:0,model:0.0"]], ways.envs[way])[0]
        for way in unreachable
    }
    failing = workers.start([["fetch", "other"]], ways.envs[unreachable[0]])[0]
    (pinned,) = workers.start([["fetch", "model:0.0"]], ways.envs["pinned"])
    populate(tmp_path)  # while the workers build their clients
    workers.go([*fetching.values(), failing, pinned])

    for way, worker in fetching.items():
        events = worker.finish()
        versions = [(e["version"], e["from_cache"]) for e in events if "version" in e]
        assert versions == [("0.1", True), ("0.1", True), ("0.0", True)], (way, events)
        assert len(WARNING.findall(worker.stderr)) == 2, (way, worker.stderr)
    failure = failing.finish(expect_exit=1)
    assert failure[0]["error"] == "StorageUnavailableError", failure
    assert pinned.finish()[0]["version"] == "0.0"
    pinned_calls = ways.stats("pinned").connections
    record(
        "5 unreachable store",
        backend,
        ways=len(unreachable),
        fallbacks=2 * len(unreachable),
        pinned_network_calls=pinned_calls,
    )
    assert pinned_calls == 0
    for way, counter in ways.counters.items():
        if way != "pinned":
            assert counter.stats.faults >= 1, way  # the store really was out of reach


def test_configuration_errors_and_forced_downloads_never_fall_back(
    backend: Backend,
    store_env: StoreEnv,
    ways: Ways,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from modelkit_assets import errors

    populate(tmp_path)
    refused = ways.envs.get("refused") or ways.envs["reset"]
    with monkeypatch.context() as patch:
        for key, value in refused.items():
            patch.setenv(key, value)
        if backend.provider == "local":
            patch.syspath_prepend(str(tmp_path / "site"))  # the fault-injecting local driver
        reset_registry()
        with pytest.raises(errors.StorageUnavailableError):
            AssetsManager().fetch_asset("model", force_download=True)
        with pytest.raises(errors.StorageUnavailableError):
            AssetsManager().fetch_asset("model:0.0", force_download=True)
        assert AssetsManager().fetch_asset("model", return_info=True)["version"] == "0.1"
    reset_registry()
    missing = str(tmp_path / "unmounted") if backend.provider == "local" else "no-such-bucket-x"
    monkeypatch.setenv("MODELKIT_STORAGE_BUCKET", missing)
    for spec in ("model", "model:0"):
        with pytest.raises(errors.BucketDoesNotExistError):
            AssetsManager().fetch_asset(spec)
    assert AssetsManager().fetch_asset("model:0.0", return_info=True)["from_cache"] is True
