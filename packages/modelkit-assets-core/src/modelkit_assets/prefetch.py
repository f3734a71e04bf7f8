"""Fetch many assets in parallel: for building read-only images run in pre-downloaded mode."""

from __future__ import annotations

import time
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import attrs

from . import errors
from .manager import AssetsManager


@attrs.frozen
class PrefetchResult:
    """The outcome of one spec: its fetch info, or the error that stopped it."""

    spec: str
    seconds: float
    info: dict[str, Any] | None = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


def read_spec_file(path: str) -> list[str]:
    """Specs from a file, one per line; blank lines and ``#`` comments are skipped."""
    with open(path, encoding="utf-8") as f:
        lines = (line.split("#", 1)[0].strip() for line in f)
        return [line for line in lines if line]


def prefetch(
    manager: AssetsManager, specs: Iterable[str], max_workers: int = 4
) -> list[PrefetchResult]:
    """Fetch every spec, several at a time; one failure does not stop the others."""

    def fetch(spec: str) -> PrefetchResult:
        start = time.monotonic()
        try:
            info = manager.fetch_asset(spec, return_info=True)
        except errors.ModelkitAssetsError as exc:
            return PrefetchResult(spec, time.monotonic() - start, error=str(exc))
        return PrefetchResult(spec, time.monotonic() - start, info=info)

    specs = list(dict.fromkeys(specs))  # once each, in the order given
    with ThreadPoolExecutor(max(1, min(max_workers, len(specs)))) as pool:
        return list(pool.map(fetch, specs))
