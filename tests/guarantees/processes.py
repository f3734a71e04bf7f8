"""Worker processes (:mod:`tests.guarantees.worker`) started, released and killed by a test.

Workers are forked by a multiprocessing fork server that has already imported modelkit-assets
and every backend's SDK: dozens of client processes per backend then cost milliseconds each,
where a fresh interpreter costs half a second of imports. They are real processes all the same
(their own pid, memory and connections), killed with a real SIGKILL. The fork server lives as
long as the test session and exits with it.
"""

from __future__ import annotations

import contextlib
import json
import multiprocessing
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Final

from tests.guarantees import worker

#: Longest wait for a worker to build its clients, or to finish its work.
READY_TIMEOUT_S: Final = 60.0
WORK_TIMEOUT_S: Final = 120.0
_PRELOAD: Final = [
    "tests.guarantees.worker",
    "tests.guarantees.faulty_local",
    "modelkit_assets_s3.driver",
    "modelkit_assets_gcs.driver",
    "google.cloud.storage",  # the gcs driver imports it on first use (its writes, with obstore)
    "modelkit_assets_az.driver",
]

_context = multiprocessing.get_context("forkserver")
_context.set_forkserver_preload(_PRELOAD)


class Worker:
    """One worker process, in the environment the test has when it starts it."""

    def __init__(
        self, args: list[str], log_dir: Path, name: str, env: dict[str, str] | None = None
    ) -> None:
        self.name = name
        self.stderr_path = log_dir / f"{name}.stderr"
        self._conn, child = _context.Pipe()
        self.process = _context.Process(
            target=worker.run,
            args=({**os.environ, **(env or {})}, args, child, str(self.stderr_path)),
            name=name,
            daemon=True,
        )
        self.process.start()
        child.close()
        self.events: list[dict[str, Any]] = []
        self.started_at = 0.0

    @property
    def stderr(self) -> str:
        try:
            return self.stderr_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def _receive(self, timeout: float) -> dict[str, Any] | None:
        """The next event, or None once the worker is gone."""
        try:
            if not self._conn.poll(timeout):
                return None
            event: dict[str, Any] = json.loads(self._conn.recv_bytes())
        except (EOFError, OSError, ValueError):  # gone, or killed in the middle of a send
            return None
        return event

    def wait_ready(self) -> None:
        event = self._receive(READY_TIMEOUT_S)
        if event is None or "ready" not in event:
            self.stop()
            raise AssertionError(f"worker {self.name} did not start: {event}\n{self.stderr}")

    def go(self) -> None:
        self.started_at = time.monotonic()
        self._conn.send_bytes(b"go")

    def kill_after(self, delay_s: float) -> bool:
        """SIGKILL the worker ``delay_s`` after :meth:`go`; False if it had already ended."""
        time.sleep(max(0.0, self.started_at + delay_s - time.monotonic()))
        running = self.process.is_alive()
        self.process.kill()
        self.finish(expect_exit=None)
        return running

    def finish(self, expect_exit: int | None = 0) -> list[dict[str, Any]]:
        """Wait for the end; return the events (asserting the exit code if given)."""
        deadline = time.monotonic() + WORK_TIMEOUT_S
        while (event := self._receive(max(0.0, deadline - time.monotonic()))) is not None:
            self.events.append(event)
        self.process.join(max(0.0, deadline - time.monotonic()))
        if expect_exit is not None:
            assert self.process.exitcode == expect_exit, (
                f"worker {self.name} exited with {self.process.exitcode}: {self.events}\n"
                + self.stderr
            )
        return self.events

    @property
    def pid(self) -> int:
        assert self.process.pid is not None
        return self.process.pid

    @property
    def exitcode(self) -> int | None:
        return self.process.exitcode

    def stop(self) -> None:
        """Kill the worker if it still runs (teardown: no process is ever left behind)."""
        if self.process.is_alive():
            self.process.kill()
        self.process.join(10)
        self._conn.close()


class Workers:
    """Starts workers for one test and kills any that are left at its end."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.started: list[Worker] = []

    def start(self, commands: list[list[str]], env: dict[str, str] | None = None) -> list[Worker]:
        """Start one worker per command, in the test's environment updated with ``env``; they
        build their clients, then wait for :meth:`go`."""
        workers = [
            Worker(command, self.log_dir, f"worker-{len(self.started) + i}", env)
            for i, command in enumerate(commands)
        ]
        self.started.extend(workers)
        return workers

    @staticmethod
    def go(workers: list[Worker]) -> list[Worker]:
        """Wait until every worker is ready, then release them all at once."""
        for started in workers:
            started.wait_ready()
        for started in workers:
            started.go()
        return workers

    def start_together(self, commands: list[list[str]]) -> list[Worker]:
        return self.go(self.start(commands))

    def stop_all(self) -> None:
        for started in self.started:
            started.stop()


@contextlib.contextmanager
def workers_in(log_dir: Path) -> Iterator[Workers]:
    log_dir.mkdir(parents=True, exist_ok=True)
    workers = Workers(log_dir)
    try:
        yield workers
    finally:
        workers.stop_all()
