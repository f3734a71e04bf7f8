"""Evictions (MODELKIT_ASSETS_MAX_SIZE, ``cache prune``, ``cache rm``) never take what a live
process holds or downloads, and recording a use costs no write per fetch (DESIGN.md 10).

Holding is tested with real processes (:class:`tests.cache_support.Holder`): a process holds
every version it fetched until it exits, ``kill -9`` included.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from modelkit_assets import AssetsManager, StorageProvider
from modelkit_assets.cache import AssetsCache, holds
from modelkit_assets.cache.prune import prune
from tests.cache_support import REPO_ROOT, Holder, cached_store, holders, set_last_use
from tests.cli_runner import as_json, fails, ok
from tests.conftest import StoreEnv
from tests.guarantees.assets import KIB, make_file, tree_bytes

__all__ = ["cached_store", "holders"]

SIZE = 100 * KIB


@pytest.fixture
def versions(cached_store: StoreEnv, tmp_path: Path) -> dict[str, Path]:
    """``model`` 0.0 to 0.4, each a file of 100 KiB; their sources by version."""
    store = StorageProvider()
    sources = {}
    for i in range(5):
        sources[f"0.{i}"] = make_file(tmp_path / f"v{i}.bin", SIZE)
        store.push(str(sources[f"0.{i}"]), "model", f"0.{i}")
    return sources


def cache() -> AssetsCache:
    return AssetsCache(os.environ["MODELKIT_ASSETS_DIR"])


def complete(*versions: str) -> list[bool]:
    return [cache().is_complete("model", v) for v in versions]


def test_max_size_evicts_the_least_recently_used_after_each_download(
    versions: dict[str, Path], cached_store: StoreEnv, monkeypatch: pytest.MonkeyPatch
) -> None:
    for version in ("0.0", "0.1", "0.2"):
        AssetsManager().fetch_asset(f"model:{version}")
    holds.release_all()
    set_last_use(cached_store.assets_dir, "model", "0.1", time.time() - 100)
    set_last_use(cached_store.assets_dir, "model", "0.0", time.time() - 50)
    set_last_use(cached_store.assets_dir, "model", "0.2", time.time() - 200)
    monkeypatch.setenv("MODELKIT_ASSETS_MAX_SIZE", str(3 * SIZE))
    info = AssetsManager().fetch_asset("model:0.3", return_info=True)
    assert complete("0.0", "0.1", "0.2", "0.3") == [True, True, False, True]  # 0.2: the oldest
    assert tree_bytes(info["path"]) == tree_bytes(versions["0.3"])
    holds.release_all()
    monkeypatch.setenv("MODELKIT_ASSETS_MAX_SIZE", "150KiB")  # room for one version only
    AssetsManager().fetch_asset("model:0.4")
    assert complete("0.0", "0.1", "0.3", "0.4") == [False, False, False, True]  # never 0.4


def test_a_version_another_process_holds_is_never_evicted(
    versions: dict[str, Path],
    cached_store: StoreEnv,
    monkeypatch: pytest.MonkeyPatch,
    holders: Callable[..., Holder],
) -> None:
    holder = holders(["model:0.0", "model:0.1"])
    set_last_use(cached_store.assets_dir, "model", "0.0", time.time() - 1000)
    listing = as_json(ok("cache", "list", "--json"))["entries"]
    assert {e["version"]: e["held_by"] for e in listing} == {
        "0.0": [holder.pid],
        "0.1": [holder.pid],
    }
    monkeypatch.setenv("MODELKIT_ASSETS_MAX_SIZE", "1")
    AssetsManager().fetch_asset("model:0.2")
    assert complete("0.0", "0.1", "0.2") == [True, True, True]
    holds.release_all()
    report = as_json(ok("cache", "prune", "--yes", "--json"))
    assert [(r["version"], r["outcome"], r["held_by"]) for r in report["kept"]] == [
        ("0.0", "held", [holder.pid]),
        ("0.1", "held", [holder.pid]),
    ]
    assert [r["version"] for r in report["removed"]] == ["0.2"]
    line = fails("cache", "rm", "model:0.1", "--yes")
    assert f"model:0.1 (in use by pid {holder.pid})" in line
    holder.kill()  # kill -9: the operating system drops its lock, so its holds with it
    report = as_json(ok("cache", "prune", "--yes", "--json"))
    assert sorted(r["version"] for r in report["removed"]) == ["0.0", "0.1"]
    assert not list((cached_store.assets_dir / ".cache" / ".holds").glob("*.hold"))


def test_a_version_being_downloaded_is_never_evicted(
    versions: dict[str, Path], cached_store: StoreEnv
) -> None:
    AssetsManager().fetch_asset("model:0.0")
    holds.release_all()
    partial = cached_store.assets_dir / "model" / ".0.1.partial"
    partial.write_bytes(b"x" * 1000)
    # Another process downloads an asset while it holds the asset's lock.
    locker = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, filelock; lock = filelock.FileLock(sys.argv[1]); lock.acquire();"
            " print('locked', flush=True); sys.stdin.read()",
            str(cached_store.assets_dir / ".cache" / "model.lock"),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    try:
        assert locker.stdout is not None
        assert locker.stdout.readline().strip() == b"locked"
        report = prune(cache(), max_size=0)
        assert sorted((r.entry.kind, r.outcome) for r in report.kept) == [
            ("partial", "busy"),
            ("version", "busy"),
        ]
        assert partial.exists()
        assert complete("0.0") == [True]
    finally:
        locker.kill()
        locker.wait()
    report = prune(cache(), max_size=0)
    assert sorted(r.entry.kind for r in report.removed) == ["partial", "version"]


def test_recording_a_use_writes_once_per_process_not_per_fetch(
    versions: dict[str, Path], cached_store: StoreEnv, holders: Callable[..., Holder]
) -> None:
    manager = AssetsManager()
    manager.fetch_asset("model:0.0")
    marker = cached_store.assets_dir / "model" / ".0.0.SUCCESS"
    os.utime(marker, (1_000_000_000, 1_000_000_000))
    hold_files = list((cached_store.assets_dir / ".cache" / ".holds").iterdir())
    sizes = [p.stat().st_size for p in hold_files]
    for _ in range(100):
        manager.fetch_asset("model:0.0")
    assert marker.stat().st_mtime == 1_000_000_000  # the cached pinned fetch wrote nothing
    assert [p.stat().st_size for p in hold_files] == sizes
    holder = holders(["model:0.0"])  # another process: its first use is recorded
    assert marker.stat().st_mtime > time.time() - 60
    os.utime(marker, (1_000_000_000, 1_000_000_000))
    holder.close()  # and its exit, as its last use
    assert marker.stat().st_mtime > time.time() - 60


_FETCH_LOOP = """
import hashlib, json, os, sys, time
from modelkit_assets import AssetsManager
from modelkit_assets.cache import holds
expected = json.loads(sys.argv[1])
evicted = sys.argv[3]  # the pruner creates it once it has evicted something
deadline = time.monotonic() + 60
bad = 0
round = 0
# At least the rounds asked for, and on until the pruner has evicted (it may start late on a
# loaded machine): a race that never ran proves nothing.
while round < int(sys.argv[2]) or (not os.path.exists(evicted) and time.monotonic() < deadline):
    round += 1
    for version, digest in expected.items():
        manager = AssetsManager()
        path = manager.fetch_asset("model:" + version)
        with open(path, "rb") as f:
            bad += hashlib.sha256(f.read()).hexdigest() != digest
    holds.release_all()  # let the pruner take them again
print(json.dumps({"bad": bad}))
"""


@pytest.mark.parametrize("cached_store", ["local", "gcs"], indirect=True)
def test_a_prune_racing_fetches_never_removes_what_they_return(
    versions: dict[str, Path], cached_store: StoreEnv
) -> None:
    """Fetching processes read each file they were given while other processes evict
    everything they can, over and over."""
    import hashlib
    import json

    expected = {v: hashlib.sha256(p.read_bytes()).hexdigest() for v, p in versions.items()}
    evicted = cached_store.assets_dir.parent / "evicted"
    fetchers = [
        subprocess.Popen(
            [sys.executable, "-c", _FETCH_LOOP, json.dumps(expected), "8", str(evicted)],
            stdout=subprocess.PIPE,
            cwd=REPO_ROOT,
        )
        for _ in range(2)
    ]
    pruner = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import os, sys\nfrom modelkit_assets.cache import AssetsCache\n"
            "from modelkit_assets.cache.prune import prune\n"
            "removed = 0\nwhile not os.path.exists(sys.argv[1]):\n"
            "    removed += len(prune(AssetsCache(os.environ['MODELKIT_ASSETS_DIR']),"
            " max_size=0).removed)\n"
            "    if removed:\n        open(sys.argv[2], 'a').close()\nprint(removed)",
            str(cached_store.assets_dir.parent / "stop"),
            str(evicted),
        ],
        stdout=subprocess.PIPE,
        cwd=REPO_ROOT,
    )
    results = [json.loads(f.communicate(timeout=120)[0]) for f in fetchers]
    (cached_store.assets_dir.parent / "stop").touch()
    evictions = int(pruner.communicate(timeout=60)[0])
    assert [f.returncode for f in fetchers] == [0, 0]
    assert results == [{"bad": 0}, {"bad": 0}]
    assert evictions > 0, "the pruner never evicted anything: the race was not run"
