"""Registers the ``az`` storage driver; cheap to import (the Azure SDK loads on first use)."""

from __future__ import annotations

from collections.abc import Iterator

from modelkit_assets import StorageDriverPlugin, hookimpl
from modelkit_assets.records import CONDITIONAL_WRITES, RANGED_READS, SERVER_SIDE_COPY


@hookimpl
def modelkit_assets_storage_drivers() -> Iterator[StorageDriverPlugin]:
    yield StorageDriverPlugin(
        name="az",
        driver="modelkit_assets_az.driver:AzureStorageDriver",
        schemes=("az",),
        capabilities={CONDITIONAL_WRITES, RANGED_READS, SERVER_SIDE_COPY},
        description="Azure Blob Storage (azure-storage-blob); the bucket is the container",
    )
