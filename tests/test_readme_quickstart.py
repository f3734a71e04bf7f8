"""The README's quick start runs as printed, in its own order: the shell block, then Python."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

README = Path(__file__).parent.parent / "README.md"
MODELKIT = str(Path(sys.executable).parent / "modelkit")


def _quick_start() -> tuple[list[str], str]:
    section = README.read_text().split("## Quick start", 1)[1]
    shell = re.search(r"```bash\n(.*?)```", section, flags=re.S)
    python = re.search(r"```python\n(.*?)```", section, flags=re.S)
    assert shell
    assert python
    commands = [line.split("#")[0].strip() for line in shell[1].splitlines()]
    return [c for c in commands if c.startswith("modelkit ")], python[1]


def test_quick_start_as_printed(tmp_path: Path) -> None:
    commands, python = _quick_start()
    (tmp_path / "weights.bin").write_bytes(b"weights")
    (tmp_path / "model_dir" / "vocab").mkdir(parents=True)
    (tmp_path / "model_dir" / "vocab" / "words.txt").write_text("hello\n")
    (tmp_path / "model_dir" / "config.json").write_text("{}")
    for folder in ("bucket", "assets"):
        (tmp_path / folder).mkdir()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("MODELKIT_")},
        "MODELKIT_STORAGE_PROVIDER": "local",
        "MODELKIT_STORAGE_BUCKET": str(tmp_path / "bucket"),
        "MODELKIT_STORAGE_PREFIX": "modelkit-assets",
        "MODELKIT_ASSETS_DIR": str(tmp_path / "assets"),
    }
    for command in commands:
        done = subprocess.run(
            [MODELKIT, *command.split()[1:]],
            input="y\n",  # "asks first": the answer
            capture_output=True,
            text=True,
            cwd=tmp_path,
            env=env,
            check=False,
        )
        assert done.returncode == 0, (command, done.stderr)
    listed = subprocess.run(
        [MODELKIT, "assets", "list", "--json"], capture_output=True, text=True, env=env, check=True
    )
    assert json.loads(listed.stdout)["assets"][0]["versions"] == ["1.0", "0.2", "0.1", "0.0"]
    script = "import json\n" + python + "\nprint(json.dumps([path, info['version']]))\n"
    done = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    path, version = json.loads(done.stdout.strip().splitlines()[-1])
    assert Path(path).read_text() == "hello\n"
    assert version == "1.0"
