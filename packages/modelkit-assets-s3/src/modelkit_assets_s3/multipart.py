"""Create-only upload of a large file: a multipart upload completed with ``If-None-Match: *``,
which goes on from the parts an interrupted upload of the same bytes left in the store.

boto3's transfer manager (s3transfer 0.19) refuses ``IfNoneMatch`` in ``ExtraArgs`` and would
not pass it to ``CompleteMultipartUpload`` anyway, so create-only uploads past the multipart
threshold are driven here: parts are streamed from the file by a bounded thread pool (at most
one part per worker is in flight, never the whole file), and the upload becomes visible only
when ``CompleteMultipartUpload`` succeeds, which S3 refuses with 412 if the key exists.

**Resuming.** A push killed midway leaves its multipart upload open, with the parts S3 has
acknowledged. The next upload of the key lists the uploads in progress for it
(``ListMultipartUploads``), adopts the one with the most parts of the right sizes, and keeps a
part only once the local file's bytes at that part's offset are read and found to hash to what
S3 holds (its CRC32 checksum when the listing gives one, as AWS does; else its ETag, the MD5 of
the part, as moto, SeaweedFS and AWS without KMS give it). Every other part is uploaded again,
so a file that changed since is never completed with stale parts. An upload whose checksum
algorithm differs from this client's is not adopted.

An interrupted upload is kept (that is what a retry resumes from), except when S3 refuses its
completion because the key exists. Once the object is created, the other uploads of the key
are useless (their completion would be refused): they are aborted then, not before, because
one of them may belong to a concurrent push that is still running.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import zlib
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor, wait
from typing import TYPE_CHECKING, Any, Final

import attrs

from .sdk import client_error

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_s3.type_defs import CompletedPartTypeDef

MiB: Final = 1024 * 1024
#: Files of at least this size are uploaded in parts (the transfer manager's default too).
MULTIPART_THRESHOLD: Final = 8 * MiB
_PART_SIZE: Final = 8 * MiB
_MAX_PARTS: Final = 10_000
#: Bytes read at a time when a kept part is checked against the local file.
_VERIFY_CHUNK: Final = MiB
#: Uploads of one key considered for adoption (the newest first).
_CANDIDATES: Final = 4
#: Errors saying the upload being completed is gone or no longer holds our parts (another
#: process completed or aborted it, or overwrote a part).
_LOST_UPLOAD: Final = frozenset({"NoSuchUpload", "InvalidPart", "InvalidPartOrder"})


def part_size(size: int) -> int:
    """8 MiB parts, larger when needed to stay within S3's 10,000 parts."""
    return max(_PART_SIZE, -(-size // _MAX_PARTS))


def _checksum_algorithm(client: S3Client) -> str | None:
    # As s3transfer does: with botocore's default checksum policy, every part carries a CRC32.
    policy = getattr(client.meta.config, "request_checksum_calculation", None)
    if policy == "when_supported":
        return "CRC32"
    return None


@attrs.frozen
class Part:
    """One part of the planned layout of the file."""

    number: int
    offset: int
    length: int


@attrs.frozen
class Resumable:
    """An upload in progress for the key, and the parts S3 says it holds (number: listing)."""

    upload_id: str
    parts: dict[int, dict[str, Any]]


class UploadLostError(Exception):
    """The multipart upload was completed or aborted by someone else meanwhile."""


def plan(size: int) -> list[Part]:
    """The parts of a file of ``size`` bytes: the same layout for the same size, always, so
    that a retry finds its parts where it left them."""
    step = part_size(size)
    return [
        Part(number, offset, min(step, size - offset))
        for number, offset in enumerate(range(0, size, step), start=1)
    ]


def _crc32_b64(value: int) -> str:
    return base64.b64encode(value.to_bytes(4, "big")).decode("ascii")


def part_matches(file_path: str, part: Part, listed: dict[str, Any]) -> str | None:
    """Whether the part S3 lists holds the local bytes of ``part``: their CRC32 (base64, for
    the completion) if so, else None. The local range is read and hashed: a listing is never
    trusted on its size alone."""
    if int(listed.get("Size", -1)) != part.length:
        return None
    remote_crc = listed.get("ChecksumCRC32")
    md5 = hashlib.md5(usedforsecurity=False) if not remote_crc else None
    crc, left = 0, part.length
    with open(file_path, "rb") as f:
        f.seek(part.offset)
        while left > 0:
            chunk = f.read(min(_VERIFY_CHUNK, left))
            if not chunk:
                return None  # the file is shorter than it was: nothing matches
            crc = zlib.crc32(chunk, crc)
            if md5 is not None:
                md5.update(chunk)
            left -= len(chunk)
    local_crc = _crc32_b64(crc)
    if remote_crc:
        return local_crc if remote_crc == local_crc else None
    etag = str(listed.get("ETag", "")).strip('"')
    return local_crc if md5 is not None and etag == md5.hexdigest() else None


def uploads_in_progress(client: S3Client, bucket: str, key: str) -> list[dict[str, Any]]:
    """The multipart uploads open for exactly ``key``, newest first; none when they cannot be
    listed (a policy without ``s3:ListBucketMultipartUploads`` uploads as before)."""
    found: list[dict[str, Any]] = []
    paginator = client.get_paginator("list_multipart_uploads")
    try:
        for page in paginator.paginate(Bucket=bucket, Prefix=key):
            found.extend(dict(u) for u in page.get("Uploads", ()) if u.get("Key") == key)
    except client_error():
        return []
    found.sort(key=lambda u: str(u.get("Initiated", "")), reverse=True)
    return found


def listed_parts(client: S3Client, bucket: str, key: str, upload_id: str) -> dict[int, Any]:
    """``{part number: listing}`` of the parts S3 holds for the upload."""
    parts: dict[int, Any] = {}
    paginator = client.get_paginator("list_parts")
    for page in paginator.paginate(Bucket=bucket, Key=key, UploadId=upload_id):
        for listed in page.get("Parts", ()):
            parts[int(listed["PartNumber"])] = listed
    return parts


def find_resumable(
    client: S3Client,
    bucket: str,
    key: str,
    layout: list[Part],
    checksum: str | None,
    uploads: list[dict[str, Any]],
) -> Resumable | None:
    """Of ``uploads`` (in progress for ``key``), the one worth adopting: the one holding the
    most parts of the planned sizes (their bytes are checked later, part by part), None if
    there is none."""
    sizes = {p.number: p.length for p in layout}
    best: Resumable | None = None
    best_bytes = 0
    for upload in uploads[:_CANDIDATES]:
        if upload.get("ChecksumAlgorithm", checksum) != checksum:
            continue  # its parts carry another checksum: the completion would not match
        try:
            parts = listed_parts(client, bucket, key, upload["UploadId"])
        except client_error():
            continue  # completed or aborted meanwhile
        fitting = {n: p for n, p in parts.items() if sizes.get(n) == int(p.get("Size", -1))}
        held = sum(sizes[n] for n in fitting)
        if held > best_bytes:
            best, best_bytes = Resumable(upload["UploadId"], fitting), held
    return best


def _upload_part(
    client: S3Client,
    target: dict[str, str],
    part: Part,
    file_path: str,
    checksum: str | None,
    listed: dict[str, Any] | None,
    on_part: Callable[[int], None] | None,
) -> CompletedPartTypeDef:
    """Keep the part S3 already holds if it matches the local bytes, else upload it."""
    from s3transfer.utils import ReadFileChunk  # a boto3 client is at work: s3transfer is loaded

    kept_crc = part_matches(file_path, part, listed) if listed is not None else None
    if kept_crc is not None and listed is not None:
        result: dict[str, Any] = {"PartNumber": part.number, "ETag": listed["ETag"]}
        if checksum:
            result[f"Checksum{checksum}"] = kept_crc
    else:
        extra: dict[str, Any] = {"ChecksumAlgorithm": checksum} if checksum else {}
        with ReadFileChunk.from_filename(
            file_path, part.offset, part.length, enable_callbacks=False
        ) as body:
            response = client.upload_part(PartNumber=part.number, Body=body, **target, **extra)  # type: ignore[arg-type]
        result = {"PartNumber": part.number, "ETag": response["ETag"]}
        if checksum:
            result[f"Checksum{checksum}"] = response.get(f"Checksum{checksum}")
    if on_part:
        on_part(part.length)
    return result  # type: ignore[return-value]


def upload_if_absent(
    client: S3Client,
    pool: ThreadPoolExecutor,
    file_path: str,
    size: int,
    bucket: str,
    key: str,
    extra_args: dict[str, str],
    on_part: Callable[[int], None] | None = None,
    resume: bool = True,
) -> None:
    """Upload ``file_path`` (``size`` bytes) as ``key`` unless it exists; S3 answers 412 then.
    With ``resume``, an upload in progress for the key is adopted and its parts that match
    the file are kept (see the module docstring). ``on_part(n)`` hears of each part of ``n``
    bytes once S3 has it (kept parts included; each part once: the SDK retries a part within
    its request). UploadLostError if another process completed or aborted the upload."""
    checksum = _checksum_algorithm(client)
    layout = plan(size)
    others = uploads_in_progress(client, bucket, key) if resume else []
    found = find_resumable(client, bucket, key, layout, checksum, others) if others else None
    if found is None:
        create_extra = {**extra_args, **({"ChecksumAlgorithm": checksum} if checksum else {})}
        created = client.create_multipart_upload(Bucket=bucket, Key=key, **create_extra)  # type: ignore[arg-type]
        found = Resumable(created["UploadId"], {})
    target = {"Bucket": bucket, "Key": key, "UploadId": found.upload_id}
    futures: list[Future[CompletedPartTypeDef]] = []
    try:
        for part in layout:
            futures.append(
                pool.submit(
                    _upload_part,
                    client,
                    target,
                    part,
                    file_path,
                    checksum,
                    found.parts.get(part.number),
                    on_part,
                )
            )
        parts = [future.result() for future in futures]
        client.complete_multipart_upload(
            **target,  # type: ignore[arg-type]
            MultipartUpload={"Parts": parts},
            IfNoneMatch="*",
        )
    except client_error() as exc:
        _stop(futures)
        code = str(exc.response.get("Error", {}).get("Code", ""))
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        if code in {"PreconditionFailed", "ConditionalRequestConflict"} or status == 412:
            with contextlib.suppress(Exception):  # the key exists: these parts are useless
                client.abort_multipart_upload(**target)  # type: ignore[arg-type]
        if code in _LOST_UPLOAD:
            raise UploadLostError(key) from exc
        raise
    except BaseException:
        _stop(futures)  # the upload stays, for the retry to go on from
        raise
    if others:  # else the losers of a race abort their own uploads (412 above)
        abort_others(client, bucket, key, keep=found.upload_id)


def _stop(futures: list[Future[CompletedPartTypeDef]]) -> None:
    """Start no more parts; let those running finish (so none is sent after we return)."""
    for future in futures:
        future.cancel()
    wait(futures)


def abort_others(client: S3Client, bucket: str, key: str, keep: str | None = None) -> None:
    """Abort the uploads in progress for ``key`` (other than ``keep``): once the object exists,
    none of them can complete. Best effort: a failure leaves them to the bucket's lifecycle."""
    for upload in uploads_in_progress(client, bucket, key):
        if upload["UploadId"] != keep:
            with contextlib.suppress(client_error()):
                client.abort_multipart_upload(Bucket=bucket, Key=key, UploadId=upload["UploadId"])
