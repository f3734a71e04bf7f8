"""Worker processes (:mod:`tests.guarantees.worker`) started, released and killed by a test."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any, Final

from tests.guarantees.faults import REPO_ROOT

#: Longest wait for a worker to import and build its clients, or to finish its work.
READY_TIMEOUT_S: Final = 60.0
WORK_TIMEOUT_S: Final = 120.0


class Worker:
    """One ``python -m tests.guarantees.worker`` process, in the test's environment."""

    def __init__(self, args: list[str], log_dir: Path, name: str) -> None:
        self.name = name
        self.stderr_path = log_dir / f"{name}.stderr"
        with open(self.stderr_path, "wb") as stderr:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "tests.guarantees.worker", *args],
                cwd=REPO_ROOT,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=stderr,
                text=True,
            )
        self.events: list[dict[str, Any]] = []
        self.started_at = 0.0

    @property
    def stdout(self) -> IO[str]:
        assert self.process.stdout is not None
        return self.process.stdout

    @property
    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace")

    def wait_ready(self) -> None:
        line = self.stdout.readline()
        if not line.startswith('{"ready"'):
            self.process.kill()
            self.process.wait()
            raise AssertionError(f"worker {self.name} did not start: {line!r}\n{self.stderr}")

    def go(self) -> None:
        assert self.process.stdin is not None
        self.started_at = time.monotonic()
        self.process.stdin.write("go\n")
        self.process.stdin.close()
        self.process.stdin = None  # communicate() must not flush it again

    def kill_after(self, delay_s: float) -> bool:
        """``kill -9`` the worker ``delay_s`` after :meth:`go`; False if it had finished."""
        time.sleep(max(0.0, self.started_at + delay_s - time.monotonic()))
        finished = self.process.poll() is not None
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.process.pid, signal.SIGKILL)
        self.finish(expect_exit=None)
        return not finished

    def finish(self, expect_exit: int | None = 0) -> list[dict[str, Any]]:
        """Wait for the end; return the JSON events (asserting the exit code if given)."""
        out, _ = self.process.communicate(timeout=WORK_TIMEOUT_S)
        self.events = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
        if expect_exit is not None:
            assert self.process.returncode == expect_exit, (
                f"worker {self.name} exited with {self.process.returncode}: {self.events}\n"
                + self.stderr
            )
        return self.events

    def stop(self) -> None:
        """Kill the worker if it still runs (teardown: no process is ever left behind)."""
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.process.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired, ValueError, OSError):
            self.process.communicate(timeout=10)


class Workers:
    """Starts workers for one test and kills any that are left at its end."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.started: list[Worker] = []

    def start(self, *args: str, name: str | None = None) -> Worker:
        worker = Worker(list(args), self.log_dir, name or f"worker-{len(self.started)}")
        self.started.append(worker)
        return worker

    def start_together(self, commands: list[list[str]]) -> list[Worker]:
        """Start one worker per command, wait until all are ready, then release them at once."""
        workers = [self.start(*command) for command in commands]
        for worker in workers:
            worker.wait_ready()
        for worker in workers:
            worker.go()
        return workers

    def stop_all(self) -> None:
        for worker in self.started:
            worker.stop()


@contextlib.contextmanager
def workers_in(log_dir: Path) -> Iterator[Workers]:
    log_dir.mkdir(parents=True, exist_ok=True)
    workers = Workers(log_dir)
    try:
        yield workers
    finally:
        workers.stop_all()
