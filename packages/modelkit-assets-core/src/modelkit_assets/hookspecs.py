"""The hooks through which every storage driver and versioning system is registered.

The built-in ``local`` driver and the ``major_minor`` and ``simple_date`` systems use these very
hooks (see :mod:`modelkit_assets.builtin`); nothing is special-cased.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

import pluggy

from .records import StorageDriverPlugin, VersioningSystemPlugin

PROJECT_NAME: Final = "modelkit_assets"

hookspec: Final = pluggy.HookspecMarker(PROJECT_NAME)
hookimpl: Final = pluggy.HookimplMarker(PROJECT_NAME)


class ModelkitAssetsSpecs:
    """Hook specifications; each hook returns an iterable of registration records."""

    @hookspec
    def modelkit_assets_storage_drivers(self) -> Iterable[StorageDriverPlugin]:  # type: ignore[empty-body]
        """Register storage drivers.

        Return records naming each driver. Give the class as a ``"module:Class"`` string so that
        listing plugins stays cheap and the cloud SDK is imported only when the driver is used.

        A complete plugin module, registered in its distribution's ``pyproject.toml`` as
        ``[project.entry-points.modelkit_assets] mystore = "mystore_plugin"``::

            from modelkit_assets import StorageDriverPlugin, hookimpl

            @hookimpl
            def modelkit_assets_storage_drivers():
                yield StorageDriverPlugin(
                    name="mystore",
                    driver="mystore_plugin.driver:MyStoreDriver",
                    schemes=("mystore",),
                )
        """

    @hookspec
    def modelkit_assets_versioning_systems(self) -> Iterable[VersioningSystemPlugin]:  # type: ignore[empty-body]
        """Register assets versioning systems.

        Example::

            from modelkit_assets import VersioningSystemPlugin, hookimpl

            @hookimpl
            def modelkit_assets_versioning_systems():
                yield VersioningSystemPlugin(name="semver", system="my_semver:SemverSystem")
        """
