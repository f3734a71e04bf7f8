"""The interface every versioning system implements, with modelkit's method names and semantics.

modelkit puts an *instance* of the system on ``AssetSpec.versioning`` and calls its methods,
all class methods, on it; code written against modelkit calls them on the class too. Both work
here: systems hold no state.
"""

from __future__ import annotations

import abc
from collections.abc import Iterable
from typing import Any, ClassVar

from .. import errors


class AssetsVersioningSystem(abc.ABC):
    """Writes, orders, resolves and increments the versions of one asset."""

    #: The name users give in MODELKIT_ASSETS_VERSIONING_SYSTEM (and that ``.versions`` records).
    name: ClassVar[str]
    #: What a valid version looks like, for error messages.
    expected_format: ClassVar[str] = ""

    @classmethod
    @abc.abstractmethod
    def get_initial_version(cls) -> str:
        """The version given to a brand-new asset."""

    @classmethod
    @abc.abstractmethod
    def check_version_valid(cls, version: str) -> None:
        """Raise :class:`~modelkit_assets.errors.InvalidVersionError` unless ``version`` is
        written correctly (complete or partial), as modelkit does."""

    @classmethod
    @abc.abstractmethod
    def sort_versions(cls, version_list: Iterable[str]) -> list[str]:
        """Versions ordered latest first."""

    @classmethod
    @abc.abstractmethod
    def increment_version(
        cls, version_list: list[str] | None = None, params: dict[str, Any] | None = None
    ) -> str:
        """The next version after ``version_list``, given the ``params`` of
        :meth:`get_update_cli_params`."""

    @classmethod
    @abc.abstractmethod
    def get_update_cli_params(cls, **kwargs: Any) -> dict[str, Any]:
        """``{"display": text, "params": params for increment_version}`` for an update, from
        the keywords ``version`` (the spec's, maybe None), ``version_list`` and ``bump_major``
        (modelkit's CLI passes all three; a system reads those it needs)."""

    @classmethod
    def is_version_valid(cls, version: str) -> bool:
        """Whether ``version`` is written correctly (complete or partial)."""
        try:
            cls.check_version_valid(version)
        except errors.InvalidVersionError:
            return False
        return True

    @classmethod
    def is_version_complete(cls, version: str) -> bool:
        """Whether ``version`` pins one exact version (as opposed to a partial one)."""
        return True

    @classmethod
    def get_latest_partial_version(cls, version: str, versions: Iterable[str]) -> str:
        """The latest of ``versions`` that ``version`` (possibly partial) designates; raise
        AssetDoesNotExistError when none does."""
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
        cls.check_version_valid(version)
        return version

    def __eq__(self, other: object) -> bool:
        return type(self) is type(other)

    def __hash__(self) -> int:
        return hash(type(self))

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"
