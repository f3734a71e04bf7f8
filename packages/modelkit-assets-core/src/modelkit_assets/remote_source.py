"""Push sources given as URIs (``s3://bucket/key``): copied to a temporary folder first.

Any installed driver that declares a URI scheme can be a source; the URI names one object, or a
prefix whose objects become the files of a directory asset.
"""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
from collections.abc import Iterator
from typing import TYPE_CHECKING, Final

from . import environment, errors
from .parallel import run_parallel
from .paths import check_relative_part, safe_join
from .plugins import get_registry

if TYPE_CHECKING:
    from .drivers.base import StorageDriver

_URI_RE: Final = re.compile(r"^(?P<scheme>[a-z][a-z0-9+.\-]*)://(?P<bucket>[^/]+)/?(?P<key>.*)$")


def parse_uri(text: str) -> tuple[str, str, str] | None:
    """``(scheme, bucket, key)`` for a URI, None for a plain path."""
    match = _URI_RE.match(text)
    if not match:
        return None
    return match["scheme"], match["bucket"], match["key"].strip("/")


@contextlib.contextmanager
def local_copy(asset_path: str, max_workers: int | None = None) -> Iterator[str]:
    """Yield a local path holding ``asset_path``: itself, or a temporary copy of a URI."""
    parsed = parse_uri(asset_path)
    if parsed is None:
        yield asset_path
        return
    scheme, bucket, key = parsed
    registered = get_registry().driver_for_scheme(scheme)
    if registered is None:
        raise errors.ConfigurationError(
            f"no installed storage driver reads {scheme}:// URIs; see `modelkit assets plugins`"
        )
    from .store import make_driver

    with tempfile.TemporaryDirectory(prefix="modelkit-assets-source-") as tmp:
        try:
            driver = make_driver(
                registered.record.name, bucket, None, environment.storage_timeout_s()
            )
            path = _copy(driver, asset_path, bucket, key, tmp, max_workers)
        except errors.BucketDoesNotExistError:
            raise errors.LocalAssetDoesNotExistError(
                asset_path, f"the source bucket {bucket!r} does not exist"
            ) from None
        yield path


def _copy(
    driver: StorageDriver, asset_path: str, bucket: str, key: str, tmp: str, max_workers: int | None
) -> str:
    """A file or folder of ``tmp`` holding the object or the objects under prefix ``key``."""
    if key and driver.exists(key):
        target = os.path.join(tmp, key.rsplit("/", 1)[-1])
        driver.download_object(key, target)
        return target
    prefix = f"{key}/" if key else ""
    names = list(driver.iterate_objects(prefix))
    if not names:
        raise errors.LocalAssetDoesNotExistError(asset_path, "no object has that name or prefix")
    root = os.path.join(tmp, key.rsplit("/", 1)[-1] or bucket)

    def fetch(name: str) -> None:
        part = name[len(prefix) :]
        check_relative_part(part, asset_path)
        target = safe_join(root, part, asset_path)
        os.makedirs(os.path.dirname(target), exist_ok=True)
        driver.download_object(name, target)

    workers = max_workers or environment.storage_max_workers(driver.default_max_workers)
    run_parallel(fetch, names, workers)
    return root
