"""Hash bytes on their way to disk, so that a download is checked without reading it again."""

from __future__ import annotations

import hashlib
from concurrent.futures import Future, ThreadPoolExecutor
from typing import BinaryIO, Final

from .meta import FileDigest

CHUNK: Final = 1024 * 1024


def copy_with_digest(source: BinaryIO, destination: BinaryIO, size_hint: int = 0) -> FileDigest:
    """Copy ``source`` to ``destination``; the size and sha256 of the bytes copied.

    Past one chunk (``size_hint``), a helper thread hashes while this one reads and writes:
    hashlib, reads and writes all release the GIL, so the copy costs about the time of the
    hash alone. At most two chunks are in memory.
    """
    digest = hashlib.sha256()
    size = 0
    if size_hint <= CHUNK:
        while chunk := source.read(CHUNK):
            digest.update(chunk)
            destination.write(chunk)
            size += len(chunk)
        return FileDigest(size, digest.hexdigest())
    with ThreadPoolExecutor(1, "modelkit-assets-hash") as hasher:
        hashed: Future[None] | None = None
        while chunk := source.read(CHUNK):
            if hashed is not None:
                hashed.result()  # in order, and no more than one chunk ahead
            hashed = hasher.submit(digest.update, chunk)
            destination.write(chunk)
            size += len(chunk)
        if hashed is not None:
            hashed.result()
    return FileDigest(size, digest.hexdigest())
