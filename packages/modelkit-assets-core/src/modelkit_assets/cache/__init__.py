"""The local cache of fetched versions (``MODELKIT_ASSETS_DIR``), in modelkit's layout.

One module per job:

- :mod:`.layout`: where versions live, when they are complete, publishing, the download lock.
"""

from __future__ import annotations

from .layout import SUCCESS, AssetsCache, clean_stale_downloads

__all__ = ["SUCCESS", "AssetsCache", "clean_stale_downloads"]
