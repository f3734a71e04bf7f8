"""Incremental updates (issue 20): bytes sent and time taken by an update that changes one small
file, with the unchanged files copied inside the store and without (the driver's
``server_side_copy`` capability withdrawn), on each provider's server.

    python bench/incremental.py [--repeat 3] [--providers local,s3,gcs,az]

Bytes are counted on the wire by the test suite's fault proxy (client to server, and back);
the local provider has no wire. Each figure is the median of ``--repeat`` updates, each of a
fresh asset, in this process (the update runs the CLI's own code: ``StorageProvider.update_next``).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Final

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(1, str(Path(__file__).resolve().parents[1]))

from tests.faultproxy import FaultProxy, Stats
from tests.guarantees.faults import endpoint_port, redirected

import servers
from modelkit_assets import StorageProvider, push
from modelkit_assets.records import SERVER_SIDE_COPY

KiB: Final = 1024
MiB: Final = 1024 * KiB
#: The folders updated: the issue's 16 MiB of 9 files, and many small files.
FOLDERS: Final = {
    "16 MiB, 9 files": {**{f"w{i}.bin": 2 * MiB for i in range(8)}, "config.json": 4 * KiB},
    "1000 x 10 KiB": {f"d{i % 10}/f{i:04}": 10 * KiB for i in range(1000)},
}
CHANGED: Final = {"16 MiB, 9 files": "config.json", "1000 x 10 KiB": "d3/f0123"}


def make_folder(root: Path, sizes: dict[str, int]) -> None:
    for part, size in sizes.items():
        path = root / part
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(os.urandom(size))


@contextlib.contextmanager
def environment(values: dict[str, str]) -> Iterator[None]:
    saved = {key: os.environ.get(key) for key in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def one_update(store: servers.Store, folder: str, copy: bool, work: Path) -> tuple[float, int]:
    """Seconds and bytes sent of one update of a fresh asset of ``folder``."""
    source = work / uuid.uuid4().hex
    make_folder(source, FOLDERS[folder])
    name = f"bench/{uuid.uuid4().hex[:8]}"
    StorageProvider().new(str(source), name)
    (source / CHANGED[folder]).write_bytes(os.urandom(FOLDERS[folder][CHANGED[folder]]))
    proxy = FaultProxy(endpoint_port(store.env)) if store.env else None
    with (
        proxy or contextlib.nullcontext(),
        environment(redirected(store.env, proxy.port) if proxy else {}),
    ):
        provider = StorageProvider()
        if not copy:
            provider.driver.capabilities = provider.driver.capabilities - {SERVER_SIDE_COPY}
        if proxy:
            proxy.stats = Stats()
        started = time.perf_counter()
        plan = provider.update_next(str(source), name)
        elapsed = time.perf_counter() - started
        sent = proxy.stats.bytes_up if proxy else 0
    sizes = FOLDERS[folder]
    copied = sum(size > push.COPY_MIN and part != CHANGED[folder] for part, size in sizes.items())
    assert plan.reused_files == (copied if copy else 0), plan
    shutil.rmtree(source)
    return elapsed, sent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--providers", default=",".join(servers.PROVIDERS))
    parser.add_argument("--folders", default=",".join(FOLDERS), help="comma-separated")
    parser.add_argument(
        "--copy-min", type=int, default=None, help="copy files past this size (default COPY_MIN)"
    )
    args = parser.parse_args()
    if args.copy_min is not None:
        push.COPY_MIN = args.copy_min  # type: ignore[misc]  # a measurement of the choice
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-incremental-") as tmp:
        work = Path(tmp)
        for provider in args.providers.split(","):
            (work / provider).mkdir()
            with servers.started(provider, work / provider, work / "scratch") as store:
                env = {
                    **store.env,
                    "MODELKIT_STORAGE_PROVIDER": store.provider,
                    "MODELKIT_STORAGE_BUCKET": store.bucket,
                    "MODELKIT_ASSETS_DIR": str(work / "assets"),
                }
                (work / "assets").mkdir(exist_ok=True)
                with environment(env):
                    for folder in args.folders.split(","):
                        for copy in (True, False):
                            runs = [
                                one_update(store, folder, copy, work) for _ in range(args.repeat)
                            ]
                            seconds = statistics.median(r[0] for r in runs)
                            sent = statistics.median(r[1] for r in runs)
                            rows.append((provider, folder, copy, seconds, sent))
                            print(
                                f"{servers.SERVER_NAMES[provider]:12} {folder:16} "
                                f"{'copy' if copy else 'upload':6} {seconds * 1000:8.0f} ms "
                                f"{sent / 1000:10.1f} KB sent",
                                flush=True,
                            )


if __name__ == "__main__":
    main()
