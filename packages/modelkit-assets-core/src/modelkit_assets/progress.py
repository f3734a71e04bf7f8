"""The progress interface transfers report to; the CLI draws it, the API ignores it by default."""

from __future__ import annotations

from typing import Protocol


class TransferProgress(Protocol):
    """Receives the totals of a transfer, then its advances (from several threads)."""

    def start(self, description: str, total_bytes: int, total_files: int) -> None: ...

    def advance(self, nbytes: int = 0, files: int = 0) -> None: ...

    def finish(self) -> None: ...


class NoProgress:
    """Reports nowhere."""

    def start(self, description: str, total_bytes: int, total_files: int) -> None:
        pass

    def advance(self, nbytes: int = 0, files: int = 0) -> None:
        pass

    def finish(self) -> None:
        pass


NO_PROGRESS = NoProgress()
