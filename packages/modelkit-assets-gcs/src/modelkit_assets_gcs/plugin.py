"""Registers the ``gcs`` storage driver; cheap to import (the SDK is loaded lazily)."""

from __future__ import annotations

from collections.abc import Iterator

from modelkit_assets import hookimpl
from modelkit_assets.records import (
    CONDITIONAL_WRITES,
    RANGED_READS,
    SERVER_SIDE_COPY,
    StorageDriverPlugin,
)


@hookimpl
def modelkit_assets_storage_drivers() -> Iterator[StorageDriverPlugin]:
    yield StorageDriverPlugin(
        name="gcs",
        driver="modelkit_assets_gcs.driver:GCSStorageDriver",
        schemes=("gs",),
        capabilities={CONDITIONAL_WRITES, RANGED_READS, SERVER_SIDE_COPY},
        description="Google Cloud Storage (google-cloud-storage)",
    )
