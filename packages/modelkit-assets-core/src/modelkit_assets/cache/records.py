"""The record of each downloaded version: what it is, as it was downloaded and checked.

``ASSETS_DIR/.cache/.records/{name:version}.json``, written by every download just before the
version is published, holds three JSON lines, so that a reader takes only what it needs:

1. a summary: ``name``, ``version``, ``is_directory``, ``size`` (bytes), ``files`` (count),
   ``downloaded`` (when), ``uri`` (where from);
2. every file's size and digest, as checked on the way in: the ``.meta``'s, or for a ``.meta``
   written by modelkit (which records none) the digest of the bytes received;
3. the ``.meta`` as downloaded.

``cache verify`` checks files against line 2, reuse across versions looks files up by it, and
evictions size versions by line 1. When a version was last used is not here: it is the
modification time of its SUCCESS marker (see :meth:`.layout.AssetsCache.touch`), which costs
no write. A version without a record was cached before records existed, or by modelkit.
"""

from __future__ import annotations

import contextlib
import datetime
import json
import os
import uuid
from collections.abc import Iterator, Mapping
from typing import Any, Final
from urllib.parse import unquote

import attrs

from ..meta import AssetMeta, FileDigest
from .layout import CACHE_DIR, AssetsCache, version_key

RECORDS: Final = ".records"
_SUFFIX: Final = ".json"


@attrs.frozen
class VersionRecord:
    """What the cache knows of one version it downloaded."""

    name: str
    version: str
    is_directory: bool
    size: int
    file_count: int
    downloaded: str
    uri: str | None
    #: Size and digest per part ("" for a file asset); empty when only the summary was read.
    files: Mapping[str, FileDigest] = attrs.field(factory=dict)
    meta: Mapping[str, Any] | None = None


def records_dir(root: str) -> str:
    """The records folder of the assets dir ``root``."""
    return os.path.join(root, CACHE_DIR, RECORDS)


def record_path(root: str, name: str, version: str) -> str:
    return os.path.join(records_dir(root), version_key(name, version) + _SUFFIX)


def write_record(
    cache: AssetsCache,
    name: str,
    version: str,
    meta: AssetMeta,
    files: Mapping[str, FileDigest],
    uri: str | None,
) -> None:
    """Write the record of ``name:version`` (replacing any), atomically."""
    summary = {
        "name": name,
        "version": version,
        "is_directory": meta.is_directory,
        "size": sum(d.size for d in files.values()),
        "files": len(files),
        "downloaded": datetime.datetime.now(datetime.timezone.utc).isoformat(),
        "uri": uri,
    }
    lines = [summary, {part: d.to_dict() for part, d in files.items()}, meta.to_dict()]
    data = b"".join(json.dumps(line, sort_keys=True).encode() + b"\n" for line in lines)
    path = record_path(cache.assets_dir, name, version)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = f"{path}.{uuid.uuid4().hex[:8]}.tmp"
    try:
        with open(tmp, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


def read_record(path: str, full: bool = True) -> VersionRecord | None:
    """The record at ``path`` (only its summary unless ``full``), or None if it is missing or
    cannot be read."""
    try:
        with open(path, "rb") as f:
            summary = json.loads(f.readline())
            files = json.loads(f.readline()) if full else {}
            meta = json.loads(f.readline()) if full else None
        return VersionRecord(
            name=summary["name"],
            version=summary["version"],
            is_directory=bool(summary["is_directory"]),
            size=int(summary["size"]),
            file_count=int(summary["files"]),
            downloaded=str(summary["downloaded"]),
            uri=summary.get("uri"),
            files={part: _digest(value) for part, value in files.items()},
            meta=meta,
        )
    except (OSError, ValueError, KeyError, TypeError, AttributeError, StopIteration):
        return None


def read_files(path: str) -> dict[str, FileDigest] | None:
    """Only the files of the record at ``path`` (its second line: the ``.meta`` after it is
    not even parsed), or None if it cannot be read. Reuse reads every record this way."""
    try:
        with open(path, "rb") as f:
            f.readline()
            files = json.loads(f.readline())
        return {part: _digest(value) for part, value in files.items()}
    except (OSError, ValueError, KeyError, TypeError, AttributeError, StopIteration):
        return None


def _digest(value: Mapping[str, Any]) -> FileDigest:
    algorithm = next(key for key in value if key != "size")
    return FileDigest(int(value["size"]), str(value[algorithm]), algorithm)


def iter_record_paths(root: str) -> Iterator[tuple[str, str, str]]:
    """``(name, version, path)`` of every record in the assets dir ``root``."""
    try:
        entries = list(os.scandir(records_dir(root)))
    except OSError:
        return
    for entry in entries:
        if not entry.name.endswith(_SUFFIX):
            continue
        name, _, version = unquote(entry.name[: -len(_SUFFIX)]).partition(":")
        if name and version:
            yield name, version, entry.path


def remove_record(root: str, name: str, version: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(record_path(root, name, version))
