"""Sizes and ages as people write them: ``5GB``, ``500MiB``, ``1.5TB``, bytes; ``30d``, ``12h``."""

from __future__ import annotations

import re
from typing import Final

from .. import errors

_UNITS: Final = {
    "": 1,
    "b": 1,
    "kb": 10**3,
    "mb": 10**6,
    "gb": 10**9,
    "tb": 10**12,
    "pb": 10**15,
    "kib": 2**10,
    "mib": 2**20,
    "gib": 2**30,
    "tib": 2**40,
    "pib": 2**50,
}
_SECONDS: Final = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_NUMBER: Final = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$")


def parse_size(text: str, what: str = "the size") -> int:
    """Bytes in ``text``: a number of bytes, or a number with a unit (``KB``, ``MB``, ``GB``,
    ``TB`` in powers of 1000; ``KiB``, ``MiB``, ``GiB``, ``TiB`` in powers of 1024)."""
    match = _NUMBER.match(text)
    unit = match[2].lower() if match else ""
    if not match or unit not in _UNITS:
        raise errors.InvalidSettingError(
            what,
            text,
            "bytes, or a number with KB, MB, GB, TB, KiB, MiB, GiB or TiB (5GB, 500MiB, 1.5TB)",
        )
    return int(float(match[1]) * _UNITS[unit])


def parse_age(text: str, what: str = "the age") -> float:
    """Seconds in ``text``: a number with ``s``, ``m``, ``h``, ``d`` or ``w`` (``30d``,
    ``12h``)."""
    match = _NUMBER.match(text)
    unit = match[2].lower() if match else ""
    if not match or unit not in _SECONDS:
        raise errors.InvalidSettingError(what, text, "a number with s, m, h, d or w (30d, 12h)")
    return float(match[1]) * _SECONDS[unit]


def human_size(size: int) -> str:
    """``1.5 GB``: powers of 1000, as the CLI prints sizes elsewhere."""
    value = float(size)
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if value < 1000 or unit == "TB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    raise AssertionError("unreachable")
