"""Environment variables and their defaults, read and checked in one place.

(modelkit's module name ``settings`` is where ``AssetSpec`` lives, as in modelkit: see
:mod:`.settings`.) A malformed value is refused with InvalidSettingError naming the variable,
never read as a default: ``MODELKIT_STORAGE_FORCE_DOWNLOAD=maybe`` or
``MODELKIT_STORAGE_TIMEOUT_S=-5`` is a mistake to report, not a setting to guess at.
"""

from __future__ import annotations

import math
import os
from typing import Final

DEFAULT_PREFIX: Final = "modelkit-assets"
DEFAULT_STORAGE_TIMEOUT_S: Final = 300.0
DEFAULT_ASSETS_TIMEOUT_S: Final = 10.0
DEFAULT_VERSIONING_SYSTEM: Final = "major_minor"
DEFAULT_MAX_WORKERS: Final = 16
MAX_WORKERS_ENV: Final = "MODELKIT_STORAGE_MAX_WORKERS"
#: The bound of the assets dir's size (see :mod:`.cache.prune`).
MAX_SIZE_ENV: Final = "MODELKIT_ASSETS_MAX_SIZE"
DEFAULT_CLAIM_TIMEOUT_S: Final = 3600.0

_TRUE: Final = frozenset({"1", "true", "yes", "on"})
_FALSE: Final = frozenset({"0", "false", "no", "off"})


def _invalid(name: str, value: object, expected: str) -> Exception:
    from .errors import InvalidSettingError

    return InvalidSettingError(name, value, expected)


def env_str(name: str, default: str | None = None) -> str | None:
    """The variable's value, or ``default`` when unset or empty."""
    value = os.environ.get(name, "").strip()
    return value or default


def is_set(name: str) -> bool:
    """Whether the variable is set to something other than blanks."""
    return env_str(name) is not None


def parse_flag(name: str, value: object) -> bool:
    """A boolean setting: 1/true/yes/on or 0/false/no/off (any case), or a bool."""
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise _invalid(name, value, "1, true, yes, on or 0, false, no, off")


def parse_seconds(name: str, value: object) -> float:
    """A positive, finite number of seconds."""
    try:
        seconds = float(str(value).strip()) if not isinstance(value, int | float) else float(value)
    except ValueError:
        raise _invalid(name, value, "a positive number of seconds") from None
    if not math.isfinite(seconds) or seconds <= 0:
        raise _invalid(name, value, "a positive number of seconds")
    return seconds


def env_flag(name: str) -> bool:
    """A boolean variable; unset or empty is False."""
    value = env_str(name)
    return False if value is None else parse_flag(name, value)


def env_seconds(name: str, default: float) -> float:
    """A positive number of seconds from the environment, else ``default``."""
    value = env_str(name)
    return default if value is None else parse_seconds(name, value)


def env_int(name: str, default: int) -> int:
    """A positive integer from the environment."""
    value = env_str(name)
    if value is None:
        return default
    if not value.isdigit() or int(value) < 1:
        raise _invalid(name, value, "a positive integer")
    return int(value)


def storage_provider() -> str | None:
    return env_str("MODELKIT_STORAGE_PROVIDER")


def storage_bucket() -> str | None:
    return env_str("MODELKIT_STORAGE_BUCKET")


def storage_prefix() -> str:
    return env_str("MODELKIT_STORAGE_PREFIX", DEFAULT_PREFIX) or DEFAULT_PREFIX


def storage_timeout_s() -> float:
    return env_seconds("MODELKIT_STORAGE_TIMEOUT_S", DEFAULT_STORAGE_TIMEOUT_S)


def storage_force_download() -> bool:
    return env_flag("MODELKIT_STORAGE_FORCE_DOWNLOAD")


def storage_max_workers(default: int | None = None) -> int:
    """The variable's value, else ``default`` (a driver's own), else DEFAULT_MAX_WORKERS."""
    return chosen_max_workers() or default or DEFAULT_MAX_WORKERS


def chosen_max_workers() -> int | None:
    """The variable's value, or None when it is unset (each driver's defaults then hold)."""
    return env_int(MAX_WORKERS_ENV, 0) or None


def claim_timeout_s() -> float:
    """How old another machine's unfinished claim must be before a retry takes it over."""
    return env_seconds("MODELKIT_STORAGE_CLAIM_TIMEOUT_S", DEFAULT_CLAIM_TIMEOUT_S)


def assets_dir() -> str:
    return env_str("MODELKIT_ASSETS_DIR") or os.getcwd()


def assets_timeout_s() -> float:
    return env_seconds("MODELKIT_ASSETS_TIMEOUT_S", DEFAULT_ASSETS_TIMEOUT_S)


def versioning_system() -> str:
    return env_str("MODELKIT_ASSETS_VERSIONING_SYSTEM", DEFAULT_VERSIONING_SYSTEM) or ""


def lazy_driver() -> bool:
    return env_flag("MODELKIT_LAZY_DRIVER")
