"""The progress interface transfers report to; the CLI draws it, the API ignores it by default."""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Callable, Iterator
from typing import Final, Protocol

from .background import periodically, tree_size

_POLL_S: Final = 0.2


class TransferProgress(Protocol):
    """Receives the totals of a transfer, then its advances (from several threads)."""

    def start(self, description: str, total_bytes: int, total_files: int) -> None: ...

    def advance(self, nbytes: int = 0, files: int = 0) -> None: ...

    def finish(self) -> None: ...


class NoProgress:
    """Reports nowhere."""

    def start(self, description: str, total_bytes: int, total_files: int) -> None:
        pass

    def advance(self, nbytes: int = 0, files: int = 0) -> None:
        pass

    def finish(self) -> None:
        pass


NO_PROGRESS = NoProgress()


def ignore_bytes(count: int) -> None:
    """An ``on_bytes`` callback that reports nowhere."""


class HighWater:
    """Turns positions reached in a transfer into forward-only byte counts for ``on_bytes``.

    A transfer that is retried goes back to an earlier position and covers the same bytes
    again; only progress past the highest position reached so far is reported, so nothing is
    counted twice.
    """

    def __init__(self, on_bytes: Callable[[int], None]) -> None:
        self._on_bytes = on_bytes
        self._lock = threading.Lock()
        self.position = 0

    def reached(self, position: int) -> None:
        with self._lock:
            gained = position - self.position
            if gained <= 0:
                return
            self.position = position
        self._on_bytes(gained)


def summed_into(sent: HighWater) -> Callable[[int], None]:
    """An ``on_bytes`` for threads that each report their own piece (a part, a block): the
    counts are added up into positions for ``sent``, so that pieces sent again by a fresh start
    of the whole upload are not counted twice."""
    total = 0
    lock = threading.Lock()

    def on_piece(count: int) -> None:
        nonlocal total
        with lock:
            total += count
            position = total
        sent.reached(position)

    return on_piece


def bytes_on_disk(path: str) -> int:
    """Bytes under ``path`` (a file or a tree), plus SDK temporaries named ``path.*`` beside it."""
    folder, base = os.path.split(path)
    try:
        entries = [
            e.path
            for e in os.scandir(folder or ".")
            if e.name == base or e.name.startswith(base + ".")
        ]
    except OSError:
        return 0
    return tree_size(entries)[0]


@contextlib.contextmanager
def watch_bytes(path: str, progress: TransferProgress) -> Iterator[None]:
    """Report the bytes landing under ``path`` while the block runs (drivers report nothing
    themselves, so a single large file still shows its rate and ETA)."""
    if isinstance(progress, NoProgress):
        yield
        return
    reported = 0

    def poll() -> None:
        nonlocal reported
        current = bytes_on_disk(path)
        if current > reported:
            progress.advance(current - reported)
            reported = current

    with periodically(_POLL_S, poll, "progress"):
        yield
    poll()
