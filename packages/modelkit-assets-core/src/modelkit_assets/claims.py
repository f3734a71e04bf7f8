"""Who claimed a version, and when a retried push may complete it in the claimer's place.

A push claims its version by creating the version's ``.meta`` (see :mod:`.store`); the claim
records a random token and its owner: host name, process id, and on Linux the boot id and the
process's start time (which tell a live process from a later one that reuses its pid). A push
that is interrupted leaves its claim behind, unpublished.

The rule: an unpublished claim is **taken over** by a push of the same content (same files,
sizes and digests) when its owner is provably gone, that is when it ran on this machine and that
process no longer runs (or the machine has rebooted since), or, for a claim made elsewhere, once
it is older than ``MODELKIT_STORAGE_CLAIM_TIMEOUT_S`` (an hour by default: a push still running
on another machine after that long is joined by the retry, which pushes the same bytes).
Otherwise the version belongs to someone else, and an update moves on to the next version.

Taking over is itself exclusive: the taker creates ``{version}.claim-{n}`` (create-only) next to
the ``.meta``, ``n`` one more than the last such record, holding its own token and owner; of two
retries racing for one orphan, one creates the record and the other moves on. The owner of a
claim is the one named by its last record (or by the ``.meta`` when there is none).

A push of an explicit version (``new``) that finds the claim of the same content goes on with
it at once, whoever holds it (the same bytes, pushed twice), and puts itself on record the same
way: it *joins* the claim. A push that will not publish (its files changed since their hash)
removes the claim only when every other push on record (the ``.meta``'s and each record's) is
provably gone; otherwise one of them goes on with the files as they were hashed.
"""

from __future__ import annotations

import datetime
import functools
import json
import os
import socket
from collections.abc import Mapping
from typing import Any, Final

import attrs

#: Default of MODELKIT_STORAGE_CLAIM_TIMEOUT_S: age after which another machine's claim may be
#: taken over.
DEFAULT_CLAIM_TIMEOUT_S: Final = 3600.0
#: Suffix of the takeover records beside a version's ``.meta``.
TAKEOVER_INFIX: Final = ".claim-"


@functools.cache
def _boot_id() -> str | None:
    try:
        with open("/proc/sys/kernel/random/boot_id", encoding="ascii") as f:
            return f.read().strip()
    except OSError:
        return None


def _start_time(pid: int) -> str | None:
    """The start time of process ``pid`` in clock ticks since boot (Linux), None if unknown."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as f:
            stat = f.read()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[-1].split()
    return fields[19] if len(fields) > 19 else None


def current_owner() -> dict[str, Any]:
    """This process, as a claim records it (worked out once per process: a forked child is a
    new owner)."""
    return dict(_owner_of(os.getpid()))


@functools.lru_cache(maxsize=4)
def _owner_of(pid: int) -> dict[str, Any]:
    owner: dict[str, Any] = {"host": socket.gethostname(), "pid": pid}
    boot, start = _boot_id(), _start_time(pid)
    if boot and start:
        owner["process"] = f"{boot}:{start}"
    return owner


def owner_gone(owner: Mapping[str, Any] | None) -> bool:
    """Whether the process that made a claim has provably stopped: it ran on this machine and
    no longer runs. A claim from another machine (or without an owner) is never provably gone.
    """
    if not owner or owner.get("host") != socket.gethostname():
        return False
    pid = owner.get("pid")
    if not isinstance(pid, int) or pid <= 0:
        return False
    recorded = owner.get("process")
    if isinstance(recorded, str) and ":" in recorded:
        boot, _, start = recorded.rpartition(":")
        if _boot_id() is not None and boot != _boot_id():
            return True  # the machine rebooted since
        now = _start_time(pid)
        return now is None or now != start
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


@attrs.frozen
class Owner:
    """The current owner of an unpublished claim: who, since when, under which token."""

    token: str | None
    owner: Mapping[str, Any] | None
    since: datetime.datetime
    #: The number of the record that names this owner (0: the ``.meta``). Records are
    #: numbered from 1, so for the claim's current owner it is also how many there are (the
    #: next one is ``n + 1``).
    records: int = 0

    def describe(self) -> str:
        owner = self.owner or {}
        who = f"process {owner.get('pid', '?')} on {owner.get('host', 'an unknown host')}"
        return f"{who}, since {self.since.isoformat(timespec='seconds')}"

    def takeover_reason(self, timeout_s: float) -> str | None:
        """Why a push of the same content may take this claim over now, or None."""
        if owner_gone(self.owner):
            return f"its push ({self.describe()}) is no longer running"
        age = (datetime.datetime.now(datetime.timezone.utc) - self.since).total_seconds()
        if age > timeout_s:
            return f"its push ({self.describe()}) has not finished in {age / 60:.0f} minutes"
        return None


def takeover_record(token: str) -> bytes:
    """A takeover record for the claim token ``token``, owned by this process."""
    return json.dumps(
        {
            "claim": token,
            "claimed_by": current_owner(),
            "date": datetime.datetime.now(datetime.timezone.utc).isoformat(),
        },
        sort_keys=True,
    ).encode()


def parse_takeover(data: bytes) -> tuple[str | None, Mapping[str, Any] | None, datetime.datetime]:
    """``(token, owner, date)`` of a takeover record; a record that cannot be read names no
    owner and dates from the epoch, so it can be taken over (it is never trusted)."""
    try:
        raw = json.loads(data)
        date = datetime.datetime.fromisoformat(str(raw["date"]))
        owner = raw.get("claimed_by") if isinstance(raw.get("claimed_by"), dict) else None
        token = raw.get("claim") if isinstance(raw.get("claim"), str) else None
    except (ValueError, KeyError, TypeError):
        return None, None, datetime.datetime.fromtimestamp(0, datetime.timezone.utc)
    if date.tzinfo is None:
        date = date.replace(tzinfo=datetime.timezone.utc)
    return token, owner, date
