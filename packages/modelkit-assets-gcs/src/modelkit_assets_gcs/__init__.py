"""Google Cloud Storage for modelkit-assets: provider ``gcs``, URIs ``gs://bucket/key``.

The driver lives in :mod:`modelkit_assets_gcs.driver` and is imported only when a ``gcs`` store
is first used, so discovering this plugin does not import google-cloud-storage.
"""

from __future__ import annotations

__all__: list[str] = []
