"""The cached pinned ``fetch_asset`` of this tree against an earlier revision's, side by side.

    python bench/cached_fetch.py [--baseline REV] [--rounds N]

The managed cache (records, holds, last-use times) sits on the path of every fetch, and the
cached pinned fetch is the call services make in their hot loops: its cost must not grow. This
script checks the baseline revision out into ``bench/.work/baseline-REV`` (a git worktree), pushes
one file on the local provider, caches it, then times ``fetch_asset`` in fresh processes of
either tree, alternating, ``--rounds`` times each, and prints the medians. Each process imports
the core from its tree's ``src`` (``PYTHONPATH``), so both run on this venv's Python and
dependencies.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
WORK = ROOT / "bench" / ".work"
CORE_SRC = Path("packages") / "modelkit-assets-core" / "src"

#: The last revision before the managed cache (its bench results: 10.0 us per call).
DEFAULT_BASELINE = "5ead268"

_TIMED = """
import json, statistics, sys, time
from modelkit_assets import AssetsManager
manager = AssetsManager()
spec = sys.argv[1]
assert manager.fetch_asset(spec, return_info=True)["from_cache"], "not cached"
per_call = []
for _ in range(7):
    start = time.perf_counter()
    for _ in range(20000):
        manager.fetch_asset(spec)
    per_call.append((time.perf_counter() - start) / 20000)
print(json.dumps(statistics.median(per_call)))
"""


def tree_of(revision: str) -> Path:
    """A checkout of ``revision`` (made once) under bench/.work."""
    tree = WORK / f"baseline-{revision}"
    if not tree.exists():
        WORK.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            ["git", "-C", str(ROOT), "worktree", "add", "--detach", str(tree), revision],
            check=True,
            capture_output=True,
        )
    return tree


def run(src: Path, code: str, env: dict[str, str], *args: str) -> str:
    result = subprocess.run(
        [sys.executable, "-c", code, *args],
        env={**env, "PYTHONPATH": str(src)},
        check=True,
        capture_output=True,
        text=True,
    )
    return result.stdout.strip()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--baseline", default=DEFAULT_BASELINE)
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument(
        "--out", default=str(ROOT / "bench" / "CACHED_FETCH.md"), help="write the figures here"
    )
    args = parser.parse_args()
    trees = {"before": tree_of(args.baseline) / CORE_SRC, "now": ROOT / CORE_SRC}
    with tempfile.TemporaryDirectory(prefix="cached-fetch-") as tmp:
        payload = Path(tmp, "model.bin")
        payload.write_bytes(os.urandom(1 << 20))
        env = {
            **os.environ,
            "MODELKIT_STORAGE_PROVIDER": "local",
            "MODELKIT_STORAGE_BUCKET": str(Path(tmp, "bucket")),
            "MODELKIT_STORAGE_PREFIX": "assets",
        }
        Path(tmp, "bucket").mkdir()
        push = "import sys\nfrom modelkit_assets import StorageProvider\n"
        push += "StorageProvider().new(sys.argv[1], 'bench/model', '0.0')"
        run(trees["now"], push, env, str(payload))
        samples: dict[str, list[float]] = {name: [] for name in trees}
        for name, src in trees.items():  # each tree caches its own copy, untimed
            tree_env = {**env, "MODELKIT_ASSETS_DIR": str(Path(tmp, f"assets-{name}"))}
            Path(tree_env["MODELKIT_ASSETS_DIR"]).mkdir()
            run(
                src,
                "from modelkit_assets import AssetsManager as M\n"
                "M().fetch_asset('bench/model:0.0')",
                tree_env,
            )
        for round_ in range(args.rounds):
            order = list(trees) if round_ % 2 == 0 else list(reversed(trees))
            for name in order:
                tree_env = {**env, "MODELKIT_ASSETS_DIR": str(Path(tmp, f"assets-{name}"))}
                seconds = json.loads(run(trees[name], _TIMED, tree_env, "bench/model:0.0"))
                samples[name].append(seconds)
    medians = {name: statistics.median(values) * 1e6 for name, values in samples.items()}
    ratio = medians["now"] / medians["before"]
    lines = [
        f"cached pinned fetch_asset, medians of {args.rounds} processes (us per call):",
        f"  before ({args.baseline}): {medians['before']:.1f} us",
        f"  now    (HEAD):    {medians['now']:.1f} us  ({ratio:.2f}x)",
    ]
    print("\n".join(lines))
    Path(args.out).write_text(
        "# The cached pinned fetch, before and after the managed cache\n\n"
        "`python bench/cached_fetch.py` (local provider, 20000 calls x 7 batches per process,"
        " processes of either tree alternating):\n\n```\n" + "\n".join(lines) + "\n```\n"
    )


if __name__ == "__main__":
    main()
