"""Asset specs: ``name[:version][[sub/part]]``, parsed and checked once."""

from __future__ import annotations

import re
from typing import Final

import attrs

from . import environment, errors
from .paths import check_relative_part
from .versioning.base import AssetsVersioningSystem

_SPEC_RE: Final = re.compile(
    r"^(?P<name>[^:\[\]]+)(?::(?P<version>[^:\[\]]*))?(?:\[(?P<sub_part>[^\[\]]+)\])?$"
)
_NAME_SEGMENT_RE: Final = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9._\-]*[A-Za-z0-9])?$")


def check_name(name: str) -> str:
    """Return ``name`` if it is a valid asset name, else raise :class:`InvalidNameError`."""
    segments = name.split("/")
    if not all(_NAME_SEGMENT_RE.match(s) for s in segments) or ".." in name:
        raise errors.InvalidNameError(name)
    return name


def get_versioning_system(
    versioning: str | type[AssetsVersioningSystem] | None = None,
) -> type[AssetsVersioningSystem]:
    """The system class for a name (default: MODELKIT_ASSETS_VERSIONING_SYSTEM) or a class."""
    if isinstance(versioning, type):
        return versioning
    from .plugins import get_registry

    name = versioning or environment.versioning_system()
    return get_registry().versioning_system(name).record.load()


@attrs.frozen
class AssetSpec:
    """A reference to an asset: a name, an optional (possibly partial) version, a sub-part.

    ``versioning`` is the resolved versioning system class.
    """

    name: str = attrs.field()
    version: str | None = None
    sub_part: str | None = None
    versioning: type[AssetsVersioningSystem] = attrs.field(
        factory=get_versioning_system, converter=get_versioning_system
    )

    @name.validator
    def _check_name(self, _: attrs.Attribute[str], value: str) -> None:
        check_name(value)

    def __attrs_post_init__(self) -> None:
        if self.version is not None:
            self.versioning.validate(self.version)
        if self.sub_part is not None:
            check_relative_part(self.sub_part, "the sub-part of " + self.name)

    @classmethod
    def from_string(
        cls, spec: str, versioning: str | type[AssetsVersioningSystem] | None = None
    ) -> AssetSpec:
        """Parse ``name[:version][[sub/part]]``; raise a subclass of InvalidAssetSpecError."""
        match = _SPEC_RE.match(spec)
        if not match:
            raise errors.InvalidAssetSpecError(spec)
        version = match["version"]
        if version == "":
            raise errors.InvalidAssetSpecError(spec, "empty version after ':'")
        return cls(
            name=match["name"],
            version=version,
            sub_part=match["sub_part"],
            versioning=versioning,
        )

    @property
    def is_version_complete(self) -> bool:
        """Whether the version pins exactly one version."""
        return self.version is not None and self.versioning.is_version_complete(self.version)

    def __str__(self) -> str:
        text = self.name
        if self.version:
            text += f":{self.version}"
        if self.sub_part:
            text += f"[{self.sub_part}]"
        return text
