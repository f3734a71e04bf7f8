"""What is about to be pushed: the files of a local path, with their sizes and hashes."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Final

import attrs

from . import errors
from .meta import DEFAULT_ALGORITHM, FileDigest

if TYPE_CHECKING:
    from .drivers.base import StagedFile

    #: ``stage_file(path, algorithm)``: a staged copy, or None if the driver cannot stage.
    Stager = Callable[[str, str], StagedFile | None]


@attrs.frozen
class SourceFile:
    """One file to push: its part name ('' for a file asset), local path and digest."""

    part: str
    path: str
    digest: FileDigest


@attrs.frozen
class LocalSource:
    """A file or a directory on disk, ready to push; some files may be staged in the store
    already (by part), hashed as they were copied there."""

    path: str
    is_directory: bool
    files: tuple[SourceFile, ...]
    staged: Mapping[str, StagedFile] = attrs.field(factory=dict, eq=False, repr=False)

    def discard_staged(self) -> None:
        """Drop what staged copies are left (committed ones are objects now: they stay)."""
        for handle in self.staged.values():
            handle.discard()

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


#: Files from this size are staged when the store can stage (see :func:`scan_source`).
STAGE_MIN: Final = 8 * 1024 * 1024


def scan_source(path: str, max_workers: int = 8, stage: Stager | None = None) -> LocalSource:
    """List and hash what ``path`` holds; raise LocalAssetDoesNotExistError if it is missing.

    Files over 1 MiB are hashed on ``max_workers`` threads; smaller ones on this thread, where a
    thousand 10 KiB files take 10 ms against 20-40 ms through a pool (measured, 2 cores). With
    ``stage`` (a driver's :meth:`~modelkit_assets.drivers.base.StorageDriver.stage_file`),
    files of :data:`STAGE_MIN` and more are copied into the store as they are hashed; the
    caller must :meth:`LocalSource.discard_staged` once the push is over.
    """
    from .hashing import SMALL, digest_file  # blake3 loads when something is pushed

    if not os.path.exists(path):
        raise errors.LocalAssetDoesNotExistError(path, "nothing to push")
    is_directory = os.path.isdir(path)
    if is_directory:
        entries = _walk(path)
        if not entries:
            raise errors.LocalAssetDoesNotExistError(path, "the directory holds no files")
    else:
        entries = [("", path)]
    sizes = {p: os.path.getsize(p) for _, p in entries}
    staged: dict[str, StagedFile] = {}

    def digest(part: str, file_path: str) -> FileDigest:
        if stage is not None and sizes[file_path] >= STAGE_MIN:
            handle = stage(file_path, DEFAULT_ALGORITHM)
            if handle is not None:
                staged[part] = handle
                return handle.digest
        return digest_file(file_path)

    large = [(part, p) for part, p in entries if sizes[p] > SMALL]
    try:
        with ThreadPoolExecutor(max(1, min(max_workers, len(large)))) as pool:
            hashing = {p: pool.submit(digest, part, p) for part, p in large}  # small ones: here
            files = tuple(
                SourceFile(part, p, hashing[p].result() if p in hashing else digest_file(p))
                for part, p in entries
            )
    except BaseException:
        for handle in staged.values():
            handle.discard()
        raise
    return LocalSource(path, is_directory, files, staged)
