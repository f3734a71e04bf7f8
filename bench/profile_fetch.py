"""Profile one CLI fetch with py-spy (install it in the venv): where a fetch's time goes.

    python bench/profile_fetch.py [--engine obstore|sdk] [--large]

Starts SeaweedFS, pushes the bench's 1000 x 10 KiB folder (or the 256 MiB file), then records
one ``modelkit assets fetch`` with ``py-spy record --format raw`` (native frames included) and
prints the functions holding most samples, self and total, with the CLI's wall time.
"""

from __future__ import annotations

import argparse
import collections
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(1, str(Path(__file__).resolve().parents[1]))

from anchors import FULL, _run_sizes
from run import make_data

import servers

BIN = Path(sys.executable).parent


def top(raw: Path, count: int = 60) -> str:
    own: collections.Counter[str] = collections.Counter()
    total: collections.Counter[str] = collections.Counter()
    samples = 0
    for line in raw.read_text().splitlines():
        stack, _, n = line.rpartition(" ")
        if not stack:
            continue
        weight = int(n)
        samples += weight
        frames = stack.split(";")
        own[frames[-1]] += weight
        for frame in set(frames):
            total[frame] += weight
    out = [f"{samples} samples"]
    out += ["-- self --"] + [f"{100 * n / samples:5.1f}% {f}" for f, n in own.most_common(count)]
    out += ["-- total --"] + [f"{100 * n / samples:5.1f}% {f}" for f, n in total.most_common(count)]
    return "\n".join(out)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--engine", default="obstore")
    parser.add_argument("--large", action="store_true")
    parser.add_argument("--idle", action="store_true", help="wall time: idle samples too")
    args = parser.parse_args()
    work = Path(__file__).resolve().parent / ".work"
    data = make_data(work, _run_sizes(FULL))
    source = data["large" if args.large else "many"]
    with servers.seaweedfs(work) as store, tempfile.TemporaryDirectory() as tmp:
        env = {
            **os.environ, **store.env,
            "MODELKIT_STORAGE_PROVIDER": "s3", "MODELKIT_STORAGE_BUCKET": store.bucket,
            "MODELKIT_STORAGE_PREFIX": "p", "MODELKIT_STORAGE_ENGINE": args.engine,
        }  # fmt: skip
        cli = str(BIN / "modelkit")
        env["MODELKIT_ASSETS_DIR"] = tempfile.mkdtemp(dir=tmp)
        subprocess.run([cli, "assets", "new", str(source), "x/y:0.0", "--yes"], env=env, check=True,
                       capture_output=True)  # fmt: skip
        env["MODELKIT_ASSETS_DIR"] = tempfile.mkdtemp(dir=tmp)
        raw = Path(tmp) / "profile.txt"
        started = time.perf_counter()
        subprocess.run(
            [str(BIN / "py-spy"), "record", "--format", "raw", "--rate", "500",
             *(["--idle"] if args.idle else []),
             "--threads", "-o", str(raw), "--", cli, "assets", "fetch", "x/y:0.0"],
            env=env, check=True, capture_output=True,
        )  # fmt: skip
        print(f"fetch under py-spy: {time.perf_counter() - started:.2f} s")
        print(top(raw))
    return 0


if __name__ == "__main__":
    sys.exit(main())
