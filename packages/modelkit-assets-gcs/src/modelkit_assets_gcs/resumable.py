"""Create-only upload of a large file as a resumable upload session that a retry goes on with.

A GCS resumable session is a URL that keeps the bytes the server has persisted, for a week. A
killed push leaves its session behind; the SDK forgets it. Here the session is recorded under
the user's cache dir (``$XDG_CACHE_HOME/modelkit-assets/gcs-uploads/``, one small JSON file per
upload, keyed by endpoint, bucket, object name and file size), with each range of the file the
server confirmed persisted (the ``Range`` of its 308 answers) and the BLAKE3 of those bytes.

A retry of the same upload finds the record, reads and hashes the confirmed ranges of the local
file, and goes on from the recorded offset only if they all match: a file changed since starts
a new session (the old one is cancelled). A session the server no longer knows (expired,
answered 404 or 410) starts a new one too. When the upload finishes, the object's size and
CRC32C (computed here over every byte of the file, kept or sent) are compared with the file's;
a mismatch deletes the object and starts afresh once.

Sending from the recorded offset, not from a status query (``Content-Range: bytes */SIZE``):
GCS may have persisted more than it confirmed (the answer was lost in the kill) and ignores
bytes sent again below its offset, as the SDK relies on when it retries a chunk;
fake-gcs-server 1.54 finalizes a session on a status query (committing the partial object) but
drops a chunk whose body was cut off, so the recorded offset is exactly what it holds.

Two processes uploading one object at once do not share a record: a lock beside the record
sends the second one to a session of its own.
"""

from __future__ import annotations

import base64
import contextlib
import functools
import hashlib
import json
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, BinaryIO, Final

import attrs
import blake3
import google_crc32c
from google.api_core import exceptions as api

#: A session is given up on after this long (GCS keeps them a week).
SESSION_MAX_AGE_S: Final = 6 * 24 * 3600.0
_RECORD_VERSION: Final = 1
_READ: Final = 1024 * 1024

_fcntl: Any
try:
    import fcntl as _fcntl
except ImportError:  # pragma: no cover - not POSIX: no lock, no record: each upload alone
    _fcntl = None


def records_dir() -> Path:
    """Where sessions are recorded: the user's cache dir (``XDG_CACHE_HOME``, else
    ``~/.cache``)."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "modelkit-assets" / "gcs-uploads"


class SessionLostError(Exception):
    """The server no longer has the session (expired, or forgotten), or lost bytes of it."""


@attrs.define
class SessionRecord:
    """What a retry needs to go on with a session, and to check that it may."""

    endpoint: str
    bucket: str
    object_name: str
    size: int
    url: str
    created: float
    persisted: int = 0
    #: ``[start, end, blake3 hex]`` of each range the server confirmed, in order.
    ranges: list[list[Any]] = attrs.field(factory=list)

    def matches(self, endpoint: str, bucket: str, object_name: str, size: int) -> bool:
        fresh = time.time() - self.created < SESSION_MAX_AGE_S
        return fresh and (self.endpoint, self.bucket, self.object_name, self.size) == (
            endpoint,
            bucket,
            object_name,
            size,
        )


def record_path(endpoint: str, bucket: str, object_name: str, size: int) -> Path:
    key = hashlib.sha256(f"{endpoint}\0{bucket}\0{object_name}\0{size}".encode()).hexdigest()
    return records_dir() / f"{key[:32]}.json"


def load(path: Path) -> SessionRecord | None:
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        if raw.pop("version", None) != _RECORD_VERSION:
            return None
        return SessionRecord(**raw)
    except (OSError, ValueError, TypeError):
        return None


def save(path: Path, record: SessionRecord) -> None:
    """Replace the record atomically (a kill leaves the old one or the new one); best effort:
    an unwritable cache dir only costs the resume."""
    with contextlib.suppress(OSError):
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        data = json.dumps({"version": _RECORD_VERSION, **attrs.asdict(record)})
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)  # a capability
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(data)
        os.replace(temporary, path)


def forget(path: Path) -> None:
    """Remove the record of a finished upload, and its lock (while it is held: another
    process that opened the lock before then finds no record, and records its own)."""
    for leftover in (path, path.with_suffix(".lock")):
        with contextlib.suppress(OSError):
            leftover.unlink()


@contextlib.contextmanager
def exclusive(path: Path) -> Iterator[bool]:
    """Hold the lock beside ``path``; yields whether it is ours (False: another process is
    uploading this object now, or the cache dir is unwritable)."""
    if _fcntl is None:
        yield False
        return
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path.with_suffix(".lock"), os.O_WRONLY | os.O_CREAT, 0o600)
    except OSError:
        yield False
        return
    try:
        try:
            _fcntl.flock(fd, _fcntl.LOCK_EX | _fcntl.LOCK_NB)
        except OSError:
            yield False
            return
        yield True
    finally:
        os.close(fd)  # releases the lock


class Crc32c:
    """The CRC32C of the bytes fed to it, as GCS gives it (base64 of the big-endian value)."""

    def __init__(self) -> None:
        self._checksum = google_crc32c.Checksum()  # type: ignore[no-untyped-call]

    def update(self, data: bytes) -> None:
        self._checksum.update(data)  # type: ignore[no-untyped-call]

    def b64(self) -> str:
        digest: bytes = self._checksum.digest()  # type: ignore[no-untyped-call]
        return base64.b64encode(digest).decode("ascii")


def http_error(status: int, message: str, response: Any = None) -> Exception:
    """The google.api_core exception of an HTTP status (what the SDK's retry policy reads)."""
    error: Exception = api.from_http_status(status, message, response=response)  # type: ignore[no-untyped-call]
    return error


@attrs.define
class Upload:
    """One create-only upload of ``file_path`` to the session of ``record``."""

    session: Any  # the client's authorized requests session
    file: BinaryIO
    record: SessionRecord
    chunk_size: int
    timeout: float
    retry: Callable[[Callable[[], Any]], Callable[[], Any]]
    reached: Callable[[int], None]
    save: Callable[[SessionRecord], None]
    crc: Crc32c = attrs.field(factory=Crc32c)

    def kept(self) -> bool:
        """Check the confirmed ranges against the file, hashing them into the CRC32C on the
        way; whether all match (then the upload goes on from ``record.persisted``)."""
        position = 0
        for start, end, digest in self.record.ranges:
            if start != position:
                return False
            hasher = blake3.blake3()
            self.file.seek(start)
            for chunk in _read(self.file, end - start):
                hasher.update(chunk)
                self.crc.update(chunk)
            if hasher.hexdigest() != digest:
                return False
            position = end
        return position == self.record.persisted

    def send(self) -> dict[str, Any]:
        """Send the rest of the file from the persisted offset; the object's metadata."""
        size = self.record.size
        self.reached(self.record.persisted)
        while True:
            start = self.record.persisted
            self.file.seek(start)
            data = self.file.read(min(self.chunk_size, size - start))
            end = start + len(data)
            if end < size and len(data) < self.chunk_size:
                raise OSError("the file got shorter during the upload")
            response = self.retry(functools.partial(self._put, data, start, end))()
            if response.status_code in (200, 201):  # finished (maybe by an earlier attempt)
                self.crc.update(data)
                for chunk in _read(self.file, size - end):
                    self.crc.update(chunk)
                self.reached(size)
                return dict(response.json())
            # More than sent (a chunk size changed since the kill): what was sent is enough
            # to go on from, GCS ignores bytes it has. Less than it had: the session is lost.
            persisted = min(_persisted(response), end)
            if persisted < start:
                raise SessionLostError(self.record.url)
            confirmed = data if persisted == end else data[: persisted - start]
            self.crc.update(confirmed)
            self.record.ranges.append([start, persisted, blake3.blake3(confirmed).hexdigest()])
            self.record.persisted = persisted
            self.save(self.record)
            self.reached(persisted)

    def _put(self, data: bytes, start: int, end: int) -> Any:
        if end > start:
            content_range = f"bytes {start}-{end - 1}/{self.record.size}"
        else:
            content_range = f"bytes */{self.record.size}"
        response = self.session.request(
            "PUT",
            self.record.url,
            data=data,
            headers={"Content-Range": content_range},
            timeout=self.timeout,
        )
        if response.status_code in (404, 410):
            raise SessionLostError(self.record.url)
        if response.status_code not in (200, 201, 308):
            raise http_error(response.status_code, response.text[:200], response)
        return response


def _persisted(response: Any) -> int:
    """The offset a 308 answer says the server holds (``Range: bytes=0-END``; none: 0)."""
    header = response.headers.get("Range", "")
    if not header.startswith("bytes=0-"):
        return 0
    return int(header[len("bytes=0-") :]) + 1


def _read(file: BinaryIO, length: int) -> Iterator[bytes]:
    while length > 0:
        chunk = file.read(min(_READ, length))
        if not chunk:
            raise OSError("the file got shorter during the upload")
        length -= len(chunk)
        yield chunk


def crc32c_of(metadata: dict[str, Any]) -> str | None:
    value = metadata.get("crc32c")
    return str(value) if value else None


def matches_file(metadata: dict[str, Any], size: int, crc: Crc32c) -> bool:
    """Whether the finished object has the file's size and CRC32C."""
    return int(metadata.get("size", -1)) == size and crc32c_of(metadata) in (None, crc.b64())
