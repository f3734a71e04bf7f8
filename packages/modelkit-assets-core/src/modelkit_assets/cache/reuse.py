"""Reuse across versions: a file the cache already holds is cloned, not downloaded again.

A file of a version being downloaded whose size and digest match a file of a complete cached
version (any asset, any version, in any of the assets folders, read-only ones included) is
cloned from it: a reflink (``FICLONE``) where the filesystem shares blocks copy-on-write (btrfs,
XFS), else a copy. Never a hard link: editing one version's file must not change another's.
The copy is hashed on the way and checked against the digest wanted, so a cached file edited
by hand is not propagated: it fails the check, and the file is downloaded instead.

Matching files are found through the records of the cached versions (:mod:`.records`), which
hold every file's size and digest as it was checked when it was downloaded.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable
from typing import Final

from .. import errors
from ..hashing import copy_file_with_digest, digest_file
from ..meta import FileDigest
from .layout import AssetsCache, complete_in
from .records import iter_record_paths, read_files

#: ``ioctl`` request of a reflink on Linux (``_IOW(0x94, 9, int)``).
FICLONE: Final = 0x40049409
#: Sources kept per digest: the next is tried when one fails its check.
_CANDIDATES: Final = 3

Key = tuple[int, str, str]


def _key(digest: FileDigest) -> Key:
    return (digest.size, digest.algorithm, digest.hexdigest)


class ReuseIndex:
    """Paths of complete cached files with the digests wanted, read from the records once, on
    the first lookup; ``first`` (an asset name) is searched before the others, since an
    asset's earlier versions are the likeliest to share files with a new one."""

    def __init__(self, cache: AssetsCache, wanted: Iterable[FileDigest], first: str) -> None:
        self._cache = cache
        self._wanted = {_key(d) for d in wanted}
        self._first = first
        self._found: dict[Key, list[str]] | None = None

    def candidates(self, digest: FileDigest) -> list[str]:
        if self._found is None:
            self._found = self._build()
        return self._found.get(_key(digest), [])

    def _build(self) -> dict[Key, list[str]]:
        found: dict[Key, list[str]] = {}
        if not self._wanted:
            return found
        for root in self._cache.tiers:
            records = sorted(iter_record_paths(root), key=lambda r: r[0] != self._first)
            for name, version, path in records:
                self._add(found, root, name, version, path)
                if len(found) == len(self._wanted):
                    return found
        return found

    def _add(
        self, found: dict[Key, list[str]], root: str, name: str, version: str, path: str
    ) -> None:
        try:
            folder = self._cache.asset_folder(name, root)
        except errors.ModelkitAssetsError:  # a record with a name no asset can have
            return
        base = complete_in(folder, version)
        if base is None:
            return
        files = read_files(path)
        if files is None:
            return
        for part, digest in files.items():
            key = _key(digest)
            if key in self._wanted and len(found.setdefault(key, [])) < _CANDIDATES:
                found[key].append(os.path.join(base, *part.split("/")) if part else base)


def clone_verified(source: str, destination: str, expected: FileDigest) -> bool:
    """Make ``destination`` a copy of ``source`` (a reflink where the filesystem can) and check
    it against ``expected``; False, and nothing left at ``destination``, if it does not match
    or cannot be made."""
    try:
        with open(source, "rb", buffering=0) as src:
            if os.fstat(src.fileno()).st_size != expected.size:
                return False
            with open(destination, "wb") as dst:
                if reflink(src.fileno(), dst.fileno()):
                    dst.close()
                    digest = digest_file(destination, expected.algorithm)
                else:
                    digest = copy_file_with_digest(src, dst, expected.algorithm)
    except OSError:
        digest = None
    if digest == expected:
        return True
    with contextlib.suppress(FileNotFoundError):
        os.unlink(destination)
    return False


_no_reflink: set[tuple[int, int]] = set()


def reflink(source_fd: int, destination_fd: int) -> bool:
    """Share ``source_fd``'s blocks with the empty file ``destination_fd``, copy-on-write;
    False where the filesystem cannot (then remembered for that pair of devices)."""
    devices = (os.fstat(source_fd).st_dev, os.fstat(destination_fd).st_dev)
    if devices in _no_reflink:
        return False
    try:
        import fcntl

        fcntl.ioctl(destination_fd, FICLONE, source_fd)
    except (ImportError, OSError):
        _no_reflink.add(devices)
        return False
    return True
