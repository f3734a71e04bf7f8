"""modelkit's settings object of the ``gcs`` driver (no SDK import: cheap to load)."""

from __future__ import annotations

from typing import Final

from modelkit_assets.drivers.settings import SettingField, StorageDriverSettings

#: Keywords of :class:`~modelkit_assets_gcs.driver.GCSStorageDriver`.
DRIVER_OPTIONS: Final = ("credentials_path", "project", "chunk_size", "page_size")


class GCSStorageDriverSettings(StorageDriverSettings):
    """modelkit's settings of the ``gcs`` driver: ``service_account_path`` stands for
    ``credentials_path``; this driver's other keywords are accepted too.

    ``service_account_path`` is not read from GOOGLE_APPLICATION_CREDENTIALS here: the driver
    reads that variable itself, and accepts more kinds of credentials files from it."""

    provider = "gcs"
    fields = {
        **StorageDriverSettings.fields,
        "service_account_path": SettingField(
            "GOOGLE_APPLICATION_CREDENTIALS", "credentials_path", from_env=False
        ),
    }
    driver_options = DRIVER_OPTIONS

    service_account_path: str | None
