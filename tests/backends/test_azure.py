"""What is particular to the ``az`` driver, against a real Azurite (nothing here mocks the SDK).

The shared behaviour (conformance suite, workflow, bad input) runs on ``az`` through the
``backend`` parametrization; here: credentials, error mapping, secrets, transfers in blocks and
chunks, pagination, retries within the time budget, and ``az://`` push sources.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import logging
import os
import socket
import subprocess
import sys
import threading
import time
import traceback
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from azure.storage.blob import BlobServiceClient

from modelkit_assets import StorageProvider, errors
from modelkit_assets.plugins import get_registry
from modelkit_assets_az.blocks import block_id
from modelkit_assets_az.driver import AzureStorageDriver
from tests.cli_runner import as_json, fails, ok
from tests.conftest import StoreEnv
from tests.faultproxy import FaultProxy
from tests.servers import Backend
from tests.servers.azure import ACCOUNT_KEY, CONTAINER, Azurite, connection_string
from tests.servers.process import free_port

#: Every test here runs on each data-path engine present: the SDK's, and obstore's.
pytestmark = pytest.mark.usefixtures("engine")

#: A valid base64 key Azurite does not know, easy to look for in output.
WRONG_KEY = base64.b64encode(b"modelkit-assets-wrong-key-" + b"x" * 38).decode()
MiB = 1024 * 1024


@pytest.fixture
def prefix() -> str:
    return f"az-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def make_driver(az_backend: Backend, azurite: Azurite) -> Callable[..., AzureStorageDriver]:
    """Build a driver on the test container with the right key unless told otherwise."""

    def make(**kwargs: Any) -> AzureStorageDriver:
        kwargs.setdefault("connection_string", azurite.connection_string)
        return AzureStorageDriver(kwargs.pop("bucket", CONTAINER), **kwargs)

    return make


@pytest.fixture
def driver(make_driver: Callable[..., AzureStorageDriver]) -> AzureStorageDriver:
    return make_driver(timeout_s=30.0)


@pytest.fixture
def az_store(
    az_backend: Backend, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, prefix: str
) -> StoreEnv:
    """MODELKIT_* and AZURE_STORAGE_CONNECTION_STRING pointing at Azurite, on a fresh prefix."""
    assets_dir = tmp_path / "assets"
    assets_dir.mkdir()
    store = StoreEnv(az_backend, prefix, assets_dir)
    for key, value in store.env.items():
        monkeypatch.setenv(key, value)
    return store


def _file(tmp_path: Path, data: bytes, name: str = "payload") -> str:
    path = tmp_path / name
    path.write_bytes(data)
    return str(path)


def _no_secret(*texts: str) -> None:
    for text in texts:
        assert ACCOUNT_KEY not in text
        assert WRONG_KEY not in text


# -- the plugin --------------------------------------------------------------------------------


def test_plugin_is_registered_without_importing_the_sdk() -> None:
    code = (
        "import sys\n"
        "from modelkit_assets.plugins import get_registry\n"
        "record = get_registry().driver('az').record\n"
        "print(record.schemes, sorted(record.capabilities))\n"
        "print(sorted(m for m in sys.modules if m.startswith('azure')))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.splitlines()
    assert out == ["('az',) ['conditional_writes', 'ranged_reads', 'server_side_copy']", "[]"]
    assert get_registry().driver("az").source.distribution == "modelkit-assets-az"
    drivers = as_json(ok("plugins", "--json"))["storage_drivers"]
    assert {"name": "az", "distribution": "modelkit-assets-az", "schemes": ["az"]}.items() <= next(
        d for d in drivers if d["name"] == "az"
    ).items()


# -- credentials --------------------------------------------------------------------------------


def _round_trip(store: StorageProvider, tmp_path: Path) -> None:
    name = f"{store.prefix}/probe"
    store.driver.upload_object(_file(tmp_path, b"hello"), name)
    store.driver.download_object(name, str(tmp_path / "back"))
    assert (tmp_path / "back").read_bytes() == b"hello"


def test_connection_string_from_the_environment(
    az_store: StoreEnv, tmp_path: Path, azurite: Azurite
) -> None:
    store = StorageProvider()
    assert isinstance(store.driver, AzureStorageDriver)
    assert store.driver.bucket == CONTAINER
    _round_trip(store, tmp_path)


def test_connection_string_keyword_wins_over_the_environment(
    monkeypatch: pytest.MonkeyPatch, azurite: Azurite, az_backend: Backend, tmp_path: Path
) -> None:
    monkeypatch.setenv(
        "AZURE_STORAGE_CONNECTION_STRING", connection_string(azurite.endpoint, WRONG_KEY)
    )
    store = StorageProvider(
        provider="az",
        bucket=CONTAINER,
        prefix=f"kw-{uuid.uuid4().hex[:8]}",
        connection_string=azurite.connection_string,
    )
    _round_trip(store, tmp_path)


def test_ready_client_is_used_as_given(
    monkeypatch: pytest.MonkeyPatch, azurite: Azurite, az_backend: Backend, tmp_path: Path
) -> None:
    monkeypatch.setenv(
        "AZURE_STORAGE_CONNECTION_STRING", connection_string(azurite.endpoint, WRONG_KEY)
    )
    client = BlobServiceClient.from_connection_string(azurite.connection_string)
    store = StorageProvider(
        provider="az", bucket=CONTAINER, prefix=f"cl-{uuid.uuid4().hex[:8]}", client=client
    )
    _round_trip(store, tmp_path)
    with pytest.raises(errors.ConfigurationError, match="BlobServiceClient"):
        StorageProvider(provider="az", bucket=CONTAINER, client=object())


def test_missing_or_malformed_configuration(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(errors.ConfigurationError, match="AZURE_STORAGE_CONNECTION_STRING"):
        StorageProvider(provider="az", bucket=CONTAINER)
    with pytest.raises(errors.ConfigurationError, match="MODELKIT_STORAGE_BUCKET"):
        StorageProvider(provider="az", connection_string="x")
    malformed = f"AccountKey={ACCOUNT_KEY};nothing-else"
    with pytest.raises(errors.ConfigurationError, match="malformed") as caught:
        StorageProvider(provider="az", bucket=CONTAINER, connection_string=malformed)
    _no_secret(str(caught.value))
    with pytest.raises(errors.ConfigurationError, match="max_concurency"):
        StorageProvider(provider="az", bucket=CONTAINER, connection_string="x", max_concurency=2)
    with pytest.raises(errors.ConfigurationError, match="positive integer"):
        AzureStorageDriver(CONTAINER, connection_string="x", list_page_size=0)


def test_lazy_driver_builds_the_client_on_first_use(
    monkeypatch: pytest.MonkeyPatch, azurite: Azurite
) -> None:
    monkeypatch.setenv("MODELKIT_LAZY_DRIVER", "1")
    store = StorageProvider(provider="az", bucket=CONTAINER, connection_string="not a string")
    with pytest.raises(errors.ConfigurationError, match="malformed"):
        store.driver.exists("anything")


# -- errors and secrets -------------------------------------------------------------------------


def test_wrong_key_is_access_denied_and_never_shown(
    az_store: StoreEnv,
    monkeypatch: pytest.MonkeyPatch,
    azurite: Azurite,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setenv(
        "AZURE_STORAGE_CONNECTION_STRING", connection_string(azurite.endpoint, WRONG_KEY)
    )
    caplog.set_level(logging.DEBUG)
    store = StorageProvider()
    with pytest.raises(errors.StorageAccessDeniedError) as caught:
        store.get_versions_info("anything")
    message = str(caught.value)
    assert CONTAINER in message
    assert "credentials" in message
    assert "\n" not in message
    rendered = "".join(traceback.format_exception(caught.value))
    line = fails("list")
    assert "access denied" in line
    result = ok("plugins")  # unrelated output carries no key either
    _no_secret(message, rendered, repr(store), repr(store.driver), line, result.stdout, caplog.text)


def test_the_right_key_is_not_shown_either(
    az_store: StoreEnv, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    store = StorageProvider()
    _round_trip(store, tmp_path)
    asset = _file(tmp_path, b"content", "asset.txt")
    push = ok("-vv", "new", asset, "secret/check", "--yes")
    fetch = ok("-vv", "fetch", "secret/check")
    text = push.stdout + push.stderr + fetch.stdout + fetch.stderr
    _no_secret(repr(store), repr(store.driver), str(vars(store.driver)), text, caplog.text)


def test_invalid_key_encoding_is_access_denied(make_driver: Callable[..., Any]) -> None:
    cs = connection_string("http://127.0.0.1:1", "not*base64!")
    with pytest.raises(errors.StorageAccessDeniedError) as caught:
        make_driver(connection_string=cs).exists("x")
    assert "not*base64!" not in str(caught.value)


def test_missing_container(
    az_store: StoreEnv, monkeypatch: pytest.MonkeyPatch, make_driver: Callable[..., Any]
) -> None:
    driver = make_driver(bucket="no-such-container")
    for call in (
        lambda: driver.exists("x"),
        lambda: list(driver.iterate_objects("x")),
        lambda: driver.read_object("x"),
        lambda: driver.write_object(b"x", "x", if_absent=True),
        lambda: driver.delete_object("x"),
    ):
        with pytest.raises(errors.BucketDoesNotExistError, match="no-such-container"):
            call()
    monkeypatch.setenv("MODELKIT_STORAGE_BUCKET", "no-such-container")
    line = fails("list")
    assert "no-such-container" in line
    assert "MODELKIT_STORAGE_BUCKET" in line


def test_missing_blob(driver: AzureStorageDriver, prefix: str, tmp_path: Path) -> None:
    destination = tmp_path / "out"
    with pytest.raises(errors.ObjectDoesNotExistError, match="missing"):
        driver.download_object(f"{prefix}/missing", str(destination))
    assert not destination.exists()  # nothing half-written is left behind
    with pytest.raises(errors.PreconditionFailedError):
        driver.write_object(b"x", f"{prefix}/missing", if_match='"0x8D000000000000"')
    assert not driver.exists(f"{prefix}/missing")


def test_unreachable_store_gives_up_within_the_timeout(
    make_driver: Callable[..., Any], az_store: StoreEnv, monkeypatch: pytest.MonkeyPatch
) -> None:
    cs = connection_string(f"http://127.0.0.1:{free_port()}")
    start = time.monotonic()
    with pytest.raises(errors.StorageUnavailableError, match="refused the connection") as caught:
        make_driver(connection_string=cs, timeout_s=2.0).exists("x")
    assert caught.value.refused
    assert time.monotonic() - start < 8
    _no_secret(str(caught.value))
    monkeypatch.setenv("AZURE_STORAGE_CONNECTION_STRING", cs)
    monkeypatch.setenv("MODELKIT_STORAGE_TIMEOUT_S", "1")
    assert "unavailable" in fails("list")


# -- transient faults, injected by a real proxy in front of Azurite ---------------------------


class FlakyProxy:
    """A TCP proxy to Azurite that answers its first ``failures`` connections with a 503."""

    def __init__(self, target_port: int, failures: int) -> None:
        self.target_port = target_port
        self.failures = failures
        self.refused = 0
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._threads: list[threading.Thread] = []
        self._spawn(self._accept)

    def _spawn(self, target: Callable[..., None], *args: Any) -> None:
        thread = threading.Thread(target=target, args=args, daemon=True)
        thread.start()
        self._threads.append(thread)

    def _accept(self) -> None:
        with contextlib.suppress(OSError):
            while True:
                client, _ = self._listener.accept()
                if self.refused < self.failures:
                    self.refused += 1
                    self._spawn(self._busy, client)
                else:
                    upstream = socket.create_connection(("127.0.0.1", self.target_port))
                    self._spawn(self._pipe, client, upstream)
                    self._spawn(self._pipe, upstream, client)

    @staticmethod
    def _busy(client: socket.socket) -> None:
        with client, contextlib.suppress(OSError):
            client.recv(65536)
            client.sendall(
                b"HTTP/1.1 503 Service Unavailable\r\nx-ms-error-code: ServerBusy\r\n"
                b"Content-Length: 0\r\nConnection: close\r\n\r\n"
            )

    @staticmethod
    def _pipe(source: socket.socket, target: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := source.recv(65536):
                target.sendall(data)
        with contextlib.suppress(OSError):
            target.shutdown(socket.SHUT_WR)

    def close(self) -> None:
        self._listener.close()


@pytest.fixture
def flaky(azurite: Azurite) -> Iterator[Callable[[int], FlakyProxy]]:
    proxies: list[FlakyProxy] = []
    port = int(azurite.endpoint.rsplit(":", 1)[1])

    def make(failures: int) -> FlakyProxy:
        proxies.append(FlakyProxy(port, failures))
        return proxies[-1]

    yield make
    for proxy in proxies:
        proxy.close()


def test_transient_faults_are_retried(
    make_driver: Callable[..., Any],
    flaky: Callable[[int], FlakyProxy],
    driver: AzureStorageDriver,
    prefix: str,
    tmp_path: Path,
) -> None:
    driver.upload_object(_file(tmp_path, b"payload"), f"{prefix}/o")
    proxy = flaky(2)
    through = make_driver(connection_string=connection_string(f"http://127.0.0.1:{proxy.port}"))
    assert through.read_object(f"{prefix}/o")[0] == b"payload"
    assert proxy.refused == 2


def test_persistent_faults_end_within_the_timeout(
    make_driver: Callable[..., Any], flaky: Callable[[int], FlakyProxy], engine: str
) -> None:
    """The error names what the service said: its error code through the SDK, its status
    through obstore (which does not pass on the ``x-ms-error-code`` header of an answer
    without a body)."""
    proxy = flaky(10**6)
    through = make_driver(
        connection_string=connection_string(f"http://127.0.0.1:{proxy.port}"), timeout_s=2.0
    )
    start = time.monotonic()
    said = "503" if engine == "obstore" else "ServerBusy"
    with pytest.raises(errors.StorageUnavailableError, match=said):
        through.exists("x")
    assert time.monotonic() - start < 8
    assert proxy.refused >= 2  # retried, then stopped by the budget


# -- conditional writes --------------------------------------------------------------------------


def test_create_only_holds_for_block_uploads(
    make_driver: Callable[..., Any], azurite: Azurite, prefix: str, tmp_path: Path
) -> None:
    small_blocks = make_driver(max_single_put_size=256 * 1024, max_block_size=64 * 1024)
    first, second = os.urandom(MiB), os.urandom(MiB)
    name = f"{prefix}/immutable"
    small_blocks.create_object(_file(tmp_path, first, "first"), name)
    blob = azurite.service_client().get_blob_client(CONTAINER, name)
    assert len(blob.get_block_list("committed")[0]) == 16  # sent as parallel blocks
    with pytest.raises(errors.ObjectAlreadyExistsError):
        small_blocks.create_object(_file(tmp_path, second, "second"), name)
    with pytest.raises(errors.PreconditionFailedError):
        small_blocks.write_object(b"x", name, if_absent=True)
    assert small_blocks.read_object(name)[0] == first


def test_an_interrupted_large_upload_goes_on_from_the_blocks_that_match(
    make_driver: Callable[..., Any], azurite: Azurite, prefix: str, tmp_path: Path
) -> None:
    """Issue 20: blocks a killed upload left uncommitted are kept when the file's bytes at
    their offsets hash to their ids; a block of other bytes (the file changed since) and
    blocks left by the SDK's own uploads (ids of another kind) are not. The blob has exactly
    the file's bytes."""
    block = 256 * 1024
    data = os.urandom(8 * block + 100)
    name = f"{prefix}/big"
    blob = azurite.service_client().get_blob_client(CONTAINER, name)
    for index in (0, 1, 2):  # what a killed push staged: 3 blocks of these bytes
        chunk = data[index * block : (index + 1) * block]
        blob.stage_block(block_id(index * block, chunk), chunk)
    stale = os.urandom(block)  # staged when the file held other bytes there
    blob.stage_block(block_id(3 * block, stale), stale)
    blob.stage_block(f"{uuid.uuid4().int:048d}", data[4 * block : 5 * block])  # the SDK's kind
    with FaultProxy(int(azurite.endpoint.rsplit(":", 1)[1])) as proxy:
        driver = make_driver(
            connection_string=connection_string(f"http://127.0.0.1:{proxy.port}"),
            max_single_put_size=block,
            max_block_size=block,
        )
        reported: list[int] = []
        driver.create_object_with_progress(_file(tmp_path, data), name, reported.append)
        sent = proxy.stats.bytes_up
    assert sum(reported) == len(data)
    assert make_driver().read_object(name)[0] == data
    needed = len(data) - 3 * block
    assert needed <= sent < needed + block // 2, f"{sent} bytes sent, {needed} needed"
    committed, uncommitted = blob.get_block_list("all")
    assert len(committed) == 9
    assert not uncommitted


def test_compare_and_swap_from_an_empty_blob_loses_nothing(
    driver: AzureStorageDriver, prefix: str
) -> None:
    """The SDK reads an empty blob in two GETs; a write between them must not be lost."""

    def append(name: str, item: int) -> None:
        while True:
            data, token = driver.read_object(name)
            try:
                driver.write_object(data + b"%d," % item, name, if_match=token)
                return
            except errors.PreconditionFailedError:
                continue

    for round_ in range(5):
        name = f"{prefix}/counter-{round_}"
        driver.write_object(b"", name, if_absent=True)
        with ThreadPoolExecutor(8) as pool:
            list(pool.map(lambda item, name=name: append(name, item), range(12)))
        items = driver.read_object(name)[0].decode().strip(",").split(",")
        assert sorted(map(int, items)) == list(range(12))


def test_overwrites_never_hide_the_object(driver: AzureStorageDriver, prefix: str) -> None:
    name = f"{prefix}/index"
    driver.write_object(b"0", name)
    done = threading.Event()
    missing: list[int] = []

    def read() -> None:
        while not done.is_set():
            try:
                driver.read_object(name)
            except errors.ObjectDoesNotExistError:
                missing.append(1)

    with ThreadPoolExecutor(4) as pool:
        readers = [pool.submit(read) for _ in range(3)]
        for i in range(40):
            token = driver.read_object(name)[1]
            driver.write_object(b"%d" % i, name, if_match=token)
            driver.write_object(b"%d" % i, name)
        done.set()
        for reader in readers:
            reader.result()
    assert missing == []


# -- transfers and listing -----------------------------------------------------------------------


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(MiB):
            digest.update(chunk)
    return digest.hexdigest()


#: Runs in a fresh process: peak resident memory (Linux VmHWM, reset through clear_refs) added
#: by an upload and by a download. tracemalloc would mislead here: the SDK's ``list(stream)``
#: reserves 8 bytes per body byte that are never touched, so never resident.
_MEASURE_TRANSFERS = """
import sys
from modelkit_assets_az.blocks import block_id
from modelkit_assets_az.driver import AzureStorageDriver

def status(field):
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) * 1024 for line in f if line.startswith(field))

def added_peak(call):
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")
    before = status("VmRSS:")
    call()
    return status("VmHWM:") - before

cs, container, source, name, destination = sys.argv[1:]
settings = {key: 1 << 20 for key in (
    "max_single_put_size", "max_block_size", "max_single_get_size", "max_chunk_get_size")}
driver = AzureStorageDriver(container, connection_string=cs, max_concurrency=4, **settings)
driver.exists(name)  # warm up: imports, connection pool
print(added_peak(lambda: driver.upload_object(source, name)),
      added_peak(lambda: driver.download_object(name, destination)))
"""


def test_large_transfers_stream_in_bounded_memory(
    azurite: Azurite, az_backend: Backend, prefix: str, tmp_path: Path
) -> None:
    size = 40 * MiB
    source, destination = tmp_path / "big", tmp_path / "big.out"
    with open(source, "wb") as f:
        for _ in range(size // MiB):
            f.write(os.urandom(MiB))
    args = [azurite.connection_string, CONTAINER, str(source), f"{prefix}/big", str(destination)]
    out = subprocess.run(
        [sys.executable, "-c", _MEASURE_TRANSFERS, *args],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    upload_peak, download_peak = map(int, out.split())
    assert _sha256(destination) == _sha256(source)
    assert upload_peak < size / 2, upload_peak
    assert download_peak < size / 2, download_peak


def test_listing_follows_every_page(
    make_driver: Callable[..., Any], prefix: str, tmp_path: Path
) -> None:
    paged = make_driver(list_page_size=7)
    source = _file(tmp_path, b"x")
    names = [f"{prefix}/many/{i:03d}" for i in range(30)]
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda name: paged.upload_object(source, name), names))
    paged.upload_object(source, f"{prefix}/other")
    assert list(paged.iterate_objects(f"{prefix}/many/")) == names  # 5 pages, in order
    assert len(list(paged.iterate_objects(prefix))) == 31


def test_object_uris(driver: AzureStorageDriver) -> None:
    assert driver.get_object_uri("p/name/1.0") == f"az://{CONTAINER}/p/name/1.0"
    assert driver.get_object_uri("p/d/1.0", "sub/f.txt") == f"az://{CONTAINER}/p/d/1.0/sub/f.txt"
    with pytest.raises(errors.UnsafePathError):
        driver.get_object_uri("p/d/1.0", "../escape")


# -- az:// URIs as push sources ------------------------------------------------------------------


def test_az_uris_are_push_sources(
    az_store: StoreEnv, driver: AzureStorageDriver, prefix: str, tmp_path: Path
) -> None:
    source = f"sources-{prefix}"
    driver.upload_object(_file(tmp_path, b"weights"), f"{source}/weights.bin")
    for part, data in {"config.json": b"{}", "vocab/words.txt": b"a\nb\n"}.items():
        driver.upload_object(_file(tmp_path, data), f"{source}/model/{part}")

    ok("new", f"az://{CONTAINER}/{source}/weights.bin", "from-az", "--yes")
    ok("update", f"az://{CONTAINER}/{source}/model", "from-az", "--yes")
    assert Path(ok("fetch", "from-az:0.0").stdout.strip()).read_bytes() == b"weights"
    folder = Path(ok("fetch", "from-az:0.1").stdout.strip())
    assert (folder / "vocab" / "words.txt").read_bytes() == b"a\nb\n"
    assert (folder / "config.json").read_bytes() == b"{}"
    assert "no object" in fails("update", f"az://{CONTAINER}/{source}/nothing", "from-az", "--yes")
