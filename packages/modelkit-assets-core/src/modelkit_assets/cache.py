"""The local assets directory, in modelkit's layout::

    ASSETS_DIR/{name}/{version}              a file asset, complete once
    ASSETS_DIR/{name}/.{version}.SUCCESS     exists beside it
    ASSETS_DIR/{name}/{version}/...          a directory asset, complete once
    ASSETS_DIR/{name}/{version}/.SUCCESS     exists inside it
    ASSETS_DIR/.cache/{name}.lock            held while a process downloads {name}
    ASSETS_DIR/.cache/{name}.lock.heartbeat  rewritten by that process while it holds the lock

A version is downloaded into a temporary name beside its final one (``.{version}.tmp-*``),
checked, then published by one rename, its SUCCESS marker last for a file and inside the
renamed folder for a directory: no reader ever sees a partial asset under its final name.

The lock only saves duplicate work: several processes fetching one asset download it once.
The others wait for as long as the download shows signs of life, however long it takes: its
temporary files grow, or its owner's heartbeat goes on (drivers that receive a file in large
chunks, such as Azure's, write nothing for a while). The operating system releases the lock
of a process that dies, and a waiter takes over at once. A waiter gives up with
LockTimeoutError only when neither sign changed for ``timeout`` seconds
(``MODELKIT_ASSETS_TIMEOUT_S``): an owner that is frozen or hung. An owner whose transfer
stalls on the network is bounded by its own storage timeouts, after which it fails and releases
the lock.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Final, TypeVar

import filelock

from . import errors
from .background import periodically, tree_size
from .paths import safe_join
from .versioning.base import AssetsVersioningSystem

SUCCESS: Final = ".SUCCESS"
_TMP: Final = ".tmp-"
_POLL_S: Final = 0.2
_HEARTBEAT: Final = ".heartbeat"
_MIN_BEAT_S: Final = 0.02

T = TypeVar("T")


class AssetsCache:
    """Where fetched versions live on this machine, and how they get there safely."""

    def __init__(self, assets_dir: str, timeout_s: float = 10.0) -> None:
        self.assets_dir = os.path.abspath(assets_dir)
        self.timeout_s = timeout_s
        if not os.path.isdir(self.assets_dir):
            raise errors.AssetsDirDoesNotExistError(assets_dir)

    def asset_folder(self, name: str) -> str:
        return safe_join(self.assets_dir, name, "an asset name")

    def asset_path(self, name: str, version: str) -> str:
        return os.path.join(self.asset_folder(name), version)

    def _marker(self, name: str, version: str) -> tuple[str, str]:
        """(marker of a file asset, marker of a directory asset)."""
        folder = self.asset_folder(name)
        return os.path.join(folder, f".{version}{SUCCESS}"), os.path.join(folder, version, SUCCESS)

    def is_complete(self, name: str, version: str) -> bool:
        """Whether ``name:version`` is fully here: two stats at most."""
        file_marker, dir_marker = self._marker(name, version)
        if os.path.isfile(dir_marker):
            return True
        return os.path.isfile(file_marker) and os.path.isfile(self.asset_path(name, version))

    def local_versions(self, name: str, versioning: AssetsVersioningSystem) -> list[str]:
        """Complete local versions of ``name``, latest first."""
        try:
            entries = os.listdir(self.asset_folder(name))
        except (FileNotFoundError, NotADirectoryError):
            return []
        versions = [
            e
            for e in entries
            if versioning.is_version_valid(e)
            and versioning.is_version_complete(e)
            and self.is_complete(name, e)
        ]
        return versioning.sort_versions(versions)

    def install(self, name: str, version: str, download: Callable[[str], T]) -> T:
        """Run ``download(staging_path)``, then publish the staging path as ``name:version``."""
        folder = self.asset_folder(name)
        os.makedirs(folder, exist_ok=True)
        staging = os.path.join(folder, f".{version}{_TMP}{uuid.uuid4().hex[:8]}")
        try:
            result = download(staging)
            self._publish(staging, name, version)
            return result
        finally:
            _remove(staging)

    def _publish(self, staging: str, name: str, version: str) -> None:
        final = self.asset_path(name, version)
        file_marker, _ = self._marker(name, version)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(file_marker)
        if os.path.isdir(staging):
            open(os.path.join(staging, SUCCESS), "wb").close()
            retired = None
            if os.path.lexists(final):
                retired = f"{staging}.old"
                os.replace(final, retired)
            os.replace(staging, final)
            if retired:
                _remove(retired)
        else:
            if os.path.isdir(final) and not os.path.islink(final):
                shutil.rmtree(final)
            os.replace(staging, final)
            open(file_marker, "wb").close()

    def _progress_signature(self, name: str, heartbeat: str) -> tuple[int, int, bytes]:
        """Bytes and files in the temporary downloads of ``name``, and the owner's heartbeat:
        one of them changes while a download runs."""
        beat = b""
        with contextlib.suppress(OSError), open(heartbeat, "rb") as f:
            beat = f.read()
        try:
            entries = [
                e.path
                for e in os.scandir(self.asset_folder(name))
                if e.name.startswith(".") and _TMP in e.name
            ]
        except OSError:
            entries = []
        return (*tree_size(entries), beat)

    @contextlib.contextmanager
    def download_lock(self, name: str) -> Iterator[None]:
        """Hold ``name``'s lock, with a heartbeat; wait while its holder shows signs of life."""
        lock_path = safe_join(os.path.join(self.assets_dir, ".cache"), name + ".lock", "a lock")
        os.makedirs(os.path.dirname(lock_path), exist_ok=True)
        heartbeat = lock_path + _HEARTBEAT
        lock = filelock.FileLock(lock_path)
        signature, last_change = self._progress_signature(name, heartbeat), time.monotonic()
        while True:
            try:
                lock.acquire(timeout=_POLL_S)
                break
            except filelock.Timeout:
                current = self._progress_signature(name, heartbeat)
                if current != signature:
                    signature, last_change = current, time.monotonic()
                elif time.monotonic() - last_change > self.timeout_s:
                    raise errors.LockTimeoutError(name, self.timeout_s) from None
        try:
            with _beating(heartbeat, max(_MIN_BEAT_S, min(_POLL_S, self.timeout_s / 4))):
                yield
        finally:
            lock.release()


@contextlib.contextmanager
def _beating(path: str, interval_s: float) -> Iterator[None]:
    """Rewrite ``path`` with a new count every ``interval_s`` while the block runs.

    A count in the content, not a modification time: some filesystems keep mtimes to the second.
    """
    count = 0

    def beat() -> None:
        nonlocal count
        count += 1
        with contextlib.suppress(OSError), open(path, "wb") as f:
            f.write(f"{os.getpid()} {count}".encode())

    try:
        with periodically(interval_s, beat, "heartbeat"):
            yield
    finally:
        with contextlib.suppress(OSError):
            os.unlink(path)


def _remove(path: str) -> None:
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)


def clean_stale_downloads(cache: AssetsCache, name: str) -> None:
    """Remove every temporary download of ``name`` (call with ``name``'s lock held: every
    downloader of any version of ``name`` takes it, so what is left is a dead process's)."""
    folder = cache.asset_folder(name)
    with contextlib.suppress(OSError):
        for entry in os.scandir(folder):
            if entry.name.startswith(".") and _TMP in entry.name:
                _remove(entry.path)
