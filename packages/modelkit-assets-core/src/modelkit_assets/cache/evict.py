"""Removing one thing from the cache, never from under a process that downloads or uses it.

Every removal takes the asset's download lock without waiting: if another process (or thread)
is downloading any version of the asset, nothing of it is removed this time. A complete version
is then removed in steps that a racing fetch cannot lose to (see :mod:`.holds`):

1. it is not removed if a live process holds it;
2. its SUCCESS marker is renamed to ``.{version}.evicting``: from now on no fetch finds it
   complete, and one that arrives waits for the lock, then downloads it again. Its bytes stay
   where they are: a fetch that found the version complete before (and so held it before) may
   be returning their path, and may open it at any moment;
3. the holds are read again: if one appeared meanwhile, the marker is put back (its holder
   checked the version after holding it, so it may be about to return it);
4. else the version is renamed to a debris name (``.tmp-``), its record and the set-aside
   marker are removed, then the debris is.

A process killed between 2 and 4 leaves ``.{version}.evicting`` beside a whole version, whose
marker the next download of the asset puts back (see :func:`.layout.clean_stale_downloads`).
"""

from __future__ import annotations

import contextlib
import os
from typing import Final

from .holds import live_holds
from .inventory import DEBRIS, INCOMPLETE, PARTIAL_DOWNLOAD, VERSION, Entry
from .layout import EVICTING, SUCCESS, AssetsCache, complete_in, remove, set_aside
from .partial import PARTIALS
from .records import remove_record

#: Why a removal did not happen.
HELD: Final = "held"
BUSY: Final = "busy"
GONE: Final = "gone"


def remove_entry(cache: AssetsCache, entry: Entry, *, ignore_holds: bool = False) -> str | None:
    """Remove ``entry`` (of the written folder); None once removed, else why it stayed:
    :data:`HELD` (a live process holds the version), :data:`BUSY` (the asset is being
    downloaded), :data:`GONE` (no longer there)."""
    assert not entry.read_only, "read-only folders are never written"
    with cache.try_lock(entry.name) as free:
        if not free:
            return BUSY
        if entry.kind == VERSION:
            return _evict_version(cache, entry, ignore_holds)
        if entry.kind == PARTIAL_DOWNLOAD:
            remove(entry.path)
            with contextlib.suppress(FileNotFoundError):
                os.unlink(cache.internal_path(PARTIALS, entry.name, entry.version, ".log"))
            return None
        if entry.kind == DEBRIS:
            if entry.path.endswith(EVICTING):  # the marker of a version a dead eviction began
                _drop_version(cache, entry.name, entry.version, entry.path)
            elif entry.detail == INCOMPLETE:  # under its final name: complete by now?
                if complete_in(cache.asset_folder(entry.name), entry.version) is not None:
                    return GONE
                remove(entry.path)
            else:
                remove(entry.path)
            return None
    raise ValueError(f"unknown kind of cache entry {entry.kind!r}")


def _evict_version(cache: AssetsCache, entry: Entry, ignore_holds: bool) -> str | None:
    if not ignore_holds and entry.key in live_holds(cache.cache_dir):
        return HELD
    folder = cache.asset_folder(entry.name)
    marker = _marker_of(folder, entry.version)
    aside = os.path.join(folder, f".{entry.version}{EVICTING}")
    try:
        os.replace(marker, aside)
    except FileNotFoundError:
        return GONE
    if not ignore_holds and entry.key in live_holds(cache.cache_dir):
        os.replace(aside, marker)
        return HELD
    _drop_version(cache, entry.name, entry.version, aside)
    return None


def _marker_of(folder: str, version: str) -> str:
    """The SUCCESS marker of ``version`` in the asset folder ``folder`` (inside a directory
    version, beside a file version)."""
    path = os.path.join(folder, version)
    return (
        os.path.join(path, SUCCESS)
        if os.path.isdir(path)
        else os.path.join(folder, f".{version}{SUCCESS}")
    )


def _drop_version(cache: AssetsCache, name: str, version: str, aside: str) -> None:
    """Delete ``version``, whose marker was set aside at ``aside``: its bytes become debris
    first, so that nothing half-deleted ever looks whole, then the record and the marker go."""
    folder = cache.asset_folder(name)
    debris = set_aside(os.path.join(folder, version))
    with contextlib.suppress(FileNotFoundError):
        os.unlink(os.path.join(folder, f".{version}{SUCCESS}"))
    remove_record(cache.assets_dir, name, version)
    with contextlib.suppress(FileNotFoundError):
        os.unlink(aside)
    if debris is not None:
        remove(debris)


def remove_orphans(cache: AssetsCache, versions: set[tuple[str, str]]) -> int:
    """Remove records and partial logs of versions that are neither complete nor partial in
    the written folder (``versions`` lists those that are); how many were removed."""
    from .records import iter_record_paths

    removed = 0
    for name, version, path in iter_record_paths(cache.assets_dir):
        if (name, version) not in versions and not os.path.lexists(
            cache.partial_path(name, version)
        ):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)
                removed += 1
    logs = os.path.join(cache.cache_dir, PARTIALS)
    with contextlib.suppress(OSError):
        for entry in os.scandir(logs):
            name_version = _unkey(entry.name)
            if name_version is None:
                continue
            name, version = name_version
            with contextlib.suppress(Exception), cache.try_lock(name) as free:
                if free and not os.path.lexists(cache.partial_path(name, version)):
                    os.unlink(entry.path)
                    removed += 1
    return removed


def _unkey(filename: str) -> tuple[str, str] | None:
    from urllib.parse import unquote

    if not filename.endswith(".log"):
        return None
    name, _, version = unquote(filename[: -len(".log")]).partition(":")
    return (name, version) if name and version else None
