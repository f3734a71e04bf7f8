"""What a push reads from disk: every file, hidden ones and link targets, each folder once."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import blake3
import pytest

from modelkit_assets import errors
from modelkit_assets.hashing import digest_file
from modelkit_assets.meta import FileDigest
from modelkit_assets.source import scan_source

MiB = 1024 * 1024


def test_scan_lists_hidden_files_and_link_targets_without_looping(tmp_path: Path) -> None:
    root = tmp_path / "asset"
    (root / "a" / ".hidden").mkdir(parents=True)
    (root / "a" / ".hidden" / ".f").write_bytes(b"hidden")
    (root / "z.txt").write_bytes(b"z")
    outside = tmp_path / "outside.bin"
    outside.write_bytes(b"linked content")
    os.symlink(outside, root / "link.bin")
    os.symlink("..", root / "a" / "up")  # a cycle
    source = scan_source(str(root))
    assert [f.part for f in source.files] == ["a/.hidden/.f", "link.bin", "z.txt"]
    linked = next(f for f in source.files if f.part == "link.bin")
    assert linked.digest == FileDigest(
        len(b"linked content"), blake3.blake3(b"linked content").hexdigest(), "blake3"
    )
    assert source.size == len(b"hidden") + len(b"linked content") + 1


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
