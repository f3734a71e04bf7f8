"""The fault proxy itself: each fault happens when asked, and is counted exactly."""

from __future__ import annotations

import http.client
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tests.faultproxy import FaultProxy, Faults

BODY = bytes(range(256)) * 1024  # 256 KiB


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", str(len(BODY)))
        self.end_headers()
        self.wfile.write(BODY)

    def do_PUT(self) -> None:
        length = int(self.headers["Content-Length"])
        received = self.rfile.read(length)
        self.send_response(200)
        self.send_header("Content-Length", str(len(received)))
        self.end_headers()
        self.wfile.write(received)

    def log_message(self, *args: object) -> None:
        pass


class _Server(ThreadingHTTPServer):
    def handle_error(self, request: object, client_address: object) -> None:
        pass  # the resets this file provokes are expected


@pytest.fixture
def proxy() -> Iterator[FaultProxy]:
    server = _Server(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        with FaultProxy(server.server_address[1]) as running:
            yield running
    finally:
        server.shutdown()
        server.server_close()


def get(proxy: FaultProxy, timeout: float = 5.0) -> bytes:
    url = f"http://127.0.0.1:{proxy.port}/"
    with urllib.request.urlopen(url, timeout=timeout) as response:
        data: bytes = response.read()
        return data


def test_forwards_and_counts_bytes(proxy: FaultProxy) -> None:
    assert get(proxy) == BODY
    assert proxy.stats.connections == 1
    assert proxy.stats.bytes_down > len(BODY)
    assert proxy.stats.faults == 0


def test_throttles_to_the_rate(proxy: FaultProxy) -> None:
    proxy.faults = Faults(bytes_per_s=len(BODY) / 0.5)
    started = time.monotonic()
    assert get(proxy) == BODY
    assert time.monotonic() - started >= 0.45


def test_resets_mid_transfer_within_budget(proxy: FaultProxy) -> None:
    proxy.faults = Faults(resets=2, reset_after=(50_000, 100_000))
    for _ in range(2):
        with pytest.raises((ConnectionResetError, http.client.IncompleteRead)):
            get(proxy)
    assert get(proxy) == BODY
    assert proxy.stats.resets == 2
    assert 100_000 < proxy.stats.bytes_down < 200_000 + len(BODY) + 1000


def test_resets_uploads_too(proxy: FaultProxy) -> None:
    proxy.faults = Faults(resets=1, reset_after=(10_000, 10_000))
    request = urllib.request.Request(f"http://127.0.0.1:{proxy.port}/", BODY, method="PUT")
    with pytest.raises((ConnectionError, urllib.error.URLError, http.client.HTTPException)):
        urllib.request.urlopen(request, timeout=5).read()
    assert proxy.stats.resets == 1
    assert proxy.stats.bytes_down == 0


def test_flips_one_byte_in_transit(proxy: FaultProxy) -> None:
    proxy.faults = Faults(corruptions=1, corrupt_at=(100_000, 100_000))
    corrupted = get(proxy)
    assert len(corrupted) == len(BODY)
    assert [i for i, (a, b) in enumerate(zip(corrupted, BODY, strict=True)) if a != b] == [
        100_000 - (proxy.stats.bytes_down - len(BODY))
    ]
    assert get(proxy) == BODY
    assert proxy.stats.corruptions == 1


def test_answers_http_errors_in_the_servers_place(proxy: FaultProxy) -> None:
    proxy.faults = Faults(http_errors=2, http_status=503)
    for _ in range(2):
        with pytest.raises(urllib.error.HTTPError) as raised:
            get(proxy)
        assert raised.value.code == 503
    assert get(proxy) == BODY
    assert proxy.stats.http_errors == 2


def test_refuses_and_blackholes(proxy: FaultProxy) -> None:
    proxy.faults = Faults(refuse=True)
    with pytest.raises((ConnectionError, urllib.error.URLError, http.client.HTTPException)):
        get(proxy)
    proxy.faults = Faults(blackhole=True)
    with pytest.raises((TimeoutError, urllib.error.URLError)):
        get(proxy, timeout=0.3)
    assert (proxy.stats.refused, proxy.stats.blackholed) == (1, 1)
