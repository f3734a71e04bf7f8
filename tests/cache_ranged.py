"""Ranged reads for the cloud drivers that do not declare them yet: test stand-ins.

The core resumes a large file from its missing byte ranges through ``driver.read_range``
(capability ``ranged_reads``, PLAN.md). The drivers' own implementations come from the "edges"
branch; until a driver declares the capability, the resume tests give it one of these (a few
lines over the SDK's ranged GET each), so that the core's side is proven against every server
now. A driver that declares ``ranged_reads`` keeps its own, and these are no longer used.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

from modelkit_assets import errors
from modelkit_assets.drivers.base import StorageDriver
from modelkit_assets.records import RANGED_READS

MiB = 1024 * 1024

Reader = Callable[[Any, str, int, int], Iterator[bytes]]


def give_ranged_reads(driver: StorageDriver) -> StorageDriver:
    """``driver``, able to read ranges (its class swapped for a subclass with a stand-in
    ``read_range``, unless it declares the capability already)."""
    read = _READERS.get(driver.provider_name)
    if driver.supports(RANGED_READS) or read is None:
        return driver
    cls = type(driver)
    driver.__class__ = type(
        f"Ranged{cls.__name__}",
        (cls,),
        {"read_range": read, "capabilities": cls.capabilities | {RANGED_READS}},
    )
    return driver


def _s3(self: Any, object_name: str, start: int, end: int) -> Iterator[bytes]:
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        response = self.client.get_object(
            Bucket=self.bucket, Key=object_name, Range=f"bytes={start}-{end - 1}"
        )
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
            raise errors.ObjectDoesNotExistError("s3", self.bucket, object_name) from None
        raise
    body = response["Body"]
    try:
        yield from body.iter_chunks(MiB)
    except (BotoCoreError, OSError) as exc:
        raise errors.StorageUnavailableError("s3", f"body broke off: {exc}") from None
    finally:
        body.close()


def _gcs(self: Any, object_name: str, start: int, end: int) -> Iterator[bytes]:
    """One streamed GET with a Range header, through the client's own authorized session."""
    import requests

    client = self.client
    blob = client.bucket(self.bucket).blob(object_name)
    try:
        response = client._http.get(
            blob._get_download_url(client),
            headers={"Range": f"bytes={start}-{end - 1}"},
            stream=True,
            timeout=60,
        )
    except (requests.RequestException, OSError) as exc:
        raise errors.StorageUnavailableError("gcs", f"request failed: {exc}") from None
    with contextlib.closing(response):
        if response.status_code == 404:
            raise errors.ObjectDoesNotExistError("gcs", self.bucket, object_name)
        if response.status_code >= 500:
            raise errors.StorageUnavailableError("gcs", f"HTTP {response.status_code}")
        response.raise_for_status()
        try:
            yield from response.iter_content(MiB)
        except (requests.RequestException, OSError) as exc:
            raise errors.StorageUnavailableError("gcs", f"body broke off: {exc}") from None


def _azure(self: Any, object_name: str, start: int, end: int) -> Iterator[bytes]:
    """1 MiB per request: the SDK reads the first 32 MiB of a download into memory at once,
    and the interface bounds chunks (and so memory) to 1 MiB."""
    from azure.core import exceptions

    blob = self._blob(object_name)
    for offset in range(start, end, MiB):
        try:
            yield blob.download_blob(offset=offset, length=min(MiB, end - offset)).readall()
        except exceptions.ResourceNotFoundError:
            raise errors.ObjectDoesNotExistError("az", self.bucket, object_name) from None
        except (exceptions.ServiceRequestError, exceptions.ServiceResponseError, OSError) as exc:
            raise errors.StorageUnavailableError("az", f"body broke off: {exc}") from None


_READERS: dict[str, Reader] = {"s3": _s3, "gcs": _gcs, "az": _azure}
