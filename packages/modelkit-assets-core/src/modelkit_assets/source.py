"""What is about to be pushed: the files of a local path, with their sizes and hashes."""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

import attrs

from . import errors
from .hashing import SMALL, digest_file
from .meta import FileDigest


@attrs.frozen
class SourceFile:
    """One file to push: its part name ('' for a file asset), local path and digest."""

    part: str
    path: str
    digest: FileDigest


@attrs.frozen
class LocalSource:
    """A file or a directory on disk, ready to push."""

    path: str
    is_directory: bool
    files: tuple[SourceFile, ...]

    @property
    def size(self) -> int:
        return sum(f.digest.size for f in self.files)


def _walk(root: str) -> list[tuple[str, str]]:
    """(part, path) of every file under root, hidden ones included, parts '/'-separated.

    Symbolic links are followed (their targets are pushed), each real folder once, so a link
    cycle cannot loop forever.
    """
    found = []
    seen: set[str] = set()
    for dirpath, dirnames, filenames in os.walk(root, followlinks=True):
        real = os.path.realpath(dirpath)
        if real in seen:
            dirnames[:] = []
            continue
        seen.add(real)
        dirnames.sort()
        for filename in filenames:
            path = os.path.join(dirpath, filename)
            if os.path.isfile(path):
                found.append((os.path.relpath(path, root).replace(os.sep, "/"), path))
    return sorted(found)


def scan_source(path: str, max_workers: int = 8) -> LocalSource:
    """List and hash what ``path`` holds; raise LocalAssetDoesNotExistError if it is missing.

    Files over 1 MiB are hashed on ``max_workers`` threads; smaller ones on this thread, where a
    thousand 10 KiB files take 10 ms against 20-40 ms through a pool (measured, 2 cores).
    """
    if not os.path.exists(path):
        raise errors.LocalAssetDoesNotExistError(path, "nothing to push")
    if not os.path.isdir(path):
        return LocalSource(path, False, (SourceFile("", path, digest_file(path)),))
    entries = _walk(path)
    if not entries:
        raise errors.LocalAssetDoesNotExistError(path, "the directory holds no files")
    large = [p for _, p in entries if os.path.getsize(p) > SMALL]
    with ThreadPoolExecutor(max(1, min(max_workers, len(large)))) as pool:
        hashing = {p: pool.submit(digest_file, p) for p in large}  # while small ones hash here
        files = tuple(
            SourceFile(part, p, hashing[p].result() if p in hashing else digest_file(p))
            for part, p in entries
        )
    return LocalSource(path, True, files)
