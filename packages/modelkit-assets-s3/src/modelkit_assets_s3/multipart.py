"""Create-only upload of a large file: a multipart upload completed with ``If-None-Match: *``.

boto3's transfer manager (s3transfer 0.19) refuses ``IfNoneMatch`` in ``ExtraArgs`` and would
not pass it to ``CompleteMultipartUpload`` anyway, so create-only uploads past the multipart
threshold are driven here: parts are streamed from the file by a bounded thread pool (at most
one part per worker is in flight, never the whole file), and the upload becomes visible only
when ``CompleteMultipartUpload`` succeeds, which S3 refuses with 412 if the key exists. On any
failure the upload is aborted so no parts are left behind.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor, wait
from typing import TYPE_CHECKING, Any, Final

from s3transfer.utils import ReadFileChunk

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_s3.type_defs import CompletedPartTypeDef

MiB: Final = 1024 * 1024
#: Files of at least this size are uploaded in parts (the transfer manager's default too).
MULTIPART_THRESHOLD: Final = 8 * MiB
_PART_SIZE: Final = 8 * MiB
_MAX_PARTS: Final = 10_000


def part_size(size: int) -> int:
    """8 MiB parts, larger when needed to stay within S3's 10,000 parts."""
    return max(_PART_SIZE, -(-size // _MAX_PARTS))


def _checksum_algorithm(client: S3Client) -> str | None:
    # As s3transfer does: with botocore's default checksum policy, every part carries a CRC32.
    policy = getattr(client.meta.config, "request_checksum_calculation", None)
    if policy == "when_supported":
        return "CRC32"
    return None


def _upload_part(
    client: S3Client,
    target: dict[str, str],
    number: int,
    file_path: str,
    offset: int,
    length: int,
    checksum: str | None,
    on_part: Callable[[int], None] | None,
) -> CompletedPartTypeDef:
    extra: dict[str, Any] = {"ChecksumAlgorithm": checksum} if checksum else {}
    with ReadFileChunk.from_filename(file_path, offset, length, enable_callbacks=False) as body:
        response = client.upload_part(PartNumber=number, Body=body, **target, **extra)  # type: ignore[arg-type]
    if on_part:
        on_part(length)
    part: dict[str, Any] = {"PartNumber": number, "ETag": response["ETag"]}
    if checksum:
        part[f"Checksum{checksum}"] = response.get(f"Checksum{checksum}")
    return part  # type: ignore[return-value]


def upload_if_absent(
    client: S3Client,
    pool: ThreadPoolExecutor,
    file_path: str,
    size: int,
    bucket: str,
    key: str,
    extra_args: dict[str, str],
    on_part: Callable[[int], None] | None = None,
) -> None:
    """Upload ``file_path`` (``size`` bytes) as ``key`` unless it exists; S3 answers 412 then.
    ``on_part(n)`` hears of each part of ``n`` bytes once S3 has it (each part once: the SDK
    retries a part within its request)."""
    checksum = _checksum_algorithm(client)
    create_extra = {**extra_args, **({"ChecksumAlgorithm": checksum} if checksum else {})}
    upload_id = client.create_multipart_upload(Bucket=bucket, Key=key, **create_extra)["UploadId"]  # type: ignore[arg-type]
    target = {"Bucket": bucket, "Key": key, "UploadId": upload_id}
    step = part_size(size)
    futures: list[Future[CompletedPartTypeDef]] = []
    try:
        for number, offset in enumerate(range(0, size, step), start=1):
            length = min(step, size - offset)
            futures.append(
                pool.submit(
                    _upload_part,
                    client,
                    target,
                    number,
                    file_path,
                    offset,
                    length,
                    checksum,
                    on_part,
                )
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
