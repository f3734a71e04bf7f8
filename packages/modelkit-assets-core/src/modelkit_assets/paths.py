"""Checks that keep names from a store or a user inside the folder they are meant for."""

from __future__ import annotations

import os
import re
from collections.abc import Collection
from typing import Final

from . import errors

_DRIVE_RE: Final = re.compile(r"^[A-Za-z]:")
#: The completion marker a directory version holds at its top in the cache (modelkit's
#: layout): no file of a directory asset may have that name there.
SUCCESS_MARKER: Final = ".SUCCESS"


def check_relative_part(part: str, where: str) -> list[str]:
    """Split a '/'-separated relative path into safe segments, or raise UnsafePathError.

    Refuses empty paths, absolute paths, drive letters, backslashes, NUL, '.' and '..' segments.
    """
    if not part or part[0] == "/" or "\\" in part or "\x00" in part:
        raise errors.UnsafePathError(part, where)
    if part[1:2] == ":" and _DRIVE_RE.match(part):
        raise errors.UnsafePathError(part, where)
    segments = part.split("/")
    # Three list scans in C: a push checks every object name (a generator was 1 us a name).
    if "" in segments or "." in segments or ".." in segments:
        raise errors.UnsafePathError(part, where)
    return segments


def safe_join(root: str, part: str, where: str) -> str:
    """``root/part`` after checking that ``part`` cannot leave ``root``."""
    return os.path.join(root, *check_relative_part(part, where))


def in_a_version(name: str, claimed: Collection[str]) -> bool:
    """Whether the store name ``name`` (under the prefix) lies in the folder of a claimed
    version: some ``A/V`` of its leading segments is in ``claimed`` (``A/V.meta`` exists). Such
    a name is a file of that version, even one named like an index (``a/0.0/data.versions``):
    no asset may lie inside a version (see the push's nesting checks)."""
    parts = name.split("/")
    return any("/".join(parts[: depth + 1]) in claimed for depth in range(1, len(parts) - 1))
