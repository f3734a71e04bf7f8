"""Every error modelkit-assets raises on purpose.

The tree::

    ModelkitAssetsError                      base of everything below
    ├── ConfigurationError                   the environment or arguments are wrong
    │   ├── NoConfiguredProviderError        no MODELKIT_STORAGE_PROVIDER
    │   ├── UnknownDriverError               no plugin provides that provider name
    │   ├── DriverNotInstalledError          a known provider whose distribution is missing
    │   ├── UnknownAssetsVersioningSystemError  (also an AssetsManagerError)
    │   ├── PluginConflictError              two distributions claim one plugin name
    │   ├── PluginError                      a plugin misbehaved while plugins were discovered
    │   ├── InvalidSettingError              a setting's value is malformed (also ValueError)
    │   ├── UnknownSettingError              a driver keyword no driver setting has
    │   │                                    (also TypeError, as for an unknown argument)
    │   ├── AssetsDirDoesNotExistError       MODELKIT_ASSETS_DIR is not a directory
    │   │                                    (also FileNotFoundError, as modelkit raises)
    │   ├── IncompatibleConfigurationError   the assets dir lies inside the store it fetches
    │   │                                    from (also a StorageDriverError, as in modelkit)
    │   └── NotAStoreEndpointError           the endpoint answers, but not as the store's
    │                                        service (also a StorageDriverError)
    ├── AssetsManagerError                   modelkit's base of asset errors
    │   ├── InvalidAssetSpecError            a spec string that cannot be parsed
    │   │   ├── InvalidNameError
    │   │   ├── InvalidVersionError
    │   │   │   ├── InvalidMajorVersionError        modelkit's, in versioning.major_minor
    │   │   │   └── MajorVersionDoesNotExistError   modelkit's, in versioning.major_minor
    │   │   └── UnsafePathError              a name or part that would escape its folder
    │   └── AssetError                       an asset is not in the state asked for
    │       ├── AssetAlreadyExistsError
    │       │   └── VersionConflictError     another push holds that version
    │       ├── AssetDoesNotExistError
    │       │   ├── AssetMajorVersionDoesNotExistError  (also MajorVersionDoesNotExistError)
    │       │   └── RemoteAssetDoesNotExistError  the store has no such asset or version
    │       │                                     (also ObjectDoesNotExistError, as modelkit)
    │       ├── LocalAssetDoesNotExistError  a local source path or cached asset is missing
    │       ├── AssetNameConflictError       a name that would nest in another asset's version
    │       ├── SourceLinkError              a push source with a link cycle or a special file
    │       ├── SourceChangedError           a file changed between its hash and its upload
    │       ├── ObjectNameTooLongError       a file's object name past the store's limit
    │       ├── MarkerNameError              a top-level .SUCCESS, the cache's marker name
    │       ├── UnstorableNameError          a file name with a control character
    │       ├── UnpublishedVersionError      claimed by a push that has not published it
    │       └── AssetIntegrityError          downloaded bytes do not match the .meta
    ├── CorruptStoreError                    a .meta or .versions that cannot be read
    ├── StorageDriverError                   the store failed or refused a call
    │   ├── ObjectDoesNotExistError
    │   ├── ObjectAlreadyExistsError         a create-only write found the object present
    │   ├── PreconditionFailedError          a compare-and-swap lost the race
    │   ├── BucketDoesNotExistError
    │   ├── StorageAccessDeniedError
    │   └── StorageUnavailableError          a transient fault outlived the retry budget
    └── LockTimeoutError                     another process's download stalled

The classes modelkit raises keep its names, and each is raised in the case modelkit raises it,
so ``except`` clauses of modelkit code still catch (several inherit twice for that). Messages
are one line that says what happened and what to do next; they never carry secrets.
"""

from __future__ import annotations

import errno
from collections.abc import Sequence


class ModelkitAssetsError(Exception):
    """Base class of every error raised on purpose by modelkit-assets."""

    #: The message the CLI prints instead of ``str(error)``, when the API's one names Python
    #: arguments that mean nothing on a command line.
    cli_message: str | None = None


class ConfigurationError(ModelkitAssetsError):
    """The environment or the arguments describe a setup that cannot work."""


class NoConfiguredProviderError(ConfigurationError):
    """No storage provider is configured."""

    def __init__(self, message: str | None = None) -> None:
        base = (
            "no storage provider configured: "
            "set MODELKIT_STORAGE_PROVIDER (local, s3, gcs, az, ...)"
        )
        ModelkitAssetsError.__init__(
            self, message or base + " or pass provider= to StorageProvider"
        )
        self.cli_message = message or base + " and MODELKIT_STORAGE_BUCKET"


class UnknownDriverError(ConfigurationError):
    """No installed plugin provides the storage provider asked for: a bad setting value
    (``MODELKIT_STORAGE_PROVIDER`` or ``provider=``), a usage error on the CLI."""

    def __init__(self, provider: str, available: list[str]) -> None:
        self.provider = provider
        self.available = available
        ModelkitAssetsError.__init__(
            self,
            f"unknown storage provider {provider!r} (MODELKIT_STORAGE_PROVIDER or provider=); "
            f"available: {', '.join(available) or 'none'}",
        )


class DriverNotInstalledError(ConfigurationError):
    """A provider we know of, whose distribution is not installed."""

    def __init__(self, provider: str, distribution: str, extra: str) -> None:
        self.provider = provider
        self.distribution = distribution
        ModelkitAssetsError.__init__(
            self,
            f"storage provider {provider!r} is not installed: "
            f"pip install {distribution} (or modelkit-assets-core[{extra}])",
        )


class PluginConflictError(ConfigurationError):
    """Two distributions register a plugin under the same name."""

    def __init__(self, kind: str, name: str, providers: list[str]) -> None:
        self.kind = kind
        self.name = name
        self.providers = providers
        ModelkitAssetsError.__init__(
            self,
            f"{kind} {name!r} is registered by more than one distribution: "
            f"{' and '.join(providers)}; uninstall one of them",
        )


class PluginError(ConfigurationError):
    """A plugin did something discovery cannot allow (such as using the package from its
    hook while plugins are being discovered)."""


class InvalidSettingError(ConfigurationError, ValueError):
    """A setting (an environment variable, an option, an argument) with a malformed value."""

    def __init__(self, name: str, value: object, expected: str) -> None:
        self.name = name
        self.value = value
        ModelkitAssetsError.__init__(self, f"{name} must be {expected}, not {value!r}")


class UnknownSettingError(ConfigurationError, TypeError):
    """Driver keywords that are no setting of that driver (modelkit ignores them)."""

    def __init__(self, provider: str, names: list[str], known: list[str]) -> None:
        self.provider = provider
        self.names = sorted(names)
        ModelkitAssetsError.__init__(
            self,
            f"unknown {provider} driver setting(s): {', '.join(self.names)}; "
            f"known: {', '.join(known) or 'none'}",
        )


class AssetsDirDoesNotExistError(ConfigurationError, FileNotFoundError):
    """The local assets directory is missing (a FileNotFoundError, as modelkit raises)."""

    def __init__(self, path: str) -> None:
        self.path = path
        Exception.__init__(
            self,
            f"assets directory {path!r} does not exist: create it or set MODELKIT_ASSETS_DIR",
        )


class AssetsManagerError(ModelkitAssetsError):
    """modelkit's base class of the errors about assets and specs."""


class UnknownAssetsVersioningSystemError(ConfigurationError, AssetsManagerError):
    """No installed plugin provides the versioning system asked for."""

    def __init__(self, name: str, available: list[str]) -> None:
        self.name = name
        ModelkitAssetsError.__init__(
            self,
            f"unknown assets versioning system {name!r} (MODELKIT_ASSETS_VERSIONING_SYSTEM or "
            f"versioning=); available: {', '.join(available)}",
        )


class InvalidAssetSpecError(AssetsManagerError):
    """A spec string that cannot be parsed as name[:version][[sub/part]]."""

    def __init__(self, spec: str, reason: str = "") -> None:
        self.spec = spec
        ModelkitAssetsError.__init__(
            self,
            f"invalid asset spec {spec!r}"
            + (f": {reason}" if reason else "; expected name[:version][[sub/part]]"),
        )


class InvalidNameError(InvalidAssetSpecError):
    """An asset name outside the allowed alphabet or shape."""

    def __init__(self, name: str) -> None:
        self.name = name
        ModelkitAssetsError.__init__(
            self,
            f"invalid asset name {name!r}: use letters, digits, '.', '-', '_' "
            "in '/'-separated parts that start and end with a letter or digit",
        )
        self.spec = name


class InvalidVersionError(InvalidAssetSpecError):
    """A version the versioning system does not accept."""

    def __init__(self, version: str, system: str, expected: str = "") -> None:
        self.version = version
        self.system = system
        ModelkitAssetsError.__init__(
            self,
            f"invalid version {version!r} for the {system} versioning system"
            + (f": expected {expected}" if expected else ""),
        )
        self.spec = version


class UnsafePathError(InvalidAssetSpecError):
    """A name, sub-part or .meta entry that would leave its directory."""

    def __init__(self, path: str, where: str) -> None:
        self.path = path
        ModelkitAssetsError.__init__(
            self,
            f"refusing unsafe path {path!r} in {where}: "
            "no '..', backslashes, absolute paths or drive letters",
        )
        self.spec = path


class InvalidMajorVersionError(InvalidVersionError):
    """A major version that is not a number (modelkit's, in ``versioning.major_minor``)."""

    def __init__(self, major: str) -> None:
        super().__init__(major, "major_minor", "a MAJOR number such as 1")


class MajorVersionDoesNotExistError(InvalidVersionError):
    """No version of that major exists (modelkit's, in ``versioning.major_minor``)."""

    def __init__(self, major: str) -> None:
        self.version = self.major = major
        self.system = "major_minor"
        ModelkitAssetsError.__init__(self, f"major version {major} does not exist")
        self.spec = major


class AssetError(AssetsManagerError):
    """An asset or version is not in the state the operation needs."""


class AssetAlreadyExistsError(AssetError):
    """The asset (for `new`) or the version (for a push) already exists."""

    def __init__(self, name: str, version: str | None = None, hint: str = "") -> None:
        self.name = name
        self.version = version
        what = f"{name}:{version}" if version else name
        ModelkitAssetsError.__init__(
            self,
            f"asset {what} already exists"
            + (f"; {hint}" if hint else "" if version else "; use `update` to add a version"),
        )


class VersionConflictError(AssetAlreadyExistsError):
    """Another push claimed this version with different content."""

    def __init__(self, name: str, version: str, hint: str = "") -> None:
        super().__init__(
            name, version, hint=hint or "another push holds this version with different content"
        )


class AssetDoesNotExistError(AssetError):
    """The asset (or the version) is not in the store."""

    def __init__(self, name: str, version: str | None = None, hint: str = "") -> None:
        self.name = name
        self.version = version
        what = f"{name}:{version}" if version else name
        ModelkitAssetsError.__init__(
            self,
            f"asset {what} does not exist"
            + (f"; {hint}" if hint else "" if version else "; use `new` to create it"),
        )


class AssetMajorVersionDoesNotExistError(  # type: ignore[misc]  # version: str | None and str
    AssetDoesNotExistError, MajorVersionDoesNotExistError
):
    """`update name:MAJOR` for a major that has no version yet."""

    def __init__(self, name: str, major: str) -> None:
        self.major = major
        ModelkitAssetsError.__init__(
            self, f"asset {name} has no major version {major}; use --bump-major to start one"
        )
        self.name = name
        self.version = self.spec = major
        self.system = "major_minor"


class AssetNameConflictError(AssetError):
    """A name (or a version) that would lie inside another asset's objects, or the other way
    round: ``cat/name/0.1`` while ``cat/name`` has a version ``0.1``."""

    def __init__(self, what: str, reason: str) -> None:
        self.what = what
        ModelkitAssetsError.__init__(
            self, f"refusing to push {what}: {reason}; choose another name (nothing was written)"
        )


class SourceLinkError(AssetError):
    """A push source that cannot be pushed whole: a link cycle, a special file."""

    def __init__(self, path: str, reason: str) -> None:
        self.path = path
        ModelkitAssetsError.__init__(
            self,
            f"refusing to push {path!r}: {reason}; remove it or push its target "
            "(nothing was written)",
        )


class UnstorableNameError(AssetError):
    """A file to push whose name holds a control character (a newline, a tab): S3 lists it
    in XML, GCS refuses newlines, obstore refuses them all."""

    def __init__(self, path: str) -> None:
        self.path = path
        ModelkitAssetsError.__init__(
            self,
            f"refusing to push {path!r}: its name holds a control character (a newline, a tab), "
            "which object stores refuse or mangle; rename that file (nothing was written)",
        )


class MarkerNameError(AssetError):
    """A directory asset with a file named as the cache's completion marker (``.SUCCESS``)
    at its top: the marker would overwrite it in the cache, so it is neither pushed nor
    cached."""

    def __init__(self, what: str, pushing: bool) -> None:
        self.what = what
        todo = (
            "refusing to push it; rename that file (nothing was written)"
            if pushing
            else "it cannot be cached; rename that file and push a new version (nothing was "
            "downloaded)"
        )
        ModelkitAssetsError.__init__(
            self,
            f"{what} holds a file named .SUCCESS at its top, the name of the cache's completion "
            f"marker, which would replace it: {todo}",
        )


class ObjectNameTooLongError(AssetError):
    """A file of a push whose object name would be longer than the store takes."""

    def __init__(self, path: str, length: int, provider: str, limit: int) -> None:
        self.path = path
        ModelkitAssetsError.__init__(
            self,
            f"refusing to push {path!r}: its object name would be {length} bytes, and {provider} "
            f"takes at most {limit}; shorten its path, the asset's name or the prefix (nothing "
            "was written)",
        )


class SourceChangedError(AssetError):
    """A file of the push changed on disk between its hash and its upload: the store may hold
    bytes its ``.meta`` does not describe, so the version is not published."""

    def __init__(
        self, asset: str, paths: Sequence[str], not_withdrawn: str = "", kept_by: str = ""
    ) -> None:
        self.paths = tuple(paths)
        shown = ", ".join(repr(p) for p in self.paths[:3])
        more = f" and {len(self.paths) - 3} more" if len(self.paths) > 3 else ""
        if not_withdrawn:
            left = f"its claim is left, removing it failed: {not_withdrawn}"
        elif kept_by:
            left = f"the version stays with the push of the files as they were, {kept_by}"
        else:
            left = "what was uploaded is removed"
        ModelkitAssetsError.__init__(
            self,
            f"{shown}{more} changed while {asset} was being pushed; nothing was published "
            f"({left}): push again once the files stay put",
        )


class UnpublishedVersionError(AssetError):
    """A version whose ``.meta`` exists but that ``.versions`` does not list: a push claimed
    it and has not finished (or was interrupted)."""

    def __init__(self, name: str, version: str, hint: str = "") -> None:
        self.name = name
        self.version = version
        ModelkitAssetsError.__init__(
            self,
            f"{name}:{version} is not published: a push claimed it and has not finished"
            + (f"; {hint}" if hint else ""),
        )


class LocalAssetDoesNotExistError(AssetError):
    """A local path (a push source, a cached asset, a sub-part) is missing."""

    def __init__(self, path: str, hint: str = "") -> None:
        self.path = path
        ModelkitAssetsError.__init__(
            self, f"{path!r} does not exist" + (f"; {hint}" if hint else "")
        )


class AssetIntegrityError(AssetError):
    """Downloaded content does not match the size or digest recorded in the .meta."""

    def __init__(self, what: str, detail: str) -> None:
        self.what = what
        ModelkitAssetsError.__init__(
            self, f"{what} failed its integrity check ({detail}); it was not cached"
        )


class CorruptStoreError(ModelkitAssetsError):
    """A .meta or .versions object that cannot be read as what it should be."""

    def __init__(self, object_name: str, reason: str) -> None:
        self.object_name = object_name
        ModelkitAssetsError.__init__(self, f"corrupt store object {object_name!r}: {reason}")


class StorageDriverError(ModelkitAssetsError):
    """The storage backend failed or refused an operation."""


class ObjectDoesNotExistError(StorageDriverError):
    """The object is not in the bucket."""

    def __init__(self, driver: str, bucket: str, object_name: str) -> None:
        self.driver = driver
        self.bucket = bucket
        self.object_name = object_name
        ModelkitAssetsError.__init__(
            self, f"object {object_name!r} does not exist in {driver} bucket {bucket!r}"
        )


class ObjectAlreadyExistsError(StorageDriverError):
    """A create-only write found the object already there."""

    def __init__(self, object_name: str) -> None:
        self.object_name = object_name
        ModelkitAssetsError.__init__(self, f"object {object_name!r} already exists")


class PreconditionFailedError(StorageDriverError):
    """A compare-and-swap write found the object changed since it was read."""

    def __init__(self, object_name: str) -> None:
        self.object_name = object_name
        ModelkitAssetsError.__init__(
            self, f"object {object_name!r} changed while it was being updated"
        )


class BucketDoesNotExistError(StorageDriverError):
    """The bucket, container or local folder is missing."""

    def __init__(self, driver: str, bucket: str) -> None:
        self.driver = driver
        self.bucket = bucket
        ModelkitAssetsError.__init__(
            self,
            f"{driver} bucket {bucket!r} does not exist: create it or fix MODELKIT_STORAGE_BUCKET",
        )


class StorageAccessDeniedError(StorageDriverError):
    """The store refused the credentials."""

    def __init__(self, driver: str, bucket: str, detail: str = "") -> None:
        self.driver = driver
        self.bucket = bucket
        ModelkitAssetsError.__init__(
            self,
            f"access denied to {driver} bucket {bucket!r}"
            + (f" ({detail})" if detail else "")
            + ": check your credentials",
        )


class RemoteAssetDoesNotExistError(AssetDoesNotExistError, ObjectDoesNotExistError):
    """The store has no such asset (no ``.versions``, or one that lists no version) or no
    such version: an AssetDoesNotExistError that modelkit code catches as the
    ObjectDoesNotExistError modelkit raises there."""

    def __init__(
        self, name: str, version: str | None, object_name: str, bucket: str = "", hint: str = ""
    ) -> None:
        AssetDoesNotExistError.__init__(self, name, version, hint)
        self.object_name = object_name
        self.bucket = bucket
        self.driver = ""


class IncompatibleConfigurationError(ConfigurationError, StorageDriverError):
    """The assets dir lies inside the store's bucket and prefix: fetches would write into
    the store (a StorageDriverError, as modelkit raises)."""


class NotAStoreEndpointError(ConfigurationError, StorageDriverError):
    """The configured endpoint answers HTTP, but not as the storage service does (a web server,
    a wrong port): a setting to fix, not a network fault, so never retried nor answered from
    the cache."""

    def __init__(self, driver: str, endpoint: str, service: str, answer: str, setting: str) -> None:
        self.driver = driver
        self.endpoint = endpoint
        ModelkitAssetsError.__init__(
            self,
            f"the endpoint {endpoint} does not answer as {service} server ({answer}); "
            f"check {setting}",
        )


class StorageUnavailableError(StorageDriverError):
    """The store could not be reached, or kept failing, within the retry budget.

    ``refused`` says the endpoint refused the connection (nothing listens there): the core then
    gives up after its ``refused_timeout_s``, if one is set (the CLI's few seconds), instead of
    the whole storage timeout. Drivers set it with :func:`is_connection_refused`.
    """

    def __init__(self, driver: str, detail: str, *, refused: bool = False) -> None:
        self.driver = driver
        self.refused = refused
        ModelkitAssetsError.__init__(self, f"{driver} storage unavailable: {detail}")


def is_connection_refused(exc: BaseException) -> bool:
    """Whether ``exc`` comes of a refused TCP connection (``ECONNREFUSED``), however an SDK
    wrapped it: its causes and contexts, the ``reason`` of urllib3's errors, the
    ``inner_exception`` of Azure's, the ``error`` of botocore's, and their arguments."""
    seen: set[int] = set()
    pending: list[BaseException] = [exc]
    while pending:
        current = pending.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, ConnectionRefusedError) or (
            isinstance(current, OSError) and current.errno == errno.ECONNREFUSED
        ):
            return True
        kwargs = getattr(current, "kwargs", None)
        linked = [
            current.__cause__,
            current.__context__,
            getattr(current, "reason", None),
            getattr(current, "inner_exception", None),
            *current.args,
            *(kwargs.values() if isinstance(kwargs, dict) else ()),
        ]
        pending.extend(e for e in linked if isinstance(e, BaseException))
    return False


class LockTimeoutError(ModelkitAssetsError):
    """Another process holds the download lock and made no progress for too long."""

    def __init__(self, what: str, timeout_s: float) -> None:
        self.what = what
        self.timeout_s = timeout_s
        ModelkitAssetsError.__init__(
            self,
            f"another process is downloading {what} and made no progress for {timeout_s:g} s; "
            "raise MODELKIT_ASSETS_TIMEOUT_S or retry",
        )
