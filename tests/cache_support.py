"""Fixtures and helpers of the managed-cache tests (tests/test_cache*.py).

``cached_store`` is a store configured through the environment, like ``store_env``, but on the
backends a test names (``@pytest.mark.parametrize("cached_store", ["local", "gcs"],
indirect=True)``) instead of all of them: most cache behaviour is the core's, the same on every
driver, and one network store next to the local one shows it there too.
"""

from __future__ import annotations

import functools
import json
import os
import subprocess
import sys
import threading
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from modelkit_assets import StorageProvider, errors
from tests.conftest import StoreEnv
from tests.servers import Backend

MiB = 1024 * 1024


@pytest.fixture
def cached_store(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> StoreEnv:
    backend_id = getattr(request, "param", "local")
    backend: Backend = request.getfixturevalue(f"{backend_id.replace('-', '_')}_backend")
    assets_dir = tmp_path / "assets"
    assets_dir.mkdir()
    store = StoreEnv(backend, f"test-{uuid.uuid4().hex[:12]}", assets_dir)
    for key, value in store.env.items():
        monkeypatch.setenv(key, value)
    return store


class Recorder:
    """A TransferProgress that keeps what it is told."""

    def __init__(self) -> None:
        self.total = 0
        self.files = 0
        self.advanced = 0
        self.files_done = 0
        self._lock = threading.Lock()

    def start(self, description: str, total_bytes: int, total_files: int) -> None:
        self.total, self.files = total_bytes, total_files

    def advance(self, nbytes: int = 0, files: int = 0) -> None:
        with self._lock:
            self.advanced += nbytes
            self.files_done += files

    def finish(self) -> None:
        pass


def break_ranges_after(
    store: StorageProvider, monkeypatch: pytest.MonkeyPatch, limit: int
) -> dict[str, int]:
    """Make the store's ranged reads break off (StorageUnavailableError) once ``limit`` bytes
    have been read in all, as a lost network would (replacing any earlier fault); returns the
    counts of bytes read."""
    real = functools.partial(type(store.driver).read_range, store.driver)
    counts = {"bytes": 0, "requests": 0}
    lock = threading.Lock()

    def read_range(object_name: str, start: int, end: int) -> Iterator[bytes]:
        with lock:
            counts["requests"] += 1
        for chunk in real(object_name, start, end):
            with lock:
                if counts["bytes"] >= limit:
                    raise errors.StorageUnavailableError(store.provider, "injected: cut off")
                counts["bytes"] += len(chunk)
            yield chunk

    monkeypatch.setattr(store.driver, "read_range", read_range)
    return counts


def count_downloads(
    store: StorageProvider, monkeypatch: pytest.MonkeyPatch, fail_after: int | None = None
) -> dict[str, Any]:
    """Count the objects ``download_many`` fetches whole (and fail every one after the first
    ``fail_after`` with StorageUnavailableError)."""
    real: Callable[..., Any] = functools.partial(
        type(store.driver).download_object_with_digest, store.driver
    )
    seen: dict[str, Any] = {"objects": [], "bytes": 0}
    lock = threading.Lock()

    def download(object_name: str, destination: str, algorithm: str) -> Any:
        with lock:
            if fail_after is not None and len(seen["objects"]) >= fail_after:
                raise errors.StorageUnavailableError(store.provider, "injected: down")
            seen["objects"].append(object_name)
        digest = real(object_name, destination, algorithm)
        with lock:
            seen["bytes"] += digest.size
        return digest

    monkeypatch.setattr(store.driver, "download_object_with_digest", download)
    return seen


REPO_ROOT = Path(__file__).resolve().parents[1]

#: A process that fetches each spec of argv, prints one JSON line per spec (the info) and then
#: ``ready``, and stays alive (holding what it fetched) until its stdin closes.
_HOLDER = """
import json, sys
from modelkit_assets import AssetsManager
manager = AssetsManager()
for spec in sys.argv[1:]:
    print(json.dumps(manager.fetch_asset(spec, return_info=True), default=str), flush=True)
print("ready", flush=True)
sys.stdin.read()
"""


class Holder:
    """A real process that fetched some versions and lives on (so it holds them)."""

    def __init__(self, specs: list[str], env: dict[str, str] | None = None) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-c", _HOLDER, *specs],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            cwd=REPO_ROOT,
            env={**os.environ, **(env or {})},
        )
        assert self.process.stdout is not None
        self.infos: list[dict[str, Any]] = []
        for line in self.process.stdout:
            if line.strip() == b"ready":
                break
            self.infos.append(json.loads(line))
        else:
            raise AssertionError(f"the holder of {specs} exited with {self.process.wait()}")

    @property
    def pid(self) -> int:
        return self.process.pid

    def kill(self) -> None:
        """``kill -9``: it never gets to say goodbye."""
        self.process.kill()
        self.process.wait()

    def close(self) -> None:
        if self.process.poll() is None:
            assert self.process.stdin is not None
            self.process.stdin.close()
            self.process.wait(30)


@pytest.fixture
def holders() -> Iterator[Callable[..., Holder]]:
    """Start :class:`Holder` processes; every one still alive is stopped at the end."""
    started: list[Holder] = []

    def start(specs: list[str], env: dict[str, str] | None = None) -> Holder:
        started.append(Holder(specs, env))
        return started[-1]

    yield start
    for holder in started:
        if holder.process.poll() is None:
            holder.kill()


def set_last_use(assets_dir: Path, name: str, version: str, when: float) -> None:
    """Make ``name:version`` look last used at ``when`` (its SUCCESS marker's time)."""
    folder = assets_dir / name
    marker = folder / version / ".SUCCESS"
    if not marker.is_file():
        marker = folder / f".{version}.SUCCESS"
    os.utime(marker, (when, when))
