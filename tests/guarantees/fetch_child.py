"""``python -m tests.guarantees.fetch_child SPEC``: one fetch in a process of its own, configured
by the environment like any user; prints the fetch info, with the process's peak resident
memory (``peak_rss``, bytes), as one JSON line.

The resume tests (test_resume.py) start it, ``kill -9`` it midway, and start it again.
"""

from __future__ import annotations

import json
import resource
import sys

from modelkit_assets import AssetsManager


def main(spec: str) -> None:
    info = AssetsManager().fetch_asset(spec, return_info=True)
    info["peak_rss"] = peak_rss()
    print(json.dumps(info, default=str), flush=True)


def peak_rss() -> int:
    """The peak resident memory of this program, in bytes: VmHWM, which starts afresh at
    ``exec`` (``ru_maxrss`` keeps the peak of the parent that forked the process)."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


if __name__ == "__main__":
    main(sys.argv[1])
