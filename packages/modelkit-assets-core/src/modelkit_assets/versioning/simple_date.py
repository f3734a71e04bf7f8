"""UTC timestamp versions ``YYYY-MM-DDThh-mm-ssZ``: every update is stamped with the time.

Versions are checked by their format alone, as modelkit does (``0000-00-00T00-00-00Z`` is a
version), and order alphabetically, which is chronological for real dates.
"""

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

    @classmethod
    def get_initial_version(cls) -> str:
        return datetime.datetime.now(datetime.timezone.utc).strftime(_FORMAT)

    @classmethod
    def check_version_valid(cls, version: str) -> None:
        if not _VERSION_RE.match(version or ""):
            raise errors.InvalidVersionError(version, cls.name, cls.expected_format)

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
            version = _next_second(latest[0])
        return version

    @classmethod
    def get_update_cli_params(cls, **kwargs: Any) -> dict[str, Any]:
        version_list = list(kwargs.get("version_list") or [])
        display = [f"Found a total of {len(version_list)} versions ", f"{version_list}"]
        if version_list:
            display.append(f"Last version is {cls.sort_versions(version_list)[0]}")
        return {"display": "\n".join(display), "params": {}}


def _next_second(version: str) -> str:
    """The version one second after ``version``; for a version that is not a real date
    (valid by format only), the next string of that format."""
    try:
        stamp = datetime.datetime.strptime(version, _FORMAT) + datetime.timedelta(seconds=1)
    except ValueError:
        d = str(int(re.sub(r"\D", "", version)) + 1).zfill(14)
        return f"{d[:4]}-{d[4:6]}-{d[6:8]}T{d[8:10]}-{d[10:12]}-{d[12:14]}Z"
    return stamp.strftime(_FORMAT)
