"""Create-only copies inside the bucket, for incremental updates (``copy_object``).

The source is looked at first (``HeadObject``: its size, its ETag), and every copy request is
pinned to that ETag (``x-amz-copy-source-if-match``), so what is copied is the object that was
measured, and the size returned is the size of the copy. Then:

- up to 5 GiB (S3's limit for one copy), one ``CopyObject`` with ``If-None-Match: *``;
- past it, a multipart upload whose parts are ``UploadPartCopy`` ranges of the source, copied in
  parallel, completed with ``If-None-Match: *`` (and aborted on any failure).

Both carry the driver's upload arguments (SSE-KMS with the configured key), so a copy is
encrypted as an upload would be, whatever the source's encryption.

Stores differ in the conditional copy: AWS and SeaweedFS refuse ``CopyObject`` over an existing
key with 412, moto 5.2.5 ignores ``If-None-Match`` on a copy (it honours it on
``CompleteMultipartUpload``). The target is therefore looked up first too (``HeadObject``),
which makes the copy create-only for sequential writers on every store. Where the condition is
ignored and two writers race between that look-up and the copy, the store's guarantee still
holds: an update copies only into the names of the version whose claim (the create-only
``.meta``) it holds, so the only writer that can race it is a retry of the same push, which
writes the same bytes, and no published version's object is ever a copy's target.
"""

from __future__ import annotations

import contextlib
from concurrent.futures import Future, ThreadPoolExecutor, wait
from typing import TYPE_CHECKING, Any, Final

from .multipart import MiB

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_s3.type_defs import CompletedPartTypeDef

#: Largest source one ``CopyObject`` copies (S3's limit); larger ones are copied in parts.
COPY_LIMIT: int = 5 * 1024 * MiB
#: Bytes per ``UploadPartCopy`` (S3 allows 5 MiB to 5 GiB); more when 10,000 parts are too few.
COPY_PART: int = 512 * MiB
_MAX_PARTS: Final = 10_000


def copy_part_size(size: int) -> int:
    """:data:`COPY_PART`, larger when needed to stay within S3's 10,000 parts."""
    return max(COPY_PART, -(-size // _MAX_PARTS))


def copy_if_absent(
    client: S3Client,
    pool: ThreadPoolExecutor,
    bucket: str,
    source_key: str,
    source_etag: str,
    size: int,
    key: str,
    extra_args: dict[str, str],
) -> None:
    """Copy ``source_key`` (``size`` bytes, ETag ``source_etag``) to ``key`` unless ``key``
    exists (S3 answers 412 then; so it does if the source's ETag changed)."""
    source = {"Bucket": bucket, "Key": source_key}
    if size <= COPY_LIMIT:
        client.copy_object(
            Bucket=bucket,
            Key=key,
            CopySource=source,  # type: ignore[arg-type]
            CopySourceIfMatch=source_etag,
            IfNoneMatch="*",
            **extra_args,  # type: ignore[arg-type]
        )
        return
    _copy_in_parts(client, pool, source, source_etag, size, bucket, key, extra_args)


def _copy_in_parts(
    client: S3Client,
    pool: ThreadPoolExecutor,
    source: dict[str, str],
    source_etag: str,
    size: int,
    bucket: str,
    key: str,
    extra_args: dict[str, str],
) -> None:
    upload_id = client.create_multipart_upload(Bucket=bucket, Key=key, **extra_args)["UploadId"]  # type: ignore[arg-type]
    target = {"Bucket": bucket, "Key": key, "UploadId": upload_id}
    step = copy_part_size(size)
    futures: list[Future[CompletedPartTypeDef]] = []
    try:
        for number, offset in enumerate(range(0, size, step), start=1):
            last = min(offset + step, size) - 1
            futures.append(
                pool.submit(_copy_part, client, target, number, source, source_etag, offset, last)
            )
        parts = [future.result() for future in futures]
        client.complete_multipart_upload(
            **target,  # type: ignore[arg-type]
            MultipartUpload={"Parts": parts},
            IfNoneMatch="*",
        )
    except BaseException:
        for future in futures:
            future.cancel()
        wait(futures)  # parts still running finish before the upload is aborted
        with contextlib.suppress(Exception):
            client.abort_multipart_upload(**target)  # type: ignore[arg-type]
        raise


def _copy_part(
    client: S3Client,
    target: dict[str, str],
    number: int,
    source: dict[str, str],
    source_etag: str,
    first: int,
    last: int,
) -> CompletedPartTypeDef:
    response: Any = client.upload_part_copy(
        PartNumber=number,
        CopySource=source,  # type: ignore[arg-type]
        CopySourceIfMatch=source_etag,
        CopySourceRange=f"bytes={first}-{last}",
        **target,  # type: ignore[arg-type]
    )
    return {"PartNumber": number, "ETag": response["CopyPartResult"]["ETag"]}
