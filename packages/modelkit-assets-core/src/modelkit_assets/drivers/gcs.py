"""modelkit's ``modelkit.assets.drivers.gcs``: the GCS driver and its settings, from
``modelkit_assets_gcs`` (distribution modelkit-assets-gcs), imported on first access."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ._alias import names_from, require

require("modelkit_assets_gcs", "modelkit-assets-gcs", "assets-gcs")

if TYPE_CHECKING:
    from modelkit_assets_gcs import GCSStorageDriver, GCSStorageDriverSettings

__all__ = ["GCSStorageDriver", "GCSStorageDriverSettings"]

__getattr__ = names_from("modelkit_assets_gcs", __name__, tuple(__all__))
