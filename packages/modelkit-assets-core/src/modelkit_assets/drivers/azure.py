"""modelkit's ``modelkit.assets.drivers.azure``: the Azure driver and its settings, from
``modelkit_assets_az`` (distribution modelkit-assets-az), imported on first access."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ._alias import names_from, require

require("modelkit_assets_az", "modelkit-assets-az", "assets-az")

if TYPE_CHECKING:
    from modelkit_assets_az import AzureStorageDriver, AzureStorageDriverSettings

__all__ = ["AzureStorageDriver", "AzureStorageDriverSettings"]

__getattr__ = names_from("modelkit_assets_az", __name__, tuple(__all__))
