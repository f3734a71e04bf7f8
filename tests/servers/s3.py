"""S3 servers for the suite: moto (``s3-moto``, with KMS) and SeaweedFS (``s3-seaweedfs``).

Both run as child processes on free loopback ports, once per session, logging to files.

moto 5.2.5 checks ``If-None-Match`` and ``If-Match`` and then writes, without a lock, in
whichever of its request threads runs: two racing create-only writes can both succeed there,
where S3 makes them atomic. So moto runs behind a WSGI wrapper that lets one write request at a
time into the app (reads stay concurrent); the concurrency tests then test our driver, not moto.
moto also answers a part uploaded to an aborted multipart upload with a 500 (a ``KeyError`` in
``upload_part``), where S3 answers 404 ``NoSuchUpload``: the loser of a create-only race, whose
upload the winner aborts, then saw a server error (1 run in 15 of the race test under load). The
launcher makes moto answer as S3 does.

SeaweedFS
is started with credentials in its environment, which turns its authentication on: the suite then
proves that wrong credentials are refused (moto accepts any). Every one of SeaweedFS's extra
ports (master, volume, filer, admin and their gRPC ports) is a free port too, and its unix
sockets are in its temporary folder or named after those ports, so two test runs can coexist.
"""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Final

import attrs
import pytest

from tests.servers import BACKENDS, Backend
from tests.servers.process import (
    ServerProcess,
    bucket_ready,
    free_port,
    http_ready,
    port_is_free,
    start_server,
)

BACKENDS.extend(["s3-moto", "s3-seaweedfs"])

BUCKET: Final = "modelkit-test"
REGION: Final = "us-east-1"
#: SeaweedFS checks signatures against these; moto accepts anything.
ACCESS_KEY: Final = "modelkit-test-key"
SECRET_KEY: Final = "modelkit-test-secret-0123456789"
_WEED_PORTS: Final = (
    "s3.port.grpc",
    "master.port",
    "master.port.grpc",
    "volume.port",
    "volume.port.grpc",
    "filer.port",
    "filer.port.grpc",
)


@attrs.frozen
class S3Server:
    """A running S3 endpoint and the credentials it accepts."""

    name: str
    endpoint: str
    process: ServerProcess

    @property
    def env(self) -> dict[str, str]:
        return {
            "S3_ENDPOINT": self.endpoint,
            "AWS_ACCESS_KEY_ID": ACCESS_KEY,
            "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
            "AWS_DEFAULT_REGION": REGION,
        }

    def client(self, service: str = "s3", **kwargs: Any) -> Any:
        """A plain boto3 client on this server (for setting up and inspecting, not mocking)."""
        import boto3

        options = {
            "endpoint_url": self.endpoint,
            "aws_access_key_id": ACCESS_KEY,
            "aws_secret_access_key": SECRET_KEY,
            "region_name": REGION,
            **kwargs,
        }
        return boto3.client(service, **options)  # type: ignore[call-overload]


#: ``moto_server``, with write requests serialised (see the module docstring).
_MOTO_LAUNCHER: Final = """
import os, signal, sys, threading
from werkzeug.serving import run_simple
from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication, MotoRequestHandler, create_backend_app,
)
host, port = sys.argv[1], int(sys.argv[2])
os.environ.setdefault("MOTO_PORT", str(port))
signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
from moto.s3.exceptions import NoSuchUpload
from moto.s3.models import S3Backend
_upload_part = S3Backend.upload_part
def upload_part(self, bucket_name, multipart_id, part_id, value):
    if multipart_id not in self.get_bucket(bucket_name).multiparts:
        raise NoSuchUpload(upload_id=multipart_id)  # as S3 answers: 404, not moto's KeyError
    return _upload_part(self, bucket_name, multipart_id, part_id, value)
S3Backend.upload_part = upload_part
app = DomainDispatcherApplication(create_backend_app)
writes = threading.Lock()
def one_write_at_a_time(environ, start_response):
    if environ["REQUEST_METHOD"] in ("GET", "HEAD"):
        return app(environ, start_response)
    with writes:
        return list(app(environ, start_response))
run_simple(host, port, one_write_at_a_time, threaded=True, request_handler=MotoRequestHandler)
"""


def _bin(name: str) -> str:
    path = Path(sys.executable).parent / name
    found = str(path) if path.exists() else shutil.which(name)
    if not found:
        pytest.fail(f"{name} is not installed: run `make install`", pytrace=False)
    return found


def _without_aws_env() -> pytest.MonkeyPatch:
    """A monkeypatch context that hides the developer's AWS settings from a server."""
    patch = pytest.MonkeyPatch()
    for key in list(os.environ):
        if key.startswith(("AWS_", "S3_")):
            patch.delenv(key)
    return patch


def _free_admin_port() -> int:
    # SeaweedFS's worker dials the admin gRPC port at admin port + 10000, whatever the flags say.
    for _ in range(50):
        port = free_port()
        if port + 10000 < 65536 and port_is_free(port + 10000):
            return port
    pytest.fail("no free pair of ports for the SeaweedFS admin server", pytrace=False)


@pytest.fixture(scope="session")
def moto_server(server_logs: Path) -> Iterator[S3Server]:
    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    patch = _without_aws_env()
    try:
        process = start_server(
            "moto",
            [sys.executable, "-c", _MOTO_LAUNCHER, "127.0.0.1", str(port)],
            http_ready(f"{endpoint}/moto-api/"),
            server_logs,
        )
    finally:
        patch.undo()
    server = S3Server("moto", endpoint, process)
    try:
        server.client().create_bucket(Bucket=BUCKET)
        yield server
    finally:
        process.stop()


@pytest.fixture(scope="session")
def seaweedfs_server(
    server_logs: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[S3Server]:
    data = tmp_path_factory.mktemp("seaweedfs")
    port, admin = free_port(), _free_admin_port()
    ports = {name: free_port() for name in _WEED_PORTS}
    command = [
        _bin("weed"),
        "mini",
        f"-dir={data}",
        "-ip=127.0.0.1",
        "-ip.bind=127.0.0.1",
        f"-s3.port={port}",
        *(f"-{name}={value}" for name, value in ports.items()),
        f"-admin.port={admin}",
        f"-admin.port.grpc={admin + 10000}",
        f"-s3.localSocket={data}/s3.sock",
        f"-filer.localSocket={data}/filer.sock",
        f"-bucket={BUCKET}",
        "-s3.autoCreateBucket=false",  # a missing bucket must stay missing
        "-webdav=false",
        "-admin.ui=false",
        "-s3.port.iceberg=0",
        "-s3.port.lance=0",
        "-master.telemetry=false",
    ]
    endpoint = f"http://127.0.0.1:{port}"
    patch = _without_aws_env()
    try:
        # Credentials in its environment turn SeaweedFS's authentication on.
        process = start_server(
            "seaweedfs",
            command,
            http_ready(f"{endpoint}/healthz", [200]),
            server_logs,
            env={
                "AWS_ACCESS_KEY_ID": ACCESS_KEY,
                "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
            },
            cwd=data,
        )
    finally:
        patch.undo()
    server = S3Server("seaweedfs", endpoint, process)
    try:
        _wait_for_bucket(server)
        yield server
    finally:
        process.stop()


def _wait_for_bucket(server: S3Server, timeout_s: float = 30.0) -> None:
    error = bucket_ready(server.client(), BUCKET, timeout_s)
    if error is not None:
        pytest.fail(
            f"seaweedfs has no bucket {BUCKET} after {timeout_s:g} s ({error}):\n"
            + server.process.log_tail(),
            pytrace=False,
        )


@pytest.fixture(scope="session")
def s3_moto_backend(moto_server: S3Server) -> Backend:
    return Backend(id="s3-moto", provider="s3", bucket=BUCKET, env=moto_server.env)


@pytest.fixture(scope="session")
def s3_seaweedfs_backend(seaweedfs_server: S3Server) -> Backend:
    return Backend(id="s3-seaweedfs", provider="s3", bucket=BUCKET, env=seaweedfs_server.env)
