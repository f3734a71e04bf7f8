"""Discovery of plugins: built-ins first, then every ``modelkit_assets`` entry point.

Each entry point is loaded inside its own try/except so one broken plugin is reported without
taking the others down. Two distributions claiming one name are recorded and raise
:class:`~modelkit_assets.errors.PluginConflictError` naming both when that name is asked for.
Discovery imports plugin modules only; drivers and their SDKs load when first used.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Iterable
from types import ModuleType
from typing import TYPE_CHECKING, Final, Generic, TypeVar, cast

import attrs
import pluggy

from . import builtin, errors
from .entry_points import LoadableEntryPoint, entry_points
from .hookspecs import PROJECT_NAME, ModelkitAssetsSpecs
from .records import StorageDriverPlugin, VersioningSystemPlugin

if TYPE_CHECKING:  # importlib.metadata loads only when a plugin's distribution is asked for
    from importlib import metadata

logger = logging.getLogger(__name__)

ENTRY_POINT_GROUP: Final = PROJECT_NAME

#: Providers we publish ourselves: name -> (distribution, extra of modelkit-assets-core).
KNOWN_PROVIDERS: Final[dict[str, tuple[str, str]]] = {
    "s3": ("modelkit-assets-s3", "assets-s3"),
    "gcs": ("modelkit-assets-gcs", "assets-gcs"),
    "az": ("modelkit-assets-az", "assets-az"),
}

R = TypeVar("R", StorageDriverPlugin, VersioningSystemPlugin)


class Source:
    """The distribution a plugin comes from.

    Its name and version are read from the distribution's metadata when first asked for (a
    message, ``modelkit assets plugins``): reading them for every plugin at discovery took
    3-4 ms of every process that opens a store.
    """

    def __init__(self, find: Callable[[], metadata.Distribution | None]) -> None:
        self._find = find

    @classmethod
    def of(cls, entry_point: LoadableEntryPoint) -> Source:
        return cls(lambda: entry_point.dist)

    @classmethod
    def named(cls, distribution: str) -> Source:
        def find() -> metadata.Distribution:
            from importlib import metadata

            return metadata.distribution(distribution)

        return cls(find)

    @functools.cached_property
    def _identity(self) -> tuple[str, str]:
        dist = self._find()
        if dist is None:
            return "unknown", "?"
        return dist.metadata["Name"] or "unknown", dist.version

    @property
    def distribution(self) -> str:
        return self._identity[0]

    @property
    def version(self) -> str:
        return self._identity[1]

    def __str__(self) -> str:
        return f"{self.distribution} {self.version}"

    def __repr__(self) -> str:
        return f"Source({self})"


@attrs.frozen
class Registered(Generic[R]):
    """A record together with the distribution that registered it."""

    record: R
    source: Source


@attrs.frozen
class BrokenPlugin:
    """An entry point whose import or hook call failed."""

    entry_point: str
    source: Source
    error: str


@attrs.define
class PluginRegistry:
    """Everything the installed plugins provide, by name."""

    drivers: dict[str, Registered[StorageDriverPlugin]] = attrs.field(factory=dict)
    versioning_systems: dict[str, Registered[VersioningSystemPlugin]] = attrs.field(factory=dict)
    conflicts: dict[tuple[str, str], list[Source]] = attrs.field(factory=dict)
    broken: list[BrokenPlugin] = attrs.field(factory=list)

    def driver(self, name: str) -> Registered[StorageDriverPlugin]:
        """The driver registered as ``name``, or the error that tells the user what to do."""
        self._check_conflict("storage provider", name)
        if name in self.drivers:
            return self.drivers[name]
        if name in KNOWN_PROVIDERS:
            distribution, extra = KNOWN_PROVIDERS[name]
            raise errors.DriverNotInstalledError(name, distribution, extra)
        raise errors.UnknownDriverError(name, sorted(self.drivers))

    def versioning_system(self, name: str) -> Registered[VersioningSystemPlugin]:
        """The versioning system registered as ``name``."""
        self._check_conflict("versioning system", name)
        if name not in self.versioning_systems:
            raise errors.UnknownAssetsVersioningSystemError(name, sorted(self.versioning_systems))
        return self.versioning_systems[name]

    def driver_for_scheme(self, scheme: str) -> Registered[StorageDriverPlugin] | None:
        """The driver that reads ``scheme://`` URIs, if one is installed."""
        for registered in self.drivers.values():
            if scheme in registered.record.schemes:
                return registered
        return None

    def _check_conflict(self, kind: str, name: str) -> None:
        sources = self.conflicts.get((kind, name))
        if sources:
            raise errors.PluginConflictError(kind, name, [str(s) for s in sources])

    def add(self, kind: str, table: dict[str, Registered[R]], item: Registered[R]) -> None:
        name = item.record.name
        if name in table:
            previous = self.conflicts.setdefault((kind, name), [table[name].source])
            previous.append(item.source)
            logger.warning(
                "%s %r is registered by %s", kind, name, " and ".join(str(s) for s in previous)
            )
            return
        table[name] = item


def _plugin_manager() -> pluggy.PluginManager:
    manager = pluggy.PluginManager(PROJECT_NAME)
    manager.add_hookspecs(ModelkitAssetsSpecs)
    return manager


def _collect(
    hook: pluggy.HookCaller,
    sources: dict[int, Source],
    add: Callable[[Registered[R]], None],
    broken: list[BrokenPlugin],
) -> None:
    """Call each implementation on its own, so records know their distribution."""
    for impl in hook.get_hookimpls():
        source = sources[id(impl.plugin)]
        _discovering.append(impl.plugin_name)
        try:
            records = cast("Iterable[R] | None", impl.function())
            for record in records or ():
                add(Registered(record, source))
        except Exception as exc:  # a plugin's bug must not break the others
            broken.append(BrokenPlugin(impl.plugin_name, source, f"{type(exc).__name__}: {exc}"))
            logger.warning("plugin %s (%s) failed: %s", impl.plugin_name, source, exc)
        finally:
            _discovering.pop()


def load_registry(installed: Iterable[LoadableEntryPoint] | None = None) -> PluginRegistry:
    """Build a registry from the built-ins and the given (default: installed) entry points."""
    manager = _plugin_manager()
    registry = PluginRegistry()
    sources: dict[int, Source] = {id(builtin): Source.named("modelkit-assets-core")}
    manager.register(builtin, name="modelkit_assets.builtin")
    if installed is None:
        installed = entry_points(ENTRY_POINT_GROUP)
    for entry_point in installed:
        source = Source.of(entry_point)
        _discovering.append(entry_point.name)
        try:
            plugin: ModuleType = entry_point.load()
            if manager.is_registered(plugin):
                continue
            manager.register(plugin, name=entry_point.value)
        except Exception as exc:
            registry.broken.append(
                BrokenPlugin(entry_point.name, source, f"{type(exc).__name__}: {exc}")
            )
            logger.warning("plugin %s (%s) could not be loaded: %s", entry_point.name, source, exc)
            continue
        finally:
            _discovering.pop()
        sources[id(plugin)] = source

    def add_driver(item: Registered[StorageDriverPlugin]) -> None:
        registry.add("storage provider", registry.drivers, item)

    def add_system(item: Registered[VersioningSystemPlugin]) -> None:
        registry.add("versioning system", registry.versioning_systems, item)

    _collect(manager.hook.modelkit_assets_storage_drivers, sources, add_driver, registry.broken)
    _collect(manager.hook.modelkit_assets_versioning_systems, sources, add_system, registry.broken)
    return registry


_registry: PluginRegistry | None = None
#: The entry point being loaded or asked for its records while the registry is built.
_discovering: list[str] = []


def get_registry() -> PluginRegistry:
    """The registry of installed plugins, built once per process.

    A plugin that calls back into the package while plugins are being discovered (builds a
    StorageProvider at import, or in its hook) would need the very registry being built: that
    is refused with one line naming the plugin, and the plugin is reported as broken.
    """
    global _registry
    if _registry is None:
        if _discovering:
            raise errors.PluginError(
                f"plugin {_discovering[-1]!r} used modelkit-assets while plugins were being "
                "discovered; build providers and drivers when they are used, not at import "
                "or in the hook"
            )
        _discovering.append("(discovery)")
        try:
            _registry = load_registry()
        finally:
            _discovering.clear()
    return _registry


def reset_registry(registry: PluginRegistry | None = None) -> None:
    """Forget the registry so newly installed plugins are seen, or use the one given (tests)."""
    global _registry
    _registry = registry
