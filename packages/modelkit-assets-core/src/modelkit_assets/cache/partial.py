"""What an interrupted download had written, so that the next one asks only for the rest.

A version downloads into ``ASSETS_DIR/{name}/.{version}.partial`` (see :mod:`.download`), which
outlives a ``kill -9``, a lost network or a failure midway. Beside it, outside the asset's
folder so that no name of the log can be a part's, an append-only log,
``ASSETS_DIR/.cache/.partials/{name:version}.log``, says which byte ranges of the large files
(those fetched in ranges) are in place. Its lines are JSON:

- first, ``{"meta": FINGERPRINT}``: which ``.meta`` the partial download belongs to (a digest
  of the ``.meta`` as read, push date and claim included). Another ``.meta`` under the same
  name and version (another store sharing the assets dir, a store made anew) starts over;
- ``[part, start, end]``: the bytes ``[start, end)`` of ``part`` were written;
- ``[part]``: forget what was logged for ``part`` (it was discarded).

A range is logged once its bytes are written, so a log never claims bytes that were not; a line
torn by a kill is skipped. The log is never trusted for content: every file is checked
against its digest before the version is published, and a mismatch discards the file.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import threading
from typing import Final

from ..meta import AssetMeta

PARTIALS: Final = ".partials"
_FLAGS: Final = os.O_WRONLY | os.O_CREAT | os.O_APPEND | getattr(os, "O_CLOEXEC", 0)


def fingerprint(meta: AssetMeta) -> str:
    """What identifies the ``.meta`` a partial download belongs to."""
    return hashlib.sha256(meta.to_json()).hexdigest()[:32]


class PartialLog:
    """The log of one version's partial download, open for appending."""

    def __init__(self, path: str | None, meta: AssetMeta) -> None:
        """Open the log at ``path`` for ``meta``; :attr:`resumed` says whether it was this
        meta's (else it is started anew, and the partial download must be too). With no
        ``path`` the log is kept in memory only: a download that is not resumable across
        processes still resumes its ranges across the retries of one call."""
        self.path = path
        self._fingerprint = fingerprint(meta)
        self._ranges: dict[str, list[tuple[int, int]]] = {}
        self._lock = threading.Lock()
        self._fd: int | None = None
        self.resumed = self._load() if path is not None else False
        if path is None:
            return
        os.makedirs(os.path.dirname(path), exist_ok=True)
        if not self.resumed:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)
        self._fd = os.open(path, _FLAGS, 0o644)
        if not self.resumed:
            self._append({"meta": self._fingerprint})

    def _load(self) -> bool:
        assert self.path is not None
        try:
            with open(self.path, "rb") as f:
                lines = f.read().splitlines()
        except OSError:
            return False
        if not lines or _load_line(lines[0]) != {"meta": self._fingerprint}:
            return False
        for line in lines[1:]:
            entry = _load_line(line)
            if not isinstance(entry, list) or not entry or not isinstance(entry[0], str):
                continue
            if len(entry) == 1:
                self._ranges.pop(entry[0], None)
            elif len(entry) == 3 and all(isinstance(n, int) for n in entry[1:]):
                self._ranges.setdefault(entry[0], []).append((entry[1], entry[2]))
        return True

    def ranges(self, part: str) -> list[tuple[int, int]]:
        """The ranges of ``part`` logged as written."""
        with self._lock:
            return list(self._ranges.get(part, ()))

    def written(self, part: str, start: int, end: int) -> None:
        """Log that ``[start, end)`` of ``part`` is in the file (thread-safe)."""
        with self._lock:
            self._ranges.setdefault(part, []).append((start, end))
        self._append([part, start, end])

    def forget(self, part: str) -> None:
        """Log that what was written of ``part`` is discarded."""
        with self._lock:
            had = self._ranges.pop(part, None)
        if had:
            self._append([part])

    def _append(self, entry: object) -> None:
        # One write of one line (O_APPEND): appends from several threads never interleave.
        if self._fd is not None:
            os.write(self._fd, json.dumps(entry, separators=(",", ":")).encode() + b"\n")

    def close(self) -> None:
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.close(self._fd)
            self._fd = None

    def remove(self) -> None:
        self.close()
        if self.path is not None:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.path)


def _load_line(line: bytes) -> object:
    try:
        return json.loads(line)
    except ValueError:
        return None
