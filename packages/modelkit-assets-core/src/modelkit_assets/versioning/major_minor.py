"""``MAJOR.MINOR`` versions, the default system: ``0.0`` first, bump the minor, or the major.

Method names, arguments and errors are modelkit's (``filter_versions``, ``latest_version``,
``InvalidMajorVersionError``, ``MajorVersionDoesNotExistError``...). Two things differ on
purpose: a major selects its own versions only (modelkit's ``filter_versions(v, "1")`` also
returns ``10.x``, a prefix match), and numbers are written without leading zeros (``1.01``
and ``1.1`` would otherwise be two names of one place in the order).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any, Final

from .. import errors
from ..errors import InvalidMajorVersionError, MajorVersionDoesNotExistError
from .base import AssetsVersioningSystem

__all__ = [
    "InvalidMajorVersionError",
    "MajorMinorAssetsVersioningSystem",
    "MajorVersionDoesNotExistError",
    "parse_version",
]

_VERSION_RE: Final = re.compile(r"^(0|[1-9][0-9]*)(?:\.(0|[1-9][0-9]*))?$")
_MAJOR_RE: Final = re.compile(r"^(0|[1-9][0-9]*)$")
_EXPECTED: Final = "MAJOR or MAJOR.MINOR, e.g. 1 or 1.2"


def parse_version(version: str) -> tuple[int, int | None]:
    """``"1.2"`` -> ``(1, 2)``, ``"1"`` -> ``(1, None)``; raises on anything else."""
    match = _VERSION_RE.match(version)
    if not match:
        raise errors.InvalidVersionError(version, MajorMinorAssetsVersioningSystem.name, _EXPECTED)
    major, minor = match.groups()
    return int(major), None if minor is None else int(minor)


def _sort_key(version: str) -> tuple[int, int]:
    major, minor = parse_version(version)
    return major, minor or 0  # a bare major sorts as its .0, as in modelkit


class MajorMinorAssetsVersioningSystem(AssetsVersioningSystem):
    """Versions ``MAJOR.MINOR``; a spec ``name:MAJOR`` designates the latest minor of MAJOR."""

    name = "major_minor"
    expected_format = _EXPECTED

    @classmethod
    def get_initial_version(cls) -> str:
        return "0.0"

    @classmethod
    def check_version_valid(cls, version: str) -> None:
        if version:  # modelkit: no version at all is not an invalid one
            parse_version(version)

    @classmethod
    def is_version_complete(cls, version: str) -> bool:
        return parse_version(version)[1] is not None

    @classmethod
    def sort_versions(cls, version_list: Iterable[str]) -> list[str]:
        return sorted(version_list, key=_sort_key, reverse=True)

    @classmethod
    def matches(cls, partial: str, version: str) -> bool:
        wanted_major, wanted_minor = parse_version(partial)
        major, minor = parse_version(version)
        return major == wanted_major and wanted_minor in (None, minor)

    @staticmethod
    def filter_versions(version_list: Iterable[str], major: str | int) -> list[str]:
        """The versions of ``version_list`` whose major is ``major``, in their order."""
        if not _MAJOR_RE.match(str(major)):
            raise InvalidMajorVersionError(str(major))
        return [
            v for v in version_list if _VERSION_RE.match(v) and parse_version(v)[0] == int(major)
        ]

    @classmethod
    def latest_version(cls, version_list: Iterable[str], major: str | int | None = None) -> str:
        """The latest version, or the latest of ``major``; MajorVersionDoesNotExistError if
        that major has none."""
        versions = list(version_list)
        if major is not None and major != "":
            versions = cls.filter_versions(versions, major)
            if not versions:
                raise MajorVersionDoesNotExistError(str(major))
        if not versions:
            raise errors.AssetDoesNotExistError("", hint="it has no version")
        return cls.sort_versions(versions)[0]

    @classmethod
    def increment_version(
        cls, version_list: list[str] | None = None, params: dict[str, Any] | None = None
    ) -> str:
        params = params or {}
        versions = list(version_list or [])
        if not versions:
            return cls.get_initial_version()
        if params.get("bump_major"):
            return f"{parse_version(cls.latest_version(versions))[0] + 1}.0"
        major, minor = parse_version(cls.latest_version(versions, params.get("major")))
        return f"{major}.{(minor or 0) + 1}"

    @classmethod
    def get_update_cli_params(cls, **kwargs: Any) -> dict[str, Any]:
        version: str | None = kwargs.get("version")
        version_list: list[str] = list(kwargs.get("version_list") or [])
        major = str(parse_version(version)[0]) if version else None
        majors = sorted({parse_version(v)[0] for v in version_list})
        display = [f"Found a total of {len(version_list)} versions ({len(majors)} major versions)"]
        display += [
            f" - major `{m}` = " + ", ".join(cls.filter_versions(version_list, m)) for m in majors
        ]
        return {
            "display": "\n".join(display),
            "params": {"bump_major": bool(kwargs.get("bump_major")), "major": major},
        }
