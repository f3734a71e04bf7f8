"""Assets the guarantee tests push, and how they compare what comes back with what went in."""

from __future__ import annotations

import os
from pathlib import Path

from modelkit_assets.cache import SUCCESS

KIB = 1024


def make_file(path: Path, size: int) -> Path:
    """A file of ``size`` random (incompressible) bytes."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(os.urandom(size))
    return path


def make_tree(root: Path, sizes: dict[str, int]) -> Path:
    """A directory asset: one random file per ``part: size``."""
    for part, size in sizes.items():
        make_file(root / part, size)
    return root


def tree_bytes(root: Path | str) -> dict[str, bytes]:
    """Every file under ``root`` (a file asset, or a directory without its SUCCESS marker)."""
    root = Path(root)
    if root.is_file():
        return {"": root.read_bytes()}
    return {
        path.relative_to(root).as_posix(): path.read_bytes()
        for path in sorted(root.rglob("*"))
        if path.is_file() and path.name != SUCCESS
    }


def leftovers(assets_dir: Path) -> list[str]:
    """What a download left in the assets dir besides versions: debris (``.tmp-``), partial
    downloads and their logs (there must be none after a success)."""
    return sorted(
        path.relative_to(assets_dir).as_posix()
        for path in assets_dir.rglob("*")
        if ".tmp-" in path.name or path.name.endswith(".partial") or path.parent.name == ".partials"
    )
