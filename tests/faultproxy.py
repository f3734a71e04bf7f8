"""A fault-injecting TCP proxy on loopback, to put between a client and a test server.

It forwards every connection to ``127.0.0.1:target_port`` and, as told by its :class:`Faults`,
delays or slows it down, resets it in the middle of a transfer (either way), answers HTTP errors
in the server's place, flips a byte of what the server sends, or swallows it whole. Everything
it injects is counted in :attr:`FaultProxy.stats`, so a test can assert that faults really
happened (a fault test whose faults never fire proves nothing)::

    with FaultProxy(server_port) as proxy:
        proxy.faults = Faults(resets=3, reset_after=(0, 200_000), bytes_per_s=2_000_000)
        ...  # point the client at proxy.port
        assert proxy.stats.resets == 3

The proxy knows TCP, plus just enough HTTP to answer a connection's first request with an
error status (``http_errors``); everything else is byte-level, so it works for any protocol.
Resets are real resets (``SO_LINGER`` 0): the client sees ``ECONNRESET`` mid-stream.
"""

from __future__ import annotations

import contextlib
import random
import select
import socket
import struct
import threading
import time
from types import TracebackType
from typing import Final

import attrs

_CHUNK: Final = 64 * 1024
_HEAD_LIMIT: Final = 64 * 1024
_DRAIN_S: Final = 2.0


@attrs.frozen
class Faults:
    """What to do to the connections from now on (counts are totals across connections)."""

    #: Connections to reset: each is reset once the bytes it carried (both ways) reach a
    #: point drawn from ``reset_after``, while this budget lasts.
    resets: int = 0
    #: Range of the reset point of each connection, in bytes (inclusive).
    reset_after: tuple[int, int] = (0, 0)
    #: Chance that a connection reaching its reset point is reset (while ``resets`` remain).
    reset_probability: float = 1.0
    #: End those connections with a FIN instead of a reset: the client sees a body that stops
    #: short of its Content-Length (IncompleteRead), not ECONNRESET. Counted as resets.
    cut_gracefully: bool = False
    #: Connections whose first request is answered with ``http_status`` instead of the server.
    http_errors: int = 0
    http_status: int = 503
    #: Connections in which one server-to-client byte is flipped, at an offset drawn from
    #: ``corrupt_at`` (past the headers of a large response: a corruption in transit).
    corruptions: int = 0
    corrupt_at: tuple[int, int] = (0, 0)
    #: Bandwidth per connection and direction (None: unlimited).
    bytes_per_s: float | None = None
    #: Delay before a new connection is forwarded.
    connect_delay_s: float = 0.0
    #: Accept connections and never answer (a store behind a black hole).
    blackhole: bool = False
    #: Reset every connection at once (a store that is down behind a load balancer).
    refuse: bool = False


@attrs.define
class Stats:
    """What the proxy saw and did."""

    connections: int = 0
    resets: int = 0
    http_errors: int = 0
    corruptions: int = 0
    refused: int = 0
    blackholed: int = 0
    bytes_up: int = 0
    bytes_down: int = 0
    #: Object downloads begun (counted by the ``faulty-local`` test driver, not by the proxy).
    downloads: int = 0

    @property
    def faults(self) -> int:
        """Faults injected: resets, error answers, corruptions, refused and swallowed
        connections."""
        return self.resets + self.http_errors + self.corruptions + self.refused + self.blackholed


class FaultProxy:
    """A threaded TCP proxy from ``127.0.0.1:port`` to ``127.0.0.1:target_port``."""

    def __init__(self, target_port: int, faults: Faults | None = None) -> None:
        self.target_port = target_port
        self.faults = faults or Faults()
        self.stats = Stats()
        self._lock = threading.Lock()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._listener.getsockname()[1]
        # closing a socket does not wake accept(): the accepting thread polls. Set here, not in
        # the thread: a proxy closed before its thread ran would hand it a closed socket.
        self._listener.settimeout(0.1)
        self._sockets: set[socket.socket] = set()
        self._threads: list[threading.Thread] = []
        self._closed = threading.Event()
        self._accepter = threading.Thread(target=self._accept_loop, name="faultproxy", daemon=True)
        self._accepter.start()

    def __enter__(self) -> FaultProxy:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Stop listening, cut every open connection and wait for the threads."""
        self._closed.set()
        with contextlib.suppress(OSError):
            self._listener.close()
        with self._lock:
            sockets = list(self._sockets)
        for sock in sockets:
            _close(sock)
        self._accepter.join(5)
        for thread in list(self._threads):
            thread.join(5)

    # -- accepting and choosing a fate ---------------------------------------------------------

    def _accept_loop(self) -> None:
        while not self._closed.is_set():
            try:
                client, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            client.settimeout(None)
            thread = threading.Thread(target=self._serve, args=(client,), daemon=True)
            with self._lock:
                self._threads = [t for t in self._threads if t.is_alive()]
                self._threads.append(thread)
            thread.start()

    def _take(self, counter: str) -> bool:
        """Spend one fault of kind ``counter`` (``http_errors``, ``corruptions``) if any is left."""
        with self._lock:
            used = getattr(self.stats, counter)
            if used >= getattr(self.faults, counter):
                return False
            setattr(self.stats, counter, used + 1)
            return True

    def _take_reset(self) -> bool:
        """Whether a connection that reached its reset point is reset (budget and chance)."""
        with self._lock:
            if self.stats.resets >= self.faults.resets:
                return False
            if random.random() >= self.faults.reset_probability:
                return False
            self.stats.resets += 1
            return True

    def _count(self, counter: str, amount: int) -> None:
        with self._lock:
            setattr(self.stats, counter, getattr(self.stats, counter) + amount)

    def _serve(self, client: socket.socket) -> None:
        self._track(client)
        faults = self.faults
        self._count("connections", 1)
        try:
            if faults.connect_delay_s:
                time.sleep(faults.connect_delay_s)
            if faults.refuse:
                self._count("refused", 1)
                _reset(client)
                return
            if faults.blackhole:
                self._count("blackholed", 1)
                _swallow(client, self._closed)
                return
            if self._take("http_errors"):
                _answer_error(client, faults.http_status)
                return
            reset_at = random.randint(*faults.reset_after) if faults.resets else None
            corrupt_at = random.randint(*faults.corrupt_at) if faults.corruptions else None
            self._forward(client, reset_at, corrupt_at)
        finally:
            self._untrack(client)
            _close(client)

    def _forward(self, client: socket.socket, reset_at: int | None, corrupt_at: int | None) -> None:
        """Forward until either side closes, or until the connection is reset on purpose."""
        try:
            server = socket.create_connection(("127.0.0.1", self.target_port), timeout=10)
        except OSError:
            _reset(client)
            return
        server.settimeout(None)
        self._track(server)
        link = _Link((client, server), self, reset_at, corrupt_at)
        try:
            up = threading.Thread(target=link.pump, args=(client, server, "bytes_up"), daemon=True)
            up.start()
            link.pump(server, client, "bytes_down")
            up.join(30)
        finally:
            self._untrack(server)
            _close(server)

    def _track(self, sock: socket.socket) -> None:
        with self._lock:
            self._sockets.add(sock)

    def _untrack(self, sock: socket.socket) -> None:
        with self._lock:
            self._sockets.discard(sock)


class _Link:
    """One proxied connection: both directions, their byte counts, the planned faults."""

    def __init__(
        self,
        sockets: tuple[socket.socket, socket.socket],
        proxy: FaultProxy,
        reset_at: int | None,
        corrupt_at: int | None,
    ) -> None:
        self.sockets = sockets
        self.proxy = proxy
        self.reset_at = reset_at
        self.corrupt_at = corrupt_at
        self.moved = self.moved_down = 0
        self.was_reset = False
        self._lock = threading.Lock()

    def _allowance(self, wanted: int) -> int:
        """Bytes that may still go through before the reset (all of them if none is planned)."""
        if self.reset_at is None:
            return wanted
        with self._lock:
            return max(0, min(wanted, self.reset_at - self.moved))

    def _moved(self, amount: int) -> bool:
        """Count ``amount`` bytes; True if the connection is reset now or was already."""
        with self._lock:
            self.moved += amount
            if self.was_reset or self.reset_at is None or self.moved < self.reset_at:
                return self.was_reset
            if not self.proxy._take_reset():  # the budget is spent: this connection lives on
                self.reset_at = None
                return False
            self.was_reset = True
            for sock in self.sockets:
                if self.proxy.faults.cut_gracefully:
                    _close(sock)
                else:
                    _reset(sock)
            return True

    def _corrupted(self, data: bytes) -> bytes:
        """``data`` (server to client), with one byte flipped if the corruption point is in it."""
        start, self.moved_down = self.moved_down, self.moved_down + len(data)
        at = self.corrupt_at
        if at is None or not start <= at < self.moved_down or not self.proxy._take("corruptions"):
            return data
        flipped = bytearray(data)
        flipped[at - start] ^= 0xFF
        return bytes(flipped)

    def pump(self, source: socket.socket, sink: socket.socket, counter: str) -> None:
        """Copy ``source`` to ``sink`` until EOF, an error, or the reset."""
        rate, due = self.proxy.faults.bytes_per_s, time.monotonic()
        chunk = _CHUNK if rate is None else max(1024, min(_CHUNK, int(rate / 20)))
        try:
            while not self.was_reset:
                size = self._allowance(chunk)
                data = source.recv(size) if size else b""
                if size and not data:
                    with contextlib.suppress(OSError):
                        sink.shutdown(socket.SHUT_WR)
                    return
                if data:
                    if counter == "bytes_down":
                        data = self._corrupted(data)
                    self.proxy._count(counter, len(data))  # first: the peer may read it at once
                    sink.sendall(data)
                if self._moved(len(data)):
                    return
                if rate is not None:  # no credit for idle time: a steady rate, no bursts
                    due = max(due, time.monotonic()) + len(data) / rate
                    time.sleep(max(0.0, due - time.monotonic()))
        except OSError:
            with contextlib.suppress(OSError):
                sink.shutdown(socket.SHUT_WR)


def _close(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)  # wakes a thread blocked in recv (close does not)
    with contextlib.suppress(OSError):
        sock.close()


def _reset(sock: socket.socket) -> None:
    """Close with a TCP reset, not a graceful FIN: the peer gets ECONNRESET."""
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RD)  # wakes our own reader without sending a FIN
    with contextlib.suppress(OSError):
        sock.close()


def _swallow(client: socket.socket, closed: threading.Event) -> None:
    """Read and drop whatever comes, answer nothing, until the client or the proxy gives up."""
    while not closed.is_set():
        ready, _, _ = select.select([client], [], [], 0.2)
        if ready:
            try:
                if not client.recv(_CHUNK):
                    return
            except OSError:
                return


def _answer_error(client: socket.socket, status: int) -> None:
    """Read one HTTP request (head and body) and answer ``status`` with Connection: close."""
    client.settimeout(_DRAIN_S)
    try:
        head = b""
        while b"\r\n\r\n" not in head and len(head) < _HEAD_LIMIT:
            data = client.recv(_CHUNK)
            if not data:
                return
            head += data
        head, _, body = head.partition(b"\r\n\r\n")
        headers = _headers(head)
        # A client that sent Expect: 100-continue waits for us before sending its body.
        if "100-continue" not in headers.get("expect", ""):
            _drain_body(client, headers, body)
        reason = {429: "Too Many Requests", 500: "Internal Server Error"}.get(
            status, "Service Unavailable"
        )
        text = reason.encode()
        client.sendall(
            f"HTTP/1.1 {status} {reason}\r\nContent-Type: text/plain\r\n"
            f"Content-Length: {len(text)}\r\nRetry-After: 0\r\nConnection: close\r\n\r\n".encode()
            + text
        )
        with contextlib.suppress(OSError):
            client.shutdown(socket.SHUT_WR)
    except OSError:
        pass


def _headers(head: bytes) -> dict[str, str]:
    lines = head.decode("latin-1").split("\r\n")[1:]
    pairs = (line.partition(":") for line in lines)
    return {name.strip().lower(): value.strip().lower() for name, _, value in pairs}


def _drain_body(client: socket.socket, headers: dict[str, str], body: bytes) -> None:
    """Read the request body so that closing the connection does not reset it early."""
    if "content-length" in headers:
        remaining = int(headers["content-length"]) - len(body)
        while remaining > 0:
            data = client.recv(min(_CHUNK, remaining))
            if not data:
                return
            remaining -= len(data)
    elif "chunked" in headers.get("transfer-encoding", ""):
        while not body.endswith(b"0\r\n\r\n") and b"\r\n0\r\n" not in body[-64:]:
            data = client.recv(_CHUNK)
            if not data:
                return
            body = body[-64:] + data
