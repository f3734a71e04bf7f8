"""The s3 driver's server-side copies (``copy_object``) on moto and SeaweedFS: past the copy
limit in parts (the limit lowered, rather than 5 GiB of data), with the KMS settings kept, and
create-only."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

from modelkit_assets import StorageProvider, errors
from modelkit_assets_s3 import copy
from modelkit_assets_s3.multipart import MiB
from tests.backends.test_s3 import _driver, _env, _file, kms_key, server
from tests.servers.s3 import BUCKET, S3Server

__all__ = ["kms_key", "server"]


@pytest.fixture
def prefix() -> str:
    return f"s3copy-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def small_copy_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    """Copies past 5 MiB go in 5 MiB parts (S3's smallest part but the last)."""
    monkeypatch.setattr(copy, "COPY_LIMIT", 5 * MiB)
    monkeypatch.setattr(copy, "COPY_PART", 5 * MiB)


def test_a_source_past_the_copy_limit_is_copied_in_parts(
    server: S3Server, small_copy_limit: None, tmp_path: Path, prefix: str
) -> None:
    driver = _driver(server)
    source = _file(tmp_path, 12 * MiB + 3)
    driver.upload_object(str(source), f"{prefix}/v1")
    assert driver.copy_object(f"{prefix}/v1", f"{prefix}/v2") == 12 * MiB + 3
    driver.download_object(f"{prefix}/v2", str(tmp_path / "out"))
    assert (tmp_path / "out").read_bytes() == source.read_bytes()
    etag = server.client().head_object(Bucket=BUCKET, Key=f"{prefix}/v2")["ETag"]
    assert etag.strip('"').endswith("-3"), etag  # 5 + 5 + 2 MiB: UploadPartCopy
    with pytest.raises(errors.ObjectAlreadyExistsError):
        driver.copy_object(f"{prefix}/v1", f"{prefix}/v2")


def test_the_copy_in_parts_is_completed_create_only(
    server: S3Server, small_copy_limit: None, tmp_path: Path, prefix: str
) -> None:
    """Past the driver's look-up of the target (a racing writer): the server refuses."""
    driver = _driver(server)
    driver.upload_object(str(_file(tmp_path, 6 * MiB)), f"{prefix}/source")
    driver.upload_object(str(_file(tmp_path, 10, "other")), f"{prefix}/target")
    head = server.client().head_object(Bucket=BUCKET, Key=f"{prefix}/source")
    with pytest.raises(ClientError) as refused:
        copy.copy_if_absent(
            driver.client,
            driver._part_pool(),
            BUCKET,
            f"{prefix}/source",
            head["ETag"],
            head["ContentLength"],
            f"{prefix}/target",
            {},
        )
    assert refused.value.response["ResponseMetadata"]["HTTPStatusCode"] == 412
    assert driver.read_object(f"{prefix}/target")[0] == (tmp_path / "other").read_bytes()
    uploads = server.client().list_multipart_uploads(Bucket=BUCKET, Prefix=prefix)
    assert not uploads.get("Uploads"), "an aborted multipart copy was left behind"


def test_seaweedfs_refuses_a_copy_over_an_existing_object(
    seaweedfs_server: S3Server, tmp_path: Path, prefix: str
) -> None:
    """One ``CopyObject`` with ``If-None-Match: *`` is atomic there (moto 5.2.5 ignores the
    condition on a copy: the driver's look-up of the target covers sequential writers)."""
    driver = _driver(seaweedfs_server)
    driver.upload_object(str(_file(tmp_path, 100)), f"{prefix}/source")
    driver.upload_object(str(_file(tmp_path, 10, "other")), f"{prefix}/target")
    head = seaweedfs_server.client().head_object(Bucket=BUCKET, Key=f"{prefix}/source")
    with pytest.raises(ClientError) as refused:
        copy.copy_if_absent(
            driver.client,
            driver._part_pool(),
            BUCKET,
            f"{prefix}/source",
            head["ETag"],
            100,
            f"{prefix}/target",
            {},
        )
    assert refused.value.response["ResponseMetadata"]["HTTPStatusCode"] == 412
    assert driver.read_object(f"{prefix}/target")[0] == (tmp_path / "other").read_bytes()


def test_a_source_replaced_since_it_was_measured_is_not_copied(
    seaweedfs_server: S3Server, tmp_path: Path, prefix: str
) -> None:
    """Every copy request is pinned to the ETag the size was read with. (moto 5.2.5 ignores
    ``x-amz-copy-source-if-match`` as it ignores ``If-None-Match`` on copies; AWS and SeaweedFS
    honour both.)"""
    server = seaweedfs_server
    driver = _driver(server)
    driver.upload_object(str(_file(tmp_path, 100)), f"{prefix}/source")
    head = server.client().head_object(Bucket=BUCKET, Key=f"{prefix}/source")
    driver.upload_object(str(_file(tmp_path, 200, "longer")), f"{prefix}/source")
    with pytest.raises(ClientError) as refused:
        copy.copy_if_absent(
            driver.client,
            driver._part_pool(),
            BUCKET,
            f"{prefix}/source",
            head["ETag"],
            100,
            f"{prefix}/target",
            {},
        )
    assert refused.value.response["ResponseMetadata"]["HTTPStatusCode"] == 412
    assert not driver.exists(f"{prefix}/target")
    assert driver.copy_object(f"{prefix}/source", f"{prefix}/target") == 200


@pytest.mark.parametrize("size", [100, 6 * MiB])
def test_copies_are_sse_kms_with_the_configured_key(
    moto_server: S3Server,
    kms_key: str,
    small_copy_limit: None,
    tmp_path: Path,
    prefix: str,
    size: int,
) -> None:
    """A source stored without KMS, copied by a driver with a key: the copy has the key."""
    _driver(moto_server).upload_object(str(_file(tmp_path, size)), f"{prefix}/plain")
    driver = _driver(moto_server, aws_kms_key_id=kms_key)
    driver.copy_object(f"{prefix}/plain", f"{prefix}/copy")
    head = moto_server.client().head_object(Bucket=BUCKET, Key=f"{prefix}/copy")
    assert head["ServerSideEncryption"] == "aws:kms"
    assert head["SSEKMSKeyId"].endswith(kms_key)
    assert head["ContentLength"] == size


def test_an_update_copies_unchanged_files_with_the_kms_key(
    moto_server: S3Server,
    kms_key: str,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    prefix: str,
) -> None:
    _env(monkeypatch, {**moto_server.env, "AWS_KMS_KEY_ID": kms_key}, tmp_path)
    directory = tmp_path / "dir"
    directory.mkdir()
    _file(directory, 2 * MiB, "weights.bin")
    (directory / "config.json").write_text("{}")
    store = StorageProvider(prefix=prefix)
    store.new(str(directory), "kms/asset")
    (directory / "config.json").write_text('{"changed": true}')
    plan = store.update_next(str(directory), "kms/asset")
    assert (plan.version, plan.reused_files) == ("0.1", 1)
    head = moto_server.client().head_object(
        Bucket=BUCKET, Key=store.part_object_name("kms/asset", "0.1", "weights.bin")
    )
    assert head["ServerSideEncryption"] == "aws:kms"
    assert head["SSEKMSKeyId"].endswith(kms_key)
