"""Keeping the cache within bounds: ``cache prune``, ``cache rm``, ``MODELKIT_ASSETS_MAX_SIZE``.

A prune removes, from the written assets folder only:

- always, the debris of dead processes (``.tmp-`` staging, versions a dead eviction set aside),
  dead processes' hold files, and records or logs of versions that are no longer there;
- with ``older_than``, complete versions and partial downloads unused (partials: unwritten)
  for that long;
- with ``max_size``, the least recently used complete versions and partial downloads until the
  folder fits.

Partial downloads are resumable state, kept unless space or age asks for them (the report says
which were kept). Nothing is removed that a live process holds or that is being downloaded
(see :mod:`.evict`): the bound may then stay exceeded, and the report says why.
``MODELKIT_ASSETS_MAX_SIZE`` runs a ``max_size`` prune after every download, sparing the
version just fetched.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Collection, Iterable, Sequence

import attrs

from .. import environment
from ..versioning.base import AssetsVersioningSystem
from .evict import HELD, remove_entry, remove_orphans
from .holds import live_holds
from .inventory import DEBRIS, PARTIAL_DOWNLOAD, VERSION, Entry, matching, scan
from .layout import AssetsCache
from .sizes import human_size, parse_size

logger = logging.getLogger(__name__)

MAX_SIZE_ENV = environment.MAX_SIZE_ENV


@attrs.frozen
class Removal:
    """One entry a prune or rm removes (or, in a dry run, would), and why."""

    entry: Entry
    reason: str
    #: None once removed (or to be removed); else why it stayed (see :mod:`.evict`).
    outcome: str | None = None
    #: Pids of the live processes that hold the version, when that is why it stayed.
    holders: tuple[int, ...] = ()


@attrs.frozen
class Plan:
    """What a prune or rm is about to do."""

    removals: tuple[Removal, ...]
    #: Entries that stay on purpose (held versions; partial downloads nobody asked to free).
    kept: tuple[Removal, ...]
    size_before: int
    max_size: int | None = None

    @property
    def size_after(self) -> int:
        return self.size_before - sum(r.entry.size for r in self.removals)


@attrs.frozen
class Report:
    """What a prune or rm did."""

    removed: tuple[Removal, ...]
    #: Entries that stayed: kept on purpose, or found held or busy when their turn came.
    kept: tuple[Removal, ...]
    size_before: int
    size_after: int
    max_size: int | None
    dry_run: bool
    orphans_removed: int = 0

    @property
    def freed(self) -> int:
        return self.size_before - self.size_after


def plan_prune(
    cache: AssetsCache,
    *,
    max_size: int | None = None,
    older_than: float | None = None,
    keep: Collection[tuple[str, str]] = (),
    now: float | None = None,
) -> Plan:
    """What :func:`prune` would remove now (see the module's docstring)."""
    now = time.time() if now is None else now
    entries = scan(cache, [cache.assets_dir])
    held = live_holds(cache.cache_dir)
    removals = [Removal(e, "debris of a dead process") for e in entries if e.kind == DEBRIS]
    kept: list[Removal] = []
    candidates = [e for e in entries if e.kind in (VERSION, PARTIAL_DOWNLOAD) and e.key not in keep]
    chosen: set[int] = set()

    def take(entry: Entry, reason: str) -> bool:
        """Plan the removal of ``entry``, unless a live process holds it."""
        chosen.add(id(entry))
        holders = tuple(held.get(entry.key, ())) if entry.kind == VERSION else ()
        if holders:
            kept.append(Removal(entry, reason, HELD, holders))
            return False
        removals.append(Removal(entry, reason))
        return True

    if older_than is not None:
        for entry in candidates:
            if entry.last_used < now - older_than:
                take(entry, f"unused for more than {_age(older_than)}")
    total = sum(e.size for e in entries)
    if max_size is not None:
        remaining = total - sum(r.entry.size for r in removals)
        for entry in sorted(candidates, key=lambda e: e.last_used):
            if remaining <= max_size:
                break
            if id(entry) in chosen:
                continue
            if take(entry, f"least recently used, over {human_size(max_size)}"):
                remaining -= entry.size
    kept.extend(
        Removal(e, "resumable partial download")
        for e in candidates
        if e.kind == PARTIAL_DOWNLOAD and id(e) not in chosen
    )
    return Plan(tuple(removals), tuple(kept), total, max_size)


def plan_rm(
    cache: AssetsCache, specs: Iterable[str], systems: Sequence[AssetsVersioningSystem] = ()
) -> tuple[Plan, list[Entry]]:
    """What :func:`carry_out` removes for ``cache rm SPECS``: versions and partial downloads
    of the written folder; and the matching versions of read-only folders, which stay."""
    entries = [e for e in scan(cache) if e.kind in (VERSION, PARTIAL_DOWNLOAD)]
    chosen = matching(entries, specs, systems)
    held = live_holds(cache.cache_dir)
    removals = tuple(
        Removal(e, "asked for", holders=tuple(held.get(e.key, ())))
        for e in chosen
        if not e.read_only
    )
    total = sum(e.size for e in entries if not e.read_only)
    return Plan(removals, (), total), [e for e in chosen if e.read_only]


def carry_out(cache: AssetsCache, plan: Plan, *, ignore_holds: bool = False) -> Report:
    """Remove what ``plan`` says, each entry only if it is still safe to (see :mod:`.evict`);
    then the records and logs that no longer have a version."""
    removed: list[Removal] = []
    kept = list(plan.kept)
    for removal in plan.removals:
        outcome = remove_entry(cache, removal.entry, ignore_holds=ignore_holds)
        if outcome is None:
            removed.append(removal)
        else:
            kept.append(attrs.evolve(removal, outcome=outcome))
    present = {e.key for e in scan(cache, [cache.assets_dir]) if e.kind == VERSION}
    orphans = remove_orphans(cache, present)
    size_after = plan.size_before - sum(r.entry.size for r in removed)
    return Report(
        tuple(removed), tuple(kept), plan.size_before, size_after, plan.max_size, False, orphans
    )


def dry_run_report(plan: Plan) -> Report:
    """The report of ``plan`` without carrying it out."""
    return Report(plan.removals, plan.kept, plan.size_before, plan.size_after, plan.max_size, True)


def prune(
    cache: AssetsCache,
    *,
    max_size: int | None = None,
    older_than: float | None = None,
    dry_run_only: bool = False,
) -> Report:
    """Prune the written assets folder (see the module's docstring)."""
    plan = plan_prune(cache, max_size=max_size, older_than=older_than)
    return dry_run_report(plan) if dry_run_only else carry_out(cache, plan)


def max_size_from_environment() -> int | None:
    value = environment.env_str(MAX_SIZE_ENV)
    return None if value is None else parse_size(value, MAX_SIZE_ENV)


def enforce_max_size(cache: AssetsCache, keep: tuple[str, str]) -> Report | None:
    """After a download: evict least recently used versions until the written folder fits
    ``MODELKIT_ASSETS_MAX_SIZE`` (if set), never ``keep``, the version just fetched."""
    limit = max_size_from_environment()
    if limit is None:
        return None
    plan = plan_prune(cache, max_size=limit, keep={keep})
    if plan.size_before <= limit:
        return None
    report = carry_out(cache, plan)
    for removal in report.removed:
        logger.info("evicted %s (%s)", removal.entry.spec, human_size(removal.entry.size))
    if report.size_after > limit:
        logger.warning(
            "the assets dir holds %s, over %s=%s: the rest is in use or being downloaded",
            human_size(report.size_after),
            MAX_SIZE_ENV,
            human_size(limit),
        )
    return report


def _age(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{seconds / size:g}{unit}"
    return f"{seconds:g}s"
