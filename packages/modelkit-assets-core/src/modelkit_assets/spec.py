"""Asset specs: ``name[:version][[sub/part]]``, with modelkit's ``AssetSpec`` API.

A spec names an asset; it is never a path. Names are '/'-separated segments of letters, digits,
'.', '-' and '_' that start and end with a letter or digit: absolute paths, Windows paths and
``..`` are not names (modelkit parses ``/abs/path`` and ``C:\\dir\\file`` as names and then
looks them up as paths; here such strings are local paths from the start, see
:class:`~modelkit_assets.manager.AssetsManager`).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from typing import Final

from . import environment, errors
from .paths import check_relative_part
from .versioning.base import AssetsVersioningSystem

_SPEC_RE: Final = re.compile(
    r"^(?P<name>[^:\[\]]+)(?::(?P<version>[^:\[\]]*))?(?:\[(?P<sub_part>[^\[\]]*)\])?$"
)
_NAME_SEGMENT_RE: Final = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9._\-]*[A-Za-z0-9])?$")
#: modelkit's alphabet of versions, whatever the system (each system checks its own format).
_GENERIC_VERSION_RE: Final = re.compile(r"^[0-9A-Za-z.\-_]+$")

#: How a versioning system may be given: its name, its class, or an instance.
Versioning = str | AssetsVersioningSystem | type[AssetsVersioningSystem]

_instances: dict[type[AssetsVersioningSystem], AssetsVersioningSystem] = {}


def check_name(name: str) -> str:
    """Return ``name`` if it is a valid asset name, else raise :class:`InvalidNameError`."""
    if not all(_NAME_SEGMENT_RE.match(s) for s in name.split("/")) or ".." in name:
        raise errors.InvalidNameError(name)
    return name


def check_sub_part(sub_part: str, name: str, spec: str | None = None) -> str:
    """``sub_part`` without a leading '/' (modelkit accepts ``[/a/b]`` for ``[a/b]``), after
    checking that it stays inside the asset. ``spec``: the text the user wrote, for the
    message (default: ``name[sub_part]``)."""
    where = f"the sub-part of {name}"
    if sub_part.endswith("/") and sub_part.strip("/"):
        raise errors.InvalidAssetSpecError(
            spec or f"{name}[{sub_part}]",
            f"remove the trailing '/' of the sub-part: [{sub_part.rstrip('/')}]",
        )
    relative = sub_part.lstrip("/")
    check_relative_part(relative, where)
    return relative


def system_instance(system: type[AssetsVersioningSystem]) -> AssetsVersioningSystem:
    """The one instance of a versioning system class (systems hold no state)."""
    instance = _instances.get(system)
    if instance is None:
        instance = _instances[system] = system()
    return instance


def get_versioning_system(versioning: Versioning | None = None) -> AssetsVersioningSystem:
    """The system for a name (default: MODELKIT_ASSETS_VERSIONING_SYSTEM), a class or an
    instance, as an instance."""
    if isinstance(versioning, AssetsVersioningSystem):
        return versioning
    if isinstance(versioning, type):
        return system_instance(versioning)
    from .plugins import get_registry

    name = versioning or environment.versioning_system()
    return system_instance(get_registry().versioning_system(name).record.load())


def registered_name(system: AssetsVersioningSystem) -> str:
    """The name the system is registered under (what ``.versions`` records): a plugin may
    register a class under a name other than its ``name`` attribute."""
    from .plugins import get_registry

    found = [
        name
        for name, registered in sorted(get_registry().versioning_systems.items())
        if registered.record.load() is type(system)
    ]
    if getattr(system, "name", None) in found or not found:
        return getattr(system, "name", type(system).__name__)
    return found[0]


def installed_systems(first: AssetsVersioningSystem | None = None) -> list[AssetsVersioningSystem]:
    """Every installed versioning system, ``first`` (else the default one) first."""
    from .plugins import get_registry

    first = first or get_versioning_system()
    others = [
        system_instance(r.record.load())
        for _, r in sorted(get_registry().versioning_systems.items())
    ]
    return [first, *(s for s in others if s != first)]


def parse_spec(text: str) -> tuple[str, str | None, str | None]:
    """``(name, version, sub_part)`` of ``name[:version][[sub/part]]``, the name and sub-part
    checked; the version is only checked by the versioning system of the asset."""
    match = _SPEC_RE.match(text)
    if not match:
        raise errors.InvalidAssetSpecError(text)
    if match["version"] == "":
        raise errors.InvalidAssetSpecError(text, "empty version after ':'")
    if match["sub_part"] == "":
        raise errors.InvalidAssetSpecError(text, "empty sub-part in '[]'")
    name = check_name(match["name"])
    if match["sub_part"] is not None:
        check_sub_part(match["sub_part"], name, text)
    return name, match["version"], match["sub_part"]


class AssetSpec:
    """A reference to an asset: a name, an optional (possibly partial) version, a sub-part.

    As in modelkit: ``AssetSpec(name, versioning=None, version=None, sub_part=None)``,
    ``versioning`` the system's name (or class, or instance), ``spec.versioning`` an instance
    of the system, ``spec.is_version_complete()`` a method, and ``set_latest_version`` pins a
    partial spec in place. Two specs are equal when their name, version and sub-part are.
    """

    __hash__ = None  # type: ignore[assignment]  # mutable, as modelkit's

    def __init__(
        self,
        name: str,
        versioning: Versioning | None = None,
        version: str | None = None,
        sub_part: str | None = None,
    ) -> None:
        self.versioning = get_versioning_system(versioning)
        self.check_name_valid(name)
        self.name = name
        if version:
            self.check_version_valid(version)
            self.versioning.check_version_valid(version)
        self.version = version or None
        if sub_part is not None:
            check_sub_part(sub_part, name)
        self.sub_part = sub_part or None

    @classmethod
    def from_string(cls, input_string: str, versioning: Versioning | None = None) -> AssetSpec:
        """Parse ``name[:version][[sub/part]]``; raise a subclass of InvalidAssetSpecError."""
        name, version, sub_part = parse_spec(input_string)
        return cls(name=name, versioning=versioning, version=version, sub_part=sub_part)

    @classmethod
    def check_name_valid(cls, name: str) -> None:
        """Raise InvalidNameError unless ``name`` is a valid asset name."""
        check_name(name)

    @classmethod
    def check_version_valid(cls, version: str) -> None:
        """Raise InvalidVersionError unless ``version`` uses the characters any version may
        (letters, digits, '.', '-', '_'); each system then checks its own format."""
        if version and not _GENERIC_VERSION_RE.match(version):
            raise errors.InvalidVersionError(version, "any", "letters, digits, '.', '-' or '_'")

    def is_version_complete(self) -> bool:
        """Whether the spec pins exactly one version."""
        return bool(self.version) and self.versioning.is_version_complete(self.version or "")

    def sort_versions(self, version_list: Iterable[str]) -> list[str]:
        """``version_list`` latest first, by the spec's versioning system."""
        return self.versioning.sort_versions(version_list)

    def set_latest_version(self, all_versions: list[str]) -> None:
        """Pin the spec to the latest of ``all_versions`` (latest first) it designates."""
        if not self.version:
            self.version = all_versions[0]
        else:
            self.version = self.versioning.get_latest_partial_version(self.version, all_versions)

    def get_local_versions(self, local_name: str) -> list[str]:
        """The valid versions found in the folder ``local_name`` (an asset's folder in an
        assets dir), latest first; [] if it is not a folder."""
        if not os.path.isdir(local_name):
            return []
        found = [d for d in os.listdir(local_name) if self.versioning.is_version_valid(d)]
        return self.versioning.sort_versions(found)

    @property
    def relative_sub_part(self) -> str | None:
        """The sub-part as a relative path (modelkit allows a leading '/')."""
        return self.sub_part.lstrip("/") if self.sub_part else None

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, AssetSpec):
            return NotImplemented
        return (self.name, self.version, self.sub_part) == (
            other.name,
            other.version,
            other.sub_part,
        )

    def __repr__(self) -> str:
        return (
            f"AssetSpec(name={self.name!r}, version={self.version!r}, "
            f"sub_part={self.sub_part!r}, versioning={self.versioning.name!r})"
        )

    def __str__(self) -> str:
        text = self.name
        if self.version:
            text += f":{self.version}"
        if self.sub_part:
            text += f"[{self.sub_part}]"
        return text
