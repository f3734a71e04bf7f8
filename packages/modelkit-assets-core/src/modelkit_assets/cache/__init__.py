"""The local cache of fetched versions (``MODELKIT_ASSETS_DIR``), in modelkit's layout, and the
managed cache beside it (DESIGN.md 10 and 11).

One module per job:

- :mod:`.layout`: where versions live, when they are complete, publishing, the download lock,
  the read-only tiers of ``MODELKIT_ASSETS_DIR``;
- :mod:`.download`: one version downloaded, resumed, reused, checked, recorded, published;
- :mod:`.partial`: the log of an interrupted download's written ranges;
- :mod:`.reuse`: files other cached versions hold, cloned instead of downloaded;
- :mod:`.records`: what each download recorded (the meta, every file's digest);
- :mod:`.holds`: which versions live processes use, so that nothing evicts them;
- :mod:`.inventory`: what the folders hold (versions, partial downloads, debris);
- :mod:`.evict`: removing one entry safely; :mod:`.prune`: bounds, ``prune`` and ``rm``;
- :mod:`.verify`: every cached file hashed again, and repaired;
- :mod:`.sizes`: ``5GB``, ``30d``.
"""

from __future__ import annotations

from .layout import SUCCESS, AssetsCache, clean_stale_downloads

__all__ = ["SUCCESS", "AssetsCache", "clean_stale_downloads"]
