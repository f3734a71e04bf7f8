"""``modelkit assets new | update | reindex``: pushes, each shown as a plan before it is asked.

The plan names the version the push will make (the store decides: see
:meth:`~modelkit_assets.store.StorageProvider.plan_update`), what it passes over and why, and
whether it completes an unfinished push; the confirmation asks about exactly that version.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

import click

from . import errors
from .cli_common import (
    confirm,
    echo_json,
    epilog,
    handle_errors,
    human_size,
    is_quiet,
    open_store,
    output_options,
    progress_bar,
    storage_prefix_option,
)

if TYPE_CHECKING:
    from .push import PushPlan
    from .source import LocalSource
    from .store import StorageProvider

P = ParamSpec("P")
T = TypeVar("T")


def push_options(function: Callable[P, T]) -> Callable[P, T]:
    """The arguments and options ``new`` and ``update`` share."""
    options: list[Callable[[Any], Any]] = [
        click.argument("asset_path"),
        click.argument("asset_spec"),
        storage_prefix_option,
        click.option("--dry-run", is_flag=True, help="Show what would be pushed; write nothing."),
        click.option("-y", "--yes", is_flag=True, help="Do not ask for confirmation."),
        click.option(
            "--json", "as_json", is_flag=True, help="Print the result as one JSON document."
        ),
    ]
    for option in reversed(options):
        function = option(function)
    return function


def _describe(source: LocalSource, shown_path: str, plan: PushPlan) -> None:
    """What is about to be pushed, on stderr (not with --quiet)."""
    # The scan's warnings (links, special files: source.warnings) are logged on stderr already.
    if is_quiet():
        return
    kind = f"directory of {len(source.files)} files" if source.is_directory else "file"
    click.echo(f"Source:      {shown_path} ({kind}, {human_size(source.size)})", err=True)
    for version, reason in plan.skipped:
        click.echo(f"Skipping:    {plan.name}:{version}: {reason}", err=True)
    click.echo(f"Asset:       {plan.name}:{plan.version}", err=True)
    if plan.resumes:
        click.echo(f"Resuming:    {plan.resumes}", err=True)
    if plan.reused_files:
        click.echo(
            f"Unchanged:   {plan.reused_files} files ({human_size(plan.reused_bytes)}) copied "
            f"from {plan.name}:{plan.base_version} inside the store, not uploaded",
            err=True,
        )
    click.echo(f"Destination: {plan.uri}", err=True)


def _report(plan: PushPlan, as_json: bool) -> None:
    source = plan.source
    if as_json:
        echo_json(
            {
                "name": plan.name,
                "version": plan.version,
                "uri": plan.uri,
                "dry_run": plan.dry_run,
                "files": len(source.files),
                "bytes": source.size,
                "reused_files": plan.reused_files,
                "reused_bytes": plan.reused_bytes,
                "resumed": plan.resumes is not None,
                "planned_version": plan.planned_version,
            }
        )
        return
    if plan.dry_run:
        click.echo(f"Dry run: would push {plan.name}:{plan.version} to {plan.uri}")
        return
    if plan.planned_version:
        click.echo(
            f"Note: {plan.name}:{plan.planned_version} was taken by another push meanwhile",
            err=True,
        )
    click.echo(f"Pushed {plan.name}:{plan.version} to {plan.uri}")


def _push(
    asset_path: str,
    storage_prefix: str | None,
    dry_run: bool,
    yes: bool,
    as_json: bool,
    plan_of: Callable[[StorageProvider, LocalSource], PushPlan],
    push: Callable[[StorageProvider, LocalSource, PushPlan], PushPlan],
) -> None:
    """Copy a URI source locally, plan, show the plan, ask, push, report."""
    from .cli_common import doing
    from .remote_source import local_copy

    store = open_store(storage_prefix)
    doing(f"reading {asset_path}")
    with local_copy(asset_path) as path:
        source = store.scan(path)
        plan = plan_of(store, source)
        _describe(source, asset_path, plan)
        if dry_run:
            from attrs import evolve

            _report(evolve(plan, dry_run=True), as_json)
            return
        confirm(yes, f"Push {plan.name}:{plan.version}", "nothing was pushed")
        doing(f"pushing {plan.name}:{plan.version}")
        pushed = push(store, source, plan)
    _report(pushed, as_json)


@click.command(
    "new",
    short_help="Create an asset at its first version.",
    epilog=epilog(
        "modelkit assets new weights.bin cat/model          # cat/model:0.0",
        "modelkit assets new model_dir/ cat/model:1.0 --yes",
        "modelkit assets new s3://bucket/key cat/model --dry-run",
    ),
)
@output_options
@push_options
@handle_errors
def new_command(
    asset_path: str,
    asset_spec: str,
    storage_prefix: str | None,
    dry_run: bool,
    yes: bool,
    as_json: bool,
) -> None:
    """Create asset ASSET_SPEC from ASSET_PATH, a file, a folder or a store URI.

    ASSET_SPEC is a name; the asset starts at the versioning system's first version (0.0 for
    major_minor, the current UTC date for simple_date), or at the version given as
    name:VERSION.
    """
    from .spec import AssetSpec

    def plan_of(store: StorageProvider, source: LocalSource) -> PushPlan:
        spec = AssetSpec.from_string(asset_spec, versioning=store.versioning)
        if spec.sub_part or (spec.version and not spec.is_version_complete()):
            raise errors.InvalidAssetSpecError(
                asset_spec, "give a name, or name:VERSION with a complete version, to `new`"
            )
        return store.plan_new(source, spec.name, spec.version)

    def push(store: StorageProvider, source: LocalSource, plan: PushPlan) -> PushPlan:
        return store.new(source, plan.name, plan.version, progress=progress_bar(), plan=plan)

    _push(asset_path, storage_prefix, dry_run, yes, as_json, plan_of, push)


@click.command(
    "update",
    short_help="Push the next version of an asset.",
    epilog=epilog(
        "modelkit assets update model_dir/ cat/model              # bump the minor: 1.3 -> 1.4",
        "modelkit assets update model_dir/ cat/model --bump-major # 1.3 -> 2.0",
        "modelkit assets update weights.bin cat/model:0           # the next 0.x",
    ),
)
@output_options
@push_options
@click.option("--bump-major", is_flag=True, help="Start a new major version (major_minor).")
@handle_errors
def update_command(
    asset_path: str,
    asset_spec: str,
    storage_prefix: str | None,
    dry_run: bool,
    yes: bool,
    as_json: bool,
    bump_major: bool,
) -> None:
    """Add a version to asset ASSET_SPEC (name, or name:MAJOR to bump an older major).

    The asset keeps its own versioning system, whatever MODELKIT_ASSETS_VERSIONING_SYSTEM says.
    A version left claimed by an interrupted push of the same content is completed, not skipped.
    """
    from .spec import parse_spec

    name, version, sub_part = parse_spec(asset_spec)
    if sub_part:
        raise errors.InvalidAssetSpecError(asset_spec, "no [sub/part] when updating")

    def plan_of(store: StorageProvider, source: LocalSource) -> PushPlan:
        return store.plan_update(source, name, version, bump_major)

    def push(store: StorageProvider, source: LocalSource, plan: PushPlan) -> PushPlan:
        return store.update_next(
            source, name, version, bump_major, progress=progress_bar(), plan=plan
        )

    _push(asset_path, storage_prefix, dry_run, yes, as_json, plan_of, push)


@click.command(
    "reindex",
    short_help="Rebuild an asset's .versions from the metas of the store.",
    epilog=epilog(
        "modelkit assets reindex cat/model --dry-run", "modelkit assets reindex cat/model --yes"
    ),
)
@output_options
@storage_prefix_option
@click.argument("name")
@click.option("--dry-run", is_flag=True, help="Show what would be listed; write nothing.")
@click.option("-y", "--yes", is_flag=True, help="Do not ask for confirmation.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document.")
@handle_errors
def reindex_command(
    name: str, storage_prefix: str | None, dry_run: bool, yes: bool, as_json: bool
) -> None:
    """List again in NAME's .versions every version whose .meta and objects are all in the
    store. Nothing already listed is removed; versions of unfinished pushes stay out."""
    store = open_store(storage_prefix)
    found: dict[str, Any] = store.reindex(name, dry_run=True)
    if not as_json and not is_quiet():
        for version in found["added"]:
            click.echo(f"List again:  {name}:{version}", err=True)
        for version in found["incomplete"]:
            click.echo(
                f"Left out:    {name}:{version} (objects missing: an unfinished push)", err=True
            )
    if found["added"] and not dry_run:
        confirm(
            yes,
            f"Rewrite the index of {name} with {len(found['added'])} more versions",
            "the index is unchanged",
        )
        found = store.reindex(name)
    if as_json:
        echo_json({**found, "dry_run": dry_run})
    elif not found["added"]:
        click.echo(f"The index of {name} already lists every complete version.")
    else:
        verb = "Would list" if dry_run else "Listed"
        click.echo(f"{verb} {name}: {', '.join(found['versions'])}")
