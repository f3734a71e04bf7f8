"""The remote asset store: push versions, keep the ``.versions`` index, download versions.

A push is lossless under concurrency when the driver offers conditional writes:

1. the version's ``.meta`` is created only if absent: that claims the version. If a ``.meta``
   is already there with the same content hashes, a killed push is being retried and goes on;
   any other ``.meta`` means the version belongs to someone else (VersionConflictError). An
   update that picks its version itself (:meth:`StorageProvider.update_next`) goes on only
   with its own ``.meta`` (same claim token: its earlier attempt whose answer was lost); another
   push of the same bytes makes it take the next version, so no two updates report one version;
2. every data object is created only if absent; one already present with the same digest (left
   by a killed push, or written by a concurrent push of the same content) is accepted. One with
   other bytes can only be half-written (a driver such as ``local`` creates objects in place),
   since only pushes of this very content hold the claim: it is replaced with the whole object;
3. the version is added to ``.versions`` by compare-and-swap, retried until it sticks.

Readers resolve versions through ``.versions`` only, so a version is published at step 3.

Every storage call here is safe to repeat, and is repeated on a transient fault until
``timeout`` runs out (see :mod:`.retry`): a repeated step 1 or 2 whose first attempt did land
finds its own object, a repeated step 3 finds its version already listed.
"""

from __future__ import annotations

import contextlib
import datetime
import functools
import logging
import os
import random
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar, overload

import attrs

from . import environment, errors
from .drivers.base import StagedFile, StorageDriver
from .meta import AssetMeta, FileDigest, dump_versions, parse_meta, parse_versions
from .parallel import run_parallel
from .paths import check_relative_part
from .plugins import get_registry
from .progress import NO_PROGRESS, HighWater, TransferProgress
from .retry import retry_transient
from .source import LocalSource, SourceFile, scan_source
from .spec import check_name, get_versioning_system
from .versioning.base import AssetsVersioningSystem

logger = logging.getLogger(__name__)

T = TypeVar("T")


@attrs.frozen
class PushPlan:
    """What a push sends (or, with ``dry_run``, would send)."""

    name: str
    version: str
    source: LocalSource
    uri: str
    dry_run: bool


class StorageProvider:
    """An asset store: a driver, a prefix in its bucket and a versioning system."""

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
        versioning: str | type[AssetsVersioningSystem] | None = None,
        max_workers: int | None = None,
        **driver_settings: Any,
    ) -> None:
        name = provider or environment.storage_provider()
        if not name:
            raise errors.NoConfiguredProviderError()
        self.provider = name
        self.prefix = (prefix or environment.storage_prefix()).strip("/")
        check_relative_part(self.prefix, "the storage prefix")
        self.timeout = timeout_s if timeout_s is not None else environment.storage_timeout_s()
        self.force_download = (
            environment.storage_force_download() if force_download is None else force_download
        )
        self.versioning = get_versioning_system(versioning)
        self.driver = make_driver(
            name, bucket or environment.storage_bucket(), client, self.timeout, **driver_settings
        )
        self.max_workers = max_workers or environment.storage_max_workers(
            self.driver.default_max_workers
        )

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

    def _retry(self, call: Callable[[], T], what: str) -> T:
        """``call()``, retried on transient faults within the storage timeout."""
        return retry_transient(call, self.timeout, what)

    # -- reading the index and metas ---------------------------------------------------------

    def _read_versions(self, name: str) -> tuple[list[str], str | None] | None:
        """Versions (latest first) and their token, or None when the asset does not exist."""
        object_name = self.get_versions_object_name(name)
        try:
            data, token = self._retry(lambda: self.driver.read_object(object_name), object_name)
        except errors.ObjectDoesNotExistError:
            return None
        return parse_versions(data, object_name, self.versioning), token

    def asset_exists(self, name: str) -> bool:
        """Whether asset ``name`` has a ``.versions`` index."""
        object_name = self.get_versions_object_name(check_name(name))
        return self._retry(lambda: self.driver.exists(object_name), object_name)

    def get_versions_info(self, name: str) -> list[str]:
        """All versions of an asset, latest first."""
        check_name(name)
        found = self._read_versions(name)
        if found is None:
            raise errors.AssetDoesNotExistError(name)
        return found[0]

    def resolve_version(self, name: str, version: str | None = None) -> str:
        """The exact version ``name[:version]`` designates now (latest, latest of a major...)."""
        if version is not None and self.versioning.is_version_complete(
            self.versioning.validate(version)
        ):
            return version
        versions = self.get_versions_info(name)
        if version is None:
            return versions[0]
        try:
            return self.versioning.get_latest_partial_version(version, versions)
        except errors.AssetDoesNotExistError:
            raise errors.AssetDoesNotExistError(name, version) from None

    def read_meta(self, name: str, version: str) -> AssetMeta:
        """A version's checked ``.meta``."""
        object_name = self.get_meta_object_name(name, version)
        try:
            data, _ = self._retry(lambda: self.driver.read_object(object_name), object_name)
        except errors.ObjectDoesNotExistError:
            raise errors.AssetDoesNotExistError(name, version) from None
        return parse_meta(data, object_name)

    def get_asset_meta(self, name: str, version: str) -> dict[str, Any]:
        """A version's meta as a dictionary, ``push_date`` a datetime (as in modelkit)."""
        return self.read_meta(name, version).to_public()

    def iterate_assets(self) -> Iterator[tuple[str, list[str]]]:
        """``(name, versions latest first)`` for every asset under the prefix, by name."""
        start, suffix = len(self.prefix) + 1, ".versions"
        listing = self._retry(lambda: list(self.driver.iterate_objects(self.prefix + "/")), "list")
        names = sorted(
            object_name[start : -len(suffix)]
            for object_name in listing
            if object_name.endswith(suffix)
        )
        for name in names:
            found = self._read_versions(name)
            if found is not None:
                yield name, found[0]

    def list_assets(self) -> list[dict[str, Any]]:
        """Every asset with its versions, latest version and its push date, read in parallel.

        A latest ``.meta`` that cannot be read leaves ``push_date`` None, with a warning.
        """
        found = list(self.iterate_assets())

        def push_date(item: tuple[str, list[str]]) -> str | None:
            name, versions = item
            if not versions:
                return None
            try:
                return self.read_meta(name, versions[0]).push_date.isoformat()
            except errors.ModelkitAssetsError as exc:
                logger.warning("cannot read the meta of %s:%s: %s", name, versions[0], exc)
                return None

        with ThreadPoolExecutor(max(1, min(self.max_workers, len(found)))) as pool:
            dates = list(pool.map(push_date, found))
        return [
            {"name": n, "versions": v, "latest": v[0] if v else None, "push_date": d}
            for (n, v), d in zip(found, dates, strict=True)
        ]

    # -- pushing ------------------------------------------------------------------------------

    def new(
        self,
        asset_path: str | LocalSource,
        name: str,
        version: str | None = None,
        dry_run: bool = False,
        progress: TransferProgress = NO_PROGRESS,
    ) -> PushPlan:
        """Create asset ``name`` at ``version`` (default: the system's initial version)."""
        check_name(name)
        if self._read_versions(name) is not None:
            raise errors.AssetAlreadyExistsError(name)
        version = version or self.versioning.get_initial_version()
        try:
            return self.push(asset_path, name, version, dry_run=dry_run, progress=progress)
        except errors.VersionConflictError:
            if self._read_versions(name) is not None:
                raise errors.AssetAlreadyExistsError(name) from None
            # No index yet: a push that never finished claimed this version with other bytes.
            raise errors.VersionConflictError(
                name,
                version,
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
        """Add ``version`` to the existing asset ``name``."""
        check_name(name)
        found = self._read_versions(name)
        if found is None:
            raise errors.AssetDoesNotExistError(name)
        if version in found[0]:
            raise errors.AssetAlreadyExistsError(name, version, "versions are immutable")
        return self.push(asset_path, name, version, dry_run=dry_run, progress=progress)

    def update_next(
        self,
        asset_path: str | LocalSource,
        name: str,
        version: str | None = None,
        bump_major: bool = False,
        dry_run: bool = False,
        progress: TransferProgress = NO_PROGRESS,
    ) -> PushPlan:
        """Push the next version (``update PATH name[:major] [--bump-major]``).

        The version is picked from ``.versions``; if a concurrent push takes it first, the next
        one is picked and the push retried, so every successful update gets its own version.
        """
        check_name(name)
        taken: list[str] = []
        deadline = time.monotonic() + self.timeout
        with self._scanned(asset_path, dry_run, progress) as source:
            while True:
                found = self._read_versions(name)
                if found is None:
                    raise errors.AssetDoesNotExistError(name)
                new_version = self._increment(name, found[0] + taken, version, bump_major)
                try:
                    return self._push_source(
                        source, name, new_version, dry_run, progress, exclusive=True
                    )
                except errors.VersionConflictError:
                    if time.monotonic() > deadline:
                        raise
                    logger.info(
                        "version %s:%s was taken meanwhile; trying the next", name, new_version
                    )
                    taken.append(new_version)

    def next_version(self, name: str, version: str | None = None, bump_major: bool = False) -> str:
        """The version ``update name[:version] [--bump-major]`` would push now."""
        return self._increment(name, self.get_versions_info(name), version, bump_major)

    def _increment(
        self, name: str, versions: list[str], version: str | None, bump_major: bool
    ) -> str:
        if version is not None:
            self.versioning.validate(version)
        params = self.versioning.get_update_cli_params(
            version=version, version_list=versions, bump_major=bump_major
        )["params"]
        try:
            return self.versioning.increment_version(versions, params)
        except errors.AssetMajorVersionDoesNotExistError as exc:
            raise errors.AssetMajorVersionDoesNotExistError(name, exc.major) from None

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
        with self._scanned(asset_path, dry_run, progress) as source:
            return self._push_source(source, name, version, dry_run, progress)

    def scan(self, asset_path: str | LocalSource) -> LocalSource:
        """The files of a local path with their hashes (a LocalSource is returned as is)."""
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
        if isinstance(asset_path, LocalSource) or dry_run or progress is not NO_PROGRESS:
            yield self.scan(asset_path)
            return
        source = scan_source(asset_path, self.max_workers, stage=self.driver.stage_file)
        try:
            yield source
        finally:
            source.discard_staged()

    def _push_source(
        self,
        source: LocalSource,
        name: str,
        version: str,
        dry_run: bool,
        progress: TransferProgress,
        exclusive: bool = False,
    ) -> PushPlan:
        self.versioning.validate(version)
        if not self.versioning.is_version_complete(version):
            raise errors.InvalidVersionError(version, self.versioning.name, "a complete version")
        plan = PushPlan(name, version, source, self.get_object_uri(name, version), dry_run)
        if dry_run:
            return plan
        meta = AssetMeta(
            push_date=datetime.datetime.now(datetime.timezone.utc),
            is_directory=source.is_directory,
            contents=tuple(f.part for f in source.files) if source.is_directory else (),
            digests={f.part: f.digest for f in source.files},
            claim=uuid.uuid4().hex,
        )
        self._claim_version(name, version, meta, exclusive)
        progress.start(f"push {name}:{version}", source.size, len(source.files))
        try:
            run_parallel(
                lambda f: self._upload_file(f, name, version, progress, source.staged.get(f.part)),
                source.files,
                self.max_workers,
            )
        finally:
            progress.finish()
        self._publish_version(name, version)
        logger.info(
            "pushed %s:%s (%d files, %d bytes)", name, version, len(source.files), source.size
        )
        return plan

    def _claim_version(self, name: str, version: str, meta: AssetMeta, exclusive: bool) -> None:
        """Create the version's ``.meta`` (see step 1 above); ``exclusive``: only ours will do."""
        object_name = self.get_meta_object_name(name, version)
        data = meta.to_json()
        try:
            self._retry(
                lambda: self.driver.write_object(data, object_name, if_absent=True), object_name
            )
        except errors.PreconditionFailedError:
            existing = self.read_meta(name, version)
            if not meta.same_content(existing) or (exclusive and existing.claim != meta.claim):
                raise errors.VersionConflictError(name, version) from None
            logger.info("resuming an earlier push of %s:%s with the same content", name, version)

    def _part_object_name(self, name: str, version: str, part: str) -> str:
        base = self.get_object_name(name, version)
        return f"{base}/{part}" if part else base

    def _upload_file(
        self,
        file: SourceFile,
        name: str,
        version: str,
        progress: TransferProgress,
        staged: StagedFile | None = None,
    ) -> None:
        """Create one object (commit it, if it was staged); the bar moves as its bytes go out,
        each byte counted once even when the upload is retried from the start. (Small files,
        a thousand in a push, take the shortest path: their bytes are held, and go at once.)"""
        object_name = self._part_object_name(name, version, file.part)
        streamed: HighWater | None = None
        attempt: Callable[[], None]
        if staged is not None:
            attempt = functools.partial(staged.commit, object_name)
        elif file.content is not None:
            attempt = functools.partial(
                self.driver.create_object_from_bytes, file.content, object_name, file.path
            )
        else:
            streamed = HighWater(progress.advance)
            attempt = functools.partial(self._stream_file, file.path, object_name, streamed)
        try:
            self._retry(attempt, object_name)
        except errors.ObjectAlreadyExistsError:
            if self._remote_digest(object_name, file.digest.algorithm) != file.digest:
                logger.warning(
                    "replacing %s, left half-written by an interrupted push", object_name
                )
                self._retry(lambda: self._replace(file, object_name), object_name)
        if streamed is None:
            progress.advance(file.digest.size, files=1)
        else:
            streamed.reached(file.digest.size)
            progress.advance(files=1)

    def _stream_file(self, path: str, object_name: str, sent: HighWater) -> None:
        """One attempt at creating an object from the file at ``path``, reporting to ``sent``
        the position it reaches."""
        position = 0

        def on_bytes(count: int) -> None:
            nonlocal position
            position += count
            sent.reached(position)

        self.driver.create_object_with_progress(path, object_name, on_bytes)

    def _replace(self, file: SourceFile, object_name: str) -> None:
        """Overwrite an object with the file's content: the bytes that were hashed, if kept."""
        if file.content is not None:
            self.driver.write_object(file.content, object_name)
        else:
            self.driver.upload_object(file.path, object_name)

    def _remote_digest(self, object_name: str, algorithm: str) -> FileDigest:
        with tempfile.TemporaryDirectory(prefix="modelkit-assets-") as tmp:
            path = os.path.join(tmp, "object")
            return self._download(object_name, path, algorithm)

    @overload
    def _download(self, object_name: str, destination: str, algorithm: None = None) -> None: ...

    @overload
    def _download(self, object_name: str, destination: str, algorithm: str) -> FileDigest: ...

    def _download(
        self, object_name: str, destination: str, algorithm: str | None = None
    ) -> FileDigest | None:
        """Download one object, again from scratch after a transient fault; with an
        ``algorithm``, the size and digest of what was written (hashed on the way when the
        driver can)."""

        def attempt() -> FileDigest | None:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(destination)  # whatever a failed attempt left
            if algorithm:
                return self.driver.download_object_with_digest(object_name, destination, algorithm)
            self.driver.download_object(object_name, destination)
            return None

        return self._retry(attempt, object_name)

    def _publish_version(self, name: str, version: str) -> None:
        """Add ``version`` to ``.versions`` by compare-and-swap, retrying lost races."""
        object_name = self.get_versions_object_name(name)
        deadline = time.monotonic() + self.timeout
        delay = 0.01
        while True:
            found = self._read_versions(name)
            versions, token = found if found is not None else ([], None)
            if version in versions:
                return
            data = dump_versions(self.versioning.sort_versions([*versions, version]))
            try:
                write = functools.partial(
                    self.driver.write_object,
                    data,
                    object_name,
                    if_match=token,
                    if_absent=found is None,
                )
                self._retry(write, object_name)
                return
            except errors.PreconditionFailedError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(random.uniform(0, delay))
                delay = min(delay * 2, 1.0)

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
        lazy=environment.lazy_driver(),
        **driver_settings,
    )
