"""When a driver's SDK client is the user's, and the engine steps aside for it."""

from __future__ import annotations

from typing import Any


def users_own_client(driver: Any, base: type, *, client_given: bool) -> bool:
    """Whether ``driver`` (an instance of ``base`` or of a subclass) talks through a client the
    user made: a ready ``client=``, or a subclass's own ``build_client`` (modelkit's hook).
    That client's settings (credentials, endpoint, retries) then carry everything, and the
    engine, which could not apply them, leaves the driver to its SDK."""
    if client_given:
        return True
    return getattr(type(driver), "build_client", None) is not getattr(base, "build_client", None)
