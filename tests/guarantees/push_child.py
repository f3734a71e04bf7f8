"""``python -m tests.guarantees.push_child COMMAND ...``: one push in a process of its own,
configured by the environment like any user; prints what it pushed, with the process's peak
resident memory (``peak_rss``, bytes), as one JSON line.

Commands::

    push SOURCE NAME VERSION   push SOURCE as NAME:VERSION (``StorageProvider.push``)
    next SOURCE NAME           push SOURCE as the next version of NAME (``update_next``)
    create SOURCE KEY          the driver alone: create the object KEY (under the store's
                               prefix) from SOURCE, create-only, as a push stores a large file

The push-resume tests (test_push_resume.py) start it, ``kill -9`` it midway, and start it again.
"""

from __future__ import annotations

import json
import sys

from modelkit_assets import StorageProvider
from tests.guarantees.fetch_child import peak_rss


def main(command: str, source: str, *args: str) -> None:
    store = StorageProvider()
    info: dict[str, object] = {}
    if command == "push":
        name, version = args
        info["version"] = store.push(source, name, version).version
    elif command == "next":
        (name,) = args
        info["version"] = store.update_next(source, name).version
    elif command == "create":
        (key,) = args
        store.driver.create_object_with_progress(source, f"{store.prefix}/{key}", lambda _: None)
    else:
        raise SystemExit(f"unknown command {command!r}")
    info["peak_rss"] = peak_rss()
    print(json.dumps(info), flush=True)


if __name__ == "__main__":
    main(*sys.argv[1:])
