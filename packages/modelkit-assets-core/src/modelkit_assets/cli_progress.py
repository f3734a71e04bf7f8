"""A rich progress bar for transfers: bytes, files, rate and ETA, drawn on stderr."""

from __future__ import annotations

import threading

from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)


class RichProgress:
    """Implements :class:`modelkit_assets.progress.TransferProgress` with rich."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            DownloadColumn(),
            TextColumn("{task.fields[files]}/{task.fields[total_files]} files"),
            TransferSpeedColumn(),
            TimeRemainingColumn(),
            console=Console(stderr=True),
            transient=False,
        )
        self._task: TaskID | None = None
        self._files = 0

    def start(self, description: str, total_bytes: int, total_files: int) -> None:
        self._progress.start()
        self._files = 0
        self._task = self._progress.add_task(
            description, total=total_bytes or None, files=0, total_files=total_files
        )

    def advance(self, nbytes: int = 0, files: int = 0) -> None:
        if self._task is None:
            return
        with self._lock:
            self._files += files
            self._progress.update(self._task, advance=nbytes, files=self._files)

    def finish(self) -> None:
        self._progress.stop()
