"""The engine's asyncio loops, and a process exit that waits for obstore's own threads.

A many-file call drives a loop on the caller's own thread (:meth:`LoopPool.lend`): results
then reach the caller without a hand-off between two Python threads (GIL and queue wake-ups:
7% of the wall time of a CLI fetch of 1000 files of 10 KiB from fake-gcs-server). A caller
whose thread already runs an asyncio loop cannot drive a second one there; its calls run on
:class:`SharedLoop`, one loop on a thread of its own.

obstore's ``*_async`` calls run on tokio threads, which hand each result back to Python
themselves: they take the GIL and call ``loop.call_soon_threadsafe``, whose wake-up write lets
the GIL go and takes it again. If the interpreter has begun to finalize by then, Python 3.11
ends the thread with ``pthread_exit``, which cannot unwind a Rust thread: the process aborts
(SIGABRT or SIGBUS) after its work is done, with nothing on stderr. A fetch that had already
printed its answer then exits with a signal (seen on the 2-core CI machine, about one process
in a hundred under load).

So every future that obstore asks this loop for (pyo3's ``create_future``) is tracked, and an
``atexit`` hook, which runs before the interpreter finalizes, cancels the loop's tasks and waits
until obstore has let go of every one of those futures: a tokio thread holds its future until
its hand-back returns, so once they are all gone no tokio thread needs the GIL again.
"""

from __future__ import annotations

import asyncio
import atexit
import collections
import contextlib
import gc
import os
import queue
import threading
import time
import weakref
from collections.abc import Awaitable, Callable, Iterator
from concurrent.futures import Future
from typing import Any, ClassVar, Final

#: What a worker hands each result to.
Put = Callable[[tuple[int, Any]], None]
#: A coroutine function that puts results until its jobs run out.
Worker = Callable[[Put], Awaitable[None]]

#: How long a process exit waits for obstore's threads to hand back their last results (a
#: cancelled request lets go within milliseconds; a hand-back stuck longer is left to chance).
EXIT_WAIT_S: Final = 2.0


class EngineLoop(asyncio.SelectorEventLoop):
    """A selector loop that remembers the futures it made until they are garbage."""

    def __init__(self) -> None:
        super().__init__()
        self.futures: weakref.WeakSet[asyncio.Future[Any]] = weakref.WeakSet()

    def create_future(self) -> asyncio.Future[Any]:
        future = super().create_future()
        self.futures.add(future)
        return future

    def quiesce(self, wait_s: float = EXIT_WAIT_S) -> bool:
        """Cancel the loop's tasks and wait, letting the GIL go, until no future it made is
        alive (held by obstore's threads or anything else). True when none is left.

        A loop that nobody runs is run here a millisecond at a time: a hand-back that came
        after its caller stopped waiting sits in its queue, holding its future, until then."""
        if self.is_running():
            self.call_soon_threadsafe(_cancel_all, self)
        elif not self.is_closed():
            _cancel_all(self)
        deadline = time.monotonic() + wait_s
        if self.futures:
            gc.collect()  # a future caught in a reference cycle dies only in a collection
        while self.futures:
            if time.monotonic() >= deadline:
                return False
            if not self._tick():
                time.sleep(0.001)
        return True

    def _tick(self) -> bool:
        """Run the callbacks already queued, if this thread can run the loop now."""
        if self.is_running() or self.is_closed() or asyncio._get_running_loop() is not None:
            return False
        try:
            self.run_until_complete(asyncio.sleep(0.001))
        except RuntimeError:  # another thread began to run it meanwhile
            return False
        return True


def run_workers(worker: Worker, limit: int, count: int) -> Iterator[tuple[int, Any]]:
    """The ``count`` results that ``limit`` runs of ``worker`` put, as they come: on a loop
    of :class:`LoopPool` that this thread runs while it waits, or on :class:`SharedLoop`'s
    thread if this thread runs an asyncio loop already. The workers are cancelled if the
    caller stops early."""
    if asyncio._get_running_loop() is not None:
        return _on_shared_loop(worker, limit, count)
    return _on_this_thread(worker, limit, count)


def _on_this_thread(worker: Worker, limit: int, count: int) -> Iterator[tuple[int, Any]]:
    done: collections.deque[tuple[int, Any]] = collections.deque()
    with LoopPool.lend() as loop:
        waiter: asyncio.Future[None] | None = None

        def wake() -> None:
            if waiter is not None and not waiter.done():
                waiter.set_result(None)

        def put(item: tuple[int, Any]) -> None:
            done.append(item)
            wake()

        async def work() -> None:
            try:
                await worker(put)
            finally:  # the last worker out wakes the caller, whatever ended it
                wake()

        tasks = [loop.create_task(work()) for _ in range(limit)]
        try:
            for _ in range(count):
                while not done:
                    if all(task.done() for task in tasks):
                        for task in tasks:
                            task.result()  # a bug in a worker: raise it here
                        raise AssertionError("the engine lost a result")
                    waiter = loop.create_future()
                    loop.run_until_complete(waiter)
                yield done.popleft()
        finally:
            for task in tasks:
                task.cancel()
            loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))


def _on_shared_loop(worker: Worker, limit: int, count: int) -> Iterator[tuple[int, Any]]:
    results: queue.SimpleQueue[tuple[int, Any]] = queue.SimpleQueue()

    async def run_all() -> None:
        await asyncio.gather(*(worker(results.put) for _ in range(limit)))

    future: Future[None] = asyncio.run_coroutine_threadsafe(run_all(), SharedLoop.get())
    try:
        for _ in range(count):
            while True:
                try:
                    item = results.get(timeout=0.5)
                    break
                except queue.Empty:
                    if future.done() and results.empty():
                        future.result()  # a bug in a worker: raise it here
                        raise AssertionError("the engine lost a result") from None
            yield item
    finally:
        future.cancel()


def _cancel_all(loop: asyncio.AbstractEventLoop) -> None:
    for task in asyncio.all_tasks(loop):
        task.cancel()


class LoopPool:
    """Idle :class:`EngineLoop` objects, each lent to one caller at a time to run on its own
    thread: as many loops as calls ever ran at once, each kept for the life of the process
    (obstore may still hand a cancelled request back to it), none closed."""

    _lock: ClassVar = threading.Lock()
    _idle: ClassVar[list[EngineLoop]] = []
    #: The process whose loops these are: a forked child shares their selectors' descriptors.
    _pid: ClassVar = 0

    @classmethod
    @contextlib.contextmanager
    def lend(cls) -> Iterator[EngineLoop]:
        with cls._lock:
            if cls._pid != os.getpid():
                cls._idle, cls._pid = [], os.getpid()
            loop = cls._idle.pop() if cls._idle else _new_loop()
        try:
            yield loop
        finally:
            with cls._lock:
                if cls._pid == os.getpid():
                    cls._idle.append(loop)


class SharedLoop:
    """One :class:`EngineLoop` on a daemon thread, shared by every engine of the process, for
    the callers whose own thread runs an asyncio loop already."""

    _lock: ClassVar = threading.Lock()
    _loop: ClassVar[EngineLoop | None] = None
    #: The process that started the loop's thread: a forked child has no such thread.
    _pid: ClassVar = 0

    @classmethod
    def get(cls) -> EngineLoop:
        with cls._lock:
            if cls._loop is None or cls._loop.is_closed() or cls._pid != os.getpid():
                loop = _new_loop()
                threading.Thread(
                    target=loop.run_forever, name="modelkit-obstore", daemon=True
                ).start()
                cls._loop, cls._pid = loop, os.getpid()
            return cls._loop


def _new_loop() -> EngineLoop:
    """A loop that the process's exit will wait for."""
    loop = EngineLoop()
    atexit.register(_quiesce_at_exit, loop, os.getpid())
    return loop


def _quiesce_at_exit(loop: EngineLoop, pid: int) -> None:
    if os.getpid() == pid:  # a forked child inherits the hook, not the loop's requests
        loop.quiesce()
