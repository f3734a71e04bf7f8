"""The progress interface transfers report to; the CLI draws it, the API ignores it by default."""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterator
from typing import Final, Protocol

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


def bytes_on_disk(path: str) -> int:
    """Bytes under ``path`` (a file or a tree), plus SDK temporaries named ``path.*`` beside it."""
    total = 0
    folder, base = os.path.split(path)
    with contextlib.suppress(OSError):
        for entry in os.scandir(folder or "."):
            if entry.name != base and not entry.name.startswith(base + "."):
                continue
            if entry.is_dir(follow_symlinks=False):
                for root, _, files in os.walk(entry.path):
                    for name in files:
                        with contextlib.suppress(OSError):
                            total += os.stat(os.path.join(root, name)).st_size
            else:
                with contextlib.suppress(OSError):
                    total += entry.stat().st_size
    return total


@contextlib.contextmanager
def watch_bytes(path: str, progress: TransferProgress) -> Iterator[None]:
    """Report the bytes landing under ``path`` while the block runs (drivers report nothing
    themselves, so a single large file still shows its rate and ETA)."""
    if isinstance(progress, NoProgress):
        yield
        return
    stop = threading.Event()
    reported = 0

    def poll() -> None:
        nonlocal reported
        current = bytes_on_disk(path)
        if current > reported:
            progress.advance(current - reported)
            reported = current

    def loop() -> None:
        while not stop.wait(_POLL_S):
            poll()

    thread = threading.Thread(target=loop, name="modelkit-assets-progress", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
        poll()
