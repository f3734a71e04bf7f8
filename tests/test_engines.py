"""The data-path engines (modelkit_assets.engines): which one a driver gets, and what the obstore
engine (the fast extra) keeps of the driver's contract on real S3 servers and fake-gcs-server."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from modelkit_assets import StorageProvider, errors
from modelkit_assets.engines import ENGINE_ENV, engine_name, obstore_installed
from modelkit_assets.hashing import digest_bytes
from modelkit_assets_s3.driver import S3StorageDriver
from tests.cli_runner import fails
from tests.engine_support import fetch_in_a_new_process, pushed_as_a, sdk_modules_of_a_fetch
from tests.faultproxy import FaultProxy, Faults
from tests.guarantees.faults import endpoint_port, redirected
from tests.servers import Backend
from tests.servers.gcs import BUCKET as GCS_BUCKET
from tests.servers.gcs import GCSServer
from tests.servers.s3 import ACCESS_KEY, BUCKET, SECRET_KEY, S3Server

needs_obstore = pytest.mark.skipif(not obstore_installed(), reason="the fast extra is absent")


def _driver(server: S3Server, **kwargs: Any) -> S3StorageDriver:
    options = {
        "endpoint_url": server.endpoint,
        "aws_access_key_id": ACCESS_KEY,
        "aws_secret_access_key": SECRET_KEY,
        "region_name": "us-east-1",
        **kwargs,
    }
    return S3StorageDriver(BUCKET, timeout_s=30.0, **options)


@pytest.fixture
def prefix() -> str:
    return f"engine-{uuid.uuid4().hex[:12]}"


def test_the_setting_is_checked(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv(ENGINE_ENV, "turbo")
    with pytest.raises(errors.InvalidSettingError, match=ENGINE_ENV):
        S3StorageDriver("b", endpoint_url="http://127.0.0.1:9")
    for key, value in {
        "MODELKIT_STORAGE_PROVIDER": "s3",
        "MODELKIT_STORAGE_BUCKET": "b",
        "MODELKIT_ASSETS_DIR": str(tmp_path),
        "S3_ENDPOINT": "http://127.0.0.1:9",
    }.items():
        monkeypatch.setenv(key, value)
    assert ENGINE_ENV in fails("fetch", "a:0.0", code=2)  # one line, no traceback


def test_sdk_engine_and_ready_clients_keep_boto3(
    seaweedfs_server: S3Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(ENGINE_ENV, "sdk")
    assert engine_name(_driver(seaweedfs_server)) == "sdk"
    monkeypatch.setenv(ENGINE_ENV, "auto")
    ready = S3StorageDriver(BUCKET, client=seaweedfs_server.client("s3"))
    assert engine_name(ready) == "sdk"  # a client= is used as it is, its settings included


def test_auto_is_obstore_when_installed(seaweedfs_server: S3Server) -> None:
    expected = "obstore" if obstore_installed() else "sdk"
    assert engine_name(_driver(seaweedfs_server)) == expected


@needs_obstore
def test_obstore_moves_the_bytes_and_no_boto3_client_is_built(
    seaweedfs_server: S3Server, tmp_path: Path, prefix: str
) -> None:
    """A round trip of small files, a streamed 3 MiB file and a 40 MiB one (parallel ranges),
    each checked against its digest, with no boto3 client (its 0.4 s of start-up) built."""
    driver = _driver(seaweedfs_server)
    contents = {f"{prefix}/f{i}": f"file {i}".encode() * (i + 1) for i in range(40)}
    contents[f"{prefix}/big"] = bytes(range(256)) * (3 * 4096)
    contents[f"{prefix}/huge"] = os.urandom(40 * 1024 * 1024 + 5)
    jobs = [(data, name, "") for name, data in contents.items()]
    assert all(error is None for _, error in driver.create_many(jobs, 8))
    again = dict(driver.create_many(jobs[:1], 8))
    assert isinstance(again[0], errors.ObjectAlreadyExistsError)  # create-only on the server
    paths = [(name, str(tmp_path / name.rsplit("/", 1)[1])) for name in contents]
    outcomes = dict(
        driver.download_many([*paths, (f"{prefix}/none", str(tmp_path / "n"))], "blake3", 4)
    )
    for index, (name, path) in enumerate(paths):
        assert outcomes[index] == digest_bytes(contents[name], "blake3")
        assert Path(path).read_bytes() == contents[name]
    assert isinstance(outcomes[len(paths)], errors.ObjectDoesNotExistError)
    assert not (tmp_path / "n").exists()
    assert sorted(driver.iterate_objects(f"{prefix}/f1")) == sorted(
        n for n in contents if n.startswith(f"{prefix}/f1")
    )
    assert driver._client is None


@needs_obstore
def test_compare_and_swap_through_obstore(seaweedfs_server: S3Server, prefix: str) -> None:
    driver = _driver(seaweedfs_server)
    name = f"{prefix}/index"
    driver.write_object(b"1", name, if_absent=True)
    with pytest.raises(errors.PreconditionFailedError):
        driver.write_object(b"2", name, if_absent=True)
    _, token = driver.read_object(name)
    driver.write_object(b"2", name, if_match=token)
    with pytest.raises(errors.PreconditionFailedError):
        driver.write_object(b"3", name, if_match=token)  # stale token
    assert driver.read_object(name)[0] == b"2"


@needs_obstore
def test_a_replaced_method_stays_in_charge(
    seaweedfs_server: S3Server, tmp_path: Path, prefix: str
) -> None:
    """A wrapper on download_object (a fault injector, an audit) sees every download: the
    engine never goes around it."""
    driver = _driver(seaweedfs_server)
    driver.write_object(b"x", f"{prefix}/a")
    seen: list[str] = []
    original = driver.download_object

    def audited(object_name: str, destination_path: str) -> None:
        seen.append(object_name)
        original(object_name, destination_path)

    driver.download_object = audited  # type: ignore[method-assign]
    outcomes = dict(driver.download_many([(f"{prefix}/a", str(tmp_path / "a"))], "blake3", 2))
    assert outcomes[0] == digest_bytes(b"x", "blake3")
    assert seen == [f"{prefix}/a"]


@pytest.fixture
def sdk_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """obstore taken for absent, as if the extra were not installed."""
    import modelkit_assets.engines as engines

    monkeypatch.setattr(engines, "obstore_installed", lambda: False)


def test_obstore_asked_for_but_absent_is_one_clear_error(
    sdk_only: None, monkeypatch: pytest.MonkeyPatch, seaweedfs_server: S3Server
) -> None:
    monkeypatch.setenv(ENGINE_ENV, "obstore")
    with pytest.raises(errors.ConfigurationError, match=r"modelkit-assets-s3\[fast\]"):
        _driver(seaweedfs_server)
    monkeypatch.setenv(ENGINE_ENV, "auto")
    assert engine_name(_driver(seaweedfs_server)) == "sdk"


@needs_obstore
def test_a_fetch_through_obstore_checks_every_digest(
    seaweedfs_server: S3Server, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, prefix: str
) -> None:
    """A file changed in the store behind the .meta's back is refused, as with boto3."""
    for key, value in {
        **seaweedfs_server.env,
        "MODELKIT_STORAGE_PROVIDER": "s3",
        "MODELKIT_STORAGE_BUCKET": BUCKET,
        "MODELKIT_STORAGE_PREFIX": prefix,
        "MODELKIT_ASSETS_DIR": str(tmp_path / "assets"),
    }.items():
        monkeypatch.setenv(key, value)
    (tmp_path / "assets").mkdir()
    source = tmp_path / "src"
    source.mkdir()
    for i in range(5):
        (source / f"f{i}").write_bytes(b"%d" % i * 100)
    store = StorageProvider()
    store.new(str(source), "a", "0.0")
    driver = _driver(seaweedfs_server)
    driver.write_object(b"tampered", f"{prefix}/a/0.0/f3")
    with pytest.raises(errors.AssetIntegrityError, match="f3"):
        store.download("a", "0.0", str(tmp_path / "assets"))


@needs_obstore
def test_a_forked_child_keeps_to_the_sdk(
    seaweedfs_server: S3Server, tmp_path: Path, prefix: str
) -> None:
    """A server that fetches its models, then forks its workers: obstore's runtime does not
    survive a fork (a request there waits forever), so the worker's fetch goes through boto3."""
    driver = _driver(seaweedfs_server)
    driver.write_object(b"x" * 100, f"{prefix}/a")
    assert dict(driver.download_many([(f"{prefix}/a", str(tmp_path / "p"))], "blake3", 2))
    pid = os.fork()
    if pid == 0:  # the child: exit 0 only if its download completes, checked
        code = 1
        try:
            outcomes = dict(
                driver.download_many([(f"{prefix}/a", str(tmp_path / "c"))], "blake3", 2)
            )
            code = 0 if outcomes[0] == digest_bytes(b"x" * 100, "blake3") else 1
        finally:
            os._exit(code)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            assert os.waitstatus_to_exitcode(status) == 0
            return
        time.sleep(0.05)
    os.kill(pid, 9)
    os.waitpid(pid, 0)
    raise AssertionError("the forked child's download hung")


@needs_obstore
def test_a_fetch_through_obstore_never_imports_botocore(
    seaweedfs_server: S3Server, tmp_path: Path, prefix: str
) -> None:
    """botocore and s3transfer cost 50-80 ms of a small fetch's process: with keys at hand
    and obstore moving the bytes, a whole fetch (resolve, .meta, files, digests) loads neither."""
    modules = sdk_modules_of_a_fetch(
        seaweedfs_server.env, "s3", BUCKET, prefix, tmp_path,
        sdk_prefixes=("boto3", "botocore", "s3transfer"), drop_env=("AWS_",),
    )  # fmt: skip
    assert modules == []


#: Run in the fetching process first: obstore's threads (foreign to Python) sleep 0.3 s after
#: each wake-up write of the engine's loop, before they take the GIL back, so their hand-back
#: of a result outlasts the fetch that waited for it, as a busy machine makes it now and then;
#: and the interpreter's finalization lasts a second (an object held by a module sleeps as it
#: is destroyed), so that they wake while it runs.
SLOW_HAND_BACK = """
import asyncio.selector_events, threading, time
_write = asyncio.selector_events.BaseSelectorEventLoop._write_to_self
def _slow_write(self):
    _write(self)
    if isinstance(threading.current_thread(), threading._DummyThread):
        time.sleep(0.3)
asyncio.selector_events.BaseSelectorEventLoop._write_to_self = _slow_write
class _SlowFinalization:
    def __del__(self, sleep=time.sleep):
        sleep(1.0)
sys.modules["_slow_finalization"] = type(sys)("_slow_finalization")
sys.modules["_slow_finalization"].holder = _SlowFinalization()
"""


@needs_obstore
def test_a_process_that_fetched_through_obstore_exits_cleanly_while_its_threads_hand_back(
    seaweedfs_server: S3Server, tmp_path: Path, prefix: str
) -> None:
    """A tokio thread that takes the GIL back once the interpreter finalizes ends with
    pthread_exit, which aborts a Rust thread: the process, its fetch done, died of SIGABRT or
    SIGBUS with nothing on stderr (CI, about one process in a hundred). The exit now waits
    until obstore holds none of the loop's futures."""
    done = fetch_in_a_new_process(
        seaweedfs_server.env, "s3", BUCKET, prefix, tmp_path, drop_env=("AWS_",),
        before=SLOW_HAND_BACK,
    )  # fmt: skip
    assert done.returncode == 0, (done.returncode, done.stderr)
    path = json.loads(done.stdout.strip().splitlines()[-1])
    assert sorted(n for n in os.listdir(path) if not n.startswith(".")) == ["f0", "f1", "f2"]


@needs_obstore
def test_many_file_calls_from_inside_a_running_asyncio_loop_get_the_same_answers(
    seaweedfs_server: S3Server, tmp_path: Path, prefix: str
) -> None:
    """The engine's loop runs on the caller's thread, unless that thread runs a loop already
    (a web handler calling the blocking API): then on the shared loop's thread."""
    driver = _driver(seaweedfs_server)
    contents = {f"{prefix}/f{i}": os.urandom(1000 * i) for i in range(12)}  # f0 is empty
    jobs = [(data, name, "") for name, data in contents.items()]
    paths = [(name, str(tmp_path / name.rsplit("/", 1)[1])) for name in contents]

    async def inside() -> tuple[list[Any], dict[int, Any]]:
        return list(driver.create_many(jobs, 4)), dict(driver.download_many(paths, "blake3", 4))

    created, outcomes = asyncio.run(inside())
    assert len(created) == len(jobs)
    assert all(error is None for _, error in created)
    for index, (name, path) in enumerate(paths):
        assert outcomes[index] == digest_bytes(contents[name], "blake3")
        assert Path(path).read_bytes() == contents[name]
    again = dict(driver.download_many(paths[:3], "blake3", 4))  # and on this thread again
    assert again == {i: digest_bytes(contents[paths[i][0]], "blake3") for i in range(3)}


@needs_obstore
def test_a_many_file_fetch_runs_the_engines_loop_on_the_fetching_thread(
    seaweedfs_server: S3Server, tmp_path: Path, prefix: str
) -> None:
    """Results reach the caller with no hand-off between two Python threads (on 1000 files of
    10 KiB, 7% of a CLI fetch): no thread of the shared loop is started."""
    done = fetch_in_a_new_process(
        seaweedfs_server.env, "s3", BUCKET, prefix, tmp_path, drop_env=("AWS_",),
        before="import threading\n",
        after="names = sorted(t.name for t in threading.enumerate())\n",
        answer="[path, names]",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    path, names = json.loads(done.stdout.strip().splitlines()[-1])
    assert sorted(n for n in os.listdir(path) if not n.startswith(".")) == ["f0", "f1", "f2"]
    assert "modelkit-obstore" not in names, names


def test_ctrl_c_in_the_middle_of_a_fetch_exits_130_and_publishes_nothing(
    seaweedfs_server: S3Server, tmp_path: Path, prefix: str, engine: str
) -> None:
    """SIGINT while 40 files come in slowly (through the fault proxy): exit 130, one line, no
    version in the cache; the next fetch gets every file right."""
    env = pushed_as_a(
        seaweedfs_server.env, "s3", BUCKET, prefix, tmp_path, drop_env=("AWS_",),
        sizes=(64 * 1024,) * 40, engine=engine,
    )  # fmt: skip
    source = tmp_path / "src"
    command = [sys.executable, "-m", "modelkit_assets", "assets"]
    with FaultProxy(endpoint_port(seaweedfs_server.env)) as proxy:
        proxy.faults = Faults(bytes_per_s=100_000)  # 0.6 s a file
        slow = {**env, **redirected(seaweedfs_server.env, proxy.port)}
        fetching = subprocess.Popen(
            [*command, "fetch", "a:0.0"], env=slow, text=True,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        )  # fmt: skip
        deadline = time.monotonic() + 30
        while proxy.stats.bytes_down < 200_000 and time.monotonic() < deadline:
            time.sleep(0.05)  # the files are on their way
        fetching.send_signal(signal.SIGINT)
        _, stderr = fetching.communicate(timeout=30)
    assert fetching.returncode == 130, stderr
    assert stderr.splitlines()[-1] == "Error: interrupted; nothing was published", stderr
    assert "Traceback" not in stderr
    assert not (tmp_path / "assets" / "a" / "0.0").exists()
    fetched = subprocess.run(
        [*command, "fetch", "a:0.0"], env=env, capture_output=True, text=True, check=False
    )
    assert fetched.returncode == 0, fetched.stderr
    for i in range(40):
        name = f"f{i}"
        assert (tmp_path / "assets" / "a" / "0.0" / name).read_bytes() == (
            source / name
        ).read_bytes()


def test_a_full_disk_during_a_fetch_is_one_line_at_once_and_loses_nothing(
    backend: Backend, engine: str, tmp_path: Path, prefix: str
) -> None:
    """A fetch whose files cannot be written (the kernel's limit on a file's size, as a full
    disk would: the write fails, with no file name) says so in one line and exits 1 at once:
    it is the machine's error, not the store's, and is not retried. Through obstore it was
    taken for a store out of reach and retried for the whole storage timeout. Once the files
    fit, the next fetch gets every file right."""
    import resource

    env = pushed_as_a(
        dict(backend.env), backend.provider, backend.bucket, prefix, tmp_path,
        drop_env=("AWS_", "AZURE_", "GOOGLE_", "STORAGE_EMULATOR"),
        sizes=(64 * 1024,) * 20, engine=engine,
    )  # fmt: skip
    env["MODELKIT_STORAGE_TIMEOUT_S"] = "60"  # a retried error would outlast the wait below
    command = [sys.executable, "-m", "modelkit_assets", "assets", "fetch", "a:0.0"]
    limit = 32 * 1024

    def small_files_only() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    fetching = subprocess.run(
        command, env=env, capture_output=True, text=True, check=False, timeout=30,
        preexec_fn=small_files_only,
    )  # fmt: skip
    assert fetching.returncode == 1, fetching.stderr
    lines = [line for line in fetching.stderr.splitlines() if line.startswith("Error")]
    assert len(lines) == 1, fetching.stderr
    assert "File too large" in lines[0], lines
    assert "a:0.0" in lines[0], lines
    assert "retrying" not in fetching.stderr
    assert "Traceback" not in fetching.stderr
    assert not (tmp_path / "assets" / "a" / "0.0").exists()
    fetched = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    assert fetched.returncode == 0, fetched.stderr
    for i in range(20):
        name = f"f{i}"
        assert (tmp_path / "assets" / "a" / "0.0" / name).read_bytes() == (
            tmp_path / "src" / name
        ).read_bytes()


@needs_obstore
def test_a_fetch_of_one_large_file_through_obstore_never_imports_asyncio(
    seaweedfs_server: S3Server, tmp_path: Path, prefix: str
) -> None:
    """asyncio (with ssl) costs 15 ms of a process: only many-file calls run on the engine's
    loop, so a large file (ranges on the core's threads, obstore's blocking API) loads none."""
    done = fetch_in_a_new_process(
        seaweedfs_server.env, "s3", BUCKET, prefix, tmp_path, drop_env=("AWS_",),
        after="loaded = 'asyncio' in sys.modules\n", answer="[path, loaded]",
        sizes=(9 * 1024 * 1024,),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    path, loaded = json.loads(done.stdout.strip().splitlines()[-1])
    assert os.path.getsize(os.path.join(path, "f0")) == 9 * 1024 * 1024
    assert loaded is False


# -- gcs: reads through obstore, writes through google-cloud-storage ----------------------------


def _gcs_driver(server: GCSServer, monkeypatch: pytest.MonkeyPatch, **kwargs: Any) -> Any:
    from modelkit_assets_gcs.driver import GCSStorageDriver

    monkeypatch.setenv("STORAGE_EMULATOR_HOST", server.url)
    return GCSStorageDriver(GCS_BUCKET, timeout_s=30.0, **kwargs)


@needs_obstore
def test_gcs_reads_go_through_obstore_and_no_sdk_client_is_built(
    gcs_backend: Backend,
    gcs_server: GCSServer,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    prefix: str,
) -> None:
    """Small files, a streamed 3 MiB file and a 40 MiB one (parallel ranges) written by the
    SDK, read back through obstore, each checked against its digest, with no SDK client (nor
    google-cloud-storage's import) spent on the reads."""
    monkeypatch.setenv(ENGINE_ENV, "sdk")
    writer = _gcs_driver(gcs_server, monkeypatch)
    contents = {f"{prefix}/f{i}": f"file {i}".encode() * (i + 1) for i in range(20)}
    contents[f"{prefix}/big"] = bytes(range(256)) * (3 * 4096)
    contents[f"{prefix}/huge"] = os.urandom(40 * 1024 * 1024 + 5)
    for name, data in contents.items():
        writer.create_bytes(data, name)
    monkeypatch.setenv(ENGINE_ENV, "obstore")
    driver = _gcs_driver(gcs_server, monkeypatch)
    assert engine_name(driver) == "obstore"
    paths = [(name, str(tmp_path / name.rsplit("/", 1)[1])) for name in contents]
    outcomes = dict(driver.download_many(paths, "blake3", 4))
    for index, (name, path) in enumerate(paths):
        assert outcomes[index] == digest_bytes(contents[name], "blake3")
        assert Path(path).read_bytes() == contents[name]
    huge = contents[f"{prefix}/huge"]
    start, end = 5 * 1024 * 1024 - 3, 7 * 1024 * 1024 + 11
    assert b"".join(driver.read_range(f"{prefix}/huge", start, end)) == huge[start:end]
    assert sorted(driver.iterate_objects(f"{prefix}/f1")) == sorted(
        n for n in contents if n.startswith(f"{prefix}/f1")
    )
    assert driver.exists(f"{prefix}/f3")
    assert driver._client is None
    assert not driver.exists(f"{prefix}/none")  # a 404: the driver asks whose (the SDK's)
    missing = dict(driver.download_many([(f"{prefix}/none", str(tmp_path / "n"))], "blake3", 2))
    assert isinstance(missing[0], errors.ObjectDoesNotExistError)
    assert not (tmp_path / "n").exists()


@needs_obstore
@pytest.mark.parametrize(
    ("chosen_by", "chosen", "uploads", "downloads"),
    [
        (None, None, 16, None),  # pushes: the SDK's threads; downloads: the engine's 64
        ("env", 16, 16, 16),
        ("argument", 16, 16, 16),  # 16 on purpose, the default's number: was taken as unset
        ("argument", 5, 5, 5),
    ],
)
def test_gcs_downloads_through_obstore_keep_64_in_flight_unless_told_otherwise(
    gcs_backend: Backend,
    gcs_server: GCSServer,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    prefix: str,
    chosen_by: str | None,
    chosen: int | None,
    uploads: int,
    downloads: int | None,
) -> None:
    """The GCS engine's default of 16 is for pushes (the SDK's threads); its downloads are
    tasks on the loop and take 64 when nobody chose a number. A number chosen, in the
    environment or as ``max_workers``, holds for both, whatever it is."""
    from modelkit_assets.environment import MAX_WORKERS_ENV
    from modelkit_assets_obstore.engine import DEFAULT_TASKS, ObstoreEngine

    monkeypatch.setenv(ENGINE_ENV, "obstore")
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", gcs_server.url)
    monkeypatch.delenv(MAX_WORKERS_ENV, raising=False)
    if chosen_by == "env":
        monkeypatch.setenv(MAX_WORKERS_ENV, str(chosen))
    store = StorageProvider(
        provider="gcs",
        bucket=GCS_BUCKET,
        prefix=prefix,
        max_workers=chosen if chosen_by == "argument" else None,
        timeout_s=30.0,
    )
    source = tmp_path / "src"
    source.mkdir()
    for i in range(3):
        (source / f"f{i}").write_bytes(b"%d" % i * 100)
    store.new(str(source), "a", "0.0")
    limits: list[int] = []
    run_many = ObstoreEngine._run_many

    def recording(self: Any, jobs: Any, one: Any, max_workers: int, *rest: Any) -> Any:
        limits.append(max_workers)
        return run_many(self, jobs, one, max_workers, *rest)

    monkeypatch.setattr(ObstoreEngine, "_run_many", recording)
    (tmp_path / "assets").mkdir()
    store.download("a", "0.0", str(tmp_path / "assets"))
    assert store.max_workers == uploads
    expected = downloads or DEFAULT_TASKS
    assert store.max_downloads == expected
    assert limits == [expected]
    assert (tmp_path / "assets" / "a" / "0.0" / "f1").read_bytes() == b"1" * 100


@needs_obstore
def test_gcs_version_tokens_through_obstore_are_the_generations(
    gcs_backend: Backend, gcs_server: GCSServer, monkeypatch: pytest.MonkeyPatch, prefix: str
) -> None:
    """read_object's token (obstore's, from the XML API) is what the SDK's compare-and-swap
    writes take: the object's generation."""
    monkeypatch.setenv(ENGINE_ENV, "obstore")
    driver = _gcs_driver(gcs_server, monkeypatch)
    name = f"{prefix}/index"
    driver.write_object(b"1", name, if_absent=True)
    data, token = driver.read_object(name)
    assert data == b"1"
    assert token == str(driver.client.bucket(GCS_BUCKET).get_blob(name).generation)
    driver.write_object(b"2", name, if_match=token)
    with pytest.raises(errors.PreconditionFailedError):
        driver.write_object(b"3", name, if_match=token)  # stale token
    assert driver.read_object(name)[0] == b"2"


@needs_obstore
def test_a_missing_gcs_bucket_through_obstore_is_bucket_does_not_exist(
    gcs_backend: Backend, gcs_server: GCSServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """fake-gcs-server answers a missing bucket as a missing object (a bare 404), and a listing
    of it with a 500: each is still BucketDoesNotExistError, as through the SDK."""
    from modelkit_assets_gcs.driver import GCSStorageDriver

    monkeypatch.setenv(ENGINE_ENV, "obstore")
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", gcs_server.url)
    driver = GCSStorageDriver("no-such-bucket-here", timeout_s=5.0)
    assert engine_name(driver) == "obstore"

    def download() -> None:
        outcome = dict(driver.download_many([("x", str(tmp_path / "x"))], "blake3", 2))[0]
        assert isinstance(outcome, BaseException)
        raise outcome

    calls = [
        lambda: driver.read_object("x"),
        lambda: driver.exists("x"),
        lambda: list(driver.iterate_objects("p/")),
        download,
    ]
    for call in calls:
        with pytest.raises(errors.BucketDoesNotExistError):
            call()


def _service_account(path: Path) -> Path:
    """A service-account JSON with a fresh key: obstore signs its own tokens with it."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    info = {
        "type": "service_account",
        "project_id": "p",
        "private_key_id": "k1",
        "private_key": pem.decode(),
        "client_email": "modelkit@p.iam.gserviceaccount.com",
        "client_id": "1",
        "token_uri": "http://127.0.0.1:9/token",
    }
    path.write_text(json.dumps(info))
    return path


@needs_obstore
def test_gcs_credentials_decide_the_engine(
    gcs_backend: Backend,
    gcs_server: GCSServer,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    prefix: str,
) -> None:
    """A service-account file is obstore's (it signs its tokens itself: the emulator takes
    them); an authorized_user file goes through google-auth; a ready client=, a subclass's
    own build_client and a file the SDK refuses keep the SDK."""
    from google.cloud import storage

    from modelkit_assets_gcs.driver import GCSStorageDriver

    monkeypatch.setenv(ENGINE_ENV, "obstore")
    account = _service_account(tmp_path / "sa.json")
    signed = _gcs_driver(gcs_server, monkeypatch, credentials_path=str(account))
    assert engine_name(signed) == "obstore"
    _gcs_driver(gcs_server, monkeypatch).write_object(b"x", f"{prefix}/a")  # anonymous SDK
    assert signed.read_object(f"{prefix}/a")[0] == b"x"  # no token endpoint asked
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(account))
    assert engine_name(_gcs_driver(gcs_server, monkeypatch)) == "obstore"
    user = tmp_path / "user.json"
    kind = {"type": "authorized_user", "client_id": "c", "client_secret": "s"}
    user.write_text(json.dumps({**kind, "refresh_token": "r"}))
    assert engine_name(_gcs_driver(gcs_server, monkeypatch, credentials_path=str(user))) == (
        "obstore"
    )
    monkeypatch.delenv("GOOGLE_APPLICATION_CREDENTIALS")

    class OwnClient(GCSStorageDriver):
        @staticmethod
        def build_client(client_configuration: Any) -> storage.Client:
            return storage.Client()

    ready = GCSStorageDriver(GCS_BUCKET, client=storage.Client())
    assert engine_name(ready) == "sdk"
    assert engine_name(OwnClient(GCS_BUCKET)) == "sdk"
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(errors.ConfigurationError, match="not JSON"):
        _gcs_driver(gcs_server, monkeypatch, credentials_path=str(tmp_path / "bad.json"))


@needs_obstore
def test_a_gcs_fetch_through_obstore_never_imports_google_cloud_storage(
    gcs_backend: Backend, gcs_server: GCSServer, tmp_path: Path, prefix: str
) -> None:
    """google-cloud-storage (with google.api_core) costs about 0.2 s of a small fetch's
    process: with obstore reading, a whole fetch (resolve, .meta, files, digests) loads none
    of it."""
    modules = sdk_modules_of_a_fetch(
        dict(gcs_backend.env), "gcs", GCS_BUCKET, prefix, tmp_path,
        sdk_prefixes=("google.cloud", "google.api_core", "google.auth"), drop_env=("GOOGLE_",),
    )  # fmt: skip
    assert modules == []


#: File names that URL encoding, XML listings or a path type could each turn into another.
ODD_NAMES = (
    "a b.txt", "ü-ñ.bin", "100%.txt", "q?x", "h#sh", "plus+sign", "semi;colon", "eq=1&b=2",
    "dir with space/x y", "tilde~", "star*", "quote'", "brack[1]", "comma,", "at@", "dollar$",
    "paren(1)", "%20literally", "trail ", " lead",
)  # fmt: skip


def test_odd_file_names_come_back_as_they_went_whichever_engine_moves_them(
    backend: Backend, engine: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, prefix: str
) -> None:
    """A folder pushed through one engine and fetched through the other (or the same, where a
    store has one) gives back every file under its own name, with its own bytes."""
    source = tmp_path / "src"
    for name in ODD_NAMES:
        (source / name).parent.mkdir(parents=True, exist_ok=True)
        (source / name).write_text(name)
    settings = {**backend.env, "MODELKIT_STORAGE_PREFIX": prefix}
    for key, value in settings.items():
        monkeypatch.setenv(key, value)
    pushing = StorageProvider(provider=backend.provider, bucket=backend.bucket)
    pushing.new(str(source), "odd", "0.0")
    other = {"sdk": "obstore", "obstore": "sdk"}.get(engine, engine)
    if other == "obstore" and not obstore_installed():
        other = engine
    monkeypatch.setenv(ENGINE_ENV, other)
    fetching = StorageProvider(provider=backend.provider, bucket=backend.bucket)
    (tmp_path / "assets").mkdir()
    fetching.download("odd", "0.0", str(tmp_path / "assets"))
    fetched = tmp_path / "assets" / "odd" / "0.0"
    found = sorted(str(p.relative_to(fetched)) for p in fetched.rglob("*") if p.is_file())
    assert found == sorted([*ODD_NAMES, ".SUCCESS"])  # the marker of modelkit's layout
    for name in ODD_NAMES:
        assert (fetched / name).read_text() == name


@needs_obstore
def test_an_object_name_obstore_cannot_parse_is_refused_at_once_not_retried(
    seaweedfs_server: S3Server, prefix: str
) -> None:
    """obstore raises ValueError for a path it cannot parse (a tab, a '.' segment): a refusal,
    not a store out of reach to retry for the whole storage timeout."""
    driver = _driver(seaweedfs_server)
    started = time.monotonic()
    with pytest.raises(errors.StorageDriverError, match="refused") as refused:
        driver.write_object(b"x", f"{prefix}/a\tb")
    assert not isinstance(refused.value, errors.StorageUnavailableError)
    assert time.monotonic() - started < 5
