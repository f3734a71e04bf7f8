"""Benchmark modelkit-assets against modelkit, side by side, on the same data and servers.

    python bench/run.py            # the full run (`make bench`), about 10 minutes on 2 cores
    python bench/run.py --smoke    # tiny sizes, one repetition, seconds (`make bench-smoke`)

It makes its data under ``bench/.work``, installs modelkit (the reference) into its own
virtualenv there, and for each provider in turn (a local folder, SeaweedFS for S3,
fake-gcs-server, Azurite) starts the server on free loopback ports, then times both projects
alternately, each operation in a fresh child process (``bench/child.py``) run by the project's
own Python. It prints medians, speed-ups and peak memory as a table and writes it to
``bench/RESULTS.md`` (``--out``). The 1 GiB memory cases run one provider at a time, and every
large object is deleted once measured: the emulators hold objects in memory.

Small files are never deleted while the clock may run: every copy, fetch and local bucket goes
to a folder of its own under ``bench/.work/scratch``, removed once the run is over. On this
machine's ext4 (no journal), creating a file skips every inode of its group freed in the last
minutes, one buffer lookup each (``recently_deleted``): after a few thousand deletions, the
1000-file local push took 100-280 ms instead of 50, nearly all of it in the kernel, whichever
project ran it, which crushed both projects' times together.
"""

from __future__ import annotations

import argparse
import compileall
import contextlib
import datetime
import json
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(1, str(Path(__file__).resolve().parents[1]))  # tests.servers: shared helpers

import servers

BENCH: Final = Path(__file__).resolve().parent
ROOT: Final = BENCH.parent
CHILD: Final = BENCH / "child.py"
OURS_PYTHON: Final = sys.executable
REFERENCE: Final = (
    "modelkit[cli,assets-s3,assets-gcs,assets-az]==0.1.3",
    "modelkit[cli,assets-s3,assets-gcs,assets-az]",
)
PROJECTS: Final = ("ours", "ref")
VERSION: Final = "0.0"
KiB: Final = 1024
MiB: Final = 1024 * KiB
#: Driver settings of an untimed push of the huge file when the timed one was stopped, so that
#: its fetch is measured still: fake-gcs-server's resumable uploads slow down with every piece
#: (a 1 GiB push in 16 MiB pieces outlasts the limit), whole-GiB pieces are quick.
SEED_SETTINGS: Final = {"gcs": {"chunk_size": 1024 * MiB}}
#: Pushes of the large file on fake-gcs-server at most, where modelkit's 256 MiB push takes
#: 30-45 s (even, as every run count: see :meth:`Bench.order`); each is fetched in more runs.
GCS_LARGE_REPS: Final = 2


@dataclass(frozen=True)
class Sizes:
    """What one run moves: many small files, a large file, a huge file for peak memory."""

    files: int
    few_files: int
    file_size: int
    large: int
    huge: int
    reps: int
    #: Runs of the large-file cases (pushes: at most :data:`GCS_LARGE_REPS` on fake-gcs-server).
    large_reps: int
    cached_calls: int
    cli_reps: int
    #: How long one push or fetch of the huge file may take (modelkit's 2 MiB resumable
    #: chunks make a 1 GiB push to fake-gcs-server take many minutes).
    huge_limit_s: float

    def large_reps_on(self, provider: str) -> int:
        return min(GCS_LARGE_REPS, self.large_reps) if provider == "gcs" else self.large_reps

    @property
    def label(self) -> dict[str, str]:
        return {
            "many": f"{self.files} x {_size(self.file_size)} files",
            "few": f"{self.few_files} x {_size(self.file_size)} files",
            "large": f"one {_size(self.large)} file",
            "huge": f"one {_size(self.huge)} file",
        }


#: An even number of runs: each project goes first in half of them (see :meth:`Bench.order`).
FULL: Final = Sizes(1000, 100, 10 * KiB, 256 * MiB, 1024 * MiB, 4, 4, 5000, 5, 60)
SMOKE: Final = Sizes(20, 2, KiB, 2 * MiB, 9 * MiB, 1, 1, 50, 1, 60)


def _size(n: int) -> str:
    for unit, scale in (("GiB", 1024 * MiB), ("MiB", MiB), ("KiB", KiB)):
        if n >= scale and n % scale == 0:
            return f"{n // scale} {unit}"
    return f"{n} B"


# -- data ---------------------------------------------------------------------------------------


def _random_file(path: Path, size: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as f:
        for offset in range(0, size, MiB):
            f.write(os.urandom(min(MiB, size - offset)))


def _directory(path: Path, count: int, size: int) -> Path:
    marker = path / f".made-{count}x{size}"
    if not marker.exists():
        shutil.rmtree(path, ignore_errors=True)
        for i in range(count):  # ten sub-folders, as real assets have some nesting
            _random_file(path / f"part-{i % 10}" / f"file-{i:05d}.bin", size)
        marker.touch()
    return path


def _file(path: Path, size: int) -> Path:
    if not (path.exists() and path.stat().st_size == size):
        _random_file(path, size)
    return path


def make_data(work: Path, sizes: Sizes) -> dict[str, Path]:
    data = work / "data"
    return {
        # markers are dot-files: both projects push hidden files, so keep them outside the asset
        "many": _directory(data / f"many-{sizes.files}", sizes.files, sizes.file_size),
        "few": _directory(data / f"few-{sizes.few_files}", sizes.few_files, sizes.file_size),
        "large": _file(data / f"large-{sizes.large}.bin", sizes.large),
        "huge": _file(data / f"huge-{sizes.huge}.bin", sizes.huge),
    }


# -- the reference --------------------------------------------------------------------------------


def reference_python(venv: Path, install: bool) -> Path | None:
    """The Python of the virtualenv ``venv`` with modelkit, installed on first use; None if it is
    absent and ``install`` is false."""
    python = venv / "bin" / "python"
    marker = venv / ".bench-installed"
    if marker.exists():
        return python
    if not install:
        return None
    print(f"installing the reference (modelkit) into {venv} ...", flush=True)
    subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], check=True)
    for requirement in REFERENCE:
        done = subprocess.run(
            [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check", requirement],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        if done.returncode == 0:
            marker.write_text(requirement + "\n")
            return python
        print(f"  {requirement}: pip failed:\n{done.stderr[-2000:]}", flush=True)
    raise SystemExit("could not install modelkit into the reference virtualenv")


def _version(python: Path | str, distribution: str) -> str:
    code = f"import importlib.metadata as m; print(m.version({distribution!r}))"
    done = subprocess.run([str(python), "-c", code], capture_output=True, text=True)
    return done.stdout.strip() or "?"


# -- measuring ------------------------------------------------------------------------------------


@dataclass
class Sample:
    seconds: float
    peak_rss_kib: int = 0
    stopped: bool = False  # ran out of time: ``seconds`` is a lower bound


@dataclass
class Results:
    """Samples by (case, provider, project)."""

    samples: dict[tuple[str, str, str], list[Sample]] = field(default_factory=dict)

    def add(self, case: str, provider: str, project: str, sample: Sample) -> None:
        self.samples.setdefault((case, provider, project), []).append(sample)

    def median(self, case: str, provider: str, project: str) -> float | None:
        found = self.samples.get((case, provider, project))
        return statistics.median(s.seconds for s in found) if found else None

    def stopped(self, case: str, provider: str, project: str) -> bool:
        return any(s.stopped for s in self.samples.get((case, provider, project), ()))

    def dump(self) -> list[dict[str, object]]:
        """Every sample, in the order taken, for a look behind the medians."""
        return [
            {"case": c, "provider": pr, "project": pj, "seconds": [s.seconds for s in found]}
            for (c, pr, pj), found in self.samples.items()
        ]

    def peak_mb(self, case: str, provider: str, project: str) -> float | None:
        found = [s.peak_rss_kib for s in self.samples.get((case, provider, project), ())]
        return max(found) * KiB / 1e6 if found and max(found) else None


class Bench:
    """One run: the data, both projects' Pythons, the results so far."""

    def __init__(self, work: Path, sizes: Sizes, ref_python: Path | None) -> None:
        self.work = work
        self.sizes = sizes
        self.data = make_data(work, sizes)
        self.pythons: dict[str, Path | str] = {"ours": OURS_PYTHON}
        if ref_python is not None:
            self.pythons["ref"] = ref_python
        self.results = Results()
        #: (provider, project, what) pushed untimed by :meth:`seed`.
        self.seeded: set[tuple[str, str, str]] = set()
        self.logs = work / "logs"
        self.logs.mkdir(parents=True, exist_ok=True)
        #: Everything the run writes, kept until it ends (see the module's docstring).
        self.scratch = work / "scratch"
        if self.scratch.exists():
            print(f"removing {self.scratch}, left by an interrupted run", flush=True)
            shutil.rmtree(self.scratch)
        self.scratch.mkdir()
        self._children = 0

    @property
    def projects(self) -> tuple[str, ...]:
        return tuple(p for p in PROJECTS if p in self.pythons)

    def order(self, rep: int) -> tuple[str, ...]:
        """Alternate which project goes first, so drift in the machine hits both alike.

        Position matters on the benchmark machine: the first fetch of a 256 MiB file after the
        two pushes took 1.1-1.3 s against 0.45-0.7 s for the second, whichever project ran it
        (SeaweedFS, 6 runs). Hence an even number of runs: each project takes each place
        equally often, and a median of an even count averages the middle two."""
        return self.projects if rep % 2 == 0 else self.projects[::-1]

    def env(
        self, store: servers.Store, project: str, assets_dir: Path | None = None
    ) -> dict[str, str]:
        base = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("MODELKIT_", "AWS_", "S3_", "GOOGLE_", "AZURE_", "STORAGE_EMU"))
        }
        return {
            **base,
            **store.env,
            "MODELKIT_STORAGE_PROVIDER": store.provider,
            "MODELKIT_STORAGE_BUCKET": store.bucket,
            "MODELKIT_STORAGE_PREFIX": f"bench-{project}",
            "MODELKIT_ASSETS_DIR": str(assets_dir or self.work),
        }

    def child(
        self,
        project: str,
        operation: str,
        params: Mapping[str, object],
        env: dict[str, str],
        limit_s: float = 900,
    ) -> dict[str, float]:
        """Run one operation in a fresh process of ``project``'s Python; its result. One still
        running after ``limit_s`` seconds is stopped: its result is then ``stopped`` (1), with
        its peak memory so far."""
        if self.sizes.large >= 64 * MiB:
            os.sync()  # no operation pays for the write-back of the one before
        self._children += 1
        result = self.work / "tmp" / f"result-{self._children}.json"
        result.parent.mkdir(exist_ok=True)
        log = self.logs / f"child-{self._children}-{project}-{operation}.log"
        command = [
            str(self.pythons[project]),
            str(CHILD),
            project,
            operation,
            str(result),
            json.dumps(params),
        ]
        with open(log, "wb") as out:
            process = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT)
        try:
            process.wait(limit_s)
        except subprocess.TimeoutExpired:
            peak = _peak_rss_kib(process.pid)
            process.kill()
            process.wait()
            print(f"  {project} {operation} stopped after {limit_s:g} s", flush=True)
            return {"seconds": limit_s, "peak_rss_kib": peak, "stopped": 1}
        if process.returncode != 0:
            tail = log.read_text(errors="replace")[-3000:]
            raise RuntimeError(f"{project} {operation} {params} failed ({log}):\n{tail}")
        values: dict[str, float] = json.loads(result.read_text())
        result.unlink()
        log.unlink()
        return values

    def wall(self, command: list[str], env: dict[str, str]) -> float:
        """Seconds a command takes, start to exit (its output is discarded)."""
        start = time.perf_counter()
        done = subprocess.run(
            command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
        )
        seconds = time.perf_counter() - start
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(command)} failed:\n{done.stderr[-3000:]}")
        return seconds

    def modelkit_command(self, project: str) -> str:
        return str(Path(self.pythons[project]).parent / "modelkit")

    # -- the cases -----------------------------------------------------------------------------

    def _record(
        self, case: str | None, provider: str, project: str, values: dict[str, float]
    ) -> bool:
        """Keep the sample under ``case`` (None: an untimed operation, nothing kept); False if
        the operation was stopped."""
        stopped = bool(values.get("stopped"))
        if case is not None:
            sample = Sample(values["seconds"], int(values["peak_rss_kib"]), stopped)
            self.results.add(case, provider, project, sample)
        return not stopped

    def push(
        self,
        case: str | None,
        store: servers.Store,
        project: str,
        what: str,
        name: str,
        limit_s: float = 900,
    ) -> bool:
        """Time a push (``case`` None: untimed, as :meth:`warm_up`); False if it was
        stopped."""
        params = {"path": str(self.data[what]), "name": name, "version": VERSION}
        if what in ("large", "huge"):
            _read(self.data[what])  # both projects find the source in the page cache
        values = self.child(project, "push", params, self.env(store, project), limit_s)
        return self._record(case, store.provider, project, values)

    def seed(self, store: servers.Store, project: str, what: str, name: str) -> bool:
        """Push ``what`` untimed, with :data:`SEED_SETTINGS`, so that its fetch can be measured
        after the timed push was stopped; False if that fails too."""
        params: dict[str, object] = {"path": str(self.data[what]), "name": name}
        params.update(version=VERSION, settings=SEED_SETTINGS[store.provider])
        print(f"  {project} push of {what} seeded untimed, for its fetch", flush=True)
        _delete(store, f"bench-{project}", name)  # what the stopped push left
        values = self.child(project, "push", params, self.env(store, project))
        self.seeded.add((store.provider, project, what))
        return not values.get("stopped")

    def fetch(
        self,
        case: str | None,
        store: servers.Store,
        project: str,
        name: str,
        assets_dir: Path,
        limit_s: float = 900,
    ) -> bool:
        """Time a fetch into an empty ``assets_dir`` (``case`` None: untimed); False if it was
        stopped."""
        shutil.rmtree(assets_dir, ignore_errors=True)
        assets_dir.mkdir(parents=True)
        params = {"spec": f"{name}:{VERSION}", "assets_dir": str(assets_dir)}
        env = self.env(store, project, assets_dir)
        values = self.child(project, "fetch", params, env, limit_s)
        return self._record(case, store.provider, project, values)

    def cached(self, store: servers.Store, project: str, name: str, assets_dir: Path) -> None:
        """A cached pinned fetch, per call from Python and as a whole CLI process."""
        spec = f"{name}:{VERSION}"
        params = {"spec": spec, "assets_dir": str(assets_dir), "calls": self.sizes.cached_calls}
        env = self.env(store, project, assets_dir)
        values = self.child(project, "fetch_cached", params, env)
        self.results.add("fetch_cached", store.provider, project, Sample(values["seconds"]))
        command = [self.modelkit_command(project), "assets", "fetch", spec]
        for _ in range(self.sizes.cli_reps):
            self.results.add("cli_fetch", store.provider, project, Sample(self.wall(command, env)))

    def copy_floor(self, rep: int) -> None:
        """For scale: ``cp -r`` of the many-file directory into a fresh folder, the least any
        tool can do to put those files on this disk (one process start, no Python)."""
        target = self.scratch / f"cp-{rep}"
        command = ["cp", "-r", str(self.data["many"]), str(target)]
        self.results.add("cp_many", "local", "cp", Sample(self.wall(command, dict(os.environ))))

    def cli_help(self) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("MODELKIT_")}
        for rep in range(self.sizes.cli_reps * 2):
            for project in self.order(rep):
                command = [self.modelkit_command(project), "assets", "--help"]
                self.results.add("cli_help", "-", project, Sample(self.wall(command, env)))

    def provider(self, store: servers.Store, turn: int = 0) -> None:
        """Every case on one store, projects alternating, large objects deleted once measured
        (one inode each: small files stay until the run ends). The huge file, measured once per
        store, goes first for one project on this store's ``turn`` and for the other on the
        next. (When modelkit-assets always went first, its local 1 GiB push took 1.6 and 2.1 s
        in two runs, modelkit's 0.4 s. Alternating, 4 pushes each outside the bench, both
        swung between 0.3 and 1.9 s: the VM's memory, not either project.)"""
        assets = self.scratch / "assets" / store.provider
        large_reps, large_pushes = self.sizes.large_reps, self.sizes.large_reps_on(store.provider)
        self.warm_up(store, assets / "warm-up")
        for rep in range(self.sizes.reps):
            if store.provider == "local":
                self.copy_floor(rep)
            for what in ("many", "few", "large")[: 3 if rep < large_reps else 2]:
                # Where the large file is pushed fewer times (fake-gcs), each push is fetched
                # again in the later runs, so that its fetch has as many samples as elsewhere.
                pushed_in = rep % large_pushes if what == "large" else rep
                name = f"{what}-r{pushed_in}"
                if pushed_in == rep:
                    for project in self.order(rep):
                        self.push(f"push_{what}", store, project, what, name)
                for project in self.order(rep):
                    fetched = assets / project / f"{what}-r{rep}"
                    self.fetch(f"fetch_{what}", store, project, name, fetched)
                    if what == "few":
                        self.cached(store, project, name, fetched)
                    if what == "large":
                        shutil.rmtree(fetched)
                        if rep + large_pushes >= large_reps:  # its last fetch
                            _delete(store, f"bench-{project}", name)
        for project in self.order(turn):  # peak memory: one huge object on the server at a time
            limit = self.sizes.huge_limit_s
            pushed = self.push("push_huge", store, project, "huge", "huge", limit)
            if not pushed and project == "ours" and store.provider in SEED_SETTINGS:
                pushed = self.seed(store, project, "huge", "huge")
            if pushed:
                self.fetch("fetch_huge", store, project, "huge", assets / project / "huge", limit)
            _delete(store, f"bench-{project}", "huge")
            shutil.rmtree(assets / project / "huge", ignore_errors=True)

    def warm_up(self, store: servers.Store, assets_dir: Path) -> None:
        """Push and fetch the large file once, untimed, before the timed runs on a fresh server.

        A server's first large write is its slowest, whoever makes it: the first 256 MiB push
        to a fresh SeaweedFS took 2.7-3.0 s against 1.6-2.1 s for the later ones. In full runs
        modelkit-assets, first in run 0, always made it; in a separate run where modelkit went
        first, modelkit's pushes took 2.99 s, then 2.07 and 1.94 s (ours 1.86-1.95 s). The
        server's state is what this warms, so which project does it does not matter: it is
        modelkit-assets (modelkit's 256 MiB push to fake-gcs takes 30 s)."""
        self.push(None, store, "ours", "large", "warm-up")
        self.fetch(None, store, "ours", "warm-up", assets_dir)
        _delete(store, "bench-ours", "warm-up")
        shutil.rmtree(assets_dir)


def _read(path: Path) -> None:
    """Read a file through, so that the next reader finds it in the page cache (else whichever
    project pushes it first pays for the disk)."""
    with open(path, "rb", buffering=0) as f:
        while f.read(8 * MiB):
            pass


def _peak_rss_kib(pid: int) -> int:
    """A running process's peak resident memory so far (``VmHWM``), in KiB."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def _delete(store: servers.Store, prefix: str, name: str) -> None:
    """Remove every object of asset ``name`` (the servers keep objects in memory)."""
    from modelkit_assets.store import make_driver

    saved = dict(os.environ)
    os.environ.update(store.env)
    try:
        driver = make_driver(store.provider, store.bucket, None, 60.0)
        for object_name in list(driver.iterate_objects(f"{prefix}/{name}")):
            driver.delete_object(object_name)
    finally:
        os.environ.clear()
        os.environ.update(saved)


# -- the table ------------------------------------------------------------------------------------


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 1e-3:
        return f"{seconds * 1e6:.1f} us"
    if seconds < 1:
        return f"{seconds * 1e3:.0f} ms"
    return f"{seconds:.2f} s"


@dataclass(frozen=True)
class Row:
    operation: str
    provider: str
    ours: str
    ref: str
    ratio: str
    target: str
    status: str


def _time_cell(results: Results, case: str, provider: str, project: str) -> str:
    seconds = results.median(case, provider, project)
    stopped = results.stopped(case, provider, project)
    return ("> " if stopped else "") + _duration(seconds)


def _speed_row(
    results: Results, operation: str, case: str, provider: str, target: float | None
) -> Row:
    ours, ref = results.median(case, provider, "ours"), results.median(case, provider, "ref")
    ratio = ref / ours if ours and ref else None
    status = "-" if ratio is None or target is None else ("ok" if ratio >= target else "MISSED")
    bound = "> " if results.stopped(case, provider, "ref") else ""
    if results.stopped(case, provider, "ours"):
        ratio, status, bound = None, "MISSED", ""
    return Row(
        operation,
        servers.SERVER_NAMES.get(provider, provider),
        _time_cell(results, case, provider, "ours"),
        _time_cell(results, case, provider, "ref"),
        "-" if ratio is None else f"{bound}{ratio:.1f}x",
        "-" if target is None else f">= {target:g}x",
        status,
    )


def _scaling_row(results: Results, operation: str, kind: str, provider: str) -> Row:
    def factor(project: str) -> float | None:
        many, few = (
            results.median(f"{kind}_many", provider, project),
            results.median(f"{kind}_few", provider, project),
        )
        return many / few if many and few else None

    ours, ref = factor("ours"), factor("ref")
    return Row(
        operation,
        servers.SERVER_NAMES.get(provider, provider),
        "-" if ours is None else f"{ours:.1f}x the time",
        "-" if ref is None else f"{ref:.1f}x the time",
        "-",
        "<= ~10x",
        "-" if ours is None else ("ok" if ours <= 11 else "MISSED"),
    )


def _memory_row(results: Results, operation: str, case: str, provider: str, limit_mb: float) -> Row:
    def cell(project: str) -> str:
        peak, seconds = (
            results.peak_mb(case, provider, project),
            results.median(case, provider, project),
        )
        if peak is None:
            return "-"
        if results.stopped(case, provider, project):
            return f"{peak:.0f} MB (stopped after {_duration(seconds)})"
        return f"{peak:.0f} MB ({_duration(seconds)})"

    ours = results.peak_mb(case, provider, "ours")
    return Row(
        operation,
        servers.SERVER_NAMES.get(provider, provider),
        cell("ours"),
        cell("ref"),
        "-",
        f"< {limit_mb:g} MB",
        "-" if ours is None else ("ok" if ours < limit_mb else "MISSED"),
    )


#: Required speed-ups by (case, provider); None means "measured, no target".
SPEEDUP_TARGETS: Final[dict[str, Callable[[str], float | None]]] = {
    "fetch_many": lambda p: {"local": 1.8, "s3": 2.5}.get(p),
    "push_many": lambda p: {"local": 1.8, "s3": 2.5}.get(p),
    "fetch_large": lambda p: 1.0,
    "push_large": lambda p: 1.0,
    "fetch_cached": lambda p: 10.0,
    "cli_fetch": lambda p: 4.0,
}


def table(results: Results, sizes: Sizes, providers: list[str]) -> list[Row]:
    label = sizes.label
    rows = [_speed_row(results, "`modelkit assets --help`", "cli_help", "-", 5.0)]
    speed = [
        ("fetch a directory of " + label["many"], "fetch_many"),
        ("push a directory of " + label["many"], "push_many"),
        ("fetch " + label["large"], "fetch_large"),
        ("push " + label["large"], "push_large"),
        ("cached pinned `fetch_asset` (per call)", "fetch_cached"),
        ("cached `modelkit assets fetch` (CLI)", "cli_fetch"),
    ]
    for operation, case in speed:
        for provider in providers:
            rows.append(
                _speed_row(results, operation, case, provider, SPEEDUP_TARGETS[case](provider))
            )
    for kind in ("fetch", "push"):
        operation = f"{kind}: {sizes.files} files vs {sizes.few_files}"
        rows.extend(_scaling_row(results, operation, kind, p) for p in providers)
    for size in ("huge", "large"):
        for kind in ("push", "fetch"):
            operation = f"peak RSS, {kind} {label[size]}"
            rows.extend(
                _memory_row(results, operation, f"{kind}_{size}", p, 150) for p in providers
            )
    return rows


def markdown(rows: list[Row]) -> str:
    header = ("operation", "store", "modelkit-assets", "modelkit", "speed-up", "target", "")
    lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    for row in rows:
        cells = (row.operation, row.provider, row.ours, row.ref, row.ratio, row.target, row.status)
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _floor_line(results: Results, sizes: Sizes) -> str:
    seconds = results.median("cp_many", "local", "cp")
    if seconds is None:
        return ""
    return (
        f"\nFor scale, `cp -r` of the directory of {sizes.label['many']} into a fresh folder of the"
        f" same disk took {_duration(seconds)} (median, process start included).\n"
    )


def _seeded_line(bench: Bench) -> str:
    seeded = sorted({servers.SERVER_NAMES[provider] for provider, _, _ in bench.seeded})
    if not seeded:
        return ""
    return (
        f" On {', '.join(seeded)}, modelkit-assets' stopped push of the huge file was done"
        " again untimed, in one resumable piece, so that its fetch could be measured."
    )


def report(
    rows: list[Row], sizes: Sizes, bench: Bench, providers: list[str], minutes: float
) -> str:
    ours = _version(OURS_PYTHON, "modelkit-assets-core")
    ref = _version(bench.pythons["ref"], "modelkit") if "ref" in bench.pythons else "not installed"
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
    ).stdout.strip()
    servers_used = ", ".join(servers.SERVER_NAMES[p] for p in providers)
    command = "python bench/run.py" + (" --smoke" if sizes.files == SMOKE.files else "")
    python = platform.python_version()
    today, helps = datetime.date.today().isoformat(), sizes.cli_reps * 2
    large, gcs, limit = sizes.large_reps, sizes.large_reps_on("gcs"), sizes.huge_limit_s
    return f"""# Benchmark: modelkit-assets vs modelkit

Run on {today} by `{command}` ({minutes:.1f} minutes): modelkit-assets-core
{ours} (commit {commit or "?"}) against modelkit {ref}; Python {python}, {os.cpu_count()} cores
shared by client and server; stores: {servers_used}.

Each figure is the median of {sizes.reps} runs ({large} for the large file, pushed {gcs} times on
fake-gcs, {helps} for `--help`, {sizes.cli_reps} a run for the CLI fetch), the two projects taking
turns, each first in half of the runs (on this machine the first operation after the two
pushes is the slower one, whichever project runs it), each operation in a fresh process of
its own virtualenv, on the same data and the same server.
Speed-up = modelkit's time / modelkit-assets' time. A push is
`StorageProvider().new(path, name, "0.0")`, a fetch `AssetsManager().fetch_asset("name:0.0")`
into an empty assets dir (modelkit-assets also checks every file's BLAKE3 against the meta),
both timed from building the store or manager to the return, with the cloud SDK already
imported. CLI figures are whole processes, start to exit. Peak RSS is the child process's
`VmHWM` (Python, the SDK and the transfer included); the huge file is pushed and fetched once,
one provider at a time, and an operation still running after {limit:g} s is stopped: its time
is then a lower bound, its peak memory the peak so far.{_seeded_line(bench)} The source of a
large push is read once just before it, so that both projects find it in the page cache.
Every sample behind the medians, in the order taken: `.work/samples.json` beside this file.

{markdown(rows)}{_floor_line(bench.results, sizes)}"""


# -- main -----------------------------------------------------------------------------------------


def run(args: argparse.Namespace) -> int:
    started = time.monotonic()
    sizes = SMOKE if args.smoke else FULL
    if args.reps:
        sizes = Sizes(**{**sizes.__dict__, "reps": args.reps})
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    ref = None if args.no_reference else reference_python(Path(args.reference_venv), not args.smoke)
    if ref is None:
        print("modelkit is not installed: timing modelkit-assets alone", flush=True)
    # modelkit's wheel got its bytecode from pip; our editable install gets it here, so that
    # no timed child compiles our sources (PYTHONDONTWRITEBYTECODE keeps Python from caching).
    compileall.compile_dir(ROOT / "packages", quiet=1)
    bench = Bench(work, sizes, ref)
    providers = args.providers.split(",")
    bench.cli_help()
    try:
        for turn, provider in enumerate(providers):
            print(f"{provider}: starting {servers.SERVER_NAMES[provider]} ...", flush=True)
            with servers.started(provider, work, bench.scratch) as store:
                bench.provider(store, turn)
    finally:
        shutil.rmtree(bench.scratch, ignore_errors=True)
    rows = table(bench.results, sizes, providers)
    samples = work / "samples.json"
    samples.write_text(json.dumps(bench.results.dump(), indent=1) + "\n")
    print(f"every sample: {samples}", flush=True)
    text = report(rows, sizes, bench, providers, (time.monotonic() - started) / 60)
    print("\n" + text)
    if args.out:
        _write_keeping_anchors(Path(args.out), text)
        print(f"written to {args.out}")
    missed = [r for r in rows if r.status == "MISSED"]
    return 1 if args.check and missed else 0


def _write_keeping_anchors(path: Path, text: str) -> None:
    """Write the table, keeping the section bench/anchors.py wrote there."""
    import anchors

    old = path.read_text() if path.exists() else ""
    path.write_text(text)
    if anchors.BEGIN in old and anchors.END in old:
        section = old.split(anchors.BEGIN, 1)[1].split(anchors.END, 1)[0]
        anchors.write_section(path, section.lstrip("\n"))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, one repetition")
    parser.add_argument("--providers", default=",".join(servers.PROVIDERS))
    parser.add_argument("--reps", type=int, default=0, help="repetitions (default 4, smoke 1)")
    parser.add_argument("--work", default=str(BENCH / ".work"), help="data, venv and logs")
    parser.add_argument(
        "--out",
        default=None,
        help="write the table here (default: bench/RESULTS.md, not in --smoke)",
    )
    parser.add_argument(
        "--reference-venv",
        default=str(BENCH / ".work" / "modelkit-venv"),
        help="modelkit's virtualenv (made on first use; --smoke only uses it if it is there)",
    )
    parser.add_argument("--no-reference", action="store_true", help="do not time modelkit")
    parser.add_argument("--check", action="store_true", help="exit 1 if a target is missed")
    parser.add_argument(
        "--anchors", action="store_true", help="run bench/anchors.py instead (s5cmd, rclone)"
    )
    args, rest = parser.parse_known_args()
    if args.anchors:
        import anchors

        return anchors.main([*rest, *(["--smoke"] if args.smoke else [])])
    if rest:
        parser.error(f"unrecognized arguments: {' '.join(rest)}")
    if args.out is None and not args.smoke:
        args.out = str(BENCH / "RESULTS.md")
    for provider in args.providers.split(","):
        if provider not in servers.PROVIDERS:
            parser.error(
                f"unknown provider {provider!r}: choose among {', '.join(servers.PROVIDERS)}"
            )
    # Stopped from outside, still stop the servers (the `with` blocks): SIGTERM as ^C.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    with contextlib.suppress(KeyboardInterrupt):
        return run(args)
    return 130


if __name__ == "__main__":
    sys.exit(main())
