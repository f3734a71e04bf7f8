"""Create-only upload of a large file in blocks, which goes on from the blocks an interrupted
upload of the same bytes left uncommitted.

A block blob is made of staged blocks, invisible until a block list commits them; the commit
is create-only (``If-None-Match: *``). Blocks staged but never committed (the push was killed)
stay with the blob name, uncommitted, for a week. Each block's id here says what it holds:

    mka1 + offset (12 hex digits) + length (8) + the first 24 hex digits of its bytes' BLAKE3

48 characters, the length of the ids the SDK's own uploads use (all block ids of a blob must
have one length, stale ones included). A retry reads each block's bytes from the file, makes
its id, and stages only the blocks whose id is not among the uncommitted ones: a block is kept
only if the local bytes at its offset hash to it, so a file changed since is never committed
with stale blocks. The commit lists the blocks of the file in order; the service discards
every other uncommitted block then.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Final

import blake3
from azure.core import MatchConditions
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError
from azure.storage.blob import BlobClient

_PREFIX: Final = "mka1"
_DIGEST_HEX: Final = 24
#: Largest offset and block length the id can say (16 TiB files, 4 GiB blocks).
MAX_OFFSET: Final = 16**12 - 1
MAX_BLOCK: Final = 16**8 - 1


def block_id(offset: int, data: bytes) -> str:
    """The id of the block holding ``data`` at ``offset`` of the file (before the base64
    encoding the SDK applies)."""
    digest = blake3.blake3(data).hexdigest()[:_DIGEST_HEX]
    return f"{_PREFIX}{offset:012x}{len(data):08x}{digest}"


def layout(size: int, block_size: int) -> list[tuple[int, int]]:
    """``(offset, length)`` of each block of a file of ``size`` bytes."""
    return [(offset, min(block_size, size - offset)) for offset in range(0, size, block_size)]


class BlobExistsError(Exception):
    """The blob is committed already: a create-only upload would only be refused."""


def uncommitted_ids(blob: BlobClient) -> set[str]:
    """Ids of the blocks staged for ``blob`` and not committed (none if it has none);
    BlobExistsError if it has committed blocks (a retried push whose file is there already
    sends nothing)."""
    try:
        committed, uncommitted = blob.get_block_list("all")
    except ResourceNotFoundError:
        return set()
    except HttpResponseError:
        return set()  # not allowed to read it (a write-only SAS), or a fault: upload it all
    if committed:
        raise BlobExistsError(blob.blob_name)
    return {str(block.id) for block in uncommitted}


def upload_blocks(
    blob: BlobClient,
    file_path: str,
    size: int,
    block_size: int,
    workers: int,
    on_bytes: Callable[[int], None] | None,
) -> int:
    """Create ``blob`` from the file, create-only (the service answers 409 if it exists),
    staging only the blocks it does not hold already; the bytes kept from earlier stagings."""
    if size > MAX_OFFSET or block_size > MAX_BLOCK:
        raise ValueError(f"a file of {size} bytes in blocks of {block_size} is too large")
    held = uncommitted_ids(blob)
    blocks = layout(size, block_size)
    lock = threading.Lock()
    kept = 0

    def stage(block: tuple[int, int]) -> str:
        nonlocal kept
        offset, length = block
        with open(file_path, "rb") as f:
            f.seek(offset)
            data = f.read(length)
        if len(data) != length:
            raise OSError(f"{file_path} changed size during the upload")
        identity = block_id(offset, data)
        if identity in held:
            with lock:
                kept += length
        else:
            blob.stage_block(identity, data, length=length)
        if on_bytes:
            on_bytes(length)
        return identity

    with ThreadPoolExecutor(max(1, workers), "modelkit-az-block") as pool:
        ids = list(pool.map(stage, blocks))
    blob.commit_block_list(ids, match_condition=MatchConditions.IfMissing)  # type: ignore[arg-type]
    return kept
