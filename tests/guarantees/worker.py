"""The client processes of the guarantee tests: what runs in them.

A worker is a real process (see :mod:`tests.guarantees.processes`, which forks it from a
server that has already imported modelkit-assets and the cloud SDKs, so that starting one costs
milliseconds, not a second of imports). It takes the test's environment as it was when the test
started it, configures itself from it like any user of modelkit-assets, says it is ready once
its clients are built, then waits for the go before it works, so that a test can release
several workers at the same moment and time a ``kill -9`` from the start of the work itself.
Each step it completes is sent to the test as one JSON object; a failure sends
``{"error": ..., "message": ...}`` and exits with 1. Its stderr goes to a file.

Commands::

    update NAME COUNT TAG WORKDIR   push COUNT new versions of NAME with update_next, with
                                    contents made from TAG and the step; send version and sha256
    push SOURCE NAME VERSION        push SOURCE as NAME:VERSION
    next SOURCE NAME                push SOURCE as the next version of NAME (update_next)
    fetch SPEC[,SPEC...] [ASSETS_DIR]
                                    fetch each SPEC into ASSETS_DIR (default: MODELKIT_ASSETS_DIR);
                                    send where, which version, and whether from the cache
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import sys
import uuid
from collections.abc import Callable, Mapping
from multiprocessing.connection import Connection
from typing import Any

from modelkit_assets import AssetsManager, StorageProvider, errors

Emit = Callable[..., None]


class Counter(logging.Handler):
    """Counts the core's log records that say a step was retried."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.conflicts = 0
        self.retries = 0

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if "taken meanwhile" in message:
            self.conflicts += 1
        elif "retrying in" in message:
            self.retries += 1


def update(emit: Emit, store: StorageProvider, name: str, count: str, tag: str, dir: str) -> None:
    """COUNT updates; workers given the same TAG push the same contents, in the same order."""
    for i in range(int(count)):
        content = f"{tag} update {i}\n".encode() * (1 + i % 7) * 50
        path = os.path.join(dir, f"{uuid.uuid4().hex}.bin")
        with open(path, "wb") as f:
            f.write(content)
        plan = store.update_next(path, name)
        emit(version=plan.version, sha256=hashlib.sha256(content).hexdigest(), size=len(content))


def prepare(emit: Emit, command: str, args: list[str]) -> Callable[[], None]:
    """Build the clients now (so that the work starts at the go), and return the work."""
    if command == "fetch":
        manager = AssetsManager(args[1] if len(args) > 1 else None)
        with contextlib.suppress(errors.ModelkitAssetsError):  # the fetch meets it again
            _ = manager.storage_provider

        def fetch() -> None:
            for spec in args[0].split(","):
                info = manager.fetch_asset(spec, return_info=True)
                emit(path=info["path"], version=info["version"], from_cache=info["from_cache"])

        return fetch
    store = StorageProvider()
    if command == "update":
        return lambda: update(emit, store, *args)
    if command == "next":
        source, name = args

        def update_next() -> None:
            emit(pushed=store.update_next(source, name).version)

        return update_next
    if command == "push":
        source, name, version = args

        def push() -> None:
            store.push(source, name, version)
            emit(pushed=version)

        return push
    raise ValueError(f"unknown worker command {command!r}")


def _adopt(env: Mapping[str, str], stderr_path: str) -> None:
    """Become a process started now by the test: its environment, path and stderr."""
    os.environ.clear()
    os.environ.update(env)
    for entry in reversed(env.get("PYTHONPATH", "").split(os.pathsep)):
        if entry and entry not in sys.path:
            sys.path.insert(0, entry)
    fd = os.open(stderr_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
    os.dup2(fd, 2)
    os.close(fd)


def run(env: Mapping[str, str], argv: list[str], conn: Connection, stderr_path: str) -> None:
    """The worker's whole life; its exit code says whether the work succeeded."""
    _adopt(env, stderr_path)

    def emit(**fields: Any) -> None:
        conn.send_bytes(json.dumps(fields).encode())

    counter = Counter()
    for name in ("modelkit_assets.store", "modelkit_assets.retry"):
        # Only these two: warnings of the others must reach stderr as they would anywhere.
        logging.getLogger(name).addHandler(counter)
        logging.getLogger(name).setLevel(logging.INFO)
    work = prepare(emit, argv[0], argv[1:])
    emit(ready=os.getpid())
    conn.recv_bytes()
    try:
        work()
    except errors.ModelkitAssetsError as exc:
        emit(error=type(exc).__name__, message=str(exc))
        sys.exit(1)
    finally:
        emit(conflicts=counter.conflicts, retries=counter.retries)
