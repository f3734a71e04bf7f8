"""The end-of-run summary of the guarantee tests' figures, with or without pytest-xdist.

A test's figures travel in its report (``user_properties``), so that they reach the process
that prints the summary: under xdist the tests run in workers and the controller reports. At
the end of the session the figures are also written to ``guarantees.json`` in pytest's base
temporary folder, whether or not ``-s`` is given.
"""

from __future__ import annotations

import json
from collections.abc import Generator
from pathlib import Path
from typing import Any

import pytest

from tests.guarantees.figures import PENDING, TOTALS

_KEY = "guarantee_figures"

#: Figures of every test of the run, in the order their reports arrived.
COLLECTED: list[dict[str, Any]] = []


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None]:
    outcome = yield
    if PENDING:
        report: pytest.TestReport = outcome.get_result()  # type: ignore[attr-defined]
        report.user_properties.append((_KEY, list(PENDING)))
        PENDING.clear()


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    for key, value in report.user_properties:
        if key == _KEY:
            COLLECTED.extend(value)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not COLLECTED:
        return
    terminalreporter.write_sep("=", "guarantees: figures")
    for figures in COLLECTED:
        details = ", ".join(
            f"{key}={value}"
            for key, value in figures.items()
            if key not in ("guarantee", "backend")
        )
        terminalreporter.write_line(f"{figures['guarantee']} [{figures['backend']}]: {details}")
    totals = {
        label: sum(int(f.get(key, 0)) for f in COLLECTED)
        for key, label in TOTALS.items()
        if any(key in f for f in COLLECTED)
    }
    backends = sorted({f["backend"] for f in COLLECTED})
    if totals:
        terminalreporter.write_line(
            f"total over {', '.join(backends)}: "
            + ", ".join(f"{label} {value}" for label, value in totals.items())
        )
    path = _report_path(terminalreporter.config)
    if path is not None:
        path.write_text(json.dumps(COLLECTED, indent=2))
        terminalreporter.write_line(f"figures written to {path}")


def _report_path(config: pytest.Config) -> Path | None:
    factory = getattr(config, "_tmp_path_factory", None)  # set by pytest's tmp_path plugin
    if factory is None:
        return None
    base: Path = factory.getbasetemp()
    return base / "guarantees.json"
