"""The local assets directory, in modelkit's layout::

    ASSETS_DIR/{name}/{version}              a file asset, complete once
    ASSETS_DIR/{name}/.{version}.SUCCESS     exists beside it
    ASSETS_DIR/{name}/{version}/...          a directory asset, complete once
    ASSETS_DIR/{name}/{version}/.SUCCESS     exists inside it
    ASSETS_DIR/{name}/.{version}.partial     an interrupted download, kept to be resumed
    ASSETS_DIR/.cache/{name}.lock            held while a process downloads {name}
    ASSETS_DIR/.cache/{name}.lock.heartbeat  rewritten by that process while it holds the lock
    ASSETS_DIR/.cache/.records/, .partials/, .holds/
                                             the managed cache's own files (see the modules
                                             records, partial and holds); a name segment starts
                                             with a letter or digit, so none is ever an
                                             asset's lock

A version is downloaded into ``.{version}.partial`` beside its final name (see
:mod:`.download`), checked, then published by one rename, its SUCCESS marker last for a file and
inside the renamed folder for a directory: no reader ever sees a partial asset under its final
name. Names with ``.tmp-`` in them (``.{version}.tmp-*``) are debris of dead processes, removed
by the next download of the asset or by ``cache prune``.

``MODELKIT_ASSETS_DIR`` may list several folders (``os.pathsep``-separated): the first is where
downloads go; the others are searched in order for complete versions and never written (a
team's read-only volume of assets, a baked image).

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
import functools
import logging
import os
import shutil
import time
import uuid
from collections.abc import Iterator
from typing import Final
from urllib.parse import quote

from .. import errors
from ..background import periodically, tree_size
from ..paths import SUCCESS_MARKER, safe_join
from ..versioning.base import AssetsVersioningSystem
from . import holds

logger = logging.getLogger(__name__)

SUCCESS: Final = SUCCESS_MARKER
#: Marks debris: the staging of a dead download, a version on its way out.
TMP: Final = ".tmp-"
#: Suffix of the resumable staging of a version, ``.{version}.partial``.
PARTIAL: Final = ".partial"
#: Suffix of a version an eviction has set aside (``.{version}.evicting``), whole until it
#: is deleted or put back (see :mod:`.evict`).
EVICTING: Final = ".evicting"
#: The managed cache's folder, and its own sub-folders.
CACHE_DIR: Final = ".cache"
_POLL_S: Final = 0.2
_HEARTBEAT: Final = ".heartbeat"
_MIN_BEAT_S: Final = 0.02


def version_key(name: str, version: str) -> str:
    """``name:version`` as one file name (names and versions never hold a ':' or a '%')."""
    return quote(f"{name}:{version}", safe="")


def complete_in(folder: str, version: str) -> str | None:
    """The path of ``version`` if it is complete in the asset folder ``folder``: two stats."""
    path = os.path.join(folder, version)
    if os.path.isfile(os.path.join(path, SUCCESS)):
        return path
    if os.path.isfile(os.path.join(folder, f".{version}{SUCCESS}")) and os.path.isfile(path):
        return path
    return None


class AssetsCache:
    """Where fetched versions live on this machine, and how they get there safely.

    ``assets_dir`` is one folder, or several separated by ``os.pathsep``: the first is
    :attr:`assets_dir` (written), the others :attr:`read_only_dirs` (searched, never written).
    """

    def __init__(self, assets_dir: str, timeout_s: float = 10.0) -> None:
        folders = [f for f in assets_dir.split(os.pathsep) if f] or [assets_dir]
        self.assets_dir = os.path.abspath(folders[0])
        self.timeout_s = timeout_s
        if not os.path.isdir(self.assets_dir):
            raise errors.AssetsDirDoesNotExistError(folders[0])
        self.read_only_dirs: tuple[str, ...] = tuple(_existing(folders[1:]))
        self.cache_dir = os.path.join(self.assets_dir, CACHE_DIR)
        #: Versions this instance has held (see :meth:`use`).
        self._used: set[tuple[str, str]] = set()

    @property
    def tiers(self) -> tuple[str, ...]:
        """Every folder searched, the written one first."""
        return (self.assets_dir, *self.read_only_dirs)

    def asset_folder(self, name: str, root: str | None = None) -> str:
        return safe_join(root or self.assets_dir, name, "an asset name")

    def asset_path(self, name: str, version: str) -> str:
        """Where ``name:version`` is (or will be) downloaded: in the written folder."""
        return os.path.join(self.asset_folder(name), version)

    def partial_path(self, name: str, version: str) -> str:
        """The resumable staging of ``name:version`` (a file, or a folder)."""
        return os.path.join(self.asset_folder(name), f".{version}{PARTIAL}")

    def internal_path(self, kind: str, name: str, version: str, suffix: str = "") -> str:
        """A file of the managed cache about ``name:version``: ``.cache/{kind}/{key}{suffix}``."""
        return os.path.join(self.cache_dir, kind, version_key(name, version) + suffix)

    def _marker(self, name: str, version: str) -> tuple[str, str]:
        """(marker of a file asset, marker of a directory asset)."""
        folder = self.asset_folder(name)
        return os.path.join(folder, f".{version}{SUCCESS}"), os.path.join(folder, version, SUCCESS)

    def locate(self, name: str, version: str) -> str | None:
        """The path of ``name:version`` if it is complete in one of the folders, the written
        one first; else None. Two stats for a version in the written folder."""
        found = complete_in(self.asset_folder(name), version)
        if found is None:
            for root in self.read_only_dirs:
                found = complete_in(self.asset_folder(name, root), version)
                if found is not None:
                    break
        return found

    def is_complete(self, name: str, version: str) -> bool:
        """Whether ``name:version`` is fully here, in any of the folders."""
        return self.locate(name, version) is not None

    def use(self, name: str, version: str) -> str | None:
        """:meth:`locate`, once this process holds the version (see :mod:`.holds`): no prune
        removes it while the process lives. The first call per version appends to the
        process's hold file and records the use; later ones cost a set lookup."""
        if (name, version) in self._used:
            found = self.locate(name, version)
        else:
            touch = functools.partial(self.touch, name, version)
            holds.hold(self.cache_dir, name, version, touch, self._used)
            self._used.add((name, version))
            found = self.locate(name, version)  # after the hold: an eviction then sees it
            if found is not None:
                self.touch(name, version)
        if found is None and os.path.lexists(self._evicting(name, version)):
            found = self._after_eviction(name, version)
        return found

    def _evicting(self, name: str, version: str) -> str:
        return os.path.join(self.asset_folder(name), f".{version}{EVICTING}")

    def _after_eviction(self, name: str, version: str) -> str | None:
        """Wait for an eviction of ``name`` under way (it holds the asset's lock for a few
        renames), then look again: an eviction that saw this process's hold puts the
        version back."""
        with contextlib.suppress(OSError, errors.LockTimeoutError), self.download_lock(name):
            return self.locate(name, version)
        return self.locate(name, version)

    def touch(self, name: str, version: str) -> None:
        """Record a use of ``name:version`` (written folder only): its SUCCESS marker's
        modification time is when it was last used. Best effort."""
        for marker in reversed(self._marker(name, version)):
            try:
                os.utime(marker)
                return
            except OSError:
                continue

    def local_versions(self, name: str, versioning: AssetsVersioningSystem) -> list[str]:
        """Complete local versions of ``name`` in any of the folders, latest first."""
        versions: set[str] = set()
        for root in self.tiers:
            folder = self.asset_folder(name, root)
            try:
                entries = os.listdir(folder)
            except (FileNotFoundError, NotADirectoryError):
                continue
            versions.update(
                e
                for e in entries
                if versioning.is_version_valid(e)
                and versioning.is_version_complete(e)
                and complete_in(folder, e) is not None
            )
        return versioning.sort_versions(list(versions))

    def publish(self, staging: str, name: str, version: str) -> None:
        """Make ``staging`` (a whole, checked version) ``name:version``, replacing what is
        there; a reader sees the old version or the new one, never a mix."""
        final = self.asset_path(name, version)
        file_marker, _ = self._marker(name, version)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(file_marker)
        if os.path.isdir(staging):
            open(os.path.join(staging, SUCCESS), "wb").close()
            retired = None
            if os.path.lexists(final):
                retired = os.path.join(os.path.dirname(final), f".{version}{TMP}old-{_tag()}")
                os.replace(final, retired)
            os.replace(staging, final)
            if retired:
                remove(retired)
        else:
            if os.path.isdir(final) and not os.path.islink(final):
                shutil.rmtree(final)
            os.replace(staging, final)
            open(file_marker, "wb").close()

    def _progress_signature(self, name: str, heartbeat: str) -> tuple[int, int, bytes]:
        """Bytes and files in the downloads of ``name`` under way, and the owner's heartbeat:
        one of them changes while a download runs."""
        beat = b""
        with contextlib.suppress(OSError), open(heartbeat, "rb") as f:
            beat = f.read()
        try:
            entries = [
                e.path
                for e in os.scandir(self.asset_folder(name))
                if e.name.startswith(".") and (TMP in e.name or e.name.endswith(PARTIAL))
            ]
        except OSError:
            entries = []
        return (*tree_size(entries), beat)

    def lock_path(self, name: str) -> str:
        return safe_join(self.cache_dir, name + ".lock", "a lock")

    @contextlib.contextmanager
    def download_lock(self, name: str) -> Iterator[None]:
        """Hold ``name``'s lock, with a heartbeat; wait while its holder shows signs of life."""
        lock_path = self.lock_path(name)
        os.makedirs(os.path.dirname(lock_path), exist_ok=True)
        heartbeat = lock_path + _HEARTBEAT
        import filelock  # here: 11 ms of every process, and a cached fetch takes no lock

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
    def try_lock(self, name: str) -> Iterator[bool]:
        """``name``'s download lock if it is free now (True), without waiting; False while
        another process (or thread) downloads ``name``."""
        lock_path = self.lock_path(name)
        os.makedirs(os.path.dirname(lock_path), exist_ok=True)
        import filelock

        lock = filelock.FileLock(lock_path)
        try:
            lock.acquire(timeout=0)
        except filelock.Timeout:
            yield False
            return
        try:
            yield True
        finally:
            lock.release()


def _existing(folders: list[str]) -> Iterator[str]:
    for folder in folders:
        path = os.path.abspath(folder)
        if os.path.isdir(path):
            yield path
        else:
            logger.warning("read-only assets folder %s does not exist; ignored", folder)


def _tag() -> str:
    return uuid.uuid4().hex[:8]


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


def remove(path: str) -> None:
    """Remove a file or a tree, if it is there."""
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)


def set_aside(path: str) -> str | None:
    """Rename ``path`` to a debris name beside it (``.tmp-``), so that nothing can see it as a
    version while it is deleted; its new name, or None if it was not there."""
    folder, base = os.path.split(path)
    debris = os.path.join(folder, f".{base.lstrip('.')}{TMP}{_tag()}")
    try:
        os.replace(path, debris)
    except FileNotFoundError:
        return None
    return debris


def clean_stale_downloads(cache: AssetsCache, name: str) -> None:
    """Remove the debris of dead processes in ``name``'s folder (call with ``name``'s lock held:
    every downloader and every eviction of any version of ``name`` takes it, so what is left is
    a dead process's). Partial downloads stay: they are resumed. The marker a dead eviction had
    set aside is put back on its version (which was whole when the eviction began)."""
    folder = cache.asset_folder(name)
    with contextlib.suppress(OSError):
        for entry in os.scandir(folder):
            if not entry.name.startswith("."):
                continue
            if TMP in entry.name:
                remove(entry.path)
            elif entry.name.endswith(EVICTING):  # the marker of a whole version
                version = entry.name[1 : -len(EVICTING)]
                final = os.path.join(folder, version)
                if os.path.isdir(final):
                    os.replace(entry.path, os.path.join(final, SUCCESS))
                elif os.path.isfile(final):
                    os.replace(entry.path, os.path.join(folder, f".{version}{SUCCESS}"))
                else:
                    remove(entry.path)
