"""Fetching assets into the local cache: resolve the spec, download once, return the path.

An unreachable store does not take a service down. A pinned version already in the cache is
returned without building the provider, so without any network. For any other spec, if the
store cannot be reached or used (:data:`UNREACHABLE`: a network fault that outlived the
retries, refused credentials, a missing bucket or folder), at any step (reading ``.versions``,
the ``.meta``, or the download itself), the newest complete local version that matches the spec
is returned instead, with a warning; the store's error is raised only when there is none.
After such a fallback the manager does not ask the store again for one storage timeout
(``MODELKIT_STORAGE_TIMEOUT_S``) when a local version can serve: a service that fetches many
assets at start waits for an unreachable store once, not once per asset.
"""

from __future__ import annotations

import logging
import os
import time
from typing import Any, Final, Literal, overload

from . import environment, errors
from .cache import AssetsCache, clean_stale_downloads
from .paths import safe_join
from .plugins import get_registry
from .progress import NO_PROGRESS, TransferProgress
from .spec import AssetSpec, get_versioning_system
from .store import StorageProvider
from .versioning.base import AssetsVersioningSystem

logger = logging.getLogger(__name__)

#: Store errors after which a fetch falls back to what the assets dir already holds.
UNREACHABLE: Final = (
    errors.StorageUnavailableError,
    errors.StorageAccessDeniedError,
    errors.BucketDoesNotExistError,
)


class AssetsManager:
    """Fetches assets from a store (or, with no provider, from the assets dir alone).

    The storage provider is built on first use, so a fetch of a cached, pinned version touches
    no network and imports no cloud SDK; a misconfigured provider name still fails at once.
    """

    def __init__(
        self,
        assets_dir: str | None = None,
        timeout: float | None = None,
        storage_provider: StorageProvider | None = None,
        versioning: str | type[AssetsVersioningSystem] | None = None,
    ) -> None:
        self.timeout = timeout if timeout is not None else environment.assets_timeout_s()
        self.cache = AssetsCache(assets_dir or environment.assets_dir(), self.timeout)
        #: Where downloads go: the first folder of MODELKIT_ASSETS_DIR (see AssetsCache).
        self.assets_dir = self.cache.assets_dir
        self._storage_provider = storage_provider
        #: Where downloads report their progress (the CLI draws a bar; the API stays silent).
        self.progress: TransferProgress = NO_PROGRESS
        self._provider_name = None if storage_provider else environment.storage_provider()
        #: Until when (monotonic) the store is known to be unreachable, and why.
        self._unreachable: tuple[float, Exception] | None = None
        if self._provider_name:
            get_registry().driver(self._provider_name)  # fail now on an unknown provider
        self.versioning = (
            storage_provider.versioning if storage_provider else get_versioning_system(versioning)
        )

    @property
    def storage_provider(self) -> StorageProvider | None:
        """The store, or None in pre-downloaded mode."""
        if self._storage_provider is None and self._provider_name:
            self._storage_provider = StorageProvider(versioning=self.versioning)
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

    def _fetch(self, spec: str | AssetSpec, force_download: bool | None) -> dict[str, Any]:
        if isinstance(spec, str):
            try:
                parsed = AssetSpec.from_string(spec, versioning=self.versioning)
            except errors.InvalidAssetSpecError:
                return self._local_path(spec)
        else:
            parsed = spec
        force = force_download
        if force is None:
            force = environment.storage_force_download()
        if parsed.is_version_complete and not force:
            assert parsed.version is not None
            found = self.cache.use(parsed.name, parsed.version)  # the lock-free fast path
            if found is not None:
                return self._info(parsed, parsed.version, from_cache=True, base=found)
        if self._unreachable is not None and time.monotonic() < self._unreachable[0]:
            fallback = self._local_fallback(parsed, self._unreachable[1])
            if fallback is not None:
                return fallback
        try:
            version = self._resolve_version(parsed, original=spec)
            if isinstance(version, dict):
                return version
            return self._ensure_local(parsed, version, force)
        except UNREACHABLE as exc:
            fallback = self._local_fallback(parsed, exc)
            if fallback is None:
                raise
            timeout = environment.storage_timeout_s()
            if self._storage_provider is not None:
                timeout = self._storage_provider.timeout
            self._unreachable = (time.monotonic() + timeout, exc)
            return fallback

    def _local_fallback(self, spec: AssetSpec, exc: Exception) -> dict[str, Any] | None:
        """The info of the newest complete local version matching ``spec``, with a warning."""
        local = self.cache.local_versions(spec.name, self.versioning)
        if spec.version is not None:
            if spec.is_version_complete:
                local = [spec.version] if spec.version in local else []
            else:
                local = [v for v in local if self.versioning.matches(spec.version, v)]
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

    def _resolve_version(self, spec: AssetSpec, original: str | AssetSpec) -> str | dict[str, Any]:
        """The exact version to fetch, or the info of a local path when ``spec`` is one."""
        if spec.is_version_complete:
            assert spec.version is not None
            if not self.has_provider and not self.cache.is_complete(spec.name, spec.version):
                raise errors.LocalAssetDoesNotExistError(
                    f"{spec.name}:{spec.version}",
                    "it is not in the assets dir and no storage provider is configured",
                )
            return spec.version
        provider = self.storage_provider
        if provider is None:
            versions = self.cache.local_versions(spec.name, self.versioning)
        else:
            try:
                versions = provider.get_versions_info(spec.name)
            except errors.AssetDoesNotExistError:
                versions = []
        if not versions:
            if spec.version is None and isinstance(original, str):
                found = self._local_path_info(original)
                if found is not None:
                    return found
            raise errors.AssetDoesNotExistError(spec.name)
        if spec.version is None:
            return versions[0]
        try:
            return self.versioning.get_latest_partial_version(spec.version, versions)
        except errors.AssetDoesNotExistError:
            raise errors.AssetDoesNotExistError(spec.name, spec.version) from None

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
        from .cache.prune import enforce_max_size

        with self.cache.download_lock(spec.name):
            found = self.cache.locate(spec.name, version)
            if not force and found is not None:
                return self._info(spec, version, from_cache=True, base=found)
            clean_stale_downloads(self.cache, spec.name)
            result = fetch_version(
                provider, self.cache, spec.name, version, progress=self.progress, reuse=not force
            )
        logger.info("downloaded %s:%s", spec.name, version)
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
        cache has it, or will download it)."""
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
            path = safe_join(base, spec.sub_part, f"{spec.name}:{version}")
            if not os.path.exists(path):
                raise errors.LocalAssetDoesNotExistError(
                    f"{spec.name}:{version}[{spec.sub_part}]", "the asset has no such sub-part"
                )
            info["path"], info["base_asset_path"] = path, base
        if meta is not None:
            info["meta"] = meta
        return info

    def _local_path_info(self, text: str) -> dict[str, Any] | None:
        """A path that is not a spec: relative to the assets dir, then the working directory,
        then absolute."""
        for candidate in (os.path.join(self.assets_dir, text), os.path.abspath(text)):
            if os.path.exists(candidate):
                return {"path": candidate, "from_cache": True, "version": None, "name": None}
        return None

    def _local_path(self, text: str) -> dict[str, Any]:
        """The info of a local path, or the spec error that ``text`` raises."""
        found = self._local_path_info(text)
        if found is None:
            AssetSpec.from_string(text, versioning=self.versioning)  # raises the spec error
            raise errors.LocalAssetDoesNotExistError(text)
        return found
