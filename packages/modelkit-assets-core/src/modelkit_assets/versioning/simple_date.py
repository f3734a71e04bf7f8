"""UTC timestamp versions ``YYYY-MM-DDThh-mm-ssZ``: every update is stamped with the time."""

from __future__ import annotations

import datetime
import re
from collections.abc import Iterable
from typing import Any, Final

from .. import errors
from .base import AssetsVersioningSystem

_VERSION_RE: Final = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}-\d{2}-\d{2}Z$")
_FORMAT: Final = "%Y-%m-%dT%H-%M-%SZ"


class SimpleDateAssetsVersioningSystem(AssetsVersioningSystem):
    """Versions are UTC dates; the latest sorts last alphabetically and is listed first."""

    name = "simple_date"
    expected_format = "YYYY-MM-DDThh-mm-ssZ, e.g. 2024-01-31T12-00-00Z"

    @staticmethod
    def get_initial_version() -> str:
        return datetime.datetime.now(datetime.timezone.utc).strftime(_FORMAT)

    @classmethod
    def check_version_valid(cls, version: str) -> bool:
        if not _VERSION_RE.match(version):
            return False
        try:
            datetime.datetime.strptime(version, _FORMAT)
        except ValueError:
            return False
        return True

    @classmethod
    def sort_versions(cls, version_list: Iterable[str]) -> list[str]:
        return sorted(version_list, reverse=True)

    @classmethod
    def increment_version(
        cls, version_list: list[str] | None = None, params: dict[str, Any] | None = None
    ) -> str:
        version = cls.get_initial_version()
        latest = cls.sort_versions(version_list or [])[:1]
        if latest and version <= latest[0]:
            # Two updates in one second, or a clock behind the store: stay strictly increasing.
            stamp = datetime.datetime.strptime(latest[0], _FORMAT) + datetime.timedelta(seconds=1)
            version = stamp.strftime(_FORMAT)
        return version

    @classmethod
    def get_update_cli_params(
        cls, *, version: str | None, version_list: list[str], bump_major: bool = False
    ) -> dict[str, Any]:
        if version is not None or bump_major:
            raise errors.InvalidVersionError(
                version or "--bump-major", cls.name, "no version when updating (the date is used)"
            )
        return {"display": "a new version stamped with the current UTC date", "params": {}}
