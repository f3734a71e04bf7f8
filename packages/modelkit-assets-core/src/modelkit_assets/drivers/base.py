"""The interface of a storage driver, with portable fallbacks for the optional parts.

Method names follow modelkit's drivers so that drivers port easily. Object names are full keys
(prefix included), always '/'-separated. Every driver is constructed the same way::

    DriverClass(bucket, client=None, timeout_s=300.0, lazy=False, **driver_settings)

so a subclass registered under a new name works with no extra code. modelkit's form,
``DriverClass(settings)`` with a settings object or dict (see :mod:`.settings`), works too:
built-in drivers turn it into the same keywords with :meth:`StorageDriver.resolve_settings`.

Conditional writes are optional. A driver that declares the ``conditional_writes`` capability
makes :meth:`create_object` and :meth:`write_object` atomic on the server (create-only, and
compare-and-swap on a version token such as an ETag or generation); the core relies on them to
keep concurrent pushes lossless. The fallbacks here keep other drivers working, best effort.
"""

from __future__ import annotations

import abc
import functools
import os
import tempfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from typing import Any, ClassVar, Final, Protocol

from .. import errors
from ..meta import DEFAULT_ALGORITHM, FileDigest
from ..paths import check_relative_part
from ..progress import ignore_bytes
from ..records import CONDITIONAL_WRITES
from .settings import StorageDriverSettings, driver_keywords


class StagedFile(Protocol):
    """A file copied into the store ahead of its claim, hashed on the way (see
    :meth:`StorageDriver.stage_file`)."""

    #: Size and digest of the bytes staged.
    digest: FileDigest

    def commit(self, object_name: str) -> None:
        """Make the staged bytes the object ``object_name``, only if no object has that name
        (else raise ObjectAlreadyExistsError, as :meth:`StorageDriver.create_object` does).
        May be called again after a failure."""

    def discard(self) -> None:
        """Drop the staged copy (what a commit made an object stays)."""


class StorageDriver(abc.ABC):
    """A bucket of objects addressed by '/'-separated names."""

    #: Short name used in messages (``s3``, ``gcs``...).
    provider_name: ClassVar[str] = "storage"
    #: Capabilities this driver offers (see :data:`modelkit_assets.records.CONDITIONAL_WRITES`).
    capabilities: ClassVar[frozenset[str]] = frozenset()
    #: Transfers in flight at once when ``MODELKIT_STORAGE_MAX_WORKERS`` is unset (None: 16,
    #: right for network stores, whose requests mostly wait).
    default_max_workers: ClassVar[int | None] = None
    #: Downloads in flight at once (the ``max_workers`` of :meth:`download_many`) when nobody
    #: chose a number (None: :attr:`default_max_workers`). A driver whose downloads cost less
    #: than its uploads (tasks of an event loop against an SDK's threads) takes more of them; a
    #: number the user chose holds for both.
    default_max_downloads: ClassVar[int | None] = None
    #: The longest object name the store takes, in bytes of UTF-8 (None: no limit the core
    #: knows of). A push whose names would be longer is refused before it writes anything.
    max_object_name_bytes: ClassVar[int | None] = None

    #: modelkit's settings class of this driver: the fields and options it takes.
    settings_class: ClassVar[type[StorageDriverSettings]] = StorageDriverSettings
    #: Attributes left out when the driver is pickled (SDK clients, thread pools, locks), with
    #: what each is set to after unpickling: clients are built again on first use.
    rebuilt_after_unpickling: ClassVar[Mapping[str, Callable[[], Any]]] = {}

    bucket: str

    def __init__(
        self,
        bucket: str | None = None,
        client: Any = None,
        *,
        timeout_s: float = 300.0,
        lazy: bool = False,
        **settings: Any,
    ) -> None:
        if settings:  # what the driver did not take is no setting of it
            raise errors.UnknownSettingError(self.provider_name, list(settings), [])
        if not bucket:
            raise errors.ConfigurationError(
                f"no bucket for the {self.provider_name} provider: set MODELKIT_STORAGE_BUCKET"
            )
        self.bucket = bucket
        self.timeout_s = timeout_s
        self.lazy = lazy

    def __repr__(self) -> str:
        return f"{type(self).__name__}(bucket={self.bucket!r})"

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        for name in self.rebuilt_after_unpickling:
            state.pop(name, None)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        for name, fresh in self.rebuilt_after_unpickling.items():
            setattr(self, name, fresh())

    @classmethod
    def resolve_settings(
        cls,
        bucket: Any,
        settings: StorageDriverSettings | Mapping[str, Any] | None,
        lazy: bool | None,
        keywords: Mapping[str, Any],
    ) -> tuple[str | None, bool, dict[str, Any]]:
        """The bucket, laziness and other keywords a driver is built with, from this
        project's keywords or modelkit's settings (an object or dict, also in the place of
        ``bucket``), modelkit's names translated (see :func:`.settings.driver_keywords`);
        UnknownSettingError for a keyword :attr:`settings_class` does not know. ``lazy``
        given explicitly wins over ``lazy_driver`` in the settings."""
        values = driver_keywords(cls.settings_class, bucket, settings, keywords, cls.provider_name)
        found_bucket, found_lazy = values.pop("bucket", None), values.pop("lazy", False)
        return found_bucket, bool(found_lazy if lazy is None else lazy), values

    def _in_charge(self, optional: str, *replaceable: str) -> bool:
        """Whether the driver's own ``optional`` method (one of the faster paths below) is to
        be used: a class implements it, and none of the plain methods it stands for
        (``replaceable``) was replaced since, by a subclass or on the instance. A replacement
        (a wrapper that injects faults, audits calls...) stays in charge that way.

        Asked once per file of a push, so the class's answer is kept, keyed by the functions
        the class resolves the names to (a method patched on the class is a new key); only the
        instance's own attributes are looked at each time. The full check was 2 us a file."""
        cls = type(self)
        resolved = tuple(getattr(cls, method) for method in (optional, *replaceable))
        if not _class_in_charge(cls, optional, replaceable, resolved):
            return False
        replaced = getattr(self, "__dict__", None)
        return not replaced or not any(method in replaced for method in replaceable)

    def _own_or_portable(self, method: str, *replaceable: str) -> Callable[..., Any]:
        """The driver's ``method`` if it is in charge (see :meth:`_in_charge`; replaced on
        the instance counts too), else this base class's portable one, which goes through the
        plain methods: a subclass that overrides ``upload_object`` (modelkit's way to add
        logging, metrics or encryption) has every data object go through it."""
        if method in getattr(self, "__dict__", ()) or self._in_charge(method, *replaceable):
            return getattr(self, method)  # type: ignore[no-any-return]
        return getattr(StorageDriver, method).__get__(self)  # type: ignore[no-any-return]

    @property
    def supports_conditional_writes(self) -> bool:
        """Whether create-only and compare-and-swap writes are atomic on this store."""
        return CONDITIONAL_WRITES in self.capabilities

    def supports(self, capability: str) -> bool:
        """Whether the driver declares ``capability`` (see :mod:`modelkit_assets.records`)."""
        return capability in self.capabilities

    # -- the interface every driver implements -------------------------------------------------

    @abc.abstractmethod
    def iterate_objects(self, prefix: str | None = None) -> Iterator[str]:
        """Names of the objects whose names start with ``prefix``, every page of them."""

    @abc.abstractmethod
    def upload_object(self, file_path: str, object_name: str) -> None:
        """Store the file at ``file_path`` as ``object_name``, replacing any existing object."""

    @abc.abstractmethod
    def download_object(self, object_name: str, destination_path: str) -> None:
        """Write the object to ``destination_path``; raise ObjectDoesNotExistError if absent."""

    def download_object_with_digest(
        self, object_name: str, destination_path: str, algorithm: str = DEFAULT_ALGORITHM
    ) -> FileDigest:
        """:meth:`download_object`, returning the size and ``algorithm`` digest (see
        :mod:`modelkit_assets.hashing`) of the bytes written.

        A driver that sees the bytes pass implements :meth:`download_hashing`, used here unless
        ``download_object`` was replaced since. Otherwise the file is read again once written.
        """
        if self._in_charge("download_hashing", "download_object"):
            return self.download_hashing(object_name, destination_path, algorithm)
        from ..hashing import digest_file

        self.download_object(object_name, destination_path)
        return digest_file(destination_path, algorithm)

    def download_hashing(
        self, object_name: str, destination_path: str, algorithm: str
    ) -> FileDigest:
        """Optional: :meth:`download_object_with_digest` in one pass, the bytes hashed on their
        way in (or as the driver measured to be fastest)."""
        raise NotImplementedError

    def read_range(self, object_name: str, start: int, end: int) -> Iterator[bytes | memoryview]:
        """Optional (capability ``ranged_reads``): the bytes ``[start, end)`` of the object, as
        chunks of at most 1 MiB: ``bytes``, or memoryviews of the client's own buffers (no copy
        of every byte: 11% of the wall time of a 256 MiB fetch through obstore). Raise
        ObjectDoesNotExistError if it is absent; a body that breaks off raises
        StorageUnavailableError (the caller asks again from the first byte it did not get). The
        core downloads large files in parallel ranges through it, and resumes a download that
        was cut off."""
        raise NotImplementedError

    def download_objects(
        self, jobs: Sequence[tuple[str, str]], algorithm: str, max_workers: int
    ) -> Iterator[tuple[int, FileDigest | BaseException]]:
        """:meth:`download_many`, the driver's own unless ``download_object`` or
        ``download_hashing`` was replaced since: then this base class's, which downloads
        each job through them. What the core calls."""
        download_many = self._own_or_portable(
            "download_many", "download_object", "download_hashing"
        )
        return download_many(jobs, algorithm, max_workers)  # type: ignore[no-any-return]

    def create_objects_from_bytes(
        self, jobs: Sequence[tuple[bytes, str, str]], max_workers: int
    ) -> Iterator[tuple[int, BaseException | None]]:
        """:meth:`create_many`, the driver's own unless one of the create methods or
        ``upload_object`` was replaced since: then this base class's, which creates each job
        through :meth:`create_object_from_bytes`. What the core calls."""
        create_many = self._own_or_portable("create_many", *_CREATE_METHODS)
        return create_many(jobs, max_workers)  # type: ignore[no-any-return]

    def download_many(
        self, jobs: Sequence[tuple[str, str]], algorithm: str, max_workers: int
    ) -> Iterator[tuple[int, FileDigest | BaseException]]:
        """Download each ``(object_name, destination_path)`` of ``jobs``; yield ``(index, size
        and digest of the bytes written)``, or ``(index, error)``, as each one finishes, in any
        order. Every job is tried: one failure does not stop the others.

        The core hands the small files of a fetch over in one call, so that a driver with a
        cheaper way to run many requests at once (an async engine) can take it. This default
        runs :meth:`download_object_with_digest` on ``max_workers`` threads.
        """
        return _on_threads(
            lambda job: self.download_object_with_digest(job[0], job[1], algorithm),
            jobs,
            max_workers,
        )

    def create_many(
        self, jobs: Sequence[tuple[bytes, str, str]], max_workers: int
    ) -> Iterator[tuple[int, BaseException | None]]:
        """Create each ``(data, object_name, file_path)`` of ``jobs`` only if absent (see
        :meth:`create_object_from_bytes`); yield ``(index, None)``, or ``(index, error)``
        (ObjectAlreadyExistsError included), as each one finishes, in any order. Every job is
        tried. This default runs :meth:`create_object_from_bytes` on ``max_workers`` threads.
        """
        return _on_threads(
            lambda job: self.create_object_from_bytes(job[0], job[1], job[2]), jobs, max_workers
        )

    def copy_object(self, source_name: str, object_name: str) -> int:
        """Optional (capability ``server_side_copy``): create ``object_name`` as a copy of
        ``source_name`` inside the store, only if no object has that name (else raise
        ObjectAlreadyExistsError); ObjectDoesNotExistError if the source is missing. Return
        the size of the object made, whole once this returns. An update copies the files that
        did not change since the previous version through it, and checks that size: a base
        object that was truncated or replaced since is uploaded again instead."""
        raise NotImplementedError

    @abc.abstractmethod
    def delete_object(self, object_name: str) -> None:
        """Remove the object (absent objects are not an error)."""

    @abc.abstractmethod
    def exists(self, object_name: str) -> bool:
        """Whether the object is in the bucket."""

    @abc.abstractmethod
    def get_object_uri(self, object_name: str, sub_part: str | None = None) -> str:
        """A URI naming the object (or a sub-part of a directory object) for humans and tools."""

    def uri_for(self, scheme: str, object_name: str, sub_part: str | None = None) -> str:
        """``scheme://bucket/object[/sub/part]``, the sub-part checked: a helper for drivers'
        :meth:`get_object_uri`."""
        uri = f"{scheme}://{self.bucket}/{object_name}"
        if sub_part:
            uri += "/" + "/".join(check_relative_part(sub_part, "a sub-part"))
        return uri

    # -- conditional writes; override them atomically and declare CONDITIONAL_WRITES ----------

    def create_object(self, file_path: str, object_name: str) -> None:
        """Upload only if no object has that name; else raise ObjectAlreadyExistsError."""
        if self.exists(object_name):
            raise errors.ObjectAlreadyExistsError(object_name)
        self.upload_object(file_path, object_name)

    def create_object_with_progress(
        self, file_path: str, object_name: str, on_bytes: Callable[[int], None]
    ) -> None:
        """:meth:`create_object`, calling ``on_bytes(n)`` as bytes go out, so that a progress
        bar moves during a large upload. The counts add up to the file's size by the return.

        A driver that sees its uploads advance implements :meth:`create_reporting`, which is
        used here unless ``create_object`` was replaced since (by a subclass, or on the
        instance: the replacement stays in charge). Otherwise the whole file is reported once
        it is stored.
        """
        if self._in_charge("create_reporting", "create_object", "upload_object"):
            self.create_reporting(file_path, object_name, on_bytes)
            return
        self._creator()(file_path, object_name)
        on_bytes(os.path.getsize(file_path))

    def _creator(self) -> Callable[[str, str], None]:
        """The ``create_object`` in charge: the driver's, unless ``upload_object`` was
        replaced since (then an existence check and ``upload_object``: the claim of the
        version, a create-only ``write_object``, still keeps pushes from overwriting)."""
        return self._own_or_portable("create_object", "upload_object")

    def create_object_from_bytes(self, data: bytes, object_name: str, file_path: str) -> None:
        """:meth:`create_object` of a small file whose bytes a push already holds: ``data`` is
        the content of ``file_path`` as the push read and hashed it.

        A driver that can store bytes implements :meth:`create_bytes`, used here (no second
        read of the file, and what is stored is exactly what was hashed) unless
        ``create_object`` or ``create_reporting`` was replaced since: the replacement stays in
        charge, and gets ``file_path``, as other drivers do.
        """
        if self._in_charge("create_bytes", "create_object", "create_reporting", "upload_object"):
            self.create_bytes(data, object_name)
            return
        self.create_object_with_progress(file_path, object_name, ignore_bytes)

    def create_bytes(self, data: bytes, object_name: str) -> None:
        """Optional: create the object from ``data`` only if no object has that name; else
        raise ObjectAlreadyExistsError (see :meth:`create_object_from_bytes`)."""
        raise NotImplementedError

    def create_reporting(
        self, file_path: str, object_name: str, on_bytes: Callable[[int], None] | None
    ) -> None:
        """Optional: :meth:`create_object` (which such a driver implements as a call of this
        with ``on_bytes=None``), telling ``on_bytes`` of the bytes sent as the upload advances.
        A retry inside the driver must not count bytes twice (see
        :class:`modelkit_assets.progress.HighWater`)."""
        raise NotImplementedError

    def stager(self) -> Callable[[str, str], StagedFile | None] | None:
        """:meth:`stage_file`, if the driver stages and none of the create methods or
        ``upload_object`` was replaced since (staging stands for them). What the core calls."""
        if self._in_charge("stage_file", *_CREATE_METHODS):
            return self.stage_file
        return None

    def stage_file(self, file_path: str, algorithm: str) -> StagedFile | None:
        """Copy a large file into the store before its version is claimed, hashing it on the
        way, so that a push copies and hashes at once instead of hashing then copying; None
        when the driver cannot (this default: the push hashes, claims, then uploads).

        Staged copies must not be visible as objects until committed. The ``local`` driver
        stages into its bucket folder, where committing is a link.
        """
        return None

    def read_object(self, object_name: str) -> tuple[bytes, str | None]:
        """The object's bytes and a version token to pass to :meth:`write_object`."""
        with tempfile.TemporaryDirectory(prefix="modelkit-assets-") as tmp:
            path = os.path.join(tmp, "object")
            self.download_object(object_name, path)
            with open(path, "rb") as f:
                return f.read(), None

    def write_object(
        self,
        data: bytes,
        object_name: str,
        *,
        if_match: str | None = None,
        if_absent: bool = False,
    ) -> None:
        """Write small ``data``; with ``if_absent`` only if absent, with ``if_match`` only if the
        object still has that version token. Raise PreconditionFailedError otherwise."""
        if if_absent and self.exists(object_name):
            raise errors.PreconditionFailedError(object_name)
        with tempfile.TemporaryDirectory(prefix="modelkit-assets-") as tmp:
            path = os.path.join(tmp, "object")
            with open(path, "wb") as f:
                f.write(data)
            self.upload_object(path, object_name)


#: The methods a push's fast paths stand for: a replacement of any of them takes charge.
_CREATE_METHODS: Final = ("create_object", "create_reporting", "create_bytes", "upload_object")


def _on_threads(
    call: Callable[[Any], Any], jobs: Sequence[Any], max_workers: int
) -> Iterator[tuple[int, Any]]:
    """``(index, call(job))`` or ``(index, error)`` for every job, as each finishes; one job
    runs on the calling thread, without a pool."""
    if len(jobs) <= 1 or max_workers <= 1:
        for index, job in enumerate(jobs):
            try:
                yield index, call(job)
            except Exception as exc:
                yield index, exc
        return
    with ThreadPoolExecutor(min(max_workers, len(jobs)), "modelkit-assets-io") as pool:
        futures = {pool.submit(call, job): index for index, job in enumerate(jobs)}
        try:
            for future in as_completed(futures):
                error = future.exception()
                yield futures[future], error if error is not None else future.result()
        finally:  # the caller stopped early (an error, ^C): start nothing more
            for future in futures:
                future.cancel()


@functools.lru_cache(maxsize=256)
def _class_in_charge(
    cls: type[StorageDriver],
    optional: str,
    replaceable: tuple[str, ...],
    resolved: tuple[object, ...],
) -> bool:
    """:meth:`StorageDriver._in_charge` for the class alone: the first class on the MRO that
    defines ``optional`` is not the base, and every ``replaceable`` method resolves to that
    class's own. ``resolved`` (what ``cls`` resolves the names to now) is only part of the
    cache key."""
    owner = next(c for c in cls.__mro__ if optional in vars(c))
    if owner is StorageDriver:
        return False
    return all(getattr(cls, method) is getattr(owner, method) for method in replaceable)
