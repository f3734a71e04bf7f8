"""Fixtures of the guarantee tests, and the figures they report at the end of the run.

Each test records what it ran and counted with :func:`tests.guarantees.figures.record`:
processes and updates, versions lost, kills tried, faults injected and survived. At the end of
the session the figures are written to ``guarantees.json`` in pytest's base temporary folder
and summed up in the terminal summary, whether or not ``-s`` is given.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from modelkit_assets.plugins import reset_registry
from tests.conftest import StoreEnv
from tests.guarantees.faults import (
    FaultInjector,
    LocalInjector,
    ProxyInjector,
    install_faulty_local,
)
from tests.guarantees.figures import FIGURES, TOTALS
from tests.guarantees.processes import Workers, workers_in
from tests.servers import Backend


@pytest.fixture(scope="session", autouse=True)
def _report_path(tmp_path_factory: pytest.TempPathFactory) -> None:
    _REPORT["path"] = tmp_path_factory.getbasetemp() / "guarantees.json"


_REPORT: dict[str, Path] = {}


@pytest.fixture
def workers(tmp_path: Path) -> Iterator[Workers]:
    """Start worker processes; any still running at the end of the test is killed."""
    with workers_in(tmp_path / "workers") as started:
        yield started


@pytest.fixture
def injector(
    backend: Backend, store_env: StoreEnv, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> Iterator[FaultInjector]:
    """Faults between every client of the test (in-process and workers) and the backend."""
    chosen: FaultInjector
    if backend.provider == "local":
        site = tmp_path / "site"
        install_faulty_local(site)
        monkeypatch.syspath_prepend(str(site))
        chosen = LocalInjector(site, tmp_path / "faults")
    else:
        chosen = ProxyInjector(backend)
    for key, value in chosen.env.items():
        monkeypatch.setenv(key, value)
    reset_registry()
    try:
        yield chosen
    finally:
        if isinstance(chosen, ProxyInjector):
            chosen.close()


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not FIGURES:
        return
    path = _REPORT.get("path")
    if path is not None:
        path.write_text(json.dumps(FIGURES, indent=2))
    terminalreporter.write_sep("=", "guarantees: figures")
    for figures in FIGURES:
        details = ", ".join(
            f"{key}={value}"
            for key, value in figures.items()
            if key not in ("guarantee", "backend")
        )
        terminalreporter.write_line(f"{figures['guarantee']} [{figures['backend']}]: {details}")
    totals = {
        label: sum(int(f.get(key, 0)) for f in FIGURES)
        for key, label in TOTALS.items()
        if any(key in f for f in FIGURES)
    }
    backends = sorted({f["backend"] for f in FIGURES})
    if totals:
        terminalreporter.write_line(
            f"total over {', '.join(backends)}: "
            + ", ".join(f"{label} {value}" for label, value in totals.items())
        )
    if path is not None:
        terminalreporter.write_line(f"figures written to {path}")
