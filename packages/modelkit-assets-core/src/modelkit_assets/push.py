"""Pushing a version: plan it, claim it, upload its objects, publish it.

A push is lossless under concurrency when the driver offers conditional writes:

1. the version's ``.meta`` is created only if absent: that claims the version. A ``.meta``
   already there with other content means the version belongs to someone else
   (VersionConflictError). One with the same content is an earlier push of these very bytes:
   a push of an explicit version (``new``, ``push``) goes on with it; an update, which picks its
   version itself, goes on only with its own claim, or with a claim it may take over (its owner
   is gone: see :mod:`.claims`), so that no two updates report one version;
2. every data object is created only if absent; one already present with the same digest (left
   by a killed push, or written by a concurrent push of the same content) is accepted. One with
   other bytes can only be half-written (a driver such as ``local`` creates objects in place),
   since only pushes of this very content hold the claim: it is replaced with the whole object;
3. the version is added to ``.versions`` by compare-and-swap, retried until it sticks.

Readers resolve versions through ``.versions`` only, so a version is published at step 3. An
index is never written with fewer versions than it had; an update that finds the index behind
the metas of the store (versions it does not list, below its latest) refuses, and
:meth:`~modelkit_assets.store.StorageProvider.reindex` rebuilds it.

Every storage call here is safe to repeat, and is repeated on a transient fault until the
storage timeout runs out (see :mod:`.retry`): a repeated step 1 or 2 whose first attempt did
land finds its own object, a repeated step 3 finds its version already listed.
"""

from __future__ import annotations

import datetime
import functools
import logging
import os
import random
import tempfile
import time
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Final

import attrs

from . import claims, errors
from .drivers.base import StagedFile
from .meta import AssetMeta, FileDigest, dump_index
from .parallel import run_parallel
from .paths import in_a_version
from .progress import NO_PROGRESS, HighWater, TransferProgress
from .records import SERVER_SIDE_COPY
from .source import LocalSource, SourceFile, changed_files
from .spec import registered_name
from .versioning.base import AssetsVersioningSystem

if TYPE_CHECKING:
    from .store import AssetIndex, StorageProvider

logger = logging.getLogger(__name__)

#: Unchanged files larger than this are copied inside the store by an update; smaller ones
#: (the files a scan holds the bytes of, :data:`~modelkit_assets.hashing.SMALL`) are uploaded
#: from those bytes, one request each, batched. A copy is two or three requests without a body
#: (the source's size, the target's absence, the copy): an update of 1000 unchanged 10 KiB
#: files took 5.2 and 6.5 s copied against 2.7 and 2.9 s uploaded on SeaweedFS (two runs of
#: bench/incremental.py); on fake-gcs-server and Azurite the runs varied too much on a shared
#: 2-core machine to tell (9 to 18 s copied, 6 to 21 s uploaded).
COPY_MIN: Final = 1024 * 1024


@attrs.frozen
class PushPlan:
    """What a push sends (or, with ``dry_run``, would send), and to which version."""

    name: str
    version: str
    source: LocalSource
    uri: str
    dry_run: bool
    #: Why the push completes an unfinished push of this version (None: a fresh version).
    resumes: str | None = None
    #: Versions an update passed over, each with the reason (claimed by unfinished pushes).
    skipped: tuple[tuple[str, str], ...] = ()
    #: The version the plan shown before the push named, when the push had to take another.
    planned_version: str | None = None
    #: The previous version whose unchanged files are copied inside the store (issue 20).
    base_version: str | None = None
    #: Files (and their bytes) copied from ``base_version`` instead of uploaded.
    reused_files: int = 0
    reused_bytes: int = 0


def source_meta(source: LocalSource) -> AssetMeta:
    """The ``.meta`` a push of ``source`` claims its version with (a new claim token)."""
    return AssetMeta(
        push_date=datetime.datetime.now(datetime.timezone.utc),
        is_directory=source.is_directory,
        contents=tuple(f.part for f in source.files) if source.is_directory else (),
        digests={f.part: f.digest for f in source.files},
        claim=uuid.uuid4().hex,
        claimed_by=claims.current_owner(),
    )


class Pusher:
    """The push protocol of one store (see the module docstring)."""

    def __init__(self, store: StorageProvider) -> None:
        self.store = store
        self.driver = store.driver

    # -- planning ----------------------------------------------------------------------------

    def plan_new(
        self, source: LocalSource, name: str, version: str, system: AssetsVersioningSystem
    ) -> PushPlan:
        """The plan of ``new``: refused if the asset exists, or if the name nests in another
        asset's versions (or another asset nests in it), the store untouched."""
        self._check_version(version, system)
        if self.store.read_index(name) is not None:
            raise errors.AssetAlreadyExistsError(name)
        self.check_nesting(name, system)
        state, reason = self.inspect(name, version, source_meta(source), exclusive=False)
        if state == "taken":
            raise errors.VersionConflictError(
                name,
                version,
                hint=f"{reason}; push that content again, or create the asset at another "
                f"version (new PATH {name}:VERSION)",
            )
        return self._plan(source, name, version, resumes=reason if state == "resume" else None)

    def plan_update(
        self,
        source: LocalSource,
        name: str,
        version: str | None = None,
        bump_major: bool = False,
        taken: tuple[str, ...] = (),
    ) -> PushPlan:
        """The plan of ``update name[:version] [--bump-major]``: the version it will push,
        passing over versions held by unfinished pushes (completing one of the same content
        whose owner is gone), with the reasons."""
        index = self.store.require_index(name)
        self.check_index(index)
        meta = source_meta(source)
        skipped: list[tuple[str, str]] = []
        while True:
            candidate = self.increment(
                index, version, bump_major, [*taken, *(v for v, _ in skipped)]
            )
            self.check_not_nested(name, candidate)
            state, reason = self.inspect(name, candidate, meta, exclusive=True, index=index)
            if state != "taken":
                plan = self._plan(
                    source,
                    name,
                    candidate,
                    resumes=reason if state == "resume" else None,
                    skipped=tuple(skipped),
                )
                return self.with_base(plan, self.base_version(index, version, bump_major))
            skipped.append((candidate, reason or "taken"))

    def _plan(
        self,
        source: LocalSource,
        name: str,
        version: str,
        resumes: str | None = None,
        skipped: tuple[tuple[str, str], ...] = (),
    ) -> PushPlan:
        self.check_object_names(source, name, version)
        uri = self.store.get_object_uri(name, version)
        return PushPlan(name, version, source, uri, False, resumes, skipped)

    def check_object_names(self, source: LocalSource, name: str, version: str) -> None:
        """Refuse a file whose object name the store would not take: found once the version is
        claimed, it would leave a claim that no retry can complete."""
        limit = self.driver.max_object_name_bytes
        if limit is None:
            return
        for file in source.files:
            length = len(self.store.part_object_name(name, version, file.part).encode())
            if length > limit:
                raise errors.ObjectNameTooLongError(
                    file.path, length, self.driver.provider_name, limit
                )

    @staticmethod
    def base_version(index: AssetIndex, version: str | None, bump_major: bool) -> str | None:
        """The version an update builds on: the latest of the major it bumps, else the latest."""
        if not index.versions:
            return None
        if version is not None and not bump_major:
            try:
                return index.system.get_latest_partial_version(version, index.versions)
            except errors.AssetDoesNotExistError:
                return None
        return index.versions[0]

    def with_base(self, plan: PushPlan, base_version: str | None) -> PushPlan:
        """``plan`` with the files it copies from ``base_version`` counted (none when the driver
        cannot copy inside the store)."""
        reuse = self.reusable(plan.name, base_version, plan.source)
        sizes = {f.part: f.digest.size for f in plan.source.files}
        return attrs.evolve(
            plan,
            base_version=base_version if reuse else None,
            reused_files=len(reuse),
            reused_bytes=sum(sizes[part] for part in reuse),
        )

    def reusable(self, name: str, base_version: str | None, source: LocalSource) -> dict[str, str]:
        """``{part: object of base_version with the same size and digest}`` for the files an
        update copies inside the store instead of uploading them (those past
        :data:`COPY_MIN`)."""
        if base_version is None or not self.driver.supports(SERVER_SIDE_COPY):
            return {}
        try:
            base = self.store.read_meta(name, base_version)
        except errors.AssetDoesNotExistError:
            return {}
        by_digest: dict[FileDigest, str] = {}
        for base_part, digest in base.digests.items():
            by_digest.setdefault(digest, base_part)
        reuse: dict[str, str] = {}
        for file in source.files:
            if file.digest.size <= COPY_MIN or file.part in source.staged:
                continue
            same_name = base.digests.get(file.part) == file.digest
            found = file.part if same_name else by_digest.get(file.digest)
            if found is not None:
                reuse[file.part] = self.store.part_object_name(name, base_version, found)
        return reuse

    def increment(
        self,
        index: AssetIndex,
        version: str | None,
        bump_major: bool,
        taken: list[str] | tuple[str, ...] = (),
    ) -> str:
        """The next version of the asset after its listed versions and ``taken`` ones."""
        system = index.system
        if version is not None:
            system.check_version_valid(version)
            if system.is_version_complete(version):
                raise errors.InvalidVersionError(
                    version,
                    system.name,
                    "only a MAJOR when updating (the minor is bumped)"
                    if system.name == "major_minor"
                    else "no version when updating (the next one is made)",
                )
            if bump_major:
                raise errors.InvalidVersionError(
                    version, system.name, "no version with --bump-major (it starts a new major)"
                )
        versions = system.sort_versions([*index.versions, *taken])
        params = system.get_update_cli_params(
            version=version, version_list=versions, bump_major=bump_major
        )["params"]
        if bump_major and not params.get("bump_major"):
            raise errors.InvalidVersionError(
                "--bump-major",
                system.name,
                f"no --bump-major: {index.name} has {system.name} versions, which have no major",
            )
        try:
            return system.increment_version(versions, params)
        except errors.MajorVersionDoesNotExistError as exc:
            raise errors.AssetMajorVersionDoesNotExistError(index.name, exc.major) from None

    def inspect(
        self,
        name: str,
        version: str,
        meta: AssetMeta,
        exclusive: bool,
        index: AssetIndex | None = None,
    ) -> tuple[str, str | None]:
        """``("free", None)``, ``("resume", why)`` or ``("taken", why)`` for pushing ``meta``
        to ``name:version`` now."""
        try:
            existing = self.store.read_meta(name, version)
        except errors.AssetDoesNotExistError:
            return "free", None
        if index is not None and version in index.versions:
            return "taken", f"{name}:{version} was published meanwhile"
        owner = self.claim_owner(name, version, existing)
        held = f"{name}:{version} is held by an unfinished push"
        if not meta.same_content(existing):
            return "taken", f"{held} of other content ({owner.describe()})"
        completes = f"it completes the unfinished push of {name}:{version}"
        if not exclusive:
            return "resume", f"{completes} (same content, {owner.describe()})"
        reason = owner.takeover_reason(self.store.claim_timeout)
        if reason is None:
            return "taken", f"{held} of the same content, still running ({owner.describe()})"
        return "resume", f"{completes}: {reason}"

    def check_index(self, index: AssetIndex) -> None:
        """Refuse an update over an index that lists no version while the store holds metas:
        the update would shrink it (see :meth:`StorageProvider.reindex`)."""
        if index.versions:
            return
        found = self.store.claimed_versions(index.name)
        if found:
            raise errors.CorruptStoreError(
                self.store.get_versions_object_name(index.name),
                f"it lists no version, but the store holds metas of {', '.join(found[:5])}"
                + ("..." if len(found) > 5 else "")
                + f"; run `modelkit assets reindex {index.name}` to rebuild it from them",
            )

    def check_nesting(self, name: str, system: AssetsVersioningSystem) -> None:
        """Refuse a name that lies inside a version of another asset (``cat/name/0.1`` when
        ``cat/name`` is an asset and ``0.1`` one of its versions), or inside which another
        asset's name lies as a version (the same pair, the other way round)."""
        segments = name.split("/")
        for depth in range(1, len(segments)):
            parent, child = "/".join(segments[:depth]), segments[depth]
            index = self.store.read_index(parent)
            if index is not None and index.system.is_version_valid(child):
                raise errors.AssetNameConflictError(
                    name, f"it would lie inside version {child} of asset {parent}"
                )
        prefix = f"{self.store.prefix}/{name}/"
        listing = self.store.retry(lambda: list(self.driver.iterate_objects(prefix)), prefix)
        start = len(self.store.prefix) + 1
        claimed = {n[start : -len(".meta")] for n in listing if n.endswith(".meta")}
        for object_name in listing:
            nested = object_name[start : -len(".versions")]
            if not object_name.endswith(".versions") or in_a_version(nested, claimed):
                continue  # not an index, or a file of a claimed version named like one
            version = object_name[len(prefix) :].split("/")[0].removesuffix(".versions")
            if system.is_version_valid(version):
                raise errors.AssetNameConflictError(
                    name, f"asset {nested} lies where version {version} of {name} would go"
                )

    def check_not_nested(self, name: str, version: str) -> None:
        """Refuse a version of ``name`` that an asset named ``name/version`` occupies."""
        object_name = self.store.get_versions_object_name(f"{name}/{version}")
        if self.store.retry(lambda: self.driver.exists(object_name), object_name):
            raise errors.AssetNameConflictError(
                f"{name}:{version}", f"asset {name}/{version} lies where this version would go"
            )

    @staticmethod
    def _check_version(version: str, system: AssetsVersioningSystem) -> None:
        system.check_version_valid(version)
        if not system.is_version_complete(version):
            raise errors.InvalidVersionError(version, system.name, "a complete version")

    # -- claims --------------------------------------------------------------------------------

    def _record_prefix(self, name: str, version: str) -> str:
        """What the names of the records of ``name:version``'s claim start with (the number
        follows)."""
        return self.store.get_meta_object_name(name, version) + claims.TAKEOVER_INFIX

    def _records(self, name: str, version: str) -> tuple[str, list[int]]:
        """The common prefix of the records of ``name:version``'s claim, and their numbers."""
        base = self._record_prefix(name, version)
        numbers = sorted(
            int(n[len(base) :])
            for n in self.store.retry(lambda: list(self.driver.iterate_objects(base)), base)
            if n[len(base) :].isdigit()
        )
        return base, numbers

    def _record(self, base: str, number: int) -> claims.Owner:
        data, _ = self.store.retry(lambda: self.driver.read_object(f"{base}{number}"), base)
        token, owner, since = claims.parse_takeover(data)
        return claims.Owner(token, owner, since, number)

    def claim_owner(self, name: str, version: str, meta: AssetMeta) -> claims.Owner:
        """Who holds the unpublished claim of ``name:version`` now (its last record, else its
        ``.meta``)."""
        base, numbers = self._records(name, version)
        if not numbers:
            return claims.Owner(meta.claim, meta.claimed_by, meta.push_date)
        return self._record(base, numbers[-1])

    def participants(self, name: str, version: str, meta: AssetMeta) -> list[claims.Owner]:
        """Every push that has worked on the unpublished claim of ``name:version``: the one
        that made it (its ``.meta``), then each that took it over or joined it, in order."""
        base, numbers = self._records(name, version)
        made = claims.Owner(meta.claim, meta.claimed_by, meta.push_date)
        return [made, *(self._record(base, n) for n in numbers)]

    def claim(self, name: str, version: str, meta: AssetMeta, exclusive: bool) -> str | None:
        """Claim ``name:version`` for ``meta`` (step 1); None for a fresh claim, else why the
        push goes on with an existing one. VersionConflictError if it cannot.

        A push that goes on with another push's claim of the same content puts itself on
        record (``{version}.claim-{n}``, create-only): an update only once that push is gone
        (it takes the claim over), a push of an explicit version at once (it joins it, and
        both may run). Then neither removes the claim while the other may still run (see
        :meth:`withdraw`)."""
        object_name = self.store.get_meta_object_name(name, version)
        data = meta.to_json()
        try:
            self.store.retry(
                lambda: self.driver.write_object(data, object_name, if_absent=True), object_name
            )
            return None
        except errors.PreconditionFailedError:
            pass
        existing = self.store.read_meta(name, version)
        if not meta.same_content(existing):
            raise errors.VersionConflictError(name, version)
        if existing.claim == meta.claim:
            return None  # ours: an earlier attempt whose answer was lost
        joined = f"it completes the unfinished push of {name}:{version} (same content)"
        if exclusive:
            self._refuse_if_published(name, version)
        for _ in range(10):  # each round: someone else's record appeared meanwhile
            owner = self.claim_owner(name, version, existing)
            if owner.token == meta.claim:  # ours: an earlier attempt whose answer was lost
                return "taken over" if exclusive else joined
            why = owner.takeover_reason(self.store.claim_timeout) if exclusive else None
            if exclusive and why is None:
                raise errors.VersionConflictError(
                    name, version, hint=f"a push of the same content holds it ({owner.describe()})"
                )
            if not self._put_on_record(name, version, owner.records + 1, meta):
                continue
            if not exclusive:
                logger.info("%s", joined)
                return joined
            # Read after the owner was seen gone: if it published before it went, this shows it.
            self._refuse_if_published(name, version)
            logger.info("completing the unfinished push of %s:%s: %s", name, version, why)
            return f"it completes the unfinished push of {name}:{version}: {why}"
        raise errors.VersionConflictError(name, version, hint="its claim keeps changing hands")

    def _refuse_if_published(self, name: str, version: str) -> None:
        """VersionConflictError if another push published ``name:version`` meanwhile."""
        index = self.store.read_index(name)
        if index is not None and version in index.versions:
            raise errors.VersionConflictError(name, version, hint="another push published it")

    def _put_on_record(self, name: str, version: str, number: int, meta: AssetMeta) -> bool:
        """Create record ``number`` of ``name:version``'s claim, naming this push (``meta``'s
        token); False if someone else created that record first."""
        record = f"{self._record_prefix(name, version)}{number}"
        write = functools.partial(
            self.driver.write_object,
            claims.takeover_record(meta.claim or ""),
            record,
            if_absent=True,
        )
        try:
            self.store.retry(write, record)
        except errors.PreconditionFailedError:
            return False
        return True

    # -- pushing -------------------------------------------------------------------------------

    def push(
        self,
        source: LocalSource,
        name: str,
        version: str,
        system: AssetsVersioningSystem,
        progress: TransferProgress = NO_PROGRESS,
        exclusive: bool = False,
        plan: PushPlan | None = None,
    ) -> PushPlan:
        """Steps 1 to 3 for ``source`` as ``name:version``."""
        self._check_version(version, system)
        self.check_object_names(source, name, version)
        meta = source_meta(source)
        self.store.pending_claim = None
        resumed = self.claim(name, version, meta, exclusive)
        self.store.pending_claim = (name, version)
        base_version = plan.base_version if plan is not None else None
        reuse = self.reusable(name, base_version, source)
        copied: list[str] = []  # the parts of reuse really copied (appended from threads)
        progress.start(f"push {name}:{version}", source.size, len(source.files))
        try:
            small = [
                f
                for f in source.files
                if f.content is not None and f.part not in reuse and f.part not in source.staged
            ]
            batched = {f.part for f in small}
            left = self._create_small(small, name, version, progress)
            run_parallel(
                lambda f: self._store_file(f, name, version, progress, source, reuse, copied),
                [f for f in source.files if f.part not in batched] + left,
                self.store.max_workers,
            )
        except Exception:
            # A file gone or rewritten meanwhile fails its upload; a retry could not complete
            # this claim either (its digests are not the files' any more).
            self._refuse_if_changed(name, version, source, meta, copied)
            raise
        finally:
            progress.finish()
        # A file uploaded from disk that changed since its hash may have sent other bytes
        # than its digest says: published, the version would fail every fetch, for ever.
        self._refuse_if_changed(name, version, source, meta, copied)
        self.publish(name, version, system)
        self.store.pending_claim = None
        logger.info(
            "pushed %s:%s (%d files, %d bytes)", name, version, len(source.files), source.size
        )
        shown = plan or self._plan(source, name, version)
        sizes = {f.part: f.digest.size for f in source.files}
        return attrs.evolve(
            shown,
            base_version=base_version if copied else None,
            reused_files=len(copied),
            reused_bytes=sum(sizes[part] for part in copied),
            version=version,
            uri=self.store.get_object_uri(name, version),
            resumes=resumed if resumed != "taken over" else shown.resumes,
            planned_version=shown.version if shown.version != version else None,
        )

    def _refuse_if_changed(
        self, name: str, version: str, source: LocalSource, meta: AssetMeta, copied: list[str]
    ) -> None:
        """Raise SourceChangedError, once this push's objects and claim are withdrawn, if a
        file read from disk since its hash is not as it was (copies inside the store are of
        the hashed bytes)."""
        done = set(copied)
        changed = changed_files(f for f in source.files if f.part not in done)
        if not changed:
            return
        try:
            holder = self.withdraw(name, version, source, meta)
        except errors.VersionConflictError:
            raise  # the version is another push's now: what it says is what happened
        except errors.ModelkitAssetsError as exc:
            raise errors.SourceChangedError(f"{name}:{version}", changed, str(exc)) from exc
        raise errors.SourceChangedError(f"{name}:{version}", changed, kept_by=holder or "")

    def withdraw(self, name: str, version: str, source: LocalSource, meta: AssetMeta) -> str | None:
        """Remove what this push put in the store for ``name:version``, which it claimed and
        will not publish: the files' objects, the claim's records, then the ``.meta`` (last:
        until it goes, the version stays claimed); None once done. Its digests are not the
        files' any more, so nobody may complete the claim, unless another push on record
        (the one that made it, took it over or joined it) may still run: it goes on with the
        files as they were hashed, and publishes them. Then nothing is removed, and the
        return value says who that push is. If the version is published already, nothing is
        removed either, and VersionConflictError says so."""
        existing = self.store.read_meta(name, version)
        self._refuse_if_published(name, version)
        everyone = self.participants(name, version, existing)
        others = [p for p in everyone if p.token != meta.claim and not claims.owner_gone(p.owner)]
        if others:
            self.store.pending_claim = None  # the claim is that push's to complete
            return others[-1].describe()
        names = [self.store.part_object_name(name, version, f.part) for f in source.files]
        meta_name = self.store.get_meta_object_name(name, version)
        base = self._record_prefix(name, version)
        names += [f"{base}{p.records}" for p in everyone[1:]]

        def delete(object_name: str) -> None:
            self.store.retry(lambda: self.driver.delete_object(object_name), object_name)

        run_parallel(delete, names, self.store.max_workers)
        delete(meta_name)
        self.store.pending_claim = None
        return None

    def _create_small(
        self, files: list[SourceFile], name: str, version: str, progress: TransferProgress
    ) -> list[SourceFile]:
        """Create the small files whose bytes the push holds in one call of the driver
        (:meth:`~modelkit_assets.drivers.base.StorageDriver.create_many`); the files that
        failed, to go the way of every file (with its retries and checks)."""
        if not files:
            return []
        jobs = [
            (f.content or b"", self.store.part_object_name(name, version, f.part), f.path)
            for f in files
        ]
        left = []
        for index, error in self.driver.create_objects_from_bytes(jobs, self.store.max_workers):
            if error is None:
                progress.advance(files[index].digest.size, files=1)
            elif isinstance(error, errors.StorageDriverError):
                left.append(files[index])  # present already, or a fault: checked, retried
            else:
                raise error
        return left

    def _store_file(
        self,
        file: SourceFile,
        name: str,
        version: str,
        progress: TransferProgress,
        source: LocalSource,
        reuse: dict[str, str],
        copied: list[str],
    ) -> None:
        """Copy the file from the previous version inside the store if it is unchanged (its
        part then joins ``copied``), else upload it."""
        copied_from = reuse.get(file.part)
        if copied_from is not None and self._copy_file(file, copied_from, name, version):
            copied.append(file.part)
            progress.advance(file.digest.size, files=1)
            return
        self._upload_file(file, name, version, progress, source.staged.get(file.part))

    def _copy_file(self, file: SourceFile, source_name: str, name: str, version: str) -> bool:
        """Create the object as a copy of ``source_name``; False when the file is to be
        uploaded instead: that object is gone, or the copy has another size than the file's
        (the base object was truncated or replaced in the store; the copy is deleted again)."""
        object_name = self.store.part_object_name(name, version, file.part)
        try:
            size = self.store.retry(
                lambda: self.driver.copy_object(source_name, object_name), object_name
            )
        except errors.ObjectDoesNotExistError:
            return False
        except errors.ObjectAlreadyExistsError:
            if self._remote_digest(object_name, file.digest.algorithm) == file.digest:
                return True  # made by an earlier attempt of this push
            logger.warning("replacing %s, left half-written by an interrupted push", object_name)
            self.store.retry(lambda: self.driver.delete_object(object_name), object_name)
            return False
        if size != file.digest.size:
            logger.warning(
                "%s is %d bytes, not the %d of its version's meta: uploading %s instead",
                source_name,
                size,
                file.digest.size,
                file.part,
            )
            self.store.retry(lambda: self.driver.delete_object(object_name), object_name)
            return False
        return True

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
        object_name = self.store.part_object_name(name, version, file.part)
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
            self.store.retry(attempt, object_name)
        except errors.ObjectAlreadyExistsError:
            if self._remote_digest(object_name, file.digest.algorithm) != file.digest:
                logger.warning(
                    "replacing %s, left half-written by an interrupted push", object_name
                )
                self.store.retry(lambda: self._replace(file, object_name), object_name)
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
        if file.content is not None:  # through upload_object, if a subclass replaced it
            self.driver._own_or_portable("write_object", "upload_object")(file.content, object_name)
        else:
            self.driver.upload_object(file.path, object_name)

    def _remote_digest(self, object_name: str, algorithm: str) -> FileDigest:
        with tempfile.TemporaryDirectory(prefix="modelkit-assets-") as tmp:
            path = os.path.join(tmp, "object")
            return self.store.retry(
                lambda: self.driver.download_object_with_digest(object_name, path, algorithm),
                object_name,
            )

    def publish(self, name: str, version: str, system: AssetsVersioningSystem) -> None:
        """Add ``version`` to ``.versions`` by compare-and-swap, retrying lost races (step 3).
        The index keeps every version and key it had, and records the asset's system."""
        object_name = self.store.get_versions_object_name(name)
        deadline = time.monotonic() + self.store.timeout
        delay = 0.01
        while True:
            index = self.store.read_index(name)
            if index is not None and version in index.versions:
                return
            versions = [*index.versions] if index is not None else []
            data = dump_index(
                system.sort_versions([*versions, version]),
                registered_name(index.system if index is not None else system),
                index.extra if index is not None else None,
            )
            try:
                write = functools.partial(
                    self.driver.write_object,
                    data,
                    object_name,
                    if_match=index.token if index is not None else None,
                    if_absent=index is None,
                )
                self.store.retry(write, object_name)
                return
            except errors.PreconditionFailedError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(random.uniform(0, delay))
                delay = min(delay * 2, 1.0)
