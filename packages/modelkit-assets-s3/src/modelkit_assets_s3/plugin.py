"""Registers the ``s3`` provider; the driver (and boto3) load only when first used."""

from __future__ import annotations

from collections.abc import Iterator

from modelkit_assets import StorageDriverPlugin, hookimpl
from modelkit_assets.records import CONDITIONAL_WRITES, RANGED_READS, SERVER_SIDE_COPY


@hookimpl
def modelkit_assets_storage_drivers() -> Iterator[StorageDriverPlugin]:
    yield StorageDriverPlugin(
        name="s3",
        driver="modelkit_assets_s3.driver:S3StorageDriver",
        schemes=("s3",),
        capabilities={CONDITIONAL_WRITES, RANGED_READS, SERVER_SIDE_COPY},
        description="AWS S3 and S3-compatible stores (MinIO, SeaweedFS...), through boto3",
    )
