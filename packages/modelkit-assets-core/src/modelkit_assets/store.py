"""The remote asset store: its index of versions, its metas, pushes and downloads.

:class:`StorageProvider` is modelkit's class of the same name, with its methods and return
shapes (``get_versions_info``, ``get_asset_meta``, ``new``, ``update``, ``push``, ``download``,
``iterate_assets``) and more: listing that survives one bad index, plans of pushes, updates
that pick their version themselves, and rebuilding an index from the metas.

The versioning system belongs to each asset (DESIGN section 9): ``.versions`` records it under
``versioning`` (modelkit ignores the key); an index without it (written by modelkit) is read by
its versions' format. The provider's own system (``versioning=``, else
``MODELKIT_ASSETS_VERSIONING_SYSTEM``) is only the one new assets take. How a push claims,
uploads and publishes a version is in :mod:`.push`.
"""

from __future__ import annotations

import contextlib
import functools
import logging
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, TypeVar

import attrs

from . import environment, errors
from .drivers.base import StorageDriver
from .meta import AssetMeta, VersionsIndex, check_versions, parse_index, parse_meta
from .paths import check_relative_part, in_a_version
from .plugins import get_registry
from .progress import NO_PROGRESS, TransferProgress
from .retry import retry_transient
from .spec import Versioning, check_name, get_versioning_system, installed_systems
from .versioning.base import AssetsVersioningSystem

if TYPE_CHECKING:  # imported by the first push: 12 ms of every process, and a fetch pushes none
    from .push import Pusher, PushPlan
    from .source import LocalSource

__all__ = ["AssetIndex", "PushPlan", "StorageProvider", "make_driver"]

logger = logging.getLogger(__name__)

T = TypeVar("T")


def __getattr__(name: str) -> Any:
    """``PushPlan``, still importable from here, from :mod:`.push` when first asked for."""
    if name == "PushPlan":
        from .push import PushPlan

        return PushPlan
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


@attrs.frozen
class AssetIndex:
    """An asset's ``.versions``: its versions (latest first), its versioning system (recorded,
    else read from the versions' format), the token a compare-and-swap needs, other keys."""

    name: str
    versions: list[str]
    system: AssetsVersioningSystem
    token: str | None
    recorded: bool
    extra: Mapping[str, Any] = attrs.field(factory=dict)


class StorageProvider:
    """An asset store: a driver and a prefix in its bucket."""

    driver: StorageDriver
    prefix: str

    def __init__(
        self,
        provider: str | None = None,
        bucket: str | None = None,
        prefix: str | None = None,
        timeout_s: float | None = None,
        force_download: bool | None = None,
        client: Any = None,
        *,
        versioning: Versioning | None = None,
        max_workers: int | None = None,
        refused_timeout_s: float | None = None,
        **driver_settings: Any,
    ) -> None:
        name = provider or environment.storage_provider()
        if not name:
            raise errors.NoConfiguredProviderError()
        self.provider = name
        self.prefix = (prefix or environment.storage_prefix()).strip("/")
        check_relative_part(self.prefix, "the storage prefix")
        self.timeout = (
            environment.parse_seconds("timeout_s", timeout_s)
            if timeout_s is not None
            else environment.storage_timeout_s()
        )
        #: How long a refused connection is retried (None: as long as any fault).
        self.refused_timeout = refused_timeout_s
        self.claim_timeout = environment.claim_timeout_s()
        self.force_download = (
            environment.storage_force_download()
            if force_download is None
            else environment.parse_flag("force_download", force_download)
        )
        #: The system new assets take; an existing asset keeps its own (see read_index).
        self.versioning = get_versioning_system(versioning)
        self.driver = make_driver(
            name, bucket or environment.storage_bucket(), client, self.timeout, **driver_settings
        )
        chosen = max_workers or environment.chosen_max_workers()
        #: Transfers in flight at once: uploads, scans, and downloads unless the driver says
        #: otherwise (``max_workers``, else ``MODELKIT_STORAGE_MAX_WORKERS``, else the driver's).
        self.max_workers = (
            chosen or self.driver.default_max_workers or environment.DEFAULT_MAX_WORKERS
        )
        #: Downloads in flight at once: the number chosen, else the driver's own for downloads.
        self.max_downloads = chosen or self.driver.default_max_downloads or self.max_workers
        #: ``(name, version)`` claimed by the push under way and not yet published (what an
        #: interrupted push leaves behind).
        self.pending_claim: tuple[str, str] | None = None

    @functools.cached_property
    def _pusher(self) -> Pusher:
        from .push import Pusher

        return Pusher(self)

    def __repr__(self) -> str:
        return (
            f"StorageProvider(provider={self.provider!r}, driver={self.driver!r}, "
            f"prefix={self.prefix!r})"
        )

    # -- object names (modelkit's layout) -----------------------------------------------------

    def get_object_name(self, name: str, version: str) -> str:
        return f"{self.prefix}/{name}/{version}"

    def get_meta_object_name(self, name: str, version: str) -> str:
        return self.get_object_name(name, version) + ".meta"

    def get_versions_object_name(self, name: str) -> str:
        return f"{self.prefix}/{name}.versions"

    def get_object_uri(self, name: str, version: str, sub_part: str | None = None) -> str:
        return self.driver.get_object_uri(self.get_object_name(name, version), sub_part)

    def part_object_name(self, name: str, version: str, part: str) -> str:
        base = self.get_object_name(name, version)
        return f"{base}/{part}" if part else base

    _part_object_name = part_object_name

    def retry(self, call: Callable[[], T], what: str) -> T:
        """``call()``, retried on transient faults within the storage timeout."""
        return retry_transient(call, self.timeout, what, self.refused_timeout)

    _retry = retry

    # -- reading the index and metas ---------------------------------------------------------

    def read_index(self, name: str) -> AssetIndex | None:
        """The asset's index, its versions checked against its system; None when it has none."""
        object_name = self.get_versions_object_name(name)
        try:
            data, token = self.retry(lambda: self.driver.read_object(object_name), object_name)
        except errors.ObjectDoesNotExistError:
            return None
        raw = parse_index(data, object_name)
        system = self._system_of(raw, object_name)
        versions = check_versions(raw.versions, object_name, system)
        return AssetIndex(name, versions, system, token, raw.system is not None, raw.extra)

    def _system_of(self, raw: VersionsIndex, object_name: str) -> AssetsVersioningSystem:
        """The system an index records, else the first installed one (the provider's first)
        that every listed version fits."""
        if raw.system is not None:
            return get_versioning_system(raw.system)
        for system in installed_systems(self.versioning):
            if all(
                system.is_version_valid(v) and system.is_version_complete(v) for v in raw.versions
            ):
                return system
        raise errors.CorruptStoreError(
            object_name, "its versions fit no installed versioning system"
        )

    def require_index(self, name: str) -> AssetIndex:
        """The asset's index; RemoteAssetDoesNotExistError when it has none."""
        check_name(name)
        index = self.read_index(name)
        if index is None:
            raise errors.RemoteAssetDoesNotExistError(
                name,
                None,
                self.get_versions_object_name(name),
                self.driver.bucket,
                hint=f"no {self.get_versions_object_name(name)} in {self.provider} bucket "
                f"{self.driver.bucket!r}; use `new` to create it",
            )
        return index

    def versioning_for(self, name: str) -> AssetsVersioningSystem:
        """The versioning system of asset ``name`` (the provider's, for an asset not yet made)."""
        index = self.read_index(name)
        return index.system if index is not None else self.versioning

    def asset_exists(self, name: str) -> bool:
        """Whether asset ``name`` has a ``.versions`` index."""
        object_name = self.get_versions_object_name(check_name(name))
        return self.retry(lambda: self.driver.exists(object_name), object_name)

    def get_versions_info(self, name: str) -> list[str]:
        """All versions of an asset, latest first (modelkit's; RemoteAssetDoesNotExistError, an
        ObjectDoesNotExistError, when the asset has no index)."""
        return self.require_index(name).versions

    def resolve_version(self, name: str, version: str | None = None) -> str:
        """The exact published version ``name[:version]`` designates now (latest, latest of a
        major...), by the asset's own versioning system."""
        index = self.require_index(name)
        if not index.versions:
            raise errors.RemoteAssetDoesNotExistError(
                name,
                None,
                self.get_versions_object_name(name),
                self.driver.bucket,
                hint="its .versions lists no version",
            )
        if version is None:
            return index.versions[0]
        index.system.check_version_valid(version)
        if index.system.is_version_complete(version):
            if version not in index.versions:
                raise self._missing_version(name, version)
            return version
        try:
            return index.system.get_latest_partial_version(version, index.versions)
        except errors.AssetDoesNotExistError:
            raise self._missing_version(name, version) from None

    def _missing_version(self, name: str, version: str) -> errors.RemoteAssetDoesNotExistError:
        return errors.RemoteAssetDoesNotExistError(
            name, version, self.get_meta_object_name(name, version), self.driver.bucket
        )

    def read_meta(self, name: str, version: str) -> AssetMeta:
        """A version's checked ``.meta`` (RemoteAssetDoesNotExistError if it has none)."""
        object_name = self.get_meta_object_name(name, version)
        try:
            data, _ = self.retry(lambda: self.driver.read_object(object_name), object_name)
        except errors.ObjectDoesNotExistError:
            raise self._missing_version(name, version) from None
        return parse_meta(data, object_name)

    def get_asset_meta(self, name: str, version: str) -> dict[str, Any]:
        """A version's meta as a dictionary, ``push_date`` a datetime (as in modelkit)."""
        return self.read_meta(name, version).to_public()

    def version_state(self, name: str, version: str) -> tuple[str, AssetMeta | None, str]:
        """``("published" | "unpublished" | "missing", its meta, details)`` of one version."""
        index = self.read_index(name)
        try:
            meta = self.read_meta(name, version)
        except errors.AssetDoesNotExistError:
            return "missing", None, ""
        if index is not None and version in index.versions:
            return "published", meta, ""
        owner = self._pusher.claim_owner(name, version, meta)
        return "unpublished", meta, f"claimed by {owner.describe()}"

    def claimed_versions(self, name: str) -> list[str]:
        """Versions that have a ``.meta`` in the store (published or not), latest first."""
        prefix = f"{self.prefix}/{name}/"
        listing = self.retry(lambda: list(self.driver.iterate_objects(prefix)), prefix)
        stems = [n[len(prefix) : -len(".meta")] for n in listing if n.endswith(".meta")]
        stems = [v for v in stems if "/" not in v]
        system = next(
            (
                s
                for s in installed_systems(self.versioning)
                if all(s.is_version_valid(v) for v in stems)
            ),
            self.versioning,
        )
        return system.sort_versions(v for v in stems if system.is_version_valid(v))

    def _asset_names(self) -> list[str]:
        """Every name with a ``.versions`` under the prefix, but the files of versions: a pushed
        folder may hold a ``data.versions`` (stored as ``a/0.0/data.versions``, beside
        ``a/0.0.meta``), and no asset may lie inside a version (see push's nesting checks)."""
        start = len(self.prefix) + 1
        listing = self.retry(lambda: list(self.driver.iterate_objects(self.prefix + "/")), "list")
        names = [n[start : -len(".versions")] for n in listing if n.endswith(".versions")]
        claimed = {n[start : -len(".meta")] for n in listing if n.endswith(".meta")}
        return sorted(name for name in names if not in_a_version(name, claimed))

    def iterate_assets(self) -> Iterator[tuple[str, list[str]]]:
        """``(name, versions latest first)`` for every asset under the prefix, by name."""
        for name in self._asset_names():
            index = self.read_index(name)
            if index is not None:
                yield name, index.versions

    def list_assets(self) -> list[dict[str, Any]]:
        """Every asset with its versions, its system, latest version and its push date, read in
        parallel. An index that cannot be read gives a row with ``error`` set (the others are
        listed all the same); a latest ``.meta`` that cannot be read leaves ``push_date`` None.
        """
        names = self._asset_names()

        def row(name: str) -> dict[str, Any]:
            try:
                index = self.read_index(name)
            except errors.ModelkitAssetsError as exc:
                return {
                    "name": name,
                    "versions": [],
                    "latest": None,
                    "push_date": None,
                    "versioning": None,
                    "error": str(exc),
                }
            versions = index.versions if index is not None else []
            found: dict[str, Any] = {
                "name": name,
                "versions": versions,
                "latest": versions[0] if versions else None,
                "push_date": None,
                "versioning": index.system.name if index is not None else None,
                "error": None,
            }
            if versions:
                try:
                    found["push_date"] = self.read_meta(name, versions[0]).push_date.isoformat()
                except errors.ModelkitAssetsError as exc:
                    logger.warning("cannot read the meta of %s:%s: %s", name, versions[0], exc)
            return found

        with ThreadPoolExecutor(max(1, min(self.max_workers, len(names)))) as pool:
            return list(pool.map(row, names))

    # -- pushing (the protocol is in :mod:`.push`) --------------------------------------------

    def plan_new(
        self, asset_path: str | LocalSource, name: str, version: str | None = None
    ) -> PushPlan:
        """What ``new`` would push, checked against the store (nothing is written)."""
        check_name(name)
        source = self.scan(asset_path)
        return self._pusher.plan_new(
            source, name, version or self.versioning.get_initial_version(), self.versioning
        )

    def plan_update(
        self,
        asset_path: str | LocalSource,
        name: str,
        version: str | None = None,
        bump_major: bool = False,
    ) -> PushPlan:
        """What ``update name[:version] [--bump-major]`` would push now (nothing is written)."""
        return self._pusher.plan_update(
            self.scan(asset_path), check_name(name), version, bump_major
        )

    def new(
        self,
        asset_path: str | LocalSource,
        name: str,
        version: str | None = None,
        dry_run: bool = False,
        progress: TransferProgress = NO_PROGRESS,
        plan: PushPlan | None = None,
    ) -> PushPlan:
        """Create asset ``name`` at ``version`` (default: the system's initial version), as
        :meth:`plan_new` plans it (``plan``: one already shown to the user)."""
        check_name(name)
        with self._scanned(asset_path, dry_run, progress) as source:
            plan = plan or self._pusher.plan_new(
                source, name, version or self.versioning.get_initial_version(), self.versioning
            )
            if dry_run:
                return attrs.evolve(plan, dry_run=True)
            try:
                return self._pusher.push(
                    source, name, plan.version, self.versioning, progress, plan=plan
                )
            except errors.VersionConflictError:
                if self.read_index(name) is not None:
                    raise errors.AssetAlreadyExistsError(name) from None
                raise errors.VersionConflictError(
                    name,
                    plan.version,
                    hint="an unfinished push claimed it with other content; push that content "
                    f"again, or create the asset at another version (new PATH {name}:VERSION)",
                ) from None

    def update(
        self,
        asset_path: str | LocalSource,
        name: str,
        version: str,
        dry_run: bool = False,
        progress: TransferProgress = NO_PROGRESS,
    ) -> PushPlan:
        """Add ``version`` to the existing asset ``name`` (modelkit's: the version is given)."""
        index = self.require_index(name)
        index.system.check_version_valid(version)
        if version in index.versions:
            raise errors.AssetAlreadyExistsError(name, version, "versions are immutable")
        self._pusher.check_index(index)
        self._pusher.check_not_nested(name, version)
        with self._scanned(asset_path, dry_run, progress) as source:
            plan = self._pusher.with_base(
                self._pusher._plan(source, name, version),
                index.versions[0] if index.versions else None,
            )
            if dry_run:
                return attrs.evolve(plan, dry_run=True)
            return self._pusher.push(source, name, version, index.system, progress, plan=plan)

    def update_next(
        self,
        asset_path: str | LocalSource,
        name: str,
        version: str | None = None,
        bump_major: bool = False,
        dry_run: bool = False,
        progress: TransferProgress = NO_PROGRESS,
        plan: PushPlan | None = None,
    ) -> PushPlan:
        """Push the next version (``update PATH name[:major] [--bump-major]``), the one
        :meth:`plan_update` names (``plan``: one already shown to the user).

        If a concurrent push takes that version first, the next one is planned and pushed, so
        every successful update gets its own version; the result's ``planned_version`` then
        names the version the first plan showed."""
        check_name(name)
        with self._scanned(asset_path, dry_run, progress) as source:
            shown = plan or self._pusher.plan_update(source, name, version, bump_major)
            if dry_run:
                return attrs.evolve(shown, dry_run=True)
            current, taken = shown, [v for v, _ in shown.skipped]
            while True:
                index = self.require_index(name)
                try:
                    pushed = self._pusher.push(
                        source,
                        name,
                        current.version,
                        index.system,
                        progress,
                        exclusive=True,
                        plan=current,
                    )
                except errors.VersionConflictError:
                    logger.info(
                        "%s:%s was taken meanwhile; planning the next", name, current.version
                    )
                    taken.append(current.version)
                    current = self._pusher.plan_update(
                        source, name, version, bump_major, tuple(taken)
                    )
                    continue
                if pushed.version != shown.version:
                    pushed = attrs.evolve(pushed, planned_version=shown.version)
                return pushed

    def next_version(self, name: str, version: str | None = None, bump_major: bool = False) -> str:
        """The version ``update name[:version] [--bump-major]`` would make from the index alone
        (:meth:`plan_update` also passes over versions held by unfinished pushes)."""
        return self._pusher.increment(self.require_index(name), version, bump_major)

    def push(
        self,
        asset_path: str | LocalSource,
        name: str,
        version: str,
        dry_run: bool = False,
        progress: TransferProgress = NO_PROGRESS,
    ) -> PushPlan:
        """Push ``asset_path`` as ``name:version`` and publish it in ``.versions``."""
        check_name(name)
        system = self.versioning_for(name)
        with self._scanned(asset_path, dry_run, progress) as source:
            if dry_run:
                return attrs.evolve(self._pusher._plan(source, name, version), dry_run=True)
            return self._pusher.push(source, name, version, system, progress)

    def reindex(self, name: str, dry_run: bool = False) -> dict[str, Any]:
        """Rebuild ``name``'s ``.versions`` from the metas of the store: every version whose
        ``.meta`` and objects are all there is listed; nothing already listed is dropped.
        Returns ``{"name", "versions", "added", "incomplete"}``."""
        check_name(name)
        prefix = f"{self.prefix}/{name}/"
        listing = set(self.retry(lambda: list(self.driver.iterate_objects(prefix)), prefix))
        index = self.read_index(name)
        versions = self.claimed_versions(name)
        if index is None and not versions:  # nothing to rebuild from: no such asset
            raise errors.RemoteAssetDoesNotExistError(
                name,
                None,
                self.get_versions_object_name(name),
                self.driver.bucket,
                hint=f"no index and no version metas under {prefix} in {self.provider} bucket "
                f"{self.driver.bucket!r}",
            )
        system = index.system if index is not None else self.versioning
        if versions and not all(system.is_version_valid(v) for v in versions):
            system = next(
                s
                for s in installed_systems(self.versioning)
                if all(s.is_version_valid(v) for v in versions)
            )
        complete: list[str] = []
        incomplete: list[str] = []
        for version in versions:
            meta = self.read_meta(name, version)
            parts = meta.contents if meta.is_directory else ("",)
            names = {self.part_object_name(name, version, p) for p in parts}
            (complete if names <= listing else incomplete).append(version)
        listed = index.versions if index is not None else []
        added = [v for v in complete if v not in listed]
        result = {
            "name": name,
            "versions": system.sort_versions({*listed, *complete}),
            "added": added,
            "incomplete": incomplete,
        }
        if added and not dry_run:
            for version in system.sort_versions(added):
                self._pusher.publish(name, version, system)
        return result

    def scan(self, asset_path: str | LocalSource) -> LocalSource:
        """The files of a local path with their hashes (a LocalSource is returned as is)."""
        from .source import LocalSource, scan_source

        if isinstance(asset_path, LocalSource):
            return asset_path
        return scan_source(asset_path, self.max_workers)

    @contextlib.contextmanager
    def _scanned(
        self, asset_path: str | LocalSource, dry_run: bool, progress: TransferProgress
    ) -> Iterator[LocalSource]:
        """:meth:`scan`, staging large files into the store when the driver can (they are
        then copied while they are hashed); whatever stays staged is dropped at the end.
        Not for a dry run, nor when progress is reported: staging happens before the bar
        starts (the CLI scans first anyway, to show what it will push)."""
        from .source import LocalSource, scan_source

        if isinstance(asset_path, LocalSource) or dry_run or progress is not NO_PROGRESS:
            yield self.scan(asset_path)
            return
        source = scan_source(asset_path, self.max_workers, stage=self.driver.stager())
        try:
            yield source
        finally:
            source.discard_staged()

    # -- downloading --------------------------------------------------------------------------

    def download_to(
        self,
        name: str,
        version: str,
        target: str,
        meta: AssetMeta | None = None,
        progress: TransferProgress = NO_PROGRESS,
    ) -> AssetMeta:
        """Download a version to ``target`` (a new file, or a new directory), checking every
        file against the sizes and hashes of its meta. ``target`` must not exist yet."""
        from .cache import download

        return download.download_to(self, name, version, target, meta, progress)

    def download(self, name: str, version: str, destination: str) -> dict[str, Any]:
        """Download ``name:version`` to ``destination/name/version`` (as modelkit does)."""
        from .cache import download

        return download.download(self, name, version, destination)


def make_driver(
    provider: str, bucket: str | None, client: Any, timeout_s: float, **driver_settings: Any
) -> StorageDriver:
    """Build the driver registered as ``provider``, the same way for every driver."""
    registered = get_registry().driver(provider)
    try:
        driver_class = registered.record.load()
    except ImportError as exc:
        raise errors.StorageDriverError(
            f"the {provider} driver from {registered.source} cannot be imported ({exc}); "
            f"reinstall {registered.source.distribution}"
        ) from None
    return driver_class(
        bucket,
        client=client,
        timeout_s=timeout_s,
        lazy=_lazy(driver_settings),
        **driver_settings,
    )


def _lazy(driver_settings: dict[str, Any]) -> bool:
    """``lazy_driver=`` (modelkit's keyword) if given, else MODELKIT_LAZY_DRIVER."""
    given = driver_settings.pop("lazy_driver", None)
    return (
        environment.lazy_driver() if given is None else environment.parse_flag("lazy_driver", given)
    )
