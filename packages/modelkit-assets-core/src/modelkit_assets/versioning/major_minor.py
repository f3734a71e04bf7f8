"""``MAJOR.MINOR`` versions, the default system: ``0.0`` first, bump the minor, or the major."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any, Final

from .. import errors
from .base import AssetsVersioningSystem

_VERSION_RE: Final = re.compile(r"^(0|[1-9][0-9]*)(?:\.(0|[1-9][0-9]*))?$")


def parse_version(version: str) -> tuple[int, int | None]:
    """``"1.2"`` -> ``(1, 2)``, ``"1"`` -> ``(1, None)``; raises on anything else."""
    match = _VERSION_RE.match(version)
    if not match:
        raise errors.InvalidVersionError(
            version, MajorMinorAssetsVersioningSystem.name, "MAJOR or MAJOR.MINOR"
        )
    major, minor = match.groups()
    return int(major), None if minor is None else int(minor)


class MajorMinorAssetsVersioningSystem(AssetsVersioningSystem):
    """Versions ``MAJOR.MINOR``; a spec ``name:MAJOR`` designates the latest minor of MAJOR."""

    name = "major_minor"
    expected_format = "MAJOR or MAJOR.MINOR, e.g. 1 or 1.2"

    @staticmethod
    def get_initial_version() -> str:
        return "0.0"

    @classmethod
    def check_version_valid(cls, version: str) -> bool:
        return bool(_VERSION_RE.match(version))

    @staticmethod
    def is_version_complete(version: str) -> bool:
        return parse_version(version)[1] is not None

    @classmethod
    def sort_versions(cls, version_list: Iterable[str]) -> list[str]:
        return sorted(version_list, key=parse_version, reverse=True)

    @classmethod
    def matches(cls, partial: str, version: str) -> bool:
        wanted_major, wanted_minor = parse_version(partial)
        major, minor = parse_version(version)
        return major == wanted_major and wanted_minor in (None, minor)

    @classmethod
    def increment_version(
        cls, version_list: list[str] | None = None, params: dict[str, Any] | None = None
    ) -> str:
        params = params or {}
        versions = cls.sort_versions(version_list or [])
        if not versions:
            return cls.get_initial_version()
        if params.get("bump_major"):
            return f"{parse_version(versions[0])[0] + 1}.0"
        major = params.get("major")
        if major is None:
            major = parse_version(versions[0])[0]
        same_major = [v for v in versions if parse_version(v)[0] == int(major)]
        if not same_major:
            raise errors.AssetMajorVersionDoesNotExistError("", str(major))
        return f"{major}.{(parse_version(same_major[0])[1] or 0) + 1}"

    @classmethod
    def get_update_cli_params(
        cls, *, version: str | None, version_list: list[str], bump_major: bool = False
    ) -> dict[str, Any]:
        if version is not None:
            major, minor = parse_version(version)
            if minor is not None:
                raise errors.InvalidVersionError(
                    version, cls.name, "only a MAJOR when updating (the minor is bumped)"
                )
            if bump_major:
                raise errors.InvalidVersionError(
                    version, cls.name, "no version with --bump-major (it starts a new major)"
                )
            return {"display": f"bump the minor of major {major}", "params": {"major": major}}
        if bump_major:
            return {"display": "bump the major version", "params": {"bump_major": True}}
        return {"display": "bump the minor version", "params": {}}
