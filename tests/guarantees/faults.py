"""Injecting faults between a test's clients and its backend, the same way on every backend.

A network backend is reached through a :class:`~tests.faultproxy.FaultProxy`: its endpoint
variables are rewritten to the proxy's port (:func:`redirected`). The ``local`` backend has no
network, so it is reached through the ``faulty-local`` driver plugin
(:mod:`tests.guarantees.faulty_local`), installed as a real distribution. Either way a test
sets :class:`~tests.faultproxy.Faults`, runs clients (in-process or in worker processes, which
inherit the environment), and reads back the :class:`~tests.faultproxy.Stats`.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Final, Protocol

from tests.faultproxy import FaultProxy, Faults, Stats
from tests.guarantees.faulty_local import PROVIDER, STATE_ENV, FaultState
from tests.servers import Backend

REPO_ROOT: Final = Path(__file__).resolve().parents[2]
_ENDPOINT: Final = re.compile(r"(?<=//127\.0\.0\.1:)(\d+)")


def endpoint_port(env: Mapping[str, str]) -> int:
    """The loopback port of the server a backend's environment points at."""
    ports = {int(m) for value in env.values() for m in _ENDPOINT.findall(value)}
    if len(ports) != 1:
        raise ValueError(f"expected one http://127.0.0.1:PORT endpoint in {sorted(env)}")
    return ports.pop()


def redirected(env: Mapping[str, str], port: int) -> dict[str, str]:
    """``env`` with its loopback endpoint moved to ``port`` (a proxy, or nothing at all)."""
    return {key: _ENDPOINT.sub(str(port), value) for key, value in env.items()}


class FaultInjector(Protocol):
    """Faults between clients and one backend."""

    #: Environment that routes the clients through the injector.
    env: dict[str, str]

    def set(self, faults: Faults) -> None:
        """Inject ``faults`` from now on, with fresh counters."""

    @property
    def stats(self) -> Stats:
        """What was injected and seen since the last :meth:`set`."""


class ProxyInjector:
    """A fault proxy in front of a network backend."""

    def __init__(self, backend: Backend) -> None:
        self.proxy = FaultProxy(endpoint_port(backend.env))
        self.env = redirected(backend.env, self.proxy.port)

    def set(self, faults: Faults) -> None:
        self.proxy.stats = Stats()
        self.proxy.faults = faults

    @property
    def stats(self) -> Stats:
        return self.proxy.stats

    def close(self) -> None:
        self.proxy.close()


class LocalInjector:
    """The ``faulty-local`` driver on the local backend's folder."""

    def __init__(self, site: Path, state_dir: Path) -> None:
        state_dir.mkdir(exist_ok=True)
        self.state = FaultState(str(state_dir))
        self.set(Faults())
        python_path = [str(site), str(REPO_ROOT), os.environ.get("PYTHONPATH", "")]
        self.env = {
            "MODELKIT_STORAGE_PROVIDER": PROVIDER,
            STATE_ENV: str(state_dir),
            "PYTHONPATH": os.pathsep.join(p for p in python_path if p),
        }

    def set(self, faults: Faults) -> None:
        self.state.set_faults(faults)

    @property
    def stats(self) -> Stats:
        return self.state.stats


def install_faulty_local(site: Path) -> None:
    """Install the ``faulty-local`` plugin as a distribution in ``site`` (put it on the path)."""
    info = site / "modelkit_assets_faulty_local-0.0.1.dist-info"
    info.mkdir(parents=True, exist_ok=True)
    (info / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: modelkit-assets-faulty-local\nVersion: 0.0.1\n"
    )
    (info / "entry_points.txt").write_text(
        f"[modelkit_assets]\n{PROVIDER} = tests.guarantees.faulty_local\n"
    )
