"""Fixtures of the guarantee tests.

Each test records what it ran and counted with :func:`tests.guarantees.figures.record`:
processes and updates, versions lost, kills tried, faults injected and survived;
:mod:`tests.guarantees.reporting` sums them up at the end of the run.
"""

from __future__ import annotations

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
from tests.guarantees.processes import Workers, workers_in
from tests.servers import Backend


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


@pytest.fixture(autouse=True)
def _data_path_engine(engine: str) -> str:
    """Every guarantee holds on each data-path engine: on S3, boto3's and, with the fast extra,
    obstore's (the ``engine`` parametrization of tests/conftest.py)."""
    return engine
