"""``modelkit assets cache ...``: list, verify, prune and remove what MODELKIT_ASSETS_DIR holds.

A thin shell over :mod:`modelkit_assets.cache` (inventory, verify, prune). Results go to
stdout, the questions and summaries to stderr, as for the other commands (:mod:`.cli_common`).
"""

from __future__ import annotations

import datetime
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import click

from . import environment
from .cli_common import (
    confirm,
    echo_json,
    epilog,
    fail,
    handle_errors,
    human_size,
    open_store,
    output_options,
    storage_prefix_option,
)

if TYPE_CHECKING:
    from .cache import AssetsCache
    from .cache.prune import Removal, Report
    from .cache.verify import Check
    from .versioning.base import AssetsVersioningSystem

_SPECS_HELP = "NAME (a glob such as 'team/*' too), NAME:VERSION or NAME:MAJOR; all without."


@click.group(
    "cache",
    epilog=epilog(
        "modelkit assets cache list",
        "modelkit assets cache verify --repair",
        "modelkit assets cache prune --max-size 20GB --older-than 30d",
        "modelkit assets cache rm cat/model:0.1",
    ),
)
@output_options
def cache_cli() -> None:
    """See and bound what MODELKIT_ASSETS_DIR holds: list, verify, prune, rm.

    MODELKIT_ASSETS_DIR may list several folders (separated by ':', ';' on Windows): the first
    is where downloads go, the others are read-only tiers that are searched, never written.
    """


def _cache() -> AssetsCache:
    from .cache import AssetsCache

    return AssetsCache(environment.assets_dir())


def _systems() -> list[AssetsVersioningSystem]:
    from .spec import installed_systems

    return installed_systems()


@cache_cli.command(
    "list",
    short_help="List cached versions, partial downloads and debris.",
    epilog=epilog("modelkit assets cache list", "modelkit assets cache list 'cat/*' --json"),
)
@output_options
@click.argument("specs", nargs=-1)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document.")
@handle_errors
def list_command(specs: tuple[str, ...], as_json: bool) -> None:
    """List what the cache holds (SPECS: NAME, a glob of names, NAME:VERSION, NAME:MAJOR).

    Each entry: name, version, bytes, when it was last used, state (complete; no record: cached
    before records existed, or by modelkit; read-only tier; partial download, which the next
    fetch resumes; debris of a dead process, which prune removes) and the live processes that
    hold it (their fetches returned it: no prune removes it while they run).
    """
    from .cache.holds import live_holds
    from .cache.inventory import matching, scan
    from .cache.prune import max_size_from_environment

    cache = _cache()
    entries = matching(scan(cache), specs, _systems())
    held = live_holds(cache.cache_dir)
    total = sum(e.size for e in entries if not e.read_only)
    limit = max_size_from_environment()
    if as_json:
        echo_json(
            {
                "assets_dir": cache.assets_dir,
                "read_only_dirs": list(cache.read_only_dirs),
                "max_size": limit,
                "bytes": total,
                "entries": [e.to_dict(held.get(e.key, ())) for e in entries],
            }
        )
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"cache {cache.assets_dir}")
    for column in ("name", "version", "size", "last used", "state"):
        table.add_column(column, overflow="fold", justify="right" if column == "size" else "left")
    for entry in entries:
        state = entry.state
        holders = held.get(entry.key, ()) if entry.kind == "version" else ()
        if holders:
            state += f", in use (pid {', '.join(map(str, sorted(holders)))})"
        if entry.read_only:
            state += f" ({entry.root})"
        table.add_row(
            entry.name, entry.version, human_size(entry.size), _when(entry.last_used), state
        )
    Console(soft_wrap=True).print(table)
    bound = f", MODELKIT_ASSETS_MAX_SIZE {human_size(limit)}" if limit is not None else ""
    counted = _count(len(entries), "entry", "entries")
    click.echo(f"{counted}, {human_size(total)} in {cache.assets_dir}{bound}", err=True)


def _count(count: int, singular: str, plural: str | None = None) -> str:
    return f"{count} {singular if count == 1 else plural or singular + 's'}"


def _when(timestamp: float) -> str:
    if not timestamp:
        return "-"
    return datetime.datetime.fromtimestamp(timestamp).strftime("%Y-%m-%d %H:%M")


@cache_cli.command(
    "verify",
    short_help="Hash every cached file again; --repair fixes what is damaged.",
    epilog=epilog(
        "modelkit assets cache verify",
        "modelkit assets cache verify cat/model --repair",
        "modelkit assets cache verify --json",
    ),
)
@output_options
@storage_prefix_option
@click.argument("specs", nargs=-1)
@click.option("--repair", is_flag=True, help="Download again what is damaged or missing.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document.")
@handle_errors
def verify_command(
    specs: tuple[str, ...], storage_prefix: str | None, repair: bool, as_json: bool
) -> None:
    """Hash every file of the cached versions (SPECS, or all) and compare each with the size
    and digest it had when it was downloaded.

    Versions cached before records existed (or by modelkit) are checked against the store's
    .meta when a provider is configured: by digest, else by size or presence. Exit code 1
    names each damaged or missing file; with --repair, the damaged versions are downloaded
    again (intact files are kept) and the exit code is 0 once all is whole.
    """
    from .cache.inventory import VERSION, matching, scan
    from .cache.verify import repair as repair_checks
    from .cache.verify import verify

    cache = _cache()
    entries = [e for e in matching(scan(cache), specs, _systems()) if e.kind == VERSION]
    if specs and not entries:
        fail(f"no cached version matches {' '.join(specs)}")
    provider = open_store(storage_prefix) if environment.storage_provider() else None
    started = time.monotonic()
    checks = verify(cache, entries, provider)
    seconds = time.monotonic() - started
    if repair and any(not c.ok for c in checks):
        if provider is None:
            fail("--repair downloads from the store: set MODELKIT_STORAGE_PROVIDER", 2)
        checks = repair_checks(cache, provider, checks)
    hashed = sum(c.bytes for c in checks)
    if as_json:
        echo_json({"seconds": round(seconds, 3), "versions": [_check_dict(c) for c in checks]})
    else:
        for check in checks:
            _print_check(check)
        rate = f" ({human_size(int(hashed / seconds))}/s)" if seconds > 0.05 else ""
        counted = _count(len(checks), "version")
        click.echo(f"Checked {counted}, {human_size(hashed)} in {seconds:.2f} s{rate}", err=True)
    damaged = [
        f"{c.entry.spec}[{d.part}]" if d.part else c.entry.spec
        for c in checks
        if not c.ok
        for d in c.damaged
    ]
    if damaged:
        fail(
            f"{_count(len(damaged), 'damaged or missing file')}: {', '.join(damaged)}; "
            "run `modelkit assets cache verify --repair`"
        )


def _check_dict(check: Check) -> dict[str, Any]:
    return {
        "name": check.entry.name,
        "version": check.entry.version,
        "path": check.entry.path,
        "ok": check.ok,
        "checked_by": check.how,
        "against": check.source or None,
        "files": check.files,
        "bytes": check.bytes,
        "damaged": [
            {"part": d.part, "problem": d.problem, "detail": d.detail} for d in check.damaged
        ],
        "extra_files": list(check.extra),
        "repaired": check.repaired,
        "note": check.note or None,
    }


def _print_check(check: Check) -> None:
    from .cache.verify import UNCHECKED

    if check.how == UNCHECKED:
        click.echo(f"unchecked {check.entry.spec}: {check.note}")
        return
    label = "repaired" if check.repaired else ("ok" if check.ok else "DAMAGED")
    against = {"record": "its record", "store": "the store's .meta"}.get(check.source, "")
    click.echo(
        f"{label:9} {check.entry.spec}: {_count(check.files, 'file')}, {human_size(check.bytes)} "
        f"checked by {check.how} against {against}"
    )
    for damage in check.damaged:
        detail = f" ({damage.detail})" if damage.detail else ""
        click.echo(f"          {damage.part or '(the file)'}: {damage.problem}{detail}")
    for extra in check.extra:
        click.echo(f"          {extra}: not part of the version (left as it is)")
    if check.note and check.how != UNCHECKED:
        click.echo(f"          {check.note}")


@cache_cli.command(
    "prune",
    short_help="Evict least recently used versions and dead downloads' leftovers.",
    epilog=epilog(
        "modelkit assets cache prune --max-size 20GB",
        "modelkit assets cache prune --older-than 30d --dry-run",
        "modelkit assets cache prune --yes    # only debris of dead processes",
    ),
)
@output_options
@click.option(
    "--max-size",
    metavar="SIZE",
    help="Evict least recently used versions until the cache fits: 5GB, 500MiB, 1.5TB or "
    "bytes [default: MODELKIT_ASSETS_MAX_SIZE].",
)
@click.option("--older-than", metavar="AGE", help="Evict what was not used for AGE: 30d, 12h.")
@click.option("--dry-run", is_flag=True, help="Say what would be removed; remove nothing.")
@click.option("-y", "--yes", is_flag=True, help="Do not ask for confirmation.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document.")
@handle_errors
def prune_command(
    max_size: str | None, older_than: str | None, dry_run: bool, yes: bool, as_json: bool
) -> None:
    """Remove, from the first folder of MODELKIT_ASSETS_DIR: debris of dead downloads (always),
    versions and partial downloads unused for --older-than, and the least recently used ones
    until the cache fits --max-size.

    Partial downloads are resumable: they stay unless space or age asks for them. Nothing a
    live process holds (it fetched it) or is downloading is removed.
    """
    from .cache.prune import carry_out, dry_run_report, max_size_from_environment, plan_prune
    from .cache.sizes import parse_age, parse_size

    limit: int | None = max_size_from_environment()
    if max_size is not None:
        limit = parse_size(max_size, "--max-size")
    age = parse_age(older_than, "--older-than") if older_than is not None else None
    cache = _cache()
    plan = plan_prune(cache, max_size=limit, older_than=age)
    if dry_run or not plan.removals:
        _show_report(dry_run_report(plan), as_json)
        return
    if not as_json:
        _show_removals(plan.removals, "remove")
    confirm(
        yes,
        f"Remove {_count(len(plan.removals), 'entry', 'entries')} "
        f"({human_size(plan.size_before - plan.size_after)})",
        "nothing was removed",
    )
    _show_report(carry_out(cache, plan), as_json)


@cache_cli.command(
    "rm",
    short_help="Remove cached versions.",
    epilog=epilog(
        "modelkit assets cache rm cat/model:0.1",
        "modelkit assets cache rm cat/model:0 --yes     # every 0.x",
        "modelkit assets cache rm 'team/*' --dry-run",
    ),
)
@output_options
@click.argument("specs", nargs=-1, required=True)
@click.option("--dry-run", is_flag=True, help="Say what would be removed; remove nothing.")
@click.option("-y", "--yes", is_flag=True, help="Do not ask for confirmation.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document.")
@handle_errors
def rm_command(specs: tuple[str, ...], dry_run: bool, yes: bool, as_json: bool) -> None:
    """Remove the cached versions (and partial downloads) that SPECS designate: NAME (a glob
    too), NAME:VERSION or NAME:MAJOR.

    A version a live process holds is not removed (exit code 1 says which). Read-only tiers
    are never written: their versions are listed and stay.
    """
    from .cache.prune import carry_out, dry_run_report, plan_rm

    cache = _cache()
    plan, read_only = plan_rm(cache, specs, _systems())
    if not plan.removals and not read_only:
        fail(f"nothing in the cache matches {' '.join(specs)}")
    if not plan.removals:
        where = ", ".join(sorted({e.root for e in read_only}))
        fail(
            f"{', '.join(e.spec for e in read_only)} is only in the read-only folder {where}, "
            "which is never written; remove it there by hand if you own it"
        )
    for entry in read_only:
        click.echo(f"{entry.spec} in the read-only folder {entry.root} stays", err=True)
    if dry_run:
        _show_report(dry_run_report(plan), as_json)
        return
    if not as_json:
        _show_removals(plan.removals, "remove")
    confirm(
        yes,
        f"Remove {_count(len(plan.removals), 'entry', 'entries')} "
        f"({human_size(plan.size_before - plan.size_after)})",
        "nothing was removed",
    )
    report = carry_out(cache, plan, ignore_holds=False)
    _show_report(report, as_json)
    stayed = [r for r in report.kept if r.outcome is not None]
    if stayed:
        fail(
            f"{len(stayed)} could not be removed: "
            + ", ".join(f"{r.entry.spec} ({_why(r)})" for r in stayed)
            + "; retry once they are no longer in use"
        )


def _why(removal: Removal) -> str:
    from .cache.evict import BUSY, GONE, HELD

    if removal.outcome == HELD:
        pids = ", ".join(map(str, removal.holders))
        return f"in use by pid {pids}" if pids else "in use by a live process"
    if removal.outcome == BUSY:
        return "being downloaded"
    if removal.outcome == GONE:
        return "already gone"
    return removal.reason


def _show_removals(removals: Sequence[Removal], verb: str) -> None:
    for removal in removals:
        entry = removal.entry
        size = human_size(entry.size)
        click.echo(f"{verb:7} {entry.spec:30} {size:>9}  {entry.state}: {removal.reason}", err=True)


def _show_report(report: Report, as_json: bool) -> None:
    if as_json:
        echo_json(
            {
                "dry_run": report.dry_run,
                "removed": [_removal_dict(r) for r in report.removed],
                "kept": [_removal_dict(r) for r in report.kept],
                "bytes_before": report.size_before,
                "bytes_after": report.size_after,
                "freed_bytes": report.freed,
                "max_size": report.max_size,
                "orphans_removed": report.orphans_removed,
            }
        )
        return
    verb = "would remove" if report.dry_run else "removed"
    for removal in report.removed:
        entry = removal.entry
        click.echo(
            f"{verb} {entry.spec} ({human_size(entry.size)}, {entry.state}): {removal.reason}"
        )
    for removal in report.kept:
        click.echo(f"kept {removal.entry.spec} ({human_size(removal.entry.size)}): {_why(removal)}")
    done = "Would free" if report.dry_run else "Freed"
    click.echo(
        f"{done} {human_size(report.freed)}; the cache holds {human_size(report.size_after)}"
        + (f" (bound {human_size(report.max_size)})" if report.max_size is not None else ""),
        err=True,
    )
    if report.max_size is not None and report.size_after > report.max_size:
        click.echo(
            f"Warning: still over {human_size(report.max_size)}: the rest is in use or being "
            "downloaded",
            err=True,
        )


def _removal_dict(removal: Removal) -> dict[str, Any]:
    return {
        **removal.entry.to_dict(removal.holders),
        "reason": removal.reason,
        "outcome": removal.outcome,
    }
