"""The ``local`` driver: a folder on disk acts as the bucket.

Plain and conditional writes (``upload_object``, ``write_object``: the ``.meta`` claim and the
``.versions`` index) go to a temporary file beside the target and are published by one atomic
step, so a reader never sees half of them: ``os.replace`` for plain writes, ``os.link`` (which
fails if the name exists) for create-only writes, and a lock file around compare-and-swap.

Data objects (``create_object``) are created in place, as modelkit does: ``open(path, "xb")``
claims the name, then the bytes follow. A temporary file, a link and an unlink per object made
a push of a thousand small files half again as slow, and the protocol does not need them: a
version is published only once all its objects are whole, every download is checked against
the version's meta, and a push that finds an object a killed push left half-written replaces it
(see :mod:`modelkit_assets.store`).
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import shutil
import stat
import uuid
from collections.abc import Callable, Iterator, Mapping
from typing import Any, ClassVar, Final

from .. import errors
from ..hashing import KERNEL_COPY, copy_file_with_digest
from ..meta import FileDigest
from ..paths import check_relative_part
from ..progress import ignore_bytes
from ..records import CONDITIONAL_WRITES, RANGED_READS, SERVER_SIDE_COPY
from .base import StagedFile, StorageDriver
from .settings import LocalStorageDriverSettings

logger = logging.getLogger(__name__)

#: Suffixes of this driver's own bookkeeping files, never listed as objects.
_LOCK_SUFFIX: Final = ".modelkit-lock"
_TMP_MARK: Final = ".modelkit-tmp-"
#: Folder of the bucket where large files of a push are copied before its claim.
_STAGING: Final = ".modelkit-staging"
#: Largest chunk :meth:`LocalStorageDriver.read_range` returns (the interface's bound).
_RANGE_CHUNK: Final = 1024 * 1024
#: Bytes copied between two progress reports.
_REPORT_CHUNK: Final = 8 * 1024 * 1024
#: Whether file paths are '/'-separated, as object names are.
_SLASH_PATHS: Final = os.sep == "/" and os.altsep is None
#: A new object's file: create-only, for writing.
_CREATE_FLAGS: Final = (
    os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0)
)


def _is_internal(filename: str) -> bool:
    return filename.endswith(_LOCK_SUFFIX) or _TMP_MARK in filename


def _copy_reporting(source_fd: int, destination_fd: int, on_bytes: Callable[[int], None]) -> None:
    """Copy the whole of open file ``source_fd`` into ``destination_fd`` in chunks (by the
    kernel on Linux), telling ``on_bytes`` of each."""
    copied = 0
    while True:
        if KERNEL_COPY:
            sent = os.sendfile(destination_fd, source_fd, copied, _REPORT_CHUNK)
        else:
            sent = _write_all(destination_fd, os.read(source_fd, _REPORT_CHUNK))
        if not sent:
            return
        copied += sent
        on_bytes(sent)


def _clone_into(source_fd: int, destination_fd: int, size: int) -> None:
    """Make the empty file ``destination_fd`` a copy of the ``size`` bytes of ``source_fd``:
    a reflink where the filesystem can, else ``copy_file_range`` (the kernel copies, and
    shares blocks where it can too), else a plain copy."""
    from ..cache.reuse import reflink

    if reflink(source_fd, destination_fd):
        return
    copied = 0
    if hasattr(os, "copy_file_range"):
        try:
            while copied < size:
                sent = os.copy_file_range(source_fd, destination_fd, size - copied, copied, copied)
                if not sent:
                    break
                copied += sent
            return
        except OSError:  # EXDEV on older kernels, ENOSYS, EINVAL on some filesystems
            if copied:
                os.ftruncate(destination_fd, 0)
    os.lseek(source_fd, 0, os.SEEK_SET)
    os.lseek(destination_fd, 0, os.SEEK_SET)
    _copy_reporting(source_fd, destination_fd, ignore_bytes)


def _write_all(fd: int, data: bytes) -> int:
    written = os.write(fd, data)  # all of it, unless the disk fills or a signal interrupts
    if written < len(data):
        view = memoryview(data)[written:]
        while view:
            view = view[os.write(fd, view) :]
    return len(data)


class _LocalStagedFile:
    """A staged copy in the bucket folder: committed by a link, which fails if the name
    exists; a copy if the staging folder is on another filesystem than the object's folder."""

    def __init__(self, driver: LocalStorageDriver, path: str, digest: FileDigest) -> None:
        self.driver, self.path, self.digest = driver, path, digest

    def commit(self, object_name: str) -> None:
        target = self.driver._path(object_name)
        try:
            os.makedirs(os.path.dirname(target), exist_ok=True)
            os.link(self.path, target)
        except (FileExistsError, NotADirectoryError):
            conflict = self.driver._conflict(object_name, target)
            if conflict is not None:
                raise conflict from None
            raise errors.ObjectAlreadyExistsError(object_name) from None
        except OSError:  # EXDEV, or links not supported here
            self.driver.create_object(self.path, object_name)

    def discard(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)


def _remove_if_same(path: str, created: os.stat_result) -> None:
    """Remove the file this process created at ``path``, unless another push has meanwhile
    replaced it (with the whole object: it must stay)."""
    with contextlib.suppress(OSError):
        now = os.stat(path)
        if (now.st_dev, now.st_ino) == (created.st_dev, created.st_ino):
            os.unlink(path)


def _token(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class LocalStorageDriver(StorageDriver):
    """Objects are files under the bucket folder; '/' in names becomes sub-folders."""

    provider_name = "local"
    capabilities: ClassVar[frozenset[str]] = frozenset(
        {CONDITIONAL_WRITES, RANGED_READS, SERVER_SIDE_COPY}
    )
    #: Copies on a local disk wait on the kernel, not on a network: more threads only contend
    #: for the GIL and the folder's lock (1000 x 10 KiB files, medians of 5: fetch 277 ms on one
    #: thread against 320 ms on two; 16 was a third slower again). Set
    #: MODELKIT_STORAGE_MAX_WORKERS higher for a bucket folder on a network filesystem.
    default_max_workers = 1

    settings_class = LocalStorageDriverSettings

    def __init__(
        self,
        bucket: str | LocalStorageDriverSettings | Mapping[str, Any] | None = None,
        client: Any = None,
        *,
        timeout_s: float = 300.0,
        lazy: bool | None = None,
        settings: LocalStorageDriverSettings | Mapping[str, Any] | None = None,
        **keywords: Any,
    ) -> None:
        """``LocalStorageDriver(folder)``, or modelkit's ``LocalStorageDriver(settings)``."""
        folder, is_lazy, rest = self.resolve_settings(bucket, settings, lazy, keywords)
        super().__init__(folder, client, timeout_s=timeout_s, lazy=is_lazy, **rest)
        self.bucket = os.path.abspath(os.path.expanduser(self.bucket))
        if not os.path.isdir(self.bucket):
            raise errors.BucketDoesNotExistError(self.provider_name, self.bucket)

    def _path(self, object_name: str) -> str:
        segments = check_relative_part(object_name, "an object name")
        if _SLASH_PATHS:  # the name's checked '/' are the separators: no join (once per file)
            return f"{self.bucket}/{object_name}" if self.bucket != "/" else f"/{object_name}"
        return os.path.join(self.bucket, *segments)

    def iterate_objects(self, prefix: str | None = None) -> Iterator[str]:
        prefix = prefix or ""
        # Walk only the deepest folder the prefix names completely.
        base = prefix.rsplit("/", 1)[0] if "/" in prefix else ""
        root = os.path.join(self.bucket, *base.split("/")) if base else self.bucket
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames.sort()
            rel = os.path.relpath(dirpath, self.bucket)
            rel = "" if rel == "." else rel.replace(os.sep, "/") + "/"
            for filename in sorted(filenames):
                name = rel + filename
                if name.startswith(prefix) and not _is_internal(filename):
                    yield name

    def _temp_beside(self, path: str) -> str:
        """A new unique name beside ``path``; the writer creates the file (mkstemp's extra
        create, close and truncate made small pushes a third slower)."""
        parent = os.path.dirname(path)
        if not os.path.isdir(parent):
            os.makedirs(parent, exist_ok=True)
        return os.path.join(parent, f".{os.path.basename(path)}{_TMP_MARK}{uuid.uuid4().hex}")

    def upload_object(self, file_path: str, object_name: str) -> None:
        """Replace the object, as modelkit's local driver does: a folder at its path (with the
        objects in it) or a file where one of its folders goes is deleted first, since a folder
        cannot hold both ``a/b`` and ``a/b/c``."""
        path = self._path(object_name)
        try:
            self._copy_into_place(file_path, path)
        except (FileExistsError, NotADirectoryError, IsADirectoryError):
            if not self._clear_the_way(object_name, path):
                raise
            self._copy_into_place(file_path, path)

    def _copy_into_place(self, file_path: str, path: str) -> None:
        tmp = self._temp_beside(path)
        try:
            shutil.copyfile(file_path, tmp)
            os.replace(tmp, path)
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)

    def _in_the_way(self, path: str) -> str | None:
        """The folder at ``path``, or the file where one of its folders goes, if any."""
        if os.path.isdir(path):
            return path
        folder = os.path.dirname(path)
        while len(folder) > len(self.bucket):
            if os.path.lexists(folder) and not os.path.isdir(folder):
                return folder
            folder = os.path.dirname(folder)
        return None

    def _clear_the_way(self, object_name: str, path: str) -> bool:
        """Delete what is in the way of the object (see :meth:`upload_object`); whether
        anything was."""
        found = self._in_the_way(path)
        if found is None:
            return False
        logger.warning(
            "local bucket %s: %s %s is replaced by the object %s",
            self.bucket,
            "the folder of objects" if found == path else "the object",
            os.path.relpath(found, self.bucket).replace(os.sep, "/"),
            object_name,
        )
        if found == path:
            shutil.rmtree(path)
        else:
            os.unlink(found)
        return True

    def _conflict(self, object_name: str, path: str) -> errors.StorageDriverError | None:
        """The error of a create-only write that a folder or a file is in the way of (no
        object has the name, but the folder cannot hold it); None if nothing is."""
        found = self._in_the_way(path)
        if found is None:
            return None
        what = (
            "a folder of objects has its path"
            if found == path
            else (
                f"the object {os.path.relpath(found, self.bucket).replace(os.sep, '/')!r} is where "
                "one of its folders goes"
            )
        )
        return errors.StorageDriverError(
            f"cannot create {object_name!r} in the local bucket {self.bucket!r}: {what} "
            "(a folder cannot hold both a/b and a/b/c); delete it first"
        )

    def create_object(self, file_path: str, object_name: str) -> None:
        self.create_reporting(file_path, object_name, None)

    def create_reporting(
        self, file_path: str, object_name: str, on_bytes: Callable[[int], None] | None
    ) -> None:
        report = on_bytes or ignore_bytes
        with open(file_path, "rb") as source:
            self._write_new(object_name, lambda fd: _copy_reporting(source.fileno(), fd, report))

    def create_bytes(self, data: bytes, object_name: str) -> None:
        """Written with bare system calls: a file object's ``fstat``, ``isatty`` and
        ``lseek``, and a second open of the source, were half the calls of a small-file
        push."""
        self._write_new(object_name, lambda fd: _write_all(fd, data))

    def _write_new(self, object_name: str, write: Callable[[int], object]) -> None:
        """Create the file of ``object_name`` and have ``write`` fill it (given the open
        descriptor); ObjectAlreadyExistsError if the name exists. Should the writing (or the
        closing) fail, the file is removed again, unless a whole object has replaced it
        meanwhile. (No context manager: this runs once per small file of a push, where one
        cost 2 us.)"""
        fd, path = self._open_new(object_name)
        try:
            created = os.fstat(fd)
        except BaseException:
            os.close(fd)
            raise
        try:
            try:
                write(fd)
            finally:
                os.close(fd)
        except BaseException:
            _remove_if_same(path, created)
            raise

    def _open_new(self, object_name: str) -> tuple[int, str]:
        """A new file for ``object_name`` (its folders made as needed), open for writing, and
        its path; ObjectAlreadyExistsError if the name exists."""
        path = self._path(object_name)
        try:
            try:
                return os.open(path, _CREATE_FLAGS, 0o666), path
            except FileNotFoundError:
                os.makedirs(os.path.dirname(path), exist_ok=True)
                return os.open(path, _CREATE_FLAGS, 0o666), path
        except (FileExistsError, NotADirectoryError):
            conflict = self._conflict(object_name, path)
            if conflict is not None:
                raise conflict from None
            raise errors.ObjectAlreadyExistsError(object_name) from None

    @staticmethod
    def _link_new(tmp: str, path: str, object_name: str) -> None:
        try:
            os.link(tmp, path)
        except FileExistsError:
            raise errors.ObjectAlreadyExistsError(object_name) from None

    def stage_file(self, file_path: str, algorithm: str) -> StagedFile | None:
        """A copy in the bucket's staging folder, made by the kernel while a second thread
        hashes the source (256 MiB: about the time of the copy alone); committing links it."""
        staging = os.path.join(self.bucket, _STAGING)
        os.makedirs(staging, exist_ok=True)
        path = os.path.join(staging, f"{_TMP_MARK}{uuid.uuid4().hex}")
        try:
            with open(file_path, "rb", buffering=0) as source, open(path, "wb") as target:
                digest = copy_file_with_digest(source, target, algorithm)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)
            raise
        return _LocalStagedFile(self, path, digest)

    def copy_object(self, source_name: str, object_name: str) -> int:
        """A reflink of the source's file where the filesystem shares blocks copy-on-write
        (btrfs, XFS: no bytes move), else a copy by the kernel. Never a hard link: an object
        replaced in place must not change another. The copy is made under a temporary name
        beside the target and linked to it, which fails if the name exists (create-only), so
        no reader sees a half-made copy under the object's name."""
        source = self._open_object(source_name)
        try:
            size = os.fstat(source).st_size
            path = self._path(object_name)
            if os.path.lexists(path):  # found before copying: the usual case of a retried push
                raise errors.ObjectAlreadyExistsError(object_name)
            tmp = self._temp_beside(path)
            try:
                target = os.open(tmp, _CREATE_FLAGS, 0o666)
                try:
                    _clone_into(source, target, size)
                finally:
                    os.close(target)
                self._link_new(tmp, path, object_name)
            finally:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(tmp)
        finally:
            os.close(source)
        return size

    def _open_object(self, object_name: str) -> int:
        """A descriptor of the object's file, open for reading; ObjectDoesNotExistError if
        there is none (a folder is not an object)."""
        try:
            fd = os.open(self._path(object_name), os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
        except (FileNotFoundError, NotADirectoryError):
            raise errors.ObjectDoesNotExistError("local", self.bucket, object_name) from None
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            os.close(fd)
            raise errors.ObjectDoesNotExistError("local", self.bucket, object_name)
        return fd

    def download_object(self, object_name: str, destination_path: str) -> None:
        source = self._path(object_name)
        if not os.path.isfile(source):
            raise errors.ObjectDoesNotExistError("local", self.bucket, object_name)
        shutil.copyfile(source, destination_path)

    def download_hashing(
        self, object_name: str, destination_path: str, algorithm: str
    ) -> FileDigest:
        """One pass over the object: small files are read once, hashed and written; large ones
        are copied by the kernel while they are hashed (see
        :func:`~modelkit_assets.hashing.copy_file_with_digest`)."""
        try:
            source = open(self._path(object_name), "rb", buffering=0)  # noqa: SIM115
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            raise errors.ObjectDoesNotExistError("local", self.bucket, object_name) from None
        with source, open(destination_path, "wb") as target:
            return copy_file_with_digest(source, target, algorithm)

    def read_range(self, object_name: str, start: int, end: int) -> Iterator[bytes]:
        """Positioned reads of at most 1 MiB each, so that a resumed or ranged download
        costs the same memory here as on a network store."""
        try:
            fd = os.open(self._path(object_name), os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
        except (FileNotFoundError, NotADirectoryError):
            raise errors.ObjectDoesNotExistError("local", self.bucket, object_name) from None
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):  # a folder opens for reading too
                raise errors.ObjectDoesNotExistError("local", self.bucket, object_name)
            offset = start
            while offset < end:
                chunk = os.pread(fd, min(_RANGE_CHUNK, end - offset), offset)
                if not chunk:
                    return  # the object is shorter than asked for: the caller sees a short range
                offset += len(chunk)
                yield chunk
        finally:
            os.close(fd)

    def delete_object(self, object_name: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self._path(object_name))

    def exists(self, object_name: str) -> bool:
        return os.path.isfile(self._path(object_name))

    def get_object_uri(self, object_name: str, sub_part: str | None = None) -> str:
        path = self._path(object_name)
        if sub_part:
            path = os.path.join(path, *check_relative_part(sub_part, "a sub-part"))
        return path

    def read_object(self, object_name: str) -> tuple[bytes, str | None]:
        try:
            with open(self._path(object_name), "rb") as f:
                data = f.read()
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            raise errors.ObjectDoesNotExistError("local", self.bucket, object_name) from None
        return data, _token(data)

    def write_object(
        self,
        data: bytes,
        object_name: str,
        *,
        if_match: str | None = None,
        if_absent: bool = False,
    ) -> None:
        path = self._path(object_name)
        try:
            tmp = self._temp_beside(path)
        except (FileExistsError, NotADirectoryError):
            raise self._conflict(object_name, path) or errors.StorageDriverError(
                f"cannot write {object_name!r} in the local bucket {self.bucket!r}"
            ) from None
        if os.path.isdir(path):
            raise self._conflict(object_name, path) or errors.StorageDriverError(object_name)
        try:
            with open(tmp, "wb") as f:
                f.write(data)
            if if_absent:
                try:
                    self._link_new(tmp, path, object_name)
                except errors.ObjectAlreadyExistsError:
                    raise errors.PreconditionFailedError(object_name) from None
            elif if_match is not None:
                import filelock  # here: 11 ms of every process that opens a local store

                with filelock.FileLock(path + _LOCK_SUFFIX):
                    try:
                        current = self.read_object(object_name)[1]
                    except errors.ObjectDoesNotExistError:
                        current = None
                    if current != if_match:
                        raise errors.PreconditionFailedError(object_name)
                    os.replace(tmp, path)
            else:
                os.replace(tmp, path)
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
