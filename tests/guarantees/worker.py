"""A client process for the guarantee tests: ``python -m tests.guarantees.worker COMMAND ...``.

It configures itself from the environment like any user of modelkit-assets, prints
``{"ready": PID}`` once imports and clients are built, then waits for a line on stdin before it
starts, so that a test can start several workers at the same moment and time a ``kill -9``
from the start of the work itself. Each step prints one JSON line; a failure prints
``{"error": ..., "message": ...}`` and exits with 1.

Commands::

    update NAME COUNT TAG WORKDIR   push COUNT new versions of NAME with update_next, each with
                                    its own content; print version and sha256 of each
    push SOURCE NAME VERSION        push SOURCE as NAME:VERSION
    fetch SPEC                      fetch SPEC into MODELKIT_ASSETS_DIR; print where and how
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import sys
import uuid
from collections.abc import Callable
from typing import Any

from modelkit_assets import AssetsManager, StorageProvider, errors


def emit(**fields: Any) -> None:
    print(json.dumps(fields), flush=True)


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


def update(store: StorageProvider, name: str, count: str, tag: str, workdir: str) -> None:
    for i in range(int(count)):
        content = f"{tag} update {i} {uuid.uuid4().hex}\n".encode() * (1 + i % 7) * 50
        path = os.path.join(workdir, f"{tag}-{i}.bin")
        with open(path, "wb") as f:
            f.write(content)
        plan = store.update_next(path, name)
        emit(version=plan.version, sha256=hashlib.sha256(content).hexdigest(), size=len(content))


def push(store: StorageProvider, source: str, name: str, version: str) -> None:
    store.push(source, name, version)
    emit(pushed=version)


def fetch(manager: AssetsManager, spec: str) -> None:
    info = manager.fetch_asset(spec, return_info=True)
    emit(path=info["path"], version=info["version"], from_cache=info["from_cache"])


def prepare(command: str, args: list[str]) -> Callable[[], None]:
    """Build the clients now (so that the work starts at "go"), and return the work."""
    if command == "fetch":
        manager = AssetsManager()
        _ = manager.storage_provider
        return lambda: fetch(manager, *args)
    store = StorageProvider()
    if command == "update":
        return lambda: update(store, *args)
    if command == "push":
        return lambda: push(store, *args)
    raise SystemExit(f"unknown command {command!r}")


def main(argv: list[str]) -> int:
    counter = Counter()
    for name in ("modelkit_assets.store", "modelkit_assets.retry"):
        # Only these two: warnings of the others must reach stderr as they would anywhere.
        logging.getLogger(name).addHandler(counter)
        logging.getLogger(name).setLevel(logging.INFO)
    work = prepare(argv[0], argv[1:])
    emit(ready=os.getpid())
    sys.stdin.readline()
    try:
        work()
    except errors.ModelkitAssetsError as exc:
        emit(error=type(exc).__name__, message=str(exc))
        return 1
    finally:
        emit(conflicts=counter.conflicts, retries=counter.retries)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
