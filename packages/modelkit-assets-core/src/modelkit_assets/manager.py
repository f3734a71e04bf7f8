"""Fetching assets into the local cache: resolve the spec, download once, return the path.

What a string names:

- a spec (``name[:version][[sub/part]]``) names an asset. With a storage provider configured,
  the asset must be in the store: one it does not have is an error (RemoteAssetDoesNotExistError,
  an ObjectDoesNotExistError as in modelkit), never a local folder that happens to have its
  name. In pre-downloaded mode (no provider) only the assets dir is asked: unpinned specs take
  the newest complete local version; a spec without a version that names no local asset is
  looked up as a path, as modelkit does (relative to the assets dir, then the working
  directory).
- a string that is not a spec (an absolute path, ``..``, a Windows path) is a local path:
  relative to the assets dir, then the working directory, then absolute.

The cache's own folders (an asset's folder of versions, a version that is not complete,
``.cache/``) are never answered as a path.

An unreachable store does not take a service down. A pinned version already in the cache is
returned without building the provider, so without any network. For any other spec, if the
store cannot be reached (StorageUnavailableError: a network fault that outlived the retries,
at any step), the newest complete local version that matches the spec is returned instead, with
a warning; the store's error is raised only when there is none. Configuration errors (a missing
bucket, refused credentials) are not faults of the network: they fail at once, naming what to
fix. A forced download (``force_download``, ``fetch --download``) never falls back. After a
fallback the manager does not ask the store again for one storage timeout when a local version
can serve: a service that fetches many assets at start waits for an unreachable store once.
"""

from __future__ import annotations

import logging
import os
import time
from typing import Any, Final, Literal, overload

from . import environment, errors
from .cache import SUCCESS, AssetsCache, clean_stale_downloads
from .paths import safe_join
from .plugins import get_registry
from .progress import NO_PROGRESS, TransferProgress
from .spec import AssetSpec, Versioning, get_versioning_system, installed_systems, parse_spec
from .store import StorageProvider
from .versioning.base import AssetsVersioningSystem

logger = logging.getLogger(__name__)

#: Store errors after which a fetch falls back to what the assets dir already holds.
UNREACHABLE: Final = (errors.StorageUnavailableError,)
#: Parsed specs a manager keeps.
_PARSED_MAX: Final = 1024


class AssetFetchError(errors.AssetsManagerError):
    """A fetch that claims success but whose path does not exist (modelkit's)."""


class AssetsManager:
    """Fetches assets from a store (or, with no provider, from the assets dir alone).

    The storage provider is built on first use, so a fetch of a cached, pinned version touches
    no network and imports no cloud SDK; a misconfigured provider name still fails at once.
    """

    def __init__(
        self,
        assets_dir: str | None = None,
        timeout: float | str | None = None,
        storage_provider: StorageProvider | None = None,
        versioning: Versioning | None = None,
        *,
        storage_prefix: str | None = None,
    ) -> None:
        self.timeout = (
            environment.parse_seconds("timeout", timeout)
            if timeout is not None
            else environment.assets_timeout_s()
        )
        self.cache = AssetsCache(assets_dir or environment.assets_dir(), self.timeout)
        #: Where downloads go: the first folder of MODELKIT_ASSETS_DIR (see AssetsCache).
        self.assets_dir = self.cache.assets_dir
        self._storage_provider = storage_provider
        #: Where downloads report their progress (the CLI draws a bar; the API stays silent).
        self.progress: TransferProgress = NO_PROGRESS
        #: How long a refused connection is retried (the CLI gives up sooner than a service).
        self.refused_timeout_s: float | None = None
        self._provider_name = None if storage_provider else environment.storage_provider()
        self._storage_prefix = storage_prefix
        #: Until when (monotonic) the store is known to be unreachable, and why.
        self._unreachable: tuple[float, Exception] | None = None
        if self._provider_name:
            get_registry().driver(self._provider_name)  # fail now on an unknown provider
        self.versioning = (
            storage_provider.versioning if storage_provider else get_versioning_system(versioning)
        )
        #: Specs already parsed, by their text (never changed once made here).
        self._parsed: dict[str, AssetSpec] = {}
        self._check_not_inside_store()
        if environment.is_set(environment.MAX_SIZE_ENV):  # a bad bound fails now, not at the
            from .cache.prune import max_size_from_environment  # first download, days later

            max_size_from_environment()

    def _check_not_inside_store(self) -> None:
        """Refuse an assets dir inside the local bucket's prefix, as modelkit does: fetches
        would write into the store."""
        if self._storage_provider is not None:
            from .drivers.local import LocalStorageDriver

            if not isinstance(self._storage_provider.driver, LocalStorageDriver):
                return
            root = os.path.join(self._storage_provider.driver.bucket, self._storage_provider.prefix)
        elif self._provider_name == "local" and environment.storage_bucket():
            bucket = os.path.abspath(os.path.expanduser(environment.storage_bucket() or ""))
            root = os.path.join(bucket, self._storage_prefix or environment.storage_prefix())
        else:
            return
        root, assets = os.path.realpath(root), os.path.realpath(self.assets_dir)
        if assets == root or assets.startswith(root + os.sep):
            raise errors.IncompatibleConfigurationError(
                f"the assets dir {self.assets_dir!r} lies inside the store it fetches from "
                f"({root}): fetches would write into the store; use another MODELKIT_ASSETS_DIR"
                " (or unset MODELKIT_STORAGE_PROVIDER to serve what is there)"
            )

    @property
    def storage_provider(self) -> StorageProvider | None:
        """The store, or None in pre-downloaded mode."""
        if self._storage_provider is None and self._provider_name:
            self._storage_provider = StorageProvider(
                prefix=self._storage_prefix,
                versioning=self.versioning,
                refused_timeout_s=self.refused_timeout_s,
            )
        return self._storage_provider

    @property
    def has_provider(self) -> bool:
        return self._storage_provider is not None or bool(self._provider_name)

    @overload
    def fetch_asset(
        self,
        spec: str | AssetSpec,
        return_info: Literal[False] = False,
        force_download: bool | None = None,
    ) -> str: ...

    @overload
    def fetch_asset(
        self, spec: str | AssetSpec, return_info: Literal[True], force_download: bool | None = None
    ) -> dict[str, Any]: ...

    def fetch_asset(
        self,
        spec: str | AssetSpec,
        return_info: bool = False,
        force_download: bool | None = None,
    ) -> str | dict[str, Any]:
        """Make ``spec`` available locally and return its path (or a dict with ``return_info``).

        The info dict has ``path``, ``from_cache``, ``version``, ``name`` and, when the version
        was downloaded by this call, ``meta``.
        """
        info = self._fetch(spec, force_download)
        return info if return_info else info["path"]

    def _force(self, force_download: bool | None) -> bool:
        """The argument, else the ``force_download`` of a provider given to the manager (as
        modelkit), else MODELKIT_STORAGE_FORCE_DOWNLOAD as it is now."""
        if force_download is not None:
            return force_download
        if self._provider_name is None and self._storage_provider is not None:
            return self._storage_provider.force_download
        return environment.storage_force_download()

    def _fetch(self, spec: str | AssetSpec, force_download: bool | None) -> dict[str, Any]:
        if isinstance(spec, str):
            parsed = self._parsed.get(spec) or self._parse(spec)
            if parsed is None:
                return self._local_path(spec)
            if len(self._parsed) < _PARSED_MAX:
                self._parsed[spec] = parsed  # a service fetches the same few specs all day
        elif isinstance(spec, AssetSpec):
            parsed = spec
        else:  # modelkit fails later, with an AttributeError on the object
            raise TypeError(f"an asset spec is a str or an AssetSpec, not {type(spec).__name__}")
        force = self._force(force_download)
        if parsed.version and not force and parsed.is_version_complete():
            found = self.cache.use(parsed.name, parsed.version)  # the lock-free fast path
            if found is not None:
                return self._info(parsed, parsed.version, from_cache=True, base=found)
        if force and not self.has_provider:
            raise errors.NoConfiguredProviderError(
                "cannot force a download with no storage provider configured: "
                "set MODELKIT_STORAGE_PROVIDER"
            )
        if not force and self._unreachable is not None and time.monotonic() < self._unreachable[0]:
            fallback = self._local_fallback(parsed, self._unreachable[1])
            if fallback is not None:
                return fallback
        try:
            version = self._resolve_version(parsed, original=spec)
            if isinstance(version, dict):
                return version
            return self._ensure_local(parsed, version, force)
        except UNREACHABLE as exc:
            fallback = None if force else self._local_fallback(parsed, exc)
            if fallback is None:
                raise
            timeout = environment.storage_timeout_s()
            if self._storage_provider is not None:
                timeout = self._storage_provider.timeout
            self._unreachable = (time.monotonic() + timeout, exc)
            return fallback

    def _parse(self, text: str) -> AssetSpec | None:
        """The spec ``text`` is, with the system its version belongs to; None when ``text`` is
        not a spec (a path). A version the default system refuses is tried against the others
        (the system belongs to the asset); one that no system accepts is an error."""
        try:
            return AssetSpec.from_string(text, versioning=self.versioning)
        except errors.InvalidVersionError as exc:
            name, version, sub_part = parse_spec(text)
            for system in installed_systems(self.versioning)[1:]:
                if version is not None and system.is_version_valid(version):
                    return AssetSpec(name, system, version, sub_part)
            raise self._refusal_of_asset(name, exc) from None
        except errors.InvalidAssetSpecError:
            return None

    def _refusal_of_asset(
        self, name: str, exc: errors.InvalidVersionError
    ) -> errors.InvalidVersionError:
        """``exc`` told in the words of the asset's own versioning system (its index's, or its
        local versions'), so a bad version of a ``simple_date`` asset does not ask for
        MAJOR.MINOR; ``exc`` itself when that system is unknown or cannot be learnt."""
        system: AssetsVersioningSystem | None = None
        try:
            provider = self.storage_provider
            if provider is not None:
                index = provider.read_index(name)
                system = index.system if index is not None else None
            else:
                spec = AssetSpec(name, self.versioning)
                system = self._local_system(spec)
        except (errors.ModelkitAssetsError, *UNREACHABLE):
            return exc
        if system is None or system.name == exc.system:
            return exc
        return errors.InvalidVersionError(exc.version, system.name, system.expected_format)

    def _local_fallback(self, spec: AssetSpec, exc: Exception) -> dict[str, Any] | None:
        """The info of the newest complete local version matching ``spec``, with a warning."""
        system = self._local_system(spec)
        local = self.cache.local_versions(spec.name, system)
        if spec.version is not None:
            if spec.is_version_complete():
                local = [spec.version] if spec.version in local else []
            else:
                local = [v for v in local if system.matches(spec.version, v)]
        if not local:
            return None
        logger.warning(
            "the store cannot be reached (%s); using %s:%s from %s",
            exc,
            spec.name,
            local[0],
            self.assets_dir,
        )
        return self._info(spec, local[0], from_cache=True)

    def _local_system(self, spec: AssetSpec) -> AssetsVersioningSystem:
        """The system of the asset's local versions: the spec's, unless its complete local
        versions are all of another installed system."""
        for system in installed_systems(spec.versioning):
            if self.cache.local_versions(spec.name, system):
                return system
        return spec.versioning

    def _resolve_version(self, spec: AssetSpec, original: str | AssetSpec) -> str | dict[str, Any]:
        """The exact version to fetch, or the info of a local path (pre-downloaded mode)."""
        provider = self.storage_provider
        if provider is not None:
            return provider.resolve_version(spec.name, spec.version)
        system = self._local_system(spec)
        versions = self.cache.local_versions(spec.name, system)
        if spec.version is None:
            if versions:
                return versions[0]
            found = self._local_path_info(spec.name) if isinstance(original, str) else None
            if found is not None:
                return found
            raise errors.AssetDoesNotExistError(
                spec.name,
                hint=f"no complete version of it in the assets dir {self.assets_dir}, and no "
                "storage provider is configured (MODELKIT_STORAGE_PROVIDER)",
            )
        if system.is_version_complete(spec.version):
            if spec.version in versions:
                return spec.version
        else:
            matching = [v for v in versions if system.matches(spec.version, v)]
            if matching:
                return matching[0]
        raise errors.LocalAssetDoesNotExistError(
            f"{spec.name}:{spec.version}",
            f"it is not in the assets dir {self.assets_dir} (local versions: "
            f"{', '.join(versions) or 'none'}) and no storage provider is configured",
        )

    def _ensure_local(self, spec: AssetSpec, version: str, force: bool) -> dict[str, Any]:
        """The info of ``spec`` at ``version``, downloaded first unless it is cached.

        The version is held by this process from now on (see :mod:`.cache.holds`), then looked
        for; a download resumes what an interrupted one left and clones the files other cached
        versions have (not with ``force``: everything comes from the store again). After it,
        ``MODELKIT_ASSETS_MAX_SIZE`` is enforced.
        """
        found = self.cache.use(spec.name, version)
        if not force and found is not None:
            return self._info(spec, version, from_cache=True, base=found)
        provider = self.storage_provider
        if provider is None:
            raise errors.LocalAssetDoesNotExistError(
                f"{spec.name}:{version}", "no storage provider is configured to download it"
            )
        from .cache.download import fetch_version

        with self.cache.download_lock(spec.name):
            found = self.cache.locate(spec.name, version)
            if not force and found is not None:
                return self._info(spec, version, from_cache=True, base=found)
            clean_stale_downloads(self.cache, spec.name)
            result = fetch_version(
                provider, self.cache, spec.name, version, progress=self.progress, reuse=not force
            )
        logger.info("downloaded %s:%s", spec.name, version)
        if environment.is_set(environment.MAX_SIZE_ENV):  # else prune's 7 ms of imports
            from .cache.prune import enforce_max_size

            enforce_max_size(self.cache, keep=(spec.name, version))
        info = self._info(spec, version, from_cache=False, meta=result.meta.to_public())
        info.update(result.counts())
        return info

    def _info(
        self,
        spec: AssetSpec,
        version: str,
        from_cache: bool,
        meta: dict[str, Any] | None = None,
        base: str | None = None,
    ) -> dict[str, Any]:
        """The info dict of ``spec`` at ``version``, found at ``base`` (default: where the
        cache has it, in any of its folders, or will download it)."""
        if base is None:
            base = self.cache.locate(spec.name, version) or self.cache.asset_path(
                spec.name, version
            )
        info: dict[str, Any] = {
            "name": spec.name,
            "version": version,
            "path": base,
            "from_cache": from_cache,
        }
        if spec.sub_part:
            path = safe_join(base, spec.relative_sub_part or "", f"{spec.name}:{version}")
            # The version's SUCCESS marker is the cache's, not part of the asset.
            if not os.path.exists(path) or spec.relative_sub_part == SUCCESS:
                raise errors.LocalAssetDoesNotExistError(
                    f"{spec.name}:{version}[{spec.sub_part}]", "the asset has no such sub-part"
                )
            info["path"], info["base_asset_path"] = path, base
        if meta is not None:
            info["meta"] = meta
        return info

    def _local_path_info(self, text: str) -> dict[str, Any] | None:
        """A path that is not an asset: relative to the assets dir, then the working directory,
        then absolute; never one of the cache's own folders. An empty string names no path
        (joined, it would be the assets dir or the working directory)."""
        if not text.strip():
            return None
        for candidate in (os.path.join(self.assets_dir, text), os.path.abspath(text)):
            if os.path.exists(candidate) and not self._is_cache_internal(candidate):
                return {"path": candidate, "from_cache": True, "version": None, "name": None}
        return None

    def _is_cache_internal(self, path: str) -> bool:
        """Whether ``path`` is one of the cache's own folders or files: ``.cache/``, an
        asset's folder of versions, or anything in a version that is not complete."""
        relative = os.path.relpath(os.path.realpath(path), os.path.realpath(self.assets_dir))
        if relative == os.curdir or relative.startswith(os.pardir):
            return relative == os.curdir
        segments = relative.split(os.sep)
        if segments[0] == ".cache":
            return True
        for depth in range(1, len(segments) + 1):
            folder = os.path.join(self.assets_dir, *segments[:depth])
            if _holds_versions(folder):
                if depth == len(segments):
                    return True  # the asset's folder of versions itself
                name, version = "/".join(segments[:depth]), segments[depth]
                return version.startswith(".") or not self.cache.is_complete(name, version)
        return os.path.isdir(path) and _holds_assets(path)

    def _local_path(self, text: str) -> dict[str, Any]:
        """The info of a local path, or the spec error that ``text`` raises."""
        found = self._local_path_info(text)
        if found is None:
            AssetSpec.from_string(text, versioning=self.versioning)  # raises the spec error
            raise errors.LocalAssetDoesNotExistError(text)
        return found


def _holds_versions(folder: str) -> bool:
    """Whether ``folder`` is an asset's folder of cached versions: it has a SUCCESS marker of a
    file version, a version folder with its marker, a download in progress, or an entry named
    as a version (complete or not)."""
    try:
        entries = list(os.scandir(folder))
    except (NotADirectoryError, FileNotFoundError, PermissionError):
        return False
    systems = installed_systems()
    for entry in entries:
        name = entry.name
        if any(s.is_version_valid(name) and s.is_version_complete(name) for s in systems):
            return True
        if name.startswith(".") and (
            name.endswith(".SUCCESS") or ".tmp-" in name or name.endswith(".partial")
        ):
            return True
        if entry.is_dir(follow_symlinks=False) and os.path.isfile(
            os.path.join(entry.path, ".SUCCESS")
        ):
            return True
    return False


def _holds_assets(folder: str) -> bool:
    """Whether an asset's folder of versions lies somewhere under ``folder`` (a category)."""
    for current, subfolders, _ in os.walk(folder):
        if current != folder and _holds_versions(current):
            return True
        subfolders[:] = [s for s in subfolders if not s.startswith(".")]
    return False
