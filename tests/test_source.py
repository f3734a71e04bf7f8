"""What a push reads from disk: every file, hidden ones and link targets, each folder once."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

import blake3
import pytest

from modelkit_assets import errors, hashing, source
from modelkit_assets.hashing import SMALL, digest_file
from modelkit_assets.meta import FileDigest
from modelkit_assets.source import scan_source

MiB = 1024 * 1024


def test_scan_lists_hidden_files_and_link_targets(tmp_path: Path) -> None:
    root = tmp_path / "asset"
    (root / "a" / ".hidden").mkdir(parents=True)
    (root / "a" / ".hidden" / ".f").write_bytes(b"hidden")
    (root / "z.txt").write_bytes(b"z")
    outside = tmp_path / "outside.bin"
    outside.write_bytes(b"linked content")
    os.symlink(outside, root / "link.bin")
    source = scan_source(str(root))
    assert [f.part for f in source.files] == ["a/.hidden/.f", "link.bin", "z.txt"]
    linked = next(f for f in source.files if f.part == "link.bin")
    assert linked.digest == FileDigest(
        len(b"linked content"), blake3.blake3(b"linked content").hexdigest(), "blake3"
    )
    assert source.size == len(b"hidden") + len(b"linked content") + 1
    assert source.warnings == (
        f"link.bin links outside the pushed folder, to {outside}: its content is pushed",
    )


def test_a_link_cycle_is_refused_naming_the_link_instead_of_looping(tmp_path: Path) -> None:
    root = tmp_path / "asset"
    (root / "a").mkdir(parents=True)
    (root / "a" / "f").write_bytes(b"f")
    os.symlink("..", root / "a" / "up")
    with pytest.raises(errors.SourceLinkError, match="a/up"):
        scan_source(str(root))


@pytest.mark.parametrize("order", [("real", "l3"), ("l3", "real")])
def test_a_link_to_a_folder_keeps_every_path(tmp_path: Path, order: tuple[str, str]) -> None:
    """``real/f`` and ``l3 -> real``: both paths are pushed, whichever is listed first."""
    root = tmp_path / "asset"
    root.mkdir()
    for name in order:
        if name == "real":
            (root / "real" / "deep").mkdir(parents=True)
            (root / "real" / "f").write_bytes(b"f")
            (root / "real" / "deep" / "g").write_bytes(b"g")
        else:
            os.symlink("real", root / "l3")
    scanned = scan_source(str(root))
    assert [f.part for f in scanned.files] == ["l3/deep/g", "l3/f", "real/deep/g", "real/f"]
    assert scanned.warnings == ()


def test_dangling_links_and_special_files_are_left_out_with_a_warning(tmp_path: Path) -> None:
    root = tmp_path / "asset"
    root.mkdir()
    (root / "kept").write_bytes(b"k")
    os.symlink(tmp_path / "gone", root / "dangling")
    os.mkfifo(root / "fifo")
    scanned = scan_source(str(root))
    assert [f.part for f in scanned.files] == ["kept"]
    assert any("dangling is a dangling link" in w for w in scanned.warnings)
    assert any("fifo is not a regular file" in w for w in scanned.warnings)
    with pytest.raises(errors.SourceLinkError):
        scan_source(str(root / "fifo"))  # pushed on its own: refused, not read forever


def test_scan_keeps_the_small_files_it_read_within_its_budget(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Small files keep the bytes that were hashed, so the push stores those very bytes; a
    large file, and small ones past the memory budget, are read again when pushed."""
    root = tmp_path / "asset"
    root.mkdir()
    sizes = {"a": 0, "b": 10, "c": SMALL, "d": SMALL + 1, "e": 20, "f": 30}
    for name, size in sizes.items():
        (root / name).write_bytes(os.urandom(size))
    monkeypatch.setattr(source, "KEEP_BUDGET", SMALL + 25)
    scanned = {f.part: f for f in scan_source(str(root)).files}
    kept = {part for part, f in scanned.items() if f.content is not None}
    assert kept == {"a", "b", "c"}  # "d" is large; "e" and "f" come past the budget
    for part, f in scanned.items():
        data = (root / part).read_bytes()
        assert f.digest == FileDigest(len(data), blake3.blake3(data).hexdigest(), "blake3")
        assert f.content in (None, data)


def test_scan_of_one_small_file_keeps_it(tmp_path: Path) -> None:
    path = tmp_path / "vocab.txt"
    path.write_bytes(b"a\nb\n")
    (only,) = scan_source(str(path)).files
    assert (only.part, only.content) == ("", b"a\nb\n")


def test_scan_refuses_a_folder_it_cannot_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Leaving a folder out silently would push an incomplete asset (os.walk skips it)."""
    (tmp_path / "asset" / "locked").mkdir(parents=True)
    (tmp_path / "asset" / "f").write_bytes(b"f")
    real_scandir = os.scandir

    def scandir(path: str) -> Any:
        if os.path.basename(path) == "locked":
            raise PermissionError(13, "Permission denied", path)
        return real_scandir(path)

    monkeypatch.setattr(source.os, "scandir", scandir)
    with pytest.raises(PermissionError):
        scan_source(str(tmp_path / "asset"))


@pytest.mark.parametrize("size", [0, 1, 4095, 4096, SMALL, 3 * SMALL + 7])
@pytest.mark.parametrize("hint", [0, 4096, SMALL])
def test_read_many_reads_everything_whatever_the_hint(tmp_path: Path, size: int, hint: int) -> None:
    data = os.urandom(size)
    (tmp_path / "f").write_bytes(data)
    assert list(hashing.read_many([(str(tmp_path / "f"), hint)])) == [data]


def _open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def test_read_many_reads_every_file_in_order(tmp_path: Path) -> None:
    """More files than one batch holds open, of sizes around the hint and away from it."""
    sizes = [0, 1, 4096, SMALL, 3 * SMALL + 7] + [10 * 1024] * (2 * hashing._READ_AHEAD + 3)
    files, expected = [], []
    for i, size in enumerate(sizes):
        data = os.urandom(size)
        (tmp_path / f"f{i}").write_bytes(data)
        files.append((str(tmp_path / f"f{i}"), size if i % 3 else 0))  # some hints wrong
        expected.append(data)
    before = _open_fds()
    assert list(hashing.read_many(files)) == expected
    assert _open_fds() == before


def test_read_many_closes_what_it_opened_when_stopped_or_failing(tmp_path: Path) -> None:
    for i in range(5):
        (tmp_path / f"f{i}").write_bytes(b"x")
    files = [(str(tmp_path / f"f{i}"), 1) for i in range(5)]
    before = _open_fds()
    reading = hashing.read_many(files)
    assert next(reading) == b"x"
    assert _open_fds() == before + 5  # the batch is open
    reading.close()
    assert _open_fds() == before
    with pytest.raises(FileNotFoundError):
        list(hashing.read_many([*files[:3], (str(tmp_path / "missing"), 1), *files[3:]]))
    assert _open_fds() == before


def test_scan_refuses_missing_and_empty_sources(tmp_path: Path) -> None:
    with pytest.raises(errors.LocalAssetDoesNotExistError):
        scan_source(str(tmp_path / "missing"))
    (tmp_path / "empty" / "sub").mkdir(parents=True)
    with pytest.raises(errors.LocalAssetDoesNotExistError, match="no files"):
        scan_source(str(tmp_path / "empty"))


@pytest.mark.parametrize("size", [0, 1, MiB, 16 * MiB - 1, 16 * MiB, 32 * MiB + 5])
def test_digest_file_agrees_with_the_algorithms_whatever_the_path(
    tmp_path: Path, size: int
) -> None:
    """Threaded memory-map windows, the streamed read and sha256 all describe the bytes."""
    data = os.urandom(size)
    path = tmp_path / "data.bin"
    path.write_bytes(data)
    reported: list[int] = []
    assert digest_file(str(path)) == FileDigest(size, blake3.blake3(data).hexdigest(), "blake3")
    assert digest_file(str(path), on_bytes=reported.append) == digest_file(str(path))
    assert sum(reported) == size
    assert digest_file(str(path), "sha256") == FileDigest(
        size, hashlib.sha256(data).hexdigest(), "sha256"
    )


def test_read_many_reads_a_file_of_the_listed_size_in_one_call(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The listing's size is asked for plus one byte: getting exactly that size is the end of
    the file, with no empty read to prove it. A file that grew since is read to its end."""
    (tmp_path / "same").write_bytes(b"x" * 10240)
    (tmp_path / "grown").write_bytes(b"y" * 20000)
    reads: list[int] = []
    real_read = os.read

    def counting_read(fd: int, n: int) -> bytes:
        reads.append(n)
        return real_read(fd, n)

    monkeypatch.setattr(os, "read", counting_read)
    files = [(str(tmp_path / "same"), 10240), (str(tmp_path / "grown"), 10240)]
    assert list(hashing.read_many(files)) == [b"x" * 10240, b"y" * 20000]
    # same: one read of its size + 1; grown: that read, one for the rest, the empty one at the end
    assert reads == [10241, 10241, 1024 * 1024, 1024 * 1024]
