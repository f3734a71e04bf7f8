"""The registration records that plugins return from their hooks.

Records are small frozen attrs classes; names are normalised and checked when a record is made,
so a bad plugin fails where it is defined, not later at lookup time.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, Final

import attrs

if TYPE_CHECKING:
    from .drivers.base import StorageDriver
    from .versioning.base import AssetsVersioningSystem

_NAME_RE: Final = re.compile(r"^[a-z0-9][a-z0-9_\-]*$")

#: Capability a driver declares when it offers create-only writes and compare-and-swap.
CONDITIONAL_WRITES: Final = "conditional_writes"
#: Capability of a driver that reads byte ranges of an object (``read_range``): large files
#: then download in parallel ranges, and a download that was cut off resumes where it stopped.
RANGED_READS: Final = "ranged_reads"
#: Capability of a driver that copies an object inside the store (``copy_object``): an
#: update then copies the files that did not change instead of uploading them again.
SERVER_SIDE_COPY: Final = "server_side_copy"


def _normalise_name(value: str) -> str:
    name = value.strip().lower()
    if not _NAME_RE.match(name):
        raise ValueError(f"invalid plugin name {value!r}: use lowercase letters, digits, '-', '_'")
    return name


def _strings(values: Iterable[str]) -> tuple[str, ...]:
    return tuple(values)


def _string_set(values: Iterable[str]) -> frozenset[str]:
    return frozenset(values)


def resolve_reference(ref: object) -> Any:
    """Import a lazy ``"module:attribute"`` reference; return anything else as it is."""
    if not isinstance(ref, str):
        return ref
    module_name, _, attribute = ref.partition(":")
    if not attribute:
        raise ValueError(f"invalid reference {ref!r}: expected 'module:attribute'")
    target: Any = importlib.import_module(module_name)
    for part in attribute.split("."):
        target = getattr(target, part)
    return target


@attrs.frozen
class StorageDriverPlugin:
    """A storage driver, made available under ``MODELKIT_STORAGE_PROVIDER=name``.

    ``driver`` is the driver class, or a ``"module:Class"`` string so that discovering the plugin
    does not import its cloud SDK.
    """

    name: str = attrs.field(converter=_normalise_name)
    driver: type[StorageDriver] | str
    schemes: tuple[str, ...] = attrs.field(default=(), converter=_strings)
    capabilities: frozenset[str] = attrs.field(default=frozenset(), converter=_string_set)
    description: str = ""

    def load(self) -> type[StorageDriver]:
        """Return the driver class, importing it if it was given lazily."""
        driver: type[StorageDriver] = resolve_reference(self.driver)
        return driver


@attrs.frozen
class VersioningSystemPlugin:
    """A versioning system, made available under ``MODELKIT_ASSETS_VERSIONING_SYSTEM=name``."""

    name: str = attrs.field(converter=_normalise_name)
    system: type[AssetsVersioningSystem] | str
    description: str = ""

    def load(self) -> type[AssetsVersioningSystem]:
        """Return the versioning system class, importing it if it was given lazily."""
        system: type[AssetsVersioningSystem] = resolve_reference(self.system)
        return system
