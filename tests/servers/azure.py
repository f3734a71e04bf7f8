"""Azurite, Microsoft's Azure Storage emulator, as the ``az`` backend.

``make test`` installs Azurite 3.35.0 (the newest that runs on Node 20) into ``.tools/azurite``;
the session fixture starts its blob service on a free loopback port, in memory, and creates the
container the shared tests use. Azurite checks shared-key signatures, so a wrong key is refused
as it would be by Azure.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Final

import attrs
import pytest
from azure.storage.blob import BlobServiceClient

from tests.servers import BACKENDS, Backend
from tests.servers.process import free_port, http_ready, start_server

AZURITE_BIN: Final = (
    Path(__file__).resolve().parents[2] / ".tools" / "azurite" / "node_modules" / ".bin"
) / "azurite-blob"
ACCOUNT: Final = "devstoreaccount1"
#: Azurite's well-known development key (public, documented by Microsoft).
ACCOUNT_KEY: Final = (
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)
CONTAINER: Final = "modelkit-test"

BACKENDS.append("az")


def connection_string(endpoint: str, key: str = ACCOUNT_KEY) -> str:
    """The well-known development connection string, for ``endpoint`` (``http://host:port``)."""
    return (
        f"DefaultEndpointsProtocol=http;AccountName={ACCOUNT};AccountKey={key};"
        f"BlobEndpoint={endpoint}/{ACCOUNT};"
    )


@attrs.frozen
class Azurite:
    """A running Azurite blob service."""

    endpoint: str  # http://127.0.0.1:PORT

    @property
    def connection_string(self) -> str:
        return connection_string(self.endpoint)

    def service_client(self) -> BlobServiceClient:
        return BlobServiceClient.from_connection_string(self.connection_string)


@pytest.fixture(scope="session")
def azurite(server_logs: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Azurite]:
    if not AZURITE_BIN.exists():
        pytest.fail(
            f"Azurite is not installed ({AZURITE_BIN} is missing): run `make test`, which "
            "installs it with `npm install --prefix .tools/azurite --no-audit --no-fund "
            "azurite@3.35.0`",
            pytrace=False,
        )
    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    server = start_server(
        "azurite",
        [
            str(AZURITE_BIN),
            *("--blobHost", "127.0.0.1", "--blobPort", str(port)),
            "--inMemoryPersistence",
            "--skipApiVersionCheck",
            "--disableTelemetry",
            "--silent",
        ],
        ready=http_ready(f"{endpoint}/{ACCOUNT}?comp=list"),  # any answer, 403 included
        log_dir=server_logs,
        cwd=tmp_path_factory.mktemp("azurite"),  # whatever it writes stays out of the repo
    )
    try:
        yield Azurite(endpoint)
    finally:
        server.stop()


@pytest.fixture(scope="session")
def az_backend(azurite: Azurite) -> Backend:
    azurite.service_client().create_container(CONTAINER)
    return Backend(
        id="az",
        provider="az",
        bucket=CONTAINER,
        env={"AZURE_STORAGE_CONNECTION_STRING": azurite.connection_string},
    )
