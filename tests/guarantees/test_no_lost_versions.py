"""Guarantee 1: no lost or overwritten version, with processes racing on one asset.

Every update that reports success is listed in ``.versions`` afterwards, with exactly the
content it pushed, and no two report the same version, not even two updates of the same content.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from modelkit_assets import AssetsManager, StorageProvider
from tests.conftest import StoreEnv
from tests.guarantees.figures import record
from tests.guarantees.processes import Workers
from tests.servers import Backend

PROCESSES = 3
UPDATES = 5
RACERS = 3


def sha256_of(path: str) -> str:
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def test_concurrent_updates_lose_and_share_no_version(
    backend: Backend, store_env: StoreEnv, workers: Workers, tmp_path: Path
) -> None:
    commands = []
    for i in range(PROCESSES):
        workdir = tmp_path / f"p{i}"
        workdir.mkdir()
        # The first two push the very same contents: they still get a version each.
        commands.append(["update", "shared", str(UPDATES), f"p{max(i, 1)}", str(workdir)])
    started = workers.start(commands)
    seed = tmp_path / "seed.txt"
    seed.write_text("the first version")
    store = StorageProvider()
    store.new(str(seed), "shared")

    events = [e for w in workers.go(started) for e in w.finish()]

    reported = [e for e in events if "version" in e]
    assert len(reported) == PROCESSES * UPDATES
    versions = [e["version"] for e in reported]
    listed = store.get_versions_info("shared")
    lost = sorted(set(versions) - set(listed))
    duplicates = len(versions) - len(set(versions))
    conflicts = sum(e.get("conflicts", 0) for e in events)
    record(
        "1 no lost version",
        backend,
        processes=PROCESSES,
        updates=len(reported),
        versions_lost=len(lost),
        duplicates=duplicates,
        conflicts_retried=conflicts,
    )
    assert lost == []
    assert duplicates == 0
    assert sorted(listed) == sorted([*versions, "0.0"])
    manager = AssetsManager()
    for event in reported:
        path = manager.fetch_asset(f"shared:{event['version']}")
        assert sha256_of(path) == event["sha256"], event


def test_racing_pushes_of_one_version_have_one_winner(
    backend: Backend, store_env: StoreEnv, workers: Workers, tmp_path: Path
) -> None:
    sources = [tmp_path / f"racer-{i}.txt" for i in range(RACERS)]
    started = workers.start([["push", str(source), "contested", "0.1"] for source in sources])
    for i, source in enumerate(sources):
        source.write_text(f"racer {i} wants version 0.1\n" * (i + 1))
    seed = tmp_path / "seed.txt"
    seed.write_text("the first version")
    store = StorageProvider()
    store.new(str(seed), "contested")
    workers.go(started)
    outcomes = [(w.finish(expect_exit=None), w.exitcode) for w in started]

    winners = [i for i, (_, code) in enumerate(outcomes) if code == 0]
    losers = [events for events, code in outcomes if code != 0]
    record("1 one winner per version", backend, processes=RACERS, winners=len(winners))
    assert len(winners) == 1, outcomes
    for events in losers:
        errors = [e["error"] for e in events if "error" in e]
        assert errors in (["VersionConflictError"], ["AssetAlreadyExistsError"]), events
    assert store.get_versions_info("contested") == ["0.1", "0.0"]
    fetched = AssetsManager().fetch_asset("contested:0.1")
    assert Path(fetched).read_bytes() == sources[winners[0]].read_bytes()
