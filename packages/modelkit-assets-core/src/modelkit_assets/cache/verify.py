"""``cache verify``: every cached file hashed again and compared with what it should be.

What a version should hold comes from its record (:mod:`.records`: the size and digest of each
file as it was checked on the way in). A version without a record (cached before records
existed, or by modelkit) is checked against its ``.meta`` in the store when a provider is
configured, and adopted (its record written) when it passes: by digest if the ``.meta`` has
digests, else by the presence of the files it lists (a ``.meta`` written by modelkit records
neither sizes nor digests). With no record and no provider there is nothing to check it against;
it is reported so.

Files are hashed on a pool of threads (BLAKE3 and hashlib release the GIL; a large file is
hashed by BLAKE3's own threads), so a verify runs at the disk's or the hash's speed. Files that
the version should not hold are reported, not counted as damage.

A plain fetch of a cached pinned version checks nothing (it must stay a few microseconds); a
file edited or deleted by hand is found here, and ``--repair`` (:func:`repair`) downloads the
version again, cloning its intact files and fetching only the damaged ones.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Final

import attrs

from .. import errors
from ..hashing import digest_file
from ..meta import AssetMeta, FileDigest
from .download import FetchResult, fetch_version
from .inventory import VERSION, Entry, complete_entry
from .layout import SUCCESS, AssetsCache, clean_stale_downloads
from .records import read_record, record_path, write_record

if TYPE_CHECKING:
    from ..store import StorageProvider

logger = logging.getLogger(__name__)

#: How a version was checked.
BY_DIGEST: Final = "digest"
BY_PRESENCE: Final = "presence"
UNCHECKED: Final = "unchecked"


@attrs.frozen
class Damage:
    """One file that is not what it should be."""

    part: str
    #: ``missing``, ``size`` (another size) or ``modified`` (same size, other bytes).
    problem: str
    detail: str = ""


@attrs.frozen
class Check:
    """The verdict on one cached version."""

    entry: Entry
    #: :data:`BY_DIGEST`, :data:`BY_PRESENCE` or :data:`UNCHECKED`, and against what.
    how: str
    source: str
    files: int = 0
    bytes: int = 0
    damaged: tuple[Damage, ...] = ()
    extra: tuple[str, ...] = ()
    repaired: bool = False
    note: str = ""

    @property
    def ok(self) -> bool:
        return not self.damaged or self.repaired


@attrs.frozen
class _Expected:
    how: str
    source: str
    #: Digest per part (BY_DIGEST), or None per part (BY_PRESENCE).
    files: Mapping[str, FileDigest | None] = attrs.field(factory=dict)
    meta: AssetMeta | None = None
    note: str = ""


def verify(
    cache: AssetsCache,
    entries: Iterable[Entry],
    provider: StorageProvider | None = None,
    workers: int | None = None,
) -> list[Check]:
    """Check each complete version of ``entries`` (see the module's docstring)."""
    versions = [e for e in entries if e.kind == VERSION]
    expected = [_expected(cache, e, provider) for e in versions]
    jobs = [
        (i, part, _part_path(e.path, part), digest)
        for i, (e, x) in enumerate(zip(versions, expected, strict=True))
        for part, digest in x.files.items()
    ]
    jobs.sort(key=lambda job: -(job[3].size if job[3] else 0))  # the largest first
    with ThreadPoolExecutor(
        workers or max(2, os.cpu_count() or 2), "modelkit-assets-verify"
    ) as pool:
        verdicts = list(pool.map(lambda job: _check_file(job[2], job[3]), jobs))
    damage: dict[int, list[Damage]] = {}
    sizes: dict[int, int] = {}
    for (i, part, _, digest), verdict in zip(jobs, verdicts, strict=True):
        if verdict is not None:
            damage.setdefault(i, []).append(attrs.evolve(verdict, part=part))
        elif digest is not None:
            sizes[i] = sizes.get(i, 0) + digest.size
    checks = []
    for i, (entry, wanted) in enumerate(zip(versions, expected, strict=True)):
        check = Check(
            entry,
            wanted.how,
            wanted.source,
            len(wanted.files),
            sizes.get(i, 0),
            tuple(sorted(damage.get(i, []), key=lambda d: d.part)),
            tuple(_extra(entry, wanted)) if wanted.how != UNCHECKED else (),
            note=wanted.note,
        )
        _adopt(cache, check, wanted)
        checks.append(check)
    return checks


def _expected(cache: AssetsCache, entry: Entry, provider: StorageProvider | None) -> _Expected:
    record = read_record(record_path(entry.root, entry.name, entry.version))
    if record is not None and record.files:
        return _Expected(BY_DIGEST, "record", dict(record.files))
    if provider is None:
        return _Expected(
            UNCHECKED, "", note="no record and no storage provider to read its .meta from"
        )
    try:
        meta = provider.read_meta(entry.name, entry.version)
    except errors.ModelkitAssetsError as exc:
        return _Expected(UNCHECKED, "", note=f"no record, and the store's .meta: {exc}")
    parts = meta.contents if meta.is_directory else ("",)
    if meta.digests:
        return _Expected(BY_DIGEST, "store", dict(meta.digests), meta)
    return _Expected(
        BY_PRESENCE,
        "store",
        dict.fromkeys(parts),
        meta,
        note="its .meta (written by modelkit) records no sizes or digests",
    )


def _part_path(base: str, part: str) -> str:
    return os.path.join(base, *part.split("/")) if part else base


def _check_file(path: str, digest: FileDigest | None) -> Damage | None:
    try:
        size = os.stat(path).st_size
    except OSError:
        return Damage("", "missing")
    if not os.path.isfile(path):
        return Damage("", "missing", "not a file")
    if digest is None:
        return None
    if size != digest.size:
        return Damage("", "size", f"{size} bytes instead of {digest.size}")
    try:
        actual = digest_file(path, digest.algorithm)
    except OSError as exc:
        return Damage("", "missing", str(exc))
    if actual != digest:
        return Damage(
            "",
            "modified",
            f"{digest.algorithm} {actual.hexdigest[:12]}... instead of {digest.hexdigest[:12]}...",
        )
    return None


def _extra(entry: Entry, wanted: _Expected) -> list[str]:
    """Files in a directory version that it should not hold."""
    if not entry.is_directory:
        return []
    found = []
    for folder, _, names in os.walk(entry.path):
        for name in names:
            part = os.path.relpath(os.path.join(folder, name), entry.path).replace(os.sep, "/")
            if part != SUCCESS and part not in wanted.files:
                found.append(part)
    return sorted(found)


def _adopt(cache: AssetsCache, check: Check, wanted: _Expected) -> None:
    """Write the record of a version without one that passed against the store's digests."""
    entry = check.entry
    if wanted.source != "store" or wanted.meta is None or wanted.how != BY_DIGEST:
        return
    if check.damaged or entry.read_only:
        return
    files = {p: d for p, d in wanted.files.items() if d is not None}
    try:
        write_record(cache, entry.name, entry.version, wanted.meta, files, None)
    except OSError as exc:
        logger.debug("cannot write the record of %s: %s", entry.spec, exc)


def repair(cache: AssetsCache, provider: StorageProvider, checks: Sequence[Check]) -> list[Check]:
    """Download again each damaged version of ``checks`` into the written folder (its intact
    files, and those other cached versions share, are cloned and checked; the others are
    fetched), then verify it again. Returns the checks, the repaired ones marked so."""
    repaired = []
    for check in checks:
        if check.ok:
            repaired.append(check)
            continue
        entry = check.entry
        result = _download_again(cache, provider, entry.name, entry.version)
        again = complete_entry(cache, entry.name, entry.version)
        after = verify(cache, [again], provider)[0] if again is not None else None
        if after is None or after.damaged:
            note = "still damaged after downloading it again"
            repaired.append(attrs.evolve(check, note=note))
            continue
        repaired.append(attrs.evolve(check, repaired=True, note=_summary(result)))
    return repaired


def _download_again(
    cache: AssetsCache, provider: StorageProvider, name: str, version: str
) -> FetchResult:
    with cache.download_lock(name):
        clean_stale_downloads(cache, name)
        return fetch_version(provider, cache, name, version, reuse=True)


def _summary(result: FetchResult) -> str:
    fetched = len(result.files) - result.reused_files - result.resumed_files
    return (
        f"downloaded again: {_files(fetched)} fetched ({result.received_bytes} bytes), "
        f"{_files(result.reused_files)} cloned from the cache"
    )


def _files(count: int) -> str:
    return f"{count} file" if count == 1 else f"{count} files"
