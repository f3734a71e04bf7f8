"""Which engine moves a cloud driver's bytes: its SDK, or obstore (the ``fast`` extra).

Per request, boto3 and the other SDKs spend about 2 ms of client CPU: a fetch of 1000 small
files was 4.5x slower than the Go tools (s5cmd, rclone) on the same server. obstore (Python
bindings to Rust's ``object_store``) runs many requests at once on one async engine for a
fraction of that. It ships in the distribution ``modelkit-assets-obstore``, pulled in by the
cloud packages' ``fast`` extra (``pip install "modelkit-assets-s3[fast]"``, or ``-az``, or
``-gcs``: GCS reads only).

``MODELKIT_STORAGE_ENGINE`` chooses: ``auto`` (the default: obstore when it is installed), ``sdk``
(the SDK alone) or ``obstore`` (a configuration error when it is not installed).

A driver class opts in with :func:`delegating`: each of the named methods then goes to the
driver's engine when it has one, and to the driver's own code otherwise. The engine may decline
a call (:meth:`DataEngine.handles`), e.g. an SSE-KMS upload, and the SDK does it. A method that
a test or a subclass replaced stays in charge: the engine never bypasses a replacement of a
method it stands for (a fault injector on ``download_object`` still sees every download).
The core never imports obstore or an SDK: the engine comes from ``modelkit_assets_obstore``.
"""

from __future__ import annotations

import functools
import importlib
import importlib.util
import os
import threading
import weakref
from collections.abc import Callable
from typing import Any, Final, Protocol, TypeVar

from . import errors

ENGINE_ENV: Final = "MODELKIT_STORAGE_ENGINE"
ENGINES: Final = ("auto", "sdk", "obstore")
#: The distribution (and import name) that holds the obstore engine.
OBSTORE_DISTRIBUTION: Final = "modelkit-assets-obstore"
OBSTORE_MODULE: Final = "modelkit_assets_obstore"

#: For each method an engine may take, the driver methods that, when replaced, keep the call
#: on the driver's own path (the replacement must see what it stands for).
REPLACEABLE: Final[dict[str, tuple[str, ...]]] = {
    "download_many": ("download_object", "download_object_with_digest", "download_hashing"),
    "download_hashing": ("download_object",),
    "read_range": ("download_object",),
    "create_many": (
        "upload_object",
        "create_object",
        "create_reporting",
        "create_bytes",
        "create_object_from_bytes",
        "create_object_with_progress",
    ),
    "create_bytes": ("upload_object", "create_object", "create_reporting"),
}

D = TypeVar("D")


class DataEngine(Protocol):
    """What an engine offers a driver: any of the methods :func:`delegating` names, with the
    driver's signatures, and whether it takes a given call."""

    def handles(self, method: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> bool:
        """Whether this call of ``method`` is the engine's (else the driver's own code runs)."""


def engine_setting() -> str:
    """``MODELKIT_STORAGE_ENGINE``, checked (``auto`` when unset)."""
    value = os.environ.get(ENGINE_ENV, "").strip().lower() or "auto"
    if value not in ENGINES:
        raise errors.InvalidSettingError(ENGINE_ENV, value, " or ".join(ENGINES))
    return value


def obstore_installed() -> bool:
    """Whether the fast extra is importable (found, not imported)."""
    return all(importlib.util.find_spec(m) is not None for m in (OBSTORE_MODULE, "obstore"))


def chosen_engine(provider: str = "s3") -> str:
    """``sdk`` or ``obstore``, as the setting and what is installed say (``provider`` names
    the package whose ``fast`` extra to install, in the error)."""
    setting = engine_setting()
    if setting == "auto":
        return "obstore" if obstore_installed() else "sdk"
    if setting == "obstore" and not obstore_installed():
        raise errors.ConfigurationError(
            f"{ENGINE_ENV}=obstore but obstore is not installed: "
            f'pip install "modelkit-assets-{provider}[fast]" (or unset {ENGINE_ENV})'
        )
    return setting


_LOCK: Final = threading.Lock()
#: Each driver's engine and the process it was made in; kept off the driver's own attributes,
#: so that a driver pickles as before (the engine holds a connection pool and a loop).
_ENGINES: Final[weakref.WeakKeyDictionary[Any, tuple[int, DataEngine | None]]] = (
    weakref.WeakKeyDictionary()
)


def engine_of(driver: Any) -> DataEngine | None:
    """The driver's engine, made on first use (None: the SDK does everything). One driver
    keeps one engine (one connection pool); a forked child (a server that loads its models,
    then forks its workers) makes its own: a pool and an event loop do not survive a fork."""
    pid = os.getpid()
    cached = _ENGINES.get(driver)
    if cached is None or cached[0] != pid:
        with _LOCK:
            cached = _ENGINES.get(driver)
            if cached is None or cached[0] != pid:
                cached = (pid, _make_engine(driver))
                _ENGINES[driver] = cached
    return cached[1]


def _make_engine(driver: Any) -> DataEngine | None:
    if chosen_engine(getattr(driver, "provider_name", None) or "s3") != "obstore":
        return None
    module = importlib.import_module(OBSTORE_MODULE)
    engine: DataEngine | None = module.engine_for(driver)
    for default in ("default_max_workers", "default_max_downloads"):
        workers = getattr(engine, default, None)
        if workers is not None:  # what MODELKIT_STORAGE_MAX_WORKERS defaults to for this driver
            driver.__dict__[default] = workers
    return engine


def delegating(*methods: str) -> Callable[[type[D]], type[D]]:
    """A class decorator: each of ``methods`` of the driver class goes to its engine when the
    engine takes the call and none of the methods it stands for (:data:`REPLACEABLE`) was
    replaced, on the instance or by a subclass."""

    def decorate(cls: type[D]) -> type[D]:
        for name in methods:
            own = getattr(cls, name, None)
            if own is None:
                continue  # not implemented by this driver (yet): nothing to delegate
            setattr(cls, name, _delegate(cls, name, own))
        # What the class resolves every replaceable method to, delegates included: a subclass
        # that resolves one differently replaced it.
        watched = {m for name in methods for m in REPLACEABLE.get(name, ())}
        resolved = {m: getattr(cls, m, None) for m in watched}
        setattr(cls, "__engine_resolved__", resolved)  # noqa: B010
        return cls

    return decorate


def _delegate(owner: type, name: str, own: Callable[..., Any]) -> Callable[..., Any]:
    replaceable = REPLACEABLE.get(name, ())

    @functools.wraps(own)
    def method(self: Any, *args: Any, **kwargs: Any) -> Any:
        engine = engine_of(self)
        if engine is not None and engine.handles(name, args, kwargs) and _untouched(self):
            return getattr(engine, name)(*args, **kwargs)
        return own(self, *args, **kwargs)

    def _untouched(self: Any) -> bool:
        replaced = self.__dict__
        if any(m in replaced for m in replaceable):
            return False
        cls = type(self)
        if cls is owner:
            return True
        resolved = owner.__dict__["__engine_resolved__"]
        return all(getattr(cls, m, None) is resolved[m] for m in replaceable)

    method.__engine_delegate__ = True  # type: ignore[attr-defined]
    return method


def engine_name(driver: Any) -> str:
    """``obstore`` or ``sdk``: what moves this driver's bytes (for messages and tests)."""
    engine = engine_of(driver)
    return "sdk" if engine is None else getattr(engine, "name", type(engine).__name__)
