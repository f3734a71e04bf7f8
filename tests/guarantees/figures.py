"""Figures the guarantee tests record, reported at the end of the run (see reporting.py)."""

from __future__ import annotations

from typing import Any, Final

from tests.servers import Backend

#: Figures recorded by the test running in this process and not yet attached to its report.
PENDING: list[dict[str, Any]] = []

#: Figures summed over every backend in the terminal summary, with their labels.
TOTALS: Final = {
    "updates": "updates run",
    "versions_lost": "versions lost",
    "duplicates": "versions reported twice",
    "kills": "kills -9 tried",
    "partial_results": "partial results served",
    "faults_injected": "faults injected",
    "faults_survived": "faults survived",
}


def record(guarantee: str, backend: Backend, **figures: Any) -> None:
    """Keep ``figures`` of one test on one backend for the end-of-run summary."""
    PENDING.append({"guarantee": guarantee, "backend": backend.id, **figures})
