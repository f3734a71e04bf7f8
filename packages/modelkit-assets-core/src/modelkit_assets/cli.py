"""``modelkit assets ...``: a thin shell over the Python API.

Results go to stdout, logs, prompts and progress to stderr. Every error the library raises on
purpose becomes one ``Error: ...`` line and exit code 1; usage errors exit with 2.
"""

from __future__ import annotations

import datetime
import functools
import json
import logging
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, NoReturn, ParamSpec, TypeVar

import click

from . import errors

if TYPE_CHECKING:
    from .progress import TransferProgress
    from .source import LocalSource
    from .store import PushPlan, StorageProvider

P = ParamSpec("P")
T = TypeVar("T")

EXIT_CODES = """\b
Exit codes: 0 success, 1 error (one line on stderr), 2 usage error.
"""

logger = logging.getLogger("modelkit_assets")


def _fail(message: str) -> NoReturn:
    click.echo(f"Error: {message}", err=True)
    sys.exit(1)


def handle_errors(function: Callable[P, T]) -> Callable[P, T]:
    """Turn library errors into one line and exit 1, never a traceback (unless -v)."""

    @functools.wraps(function)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
        try:
            return function(*args, **kwargs)
        except errors.ModelkitAssetsError as exc:
            logger.debug("details", exc_info=True)
            _fail(str(exc))
        except OSError as exc:
            logger.debug("details", exc_info=True)
            _fail(f"{exc.strerror or exc}" + (f": {exc.filename!r}" if exc.filename else ""))
        except (click.ClickException, click.Abort, SystemExit, KeyboardInterrupt):
            raise
        except Exception as exc:
            logger.debug("details", exc_info=True)
            _fail(f"unexpected {type(exc).__name__}: {exc} (run with -v for details)")

    return wrapper


def _configure_logging(verbose: int, quiet: bool) -> None:
    level = logging.WARNING
    if quiet:
        level = logging.ERROR
    elif verbose == 1:
        level = logging.INFO
    elif verbose > 1:
        level = logging.DEBUG
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(levelname)s: %(message)s"))
    root = logging.getLogger("modelkit_assets")
    root.handlers[:] = [handler]
    root.setLevel(level)
    root.propagate = False


def _human_size(size: int | None) -> str:
    if size is None:
        return "?"
    value = float(size)
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if value < 1000 or unit == "TB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    raise AssertionError("unreachable")


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime.datetime):
        return value.isoformat()
    return str(value)


def _echo_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, sort_keys=True, default=_json_default))


def _set_verbosity(ctx: click.Context, param: click.Parameter, value: Any) -> Any:
    """-v / -q given to the group or to a command: the later one wins."""
    state = ctx.ensure_object(dict)
    if param.name == "verbose" and value:
        state["verbose"] = state.get("verbose", 0) + value
    elif param.name == "quiet" and value:
        state["quiet"] = True
    _configure_logging(state.get("verbose", 0), state.get("quiet", False))
    return value


def output_options(function: Callable[P, T]) -> Callable[P, T]:
    """``-v`` (repeatable) and ``-q``, accepted before or after the command name."""
    function = click.option(
        "-q",
        "--quiet",
        is_flag=True,
        expose_value=False,
        callback=_set_verbosity,
        help="No progress bars, only errors on stderr.",
    )(function)
    return click.option(
        "-v",
        "--verbose",
        count=True,
        expose_value=False,
        callback=_set_verbosity,
        help="Log more to stderr (-vv for debug).",
    )(function)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="modelkit-assets-core", prog_name="modelkit")
def modelkit_cli() -> None:
    """modelkit: versioned, immutable ML assets."""


@modelkit_cli.group("assets", epilog=EXIT_CODES)
@output_options
def assets_cli() -> None:
    """Push, list and fetch assets in the configured store (MODELKIT_STORAGE_*)."""


def _progress(ctx: click.Context) -> TransferProgress:
    """A progress bar on a terminal; nothing with --quiet or when stderr is not a terminal."""
    from .progress import NO_PROGRESS

    quiet = bool((ctx.find_object(dict) or {}).get("quiet"))
    if quiet or not sys.stderr.isatty():
        return NO_PROGRESS
    from .cli_progress import RichProgress

    return RichProgress()


def _store(prefix: str | None) -> StorageProvider:
    from .store import StorageProvider

    return StorageProvider(prefix=prefix)


def _describe(source: LocalSource, name: str, version: str, uri: str) -> None:
    """What is about to be pushed, on stderr (not with --quiet)."""
    if (click.get_current_context().find_object(dict) or {}).get("quiet"):
        return
    kind = f"directory of {len(source.files)} files" if source.is_directory else "file"
    click.echo(f"Source:      {source.path} ({kind}, {_human_size(source.size)})", err=True)
    click.echo(f"Asset:       {name}:{version}", err=True)
    click.echo(f"Destination: {uri}", err=True)


def _confirm(yes: bool, what: str) -> None:
    if yes:
        return
    if not click.confirm(f"{what}?", default=False, err=True):
        click.echo("Aborted: nothing was pushed.", err=True)
        sys.exit(1)


def _report(plan: PushPlan) -> None:
    if plan.dry_run:
        click.echo(f"Dry run: would push {plan.name}:{plan.version} to {plan.uri}")
    else:
        click.echo(f"Pushed {plan.name}:{plan.version} to {plan.uri}")


_push_options = [
    click.argument("asset_path"),
    click.argument("asset_spec"),
    click.option(
        "--storage-prefix",
        envvar="MODELKIT_STORAGE_PREFIX",
        help="Prefix of every object [env MODELKIT_STORAGE_PREFIX; default modelkit-assets].",
    ),
    click.option("--dry-run", is_flag=True, help="Show what would be pushed; write nothing."),
    click.option("-y", "--yes", is_flag=True, help="Do not ask for confirmation."),
]


def push_options(function: Callable[P, T]) -> Callable[P, T]:
    for option in reversed(_push_options):
        function = option(function)
    return function


def _push_confirmed(
    ctx: click.Context,
    store: StorageProvider,
    asset_path: str,
    name: str,
    version: str,
    dry_run: bool,
    yes: bool,
    question: str,
    push: Callable[[LocalSource, TransferProgress], PushPlan],
) -> None:
    """Copy a URI source locally, show what will be pushed, ask, push, report."""
    from .remote_source import local_copy

    with local_copy(asset_path) as path:  # the source driver's own worker default
        source = store.scan(path)
        _describe(source, name, version, store.get_object_uri(name, version))
        if not dry_run:
            _confirm(yes, question)
        plan = push(source, _progress(ctx))
    _report(plan)


@assets_cli.command("new", epilog=EXIT_CODES, short_help="Create an asset at its first version.")
@output_options
@push_options
@click.pass_context
@handle_errors
def new_command(
    ctx: click.Context,
    asset_path: str,
    asset_spec: str,
    storage_prefix: str | None,
    dry_run: bool,
    yes: bool,
) -> None:
    """Create asset ASSET_SPEC from ASSET_PATH, a file, a folder or a store URI.

    ASSET_SPEC is a name; the asset starts at the versioning system's first version (0.0 for
    major_minor), or at the version given as name:VERSION.
    """
    from .spec import AssetSpec

    store = _store(storage_prefix)
    spec = AssetSpec.from_string(asset_spec, versioning=store.versioning)
    if spec.sub_part or (spec.version and not spec.is_version_complete):
        raise errors.InvalidAssetSpecError(
            asset_spec, "give a name, or name:VERSION with a complete version, to `new`"
        )
    if store.asset_exists(spec.name):
        raise errors.AssetAlreadyExistsError(spec.name)
    version = spec.version or store.versioning.get_initial_version()
    _push_confirmed(
        ctx,
        store,
        asset_path,
        spec.name,
        version,
        dry_run,
        yes,
        f"Create {spec.name}:{version}",
        lambda source, progress: store.new(
            source, spec.name, version, dry_run=dry_run, progress=progress
        ),
    )


@assets_cli.command("update", epilog=EXIT_CODES, short_help="Push the next version of an asset.")
@output_options
@push_options
@click.option("--bump-major", is_flag=True, help="Start a new major version (major_minor).")
@click.pass_context
@handle_errors
def update_command(
    ctx: click.Context,
    asset_path: str,
    asset_spec: str,
    storage_prefix: str | None,
    dry_run: bool,
    yes: bool,
    bump_major: bool,
) -> None:
    """Add a version to asset ASSET_SPEC (name, or name:MAJOR to bump an older major)."""
    from .spec import AssetSpec

    store = _store(storage_prefix)
    spec = AssetSpec.from_string(asset_spec, versioning=store.versioning)
    if spec.sub_part:
        raise errors.InvalidAssetSpecError(asset_spec, "no [sub/part] when updating")
    version = store.next_version(spec.name, spec.version, bump_major)
    _push_confirmed(
        ctx,
        store,
        asset_path,
        spec.name,
        version,
        dry_run,
        yes,
        f"Push {spec.name}:{version}",
        lambda source, progress: store.update_next(
            source, spec.name, spec.version, bump_major, dry_run=dry_run, progress=progress
        ),
    )


@assets_cli.command("list", epilog=EXIT_CODES, short_help="List assets, versions and push dates.")
@output_options
@click.option("--storage-prefix", envvar="MODELKIT_STORAGE_PREFIX", help="Prefix to list.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document.")
@handle_errors
def list_command(storage_prefix: str | None, as_json: bool) -> None:
    """List the assets of the store with their versions."""
    store = _store(storage_prefix)
    rows = store.list_assets()
    if as_json:
        _echo_json(
            {
                "provider": store.provider,
                "bucket": store.driver.bucket,
                "prefix": store.prefix,
                "assets": rows,
            }
        )
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"{store.provider} {store.driver.bucket} / {store.prefix}")
    for column in ("name", "versions", "latest", "pushed"):
        table.add_column(column)
    for row in rows:
        table.add_row(
            row["name"],
            ", ".join(row["versions"]),
            row["latest"] or "-",
            (row["push_date"] or "-")[:19].replace("T", " "),
        )
    Console(soft_wrap=True).print(table)
    if not rows:
        click.echo("No assets.", err=True)


@assets_cli.command(
    "fetch", epilog=EXIT_CODES, short_help="Download an asset once; print its local path."
)
@output_options
@click.argument("asset")
@click.option(
    "--download", "--force", "download", is_flag=True, help="Download again even if it is cached."
)
@click.option("--json", "as_json", is_flag=True, help="Print the fetch info as JSON.")
@click.pass_context
@handle_errors
def fetch_command(ctx: click.Context, asset: str, download: bool, as_json: bool) -> None:
    """Fetch ASSET (name[:version][[sub/part]]) into MODELKIT_ASSETS_DIR; print its path.

    A pinned version already in the cache is served without touching the store.
    """
    from .manager import AssetsManager

    manager = AssetsManager()
    manager.progress = _progress(ctx)
    info = manager.fetch_asset(asset, return_info=True, force_download=download or None)
    if as_json:
        _echo_json(info)
    else:
        click.echo(info["path"])


@assets_cli.command(
    "plugins", epilog=EXIT_CODES, short_help="List installed drivers and versioning systems."
)
@output_options
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document.")
@handle_errors
def plugins_command(as_json: bool) -> None:
    """List installed storage drivers and versioning systems, and broken plugins."""
    from .plugins import get_registry

    registry = get_registry()
    drivers: list[dict[str, Any]] = [
        {
            "name": name,
            "distribution": r.source.distribution,
            "version": r.source.version,
            "schemes": list(r.record.schemes),
            "capabilities": sorted(r.record.capabilities),
            "description": r.record.description,
        }
        for name, r in sorted(registry.drivers.items())
    ]
    systems: list[dict[str, Any]] = [
        {
            "name": name,
            "distribution": r.source.distribution,
            "version": r.source.version,
            "description": r.record.description,
        }
        for name, r in sorted(registry.versioning_systems.items())
    ]
    broken = [
        {
            "entry_point": b.entry_point,
            "distribution": b.source.distribution,
            "version": b.source.version,
            "error": b.error,
        }
        for b in registry.broken
    ]
    conflicts = [
        {"kind": kind, "name": name, "distributions": [str(s) for s in sources]}
        for (kind, name), sources in sorted(registry.conflicts.items())
    ]
    if as_json:
        _echo_json(
            {
                "storage_drivers": drivers,
                "versioning_systems": systems,
                "broken": broken,
                "conflicts": conflicts,
            }
        )
        return
    from rich.console import Console
    from rich.table import Table

    console = Console(soft_wrap=True)
    table = Table(title="Storage drivers")
    for column in ("name", "distribution", "schemes", "capabilities"):
        table.add_column(column)
    for d in drivers:
        table.add_row(
            d["name"],
            f"{d['distribution']} {d['version']}",
            ", ".join(d["schemes"]) or "-",
            ", ".join(d["capabilities"]) or "-",
        )
    console.print(table)
    table = Table(title="Versioning systems")
    for column in ("name", "distribution", "description"):
        table.add_column(column)
    for s in systems:
        table.add_row(s["name"], f"{s['distribution']} {s['version']}", s["description"])
    console.print(table)
    for b in broken:
        click.echo(
            f"broken plugin {b['entry_point']} ({b['distribution']} {b['version']}): {b['error']}",
            err=True,
        )
    for c in conflicts:
        click.echo(
            f"conflict: {c['kind']} {c['name']!r} registered by {' and '.join(c['distributions'])}",
            err=True,
        )


assets_cli.add_command(plugins_command, "drivers")


@assets_cli.command("info", epilog=EXIT_CODES, short_help="Show a version's files, hashes and URI.")
@output_options
@click.argument("asset")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document.")
@handle_errors
def info_command(asset: str, as_json: bool) -> None:
    """Show the meta of ASSET (name[:version]): push date, files, sizes, hashes, remote URI."""
    from .spec import AssetSpec

    store = _store(None)
    spec = AssetSpec.from_string(asset, versioning=store.versioning)
    version = store.resolve_version(spec.name, spec.version)
    meta = store.read_meta(spec.name, version)
    files: list[dict[str, Any]] = [
        {"part": part, "size": digest.size, "hash": f"{digest.algorithm}:{digest.hexdigest}"}
        for part, digest in sorted(meta.digests.items())
    ]
    if meta.is_directory and not files:  # a meta written by modelkit: no sizes or hashes
        files = [{"part": part, "size": None, "hash": None} for part in meta.contents]
    document = {
        "name": spec.name,
        "version": version,
        "uri": store.get_object_uri(spec.name, version),
        "push_date": meta.push_date.isoformat(),
        "is_directory": meta.is_directory,
        "size": meta.size,
        "files": files,
    }
    if as_json:
        _echo_json(document)
        return
    click.echo(f"{spec.name}:{version}")
    click.echo(f"  uri:       {document['uri']}")
    click.echo(f"  pushed:    {document['push_date']}")
    kind = f"directory, {len(meta.contents)} files" if meta.is_directory else "file"
    click.echo(f"  content:   {kind}, {_human_size(meta.size)}")
    for file in files:
        name = file["part"] or "(file)"
        digest = file["hash"] or "(no hash recorded)"
        click.echo(f"  {_human_size(file['size']):>9}  {digest}  {name}")


@assets_cli.command("prefetch", epilog=EXIT_CODES, short_help="Download many assets in parallel.")
@output_options
@click.argument("specs", nargs=-1)
@click.option(
    "-f",
    "--file",
    "spec_file",
    type=click.Path(dir_okay=False),
    help="Read specs from this file, one per line (# comments allowed).",
)
@click.option("-j", "--jobs", default=4, show_default=True, help="Assets fetched at once.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document.")
@handle_errors
def prefetch_command(
    specs: tuple[str, ...], spec_file: str | None, jobs: int, as_json: bool
) -> None:
    """Download SPECS (and those of --file) into MODELKIT_ASSETS_DIR, several at a time.

    Meant for building images that then run in pre-downloaded mode. One line per asset; exit
    code 1 if any of them failed.
    """
    from .manager import AssetsManager
    from .prefetch import prefetch, read_spec_file

    wanted = list(specs) + (read_spec_file(spec_file) if spec_file else [])
    if not wanted:
        raise click.UsageError("give at least one SPEC or --file")
    results = prefetch(AssetsManager(), wanted, max_workers=jobs)
    if as_json:
        _echo_json(
            [
                {
                    "spec": r.spec,
                    "ok": r.ok,
                    "seconds": round(r.seconds, 3),
                    "error": r.error,
                    **(
                        {
                            "path": r.info["path"],
                            "version": r.info["version"],
                            "from_cache": r.info["from_cache"],
                        }
                        if r.info
                        else {}
                    ),
                }
                for r in results
            ]
        )
    else:
        for r in results:
            if r.info is not None:
                how = "cached" if r.info["from_cache"] else f"downloaded in {r.seconds:.1f} s"
                click.echo(f"ok      {r.spec} -> {r.info['path']} ({how})")
            else:
                click.echo(f"failed  {r.spec}: {r.error}")
    failed = sum(not r.ok for r in results)
    if failed:
        _fail(f"{failed} of {len(results)} assets could not be fetched")


def main() -> None:
    """Console entry point."""
    modelkit_cli(prog_name="modelkit")
