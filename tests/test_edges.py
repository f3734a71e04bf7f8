"""Answers at the edges (issue 16): what a new user breaks in the first hour, through the CLI."""

from __future__ import annotations

import datetime
import errno
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from modelkit_assets import AssetsManager, StorageProvider, errors
from modelkit_assets.meta import AssetMeta
from tests.cli_runner import as_json, fails, ok, run
from tests.conftest import StoreEnv
from tests.servers import Backend

DATE = "2024-01-31T12-00-00Z"


@pytest.fixture
def asset_file(tmp_path: Path) -> Path:
    path = tmp_path / "asset.txt"
    path.write_text("content")
    return path


@pytest.fixture
def local_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """A local store, configured through the environment; returns the assets dir."""
    for folder in ("bucket", "assets"):
        (tmp_path / folder).mkdir()
    monkeypatch.setenv("MODELKIT_STORAGE_PROVIDER", "local")
    monkeypatch.setenv("MODELKIT_STORAGE_BUCKET", str(tmp_path / "bucket"))
    monkeypatch.setenv("MODELKIT_ASSETS_DIR", str(tmp_path / "assets"))
    return tmp_path / "assets"


# -- 1. a missing asset is an error, never a cache folder --------------------------------------


def test_a_missing_asset_is_an_error_never_a_cache_folder(
    store_env: StoreEnv, asset_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ok("new", str(asset_file), "cat/name", "--yes")
    ok("fetch", "cat/name:0.0")  # ASSETS_DIR/cat/name now holds a version
    for spec in ("cat", "cat/name:0.9", "cat/other"):
        assert "does not exist" in fails("fetch", spec)
    store = StorageProvider()
    store.driver.write_object(b'{"versions": []}', store.get_versions_object_name("cat/name"))
    assert "lists no version" in fails("fetch", "cat/name")
    monkeypatch.setenv("MODELKIT_STORAGE_PREFIX", "wrong-prefix")
    line = fails("fetch", "cat/name")
    assert "does not exist" in line
    assert "wrong-prefix/cat/name.versions" in line


def test_pre_downloaded_mode_never_answers_the_cache_folders(
    local_env: Path, asset_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ok("new", str(asset_file), "cat/name", "--yes")
    ok("fetch", "cat/name:0.0")
    (local_env / "cat" / "name" / ".0.0.SUCCESS").unlink()  # the only version, incomplete now
    monkeypatch.delenv("MODELKIT_STORAGE_PROVIDER")
    for spec in ("cat/name", "cat", ".cache", "cat/name/0.0"):
        result = run("fetch", spec)
        assert result.exit_code != 0, (spec, result.stdout)
        assert "Traceback" not in result.stderr
    (local_env / "plain").mkdir()
    (local_env / "plain" / "file.txt").write_text("not an asset")
    assert ok("fetch", "plain/file.txt").stdout.strip() == str(local_env / "plain" / "file.txt")


# -- 2. one store, both versioning systems -----------------------------------------------------


def test_one_store_with_both_systems_works_whatever_the_environment_says(
    store_env: StoreEnv, asset_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ok("new", str(asset_file), "mm", "--yes")
    monkeypatch.setenv("MODELKIT_ASSETS_VERSIONING_SYSTEM", "simple_date")
    ok("new", str(asset_file), f"dated:{DATE}", "--yes")
    for system in ("major_minor", "simple_date"):
        monkeypatch.setenv("MODELKIT_ASSETS_VERSIONING_SYSTEM", system)
        listing = {a["name"]: a for a in as_json(ok("list", "--json"))["assets"]}
        assert listing["dated"]["versions"][0] == DATE
        assert listing["dated"]["versioning"] == "simple_date"
        assert listing["mm"]["versioning"] == "major_minor"
        assert ok("fetch", "dated").stdout.strip().endswith(DATE)
        assert ok("fetch", f"dated:{DATE}").stdout.strip().endswith(DATE)
        assert ok("fetch", "mm:0").stdout.strip().endswith("0.0")
        assert as_json(ok("info", "dated", "--json"))["version"] == DATE
    monkeypatch.setenv("MODELKIT_ASSETS_VERSIONING_SYSTEM", "major_minor")
    pushed = as_json(ok("update", str(asset_file), "dated", "--yes", "--json"))
    assert pushed["version"] > DATE  # a date, not 0.1
    monkeypatch.setenv("MODELKIT_ASSETS_VERSIONING_SYSTEM", "simple_date")
    assert as_json(ok("update", str(asset_file), "mm", "--yes", "--json"))["version"] == "0.1"


def test_a_bad_version_is_refused_in_the_words_of_the_assets_own_system(
    store_env: StoreEnv, asset_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MODELKIT_ASSETS_VERSIONING_SYSTEM", "simple_date")
    ok("new", str(asset_file), f"dated:{DATE}", "--yes")
    monkeypatch.setenv("MODELKIT_ASSETS_VERSIONING_SYSTEM", "major_minor")
    ok("new", str(asset_file), "mm", "--yes")
    for system in ("major_minor", "simple_date"):
        monkeypatch.setenv("MODELKIT_ASSETS_VERSIONING_SYSTEM", system)
        line = fails("fetch", "dated:abc", code=2)
        assert "for the simple_date versioning system: expected YYYY-MM-DD" in line, line
        assert "MAJOR" not in line, line
        line = fails("fetch", "mm:abc", code=2)
        assert "for the major_minor versioning system: expected MAJOR" in line, line
    # Pre-downloaded mode: the local versions tell the system.
    monkeypatch.setenv("MODELKIT_ASSETS_VERSIONING_SYSTEM", "major_minor")
    ok("fetch", "dated")
    monkeypatch.delenv("MODELKIT_STORAGE_PROVIDER")
    line = fails("fetch", "dated:abc", code=2)
    assert "simple_date" in line, line


def test_an_index_without_its_system_is_read_by_its_versions(
    store_env: StoreEnv, asset_file: Path
) -> None:
    store = StorageProvider(versioning="simple_date")
    store.new(str(asset_file), "dated", DATE)
    # As modelkit rewrites it: no "versioning" key.
    store.driver.write_object(
        json.dumps({"versions": [DATE]}).encode(), store.get_versions_object_name("dated")
    )
    assert StorageProvider().read_index("dated").system.name == "simple_date"  # type: ignore[union-attr]
    assert ok("fetch", "dated").stdout.strip().endswith(DATE)


def test_one_bad_index_does_not_take_list_down(store_env: StoreEnv, asset_file: Path) -> None:
    ok("new", str(asset_file), "good", "--yes")
    ok("new", str(asset_file), "bad", "--yes")
    store = StorageProvider()
    store.driver.write_object(b"{not json", store.get_versions_object_name("bad"))
    result = run("list", "--json")
    assert result.exit_code == 1
    rows = {row["name"]: row for row in json.loads(result.stdout)["assets"]}
    assert rows["good"]["versions"] == ["0.0"]
    assert "corrupt" in rows["bad"]["error"]
    assert "bad" in fails("list")


# -- 6. the version confirmed is the version pushed ---------------------------------------------


def _orphan_claim(
    store: StorageProvider, source: Path, name: str, version: str, owner: dict[str, object]
) -> None:
    """What an interrupted push leaves: its .meta, made by ``owner`` (``age`` seconds ago)."""
    scanned = store.scan(str(source))
    age = datetime.timedelta(seconds=float(owner.pop("age", 0)))  # type: ignore[arg-type]
    claim = AssetMeta(
        datetime.datetime.now(datetime.timezone.utc) - age,
        is_directory=False,
        digests={"": scanned.files[0].digest},
        claim="interrupted",
        claimed_by=owner,
    )
    store.driver.write_object(claim.to_json(), store.get_meta_object_name(name, version))


def test_a_dead_claim_of_the_same_content_is_completed_and_the_prompt_names_it(
    store_env: StoreEnv, asset_file: Path
) -> None:
    ok("new", str(asset_file), "big", "--yes")
    dead = subprocess.run(  # a real process of this machine, gone now
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    store = StorageProvider()
    owner = {"host": socket.gethostname(), "pid": int(dead.stdout)}
    _orphan_claim(store, asset_file, "big", "0.1", owner)
    result = run("update", str(asset_file), "big", input="y\n")
    assert result.exit_code == 0, result.stderr
    assert "Push big:0.1?" in result.stderr
    assert "no longer running" in result.stderr
    assert "Pushed big:0.1" in result.stdout
    assert store.get_versions_info("big") == ["0.1", "0.0"]


def test_a_live_or_foreign_claim_is_passed_over_and_the_prompt_says_so(
    store_env: StoreEnv, asset_file: Path, tmp_path: Path
) -> None:
    ok("new", str(asset_file), "big", "--yes")
    store = StorageProvider()
    _orphan_claim(store, asset_file, "big", "0.1", {"host": "elsewhere", "pid": 1})
    other = tmp_path / "other.txt"
    other.write_text("other content")
    result = run("update", str(other), "big", input="y\n")
    assert "Skipping:    big:0.1" in result.stderr
    assert "Push big:0.2?" in result.stderr
    assert "Pushed big:0.2" in result.stdout
    # A fresh claim of the same content, from another machine: its push may be running.
    _orphan_claim(store, asset_file, "big", "0.3", {"host": "elsewhere", "pid": 1})
    result = run("update", str(asset_file), "big", input="y\n")
    assert "still running" in result.stderr
    assert "Pushed big:0.4" in result.stdout
    # One older than MODELKIT_STORAGE_CLAIM_TIMEOUT_S is taken over.
    _orphan_claim(store, asset_file, "big", "0.5", {"host": "elsewhere", "pid": 1, "age": 7200})
    result = run("update", str(asset_file), "big", input="y\n")
    assert "has not finished in 120 minutes" in result.stderr
    assert "Pushed big:0.5" in result.stdout
    assert store.get_versions_info("big") == ["0.5", "0.4", "0.2", "0.0"]


# -- 7. names nesting in another asset's versions ----------------------------------------------


def test_names_cannot_nest_in_another_assets_versions(
    store_env: StoreEnv, asset_file: Path, tmp_path: Path
) -> None:
    folder = tmp_path / "folder"
    folder.mkdir()
    (folder / "f").write_text("f")
    ok("new", str(folder), "cat/name", "--yes")
    before = sorted(StorageProvider().driver.iterate_objects(store_env.prefix))
    for nested in ("cat/name/0.0", "cat/name/0.0/deeper", "cat/name/1"):
        assert "would lie inside version" in fails("new", str(asset_file), nested, "--yes")
    ok("new", str(asset_file), "cat/name/notes", "--yes")  # not a version: fine
    ok("new", str(asset_file), "solo/0.3", "--yes")
    assert "lies where version 0.3" in fails("new", str(asset_file), "solo", "--yes")
    ok("new", str(asset_file), "twin", "--yes")
    # A store written before these checks (or by modelkit) may hold both: no update goes there.
    StorageProvider().push(str(asset_file), "twin/0.1", "0.0")
    assert "lies where this version" in fails("update", str(asset_file), "twin", "--yes")
    after = sorted(StorageProvider().driver.iterate_objects(store_env.prefix))
    assert set(before) <= set(after)
    assert not [n for n in after if "/cat/name/0.0/" in n and n.endswith((".versions", ".meta"))]


# -- 8. info of an unpublished version --------------------------------------------------------


def test_info_says_a_claimed_version_is_unpublished(store_env: StoreEnv, asset_file: Path) -> None:
    ok("new", str(asset_file), "name", "--yes")
    store = StorageProvider()
    _orphan_claim(store, asset_file, "name", "0.1", {"host": "elsewhere", "pid": 7})
    result = run("info", "name:0.1")
    assert result.exit_code == 1
    assert "UNPUBLISHED" in result.stdout
    assert "not published" in result.stderr
    assert "pushed:" not in result.stdout
    assert "name:0.0" in ok("info", "name").stdout


# -- 11. bad settings are refused, naming the variable or option -------------------------------


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("MODELKIT_STORAGE_TIMEOUT_S", "-5"),
        ("MODELKIT_STORAGE_TIMEOUT_S", "0"),
        ("MODELKIT_STORAGE_TIMEOUT_S", "soon"),
        ("MODELKIT_STORAGE_FORCE_DOWNLOAD", "maybe"),
        ("MODELKIT_LAZY_DRIVER", "banana"),
        ("MODELKIT_ASSETS_TIMEOUT_S", "-1"),
    ],
)
def test_bad_setting_values_are_usage_errors(
    local_env: Path, asset_file: Path, monkeypatch: pytest.MonkeyPatch, variable: str, value: str
) -> None:
    ok("new", str(asset_file), "name", "--yes")
    monkeypatch.setenv(variable, value)
    line = fails("fetch", "name", code=2)
    assert variable in line
    assert repr(value) in line


def test_prefetch_jobs_must_be_positive(local_env: Path) -> None:
    result = run("prefetch", "name", "-j", "0")
    assert result.exit_code == 2
    assert "-j" in result.stderr


# -- 12. an emptied index never loses versions ----------------------------------------------


def test_an_emptied_index_is_never_shrunk_and_reindex_rebuilds_it(
    store_env: StoreEnv, asset_file: Path
) -> None:
    ok("new", str(asset_file), "name", "--yes")
    ok("update", str(asset_file), "name", "--yes")
    ok("update", str(asset_file), "name", "--yes")
    store = StorageProvider()
    index_name = store.get_versions_object_name("name")
    store.driver.write_object(b'{"versions": []}', index_name)
    line = fails("update", str(asset_file), "name", "--yes")
    assert "reindex" in line
    assert json.loads(store.driver.read_object(index_name)[0])["versions"] == []
    planned = as_json(ok("reindex", "name", "--dry-run", "--json"))
    assert planned["added"] == ["0.2", "0.1", "0.0"]
    assert json.loads(store.driver.read_object(index_name)[0])["versions"] == []
    ok("reindex", "name", "--yes")
    assert store.get_versions_info("name") == ["0.2", "0.1", "0.0"]
    assert "0.3" in ok("update", str(asset_file), "name", "--yes").stdout


# -- messages ---------------------------------------------------------------------------------


def test_messages_are_one_clear_line(
    local_env: Path, asset_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ok("new", str(asset_file), "name", "--yes")
    monkeypatch.setenv("MODELKIT_ASSETS_VERSIONING_SYSTEM", "simple_date")
    ok("new", str(asset_file), "dated", "--yes")
    assert "no --bump-major" in fails(
        "update", str(asset_file), "dated", "--bump-major", "--yes", code=2
    )
    line = fails("fetch", "name:0.0[sub/]", code=2)
    assert "trailing '/'" in line
    assert "'name:0.0[sub/]'" in line  # the spec as written, its version included
    monkeypatch.delenv("MODELKIT_STORAGE_PROVIDER")
    line = fails("list")
    assert "MODELKIT_STORAGE_PROVIDER" in line
    assert "provider=" not in line


def test_new_without_a_terminal_and_without_yes_says_to_pass_yes(
    local_env: Path, asset_file: Path
) -> None:
    modelkit = str(Path(sys.executable).parent / "modelkit")
    for stdin in ({"stdin": subprocess.DEVNULL}, {"input": ""}):
        done = subprocess.run(
            [modelkit, "assets", "new", str(asset_file), "name"],
            capture_output=True,
            text=True,
            env=os.environ,
            check=False,
            **stdin,  # type: ignore[call-overload]
        )
        assert done.returncode == 2, done.stderr
        assert "pass --yes" in done.stderr.splitlines()[-1]
    assert not StorageProvider().asset_exists("name")


INTERRUPTED_CLI = """
import sys
from modelkit_assets.cli import main
from modelkit_assets.push import Pusher

def interrupted(*args, **kwargs):
    raise KeyboardInterrupt  # ^C between the claim and the publication

Pusher.publish = interrupted
sys.argv = ["modelkit", "assets", "update", sys.argv[1], "name", "--yes"]
main()
"""


def test_ctrl_c_exits_130_saying_what_it_left_claimed(local_env: Path, asset_file: Path) -> None:
    ok("new", str(asset_file), "name", "--yes")
    done = subprocess.run(
        [sys.executable, "-c", INTERRUPTED_CLI, str(asset_file)],
        capture_output=True,
        text=True,
        env=os.environ,
        check=False,
    )
    assert done.returncode == 130, done.stderr
    last = done.stderr.splitlines()[-1]
    assert "name:0.1 is claimed but not published" in last
    assert "again" in last
    retried = ok("update", str(asset_file), "name", "--yes")  # that process is gone now
    assert "Pushed name:0.1" in retried.stdout
    assert StorageProvider().get_versions_info("name") == ["0.1", "0.0"]


@pytest.mark.parametrize(
    ("code", "words"),
    [(errno.ENOSPC, "no space left"), (errno.EROFS, "read-only file system")],
)
@pytest.mark.parametrize("named", [True, False], ids=["open", "write"])
def test_disk_errors_name_the_path_and_the_asset(
    local_env: Path,
    asset_file: Path,
    monkeypatch: pytest.MonkeyPatch,
    code: int,
    words: str,
    named: bool,
) -> None:
    """The error of an ``open`` names its file; that of a ``write`` names none, and the line
    still reads right."""
    ok("new", str(asset_file), "name", "--yes")
    from modelkit_assets.drivers.local import LocalStorageDriver

    def full(self: object, object_name: str, destination: str, algorithm: str) -> None:
        raise OSError(code, os.strerror(code), *([destination] if named else []))

    monkeypatch.setattr(LocalStorageDriver, "download_hashing", full)
    line = fails("fetch", "name:0.0")
    assert words in line
    assert "name:0.0" in line
    assert str(local_env) in line
    assert " of while" not in line
    assert "  " not in line
    if code == errno.ENOSPC:  # the partial download takes room: where to see it, how to drop it
        assert "kept for the retry" in line
        assert "modelkit assets cache list" in line


def test_interrupted_new_and_update_say_the_same(store_env: StoreEnv, asset_file: Path) -> None:
    store = StorageProvider()
    _orphan_claim(store, asset_file, "fresh", "0.0", {"host": "elsewhere", "pid": 3})
    result = run("new", str(asset_file), "fresh", "--yes")
    assert "it completes the unfinished push of fresh:0.0" in result.stderr
    ok("new", str(asset_file), "other", "--yes")
    _orphan_claim(store, asset_file, "other", "0.1", {"host": "elsewhere", "pid": 3, "age": 7200})
    result = run("update", str(asset_file), "other", "--yes")
    assert "it completes the unfinished push of other:0.1" in result.stderr


def test_fetch_takes_the_storage_prefix_option(
    local_env: Path, asset_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ok("new", str(asset_file), "name", "--storage-prefix", "team", "--yes")
    assert "does not exist" in fails("fetch", "name")
    assert ok("fetch", "name", "--storage-prefix", "team").stdout.strip().endswith("0.0")
    assert "name:0.0" in ok("info", "name", "--storage-prefix", "team").stdout
    assert ok("prefetch", "name", "--storage-prefix", "team").stdout.startswith("ok")
    assert AssetsManager(storage_prefix="team").fetch_asset("name:0.0")
    with pytest.raises(errors.ObjectDoesNotExistError):
        AssetsManager().fetch_asset("name:0.0", force_download=True)


# -- 3. links in a directory asset ------------------------------------------------------------


def test_a_folder_with_a_link_to_a_folder_pushes_every_path(
    store_env: StoreEnv, tmp_path: Path
) -> None:
    folder = tmp_path / "linked"
    (folder / "real").mkdir(parents=True)
    (folder / "real" / "f").write_text("f")
    os.symlink("real", folder / "l3")
    outside = tmp_path / "outside.txt"
    outside.write_text("o")
    os.symlink(outside, folder / "o")
    result = run("new", str(folder), "linked", "--yes")
    assert result.exit_code == 0, result.stderr
    assert "o links outside the pushed folder" in result.stderr
    fetched = Path(ok("fetch", "linked:0.0").stdout.strip())
    assert (fetched / "real" / "f").read_text() == "f"
    assert (fetched / "l3" / "f").read_text() == "f"
    assert (fetched / "o").read_text() == "o"
    os.symlink("..", folder / "real" / "up")
    assert "/up': it links to" in fails("update", str(folder), "linked", "--yes")
    assert StorageProvider().get_versions_info("linked") == ["0.0"]


def test_a_uri_source_in_a_missing_bucket_names_that_bucket(
    store_env: StoreEnv, backend: Backend
) -> None:
    from modelkit_assets.plugins import get_registry

    schemes = get_registry().driver(backend.provider).record.schemes
    if not schemes:
        pytest.skip(f"the {backend.provider} driver reads no URIs")
    uri = f"{schemes[0]}://no-such-source-bucket/weights.bin"
    line = fails("new", uri, "name", "--yes")
    assert "the source bucket 'no-such-source-bucket' does not exist" in line
    assert uri in line
    assert "MODELKIT_STORAGE_BUCKET" not in line  # not the store's bucket


# -- found by a stranger's run of the merged tool ---------------------------------------------


@pytest.mark.parametrize("bad_name", ["a\\b", "C:x"])
def test_a_file_name_the_store_cannot_hold_is_refused_before_anything_is_written(
    store_env: StoreEnv, tmp_path: Path, bad_name: str
) -> None:
    """A backslash (split into folders by the store) or a drive letter was pushed with exit 0,
    then refused by every fetch of the version: the push must refuse it up front."""
    folder = tmp_path / "folder"
    folder.mkdir()
    (folder / "ok.txt").write_text("fine")
    (folder / bad_name).write_text("bad")
    line = fails("new", str(folder), "cat/name", "--yes", code=2)
    assert repr(bad_name) in line
    assert "rename" in line
    store = StorageProvider()
    assert list(store.driver.iterate_objects(f"{store.prefix}/")) == []
    (folder / bad_name).unlink()
    ok("new", str(folder), "cat/name", "--yes")
    assert Path(AssetsManager().fetch_asset("cat/name:0.0[ok.txt]")).read_text() == "fine"


def test_an_empty_spec_names_no_path(local_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An empty string joined to a folder is that folder: it was answered with the working
    directory, exit 0."""
    monkeypatch.chdir(local_env.parent)
    fails("fetch", "", code=2)
    with pytest.raises(errors.InvalidAssetSpecError):
        AssetsManager().fetch_asset("")
    monkeypatch.delenv("MODELKIT_STORAGE_PROVIDER")
    fails("fetch", "", code=2)


def test_reindex_of_an_asset_that_does_not_exist_fails(local_env: Path) -> None:
    line = fails("reindex", "no/such", "--yes")
    assert "does not exist" in line
    fails("reindex", "no/such", "--dry-run")


def test_an_unknown_versioning_system_is_a_usage_error_naming_the_variable(
    local_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MODELKIT_ASSETS_VERSIONING_SYSTEM", "foo")
    line = fails("list", code=2)
    assert "MODELKIT_ASSETS_VERSIONING_SYSTEM" in line
    assert "major_minor" in line


def test_the_cache_marker_of_a_version_is_no_sub_part(local_env: Path, tmp_path: Path) -> None:
    folder = tmp_path / "folder"
    folder.mkdir()
    (folder / "a.txt").write_text("a")
    ok("new", str(folder), "cat/dir", "--yes")
    assert Path(ok("fetch", "cat/dir:0.0[a.txt]").stdout.strip()).read_text() == "a"
    assert "no such sub-part" in fails("fetch", "cat/dir:0.0[.SUCCESS]")


def test_a_bad_cache_bound_fails_even_a_cached_fetch(
    local_env: Path, asset_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """It was accepted until the first download, which could be days later."""
    ok("new", str(asset_file), "name", "--yes")
    ok("fetch", "name:0.0")
    monkeypatch.setenv("MODELKIT_ASSETS_MAX_SIZE", "lots")
    line = fails("fetch", "name:0.0", code=2)
    assert "MODELKIT_ASSETS_MAX_SIZE" in line
    assert "'lots'" in line


# -- what a fetch loads ---------------------------------------------------------------------------

LOADED_BY_A_CLI_FETCH = """
import json, sys
from modelkit_assets.cli import main
sys.argv = ["modelkit", "assets", "fetch", sys.argv[1]]
try:
    main()
except SystemExit as exc:
    assert not exc.code, exc.code
heavy = ("filelock", "modelkit_assets.push", "modelkit_assets.source", "modelkit_assets.claims",
         "modelkit_assets.cache.prune")
print(json.dumps([m for m in heavy if m in sys.modules]))
"""


def test_a_fetch_loads_no_push_machinery_and_a_cached_one_no_lock(
    local_env: Path, asset_file: Path
) -> None:
    """Every process that loads a model pays its imports: the push machinery (12 ms) and the
    pruner (7 ms, without MODELKIT_ASSETS_MAX_SIZE) are not loaded by a fetch, nor filelock
    (11 ms) by a fetch the cache answers."""
    ok("new", str(asset_file), "name", "--yes")

    def loaded() -> list[str]:
        done = subprocess.run(
            [sys.executable, "-c", LOADED_BY_A_CLI_FETCH, "name:0.0"],
            capture_output=True, text=True, env=os.environ, check=False,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        return list(json.loads(done.stdout.strip().splitlines()[-1]))

    assert loaded() == ["filelock"]  # a download takes the asset's lock
    assert (local_env / "name" / "0.0").read_text() == "content"
    assert loaded() == []  # from the cache


@pytest.mark.parametrize("change", ["edit", "remove"])
@pytest.mark.parametrize("mib", [3, 9])  # 9: from STAGE_MIN on, where stores can stage
def test_a_file_changed_between_its_hash_and_its_upload_is_not_published(
    store_env: StoreEnv,
    engine: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    mib: int,
    change: str,
) -> None:
    """A large file (uploaded from disk, not held in memory) written to or removed after the
    push hashed it: its upload may send other bytes than its digest says, or fail. Published,
    the version would fail every fetch, for ever; left claimed, no retry could complete it. The
    push refuses and removes what it uploaded and its claim; pushed again, the version holds
    the files as they are. A store that copies the file as it hashes it (``local`` stages
    it) stores the hashed bytes, and publishes them."""
    from modelkit_assets.push import Pusher
    from modelkit_assets.source import STAGE_MIN

    source = tmp_path / "src"
    source.mkdir()
    (source / "small").write_bytes(b"s" * 100)
    big = source / "big"
    before = os.urandom(mib * 1024 * 1024)
    big.write_bytes(before)
    after = bytearray(before)
    after[2 * 1024 * 1024 : 2 * 1024 * 1024 + 4] = b"edit"  # same size, same inode
    claim = Pusher.claim

    def change_then_claim(self: Pusher, *args: object, **kwargs: object) -> object:
        if change == "edit":
            with open(big, "r+b") as f:
                f.write(after)
        else:
            big.unlink()
        return claim(self, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(Pusher, "claim", change_then_claim)
    store = StorageProvider()
    name = "changing"
    fetched = store_env.assets_dir / name / "0.0"
    if store.driver.stager() is not None and len(before) >= STAGE_MIN:  # hashed as copied
        store.new(str(source), name, "0.0")
        store.download(name, "0.0", str(store_env.assets_dir))
        assert (fetched / "big").read_bytes() == before
        return
    with pytest.raises(errors.SourceChangedError, match="big"):
        store.new(str(source), name, "0.0")
    assert store.pending_claim is None
    assert list(store.driver.iterate_objects(f"{store.prefix}/{name}")) == []
    monkeypatch.setattr(Pusher, "claim", claim)
    store.new(str(source), name, "0.0")
    store.download(name, "0.0", str(store_env.assets_dir))
    assert (fetched / "small").read_bytes() == b"s" * 100
    if change == "edit":
        assert (fetched / "big").read_bytes() == bytes(after)
    else:
        assert not (fetched / "big").exists()


def test_files_named_like_an_index_are_files_of_their_version_not_assets(
    local_env: Path, tmp_path: Path
) -> None:
    """A folder holding ``data.versions`` (or a checkpoint's ``model.meta``) is pushed as it
    is; ``list`` shows the asset, not its files as unreadable assets (it failed, exit 1, for
    every listing of the store). An asset beside the versions (``x/extra``) is still one."""
    source = tmp_path / "src"
    (source / "sub").mkdir(parents=True)
    (source / "data.versions").write_text("not an index")
    (source / "sub" / "y.versions").write_text("{}")
    (source / "model.meta").write_text("a checkpoint")
    ok("new", str(source), "x", "--yes")
    ok("update", str(source), "x", "--yes")
    ok("new", str(source), "x/extra", "--yes")
    rows = as_json(ok("list", "--json"))["assets"]
    assert [(r["name"], r["versions"]) for r in rows] == [
        ("x", ["0.1", "0.0"]),
        ("x/extra", ["0.0"]),
    ]
    fetched = Path(ok("fetch", "x:0.1").stdout.strip())
    assert (fetched / "data.versions").read_text() == "not an index"
    assert (fetched / "model.meta").read_text() == "a checkpoint"


def test_an_interrupted_push_of_files_named_like_an_index_is_completed(
    local_env: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The retry of a push stopped before it published ``y:0.0`` (whose folder holds
    ``data.versions``) completes it: ``y/0.0/data.versions`` in the store is a file of the
    claimed version, not an asset where version 0.0 of ``y`` would go."""
    from modelkit_assets.push import Pusher

    source = tmp_path / "src"
    source.mkdir()
    (source / "data.versions").write_text("not an index")

    def stopped(self: Pusher, *args: object) -> None:
        raise KeyboardInterrupt

    with monkeypatch.context() as patched:
        patched.setattr(Pusher, "publish", stopped)
        assert run("new", str(source), "y", "--yes").exit_code == 130
    ok("new", str(source), "y", "--yes")
    fetched = Path(ok("fetch", "y:0.0").stdout.strip())
    assert (fetched / "data.versions").read_text() == "not an index"


def test_an_object_name_longer_than_the_store_takes_is_refused_before_anything_is_written(
    store_env: StoreEnv, engine: str, tmp_path: Path
) -> None:
    """A file whose object name would pass the store's limit (1024 bytes on S3, GCS and
    Azure) is refused by name before the push claims its version: found at its upload, it left
    a claim no retry could complete. A name at the limit is pushed and fetched."""
    store = StorageProvider()
    limit = store.driver.max_object_name_bytes or 1100  # local: no limit, a long name works
    base = len(store.part_object_name("long", "0.0", "").encode()) + 1  # and the '/'

    def folder_with_a_name_of(total: int) -> Path:
        source = tmp_path / f"src{total}"
        length = total - base
        segments = [*(["d" * 200] * (length // 201)), "f" * (length % 201 or 1)]
        path = source.joinpath(*segments)
        assert len(str(path.relative_to(source)).encode()) == length, "the test's own sum"
        path.parent.mkdir(parents=True)
        path.write_text("x")
        return source

    if store.driver.max_object_name_bytes is not None:
        with pytest.raises(errors.ObjectNameTooLongError, match=str(limit + 1)):
            store.new(str(folder_with_a_name_of(limit + 1)), "long", "0.0")
        assert list(store.driver.iterate_objects(f"{store.prefix}/long")) == []
    store.new(str(folder_with_a_name_of(limit)), "long", "0.0")
    store.download("long", "0.0", str(store_env.assets_dir))


def test_a_changed_file_never_removes_a_version_another_push_published(
    store_env: StoreEnv, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The push that finds a changed file removes what it uploaded only while its claim is
    still its own and unpublished: had another push of the same content taken the claim over
    and published it meanwhile, removing the objects would break a published version."""
    from modelkit_assets.push import Pusher

    source = tmp_path / "src"
    source.mkdir()
    (source / "small").write_bytes(b"s" * 100)
    big = source / "big"
    big.write_bytes(os.urandom(3 * 1024 * 1024))
    claim = Pusher.claim

    def claim_then_edit_while_another_publishes(
        self: Pusher, name: str, version: str, *args: object
    ) -> object:
        claimed = claim(self, name, version, *args)  # type: ignore[arg-type]
        with open(big, "r+b") as f:
            f.write(b"edit")
        self.publish(name, version, self.store.versioning)  # as if by the other push
        return claimed

    monkeypatch.setattr(Pusher, "claim", claim_then_edit_while_another_publishes)
    store = StorageProvider()
    with pytest.raises(errors.AssetAlreadyExistsError):  # `new`: the asset exists now
        store.new(str(source), "shared", "0.0")
    left = set(store.driver.iterate_objects(f"{store.prefix}/shared"))
    assert store.get_meta_object_name("shared", "0.0") in left
    assert store.part_object_name("shared", "0.0", "small") in left


def _pushed_twice(tmp_path: Path) -> tuple[Path, Path, bytes, Path]:
    """A folder two pushes push at once: ``(folder, its 3 MiB file, that file's bytes, a
    copy of them)`` (3 MiB: uploaded from disk, not from the bytes the scan read)."""
    source = tmp_path / "src"
    source.mkdir()
    (source / "small").write_bytes(b"s" * 100)
    big = source / "big"
    original = os.urandom(3 * 1024 * 1024)
    big.write_bytes(original)
    kept = tmp_path / "big-as-hashed"
    kept.write_bytes(original)
    return source, big, original, kept


def test_a_changed_file_never_removes_the_claim_of_another_push_that_still_runs(
    store_env: StoreEnv, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``new`` of the same files on two machines: the second joins the first's claim (same
    content). When a file changes under the second, it must not remove the claim and the
    objects: they are the first push's, which goes on and publishes them (it removed them,
    and the first then published a version without its ``.meta``: every fetch answered that
    the version does not exist). It says that the version stays with that push. A joined
    claim whose push is gone (the retry of a killed ``new``) is still removed, so that the
    version is free again."""
    from modelkit_assets import claims
    from modelkit_assets.push import Pusher, source_meta
    from modelkit_assets.source import scan_source

    source, big, original, kept = _pushed_twice(tmp_path)
    store = StorageProvider()
    claim = Pusher.claim

    def join_then_edit(self: Pusher, *args: object, **kwargs: object) -> object:
        joined = claim(self, *args, **kwargs)  # type: ignore[arg-type]
        with open(big, "r+b") as f:
            f.write(b"edit")
        return joined

    def first_push_claims(name: str) -> Pusher:
        big.write_bytes(original)
        pusher = Pusher(store)  # the other push: a live process (this one)
        assert claim(pusher, name, "0.0", source_meta(scan_source(str(source))), False) is None
        store.driver.write_object(b"s" * 100, store.part_object_name(name, "0.0", "small"))
        return pusher

    first = first_push_claims("shared")
    monkeypatch.setattr(Pusher, "claim", join_then_edit)
    with pytest.raises(errors.SourceChangedError, match="stays with the push") as raised:
        store.new(str(source), "shared", "0.0")
    assert f"process {os.getpid()}" in str(raised.value)
    # The first push goes on: its last object, then the index. The version is whole.
    store.driver.upload_object(str(kept), store.part_object_name("shared", "0.0", "big"))
    first.publish("shared", "0.0", store.versioning)
    fetched = Path(AssetsManager().fetch_asset("shared:0.0"))
    assert (fetched / "big").read_bytes() == original
    assert (fetched / "small").read_bytes() == b"s" * 100

    # A claim joined once its push is gone is the joiner's to remove.
    first_push_claims("orphan")
    monkeypatch.setattr(claims, "owner_gone", lambda owner: True)
    with pytest.raises(errors.SourceChangedError, match="what was uploaded is removed"):
        store.new(str(source), "orphan", "0.0")
    assert list(store.driver.iterate_objects(f"{store.prefix}/orphan")) == []


def test_a_changed_file_never_removes_a_claim_another_push_has_joined(
    store_env: StoreEnv, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same two pushes the other way round: a file changes under the first while the
    second, which joined its claim, still runs. The first removed everything (the second,
    unseen, then published a version without its ``.meta``); the join is on record now, so
    the first removes nothing and says that the version stays with the second, which
    completes it with the files as they were hashed."""
    from modelkit_assets.push import Pusher, source_meta
    from modelkit_assets.source import scan_source

    source, big, original, kept = _pushed_twice(tmp_path)
    joiner_meta = source_meta(scan_source(str(source)))
    store = StorageProvider()
    joiner = Pusher(store)
    claim = Pusher.claim

    def claim_then_joined_then_edit(self: Pusher, *args: object, **kwargs: object) -> object:
        claimed = claim(self, *args, **kwargs)  # type: ignore[arg-type]
        assert claim(joiner, "shared", "0.0", joiner_meta, False) is not None  # it joins
        with open(big, "r+b") as f:
            f.write(b"edit")
        return claimed

    monkeypatch.setattr(Pusher, "claim", claim_then_joined_then_edit)
    with pytest.raises(errors.SourceChangedError, match="stays with the push"):
        store.new(str(source), "shared", "0.0")
    assert store.pending_claim is None  # not this push's to complete: nothing to report
    assert store.read_meta("shared", "0.0").same_content(joiner_meta)
    # The joiner goes on: it finds the first push's edited bytes of `big` (not its digest)
    # and replaces them, then publishes. The version is whole.
    store.driver.upload_object(str(kept), store.part_object_name("shared", "0.0", "big"))
    store.driver.write_object(b"s" * 100, store.part_object_name("shared", "0.0", "small"))
    joiner.publish("shared", "0.0", store.versioning)
    fetched = Path(AssetsManager().fetch_asset("shared:0.0"))
    assert (fetched / "big").read_bytes() == original
    assert (fetched / "small").read_bytes() == b"s" * 100


def test_a_file_named_like_the_cache_marker_is_refused_not_overwritten(
    local_env: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A folder with ``.SUCCESS`` at its top: in the cache, the version's completion marker
    (modelkit's layout) replaced it, and the fetch answered with an empty file, exit 0. The push
    is refused; a version that holds one (pushed by another tool) is refused by the fetch, and
    ``download_to``, which writes no marker, still gives it. Deeper down the name is free."""
    source = tmp_path / "src"
    (source / "sub").mkdir(parents=True)
    (source / ".SUCCESS").write_text("user data")
    (source / "sub" / ".SUCCESS").write_text("deeper")
    line = fails("new", str(source), "marked", "--yes")
    assert ".SUCCESS" in line
    assert "nothing was written" in line
    assert not (tmp_path / "bucket" / "modelkit-assets" / "marked.versions").exists()
    with monkeypatch.context() as patched:  # as a tool without the check would push it
        patched.setattr("modelkit_assets.source.SUCCESS_MARKER", "-")
        ok("new", str(source), "marked", "--yes")
    line = fails("fetch", "marked:0.0")
    assert ".SUCCESS" in line
    assert "nothing was downloaded" in line
    assert not (local_env / "marked" / "0.0").exists()
    StorageProvider().download_to("marked", "0.0", str(tmp_path / "target"))
    assert (tmp_path / "target" / ".SUCCESS").read_text() == "user data"
    (source / ".SUCCESS").unlink()
    ok("new", str(source), "deeper", "--yes")
    fetched = Path(ok("fetch", "deeper:0.0").stdout.strip())
    assert (fetched / "sub" / ".SUCCESS").read_text() == "deeper"


@pytest.mark.parametrize("odd", ["new\nline", "tab\tx", "bell\x07", "del\x7f"])
def test_a_file_name_with_a_control_character_is_refused_before_anything_is_written(
    local_env: Path, tmp_path: Path, odd: str
) -> None:
    """Through obstore such a name failed at its upload, after the claim, and was retried
    for the whole storage timeout as a store out of reach; GCS refuses newlines, S3 lists
    them in XML. The push refuses it by name, whatever the store."""
    source = tmp_path / "src"
    source.mkdir()
    (source / "fine").write_text("1")
    (source / odd).write_text("2")
    line = fails("new", str(source), "odd", "--yes")
    assert "control character" in line
    assert "nothing was written" in line
    assert not (tmp_path / "bucket" / "modelkit-assets" / "odd").exists()
