"""``python -m modelkit_assets assets ...``, the same as the ``modelkit`` command."""

from __future__ import annotations

from .cli import main

main()
