"""modelkit's ``modelkit.assets.drivers.s3``: the S3 driver and its settings, from
``modelkit_assets_s3`` (distribution modelkit-assets-s3), imported on first access."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ._alias import names_from, require

require("modelkit_assets_s3", "modelkit-assets-s3", "assets-s3")

if TYPE_CHECKING:
    from modelkit_assets_s3 import S3StorageDriver, S3StorageDriverSettings

__all__ = ["S3StorageDriver", "S3StorageDriverSettings"]

__getattr__ = names_from("modelkit_assets_s3", __name__, tuple(__all__))
