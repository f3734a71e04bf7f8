"""The built-in plugins, registered through the same hooks as any third party's."""

from __future__ import annotations

from collections.abc import Iterator

from .hookspecs import hookimpl
from .records import (
    CONDITIONAL_WRITES,
    RANGED_READS,
    SERVER_SIDE_COPY,
    StorageDriverPlugin,
    VersioningSystemPlugin,
)


@hookimpl
def modelkit_assets_storage_drivers() -> Iterator[StorageDriverPlugin]:
    yield StorageDriverPlugin(
        name="local",
        driver="modelkit_assets.drivers.local:LocalStorageDriver",
        capabilities={CONDITIONAL_WRITES, RANGED_READS, SERVER_SIDE_COPY},
        description="a local folder used as the bucket",
    )


@hookimpl
def modelkit_assets_versioning_systems() -> Iterator[VersioningSystemPlugin]:
    yield VersioningSystemPlugin(
        name="major_minor",
        system="modelkit_assets.versioning.major_minor:MajorMinorAssetsVersioningSystem",
        description="MAJOR.MINOR, bump the minor by default",
    )
    yield VersioningSystemPlugin(
        name="simple_date",
        system="modelkit_assets.versioning.simple_date:SimpleDateAssetsVersioningSystem",
        description="UTC date YYYY-MM-DDThh-mm-ssZ",
    )
