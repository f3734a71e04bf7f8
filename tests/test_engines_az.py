"""The obstore engine of the ``az`` driver, on a real Azurite: when it is used, what it leaves
to the SDK, and that a fetch through it never loads the Azure SDK."""

from __future__ import annotations

import datetime
import os
import uuid
from pathlib import Path
from typing import Any

import pytest

from modelkit_assets.engines import ENGINE_ENV, engine_name, obstore_installed
from modelkit_assets.hashing import digest_bytes
from modelkit_assets_az.driver import AzureStorageDriver
from tests.engine_support import sdk_modules_of_a_fetch
from tests.servers import Backend
from tests.servers.azure import ACCOUNT, ACCOUNT_KEY, CONTAINER, Azurite

pytestmark = pytest.mark.skipif(not obstore_installed(), reason="the fast extra is absent")


@pytest.fixture
def prefix() -> str:
    return f"az-engine-{uuid.uuid4().hex[:12]}"


def _driver(connection_string: str, **kwargs: Any) -> AzureStorageDriver:
    return AzureStorageDriver(CONTAINER, connection_string=connection_string, **kwargs)


def test_obstore_moves_the_bytes_unless_the_sdk_must(
    az_backend: Backend, azurite: Azurite, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A connection string with a key is obstore's; a ready client, a subclass's own
    ``build_client``, a development-storage shorthand, a key that is not base64 and the
    ``sdk`` setting keep the SDK, which answers for them as it always has."""
    assert engine_name(_driver(azurite.connection_string)) == "obstore"
    assert engine_name(AzureStorageDriver(CONTAINER, client=azurite.service_client())) == "sdk"

    class Built(AzureStorageDriver):
        @staticmethod
        def build_client(client_configuration: Any) -> Any:
            return AzureStorageDriver.build_client(client_configuration)

    assert engine_name(Built(CONTAINER, connection_string=azurite.connection_string)) == "sdk"
    bad_key = azurite.connection_string.replace(ACCOUNT_KEY, "not*base64!")
    assert engine_name(_driver(bad_key, lazy=True)) == "sdk"
    assert engine_name(_driver("UseDevelopmentStorage=true", lazy=True)) == "sdk"
    monkeypatch.setenv(ENGINE_ENV, "sdk")
    assert engine_name(_driver(azurite.connection_string)) == "sdk"


def test_no_sdk_client_is_built_when_obstore_moves_the_bytes(
    az_backend: Backend, azurite: Azurite, prefix: str, tmp_path: Path
) -> None:
    driver = _driver(azurite.connection_string)
    contents = {f"{prefix}/f{i}": os.urandom(100 * i) for i in range(20)}
    outcomes = dict(driver.create_many([(d, n, "") for n, d in contents.items()], 8))
    assert all(error is None for error in outcomes.values())
    jobs = [(name, str(tmp_path / f"out{i}")) for i, name in enumerate(contents)]
    for index, digest in driver.download_many(jobs, "blake3", 8):
        assert not isinstance(digest, BaseException)
        assert digest == digest_bytes(list(contents.values())[index], "blake3")
    assert sorted(driver.iterate_objects(f"{prefix}/")) == sorted(contents)
    assert driver._service is None  # the SDK's client (and its 0.2 s of imports) never built


def test_a_shared_access_signature_works_through_obstore(
    az_backend: Backend, azurite: Azurite, prefix: str
) -> None:
    from azure.storage.blob import AccountSasPermissions, ResourceTypes, generate_account_sas

    sas = generate_account_sas(
        ACCOUNT,
        ACCOUNT_KEY,
        ResourceTypes(service=True, container=True, object=True),
        AccountSasPermissions(read=True, write=True, list=True, create=True, delete=True),
        expiry=datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(hours=1),
    )
    with_sas = f"BlobEndpoint={azurite.endpoint}/{ACCOUNT};SharedAccessSignature={sas}"
    driver = _driver(with_sas)
    assert engine_name(driver) == "obstore"
    driver.create_bytes(b"signed", f"{prefix}/o")
    assert driver.read_object(f"{prefix}/o")[0] == b"signed"
    assert driver.exists(f"{prefix}/o")


def test_version_tokens_mean_the_same_on_both_engines(
    az_backend: Backend, azurite: Azurite, prefix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A fleet upgrading to the fast extra runs both engines on one store at once: an ETag read
    through one must make (or lose) a compare-and-swap through the other."""
    from modelkit_assets import errors

    fast = _driver(azurite.connection_string)
    monkeypatch.setenv(ENGINE_ENV, "sdk")
    plain = _driver(azurite.connection_string)
    assert (engine_name(fast), engine_name(plain)) == ("obstore", "sdk")
    name = f"{prefix}/.versions"
    plain.write_object(b"v1", name, if_absent=True)
    data, token = fast.read_object(name)
    assert data == b"v1"
    plain.write_object(b"v2", name, if_match=token)
    with pytest.raises(errors.PreconditionFailedError):
        fast.write_object(b"lost", name, if_match=token)
    data, token = plain.read_object(name)
    fast.write_object(b"v3", name, if_match=token)
    assert plain.read_object(name)[0] == b"v3"


def test_a_fetch_through_obstore_never_imports_the_azure_sdk(
    az_backend: Backend, azurite: Azurite, tmp_path: Path, prefix: str
) -> None:
    """azure-storage-blob costs about 0.2 s of a small fetch's process: with obstore moving
    the bytes, a whole fetch (resolve, .meta, files, digests) never loads it."""
    modules = sdk_modules_of_a_fetch(
        dict(az_backend.env), "az", CONTAINER, prefix, tmp_path,
        sdk_prefixes=("azure",), drop_env=("AZURE_",),
    )  # fmt: skip
    assert modules == []
