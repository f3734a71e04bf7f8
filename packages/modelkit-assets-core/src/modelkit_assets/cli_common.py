"""What every ``modelkit assets`` command shares: error handling, output, options, the store.

Results go to stdout, logs, prompts and progress to stderr. Every error the library raises on
purpose becomes one ``Error: ...`` line: exit code 2 for usage errors (a malformed spec, name,
version or setting, a missing ``--yes`` where no one can answer), 1 for the rest, 130 on
Ctrl-C (saying what an interrupted push left claimed).
"""

from __future__ import annotations

import datetime
import errno
import functools
import json
import logging
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, NoReturn, ParamSpec, TypeVar

import click

from . import environment, errors

if TYPE_CHECKING:
    from .progress import TransferProgress
    from .store import StorageProvider

P = ParamSpec("P")
T = TypeVar("T")

EXIT_CODES = """\b
Exit codes: 0 success, 1 error (one line on stderr), 2 usage error, 130 interrupted.
"""

#: How long the CLI retries a refused connection (nothing listens on the endpoint: a typo in
#: the endpoint, or a server that is down) unless MODELKIT_STORAGE_TIMEOUT_S is set.
CLI_REFUSED_TIMEOUT_S = 10.0

USAGE_ERRORS = (
    errors.InvalidAssetSpecError,
    errors.InvalidSettingError,
    errors.UnknownDriverError,
    errors.UnknownAssetsVersioningSystemError,
)

logger = logging.getLogger("modelkit_assets")


def epilog(*examples: str) -> str:
    """The epilog of a command's ``--help``: examples, then the exit codes."""
    lines = "\n".join(f"  {e}" for e in examples)
    return f"\b\nExamples:\n{lines}\n\n{EXIT_CODES}"


def is_usage_error(exc: errors.ModelkitAssetsError) -> bool:
    """Whether the command line itself is wrong (a malformed spec or setting), as opposed to
    the state of the store (a major that has no version is both an invalid version, for
    modelkit's ``except`` clauses, and a fact about the asset)."""
    return isinstance(exc, USAGE_ERRORS) and not isinstance(exc, errors.AssetError)


def fail(message: str, code: int = 1) -> NoReturn:
    click.echo(f"Error: {message}", err=True)
    sys.exit(code)


def _context_state() -> dict[str, Any]:
    """The state the commands of one invocation share (verbosity, what is being done)."""
    ctx = click.get_current_context(silent=True)
    if ctx is None:
        return {}
    state: dict[str, Any] = ctx.ensure_object(dict)
    return state


def doing(what: str, full_disk_hint: str | None = None) -> None:
    """Tell the error handler what the command is doing, for messages about the disk, and
    what to add when the disk is full."""
    state = _context_state()
    state["doing"] = what
    state["full_disk_hint"] = full_disk_hint


def _os_error_message(exc: OSError) -> str:
    where = f" {exc.filename}" if exc.filename else ""
    what = _context_state().get("doing")
    context = f" while {what}" if what else ""
    if exc.errno == errno.ENOSPC:
        device = f" of{where}" if where else ""
        hint = _context_state().get("full_disk_hint")
        after = f" ({hint})" if hint else ""
        return f"no space left on the device{device}{context}; free some space and retry{after}"
    if exc.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
        reason = "read-only file system" if exc.errno == errno.EROFS else "permission denied"
        return (
            f"cannot write{where} ({reason}){context}; point MODELKIT_ASSETS_DIR at a "
            "writable folder, or fetch it where the assets dir is writable"
        )
    return f"{exc.strerror or exc}" + (f": {exc.filename!r}" if exc.filename else "") + context


def confirm(yes: bool, question: str, aborted: str) -> None:
    """Ask ``question`` on stderr unless ``--yes``; exit 1 with ``Aborted: {aborted}.`` on
    no, and 2 when nobody can answer (no terminal and nothing on stdin): say to pass --yes."""
    if yes:
        return
    if not sys.stdin.isatty() and not _stdin_has_input():
        fail("nobody can answer the confirmation (stdin is not a terminal): pass --yes", 2)
    try:
        answer = click.confirm(f"{question}?", default=False, err=True)
    except click.Abort:  # end of input: nobody answered
        click.echo("", err=True)
        fail("no answer to the confirmation on stdin: pass --yes", 2)
    if not answer:
        click.echo(f"Aborted: {aborted}.", err=True)
        sys.exit(1)


def _stdin_has_input() -> bool:
    """Whether stdin is a pipe or file with an answer in it (``echo y | modelkit ...``), as
    opposed to nothing at all (closed, or /dev/null)."""
    import os
    import stat

    try:
        mode = os.fstat(sys.stdin.fileno()).st_mode
    except (OSError, ValueError, AttributeError):
        return True  # a replaced stdin (tests, embedding): let click read it
    if stat.S_ISFIFO(mode):
        return True
    return stat.S_ISREG(mode) and os.fstat(sys.stdin.fileno()).st_size > 0


def _interrupted() -> NoReturn:
    store: StorageProvider | None = _context_state().get("store")
    claim = store.pending_claim if store is not None else None
    if claim is not None:
        name, version = claim
        fail(
            f"interrupted: {name}:{version} is claimed but not published; run the same "
            "command again to complete it",
            130,
        )
    fail("interrupted; nothing was published", 130)


def handle_errors(function: Callable[P, T]) -> Callable[P, T]:
    """Turn library errors into one line and an exit code, never a traceback (unless -v)."""

    @functools.wraps(function)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
        try:
            return function(*args, **kwargs)
        except errors.ModelkitAssetsError as exc:
            logger.debug("details", exc_info=True)
            fail(exc.cli_message or str(exc), 2 if is_usage_error(exc) else 1)
        except OSError as exc:
            logger.debug("details", exc_info=True)
            fail(_os_error_message(exc))
        except KeyboardInterrupt:
            _interrupted()
        except (click.ClickException, click.Abort, SystemExit):
            raise
        except Exception as exc:
            logger.debug("details", exc_info=True)
            fail(f"unexpected {type(exc).__name__}: {exc} (run with -v for details)")

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


def human_size(size: int | None) -> str:
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


def echo_json(data: Any) -> None:
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


def storage_prefix_option(function: Callable[P, T]) -> Callable[P, T]:
    return click.option(
        "--storage-prefix",
        envvar="MODELKIT_STORAGE_PREFIX",
        help="Prefix of every object [env MODELKIT_STORAGE_PREFIX; default modelkit-assets].",
    )(function)


def is_quiet() -> bool:
    return bool(_context_state().get("quiet"))


def progress_bar() -> TransferProgress:
    """A progress bar on a terminal; nothing with --quiet or when stderr is not a terminal."""
    from .progress import NO_PROGRESS

    if is_quiet() or not sys.stderr.isatty():
        return NO_PROGRESS
    from .cli_progress import RichProgress

    return RichProgress()


def refused_timeout() -> float | None:
    """The CLI gives up on a refused connection after a few seconds: a person is waiting. An
    explicit MODELKIT_STORAGE_TIMEOUT_S keeps the whole budget."""
    if environment.is_set("MODELKIT_STORAGE_TIMEOUT_S"):
        return None
    return CLI_REFUSED_TIMEOUT_S


def open_store(prefix: str | None) -> StorageProvider:
    """The configured store (remembered for the Ctrl-C message)."""
    from .store import StorageProvider

    store = StorageProvider(prefix=prefix, refused_timeout_s=refused_timeout())
    _context_state()["store"] = store
    return store
