"""What the modelkit-path modules of cloud drivers share (``drivers.s3``, ``.gcs``, ``.azure``).

Each is an alias of a backend distribution's package, importing it when the module is
imported (cheap: the packages load their SDK only when the driver is first used), and its names
when first asked for. Without the distribution, the import fails as modelkit's does (a
ModuleNotFoundError, which modelkit code catches), saying in one line what to install.
"""

from __future__ import annotations

import importlib
import importlib.util
from collections.abc import Callable


def require(package: str, distribution: str, extra: str) -> None:
    """Raise ModuleNotFoundError naming ``distribution`` unless ``package`` is installed."""
    if importlib.util.find_spec(package) is None:
        raise ModuleNotFoundError(
            f"this driver needs {distribution}: pip install {distribution} "
            f"(or modelkit-assets-core[{extra}])",
            name=package,
        )


def names_from(package: str, module: str, names: tuple[str, ...]) -> Callable[[str], object]:
    """A module ``__getattr__`` that takes ``names`` from ``package`` on first access."""

    def get(name: str) -> object:
        if name in names:
            return getattr(importlib.import_module(package), name)
        raise AttributeError(f"module {module!r} has no attribute {name!r}")

    return get
