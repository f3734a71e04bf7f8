"""``faulty-local``: the local driver with injected faults, for the provider that has no network.

It is registered as a real plugin (an installed distribution's entry point, see
:func:`tests.guarantees.faults.install_faulty_local`), so the core builds it exactly as it builds
any driver. The faults to inject are a :class:`tests.faultproxy.Faults`, kept with the counters
in a folder named by ``MODELKIT_TEST_FAULTS_DIR`` and shared, under a file lock, by every
process of a test; each fault has its network counterpart:

- ``resets``: a call fails with StorageUnavailableError in the middle: a download leaves part of
  the object behind, a write fails either before or after it landed (the answer was lost);
- ``http_errors``: a call fails before doing anything (a 503);
- ``corruptions``: a download arrives with one byte flipped;
- ``bytes_per_s``: downloads trickle into their destination at that rate, writes wait;
- ``refuse`` / ``blackhole``: every call fails at once / after a wait (a store that is down).
"""

from __future__ import annotations

import json
import os
import random
import time
from collections.abc import Iterator
from typing import Any, ClassVar, Final

import attrs
import filelock

from modelkit_assets import StorageDriverPlugin, errors, hookimpl
from modelkit_assets.drivers.local import LocalStorageDriver
from modelkit_assets.records import CONDITIONAL_WRITES
from tests.faultproxy import Faults, Stats

PROVIDER: Final = "faulty-local"
STATE_ENV: Final = "MODELKIT_TEST_FAULTS_DIR"
_CHUNK: Final = 64 * 1024


class FaultState:
    """The faults and counters in ``folder``, shared by every process under a file lock."""

    def __init__(self, folder: str) -> None:
        self.folder = folder
        self._lock = filelock.FileLock(os.path.join(folder, "state.lock"))

    def _path(self, name: str) -> str:
        return os.path.join(self.folder, name + ".json")

    def _read(self, name: str) -> dict[str, Any]:
        try:
            with open(self._path(name)) as f:
                loaded: dict[str, Any] = json.load(f)
                return loaded
        except FileNotFoundError:
            return {}

    def _write(self, name: str, data: dict[str, Any]) -> None:
        tmp = self._path(name) + ".tmp"
        with open(tmp, "w") as f:
            json.dump(data, f)
        os.replace(tmp, self._path(name))

    @property
    def faults(self) -> Faults:
        data = self._read("faults")
        if "reset_after" in data:
            data["reset_after"] = tuple(data["reset_after"])
        return Faults(**data)

    def set_faults(self, faults: Faults) -> None:
        """Inject ``faults`` from now on, with fresh counters."""
        with self._lock:
            self._write("faults", attrs.asdict(faults))
            self._write("stats", {})

    @property
    def stats(self) -> Stats:
        with self._lock:
            return Stats(**self._read("stats"))

    def count(self, counter: str, amount: int = 1) -> None:
        with self._lock:
            stats = self._read("stats")
            stats[counter] = stats.get(counter, 0) + amount
            self._write("stats", stats)

    def take(self, counter: str) -> bool:
        """Spend one fault of kind ``counter`` if the budget in :attr:`faults` has one left."""
        with self._lock:
            faults, stats = self.faults, self._read("stats")
            if stats.get(counter, 0) >= getattr(faults, counter):
                return False
            if counter == "resets" and random.random() >= faults.reset_probability:
                return False
            stats[counter] = stats.get(counter, 0) + 1
            self._write("stats", stats)
            return True


class FaultyLocalStorageDriver(LocalStorageDriver):
    """The local driver, failing and stalling as the shared :class:`FaultState` says."""

    provider_name = PROVIDER
    capabilities: ClassVar[frozenset[str]] = frozenset({CONDITIONAL_WRITES})

    def __init__(self, bucket: str | None = None, **kwargs: Any) -> None:
        super().__init__(bucket, **kwargs)
        self.state = FaultState(os.environ[STATE_ENV])

    def _unavailable(self, what: str) -> errors.StorageUnavailableError:
        return errors.StorageUnavailableError(PROVIDER, f"injected fault: {what}")

    def _enter(self, call: str) -> None:
        """Count a call; fail it if the store is down or a 503 is due."""
        self.state.count("connections")
        faults = self.state.faults
        if faults.refuse:
            self.state.count("refused")
            raise self._unavailable(f"{call} refused")
        if faults.blackhole:
            self.state.count("blackholed")
            time.sleep(min(self.timeout_s, 1.0))
            raise self._unavailable(f"{call} timed out")
        if self.state.take("http_errors"):
            raise self._unavailable(f"{call} answered {faults.http_status}")

    def _write_call(self, call: str, size: int, do: Any) -> Any:
        """A write of ``size`` bytes, which a reset interrupts before or after it landed."""
        self._enter(call)
        rate = self.state.faults.bytes_per_s
        if rate is not None:
            time.sleep(size / rate)  # the time it takes to send
        self.state.count("bytes_up", size)
        if not self.state.take("resets"):
            return do()
        if random.random() < 0.5:
            raise self._unavailable(f"{call} reset before it landed")
        do()
        raise self._unavailable(f"{call} reset after it landed: the answer was lost")

    # -- reads ----------------------------------------------------------------------------------

    def iterate_objects(self, prefix: str | None = None) -> Iterator[str]:
        self._enter("list")
        return super().iterate_objects(prefix)

    def exists(self, object_name: str) -> bool:
        self._enter("exists")
        return super().exists(object_name)

    def read_object(self, object_name: str) -> tuple[bytes, str | None]:
        self._enter("read")
        if self.state.take("resets"):
            raise self._unavailable("read reset")
        return super().read_object(object_name)

    def download_object(self, object_name: str, destination_path: str) -> None:
        self._enter("download")
        source = self._path(object_name)
        if not os.path.isfile(source):
            raise errors.ObjectDoesNotExistError(PROVIDER, self.bucket, object_name)
        self.state.count("downloads")
        faults = self.state.faults
        cut = random.randint(*faults.reset_after) if self.state.take("resets") else None
        self._trickle(source, destination_path, cut, faults.bytes_per_s)
        if cut is not None:
            raise self._unavailable(f"download reset after {cut} bytes")
        if self.state.take("corruptions"):
            _flip_byte(destination_path, random.randint(*faults.corrupt_at))

    def _trickle(self, source: str, destination: str, cut: int | None, rate: float | None) -> None:
        """Copy up to ``cut`` bytes at ``rate`` bytes per second, visibly growing the file."""
        chunk = _CHUNK if rate is None else max(1024, min(_CHUNK, int(rate / 20)))
        sent, due = 0, time.monotonic()
        with open(source, "rb") as src, open(destination, "wb") as dst:
            while cut is None or sent < cut:
                data = src.read(chunk if cut is None else min(chunk, cut - sent))
                if not data:
                    break
                dst.write(data)
                dst.flush()
                sent += len(data)
                if rate is not None:
                    due = max(due, time.monotonic()) + len(data) / rate
                    time.sleep(max(0.0, due - time.monotonic()))
        self.state.count("bytes_down", sent)

    # -- writes ---------------------------------------------------------------------------------

    def upload_object(self, file_path: str, object_name: str) -> None:
        local, size = LocalStorageDriver, os.path.getsize(file_path)
        self._write_call("upload", size, lambda: local.upload_object(self, file_path, object_name))

    def create_object(self, file_path: str, object_name: str) -> None:
        local, size = LocalStorageDriver, os.path.getsize(file_path)
        self._write_call("create", size, lambda: local.create_object(self, file_path, object_name))

    def write_object(
        self,
        data: bytes,
        object_name: str,
        *,
        if_match: str | None = None,
        if_absent: bool = False,
    ) -> None:
        self._write_call(
            "write",
            len(data),
            lambda: LocalStorageDriver.write_object(
                self, data, object_name, if_match=if_match, if_absent=if_absent
            ),
        )


def _flip_byte(path: str, offset: int) -> None:
    """Flip the byte at ``offset`` (or the last one) of a non-empty file."""
    with open(path, "r+b") as f:
        size = f.seek(0, os.SEEK_END)
        if size:
            f.seek(min(offset, size - 1))
            byte = f.read(1)
            f.seek(-1, os.SEEK_CUR)
            f.write(bytes([byte[0] ^ 0xFF]))


@hookimpl
def modelkit_assets_storage_drivers() -> Iterator[StorageDriverPlugin]:
    yield StorageDriverPlugin(name=PROVIDER, driver=FaultyLocalStorageDriver)
