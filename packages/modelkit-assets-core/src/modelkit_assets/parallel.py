"""Run transfers on a bounded thread pool; the first failure cancels what has not started."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from typing import TypeVar

T = TypeVar("T")


def run_parallel(function: Callable[[T], None], items: Iterable[T], max_workers: int) -> None:
    """Call ``function`` on every item; re-raise the first exception once all calls settled."""
    items = list(items)
    if len(items) <= 1 or max_workers <= 1:
        for item in items:
            function(item)
        return
    with ThreadPoolExecutor(min(max_workers, len(items))) as pool:
        futures: list[Future[None]] = [pool.submit(function, item) for item in items]
        _, pending = wait(futures, return_when=FIRST_EXCEPTION)
        for future in pending:
            future.cancel()
        for future in futures:
            if future.done() and not future.cancelled() and future.exception() is not None:
                raise future.exception()  # type: ignore[misc]
