"""The conformance suite every storage driver passes to prove itself.

Subclass it in a test module and provide a ``driver`` fixture returning a ready driver on a
bucket that exists (objects of other tests may be there: every test works under its own
random prefix)::

    import pytest
    from modelkit_assets.testing import StorageDriverConformance

    class TestMyDriver(StorageDriverConformance):
        @pytest.fixture
        def driver(self, my_server):
            return MyDriver(bucket="test-bucket", endpoint=my_server.url)
"""

from __future__ import annotations

import hashlib
import os
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import blake3
import pytest

from .. import errors
from ..drivers.base import StorageDriver
from ..meta import FileDigest
from ..records import RANGED_READS, SERVER_SIDE_COPY

#: More than one page on every store we know (S3 and GCS list 1000 per page).
MANY_OBJECTS = 1010
MiB = 1024 * 1024


class StorageDriverConformance:
    """Behaviour every driver shares; conditional-write tests run when the driver declares them."""

    @pytest.fixture
    def driver(self) -> StorageDriver:
        raise NotImplementedError("provide a `driver` fixture")

    @pytest.fixture
    def prefix(self) -> str:
        return f"conformance-{uuid.uuid4().hex[:12]}"

    @staticmethod
    def _file(tmp_path: Path, data: bytes, name: str = "payload") -> str:
        path = tmp_path / name
        path.write_bytes(data)
        return str(path)

    def test_upload_then_download_is_byte_identical(
        self, driver: StorageDriver, prefix: str, tmp_path: Path
    ) -> None:
        data = os.urandom(100_000) + b"\x00\r\n"
        driver.upload_object(self._file(tmp_path, data), f"{prefix}/a/b.bin")
        destination = tmp_path / "out.bin"
        driver.download_object(f"{prefix}/a/b.bin", str(destination))
        assert destination.read_bytes() == data

    def test_empty_object_round_trips(
        self, driver: StorageDriver, prefix: str, tmp_path: Path
    ) -> None:
        driver.upload_object(self._file(tmp_path, b""), f"{prefix}/empty")
        destination = tmp_path / "out"
        driver.download_object(f"{prefix}/empty", str(destination))
        assert destination.read_bytes() == b""

    def test_large_object_round_trips(
        self, driver: StorageDriver, prefix: str, tmp_path: Path
    ) -> None:
        data = os.urandom(3 * 1024 * 1024) * 4  # 12 MiB: past every multipart threshold
        driver.upload_object(self._file(tmp_path, data), f"{prefix}/large")
        destination = tmp_path / "large.out"
        driver.download_object(f"{prefix}/large", str(destination))
        assert destination.stat().st_size == len(data)
        assert destination.read_bytes() == data

    @pytest.mark.parametrize(
        ("size", "algorithm"),
        [(0, "blake3"), (10_000, "blake3"), (3 * 1024 * 1024 + 1, "blake3"), (10_000, "sha256")],
    )
    def test_download_with_digest(
        self, driver: StorageDriver, prefix: str, tmp_path: Path, size: int, algorithm: str
    ) -> None:
        data = os.urandom(size)
        driver.upload_object(self._file(tmp_path, data), f"{prefix}/d")
        destination = tmp_path / "d.out"
        digest = driver.download_object_with_digest(f"{prefix}/d", str(destination), algorithm)
        expected = hashlib.new(algorithm, data) if algorithm == "sha256" else blake3.blake3(data)
        assert digest == FileDigest(size, expected.hexdigest(), algorithm)
        assert destination.read_bytes() == data
        with pytest.raises(errors.ObjectDoesNotExistError):
            driver.download_object_with_digest(f"{prefix}/missing", str(tmp_path / "m"))

    def test_download_many(self, driver: StorageDriver, prefix: str, tmp_path: Path) -> None:
        # Around 1 MiB too: an engine may ask for a first chunk of that size, then the rest.
        sizes = (0, 1, 10_000, 70_000, MiB - 1, MiB, MiB + 1, 3 * MiB + 5)
        contents = [os.urandom(size) for size in sizes]
        jobs = []
        for index, data in enumerate(contents):
            driver.upload_object(self._file(tmp_path, data), f"{prefix}/many/{index}")
            jobs.append((f"{prefix}/many/{index}", str(tmp_path / f"out-{index}")))
        jobs.append((f"{prefix}/many/missing", str(tmp_path / "out-missing")))
        outcomes = dict(driver.download_many(jobs, "blake3", 4))
        assert sorted(outcomes) == list(range(len(jobs)))
        for index, data in enumerate(contents):
            assert outcomes[index] == FileDigest(len(data), blake3.blake3(data).hexdigest())
            assert (tmp_path / f"out-{index}").read_bytes() == data
        assert isinstance(outcomes[len(contents)], errors.ObjectDoesNotExistError)

    def test_exists(self, driver: StorageDriver, prefix: str, tmp_path: Path) -> None:
        assert not driver.exists(f"{prefix}/x")
        driver.upload_object(self._file(tmp_path, b"x"), f"{prefix}/x")
        assert driver.exists(f"{prefix}/x")
        assert not driver.exists(f"{prefix}/x/y")
        assert not driver.exists(prefix)

    def test_download_missing_object_raises(
        self, driver: StorageDriver, prefix: str, tmp_path: Path
    ) -> None:
        with pytest.raises(errors.ObjectDoesNotExistError):
            driver.download_object(f"{prefix}/missing", str(tmp_path / "out"))

    def test_upload_replaces(self, driver: StorageDriver, prefix: str, tmp_path: Path) -> None:
        driver.upload_object(self._file(tmp_path, b"one"), f"{prefix}/o")
        driver.upload_object(self._file(tmp_path, b"two"), f"{prefix}/o")
        driver.download_object(f"{prefix}/o", str(tmp_path / "out"))
        assert (tmp_path / "out").read_bytes() == b"two"

    def test_delete(self, driver: StorageDriver, prefix: str, tmp_path: Path) -> None:
        driver.upload_object(self._file(tmp_path, b"x"), f"{prefix}/gone")
        driver.delete_object(f"{prefix}/gone")
        assert not driver.exists(f"{prefix}/gone")
        driver.delete_object(f"{prefix}/gone")  # deleting twice is fine

    def test_iterate_with_prefix(self, driver: StorageDriver, prefix: str, tmp_path: Path) -> None:
        source = self._file(tmp_path, b"x")
        names = [f"{prefix}/a", f"{prefix}/ab/c", f"{prefix}/b/.hidden", f"{prefix}x/other"]
        for name in names:
            driver.upload_object(source, name)
        assert sorted(driver.iterate_objects(f"{prefix}/")) == sorted(names[:3])
        assert sorted(driver.iterate_objects(f"{prefix}/a")) == [f"{prefix}/a", f"{prefix}/ab/c"]
        assert sorted(driver.iterate_objects(prefix)) == sorted(names)
        assert list(driver.iterate_objects(f"{prefix}/nothing")) == []

    def test_iterate_past_one_page(
        self, driver: StorageDriver, prefix: str, tmp_path: Path
    ) -> None:
        source = self._file(tmp_path, b"x")
        names = {f"{prefix}/many/{i:05d}" for i in range(MANY_OBJECTS)}
        with ThreadPoolExecutor(16) as pool:
            list(pool.map(lambda name: driver.upload_object(source, name), names))
        assert set(driver.iterate_objects(f"{prefix}/many/")) == names

    def test_object_uri_names_the_object(self, driver: StorageDriver, prefix: str) -> None:
        uri = driver.get_object_uri(f"{prefix}/some/object")
        assert uri.endswith(f"{prefix}/some/object")
        assert driver.get_object_uri(f"{prefix}/dir", "sub/part").endswith("dir/sub/part")

    def test_read_object_missing_raises(self, driver: StorageDriver, prefix: str) -> None:
        with pytest.raises(errors.ObjectDoesNotExistError):
            driver.read_object(f"{prefix}/missing")

    def test_write_then_read_object(self, driver: StorageDriver, prefix: str) -> None:
        driver.write_object(b'{"a": 1}', f"{prefix}/small.json")
        assert driver.read_object(f"{prefix}/small.json")[0] == b'{"a": 1}'

    # -- conditional writes ----------------------------------------------------------------------

    @pytest.fixture
    def conditional(self, driver: StorageDriver) -> StorageDriver:
        if not driver.supports_conditional_writes:
            pytest.skip(f"{type(driver).__name__} does not declare conditional writes")
        return driver

    def test_create_object_refuses_to_overwrite(
        self, conditional: StorageDriver, prefix: str, tmp_path: Path
    ) -> None:
        conditional.create_object(self._file(tmp_path, b"first"), f"{prefix}/immutable")
        with pytest.raises(errors.ObjectAlreadyExistsError):
            conditional.create_object(self._file(tmp_path, b"second"), f"{prefix}/immutable")
        conditional.download_object(f"{prefix}/immutable", str(tmp_path / "out"))
        assert (tmp_path / "out").read_bytes() == b"first"

    @pytest.mark.parametrize("data", [b"", b"small file bytes"])
    def test_create_object_from_bytes_refuses_to_overwrite(
        self, conditional: StorageDriver, prefix: str, tmp_path: Path, data: bytes
    ) -> None:
        """A push's small files: the bytes it read (the file holds the same ones)."""
        name = f"{prefix}/from-bytes"
        conditional.create_object_from_bytes(data, name, self._file(tmp_path, data))
        with pytest.raises(errors.ObjectAlreadyExistsError):
            conditional.create_object_from_bytes(b"other", name, self._file(tmp_path, b"other"))
        conditional.download_object(name, str(tmp_path / "out"))
        assert (tmp_path / "out").read_bytes() == data

    def test_create_many_refuses_to_overwrite(
        self, conditional: StorageDriver, prefix: str, tmp_path: Path
    ) -> None:
        conditional.create_object_from_bytes(
            b"first", f"{prefix}/m/0", self._file(tmp_path, b"first")
        )
        jobs = [
            (data, f"{prefix}/m/{index}", self._file(tmp_path, data, f"f{index}"))
            for index, data in enumerate([b"second", b"", os.urandom(50_000)])
        ]
        outcomes = dict(conditional.create_many(jobs, 4))
        assert isinstance(outcomes[0], errors.ObjectAlreadyExistsError)
        assert outcomes[1] is None
        assert outcomes[2] is None
        for index, expected in enumerate([b"first", b"", jobs[2][0]]):
            assert conditional.read_object(f"{prefix}/m/{index}")[0] == expected

    @pytest.mark.parametrize("size", [0, 3 * 1024 * 1024 + 1])
    def test_create_object_with_progress_reports_every_byte_once(
        self, driver: StorageDriver, prefix: str, tmp_path: Path, size: int
    ) -> None:
        data = os.urandom(size)
        reports: list[int] = []
        driver.create_object_with_progress(
            self._file(tmp_path, data), f"{prefix}/reported", reports.append
        )
        assert sum(reports) == size
        assert all(count > 0 for count in reports) or size == 0
        driver.download_object(f"{prefix}/reported", str(tmp_path / "out"))
        assert (tmp_path / "out").read_bytes() == data

    def test_write_if_absent(self, conditional: StorageDriver, prefix: str) -> None:
        conditional.write_object(b"1", f"{prefix}/index", if_absent=True)
        with pytest.raises(errors.PreconditionFailedError):
            conditional.write_object(b"2", f"{prefix}/index", if_absent=True)
        assert conditional.read_object(f"{prefix}/index")[0] == b"1"

    def test_compare_and_swap(self, conditional: StorageDriver, prefix: str) -> None:
        conditional.write_object(b"v1", f"{prefix}/index", if_absent=True)
        data, token = conditional.read_object(f"{prefix}/index")
        assert token is not None
        conditional.write_object(b"v2", f"{prefix}/index", if_match=token)
        with pytest.raises(errors.PreconditionFailedError):
            conditional.write_object(b"v3", f"{prefix}/index", if_match=token)
        data, new_token = conditional.read_object(f"{prefix}/index")
        assert data == b"v2"
        assert new_token != token

    def test_concurrent_compare_and_swap_loses_nothing(
        self, conditional: StorageDriver, prefix: str
    ) -> None:
        name = f"{prefix}/counter"
        conditional.write_object(b"", name, if_absent=True)

        def append(item: int) -> None:
            while True:
                data, token = conditional.read_object(name)
                try:
                    conditional.write_object(data + b"%d," % item, name, if_match=token)
                    return
                except errors.PreconditionFailedError:
                    continue

        with ThreadPoolExecutor(8) as pool:
            list(pool.map(append, range(24)))
        items = conditional.read_object(name)[0].decode().strip(",").split(",")
        assert sorted(map(int, items)) == list(range(24))

    # -- server-side copies (capability server_side_copy) -----------------------------------------

    @pytest.fixture
    def copying(self, driver: StorageDriver) -> StorageDriver:
        if not driver.supports(SERVER_SIDE_COPY):
            pytest.skip(f"{type(driver).__name__} does not declare server-side copies")
        return driver

    @pytest.mark.parametrize("size", [0, 1000, 3 * 1024 * 1024 + 1])
    def test_copy_object_copies_the_bytes(
        self, copying: StorageDriver, prefix: str, tmp_path: Path, size: int
    ) -> None:
        data = os.urandom(size)
        copying.upload_object(self._file(tmp_path, data), f"{prefix}/v1/weights")
        assert copying.copy_object(f"{prefix}/v1/weights", f"{prefix}/v2/weights") == size
        copying.upload_object(self._file(tmp_path, b"replaced"), f"{prefix}/v1/weights")
        copying.download_object(f"{prefix}/v2/weights", str(tmp_path / "out"))
        assert (tmp_path / "out").read_bytes() == data  # a copy, not a link to the source
        assert sorted(copying.iterate_objects(f"{prefix}/")) == [
            f"{prefix}/v1/weights",
            f"{prefix}/v2/weights",
        ]

    def test_copy_object_refuses_to_overwrite(
        self, copying: StorageDriver, prefix: str, tmp_path: Path
    ) -> None:
        copying.upload_object(self._file(tmp_path, b"source"), f"{prefix}/source")
        copying.upload_object(self._file(tmp_path, b"target"), f"{prefix}/target")
        with pytest.raises(errors.ObjectAlreadyExistsError):
            copying.copy_object(f"{prefix}/source", f"{prefix}/target")
        assert copying.read_object(f"{prefix}/target")[0] == b"target"

    def test_copy_object_of_a_missing_source_raises(
        self, copying: StorageDriver, prefix: str
    ) -> None:
        with pytest.raises(errors.ObjectDoesNotExistError):
            copying.copy_object(f"{prefix}/missing", f"{prefix}/target")
        assert not copying.exists(f"{prefix}/target")

    # -- ranged reads (capability ranged_reads) ------------------------------------------------

    @pytest.fixture
    def ranged(self, driver: StorageDriver) -> StorageDriver:
        if not driver.supports(RANGED_READS):
            pytest.skip("the driver does not declare ranged reads")
        return driver

    def test_read_range_gives_the_bytes_asked_for_in_chunks_of_at_most_1_mib(
        self, ranged: StorageDriver, prefix: str, tmp_path: Path
    ) -> None:
        mib = 1024 * 1024
        data = os.urandom(9 * mib + 12345)
        ranged.upload_object(self._file(tmp_path, data), f"{prefix}/ranged.bin")
        for start, end in [
            (0, len(data)),
            (5, 6),
            (mib - 1, 2 * mib + 7),
            (len(data) - 9, len(data)),
        ]:
            chunks = list(ranged.read_range(f"{prefix}/ranged.bin", start, end))
            assert all(0 < len(chunk) <= mib for chunk in chunks), [len(c) for c in chunks]
            assert b"".join(chunks) == data[start:end], (start, end)

    def test_read_range_of_a_missing_object_raises(
        self, ranged: StorageDriver, prefix: str
    ) -> None:
        with pytest.raises(errors.ObjectDoesNotExistError):
            list(ranged.read_range(f"{prefix}/missing.bin", 0, 10))
