"""Environment variables and their defaults, read in one place (modelkit's `settings` module
name is kept for AssetSpec, as in modelkit: see :mod:`.settings`)."""

from __future__ import annotations

import os
from typing import Final

DEFAULT_PREFIX: Final = "modelkit-assets"
DEFAULT_STORAGE_TIMEOUT_S: Final = 300.0
DEFAULT_ASSETS_TIMEOUT_S: Final = 10.0
DEFAULT_VERSIONING_SYSTEM: Final = "major_minor"
DEFAULT_MAX_WORKERS: Final = 16

_TRUE: Final = frozenset({"1", "true", "yes", "on"})


def env_str(name: str, default: str | None = None) -> str | None:
    """The variable's value, or ``default`` when unset or empty."""
    value = os.environ.get(name, "").strip()
    return value or default


def env_flag(name: str) -> bool:
    """Whether a boolean variable is set to a true value (1, true, yes, on)."""
    return (env_str(name) or "").lower() in _TRUE


def env_float(name: str, default: float) -> float:
    """A number from the environment; a malformed one is a configuration error."""
    value = env_str(name)
    if value is None:
        return default
    try:
        return float(value)
    except ValueError:
        from .errors import ConfigurationError

        raise ConfigurationError(f"{name} must be a number of seconds, not {value!r}") from None


def env_int(name: str, default: int) -> int:
    """A positive integer from the environment."""
    value = env_str(name)
    if value is None:
        return default
    if not value.isdigit() or int(value) < 1:
        from .errors import ConfigurationError

        raise ConfigurationError(f"{name} must be a positive integer, not {value!r}")
    return int(value)


def storage_provider() -> str | None:
    return env_str("MODELKIT_STORAGE_PROVIDER")


def storage_bucket() -> str | None:
    return env_str("MODELKIT_STORAGE_BUCKET")


def storage_prefix() -> str:
    return env_str("MODELKIT_STORAGE_PREFIX", DEFAULT_PREFIX) or DEFAULT_PREFIX


def storage_timeout_s() -> float:
    return env_float("MODELKIT_STORAGE_TIMEOUT_S", DEFAULT_STORAGE_TIMEOUT_S)


def storage_force_download() -> bool:
    return env_flag("MODELKIT_STORAGE_FORCE_DOWNLOAD")


def storage_max_workers(default: int | None = None) -> int:
    """The variable's value, else ``default`` (a driver's own), else DEFAULT_MAX_WORKERS."""
    return env_int("MODELKIT_STORAGE_MAX_WORKERS", default or DEFAULT_MAX_WORKERS)


def assets_dir() -> str:
    return env_str("MODELKIT_ASSETS_DIR") or os.getcwd()


def assets_timeout_s() -> float:
    return env_float("MODELKIT_ASSETS_TIMEOUT_S", DEFAULT_ASSETS_TIMEOUT_S)


def versioning_system() -> str:
    return env_str("MODELKIT_ASSETS_VERSIONING_SYSTEM", DEFAULT_VERSIONING_SYSTEM) or ""


def lazy_driver() -> bool:
    return env_flag("MODELKIT_LAZY_DRIVER")
