"""Start a real storage server as a child process on a free loopback port, and stop it.

The port and readiness helpers are shared with the benchmark (``bench/servers.py``). Output goes
to a log file, never to a pipe nobody reads (a full pipe hangs the server). A server
that does not become ready in time fails the run with the end of its log: never a silent skip.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def port_is_free(port: int) -> bool:
    """Whether nothing listens on ``port`` of 127.0.0.1 right now."""
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def http_ready(url: str, ok_statuses: Sequence[int] | None = None) -> Callable[[], bool]:
    """A readiness probe: the URL answers (with one of ``ok_statuses`` when given)."""

    def probe() -> bool:
        try:
            with urllib.request.urlopen(url, timeout=1) as response:
                status = int(response.status)
        except urllib.error.HTTPError as exc:
            status = exc.code
        except (OSError, urllib.error.URLError):
            return False
        return ok_statuses is None or status in ok_statuses

    return probe


def bucket_ready(client: Any, bucket: str, timeout_s: float) -> Exception | None:
    """Wait until an S3 server has ``bucket`` (SeaweedFS answers its health check before its
    filer has made the bucket); None once it has, else the last error after ``timeout_s``."""
    from botocore.exceptions import BotoCoreError, ClientError

    deadline = time.monotonic() + timeout_s
    while True:
        try:
            client.head_bucket(Bucket=bucket)
            return None
        except (ClientError, BotoCoreError) as exc:
            if time.monotonic() > deadline:
                return exc
            time.sleep(0.2)


class ServerProcess:
    """A server process with its log file; use :func:`start_server` to make one."""

    def __init__(self, name: str, process: subprocess.Popen[bytes], log_path: Path) -> None:
        self.name = name
        self.process = process
        self.log_path = log_path

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def stop(self) -> None:
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(10)


def start_server(
    name: str,
    command: Sequence[str],
    ready: Callable[[], bool],
    log_dir: Path,
    env: dict[str, str] | None = None,
    timeout_s: float = 60.0,
    cwd: Path | None = None,
) -> ServerProcess:
    """Start ``command`` and wait until ``ready()``; fail the test run if it never is."""
    import pytest  # only here: the benchmark imports this module's helpers without pytest

    log_path = log_dir / f"{name}.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            list(command),
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env={**os.environ, **(env or {})},
            cwd=cwd,
            start_new_session=True,  # its own process group: stop() takes its children too
        )
    server = ServerProcess(name, process, log_path)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(
                f"{name} exited with {process.returncode} at start:\n{server.log_tail()}",
                pytrace=False,
            )
        if ready():
            return server
        time.sleep(0.1)
    server.stop()
    pytest.fail(f"{name} was not ready after {timeout_s:g} s:\n{server.log_tail()}", pytrace=False)
