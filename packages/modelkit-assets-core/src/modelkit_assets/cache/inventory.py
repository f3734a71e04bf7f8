"""What the assets folders hold: complete versions, partial downloads, debris.

A folder is scanned from its root: a directory with a ``.SUCCESS`` inside is a complete directory
version (not descended into), a file with its ``.{version}.SUCCESS`` beside it a complete file
version; ``.{version}.partial`` is a partial download, and names with ``.tmp-`` or ``.evicting``
are debris of dead processes. Other folders are names (or name segments) and are descended
into; files that are none of these (a user's own, looked up as local paths) are never
listed, so never removed. ``.cache/`` is the cache's own.
"""

from __future__ import annotations

import contextlib
import datetime
import fnmatch
import os
from collections.abc import Iterable, Iterator, Sequence
from typing import Any, Final

import attrs

from .. import errors
from ..background import tree_size
from ..spec import check_name
from ..versioning.base import AssetsVersioningSystem
from .layout import CACHE_DIR, EVICTING, PARTIAL, SUCCESS, TMP, AssetsCache
from .partial import PARTIALS
from .records import VersionRecord, iter_record_paths, read_record, record_path

#: Kinds of :class:`Entry`.
VERSION: Final = "version"
PARTIAL_DOWNLOAD: Final = "partial"
DEBRIS: Final = "debris"
#: :attr:`Entry.detail` of a version under its final name without its SUCCESS marker: a
#: download that died there (modelkit downloads in place), never served, fetched again.
INCOMPLETE: Final = "incomplete version (no SUCCESS marker)"


@attrs.frozen
class Entry:
    """One thing in an assets folder."""

    kind: str
    name: str
    #: The version (of a debris entry: the name it was made from).
    version: str
    path: str
    #: The assets folder it is in, and whether that one is read-only (not the first).
    root: str
    read_only: bool
    size: int
    #: When it was last used (a partial download: last written), seconds since the epoch.
    last_used: float
    is_directory: bool = False
    #: Its record (summary only), None for versions cached before records or by modelkit.
    record: VersionRecord | None = None
    #: What a debris entry is, when it is not a dead process's temporary (:data:`INCOMPLETE`).
    detail: str = ""

    @property
    def spec(self) -> str:
        return f"{self.name}:{self.version}"

    @property
    def key(self) -> tuple[str, str]:
        return (self.name, self.version)

    @property
    def state(self) -> str:
        """What it is, in a few words (``cache list``'s state column)."""
        if self.kind == PARTIAL_DOWNLOAD:
            return "partial download (resumable)"
        if self.kind == DEBRIS:
            return self.detail or "debris of a dead process"
        state = "complete" if self.record is not None else "complete, no record"
        return f"{state}, read-only" if self.read_only else state

    def to_dict(self, holders: Iterable[int] = ()) -> dict[str, Any]:
        """``cache list --json``'s view of the entry; ``holders``: pids that hold it."""
        return {
            "name": self.name,
            "version": self.version,
            "kind": self.kind,
            "state": self.state,
            "path": self.path,
            "bytes": self.size,
            "files": self.record.file_count if self.record is not None else None,
            "last_used": _iso(self.last_used),
            "read_only": self.read_only,
            "recorded": self.record is not None,
            "downloaded": self.record.downloaded if self.record is not None else None,
            "held_by": sorted(holders),
        }


def _iso(timestamp: float) -> str | None:
    if not timestamp:
        return None
    return datetime.datetime.fromtimestamp(timestamp, datetime.timezone.utc).isoformat()


def scan(cache: AssetsCache, roots: Iterable[str] | None = None) -> list[Entry]:
    """Everything in ``roots`` (default: every folder of the cache), by name and version."""
    entries: list[Entry] = []
    for root in cache.tiers if roots is None else roots:
        records = {(n, v): p for n, v, p in iter_record_paths(root)}
        read_only = root != cache.assets_dir
        entries.extend(_scan_folder(cache, root, root, "", records, read_only))
    return sorted(entries, key=lambda e: (e.name, e.version, e.kind, e.root))


def _scan_folder(
    cache: AssetsCache,
    root: str,
    folder: str,
    name: str,
    records: dict[tuple[str, str], str],
    read_only: bool,
) -> Iterator[Entry]:
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return
    present = {e.name for e in entries}
    found: list[Entry] = []
    later: list[os.DirEntry[str]] = []
    for entry in entries:
        if entry.name.startswith("."):
            if name:
                dot = _dot_entry(cache, root, folder, name, entry, present, records, read_only)
                if dot is not None:
                    found.append(dot)
            continue
        marker = os.path.join(entry.path, SUCCESS)
        if name and _is_dir(entry) and os.path.isfile(marker):
            record = _record(records, name, entry.name)
            found.append(
                _version(root, name, entry.name, entry.path, marker, True, record, read_only)
            )
        elif f".{entry.name}{SUCCESS}" not in present:
            later.append(entry)
    yield from found
    holds_versions = bool(found)  # the folder of an asset: its other names may be versions
    for entry in later:
        if holds_versions and _is_version(entry.name) and not _asset_folder(entry):
            yield _incomplete(root, name, entry, read_only)
        elif (
            _is_dir(entry)
            and _is_name_segment(entry.name)
            and not (folder == root and entry.name == CACHE_DIR)
        ):
            yield from _scan_folder(
                cache,
                root,
                entry.path,
                f"{name}/{entry.name}" if name else entry.name,
                records,
                read_only,
            )


def _dot_entry(
    cache: AssetsCache,
    root: str,
    folder: str,
    name: str,
    entry: os.DirEntry[str],
    present: set[str],
    records: dict[tuple[str, str], str],
    read_only: bool,
) -> Entry | None:
    """A file version (its marker), a partial download or debris, from a dot-name."""
    text = entry.name[1:]
    if text.endswith(SUCCESS) and text[: -len(SUCCESS)] in present:
        version = text[: -len(SUCCESS)]
        path = os.path.join(folder, version)
        if os.path.isfile(path) and not os.path.islink(path):
            record = _record(records, name, version)
            return _version(root, name, version, path, entry.path, False, record, read_only)
        return None
    if text.endswith(PARTIAL):
        version = text[: -len(PARTIAL)]
        log = cache.internal_path(PARTIALS, name, version, ".log") if not read_only else ""
        size = _allocated(entry.path) + _allocated(log)
        used = max(_mtime(entry.path), _mtime(log))
        return Entry(
            PARTIAL_DOWNLOAD, name, version, entry.path, root, read_only, size, used, _is_dir(entry)
        )
    if TMP in text or text.endswith(EVICTING):
        version = text.split(TMP, 1)[0].removesuffix(EVICTING)
        size = tree_size([entry.path])[0]
        return Entry(
            DEBRIS,
            name,
            version,
            entry.path,
            root,
            read_only,
            size,
            _mtime(entry.path),
            _is_dir(entry),
        )
    return None


def _is_version(text: str) -> bool:
    """Whether ``text`` is a complete version in one of the installed versioning systems."""
    from ..spec import installed_systems

    return any(
        s.is_version_valid(text) and s.is_version_complete(text) for s in installed_systems()
    )


def _asset_folder(entry: os.DirEntry[str]) -> bool:
    """Whether ``entry`` is itself an asset's folder of versions (an asset named like a
    version, ``cat/1.0``, beside the versions of ``cat``): it holds SUCCESS markers."""
    if not _is_dir(entry):
        return False
    try:
        inner = list(os.scandir(entry.path))
    except OSError:
        return False
    return any(
        (e.name.startswith(".") and e.name.endswith((SUCCESS, PARTIAL)) and e.name != SUCCESS)
        or (_is_dir(e) and os.path.isfile(os.path.join(e.path, SUCCESS)))
        for e in inner
    )


def _incomplete(root: str, name: str, entry: os.DirEntry[str], read_only: bool) -> Entry:
    size = tree_size([entry.path])[0]
    return Entry(
        DEBRIS,
        name,
        entry.name,
        entry.path,
        root,
        read_only,
        size,
        _mtime(entry.path),
        _is_dir(entry),
        detail=INCOMPLETE,
    )


def _version(
    root: str,
    name: str,
    version: str,
    path: str,
    marker: str,
    is_directory: bool,
    record: VersionRecord | None,
    read_only: bool,
) -> Entry:
    size = record.size if record is not None else tree_size([path])[0]
    return Entry(
        VERSION, name, version, path, root, read_only, size, _mtime(marker), is_directory, record
    )


def _record(records: dict[tuple[str, str], str], name: str, version: str) -> VersionRecord | None:
    path = records.get((name, version))
    return read_record(path, full=False) if path is not None else None


def _is_dir(entry: os.DirEntry[str]) -> bool:
    try:
        return entry.is_dir(follow_symlinks=False)
    except OSError:
        return False


def _is_name_segment(segment: str) -> bool:
    try:
        check_name(segment)
    except errors.InvalidNameError:
        return False
    return True


def _mtime(path: str) -> float:
    try:
        return os.stat(path).st_mtime if path else 0.0
    except OSError:
        return 0.0


def _allocated(path: str) -> int:
    """Bytes on disk under ``path``: a file being filled in ranges is as large as the object
    from its first write, but only its written blocks take room."""
    if not path:
        return 0
    files = [path]
    if os.path.isdir(path):
        files = [os.path.join(d, f) for d, _, names in os.walk(path) for f in names]
    total = 0
    for file in files:
        with contextlib.suppress(OSError):
            stat = os.stat(file)
            total += min(stat.st_size, getattr(stat, "st_blocks", 0) * 512 or stat.st_size)
    return total


def matching(
    entries: Iterable[Entry],
    specs: Iterable[str],
    systems: Sequence[AssetsVersioningSystem] = (),
) -> list[Entry]:
    """The entries that ``specs`` designate (all of them without specs): ``name`` (a glob
    such as ``team/*`` too) for every version, ``name:version``, or ``name:1`` for every
    version that the partial version designates in one of the versioning ``systems``."""
    specs = list(specs)
    wanted = [_parse(spec) for spec in specs]
    if not wanted:
        return list(entries)
    for spec, (_, version) in zip(specs, wanted, strict=True):
        if (
            version is not None
            and systems
            and not any(s.is_version_valid(version) for s in systems)
        ):  # a typo would match nothing, and say so as if the cache were empty
            raise errors.InvalidAssetSpecError(
                spec, f"{version!r} is a version of no installed versioning system"
            )
    return [e for e in entries if any(_matches(e, n, v, systems) for n, v in wanted)]


def _parse(spec: str) -> tuple[str, str | None]:
    name, _, version = spec.partition(":")
    if not name or "[" in spec or (":" in spec and not version):
        raise errors.InvalidAssetSpecError(spec, "give NAME, NAME:VERSION or a glob of names")
    return name, version or None


def _matches(
    entry: Entry, name: str, version: str | None, systems: Sequence[AssetsVersioningSystem]
) -> bool:
    if not (entry.name == name or fnmatch.fnmatchcase(entry.name, name)):
        return False
    if version is None or version == entry.version:
        return True
    for system in systems:
        if system.is_version_valid(version) and system.is_version_valid(entry.version):
            with contextlib.suppress(errors.ModelkitAssetsError):
                if system.matches(version, entry.version):
                    return True
    return False


def complete_entry(cache: AssetsCache, name: str, version: str) -> Entry | None:
    """The complete ``name:version`` where the cache serves it from (its first folder that
    has it), or None."""
    path = cache.locate(name, version)
    if path is None:
        return None
    root = next(r for r in cache.tiers if path.startswith(os.path.join(r, "")))
    is_directory = os.path.isdir(path)
    marker = (
        os.path.join(path, SUCCESS)
        if is_directory
        else os.path.join(os.path.dirname(path), f".{version}{SUCCESS}")
    )
    record = read_record(record_path(root, name, version), full=False)
    read_only = root != cache.assets_dir
    return _version(root, name, version, path, marker, is_directory, record, read_only)
