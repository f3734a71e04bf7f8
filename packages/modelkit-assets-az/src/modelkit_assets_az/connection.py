"""The connection string of the ``az`` driver: where it is read from, what it names, and
keeping its key secret (no SDK import: a fetch through obstore never loads the Azure SDK)."""

from __future__ import annotations

import re
from typing import Final

CONNECTION_STRING_ENV: Final = "AZURE_STORAGE_CONNECTION_STRING"

_SECRET_RE: Final = re.compile(r"(AccountKey|SharedAccessSignature|sig)=[^;&\s]+", re.IGNORECASE)


class Secret:
    """A string that never shows in ``repr()``, ``str()`` or tracebacks' locals."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('***')"

    __str__ = __repr__


def redact(text: str) -> str:
    """``text`` with account keys and SAS signatures masked."""
    return _SECRET_RE.sub(r"\1=***", text)


def account_name(connection_string: str) -> str | None:
    """The ``AccountName`` of a connection string (not a secret), if it names one."""
    for field in connection_string.split(";"):
        key, _, value = field.partition("=")
        if key.strip().lower() == "accountname":
            return value.strip() or None
    return None


def fields(connection_string: str) -> dict[str, str]:
    """The ``Key=value`` fields of a connection string, keys in lower case (the SDK reads
    them regardless of case); a value may itself hold ``=`` (a base64 key, a SAS)."""
    found: dict[str, str] = {}
    for field in connection_string.split(";"):
        key, sep, value = field.partition("=")
        if sep and key.strip():
            found[key.strip().lower()] = value.strip()
    return found
