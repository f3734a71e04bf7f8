"""Guarantee 7: an interrupted fetch resumes, and what it resumes from is never served unchecked.

Real processes (:mod:`tests.guarantees.fetch_child`) fetch a large file and are killed with
SIGKILL midway, when the log of their partial download (``ASSETS_DIR/.cache/.partials/``) shows
the share of bytes a test wants. The next process goes on from there. On network stores the
bytes are counted on the wire by the fault proxy (which also slows each connection a little, so
that a kill lands where it is aimed on the fastest servers); on the local provider by the bytes
the driver read. Targets (issue 20): a 256 MiB fetch killed after half its bytes moves at most
60 % of the file on its retry; a 1 GiB fetch interrupted 3 times completes with the right bytes;
peak resident memory stays under 150 MB.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from modelkit_assets import StorageProvider
from modelkit_assets.cache import AssetsCache
from modelkit_assets.hashing import digest_file
from tests.cache_support import cached_store
from tests.conftest import StoreEnv
from tests.faultproxy import FaultProxy, Faults, Stats
from tests.guarantees.assets import KIB, make_tree, tree_bytes
from tests.guarantees.faults import REPO_ROOT, endpoint_port, redirected
from tests.guarantees.figures import record
from tests.servers import Backend

MiB = 1024 * KIB
__all__ = ["cached_store"]

PEAK_RSS = 150 * 1000 * 1000
#: Backends of the 1 GiB test (see its docstring).
HUGE_ON = os.environ.get("MODELKIT_TEST_HUGE_BACKENDS", "local").split(",")
#: Per connection: fast servers would otherwise send 256 MiB before a kill can be aimed.
RATE = 40 * MiB


class Wire:
    """Where a test's child processes reach the store, and what they moved: through a fault
    proxy for a network backend (bytes on the wire), directly for the local one (bytes the
    children say they received)."""

    def __init__(self, backend: Backend, proxy: FaultProxy | None) -> None:
        self.proxy = proxy
        self.env = redirected(backend.env, proxy.port) if proxy else {}

    def throttle(self, on: bool) -> None:
        if self.proxy is not None:
            self.proxy.stats = Stats()
            self.proxy.faults = Faults(bytes_per_s=RATE if on else None)

    def moved(self, info: dict[str, Any]) -> int:
        return self.proxy.stats.bytes_down if self.proxy else int(info["received_bytes"])


@contextlib.contextmanager
def wire_to(backend: Backend) -> Iterator[Wire]:
    if backend.provider == "local":
        yield Wire(backend, None)
        return
    with FaultProxy(endpoint_port(backend.env)) as proxy:
        yield Wire(backend, proxy)


@pytest.fixture
def wire(backend: Backend, store_env: StoreEnv) -> Iterator[Wire]:
    with wire_to(backend) as opened:
        yield opened


def start(spec: str, wire: Wire, log: Path) -> subprocess.Popen[bytes]:
    with open(log, "ab") as stderr:
        return subprocess.Popen(
            [sys.executable, "-m", "tests.guarantees.fetch_child", spec],
            stdout=subprocess.PIPE,
            stderr=stderr,
            cwd=REPO_ROOT,
            env={**os.environ, **wire.env},
        )


def finish(process: subprocess.Popen[bytes], log: Path) -> dict[str, Any]:
    out, _ = process.communicate(timeout=240)
    assert process.returncode == 0, log.read_text()
    info: dict[str, Any] = json.loads(out)
    return info


def pusher(backend: Backend) -> StorageProvider:
    """The store, to push a large file quickly: fake-gcs-server takes one request much faster
    than 16 MiB pieces (256 MiB: 7 s against 10)."""
    return StorageProvider(chunk_size=256 * MiB) if backend.provider == "gcs" else StorageProvider()


def make_big(path: Path, size: int) -> Path:
    """A large file, quickly: random 4 MiB blocks, each numbered (no two alike)."""
    block = bytearray(os.urandom(4 * MiB))
    with open(path, "wb") as f:
        for index in range(0, size, len(block)):
            block[:8] = index.to_bytes(8, "little")
            f.write(block[: size - index])
    return path


def logged(assets_dir: Path, part: str | None = None) -> int:
    """Bytes the partial download's log says are written (of ``part`` only, if given)."""
    total = 0
    with contextlib.suppress(FileNotFoundError):
        for log in (assets_dir / ".cache" / ".partials").iterdir():
            for line in log.read_bytes().splitlines()[1:]:
                with contextlib.suppress(ValueError):
                    entry = json.loads(line)
                    if len(entry) == 3 and (part is None or entry[0] == part):
                        total += entry[2] - entry[1]
    return total


def kill_when_logged(
    process: subprocess.Popen[bytes], assets_dir: Path, at_least: int, part: str | None = None
) -> int:
    """SIGKILL ``process`` once ``at_least`` bytes are logged; the bytes logged then."""
    deadline = time.monotonic() + 120
    while logged(assets_dir, part) < at_least:
        assert process.poll() is None, "the fetch ended before it could be killed"
        assert time.monotonic() < deadline, "the fetch never got there"
        time.sleep(0.001)
    process.kill()
    process.wait()
    return logged(assets_dir, part)


def test_a_fetch_killed_halfway_moves_at_most_60_percent_on_its_retry(
    backend: Backend, store_env: StoreEnv, wire: Wire, tmp_path: Path
) -> None:
    if backend.id == "s3-moto":
        pytest.skip("S3 is shown on SeaweedFS: moto holds 256 MiB in memory, slowest of all")
    size = 256 * MiB
    source = make_big(tmp_path / "big.bin", size)
    pusher(backend).new(str(source), "big")
    log = tmp_path / "children.stderr"
    wire.throttle(True)
    kept = kill_when_logged(start("big:0.0", wire, log), store_env.assets_dir, size // 2)
    assert not AssetsCache(str(store_env.assets_dir)).is_complete("big", "0.0")
    wire.throttle(False)
    info = finish(start("big:0.0", wire, log), log)
    moved = wire.moved(info)
    assert digest_file(info["path"]) == digest_file(str(source))
    assert info["resumed_bytes"] == kept
    assert moved <= 0.6 * size, f"the retry moved {moved / size:.0%} of the file"
    assert info["peak_rss"] < PEAK_RSS
    record(
        "7 resumed fetch (256 MiB, killed at half)",
        backend,
        kills=1,
        partial_results=0,
        kept_percent=round(100 * kept / size),
        retry_moved_percent=round(100 * moved / size),
        peak_rss_mb=round(info["peak_rss"] / 1e6),
    )


def test_resumed_data_is_never_served_unverified(
    backend: Backend, store_env: StoreEnv, wire: Wire, tmp_path: Path
) -> None:
    """Between the kill and the retry, a byte of a range the log calls written and a byte of
    a file kept whole go bad on disk: the retry finds both and fetches them again."""
    big = 48 * MiB
    small = {f"s{i}.bin": 64 * KIB for i in range(8)}
    source = make_tree(tmp_path / "model", {"big.bin": big, **small})
    StorageProvider().new(str(source), "model")
    log = tmp_path / "children.stderr"
    wire.throttle(True)
    kill_when_logged(start("model:0.0", wire, log), store_env.assets_dir, big // 3, "big.bin")
    partial = store_env.assets_dir / "model" / ".0.0.partial"
    kept_small = [p for p in sorted(small) if (partial / p).stat().st_size == small[p]]
    assert kept_small, "no small file was complete at the kill"
    (log_file,) = (store_env.assets_dir / ".cache" / ".partials").iterdir()
    _, start_byte, end_byte = next(
        e for e in map(json.loads, log_file.read_bytes().splitlines()[1:]) if len(e) == 3
    )
    flip(partial / "big.bin", (start_byte + end_byte) // 2)
    flip(partial / kept_small[0], 100)
    wire.throttle(False)
    info = finish(start("model:0.0", wire, log), log)
    assert tree_bytes(info["path"]) == tree_bytes(source)
    assert info["resumed_files"] == len(kept_small) - 1
    assert info["received_bytes"] >= big + small[kept_small[0]]
    record(
        "7 resumed data is verified",
        backend,
        kills=1,
        corrupted_on_disk=2,
        partial_results=0,
        resumed_files=info["resumed_files"],
    )


def flip(path: Path, offset: int) -> None:
    with open(path, "r+b") as f:
        f.seek(offset)
        byte = f.read(1)
        f.seek(offset)
        f.write(bytes([byte[0] ^ 0x5A]))


@pytest.mark.slow
@pytest.mark.parametrize("cached_store", HUGE_ON, indirect=True)
def test_a_1gib_fetch_interrupted_three_times_completes(
    cached_store: StoreEnv, tmp_path: Path
) -> None:
    """On the local provider by default: on a server a GiB costs the suite 20-120 s (pushing
    256 MiB takes 1.5 s on Azurite, 3 s on SeaweedFS, 5 s on moto, 7-10 s on fake-gcs). Run
    it on the servers with MODELKIT_TEST_HUGE_BACKENDS=local,az,gcs,s3-moto,s3-seaweedfs."""
    with wire_to(cached_store.backend) as wire:
        _interrupted_three_times(cached_store.backend, cached_store, wire, tmp_path)


def _interrupted_three_times(
    backend: Backend, store_env: StoreEnv, wire: Wire, tmp_path: Path
) -> None:
    size = 1024 * MiB
    source = make_big(tmp_path / "huge.bin", size)
    expected = digest_file(str(source))
    StorageProvider().new(str(source), "huge")
    source.unlink()  # a GiB less on disk while the test runs
    log = tmp_path / "children.stderr"
    wire.throttle(True)
    moved = 0
    for quarter in (1, 2, 3):
        kill_when_logged(start("huge:0.0", wire, log), store_env.assets_dir, quarter * size // 4)
        moved += wire.proxy.stats.bytes_down if wire.proxy else 0
        wire.throttle(True)
    wire.throttle(False)
    info = finish(start("huge:0.0", wire, log), log)
    moved += wire.moved(info) if wire.proxy else 0
    assert digest_file(info["path"]) == expected
    assert info["resumed_bytes"] >= 3 * size // 4
    assert info["peak_rss"] < PEAK_RSS
    if wire.proxy:
        assert moved < 1.1 * size, f"{moved / size:.2f} times the file went over the wire"
    record(
        "7 resumed fetch (1 GiB, killed 3 times)",
        backend,
        kills=3,
        partial_results=0,
        wire_total_percent=round(100 * moved / size) if wire.proxy else None,
        peak_rss_mb=round(info["peak_rss"] / 1e6),
    )
