"""Every error modelkit-assets raises on purpose.

The tree::

    ModelkitAssetsError                      base of everything below
    ├── ConfigurationError                   the environment or arguments are wrong
    │   ├── NoConfiguredProviderError        no MODELKIT_STORAGE_PROVIDER
    │   ├── UnknownDriverError               no plugin provides that provider name
    │   ├── DriverNotInstalledError          a known provider whose distribution is missing
    │   ├── UnknownAssetsVersioningSystemError
    │   ├── PluginConflictError              two distributions claim one plugin name
    │   └── AssetsDirDoesNotExistError       MODELKIT_ASSETS_DIR is not a directory
    ├── InvalidAssetSpecError                a spec string that cannot be parsed
    │   ├── InvalidNameError
    │   ├── InvalidVersionError
    │   └── UnsafePathError                  a name or part that would escape its folder
    ├── AssetError                           an asset is not in the state asked for
    │   ├── AssetAlreadyExistsError
    │   │   └── VersionConflictError         another push holds that version
    │   ├── AssetDoesNotExistError
    │   │   └── AssetMajorVersionDoesNotExistError
    │   ├── LocalAssetDoesNotExistError      a local source path or cached asset is missing
    │   └── AssetIntegrityError              downloaded bytes do not match the .meta
    ├── CorruptStoreError                    a .meta or .versions that cannot be read
    ├── StorageDriverError                   the store failed or refused a call
    │   ├── ObjectDoesNotExistError
    │   ├── ObjectAlreadyExistsError         a create-only write found the object present
    │   ├── PreconditionFailedError          a compare-and-swap lost the race
    │   ├── BucketDoesNotExistError
    │   ├── StorageAccessDeniedError
    │   └── StorageUnavailableError          a transient fault outlived the retry budget
    └── LockTimeoutError                     another process's download stalled

Messages are one line that says what happened and what to do next; they never carry secrets.
"""

from __future__ import annotations


class ModelkitAssetsError(Exception):
    """Base class of every error raised on purpose by modelkit-assets."""


class ConfigurationError(ModelkitAssetsError):
    """The environment or the arguments describe a setup that cannot work."""


class NoConfiguredProviderError(ConfigurationError):
    """No storage provider is configured."""

    def __init__(self, message: str | None = None) -> None:
        super().__init__(
            message
            or "no storage provider configured: set MODELKIT_STORAGE_PROVIDER "
            "(local, s3, gcs, az, ...) or pass provider="
        )


class UnknownDriverError(ConfigurationError):
    """No installed plugin provides the storage provider asked for."""

    def __init__(self, provider: str, available: list[str]) -> None:
        self.provider = provider
        self.available = available
        super().__init__(
            f"unknown storage provider {provider!r}; available: {', '.join(available) or 'none'}"
        )


class DriverNotInstalledError(ConfigurationError):
    """A provider we know of, whose distribution is not installed."""

    def __init__(self, provider: str, distribution: str, extra: str) -> None:
        self.provider = provider
        self.distribution = distribution
        super().__init__(
            f"storage provider {provider!r} is not installed: "
            f"pip install {distribution} (or modelkit-assets-core[{extra}])"
        )


class UnknownAssetsVersioningSystemError(ConfigurationError):
    """No installed plugin provides the versioning system asked for."""

    def __init__(self, name: str, available: list[str]) -> None:
        self.name = name
        super().__init__(
            f"unknown assets versioning system {name!r}; available: {', '.join(available)}"
        )


class PluginConflictError(ConfigurationError):
    """Two distributions register a plugin under the same name."""

    def __init__(self, kind: str, name: str, providers: list[str]) -> None:
        self.kind = kind
        self.name = name
        self.providers = providers
        super().__init__(
            f"{kind} {name!r} is registered by more than one distribution: "
            f"{' and '.join(providers)}; uninstall one of them"
        )


class AssetsDirDoesNotExistError(ConfigurationError):
    """The local assets directory is missing."""

    def __init__(self, path: str) -> None:
        self.path = path
        super().__init__(
            f"assets directory {path!r} does not exist: create it or set MODELKIT_ASSETS_DIR"
        )


class InvalidAssetSpecError(ModelkitAssetsError):
    """A spec string that cannot be parsed as name[:version][[sub/part]]."""

    def __init__(self, spec: str, reason: str = "") -> None:
        self.spec = spec
        super().__init__(
            f"invalid asset spec {spec!r}"
            + (f": {reason}" if reason else "; expected name[:version][[sub/part]]")
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
            f"refusing unsafe path {path!r} in {where}: no '..', absolute paths or drive letters",
        )
        self.spec = path


class AssetError(ModelkitAssetsError):
    """An asset or version is not in the state the operation needs."""


class AssetAlreadyExistsError(AssetError):
    """The asset (for `new`) or the version (for a push) already exists."""

    def __init__(self, name: str, version: str | None = None, hint: str = "") -> None:
        self.name = name
        self.version = version
        what = f"{name}:{version}" if version else name
        super().__init__(
            f"asset {what} already exists"
            + (f"; {hint}" if hint else "" if version else "; use `update` to add a version")
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
        super().__init__(
            f"asset {what} does not exist"
            + (f"; {hint}" if hint else "" if version else "; use `new` to create it")
        )


class AssetMajorVersionDoesNotExistError(AssetDoesNotExistError):
    """`update name:MAJOR` for a major that has no version yet."""

    def __init__(self, name: str, major: str) -> None:
        self.major = major
        AssetError.__init__(
            self, f"asset {name} has no major version {major}; use --bump-major to start one"
        )
        self.name = name
        self.version = major


class LocalAssetDoesNotExistError(AssetError):
    """A local path (a push source, a cached asset, a sub-part) is missing."""

    def __init__(self, path: str, hint: str = "") -> None:
        self.path = path
        super().__init__(f"{path!r} does not exist" + (f"; {hint}" if hint else ""))


class AssetIntegrityError(AssetError):
    """Downloaded content does not match the size or digest recorded in the .meta."""

    def __init__(self, what: str, detail: str) -> None:
        self.what = what
        super().__init__(f"{what} failed its integrity check ({detail}); it was not cached")


class CorruptStoreError(ModelkitAssetsError):
    """A .meta or .versions object that cannot be read as what it should be."""

    def __init__(self, object_name: str, reason: str) -> None:
        self.object_name = object_name
        super().__init__(f"corrupt store object {object_name!r}: {reason}")


class StorageDriverError(ModelkitAssetsError):
    """The storage backend failed or refused an operation."""


class ObjectDoesNotExistError(StorageDriverError):
    """The object is not in the bucket."""

    def __init__(self, driver: str, bucket: str, object_name: str) -> None:
        self.driver = driver
        self.bucket = bucket
        self.object_name = object_name
        super().__init__(f"object {object_name!r} does not exist in {driver} bucket {bucket!r}")


class ObjectAlreadyExistsError(StorageDriverError):
    """A create-only write found the object already there."""

    def __init__(self, object_name: str) -> None:
        self.object_name = object_name
        super().__init__(f"object {object_name!r} already exists")


class PreconditionFailedError(StorageDriverError):
    """A compare-and-swap write found the object changed since it was read."""

    def __init__(self, object_name: str) -> None:
        self.object_name = object_name
        super().__init__(f"object {object_name!r} changed while it was being updated")


class BucketDoesNotExistError(StorageDriverError):
    """The bucket, container or local folder is missing."""

    def __init__(self, driver: str, bucket: str) -> None:
        self.driver = driver
        self.bucket = bucket
        super().__init__(
            f"{driver} bucket {bucket!r} does not exist: create it or fix MODELKIT_STORAGE_BUCKET"
        )


class StorageAccessDeniedError(StorageDriverError):
    """The store refused the credentials."""

    def __init__(self, driver: str, bucket: str, detail: str = "") -> None:
        self.driver = driver
        self.bucket = bucket
        super().__init__(
            f"access denied to {driver} bucket {bucket!r}"
            + (f" ({detail})" if detail else "")
            + ": check your credentials"
        )


class StorageUnavailableError(StorageDriverError):
    """The store could not be reached, or kept failing, within the retry budget."""

    def __init__(self, driver: str, detail: str) -> None:
        self.driver = driver
        super().__init__(f"{driver} storage unavailable: {detail}")


class LockTimeoutError(ModelkitAssetsError):
    """Another process holds the download lock and made no progress for too long."""

    def __init__(self, what: str, timeout_s: float) -> None:
        self.what = what
        self.timeout_s = timeout_s
        super().__init__(
            f"another process is downloading {what} and made no progress for {timeout_s:g} s; "
            "raise MODELKIT_ASSETS_TIMEOUT_S or retry"
        )
