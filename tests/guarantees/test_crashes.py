"""Guarantee 2: crashes never serve partial data, and a killed push can be retried.

Worker processes fetch and push over a throttled link (so that a transfer takes a fraction of
a second) and are killed with SIGKILL at spread moments, from just after they start to after
they could have finished. Then:

- a fetch again returns exactly the bytes pushed, and whatever the killed fetch left behind
  (temporaries, a lock) is cleaned; a version the cache calls complete is never partial;
- a killed push has published its version only if it finished; retried with the same content it
  succeeds (the objects it left are accepted), while different content is refused.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from modelkit_assets import AssetsManager, StorageProvider, errors
from modelkit_assets.cache import AssetsCache
from tests.conftest import StoreEnv
from tests.faultproxy import Faults
from tests.guarantees.assets import KIB, leftovers, make_file, make_tree, tree_bytes
from tests.guarantees.faults import FaultInjector
from tests.guarantees.figures import record
from tests.guarantees.processes import Worker, Workers
from tests.servers import Backend

#: Bandwidth per connection while workers fetch (768 KiB take 0.5 s) and push (576 KiB in two
#: connections take 0.4 s).
FETCH_RATE = 1536 * KIB
PUSH_RATE = 768 * KIB
#: When each worker is killed, in seconds after it was released.
FETCH_KILLS = {"model:0.0": (0.04, 0.3), "weights": (0.15, 0.45)}
#: Marks the fetch killed as soon as its download shows on disk.
MIDWAY = -1.0
PUSH_KILLS = (0.03, 0.18, 0.35)
NEW_KILLS = (0.1, 0.28)


@pytest.fixture
def slow(monkeypatch: pytest.MonkeyPatch) -> None:
    """Two transfers at a time, so that each stage of a transfer lasts long enough to hit."""
    monkeypatch.setenv("MODELKIT_STORAGE_MAX_WORKERS", "2")
    monkeypatch.setenv("MODELKIT_STORAGE_TIMEOUT_S", "20")


def kill_in_order(plans: list[tuple[Worker, float]]) -> int:
    """Kill each worker at its moment; return how many were still working when killed."""
    return sum(worker.kill_after(delay) for worker, delay in sorted(plans, key=lambda p: p[1]))


def kill_when_writing(worker: Worker, cache: Path, timeout_s: float = 30.0) -> bool:
    """Kill ``worker`` as soon as a temporary download shows in ``cache``; whether it was
    still working then."""
    deadline = time.monotonic() + timeout_s
    while not leftovers(cache) and worker.process.is_alive() and time.monotonic() < deadline:
        time.sleep(0.002)
    return worker.kill_after(0.0)


def test_killed_fetches_never_leave_a_partial_asset(
    backend: Backend,
    store_env: StoreEnv,
    injector: FaultInjector,
    workers: Workers,
    tmp_path: Path,
    slow: None,
) -> None:
    runs = [(spec, delay) for spec, delays in FETCH_KILLS.items() for delay in delays]
    # One more fetch is killed the moment its download shows on disk (MIDWAY): whatever the
    # machine's speed, at least one kill interrupts a download. A directory asset, whose
    # staging folder exists from the first byte to the last: some SDKs (Azure's) receive a
    # small file whole in memory and write it at once, too briefly to be caught.
    runs.append(("model:0.0", MIDWAY))
    caches = [tmp_path / f"cache-{i}" for i in range(len(runs))]
    for cache in caches:
        cache.mkdir()
    started = workers.start(  # they build their clients while the assets are pushed
        [["fetch", spec, str(cache)] for (spec, _), cache in zip(runs, caches, strict=True)]
    )
    *timed, midway = started
    sources = {
        "model": make_tree(tmp_path / "model", {f"part{i}.bin": 128 * KIB for i in range(6)}),
        "weights": make_file(tmp_path / "weights.bin", 768 * KIB),
    }
    store = StorageProvider()
    for name, source in sources.items():
        store.new(str(source), name)

    injector.set(Faults(bytes_per_s=FETCH_RATE))
    workers.go(started)
    with ThreadPoolExecutor(1) as pool:
        midway_landed = pool.submit(kill_when_writing, midway, caches[-1])
        landed = kill_in_order([(w, delay) for w, (_, delay) in zip(timed, runs, strict=False)])
        assert midway_landed.result(), "the midway kill came after the fetch ended"
    landed += 1
    injector.set(Faults())

    def check(spec: str, cache: Path) -> tuple[bool, bool, bool]:
        """(debris left, complete after the kill, partial though complete), then a fetch."""
        name = spec.split(":")[0]
        expected = tree_bytes(sources[name])
        debris = bool(leftovers(cache))
        complete = AssetsCache(str(cache)).is_complete(name, "0.0")
        partial = complete and tree_bytes(cache / name / "0.0") != expected
        manager = AssetsManager(assets_dir=str(cache), storage_provider=store)
        info = manager.fetch_asset(spec, return_info=True)
        assert tree_bytes(info["path"]) == expected, spec
        assert leftovers(cache) == []
        return debris, complete, partial

    with ThreadPoolExecutor(len(runs)) as pool:
        checks = list(pool.map(check, [spec for spec, _ in runs], caches))
    debris, complete, partial = (sum(column) for column in zip(*checks, strict=True))
    record(
        "2 killed fetches",
        backend,
        kills=len(runs),
        kills_mid_work=landed,
        left_debris=debris,
        complete_before_kill=complete,
        partial_results=partial,
    )
    assert partial == 0
    assert landed >= len(runs) // 2, "most kills must land while the fetch works"
    assert debris >= 1, "some kill must have interrupted a download"


def check_retry(store: StorageProvider, name: str, version: str, source: Path, other: Path) -> str:
    """After a killed push of ``source``: what it left, then a retry, then a refused rewrite."""
    listed = store.asset_exists(name) and version in store.get_versions_info(name)
    claimed = store.driver.exists(store.get_meta_object_name(name, version))
    if listed:
        outcome = "published"
    elif claimed:
        outcome = "claimed"
        with pytest.raises(errors.VersionConflictError):
            store.push(str(other), name, version)
        assert not (store.asset_exists(name) and version in store.get_versions_info(name))
    else:
        outcome = "untouched"
    if not listed and version == "0.0":
        store.new(str(source), name)  # the retry of an interrupted `new`, same content
    elif not listed:
        store.update(str(source), name, version)  # the retry of an interrupted `update`
    assert version in store.get_versions_info(name)
    fetched = AssetsManager(storage_provider=store).fetch_asset(f"{name}:{version}")
    assert tree_bytes(fetched) == tree_bytes(source)
    with pytest.raises(errors.VersionConflictError):
        store.push(str(other), name, version)
    return outcome


def test_killed_pushes_never_publish_and_retry_with_the_same_content(
    backend: Backend,
    store_env: StoreEnv,
    injector: FaultInjector,
    workers: Workers,
    tmp_path: Path,
    slow: None,
) -> None:
    runs: list[tuple[str, str, Path, float]] = [
        *((f"updated{k}", "0.1", tmp_path / f"src-u{k}", d) for k, d in enumerate(PUSH_KILLS)),
        *((f"created{k}", "0.0", tmp_path / f"src-n{k}", d) for k, d in enumerate(NEW_KILLS)),
    ]
    started = workers.start(  # they build their clients while the test sets the store up
        [["push", str(source), name, version] for name, version, source, _ in runs]
    )
    store = StorageProvider()
    seed = make_file(tmp_path / "seed.bin", 10)
    other = make_tree(tmp_path / "other", {"x.bin": 1000})
    for k in range(len(PUSH_KILLS)):
        store.new(str(seed), f"updated{k}")
    for _, _, source, _ in runs:
        make_tree(source, {f"f{i}.bin": 96 * KIB for i in range(6)})

    injector.set(Faults(bytes_per_s=PUSH_RATE))
    workers.go(started)
    landed = kill_in_order([(w, run[3]) for w, run in zip(started, runs, strict=True)])
    injector.set(Faults())

    with ThreadPoolExecutor(len(runs)) as pool:
        outcomes = list(
            pool.map(lambda run: check_retry(store, run[0], run[1], run[2], other), runs)
        )
    for k in range(len(NEW_KILLS)):  # an interrupted `new` never leaves the asset stuck
        with pytest.raises(errors.AssetAlreadyExistsError):
            store.new(str(seed), f"created{k}")
        assert store.update_next(str(seed), f"created{k}").version == "0.1"
    counts = {o: outcomes.count(o) for o in ("untouched", "claimed", "published")}
    record("2 killed pushes", backend, kills=len(runs), kills_mid_work=landed, **counts)
    assert landed >= len(runs) // 2, "most kills must land while the push works"
    assert counts["claimed"] >= 1, "some kill must have interrupted a push after its claim"


def test_a_killed_update_is_completed_by_its_retry_without_a_gap(
    backend: Backend,
    store_env: StoreEnv,
    injector: FaultInjector,
    workers: Workers,
    tmp_path: Path,
    slow: None,
) -> None:
    """Issue 16, item 6: an update killed after its claim leaves that version claimed; the
    retry with the same content plans that very version, completes it, and leaves no gap."""
    names = [f"resumed{k}" for k in range(len(PUSH_KILLS))]
    sources = [tmp_path / f"src-{k}" for k in range(len(PUSH_KILLS))]
    started = workers.start(
        [["next", str(src), name] for src, name in zip(sources, names, strict=True)]
    )
    store = StorageProvider()
    seed = make_file(tmp_path / "seed.bin", 10)
    for name, source in zip(names, sources, strict=True):
        store.new(str(seed), name)
        make_tree(source, {f"f{i}.bin": 96 * KIB for i in range(6)})
    injector.set(Faults(bytes_per_s=PUSH_RATE))
    workers.go(started)
    landed = kill_in_order(list(zip(started, PUSH_KILLS, strict=True)))
    injector.set(Faults())
    completed = 0
    for name, source in zip(names, sources, strict=True):
        listed = store.get_versions_info(name)
        claimed = [v for v in store.claimed_versions(name) if v not in listed]
        plan = store.plan_update(str(source), name)
        if claimed:  # the kill landed after the claim: the retry takes that very version
            assert plan.version == claimed[0] == "0.1", (name, claimed, plan)
            assert plan.resumes is not None
            assert "no longer running" in plan.resumes
            completed += 1
        pushed = store.update_next(str(source), name, plan=plan)
        assert pushed.version == plan.version
        assert store.get_versions_info(name) == ["0.1", "0.0"]  # no gap
        fetched = AssetsManager(storage_provider=store).fetch_asset(f"{name}:0.1")
        assert tree_bytes(fetched) == tree_bytes(source)
    record(
        "2 killed updates", backend, kills=len(names), kills_mid_work=landed, completed=completed
    )
    assert completed >= 1, "some kill must have interrupted an update after its claim"
