"""modelkit's settings object of the ``az`` driver (no SDK import: cheap to load)."""

from __future__ import annotations

from typing import Final

from modelkit_assets.drivers.settings import SettingField, StorageDriverSettings

#: Transfer keywords of the driver (the fields of ``modelkit_assets_az.client.AzureSettings``).
DRIVER_OPTIONS: Final = (
    "max_concurrency",
    "max_single_put_size",
    "max_block_size",
    "max_single_get_size",
    "max_chunk_get_size",
    "list_page_size",
    "retry_total",
    "retry_backoff_s",
    "connection_pool_size",
)


class AzureStorageDriverSettings(StorageDriverSettings):
    """modelkit's settings of the ``az`` driver: the ``connection_string`` (else
    AZURE_STORAGE_CONNECTION_STRING, as in modelkit); the driver's transfer keywords are
    accepted too."""

    provider = "az"
    fields = {
        **StorageDriverSettings.fields,
        "connection_string": SettingField(
            "AZURE_STORAGE_CONNECTION_STRING", "connection_string", secret=True
        ),
    }
    driver_options = DRIVER_OPTIONS

    connection_string: str | None
