"""One timed operation in a fresh process, for modelkit-assets ("ours") or modelkit ("ref").

Run by ``bench/run.py`` with the Python of the project under test:

    PYTHON child.py ours|ref push|fetch|fetch_cached RESULT.json '{"...": ...}'

The store is configured through ``MODELKIT_STORAGE_*`` and the provider's own variables, which
both projects read. The cloud SDK and the project are imported before the clock starts (both
projects pay that once per process; the CLI cases measure it), so the figure is the operation
itself: building the store or manager, then pushing or fetching. The result file gets the
seconds, the resident memory before the operation and the process's peak resident memory
(``VmHWM``), both in KiB.
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import time
from typing import Any

SDK_MODULES = {
    "s3": "boto3",
    "gcs": "google.cloud.storage",
    "az": "azure.storage.blob",
}


def _status_kib(field: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def _import_everything(project: str) -> None:
    import importlib

    sdk = SDK_MODULES.get(os.environ.get("MODELKIT_STORAGE_PROVIDER", ""))
    if sdk:
        importlib.import_module(sdk)
    if project == "ours":
        import modelkit_assets.manager
        import modelkit_assets.store  # noqa: F401
    else:
        import modelkit.assets.manager
        import modelkit.assets.remote  # noqa: F401


def push(
    project: str, path: str, name: str, version: str, settings: dict[str, Any] | None = None
) -> None:
    """``settings``: driver settings of modelkit-assets' store (an untimed seeding push)."""
    if project == "ours":
        from modelkit_assets import StorageProvider

        StorageProvider(**(settings or {})).new(path, name, version)
    else:
        from modelkit.assets.remote import StorageProvider as RefStorageProvider

        RefStorageProvider().new(path, name, version)


def _manager(project: str, assets_dir: str) -> Any:
    if project == "ours":
        from modelkit_assets import AssetsManager

        return AssetsManager(assets_dir=assets_dir)
    from modelkit.assets.manager import AssetsManager as RefAssetsManager

    return RefAssetsManager(assets_dir=assets_dir)


def fetch(project: str, spec: str, assets_dir: str) -> None:
    info = _manager(project, assets_dir).fetch_asset(spec, return_info=True)
    if info["from_cache"] or not os.path.exists(info["path"]):
        raise SystemExit(f"{spec} was not downloaded: {info}")


def fetch_cached(project: str, spec: str, assets_dir: str, calls: int) -> float:
    """Seconds per call of a cached pinned ``fetch_asset``: the median of 5 batches."""
    manager = _manager(project, assets_dir)
    if not manager.fetch_asset(spec, return_info=True)["from_cache"]:
        raise SystemExit(f"{spec} is not cached in {assets_dir}")
    batch = max(1, calls // 5)
    per_call = []
    for _ in range(5):
        start = time.perf_counter()
        for _ in range(batch):
            manager.fetch_asset(spec)
        per_call.append((time.perf_counter() - start) / batch)
    return statistics.median(per_call)


def main(argv: list[str]) -> None:
    project, operation, result_path, params = argv[1], argv[2], argv[3], json.loads(argv[4])
    _import_everything(project)
    rss_before = _status_kib("VmRSS")
    start = time.perf_counter()
    if operation == "push":
        push(project, params["path"], params["name"], params["version"], params.get("settings"))
        seconds = time.perf_counter() - start
    elif operation == "fetch":
        fetch(project, params["spec"], params["assets_dir"])
        seconds = time.perf_counter() - start
    elif operation == "fetch_cached":
        seconds = fetch_cached(project, params["spec"], params["assets_dir"], params["calls"])
    else:
        raise SystemExit(f"unknown operation {operation!r}")
    result = {
        "seconds": seconds,
        "rss_before_kib": rss_before,
        "peak_rss_kib": _status_kib("VmHWM"),
    }
    with open(result_path, "w") as f:
        json.dump(result, f)


if __name__ == "__main__":
    main(sys.argv)
