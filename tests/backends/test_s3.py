"""What is specific to the s3 provider, on real servers: moto (with KMS) and SeaweedFS (with
authentication on). Nothing here mocks boto3; faults are injected by a real HTTP proxy."""

from __future__ import annotations

import http.client
import http.server
import os
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from modelkit_assets import StorageProvider, errors
from modelkit_assets.hashing import digest_bytes, digest_file
from modelkit_assets.store import make_driver
from modelkit_assets_s3.continue_header import CONTINUE_THRESHOLD
from modelkit_assets_s3.driver import S3StorageDriver
from modelkit_assets_s3.multipart import MULTIPART_THRESHOLD
from modelkit_assets_s3.settings import max_attempts
from tests.cli_runner import fails, ok, run
from tests.faultproxy import FaultProxy, Faults
from tests.servers.process import free_port
from tests.servers.s3 import ACCESS_KEY, BUCKET, SECRET_KEY, S3Server

SERVERS = ["moto_server", "seaweedfs_server"]


@pytest.fixture(params=SERVERS)
def server(request: pytest.FixtureRequest) -> S3Server:
    found: S3Server = request.getfixturevalue(request.param)
    return found


@pytest.fixture
def prefix() -> str:
    return f"s3-{uuid.uuid4().hex[:12]}"


def _env(monkeypatch: pytest.MonkeyPatch, env: dict[str, str], tmp_path: Path) -> None:
    assets = tmp_path / "assets"
    assets.mkdir(exist_ok=True)
    for key, value in {
        "MODELKIT_STORAGE_PROVIDER": "s3",
        "MODELKIT_STORAGE_BUCKET": BUCKET,
        "MODELKIT_ASSETS_DIR": str(assets),
        **env,
    }.items():
        monkeypatch.setenv(key, value)


def _driver(server: S3Server, **kwargs: Any) -> S3StorageDriver:
    options = {
        "endpoint_url": server.endpoint,
        "aws_access_key_id": ACCESS_KEY,
        "aws_secret_access_key": SECRET_KEY,
        "region_name": "us-east-1",
        **kwargs,
    }
    return S3StorageDriver(options.pop("bucket", BUCKET), timeout_s=30.0, **options)


def _file(tmp_path: Path, size: int, name: str = "payload") -> Path:
    path = tmp_path / name
    path.write_bytes(os.urandom(size))
    return path


# -- plugin and configuration ------------------------------------------------------------------


def test_plugin_discovery_does_not_import_boto3() -> None:
    code = (
        "import sys; from modelkit_assets.plugins import get_registry; "
        "r = get_registry().driver('s3'); assert r.record.schemes == ('s3',); "
        "assert 'boto3' not in sys.modules and 'botocore' not in sys.modules, 'SDK imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_keyword_arguments_configure_the_driver(seaweedfs_server: S3Server, prefix: str) -> None:
    # Authentication is on and the environment is empty: only the keywords can make this work.
    store = StorageProvider(
        provider="s3",
        bucket=BUCKET,
        prefix=prefix,
        endpoint_url=seaweedfs_server.endpoint,
        aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key=SECRET_KEY,
        region_name="eu-west-3",
    )
    assert isinstance(store.driver, S3StorageDriver)
    assert store.driver.client.meta.region_name == "eu-west-3"
    assert list(store.iterate_assets()) == []


def test_environment_configures_the_driver(
    seaweedfs_server: S3Server, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, prefix: str
) -> None:
    _env(monkeypatch, {**seaweedfs_server.env, "AWS_DEFAULT_REGION": "ap-south-1"}, tmp_path)
    store = StorageProvider(prefix=prefix)
    assert store.driver.client.meta.region_name == "ap-south-1"  # type: ignore[attr-defined]
    store.new(str(_file(tmp_path, 10)), "env/asset")
    assert store.get_versions_info("env/asset") == ["0.0"]


def test_a_ready_client_is_used_as_is(seaweedfs_server: S3Server, prefix: str) -> None:
    client = seaweedfs_server.client()
    store = StorageProvider(provider="s3", bucket=BUCKET, prefix=prefix, client=client)
    assert store.driver.client is client  # type: ignore[attr-defined]
    assert list(store.iterate_assets()) == []


def test_aws_profiles_and_dot_aws_are_read_as_boto3_does(
    seaweedfs_server: S3Server, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, prefix: str
) -> None:
    home = tmp_path / "home"
    (home / ".aws").mkdir(parents=True)
    (home / ".aws" / "config").write_text("[default]\nregion = us-east-1\n")
    (home / ".aws" / "credentials").write_text(
        f"[default]\naws_access_key_id = {ACCESS_KEY}\naws_secret_access_key = {SECRET_KEY}\n"
        f"[wrong]\naws_access_key_id = {ACCESS_KEY}\naws_secret_access_key = not-the-secret\n"
    )
    monkeypatch.setenv("HOME", str(home))
    _env(monkeypatch, {"S3_ENDPOINT": seaweedfs_server.endpoint}, tmp_path)
    assert list(StorageProvider(prefix=prefix).iterate_assets()) == []  # ~/.aws [default]

    monkeypatch.setenv("AWS_PROFILE", "wrong")
    with pytest.raises(errors.StorageAccessDeniedError):
        list(StorageProvider(prefix=prefix).iterate_assets())
    # boto3's order: keys in the environment beat AWS_PROFILE, profile_name= beats both.
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", ACCESS_KEY)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
    assert list(StorageProvider(prefix=prefix).iterate_assets()) == []
    with pytest.raises(errors.StorageAccessDeniedError):
        list(StorageProvider(prefix=prefix, profile_name="wrong").iterate_assets())

    with pytest.raises(errors.ConfigurationError, match="profile"):
        StorageProvider(prefix=prefix, profile_name="no-such-profile")


def test_unknown_setting_is_a_configuration_error() -> None:
    with pytest.raises(errors.ConfigurationError, match="aws_secret_key"):
        S3StorageDriver("b", aws_secret_key="oops", endpoint_url="http://127.0.0.1:9")


def test_lazy_driver_builds_its_client_on_first_use(
    moto_server: S3Server, monkeypatch: pytest.MonkeyPatch, prefix: str
) -> None:
    monkeypatch.setenv("MODELKIT_LAZY_DRIVER", "1")
    monkeypatch.setenv("MODELKIT_STORAGE_ENGINE", "sdk")  # the boto3 client's own laziness
    for key, value in moto_server.env.items():
        monkeypatch.setenv(key, value)
    driver = make_driver("s3", BUCKET, None, 30.0)
    assert driver._client is None  # type: ignore[attr-defined]
    assert not driver.exists(f"{prefix}/x")
    assert driver._client is not None  # type: ignore[attr-defined]


@pytest.mark.parametrize("checksums", ["when_supported", "when_required"])
def test_bodies_are_signed_unless_a_checksum_covers_them(
    server: S3Server,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    prefix: str,
    checksums: str,
) -> None:
    """With botocore's default CRC32 checksums, bodies are left out of the signature (no extra
    SHA-256 pass over plain HTTP); without them they stay signed. Uploads work either way."""
    monkeypatch.setenv("AWS_REQUEST_CHECKSUM_CALCULATION", checksums)
    driver = _driver(server)
    signed = (driver.client.meta.config.s3 or {}).get("payload_signing_enabled", True)
    assert signed is (checksums == "when_required")
    source = _file(tmp_path, MULTIPART_THRESHOLD + 10)
    driver.create_object(str(source), f"{prefix}/large")
    driver.write_object(b"small", f"{prefix}/small", if_absent=True)
    driver.download_object(f"{prefix}/large", str(tmp_path / "out"))
    assert (tmp_path / "out").read_bytes() == source.read_bytes()
    assert driver.read_object(f"{prefix}/small")[0] == b"small"


def _expect_headers(driver: S3StorageDriver) -> dict[str, Any]:
    """The ``Expect`` header of each PUT the driver's client sends from now on, by object."""
    sent: dict[str, Any] = {}

    def record(request: Any, **kwargs: Any) -> None:
        if request.method == "PUT":
            sent[request.url.rsplit("/", 1)[-1]] = request.headers.get("Expect")

    driver.client.meta.events.register("before-send.s3", record)
    return sent


def test_only_large_bodies_wait_for_100_continue(
    server: S3Server, tmp_path: Path, prefix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """botocore would send "Expect: 100-continue" with every body, one more round trip per
    small object; the driver's client keeps it from CONTINUE_THRESHOLD bytes up."""
    monkeypatch.setenv("MODELKIT_STORAGE_ENGINE", "sdk")  # what boto3's requests carry
    driver = _driver(server)
    sent = _expect_headers(driver)
    small = _file(tmp_path, CONTINUE_THRESHOLD - 1, "small")
    large = _file(tmp_path, CONTINUE_THRESHOLD, "large")
    driver.create_object(str(small), f"{prefix}/small")
    driver.create_object(str(large), f"{prefix}/large")
    driver.create_object_from_bytes(b"kept", f"{prefix}/kept", str(small))
    driver.write_object(b"meta", f"{prefix}/meta", if_absent=True)
    assert sent == {"small": None, "large": b"100-continue", "kept": None, "meta": None}
    with pytest.raises(errors.ObjectAlreadyExistsError):
        driver.create_object(str(large), f"{prefix}/large")  # refused before the body
    for name, source in (("small", small), ("large", large)):
        driver.download_object(f"{prefix}/{name}", str(tmp_path / "out"))
        assert (tmp_path / "out").read_bytes() == source.read_bytes()


def test_a_ready_client_is_left_as_it_is(seaweedfs_server: S3Server, prefix: str) -> None:
    from botocore.session import Session

    client = Session().create_client(
        "s3",
        endpoint_url=seaweedfs_server.endpoint,
        aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key=SECRET_KEY,
        region_name="us-east-1",
    )
    driver = S3StorageDriver(BUCKET, timeout_s=30.0, client=client)
    sent = _expect_headers(driver)
    driver.write_object(b"meta", f"{prefix}/meta", if_absent=True)
    assert sent == {"meta": b"100-continue"}  # botocore's own choice


def test_retry_attempts_fit_the_timeout() -> None:
    assert max_attempts(0.5) == 1
    assert max_attempts(1) == 2
    assert max_attempts(60) == 7  # backoffs 1+2+4+8+16+20 = 51 s
    assert max_attempts(300) == 19
    assert max_attempts(1e9) == 30


# -- KMS ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def kms_key(moto_server: S3Server) -> str:
    key: str = moto_server.client("kms").create_key(Description="modelkit-assets tests")[
        "KeyMetadata"
    ]["KeyId"]
    return key


def _assert_all_kms(server: S3Server, prefix: str, key: str, count: int) -> None:
    client = server.client()
    listed = client.list_objects_v2(Bucket=BUCKET, Prefix=prefix + "/")["Contents"]
    assert len(listed) == count
    for item in listed:
        head = client.head_object(Bucket=BUCKET, Key=item["Key"])
        assert head["ServerSideEncryption"] == "aws:kms", item["Key"]
        assert head["SSEKMSKeyId"].endswith(key), item["Key"]


def test_every_upload_is_sse_kms_with_the_key_from_the_environment(
    moto_server: S3Server,
    kms_key: str,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    prefix: str,
) -> None:
    _env(monkeypatch, {**moto_server.env, "AWS_KMS_KEY_ID": kms_key}, tmp_path)
    directory = tmp_path / "dir"
    (directory / "sub").mkdir(parents=True)
    (directory / "small.txt").write_text("small")
    _file(directory / "sub", MULTIPART_THRESHOLD + 1, "large.bin")  # create-only multipart
    store = StorageProvider(prefix=prefix)
    store.new(str(directory), "kms/asset")
    store.update(str(directory / "small.txt"), "kms/asset", "0.1")
    store.driver.upload_object(str(directory / "small.txt"), f"{prefix}/plain")  # transfer manager
    # .versions, 2 x .meta, 2 files of 0.0, the file of 0.1, and the plain upload
    _assert_all_kms(moto_server, prefix, kms_key, 7)


def test_kms_key_as_keyword_argument(
    moto_server: S3Server, kms_key: str, tmp_path: Path, prefix: str
) -> None:
    driver = _driver(moto_server, aws_kms_key_id=kms_key)
    driver.write_object(b"{}", f"{prefix}/index", if_absent=True)
    driver.create_object(str(_file(tmp_path, 10)), f"{prefix}/small")
    driver.upload_object(str(_file(tmp_path, MULTIPART_THRESHOLD + 5)), f"{prefix}/large")
    _assert_all_kms(moto_server, prefix, kms_key, 3)


# -- conditional writes, large files, listing --------------------------------------------------


def test_large_create_only_upload_is_atomic_under_a_race(
    moto_server: S3Server, tmp_path: Path, prefix: str
) -> None:
    """Two multipart uploads completing with ``IfNoneMatch='*'`` at once: exactly one wins.

    Run on moto only: SeaweedFS 4.48 checks the condition of CompleteMultipartUpload without
    serialising concurrent completions, so both sometimes win there (a server limitation; AWS
    S3 serialises them). The sequential refusal below is checked on both servers.
    """
    server = moto_server
    driver = _driver(server)
    name = f"{prefix}/large"
    files = [_file(tmp_path, MULTIPART_THRESHOLD + 1024, f"f{i}") for i in range(2)]

    def create(path: Path) -> str:
        try:
            driver.create_object(str(path), name)
        except errors.ObjectAlreadyExistsError:
            return "lost"
        return "won"

    with ThreadPoolExecutor(2) as pool:
        outcomes = list(pool.map(create, files))
    assert sorted(outcomes) == ["lost", "won"]
    winner = files[outcomes.index("won")]
    driver.download_object(name, str(tmp_path / "out"))
    assert (tmp_path / "out").read_bytes() == winner.read_bytes()
    with pytest.raises(errors.ObjectAlreadyExistsError):  # found before sending any part
        driver.create_object(str(files[0]), name)
    uploads = server.client().list_multipart_uploads(Bucket=BUCKET, Prefix=prefix)
    assert not uploads.get("Uploads"), "an aborted multipart upload was left behind"


def test_large_create_only_upload_refuses_an_existing_object(
    server: S3Server, tmp_path: Path, prefix: str
) -> None:
    driver = _driver(server)
    first, second = (_file(tmp_path, MULTIPART_THRESHOLD + 1024, f"f{i}") for i in range(2))
    driver.create_object(str(first), f"{prefix}/large")
    with pytest.raises(errors.ObjectAlreadyExistsError):
        driver.create_object(str(second), f"{prefix}/large")
    driver.download_object(f"{prefix}/large", str(tmp_path / "out"))
    assert (tmp_path / "out").read_bytes() == first.read_bytes()


def _leave_upload(server: S3Server, key: str, parts: dict[int, bytes]) -> str:
    """What a push killed midway leaves: an open multipart upload holding ``parts``."""
    client = server.client()
    upload_id = client.create_multipart_upload(Bucket=BUCKET, Key=key, ChecksumAlgorithm="CRC32")[
        "UploadId"
    ]
    for number, body in parts.items():
        client.upload_part(
            Bucket=BUCKET,
            Key=key,
            UploadId=upload_id,
            PartNumber=number,
            Body=body,
            ChecksumAlgorithm="CRC32",
        )
    return str(upload_id)


def test_an_interrupted_large_upload_goes_on_from_the_parts_that_match(
    server: S3Server, tmp_path: Path, prefix: str
) -> None:
    """Issue 20: the parts an interrupted upload left are kept when the local bytes at their
    offsets hash to them; a part holding other bytes (the file changed since) is sent again,
    and the object has exactly the file's bytes. No upload is left open afterwards."""
    part = MULTIPART_THRESHOLD
    source = _file(tmp_path, 4 * part + 1000, "model.bin")
    data = source.read_bytes()
    key = f"{prefix}/big"
    stale = bytes(b ^ 0xFF for b in data[2 * part : 2 * part + 64]) + data[2 * part + 64 : 3 * part]
    _leave_upload(server, key, {1: data[:part], 2: data[part : 2 * part], 3: stale})
    _leave_upload(server, key, {1: os.urandom(part)})  # another one, of other bytes
    port = int(server.endpoint.rsplit(":", 1)[1])
    with FaultProxy(port) as proxy:
        driver = _driver(server, endpoint_url=f"http://127.0.0.1:{proxy.port}")
        reported: list[int] = []
        driver.create_object_with_progress(str(source), key, reported.append)
        sent = proxy.stats.bytes_up
    assert sum(reported) == len(data)
    _driver(server).download_object(key, str(tmp_path / "out"))
    assert (tmp_path / "out").read_bytes() == data
    resent = len(data) - 2 * part  # parts 3 (stale), 4 and 5
    assert resent <= sent < resent + part // 2, f"{sent} bytes sent, {resent} needed"
    uploads = server.client().list_multipart_uploads(Bucket=BUCKET, Prefix=prefix)
    assert not uploads.get("Uploads"), "uploads of the key were left open"


def test_an_interrupted_upload_of_a_changed_file_keeps_no_part(
    server: S3Server, tmp_path: Path, prefix: str
) -> None:
    """Every part left is of an earlier content: none is kept, whatever its size says."""
    part = MULTIPART_THRESHOLD
    old = os.urandom(2 * part + 10)
    source = _file(tmp_path, 2 * part + 10, "model.bin")
    key = f"{prefix}/big"
    _leave_upload(server, key, {1: old[:part], 2: old[part : 2 * part]})
    _driver(server).create_object(str(source), key)
    _driver(server).download_object(key, str(tmp_path / "out"))
    assert (tmp_path / "out").read_bytes() == source.read_bytes()


def test_large_file_is_pushed_and_fetched_in_parts(
    server: S3Server, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, prefix: str
) -> None:
    _env(monkeypatch, server.env, tmp_path)
    source = _file(tmp_path, 3 * MULTIPART_THRESHOLD + 123, "model.bin")
    store = StorageProvider(prefix=prefix)
    store.new(str(source), "big")
    head = server.client().head_object(Bucket=BUCKET, Key=f"{prefix}/big/0.0")
    assert head["ContentLength"] == source.stat().st_size
    assert head["ETag"].strip('"').endswith("-4"), "not a multipart upload"
    result = store.download("big", "0.0", str(tmp_path / "assets"))
    assert Path(result["path"]).read_bytes() == source.read_bytes()


def test_large_download_resumes_ranges_broken_mid_body(
    server: S3Server, tmp_path: Path, prefix: str
) -> None:
    """Connections reset in the middle of ranged GETs: each broken range is asked for again
    from its first missing byte, and the file comes out whole."""
    source = _file(tmp_path, 3 * MULTIPART_THRESHOLD + 5, "model.bin")
    _driver(server).create_object(str(source), f"{prefix}/big")
    port = int(server.endpoint.rsplit(":", 1)[1])
    with FaultProxy(port) as proxy:
        driver = _driver(server, endpoint_url=f"http://127.0.0.1:{proxy.port}")
        proxy.faults = Faults(resets=3, reset_after=(1_000_000, 6_000_000))
        digest = driver.download_object_with_digest(f"{prefix}/big", str(tmp_path / "out"))
        assert proxy.stats.resets == 3
    assert (tmp_path / "out").read_bytes() == source.read_bytes()
    assert digest == digest_file(str(source))


def test_ranges_are_pinned_to_the_object_first_read(
    server: S3Server, tmp_path: Path, prefix: str
) -> None:
    """Were the object replaced between its first part and the others, the ranges are
    refused (412) instead of mixing two objects' bytes."""
    driver = _driver(server)
    driver.write_object(b"first", f"{prefix}/obj")
    etag = driver.client.head_object(Bucket=BUCKET, Key=f"{prefix}/obj")["ETag"]
    driver.write_object(b"other", f"{prefix}/obj")
    with pytest.raises(ClientError) as caught:
        list(driver._range_reader(f"{prefix}/obj", etag)(0, 5))
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 412


def test_empty_object_is_fetched_with_its_digest(
    server: S3Server, tmp_path: Path, prefix: str
) -> None:
    """An empty object has no byte 0 for the first ranged GET: the driver asks for it whole."""
    driver = _driver(server)
    driver.write_object(b"", f"{prefix}/empty")
    digest = driver.download_object_with_digest(f"{prefix}/empty", str(tmp_path / "out"))
    assert (tmp_path / "out").read_bytes() == b""
    assert digest == digest_bytes(b"")


def test_s3_uri_is_a_push_source(
    server: S3Server, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, prefix: str
) -> None:
    _env(monkeypatch, {**server.env, "MODELKIT_STORAGE_PREFIX": prefix}, tmp_path)
    client = server.client()
    client.put_object(Bucket=BUCKET, Key=f"{prefix}-src/one.txt", Body=b"one")
    client.put_object(Bucket=BUCKET, Key=f"{prefix}-src/dir/a.txt", Body=b"a")
    client.put_object(Bucket=BUCKET, Key=f"{prefix}-src/dir/b/c.txt", Body=b"c")
    ok("new", f"s3://{BUCKET}/{prefix}-src/one.txt", "from-uri/file", "--yes")
    ok("new", f"s3://{BUCKET}/{prefix}-src/dir", "from-uri/dir", "--yes")
    store = StorageProvider()
    assert store.get_asset_meta("from-uri/dir", "0.0")["contents"] == ["a.txt", "b/c.txt"]
    fetched = Path(store.download("from-uri/file", "0.0", str(tmp_path / "assets"))["path"])
    assert fetched.read_bytes() == b"one"


# -- errors ------------------------------------------------------------------------------------


def test_missing_bucket_is_told_apart(
    server: S3Server, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    driver = _driver(server, bucket="no-such-bucket")
    source = str(_file(tmp_path, 10))
    calls: list[Callable[[], object]] = [
        lambda: driver.exists("x"),
        lambda: driver.read_object("x"),
        lambda: driver.download_object("x", str(tmp_path / "out")),
        lambda: list(driver.iterate_objects("x")),
        lambda: driver.upload_object(source, "x"),
        lambda: driver.create_object(source, "x"),
        lambda: driver.write_object(b"x", "x"),
        lambda: driver.write_object(b"x", "x", if_absent=True),
        lambda: driver.delete_object("x"),
    ]
    for call in calls:
        with pytest.raises(errors.BucketDoesNotExistError, match="no-such-bucket"):
            call()
    _env(monkeypatch, {**server.env, "MODELKIT_STORAGE_BUCKET": "no-such-bucket"}, tmp_path)
    line = fails("list")
    assert "bucket 'no-such-bucket' does not exist" in line


def test_missing_object_is_told_apart(server: S3Server, tmp_path: Path, prefix: str) -> None:
    driver = _driver(server)
    for call in (
        lambda: driver.read_object(f"{prefix}/missing"),
        lambda: driver.download_object(f"{prefix}/missing", str(tmp_path / "out")),
    ):
        with pytest.raises(errors.ObjectDoesNotExistError, match="missing"):
            call()
    assert not driver.exists(f"{prefix}/missing")
    with pytest.raises(errors.PreconditionFailedError):  # If-Match on an object that is gone
        driver.write_object(b"x", f"{prefix}/missing", if_match='"0123456789abcdef"')


def test_wrong_credentials_are_access_denied_and_never_printed(
    seaweedfs_server: S3Server, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, prefix: str
) -> None:
    wrong_secret = "wrong-secret-" + uuid.uuid4().hex
    driver = _driver(seaweedfs_server, aws_secret_access_key=wrong_secret)
    assert wrong_secret not in repr(driver)
    assert wrong_secret not in repr(driver.settings)
    with pytest.raises(errors.StorageAccessDeniedError, match="SignatureDoesNotMatch") as caught:
        driver.read_object(f"{prefix}/x")
    assert wrong_secret not in str(caught.value)
    unknown = _driver(seaweedfs_server, aws_access_key_id="AKIDUNKNOWN")
    with pytest.raises(errors.StorageAccessDeniedError, match="InvalidAccessKeyId"):
        unknown.read_object(f"{prefix}/x")
    with pytest.raises(errors.StorageAccessDeniedError, match="403"):  # HEAD: no error code
        unknown.exists(f"{prefix}/x")

    env = {**seaweedfs_server.env, "AWS_SECRET_ACCESS_KEY": wrong_secret}
    _env(monkeypatch, {**env, "MODELKIT_STORAGE_PREFIX": prefix}, tmp_path)
    store = StorageProvider()
    assert wrong_secret not in repr(store)
    with pytest.raises(errors.StorageAccessDeniedError):
        store.get_versions_info("asset")
    (tmp_path / "f").write_text("x")
    for args in (["list"], ["new", str(tmp_path / "f"), "asset", "--yes"], ["fetch", "asset:1"]):
        line = fails(*args)
        assert "access denied to s3 bucket" in line, line
        assert wrong_secret not in line
        verbose = run(*args, "-vv")  # nor do tracebacks and logs in verbose mode
        assert verbose.exit_code == 1
        assert wrong_secret not in verbose.stdout + verbose.stderr


def test_unreachable_endpoint_is_unavailable_within_the_timeout(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    env = {
        "S3_ENDPOINT": f"http://127.0.0.1:{free_port()}",
        "AWS_ACCESS_KEY_ID": "a",
        "AWS_SECRET_ACCESS_KEY": "b",
        "MODELKIT_STORAGE_TIMEOUT_S": "2",
    }
    _env(monkeypatch, env, tmp_path)
    started = time.monotonic()
    with pytest.raises(errors.StorageUnavailableError, match="refused the connection") as info:
        StorageProvider().get_versions_info("asset")
    assert info.value.refused
    line = fails("list")
    assert "s3 storage unavailable" in line
    assert time.monotonic() - started < 20


# -- transient faults, injected by a real proxy in front of moto --------------------------------


class _FlakyProxy(http.server.ThreadingHTTPServer):
    """Forwards to a real server, after failing the first requests as ``faults`` says."""

    daemon_threads = True
    block_on_close = False  # botocore keeps its connections open

    def __init__(self, upstream: str, faults: list[str]) -> None:
        super().__init__(("127.0.0.1", 0), _FlakyHandler)
        host, port = upstream.removeprefix("http://").split(":")
        self.upstream = (host, int(port))
        self.faults = faults
        self.requests = 0
        self.lock = threading.Lock()

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _FlakyHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _FlakyProxy

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    def _handle(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        with self.server.lock:
            self.server.requests += 1
            fault = self.server.faults.pop(0) if self.server.faults else None
        if fault == "reset":
            self.close_connection = True
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\0\0\0\0\0\0\0")
            return
        if fault is not None:
            self._reply(int(fault), [], b"<Error><Code>InternalError</Code></Error>")
            return
        upstream = http.client.HTTPConnection(*self.server.upstream, timeout=30)
        headers = {k: v for k, v in self.headers.items() if k.lower() != "expect"}
        upstream.request(self.command, self.path, body=body, headers=headers)
        response = upstream.getresponse()
        self._reply(response.status, response.getheaders(), response.read())
        upstream.close()

    def _reply(self, status: int, headers: list[tuple[str, str]], data: bytes) -> None:
        self.send_response(status)
        for key, value in headers:
            if key.lower() not in {
                "content-length",
                "transfer-encoding",
                "connection",
                "server",
                "date",
            }:
                self.send_header(key, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    do_GET = do_PUT = do_POST = do_HEAD = do_DELETE = _handle


@pytest.fixture
def flaky(moto_server: S3Server) -> Iterator[_FlakyProxy]:
    proxy = _FlakyProxy(moto_server.endpoint, [])
    thread = threading.Thread(target=proxy.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield proxy
    proxy.shutdown()
    proxy.server_close()


def test_transient_faults_are_retried(
    flaky: _FlakyProxy, moto_server: S3Server, tmp_path: Path, prefix: str
) -> None:
    driver = _driver(moto_server, endpoint_url=flaky.endpoint)
    flaky.faults[:] = ["500", "reset", "503"]
    driver.write_object(b"data", f"{prefix}/obj", if_absent=True)
    assert flaky.requests == 4
    flaky.faults[:] = ["503", "reset"]
    assert driver.read_object(f"{prefix}/obj")[0] == b"data"
    flaky.faults[:] = ["500", "reset"]
    driver.download_object(f"{prefix}/obj", str(tmp_path / "out"))
    assert (tmp_path / "out").read_bytes() == b"data"


def test_persistent_faults_end_within_the_timeout(
    flaky: _FlakyProxy, moto_server: S3Server, prefix: str
) -> None:
    driver = S3StorageDriver(
        BUCKET,
        timeout_s=1.0,
        endpoint_url=flaky.endpoint,
        aws_access_key_id="a",
        aws_secret_access_key="b",
    )
    flaky.faults[:] = ["503"] * 50
    started = time.monotonic()
    with pytest.raises(errors.StorageUnavailableError, match="after retries"):
        driver.read_object(f"{prefix}/obj")
    assert flaky.requests == max_attempts(1.0)
    assert time.monotonic() - started < 10
