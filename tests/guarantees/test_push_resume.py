"""Guarantee 8: a killed push of a large file resumes from what the store already holds, and a
resumed push never publishes bytes that differ from the source.

Real processes (:mod:`tests.guarantees.push_child`) push a large file through a fault proxy
(which counts the bytes on the wire and slows each connection, so that a kill lands where it
is aimed) and are killed with SIGKILL once the store holds about half of the file: the parts of
the open S3 multipart upload, the uncommitted blocks of the Azure blob, the offset of the GCS
resumable session that the push recorded as confirmed by the server. The retry, a new process
with the same content, sends at most 60 % of the file, and the version it publishes has
exactly the source's bytes. When the source changed between the kill and the retry, nothing
stale is kept: the object made has the new bytes. Peak resident memory stays under 150 MB.

Not on ``local`` (its pushes copy within one filesystem), nor on moto (S3 is shown on
SeaweedFS, the real store; moto's multipart support is covered by the backend tests).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from modelkit_assets import AssetsManager, StorageProvider, errors
from modelkit_assets.hashing import digest_file
from tests.conftest import StoreEnv
from tests.faultproxy import FaultProxy, Faults, Stats
from tests.guarantees.faults import REPO_ROOT, endpoint_port, redirected
from tests.guarantees.figures import record
from tests.guarantees.test_resume import PEAK_RSS, MiB, make_big
from tests.servers import Backend

SIZE = 128 * MiB
#: Bandwidth per connection while the first push runs: S3 sends 8 parts at once, Azure 4
#: blocks, GCS one chunk after the other; each first push takes 2-4 s.
RATES = {"s3": 8 * MiB, "az": 8 * MiB, "gcs": 32 * MiB}

Held = Callable[[], int]


@pytest.fixture
def pushing(backend: Backend, store_env: StoreEnv, tmp_path: Path) -> Iterator[Pushing]:
    if backend.provider == "local" or backend.id == "s3-moto":
        pytest.skip("shown on SeaweedFS, fake-gcs-server and Azurite (see the docstring)")
    with FaultProxy(endpoint_port(backend.env)) as proxy:
        yield Pushing(backend, store_env, proxy, tmp_path)


class Pushing:
    """Push children of one test, through one proxy, with a cache dir of their own (where
    the GCS driver records its resumable sessions)."""

    def __init__(self, backend: Backend, store: StoreEnv, proxy: FaultProxy, tmp: Path) -> None:
        self.backend = backend
        self.store = store
        self.proxy = proxy
        self.cache = tmp / "xdg-cache"
        self.log = tmp / "children.stderr"
        self.env = {
            **os.environ,
            **redirected(backend.env, proxy.port),
            "XDG_CACHE_HOME": str(self.cache),
        }

    def throttle(self, on: bool) -> None:
        self.quiet()
        self.proxy.stats = Stats()
        rate = RATES[self.backend.provider] if on else None
        self.proxy.faults = Faults(bytes_per_s=rate)

    def quiet(self) -> None:
        """Wait until no byte has gone up for a while: what a killed push had written into
        its sockets still goes through the proxy after the kill, and is not the retry's."""
        last, still_since = -1, time.monotonic()
        while time.monotonic() - still_since < 0.3:
            if self.proxy.stats.bytes_up != last:
                last, still_since = self.proxy.stats.bytes_up, time.monotonic()
            time.sleep(0.02)

    def start(self, *args: str) -> subprocess.Popen[bytes]:
        with open(self.log, "ab") as stderr:
            return subprocess.Popen(
                [sys.executable, "-m", "tests.guarantees.push_child", *args],
                stdout=subprocess.PIPE,
                stderr=stderr,
                cwd=REPO_ROOT,
                env=self.env,
            )

    def finish(self, process: subprocess.Popen[bytes]) -> dict[str, Any]:
        out, _ = process.communicate(timeout=240)
        assert process.returncode == 0, self.log.read_text()
        info: dict[str, Any] = json.loads(out)
        return info

    def kill_when_held(self, process: subprocess.Popen[bytes], at_least: int) -> int:
        """SIGKILL ``process`` once the store holds ``at_least`` bytes of its upload; the
        bytes it holds once the killed process's last bytes are through."""
        held = self.held()
        deadline = time.monotonic() + 120
        while (now := held()) < at_least:
            assert process.poll() is None, "the push ended before it could be killed"
            assert time.monotonic() < deadline, "the push never got there"
            time.sleep(0.01)
        process.kill()
        process.wait()
        self.quiet()  # what was in flight is through: the store holds what the retry finds
        return max(now, held())

    def held(self) -> Held:
        """How many bytes of unfinished uploads under the test's prefix the store holds."""
        prefix = self.store.prefix + "/"
        if self.backend.provider == "s3":
            return _s3_held(self.backend, prefix)
        if self.backend.provider == "az":
            return _azure_held(self.backend, prefix)
        return lambda: _gcs_recorded(self.cache)


def _s3_held(backend: Backend, prefix: str) -> Held:
    import boto3

    env = backend.env
    client = boto3.client(
        "s3",
        endpoint_url=env["S3_ENDPOINT"],
        aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
        region_name=env["AWS_DEFAULT_REGION"],
    )

    def held() -> int:
        total = 0
        uploads = client.list_multipart_uploads(Bucket=backend.bucket, Prefix=prefix)
        for upload in uploads.get("Uploads", ()):
            parts = client.list_parts(
                Bucket=backend.bucket, Key=upload["Key"], UploadId=upload["UploadId"]
            )
            total += sum(p["Size"] for p in parts.get("Parts", ()))
        return total

    return held


def _azure_held(backend: Backend, prefix: str) -> Held:
    from azure.storage.blob import BlobServiceClient

    service = BlobServiceClient.from_connection_string(
        backend.env["AZURE_STORAGE_CONNECTION_STRING"]
    )
    container = service.get_container_client(backend.bucket)

    def held() -> int:
        total = 0
        for blob in container.list_blobs(name_starts_with=prefix, include=["uncommittedblobs"]):
            _, uncommitted = container.get_blob_client(blob.name).get_block_list("uncommitted")
            total += sum(block.size for block in uncommitted)
        return total

    return held


def _gcs_recorded(cache: Path) -> int:
    """The offsets the GCS driver recorded as persisted by the server, over its sessions."""
    total = 0
    for path in (cache / "modelkit-assets").rglob("*.json"):
        try:
            total += int(json.loads(path.read_text())["persisted"])
        except (OSError, ValueError, KeyError):
            continue  # being replaced
    return total


def _fetched_digest(name: str, version: str) -> str:
    path = AssetsManager().fetch_asset(f"{name}:{version}")
    return digest_file(path).hexdigest


def test_a_push_killed_halfway_sends_at_most_60_percent_on_its_retry(
    pushing: Pushing, tmp_path: Path
) -> None:
    source = make_big(tmp_path / "big.bin", SIZE)
    pushing.throttle(True)
    held = pushing.kill_when_held(pushing.start("push", str(source), "big", "0.0"), SIZE // 2)
    with pytest.raises(errors.AssetDoesNotExistError):
        StorageProvider().get_versions_info("big")  # nothing published by the killed push
    pushing.throttle(False)
    info = pushing.finish(pushing.start("push", str(source), "big", "0.0"))
    sent = pushing.proxy.stats.bytes_up
    assert _fetched_digest("big", "0.0") == digest_file(str(source)).hexdigest
    assert sent <= 0.6 * SIZE, f"the retry sent {sent / SIZE:.0%} of the file ({held} held)"
    assert info["peak_rss"] < PEAK_RSS
    record(
        "8 resumed push (128 MiB, killed at half)",
        pushing.backend,
        kills=1,
        held_percent=round(100 * held / SIZE),
        retry_sent_percent=round(100 * sent / SIZE),
        peak_rss_mb=round(info["peak_rss"] / 1e6),
    )


def change(path: Path, offsets: list[int]) -> None:
    """Flip a byte at each offset of the file, in place (same size, other content)."""
    with open(path, "r+b") as f:
        for offset in offsets:
            f.seek(offset)
            byte = f.read(1)
            f.seek(offset)
            f.write(bytes([byte[0] ^ 0x5A]))


def test_a_resumed_upload_of_a_changed_file_keeps_nothing_stale(
    pushing: Pushing, tmp_path: Path
) -> None:
    """The driver alone, so that the retry creates the very object the killed upload was
    making (a push of other content would take another version): bytes the store holds from
    before the change are not kept; the object has the new bytes."""
    source = make_big(tmp_path / "big.bin", SIZE)
    pushing.throttle(True)
    held = pushing.kill_when_held(pushing.start("create", str(source), "obj"), SIZE // 2)
    change(source, [12345, SIZE // 4 + 7, SIZE - 3])  # in the part held, and in the rest
    pushing.throttle(False)
    pushing.finish(pushing.start("create", str(source), "obj"))
    sent = pushing.proxy.stats.bytes_up
    driver = StorageProvider().driver
    out = tmp_path / "out.bin"
    driver.download_object(f"{pushing.store.prefix}/obj", str(out))
    assert digest_file(str(out)) == digest_file(str(source))
    # At least what the store did not hold, and the changed part it held (4 MiB at least).
    assert sent >= SIZE - held + 4 * MiB, "a part holding stale bytes was kept"
    record(
        "8 resumed upload, source changed",
        pushing.backend,
        kills=1,
        held_percent=round(100 * held / SIZE),
        retry_sent_percent=round(100 * sent / SIZE),
    )


def test_a_retried_update_of_a_changed_source_publishes_the_new_bytes(
    pushing: Pushing, tmp_path: Path
) -> None:
    """Killed after its claim, an update of content A leaves that version held; the retry,
    with the source changed to B, takes the next version and publishes exactly B."""
    seed = tmp_path / "seed.bin"
    seed.write_bytes(b"seed")
    StorageProvider().new(str(seed), "big")
    source = make_big(tmp_path / "big.bin", SIZE)
    pushing.throttle(True)
    pushing.kill_when_held(pushing.start("next", str(source), "big"), SIZE // 2)
    change(source, [100, SIZE // 2 + 100])
    pushing.throttle(False)
    info = pushing.finish(pushing.start("next", str(source), "big"))
    assert info["version"] == "0.2"
    assert StorageProvider().get_versions_info("big") == ["0.2", "0.0"]
    assert _fetched_digest("big", "0.2") == digest_file(str(source)).hexdigest
    record("8 retried update, source changed", pushing.backend, kills=1, partial_results=0)
