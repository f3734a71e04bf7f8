"""A push and a fetch in fresh processes: how a fetch through obstore runs and how it ends."""

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
    done = fetch_in_a_new_process(
        backend_env, provider, bucket, prefix, tmp_path, drop_env,
        after=f"loaded = sorted(m for m in sys.modules if m.startswith({sdk_prefixes!r}))\n",
        answer="[path, loaded]",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    path, modules = json.loads(done.stdout.strip().splitlines()[-1])
    assert sorted(n for n in os.listdir(path) if not n.startswith(".")) == ["f0", "f1", "f2"]
    return list(modules)


def fetch_in_a_new_process(
    backend_env: dict[str, str], provider: str, bucket: str, prefix: str, tmp_path: Path,
    drop_env: tuple[str, ...], before: str = "", after: str = "", answer: str = "path",
    sizes: tuple[int, ...] = (100, 100, 100),
) -> subprocess.CompletedProcess[str]:  # fmt: skip
    """Push files ``f0``, ``f1``... of ``sizes`` bytes (three small ones by default) as
    ``a:0.0`` (CLI), then run ``before``, a fetch of them with ``AssetsManager`` through
    obstore (``path``), ``after`` and a print of ``answer`` as JSON in a new process, and
    return that process."""
    env = pushed_as_a(backend_env, provider, bucket, prefix, tmp_path, drop_env, sizes)
    probe = (
        f"import json, sys\n{before}"
        "from modelkit_assets import AssetsManager\n"
        f"path = AssetsManager().fetch_asset('a:0.0')\n{after}"
        f"print(json.dumps({answer}))"
    )
    return subprocess.run(
        [sys.executable, "-c", probe], env=env, capture_output=True, text=True, check=False
    )


def pushed_as_a(
    backend_env: dict[str, str], provider: str, bucket: str, prefix: str, tmp_path: Path,
    drop_env: tuple[str, ...], sizes: tuple[int, ...], engine: str = "obstore",
) -> dict[str, str]:  # fmt: skip
    """Push files ``f0``, ``f1``... of ``sizes`` random bytes from ``tmp_path / "src"`` as
    ``a:0.0`` (CLI, in a new process), and return the environment of that store, with an empty
    assets dir ``tmp_path / "assets"`` and ``engine`` as the data path."""
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith((*drop_env, "MODELKIT_"))},
        **backend_env,
        "MODELKIT_STORAGE_PROVIDER": provider,
        "MODELKIT_STORAGE_BUCKET": bucket,
        "MODELKIT_STORAGE_PREFIX": prefix,
        "MODELKIT_ASSETS_DIR": str(tmp_path / "assets"),
        ENGINE_ENV: engine,
    }
    (tmp_path / "assets").mkdir()
    source = tmp_path / "src"
    source.mkdir()
    for i, size in enumerate(sizes):
        (source / f"f{i}").write_bytes(os.urandom(size))
    pushed = subprocess.run(
        [sys.executable, "-m", "modelkit_assets", "assets", "new", str(source), "a", "--yes"],
        env=env, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert pushed.returncode == 0, pushed.stderr
    return env
