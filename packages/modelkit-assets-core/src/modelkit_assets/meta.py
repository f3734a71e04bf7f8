"""The JSON objects of the store: ``{version}.meta`` and ``{name}.versions``.

Layout and keys are modelkit's (``push_date``, ``is_directory``, ``contents``); we add ``size``
and the digest (``blake3``, or ``sha256`` in metas written by earlier versions) for file assets,
and ``files`` (per-part size and digest) for directory assets. Metas without the additions, from
modelkit stores, still read. Everything read from a store is checked
before it is used: a part that would leave the asset folder makes the meta corrupt.
"""

from __future__ import annotations

import datetime
import json
from collections.abc import Mapping
from typing import Any, Final

import attrs

from . import errors
from .paths import check_relative_part
from .versioning.base import AssetsVersioningSystem

#: Digest algorithms a meta may record, in order of preference (see :mod:`.hashing`).
DIGEST_KEYS: Final = ("blake3", "sha256")
#: The algorithm new pushes record.
DEFAULT_ALGORITHM: Final = DIGEST_KEYS[0]


@attrs.frozen
class FileDigest:
    """Size and content digest of one file, with the algorithm that made it."""

    size: int
    hexdigest: str
    algorithm: str = DEFAULT_ALGORITHM

    def to_dict(self) -> dict[str, Any]:
        return {"size": self.size, self.algorithm: self.hexdigest}

    def __str__(self) -> str:
        return f"{self.size} bytes, {self.algorithm} {self.hexdigest[:12]}..."


@attrs.frozen
class AssetMeta:
    """What a version's ``.meta`` says about it."""

    push_date: datetime.datetime
    is_directory: bool
    contents: tuple[str, ...] = ()
    #: Digest per part ("" for a file asset); empty for metas written by modelkit.
    digests: Mapping[str, FileDigest] = attrs.field(factory=dict)
    extra: Mapping[str, Any] = attrs.field(factory=dict)
    #: A random token of the push that claimed the version: an update that picks its own
    #: version recognises its own claim by it (push dates of two processes can coincide).
    claim: str | None = None
    #: Which process claimed the version (see :mod:`modelkit_assets.claims`): a retry on the
    #: same machine can tell that it is gone, and complete the version in its place.
    claimed_by: Mapping[str, Any] | None = None

    @property
    def size(self) -> int | None:
        """Total bytes, when the meta records it."""
        if not self.digests:
            return None
        return sum(d.size for d in self.digests.values())

    def same_content(self, other: AssetMeta) -> bool:
        """Whether two metas describe the same bytes (push dates aside)."""
        return (
            bool(self.digests)
            and self.is_directory == other.is_directory
            and self.contents == other.contents
            and dict(self.digests) == dict(other.digests)
        )

    def to_dict(self) -> dict[str, Any]:
        """The JSON-ready dictionary, in modelkit's shape plus our additions."""
        data: dict[str, Any] = dict(self.extra)
        data["push_date"] = self.push_date.isoformat()
        if self.claim is not None:
            data["claim"] = self.claim
        if self.claimed_by is not None:
            data["claimed_by"] = dict(self.claimed_by)
        data["is_directory"] = self.is_directory
        if self.is_directory:
            data["contents"] = list(self.contents)
            if self.digests:
                data["files"] = {part: d.to_dict() for part, d in self.digests.items()}
        elif "" in self.digests:
            data.update(self.digests[""].to_dict())
        if self.is_directory and self.digests:
            data["size"] = self.size
        return data

    def to_json(self) -> bytes:
        return json.dumps(self.to_dict(), sort_keys=True).encode()

    def to_public(self) -> dict[str, Any]:
        """The dictionary users get from the API: like modelkit, ``push_date`` is a datetime."""
        data = self.to_dict()
        data["push_date"] = self.push_date
        data.pop("claim", None)  # bookkeeping of the push protocol, not about the asset
        data.pop("claimed_by", None)
        return data


def _load_json(data: bytes, object_name: str) -> dict[str, Any]:
    try:
        loaded = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise errors.CorruptStoreError(object_name, f"not JSON ({exc})") from None
    if not isinstance(loaded, dict):
        raise errors.CorruptStoreError(object_name, "not a JSON object")
    return loaded


def _digest(value: Any, object_name: str) -> FileDigest:
    """The digest of one file: its size and the first algorithm of DIGEST_KEYS it records."""
    if isinstance(value, dict) and isinstance(value.get("size"), int):
        for algorithm in DIGEST_KEYS:
            if isinstance(value.get(algorithm), str):
                return FileDigest(value["size"], value[algorithm], algorithm)
    raise errors.CorruptStoreError(object_name, "malformed file digest")


def parse_meta(data: bytes, object_name: str) -> AssetMeta:
    """Read and check a ``.meta``; raise CorruptStoreError or UnsafePathError."""
    raw = _load_json(data, object_name)
    try:
        push_date = datetime.datetime.fromisoformat(str(raw["push_date"]).replace("Z", "+00:00"))
    except (KeyError, ValueError):
        raise errors.CorruptStoreError(object_name, "missing or invalid push_date") from None
    is_directory = raw.get("is_directory")
    if not isinstance(is_directory, bool):
        raise errors.CorruptStoreError(object_name, "missing or invalid is_directory")
    contents: tuple[str, ...] = ()
    digests: dict[str, FileDigest] = {}
    if is_directory:
        parts = raw.get("contents")
        if not isinstance(parts, list) or not all(isinstance(p, str) for p in parts):
            raise errors.CorruptStoreError(object_name, "missing or invalid contents")
        for part in parts:
            try:
                check_relative_part(part, object_name)
            except errors.UnsafePathError:
                raise errors.CorruptStoreError(
                    object_name,
                    f"unsafe path {part!r} in its contents (no '..', absolute paths or drive "
                    "letters): nothing was written",
                ) from None
        contents = tuple(parts)
        files = raw.get("files")
        if files is not None:
            if not isinstance(files, dict) or set(files) != set(contents):
                raise errors.CorruptStoreError(object_name, "files do not match contents")
            digests = {part: _digest(files[part], object_name) for part in contents}
    elif "size" in raw or any(key in raw for key in DIGEST_KEYS):
        digests = {"": _digest(raw, object_name)}
    known = {
        "push_date",
        "is_directory",
        "contents",
        "files",
        "size",
        "claim",
        "claimed_by",
        *DIGEST_KEYS,
    }
    extra = {k: v for k, v in raw.items() if k not in known}
    claim = raw.get("claim") if isinstance(raw.get("claim"), str) else None
    owner = raw.get("claimed_by") if isinstance(raw.get("claimed_by"), dict) else None
    return AssetMeta(push_date, is_directory, contents, digests, extra, claim, owner)


@attrs.frozen
class VersionsIndex:
    """What a ``.versions`` object says: its versions (as stored), the versioning system it
    records (None in indexes written by modelkit, or by earlier versions of this project),
    and any other keys, which a rewrite keeps."""

    versions: tuple[str, ...]
    system: str | None = None
    extra: Mapping[str, Any] = attrs.field(factory=dict)


def parse_index(data: bytes, object_name: str) -> VersionsIndex:
    """Read a ``.versions`` index; its versions are checked against its system by the store."""
    raw = _load_json(data, object_name)
    versions = raw.get("versions")
    if not isinstance(versions, list) or not all(isinstance(v, str) for v in versions):
        raise errors.CorruptStoreError(object_name, "'versions' is not a list of strings")
    system = raw.get("versioning")
    if system is not None and not isinstance(system, str):
        raise errors.CorruptStoreError(object_name, "'versioning' is not a string")
    extra = {k: v for k, v in raw.items() if k not in ("versions", "versioning")}
    return VersionsIndex(tuple(versions), system, extra)


def check_versions(
    versions: tuple[str, ...] | list[str], object_name: str, versioning: AssetsVersioningSystem
) -> list[str]:
    """The versions latest first, each checked to be a complete version of ``versioning``."""
    bad = [
        v
        for v in versions
        if not versioning.is_version_valid(v) or not versioning.is_version_complete(v)
    ]
    if bad:
        raise errors.CorruptStoreError(
            object_name, f"version {bad[0]!r} is not a version of the {versioning.name} system"
        )
    return versioning.sort_versions(versions)


def dump_index(versions: list[str], system: str, extra: Mapping[str, Any] | None = None) -> bytes:
    """The ``.versions`` JSON as modelkit writes it, with the asset's system recorded (modelkit
    ignores the key) and the index's other keys kept."""
    return json.dumps({**(extra or {}), "versions": versions, "versioning": system}).encode()
