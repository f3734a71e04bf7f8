"""The "write your own driver" example of the README works as printed."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from modelkit_assets.plugins import reset_registry
from tests.cli_runner import ok

README = Path(__file__).parent.parent / "README.md"


def _block(first_line: str) -> str:
    for block in re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S):
        if block.startswith(first_line):
            return str(block)
    raise AssertionError(f"no README block starts with {first_line!r}")


def test_readme_driver_example(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    site = tmp_path / "site"
    package = site / "mystore_plugin"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text(_block("# mystore_plugin/__init__.py"))
    (package / "driver.py").write_text(_block("# mystore_plugin/driver.py"))
    info = site / "mystore_plugin-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: mystore-plugin\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[modelkit_assets]\nmystore = mystore_plugin\n")
    monkeypatch.syspath_prepend(str(site))
    reset_registry()

    (tmp_path / "root" / "bucket").mkdir(parents=True)
    (tmp_path / "assets").mkdir()
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "w.bin").write_bytes(b"weights")
    monkeypatch.setenv("MYSTORE_ROOT", str(tmp_path / "root"))
    monkeypatch.setenv("MODELKIT_STORAGE_PROVIDER", "mystore")
    monkeypatch.setenv("MODELKIT_STORAGE_BUCKET", "bucket")
    monkeypatch.setenv("MODELKIT_ASSETS_DIR", str(tmp_path / "assets"))
    ok("new", str(tmp_path / "model"), "my/model", "--yes")
    ok("update", str(tmp_path / "model"), "my/model", "--yes")
    path = Path(ok("fetch", "my/model[w.bin]").stdout.strip())
    assert path.read_bytes() == b"weights"
    assert "0.1" in path.parts
    assert "mystore" in ok("plugins").stdout
