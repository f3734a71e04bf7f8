"""Small jobs that run on a thread beside a block of work: heartbeats, progress polling."""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Callable, Iterable, Iterator


@contextlib.contextmanager
def periodically(interval_s: float, tick: Callable[[], None], name: str) -> Iterator[None]:
    """Call ``tick()`` at once, then every ``interval_s`` seconds, until the block ends; the
    thread is joined before the block's exit goes on, so no tick runs after it."""
    stop = threading.Event()

    def loop() -> None:
        tick()
        while not stop.wait(interval_s):
            tick()

    thread = threading.Thread(target=loop, name=f"modelkit-assets-{name}", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


def tree_size(paths: Iterable[str]) -> tuple[int, int]:
    """Bytes and files under ``paths`` (files, or folders walked), ignoring what vanishes."""
    size = count = 0
    for path in paths:
        files = [path]
        if os.path.isdir(path) and not os.path.islink(path):
            files = [os.path.join(d, f) for d, _, names in os.walk(path) for f in names]
        for file in files:
            with contextlib.suppress(OSError):
                size += os.stat(file).st_size
                count += 1
    return size, count
