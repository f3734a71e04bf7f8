"""The benchmark's smoke mode runs end to end: tiny data, one repetition, every store.

Benchmarks are not unit tests: this only proves that ``bench/run.py`` still works (its servers
start, its child processes push and fetch, its table is written), not how fast anything is. It
times modelkit-assets alone; the reference (modelkit) is installed only by a full ``make bench``.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.timeout(120)
def test_bench_smoke(tmp_path: Path) -> None:
    out = tmp_path / "RESULTS.md"
    done = subprocess.run(
        [
            sys.executable,
            str(ROOT / "bench" / "run.py"),
            "--smoke",
            "--no-reference",
            f"--work={tmp_path / 'work'}",
            f"--out={out}",
        ],
        capture_output=True,
        text=True,
        timeout=110,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    table = out.read_text()
    for row in (
        "`modelkit assets --help`",
        "fetch a directory of 20 x 1 KiB files",
        "push one 2 MiB file",
        "cached pinned `fetch_asset` (per call)",
        "peak RSS, fetch one 9 MiB file",
    ):
        assert row in table
    for store in ("local folder", "SeaweedFS", "fake-gcs", "Azurite"):
        assert f"| {store} |" in table
    rows = [line.split(" | ") for line in table.splitlines() if line.startswith("| ")][2:]
    assert rows
    assert all(cells[2] != "-" for cells in rows), "modelkit-assets has a figure in every row"
    samples = json.loads((tmp_path / "work" / "samples.json").read_text())
    pushes = [s for s in samples if s["case"] == "push_many" and s["project"] == "ours"]
    assert {s["provider"] for s in pushes} == {"local", "s3", "gcs", "az"}
    assert all(len(s["seconds"]) == 1 and s["seconds"][0] > 0 for s in pushes)
