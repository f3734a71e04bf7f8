"""The CLI as people use it: readable output, scripting, remote sources, prefetch, info."""

from __future__ import annotations

import json
import os
import pty
import re
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from modelkit_assets import StorageProvider
from modelkit_assets.plugins import get_registry
from modelkit_assets.store import make_driver
from tests.cli_runner import as_json, fails, ok, run
from tests.conftest import StoreEnv
from tests.servers import Backend

MODELKIT = str(Path(sys.executable).parent / "modelkit")


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    path = tmp_path / "folder"
    (path / "sub").mkdir(parents=True)
    (path / "a.txt").write_text("a" * 1000)
    (path / "sub" / ".b").write_text("b" * 2000)
    return path


@pytest.fixture
def pushed(store_env: StoreEnv, folder: Path) -> StorageProvider:
    store = StorageProvider()
    store.new(str(folder), "cli/asset")
    store.update(str(folder / "a.txt"), "cli/asset", "0.1")
    return store


def test_new_shows_what_will_be_pushed_before_asking(store_env: StoreEnv, folder: Path) -> None:
    result = run("new", str(folder), "shown", input="n\n")
    assert "directory of 2 files, 3.0 KB" in result.stderr
    assert "shown:0.0" in result.stderr
    assert StorageProvider().get_object_uri("shown", "0.0") in result.stderr
    assert result.stderr.index("Destination") < result.stderr.index("?")
    assert result.stdout == ""


def test_json_outputs_are_one_document_on_stdout(pushed: StorageProvider) -> None:
    listing = as_json(ok("list", "--json"))
    assert [a["name"] for a in listing["assets"]] == ["cli/asset"]
    assert listing["assets"][0]["latest"] == "0.1"
    fetched = as_json(ok("fetch", "cli/asset:0.0", "--json"))
    assert fetched["version"] == "0.0"
    assert fetched["meta"]["contents"] == ["a.txt", "sub/.b"]
    plugins = as_json(ok("plugins", "--json"))
    assert {"local", "major_minor"} <= {p["name"] for p in plugins["storage_drivers"]} | {
        p["name"] for p in plugins["versioning_systems"]
    }
    info = as_json(ok("info", "cli/asset:0", "--json"))
    assert info["version"] == "0.1"
    assert info["files"][0]["size"] == 1000
    algorithm, hexdigest = info["files"][0]["hash"].split(":")
    assert (algorithm, len(hexdigest)) == ("blake3", 64)


def test_info_shows_files_sizes_hashes_and_uri(pushed: StorageProvider) -> None:
    out = ok("info", "cli/asset:0.0").stdout
    assert "cli/asset:0.0" in out
    assert pushed.get_object_uri("cli/asset", "0.0") in out
    assert "sub/.b" in out
    assert "2.0 KB" in out
    assert "does not exist" in fails("info", "cli/asset:7")


def test_info_of_a_sub_part_shows_only_its_files(pushed: StorageProvider) -> None:
    out = ok("info", "cli/asset:0.0[sub]").stdout
    assert out.startswith("cli/asset:0.0[sub]\n")
    assert "sub/.b" in out
    assert "a.txt" not in out
    document = as_json(ok("info", "cli/asset:0.0[/a.txt]", "--json"))
    assert [f["part"] for f in document["files"]] == ["a.txt"]
    assert (document["size"], document["sub_part"]) == (1000, "a.txt")
    # A sub-part the version does not hold is an error, not the whole version with exit 0.
    for missing in ("cli/asset:0.0[su]", "cli/asset:0.0[a.txt/x]", "cli/asset:0.1[a.txt]"):
        assert "no such sub-part" in fails("info", missing)
    assert "unsafe" in fails("info", "cli/asset:0.0[../x]", code=2)


def test_list_is_a_table(pushed: StorageProvider) -> None:
    out = ok("list").stdout
    for header in ("name", "versions", "latest", "pushed"):
        assert header in out
    assert "0.1, 0.0" in out


def test_prefetch_many_specs_with_a_summary_line_each(
    pushed: StorageProvider, store_env: StoreEnv, tmp_path: Path
) -> None:
    spec_file = tmp_path / "assets.txt"
    spec_file.write_text("# assets for the image\ncli/asset:0.0\n\ncli/asset:0.1  # the file\n")
    out = ok("prefetch", "cli/asset", "-f", str(spec_file)).stdout.splitlines()
    assert len(out) == 3
    assert all(line.startswith("ok") for line in out)
    assert (store_env.assets_dir / "cli" / "asset" / "0.0" / "sub" / ".b").exists()
    result = run("prefetch", "cli/asset:0.0", "nope:1.0", "--json")
    assert result.exit_code == 1
    document = json.loads(result.stdout)
    assert [r["ok"] for r in document] == [True, False]
    assert document[0]["from_cache"] is True
    assert "1 of 2 assets" in result.stderr
    assert run("prefetch").exit_code == 2


def test_verbose_logs_go_to_stderr(pushed: StorageProvider) -> None:
    result = run("-v", "fetch", "cli/asset:0.1")
    assert "INFO" in result.stderr
    assert result.stdout.strip().endswith("0.1")
    quiet = run("fetch", "cli/asset:0.0", "-vv")
    assert "DEBUG" in quiet.stderr or "INFO" in quiet.stderr


def test_remote_uri_as_push_source(store_env: StoreEnv, backend: Backend) -> None:
    schemes = get_registry().driver(backend.provider).record.schemes
    if not schemes:
        pytest.skip(f"the {backend.provider} driver declares no URI scheme")
    driver = make_driver(backend.provider, backend.bucket, None, 60.0)
    key = f"sources-{uuid.uuid4().hex[:8]}"
    for name, data in (("model/w.bin", b"w" * 10), ("model/sub/v.txt", b"v"), ("one.txt", b"1")):
        path = store_env.assets_dir.parent / "upload"
        path.write_bytes(data)
        driver.upload_object(str(path), f"{key}/{name}")
    uri = f"{schemes[0]}://{backend.bucket}/{key}"
    ok("new", f"{uri}/model", "from/prefix", "--yes")
    ok("new", f"{uri}/one.txt", "from/object", "--yes")
    folder = Path(ok("fetch", "from/prefix:0.0").stdout.strip())
    assert (folder / "w.bin").read_bytes() == b"w" * 10
    assert (folder / "sub" / "v.txt").read_bytes() == b"v"
    assert Path(ok("fetch", "from/object").stdout.strip()).read_bytes() == b"1"
    assert "no object" in fails("new", f"{uri}/missing", "from/missing", "--yes")


def test_unknown_uri_scheme(store_env: StoreEnv) -> None:
    assert "ftp://" in fails("new", "ftp://bucket/key", "x", "--yes")


def _env(store_env: StoreEnv) -> dict[str, str]:
    return {**os.environ, **store_env.env}


def test_real_subprocess_commands(pushed: StorageProvider, store_env: StoreEnv) -> None:
    env = _env(store_env)

    def modelkit(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [MODELKIT, "assets", *args], env=env, capture_output=True, text=True, timeout=60
        )

    fetched = modelkit("fetch", "cli/asset:0.0")
    assert fetched.returncode == 0, fetched.stderr
    assert fetched.stdout.strip() == str(store_env.assets_dir / "cli" / "asset" / "0.0")
    assert fetched.stderr == ""  # no progress bar when stderr is not a terminal
    assert json.loads(modelkit("list", "--json").stdout)["assets"][0]["name"] == "cli/asset"
    missing = modelkit("fetch", "cli/nothing")
    assert missing.returncode == 1
    assert missing.stderr.count("\n") == 1
    assert missing.stderr.startswith("Error: ")
    assert modelkit("fetch").returncode == 2
    assert modelkit("--help").returncode == 0
    module = subprocess.run(
        [sys.executable, "-m", "modelkit_assets", "assets", "info", "cli/asset"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert "cli/asset:0.1" in module.stdout


def test_progress_bar_on_a_terminal_only(
    pushed: StorageProvider, store_env: StoreEnv, tmp_path: Path
) -> None:
    """With stderr on a pseudo-terminal, push and fetch draw a bar (bytes, files); -q silences
    it. (Whether a push reports bytes before its end is tested in test_upload_progress.py.)"""

    def stderr_on_tty(*args: str) -> str:
        leader, follower = pty.openpty()
        process = subprocess.Popen(
            [MODELKIT, "assets", *args],
            env={**_env(store_env), "COLUMNS": "200"},
            stdout=subprocess.PIPE,
            stderr=follower,
            text=True,
        )
        os.close(follower)
        chunks = []
        while True:
            try:
                data = os.read(leader, 4096)
            except OSError:
                break
            if not data:
                break
            chunks.append(data)
        process.communicate(timeout=60)
        os.close(leader)
        assert process.returncode == 0
        return b"".join(chunks).decode(errors="replace")

    drawn = stderr_on_tty("fetch", "cli/asset:0.0", "--force")
    assert "fetch cli/asset:0.0" in drawn
    assert "2/2 files" in drawn
    assert "3.0" in drawn  # bytes, in kB
    assert stderr_on_tty("fetch", "cli/asset:0.0", "--force", "-q") == ""
    weights = tmp_path / "weights.bin"
    weights.write_bytes(os.urandom(3 * 1024 * 1024))
    drawn = stderr_on_tty("new", str(weights), "cli/weights", "--yes")
    assert "push cli/weights:0.0" in drawn
    assert "3.1/3.1 MB" in drawn
    assert "1/1 files" in drawn


def test_help_imports_nothing_heavy() -> None:
    probe = (
        "import sys\nfrom modelkit_assets.cli import modelkit_cli\n"
        "try:\n    modelkit_cli(['assets', '--help'])\nexcept SystemExit:\n    pass\n"
        "heavy = [m for m in ('rich', 'pluggy', 'modelkit_assets.store', 'boto3') "
        "if m in sys.modules]\nprint('HEAVY', heavy, file=sys.stderr)"
    )
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert "HEAVY []" in result.stderr


def test_every_help_ends_with_examples() -> None:
    from click.testing import CliRunner

    from modelkit_assets.cli import assets_cli, modelkit_cli

    for args in ([], ["assets"], *(["assets", name] for name in assets_cli.commands)):
        result = CliRunner().invoke(modelkit_cli, [*args, "--help"])
        assert result.exit_code == 0, args
        assert re.search(r"Examples:\n +modelkit ", result.stdout), args
