"""The interface every versioning system implements (method names as in modelkit)."""

from __future__ import annotations

import abc
from collections.abc import Iterable
from typing import Any, ClassVar

from .. import errors


class AssetsVersioningSystem(abc.ABC):
    """Writes, orders, resolves and increments the versions of one asset.

    Systems are stateless: every method is a class or static method, so a system is used as a
    class, exactly as modelkit does.
    """

    #: The name users give in MODELKIT_ASSETS_VERSIONING_SYSTEM.
    name: ClassVar[str]
    #: What a valid version looks like, for error messages.
    expected_format: ClassVar[str] = ""

    @staticmethod
    @abc.abstractmethod
    def get_initial_version() -> str:
        """The version given to a brand-new asset."""

    @classmethod
    @abc.abstractmethod
    def check_version_valid(cls, version: str) -> bool:
        """Whether ``version`` is written correctly (complete or partial)."""

    @classmethod
    @abc.abstractmethod
    def sort_versions(cls, version_list: Iterable[str]) -> list[str]:
        """Versions ordered latest first."""

    @classmethod
    @abc.abstractmethod
    def increment_version(
        cls, version_list: list[str] | None = None, params: dict[str, Any] | None = None
    ) -> str:
        """The next version after ``version_list`` (latest first), given update params."""

    @classmethod
    @abc.abstractmethod
    def get_update_cli_params(
        cls, *, version: str | None, version_list: list[str], bump_major: bool = False
    ) -> dict[str, Any]:
        """``{"display": text, "params": increment params}`` for ``update [name:version]``."""

    @staticmethod
    def is_version_complete(version: str) -> bool:
        """Whether ``version`` pins one exact version (as opposed to a partial one)."""
        return True

    @classmethod
    def get_latest_partial_version(cls, version: str, versions: Iterable[str]) -> str:
        """The latest of ``versions`` that ``version`` (possibly partial) designates."""
        matching = [v for v in cls.sort_versions(versions) if cls.matches(version, v)]
        if not matching:
            raise errors.AssetDoesNotExistError("", version)
        return matching[0]

    @classmethod
    def matches(cls, partial: str, version: str) -> bool:
        """Whether the complete ``version`` is designated by ``partial``."""
        return partial == version

    @classmethod
    def validate(cls, version: str) -> str:
        """Return ``version`` if valid, else raise :class:`InvalidVersionError`."""
        if not cls.check_version_valid(version):
            raise errors.InvalidVersionError(version, cls.name, cls.expected_format)
        return version
