"""A whole push and fetch in fresh processes, for tests of what a fetch through obstore imports."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from modelkit_assets.engines import ENGINE_ENV


def sdk_modules_of_a_fetch(
    backend_env: dict[str, str], provider: str, bucket: str, prefix: str, tmp_path: Path,
    sdk_prefixes: tuple[str, ...], drop_env: tuple[str, ...],
) -> list[str]:  # fmt: skip
    """Push three small files as ``a:0.0`` (CLI), fetch them with ``AssetsManager`` in a new
    process through obstore, check the files, and return the modules starting with
    ``sdk_prefixes`` that the fetching process had loaded."""
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith((*drop_env, "MODELKIT_"))},
        **backend_env,
        "MODELKIT_STORAGE_PROVIDER": provider,
        "MODELKIT_STORAGE_BUCKET": bucket,
        "MODELKIT_STORAGE_PREFIX": prefix,
        "MODELKIT_ASSETS_DIR": str(tmp_path / "assets"),
        ENGINE_ENV: "obstore",
    }
    (tmp_path / "assets").mkdir()
    source = tmp_path / "src"
    source.mkdir()
    for i in range(3):
        (source / f"f{i}").write_bytes(b"%d" % i * 100)
    pushed = subprocess.run(
        [sys.executable, "-m", "modelkit_assets", "assets", "new", str(source), "a", "--yes"],
        env=env, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert pushed.returncode == 0, pushed.stderr
    probe = (
        "import json, sys\n"
        "from modelkit_assets import AssetsManager\n"
        "path = AssetsManager().fetch_asset('a:0.0')\n"
        f"loaded = sorted(m for m in sys.modules if m.startswith({sdk_prefixes!r}))\n"
        "print(json.dumps([path, loaded]))"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], env=env, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    path, modules = json.loads(done.stdout.strip().splitlines()[-1])
    assert sorted(n for n in os.listdir(path) if not n.startswith(".")) == ["f0", "f1", "f2"]
    return list(modules)
