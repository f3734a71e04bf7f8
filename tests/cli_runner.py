"""Run the CLI in-process with click's runner, stdout and stderr kept apart."""

from __future__ import annotations

import json
from typing import Any

from click.testing import CliRunner, Result

from modelkit_assets.cli import modelkit_cli


def run(*args: str, input: str | None = None) -> Result:
    """``modelkit assets ARGS...``; the environment is the test's (see monkeypatch)."""
    return CliRunner().invoke(modelkit_cli, ["assets", *args], input=input, catch_exceptions=False)


def ok(*args: str, input: str | None = None) -> Result:
    """Like :func:`run`, asserting exit code 0."""
    result = run(*args, input=input)
    assert result.exit_code == 0, (result.exit_code, result.stdout, result.stderr)
    return result


def fails(*args: str, input: str | None = None, code: int = 1) -> str:
    """Run, assert the exit code and a one-line error without traceback; return the line."""
    result = run(*args, input=input)
    assert result.exit_code == code, (result.exit_code, result.stdout, result.stderr)
    assert "Traceback" not in result.stderr + result.stdout
    lines = [line for line in result.stderr.splitlines() if line.startswith("Error")]
    assert len(lines) == 1, result.stderr
    return lines[0]


def as_json(result: Result) -> Any:
    return json.loads(result.stdout)
