"""``modelkit assets cache list | verify | prune | rm`` (DESIGN.md 10, issue 19), through the CLI
and the API, on the local provider and on GCS."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import pytest

from modelkit_assets import AssetsManager, StorageProvider
from modelkit_assets.cache import AssetsCache, holds
from modelkit_assets.cache.prune import prune
from modelkit_assets.cache.sizes import parse_age, parse_size
from tests.cache_support import cached_store, count_downloads, set_last_use
from tests.cli_runner import as_json, fails, ok, run
from tests.conftest import StoreEnv
from tests.guarantees.assets import KIB, make_file, make_tree, tree_bytes

__all__ = ["cached_store"]

DATA = Path(__file__).parent / "data"


@pytest.fixture
def two_versions(cached_store: StoreEnv, tmp_path: Path) -> StorageProvider:
    """``model`` 0.0 and 0.1 (folders of 3 files; 0.1 changes w.bin) and ``weights`` 0.0."""
    source = make_tree(tmp_path / "model", {"a.txt": 100, "w.bin": 200 * KIB, "sub/c": 3000})
    store = StorageProvider()
    store.new(str(source), "model")
    make_file(source / "w.bin", 200 * KIB)
    store.update(str(source), "model", "0.1")
    store.new(str(make_file(tmp_path / "weights.bin", 50 * KIB)), "weights")
    return store


def fetch_all(*specs: str) -> None:
    """Fetch ``specs``, then let go of them: this process no longer uses them, so a prune may
    take them (test_cache_evict.py shows what holding means)."""
    manager = AssetsManager()
    for spec in specs:
        manager.fetch_asset(spec)
    holds.release_all()


def flip(path: Path, offset: int = 0) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x55
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("cached_store", ["local", "gcs"], indirect=True)
def test_list_shows_each_version_with_its_size_last_use_and_state(
    two_versions: StorageProvider, cached_store: StoreEnv
) -> None:
    fetch_all("model:0.0", "model:0.1", "weights:0.0")
    assets = cached_store.assets_dir
    set_last_use(assets, "model", "0.0", 1_000_000_000)
    (assets / "model" / ".0.2.partial").mkdir()
    (assets / "model" / ".0.2.partial" / "a.txt").write_bytes(b"x" * 10)
    (assets / "weights" / ".0.1.tmp-dead").write_bytes(b"y" * 7)
    listing = as_json(ok("cache", "list", "--json"))
    rows = {(e["name"], e["version"], e["kind"]): e for e in listing["entries"]}
    assert set(rows) == {
        ("model", "0.0", "version"),
        ("model", "0.1", "version"),
        ("model", "0.2", "partial"),
        ("weights", "0.0", "version"),
        ("weights", "0.1", "debris"),
    }
    first = rows["model", "0.0", "version"]
    assert first["bytes"] == 100 + 200 * KIB + 3000
    assert (first["files"], first["recorded"], first["state"]) == (3, True, "complete")
    assert first["last_used"].startswith("2001-09-09")
    assert rows["model", "0.2", "partial"]["state"] == "partial download (resumable)"
    assert rows["weights", "0.1", "debris"]["bytes"] == 7
    assert listing["assets_dir"] == str(assets)
    only = as_json(ok("cache", "list", "model:0", "--json"))["entries"]
    assert {(e["version"], e["kind"]) for e in only} == {
        ("0.0", "version"),
        ("0.1", "version"),
        ("0.2", "partial"),
    }
    table = ok("cache", "list", "weights").stdout
    assert "weights" in table
    assert "debris of a dead process" in table
    assert "model" not in table


def test_a_cache_written_by_modelkit_is_listed_as_such_and_verified_by_presence(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assets, bucket = tmp_path / "assets", tmp_path / "bucket"
    shutil.copytree(DATA / "modelkit_cache", assets)
    shutil.copytree(DATA / "modelkit_store", bucket)
    monkeypatch.setenv("MODELKIT_ASSETS_DIR", str(assets))
    entries = as_json(ok("cache", "list", "--json"))["entries"]
    assert {(e["version"], e["state"]) for e in entries} == {
        ("0.0", "complete, no record"),
        ("0.1", "complete, no record"),
        ("1.0", "incomplete version (no SUCCESS marker)"),  # modelkit's, killed in place
    }
    unchecked = as_json(ok("cache", "verify", "--json"))["versions"]
    assert {v["checked_by"] for v in unchecked} == {"unchecked"}
    monkeypatch.setenv("MODELKIT_STORAGE_PROVIDER", "local")
    monkeypatch.setenv("MODELKIT_STORAGE_BUCKET", str(bucket))
    checked = as_json(ok("cache", "verify", "--json"))["versions"]
    assert {(v["version"], v["checked_by"], v["ok"]) for v in checked} == {
        ("0.0", "presence", True),
        ("0.1", "presence", True),
    }
    (assets / "category" / "model" / "0.1" / "sub" / "nested.txt").unlink()
    line = fails("cache", "verify")
    assert "category/model:0.1[sub/nested.txt]" in line
    ok("cache", "verify", "--repair")
    ok("cache", "verify")
    assert (assets / "category" / "model" / "0.1" / "sub" / "nested.txt").is_file()
    report = as_json(ok("cache", "prune", "--yes", "--json"))
    assert [(r["version"], r["kind"]) for r in report["removed"]] == [("1.0", "debris")]
    assert not (assets / "category" / "model" / "1.0").exists()


@pytest.mark.parametrize("cached_store", ["local", "gcs"], indirect=True)
def test_verify_names_each_damaged_file_and_repair_fetches_only_those(
    two_versions: StorageProvider, cached_store: StoreEnv, monkeypatch: pytest.MonkeyPatch
) -> None:
    fetch_all("model:0.0", "model:0.1", "weights:0.0")
    assert ok("cache", "verify").stdout.count("ok ") == 3
    root = cached_store.assets_dir / "model"
    flip(root / "0.1" / "w.bin", 1000)  # same size, other bytes
    (root / "0.0" / "sub" / "c").unlink()  # deleted by hand
    (root / "0.0" / "stray.txt").write_text("not part of it")
    line = fails("cache", "verify")
    assert "2 damaged or missing files" in line
    assert "model:0.0[sub/c]" in line
    assert "model:0.1[w.bin]" in line
    report = {
        v["version"]: v for v in as_json(run("cache", "verify", "model", "--json"))["versions"]
    }
    assert [d["problem"] for d in report["0.1"]["damaged"]] == ["modified"]
    assert [d["problem"] for d in report["0.0"]["damaged"]] == ["missing"]
    assert report["0.0"]["extra_files"] == ["stray.txt"]

    downloads = count_downloads(two_versions, monkeypatch)
    manager_store = two_versions
    monkeypatch.setattr("modelkit_assets.cli_cache.open_store", lambda prefix: manager_store)
    repaired = as_json(ok("cache", "verify", "--repair", "--json"))["versions"]
    assert all(v["ok"] for v in repaired)
    # 0.1's w.bin comes from the store; 0.0's sub/c is cloned from 0.1, which has it too
    assert [o.rsplit("/", 2)[1:] for o in downloads["objects"]] == [["0.1", "w.bin"]]
    ok("cache", "verify")
    assert AssetsManager().fetch_asset("model:0.1", return_info=True)["from_cache"]


def test_verify_without_a_record_checks_the_store_meta_and_adopts_it(
    two_versions: StorageProvider, cached_store: StoreEnv
) -> None:
    fetch_all("model:0.0")
    records = cached_store.assets_dir / ".cache" / ".records"
    shutil.rmtree(records)  # as if it had been cached before records existed
    (version,) = as_json(ok("cache", "verify", "--json"))["versions"]
    assert (version["checked_by"], version["against"], version["bytes"]) == (
        "digest",
        "store",
        100 + 200 * KIB + 3000,
    )
    assert [p.name for p in records.iterdir()] == ["model%3A0.0.json"]
    flip(cached_store.assets_dir / "model" / "0.0" / "a.txt")
    assert "model:0.0[a.txt]" in fails("cache", "verify")


def test_verify_hashes_at_hashing_speed(cached_store: StoreEnv, tmp_path: Path) -> None:
    """BLAKE3 on every core: 128 MiB in about 0.05 s on the test machine (1 GiB: 0.2-0.3 s)."""
    big = tmp_path / "big"
    block = bytearray(make_file(tmp_path / "block", 1024 * KIB).read_bytes())
    with open(big, "wb") as f:
        for index in range(128):
            block[:4] = index.to_bytes(4, "little")
            f.write(block)
    store = StorageProvider()
    store.new(str(big), "big")
    store.new(str(make_tree(tmp_path / "many", {f"f{i}": 10 * KIB for i in range(200)})), "many")
    fetch_all("big:0.0", "many:0.0")
    started = time.monotonic()
    report = as_json(ok("cache", "verify", "--json"))
    assert time.monotonic() - started < 3.0
    assert sum(v["bytes"] for v in report["versions"]) == 128 * 1024 * KIB + 200 * 10 * KIB


def test_prune_evicts_least_recently_used_versions_until_the_cache_fits(
    two_versions: StorageProvider, cached_store: StoreEnv
) -> None:
    fetch_all("model:0.0", "model:0.1", "weights:0.0")
    assets = cached_store.assets_dir
    for age, (name, version) in enumerate([("model", "0.1"), ("weights", "0.0"), ("model", "0.0")]):
        set_last_use(assets, name, version, time.time() - 3600 * (age + 1))
    folder = 100 + 200 * KIB + 3000
    dry = as_json(ok("cache", "prune", "--max-size", str(folder + 10 * KIB), "--dry-run", "--json"))
    assert [r["version"] for r in dry["removed"]] == ["0.0", "0.0"]  # model:0.0, then weights
    assert dry["dry_run"]
    assert AssetsCache(str(assets)).is_complete("model", "0.0")
    assert "pass --yes" in fails("cache", "prune", "--max-size", "250KiB", code=2)
    assert "Aborted" in run("cache", "prune", "--max-size", "250KiB", input="n\n").stderr
    assert AssetsCache(str(assets)).is_complete("model", "0.0")
    report = as_json(ok("cache", "prune", "--max-size", "250KiB", "--yes", "--json"))
    assert [(r["name"], r["version"]) for r in report["removed"]] == [
        ("model", "0.0"),
        ("weights", "0.0"),
    ]
    assert report["bytes_after"] == folder <= 250 * KIB
    cache = AssetsCache(str(assets))
    assert not cache.is_complete("model", "0.0")
    assert cache.is_complete("model", "0.1")
    assert sorted(p.name for p in (assets / ".cache" / ".records").iterdir()) == [
        "model%3A0.1.json"
    ]
    info = AssetsManager().fetch_asset("model:0.0", return_info=True)  # comes back on demand
    assert not info["from_cache"]


def test_prune_by_age_keeps_partial_downloads_unless_age_or_space_ask(
    two_versions: StorageProvider, cached_store: StoreEnv
) -> None:
    fetch_all("model:0.0", "weights:0.0")
    assets = cached_store.assets_dir
    old = time.time() - 40 * 86400
    set_last_use(assets, "model", "0.0", old)
    partial = assets / "model" / ".0.1.partial"
    partial.mkdir()
    (partial / "a.txt").write_bytes(b"p" * 50)
    debris = assets / "model" / ".0.1.tmp-0123abcd"
    debris.write_bytes(b"d" * 5)
    report = as_json(ok("cache", "prune", "--yes", "--json"))  # no bound: debris only
    assert [(r["kind"], r["version"]) for r in report["removed"]] == [("debris", "0.1")]
    assert [(r["kind"], r["reason"]) for r in report["kept"]] == [
        ("partial", "resumable partial download")
    ]
    report = as_json(ok("cache", "prune", "--older-than", "30d", "--yes", "--json"))
    assert [(r["name"], r["version"]) for r in report["removed"]] == [("model", "0.0")]
    assert partial.is_dir()  # written just now
    import os

    os.utime(partial / "a.txt", (old, old))
    os.utime(partial, (old, old))
    report = prune(AssetsCache(str(assets)), older_than=parse_age("30d"))
    assert [r.entry.kind for r in report.removed] == ["partial"]
    assert not partial.exists()
    assert AssetsCache(str(assets)).is_complete("weights", "0.0")


def test_rm_removes_the_versions_specs_designate(
    two_versions: StorageProvider, cached_store: StoreEnv
) -> None:
    fetch_all("model:0.0", "model:0.1", "weights:0.0")
    assert "nothing in the cache matches nope" in fails("cache", "rm", "nope", "--yes")
    assert "pass --yes" in fails("cache", "rm", "model:0.1", code=2)
    dry = as_json(ok("cache", "rm", "model:0", "--dry-run", "--json"))
    assert sorted(r["version"] for r in dry["removed"]) == ["0.0", "0.1"]
    ok("cache", "rm", "model:0.1", "--yes")
    cache = AssetsCache(str(cached_store.assets_dir))
    assert not cache.is_complete("model", "0.1")
    assert cache.is_complete("model", "0.0")
    ok("cache", "rm", "w*", "--yes")
    assert not cache.is_complete("weights", "0.0")
    assert [e["version"] for e in as_json(ok("cache", "list", "--json"))["entries"]] == ["0.0"]


def test_sizes_and_ages_are_written_as_people_write_them(cached_store: StoreEnv) -> None:
    assert parse_size("5GB") == 5 * 10**9
    assert parse_size("500MiB") == 500 * 2**20
    assert parse_size("1.5TB") == 1_500_000_000_000
    assert parse_size("1234") == 1234
    assert parse_age("30d") == 30 * 86400
    assert parse_age("12h") == 12 * 3600
    assert "--max-size must be bytes" in fails("cache", "prune", "--max-size", "5 parsecs", code=2)
    assert "--older-than must be" in fails("cache", "prune", "--older-than", "soon", code=2)


def test_fetch_json_reports_what_was_reused(
    two_versions: StorageProvider, cached_store: StoreEnv
) -> None:
    first = json.loads(ok("fetch", "model:0.0", "--json").stdout)
    assert (first["reused_files"], first["reused_bytes"]) == (0, 0)
    second = json.loads(ok("fetch", "model:0.1", "--json").stdout)
    assert (second["reused_files"], second["reused_bytes"]) == (2, 3100)
    assert second["received_bytes"] == 200 * KIB
    assert tree_bytes(second["path"])["a.txt"] == tree_bytes(first["path"])["a.txt"]


@pytest.mark.parametrize("cached_store", ["local"], indirect=True)
def test_a_version_of_no_system_is_a_usage_error_not_an_empty_cache(
    cached_store: StoreEnv, tmp_path: Path
) -> None:
    """``cache list 'x:abc'`` answered "0 entries" with exit 0: a typo looked like an empty
    cache."""
    StorageProvider().new(str(make_file(tmp_path / "f", KIB)), "model", "0.0")
    AssetsManager().fetch_asset("model:0.0")
    for command in (("list", "model:abc"), ("rm", "model:abc", "--yes"), ("verify", "model:x")):
        assert "no installed versioning system" in fails("cache", *command, code=2)
    assert "model" in ok("cache", "list", "model:0").stdout
