"""Which versions live processes are using, so that no prune or eviction removes them.

A process that fetches a version through :class:`~modelkit_assets.AssetsManager` *holds* it
until it exits. Each process has one hold file per assets dir,
``ASSETS_DIR/.cache/.holds/{pid}-{random}.hold``, which it keeps open and locked (``flock``) for
its whole life, and to which it appends one line per version, the first time it fetches it. The
operating system drops the lock when the process ends, however it ends (``kill -9`` included).
A hold file whose lock another process can take is a dead process's: it is removed. A hold file
is locked before it gets its name (it is created under a temporary name, locked, then renamed),
so that no reader ever finds a live one unlocked.

Why fetches cannot lose what they return to an eviction: a fetch appends its hold *before* it
checks that the version is complete; an eviction (:mod:`.evict`) renames the version away
*before* it reads the holds a last time, and puts the version back if a hold appeared. Either
the eviction sees the hold, or the fetch sees the version gone and downloads it again, under
the asset's lock, which the eviction holds meanwhile.

Where ``flock`` is missing (Windows), nothing is held, and evictions only spare what is being
downloaded. Network filesystems whose ``flock`` silently succeeds hold nothing either.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import logging
import os
import threading
import time
import uuid
from collections.abc import Callable
from typing import Final

try:
    import fcntl

    _FLOCK = True
except ImportError:  # pragma: no cover - Windows
    _FLOCK = False

logger = logging.getLogger(__name__)

HOLDS: Final = ".holds"
_SUFFIX: Final = ".hold"
_NEW: Final = ".new"
#: A hold file still under its temporary name this long after it was made is a dead one's.
_NEW_GRACE_S: Final = 60.0
_FLAGS: Final = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND | getattr(os, "O_CLOEXEC", 0)

Key = tuple[str, str]


class _HoldFile:
    """This process's hold file in one assets dir."""

    def __init__(self, holds_dir: str) -> None:
        self.pid = os.getpid()
        base = f"{self.pid}-{uuid.uuid4().hex[:8]}"
        os.makedirs(holds_dir, exist_ok=True)
        new = os.path.join(holds_dir, f".{base}{_NEW}")
        self.path = os.path.join(holds_dir, base + _SUFFIX)
        self.fd = os.open(new, _FLAGS, 0o644)
        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            os.rename(new, self.path)
        except BaseException:
            os.close(self.fd)
            with contextlib.suppress(OSError):
                os.unlink(new)
            raise
        self.on_exit: list[Callable[[], None]] = []
        self.held: set[Key] = set()

    def add(self, name: str, version: str, on_exit: Callable[[], None]) -> None:
        """Hold ``name:version`` (once: later calls for it do nothing)."""
        if (name, version) in self.held:
            return
        # One write of one line, with O_APPEND: a reader sees whole lines, or a torn last one.
        os.write(self.fd, json.dumps([name, version]).encode() + b"\n")
        self.held.add((name, version))
        self.on_exit.append(on_exit)


_files: dict[str, _HoldFile] = {}
_lock = threading.Lock()
_unusable: set[str] = set()


#: The sets of versions that callers remember as held (see :func:`hold`), emptied by
#: :func:`release_all` so that they hold again on their next use.
_remembered: list[set[Key]] = []


def hold(
    cache_dir: str,
    name: str,
    version: str,
    on_exit: Callable[[], None],
    remembered: set[Key] | None = None,
) -> None:
    """Hold ``name:version`` in the assets dir whose ``.cache`` is ``cache_dir`` until this
    process exits; ``on_exit`` is called then (it records the last use). ``remembered`` is the
    caller's set of the versions it knows are held, emptied when the holds are released. Best
    effort: an assets dir where nothing can be written (a read-only image) holds nothing."""
    if not _FLOCK or cache_dir in _unusable:
        return
    with _lock:
        if remembered is not None and not any(r is remembered for r in _remembered):
            _remembered.append(remembered)
        current = _files.get(cache_dir)
        try:
            if current is None or current.pid != os.getpid():  # first use, or a forked child
                current = _files[cache_dir] = _HoldFile(os.path.join(cache_dir, HOLDS))
            current.add(name, version, on_exit)
        except OSError as exc:
            logger.debug("cannot hold versions in %s (%s); evictions may take them", cache_dir, exc)
            _unusable.add(cache_dir)


def release_all() -> None:
    """Drop every hold of this process, in every assets dir: its versions may be pruned from
    now on, until it fetches them again (for a process that knows it no longer reads what it
    fetched: a job between two phases, a test)."""
    with _lock:
        for current in _files.values():
            if current.pid == os.getpid():
                for call in current.on_exit:  # the last use is now
                    with contextlib.suppress(Exception):
                        call()
                with contextlib.suppress(OSError):
                    os.unlink(current.path)
                with contextlib.suppress(OSError):
                    os.close(current.fd)
        _files.clear()
        for remembered in _remembered:
            remembered.clear()
        _remembered.clear()


def live_holds(cache_dir: str) -> dict[Key, list[int]]:
    """The versions held by live processes, with their pids; dead processes' hold files are
    removed on the way."""
    folder = os.path.join(cache_dir, HOLDS)
    held: dict[Key, list[int]] = {}
    if not _FLOCK:
        return held
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return held
    for entry in entries:
        if entry.name.endswith(_SUFFIX):
            lines = _read_if_alive(entry.path)
            pid = _pid_of(entry.name)
            for key in lines or ():
                held.setdefault(key, []).append(pid)
        elif entry.name.endswith(_NEW):
            _remove_if_stale(entry.path)
    return held


def _read_if_alive(path: str) -> set[Key] | None:
    """The versions a live hold file lists, or None (the file is removed) if its process is
    gone."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
    except OSError:
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return _parse(_read_all(fd))
        with contextlib.suppress(OSError):  # dead: we hold its lock now, nobody writes it
            os.unlink(path)
        return None
    finally:
        os.close(fd)


def _remove_if_stale(path: str) -> None:
    """A hold file that never got its name: its maker died between creating and renaming it."""
    try:
        if time.time() - os.stat(path).st_mtime < _NEW_GRACE_S:
            return
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
    except OSError:
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        os.unlink(path)
    except OSError:
        pass
    finally:
        os.close(fd)


def _read_all(fd: int) -> bytes:
    chunks = []
    while chunk := os.read(fd, 1 << 16):
        chunks.append(chunk)
    return b"".join(chunks)


def _parse(data: bytes) -> set[Key]:
    """Lines ``["name", "version"]``; a torn last line (a write under way) is skipped: its
    writer has not checked the version yet, so it will see an eviction's rename."""
    keys: set[Key] = set()
    for line in data.splitlines():
        with contextlib.suppress(ValueError, TypeError):
            name, version = json.loads(line)
            if isinstance(name, str) and isinstance(version, str):
                keys.add((name, version))
    return keys


def _pid_of(filename: str) -> int:
    try:
        return int(filename.split("-", 1)[0])
    except ValueError:
        return 0


@atexit.register
def _at_exit() -> None:
    """Record, as a last use, the exit of a process that held versions (a service that ran
    for a month used them until now, not only when it started)."""
    for current in list(_files.values()):
        if current.pid != os.getpid():
            continue
        for call in current.on_exit:
            with contextlib.suppress(Exception):
                call()
