"""modelkit's drivers: module paths, settings objects, keywords, ``client``, pickling, the local
driver's placement rules, and subclasses that override ``upload_object`` / ``download_object``.

Names are imported the modelkit way (``modelkit_assets.drivers.s3`` for
``modelkit.assets.drivers.s3``); the cloud drivers run against the suite's real servers.
"""

from __future__ import annotations

import os
import pickle
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from modelkit_assets import errors
from modelkit_assets.drivers.abc import StorageDriver, StorageDriverSettings
from modelkit_assets.drivers.azure import AzureStorageDriver, AzureStorageDriverSettings
from modelkit_assets.drivers.gcs import GCSStorageDriver, GCSStorageDriverSettings
from modelkit_assets.drivers.local import LocalStorageDriver, LocalStorageDriverSettings
from modelkit_assets.drivers.s3 import S3StorageDriver, S3StorageDriverSettings
from modelkit_assets.remote import StorageProvider
from tests.servers.azure import CONTAINER, Azurite
from tests.servers.gcs import BUCKET as GCS_BUCKET
from tests.servers.gcs import GCSServer
from tests.servers.s3 import ACCESS_KEY, BUCKET, REGION, SECRET_KEY, S3Server


@pytest.fixture
def bucket(tmp_path: Path) -> Path:
    path = tmp_path / "bucket"
    path.mkdir()
    return path


@pytest.fixture
def gcs(gcs_backend: Any, gcs_server: GCSServer, monkeypatch: pytest.MonkeyPatch) -> GCSServer:
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", gcs_server.url)
    return gcs_server


def _moto_settings(moto_server: S3Server) -> dict[str, str]:
    """modelkit's S3 field names, pointing at the moto server."""
    return {
        "bucket": BUCKET,
        "s3_endpoint": moto_server.endpoint,
        "aws_access_key_id": ACCESS_KEY,
        "aws_secret_access_key": SECRET_KEY,
        "aws_default_region": REGION,
    }


def _name() -> str:
    return f"compat-drivers/{uuid.uuid4().hex[:12]}"


def _round_trip(driver: StorageDriver, tmp_path: Path, data: bytes = b"payload") -> bytes:
    """Upload ``data``, download it again: what came back."""
    source, target = tmp_path / "up", tmp_path / "down"
    source.write_bytes(data)
    name = _name()
    driver.upload_object(str(source), name)
    assert driver.exists(name)
    driver.download_object(name, str(target))
    return target.read_bytes()


# -- 1. module paths and settings objects ------------------------------------------------------


def test_the_modelkit_module_paths_hold_the_driver_names() -> None:
    import modelkit_assets.drivers.abc as abc_module
    import modelkit_assets_az
    import modelkit_assets_gcs
    import modelkit_assets_s3
    from modelkit_assets.drivers.base import StorageDriver as Base

    assert abc_module.StorageDriver is StorageDriver is Base
    assert S3StorageDriver is modelkit_assets_s3.S3StorageDriver
    assert GCSStorageDriver is modelkit_assets_gcs.GCSStorageDriver
    assert AzureStorageDriver is modelkit_assets_az.AzureStorageDriver
    for settings_class in (
        LocalStorageDriverSettings,
        S3StorageDriverSettings,
        GCSStorageDriverSettings,
        AzureStorageDriverSettings,
    ):
        assert issubclass(settings_class, StorageDriverSettings)


def test_the_module_aliases_load_no_sdk_until_a_driver_is_used() -> None:
    import subprocess
    import sys

    code = (
        "import sys, modelkit_assets.drivers.s3, modelkit_assets.drivers.gcs, "
        "modelkit_assets.drivers.azure\n"
        "from modelkit_assets.drivers.s3 import S3StorageDriverSettings\n"
        "loaded = [m for m in ('boto3', 'google.cloud.storage', 'azure.storage.blob') "
        "if m in sys.modules]\n"
        "assert not loaded, loaded"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_a_missing_backend_says_which_distribution_to_install(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import importlib.util
    import sys

    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: None if name == "modelkit_assets_s3" else real_find_spec(name, *a),
    )
    monkeypatch.delitem(sys.modules, "modelkit_assets.drivers.s3")
    with pytest.raises(ModuleNotFoundError, match=r"pip install modelkit-assets-s3"):
        import modelkit_assets.drivers.s3  # noqa: F401


def test_settings_fields_default_to_the_environment_as_in_modelkit(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("MODELKIT_STORAGE_BUCKET", "from-env")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-3")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "very-secret")
    monkeypatch.setenv("MODELKIT_LAZY_DRIVER", "true")
    settings = S3StorageDriverSettings(s3_endpoint="http://127.0.0.1:9")
    assert (settings.bucket, settings.aws_default_region, settings.lazy_driver) == (
        "from-env",
        "eu-west-3",
        True,
    )
    assert "very-secret" not in repr(settings)
    # modelkit's aliases (the variables' names) are field names too
    assert S3StorageDriverSettings(AWS_DEFAULT_REGION="x").aws_default_region == "x"
    monkeypatch.delenv("MODELKIT_STORAGE_BUCKET")
    with pytest.raises(errors.ConfigurationError, match="bucket"):
        StorageDriverSettings()


def test_the_local_driver_is_built_from_modelkit_settings(bucket: Path) -> None:
    for driver in (
        LocalStorageDriver({"bucket": str(bucket)}),
        LocalStorageDriver(settings={"bucket": str(bucket)}),
        LocalStorageDriver(LocalStorageDriverSettings(bucket=str(bucket))),
        LocalStorageDriver(settings=LocalStorageDriverSettings(bucket=str(bucket))),
        LocalStorageDriver(str(bucket)),
    ):
        assert driver.bucket == str(bucket)


def test_the_s3_driver_is_built_from_modelkit_settings(
    moto_server: S3Server, tmp_path: Path
) -> None:
    settings = _moto_settings(moto_server)
    for driver in (
        S3StorageDriver(settings),
        S3StorageDriver(settings=S3StorageDriverSettings(**settings)),
        S3StorageDriver(settings["bucket"], **{k: v for k, v in settings.items() if k != "bucket"}),
    ):
        assert driver.settings.endpoint_url == moto_server.endpoint
        assert driver.settings.region_name == REGION
        assert _round_trip(driver, tmp_path) == b"payload"
    lazy = S3StorageDriver({**settings, "lazy_driver": True})
    assert lazy._client is None


def test_the_gcs_driver_is_built_from_modelkit_settings(gcs: GCSServer, tmp_path: Path) -> None:
    for driver in (
        GCSStorageDriver({"bucket": GCS_BUCKET}),
        GCSStorageDriver(settings=GCSStorageDriverSettings(bucket=GCS_BUCKET)),
    ):
        assert _round_trip(driver, tmp_path) == b"payload"
    with pytest.raises(errors.ConfigurationError, match=r"no-such\.json"):
        GCSStorageDriver({"bucket": GCS_BUCKET, "service_account_path": "/no-such.json"})


def test_the_azure_driver_is_built_from_modelkit_settings(
    az_backend: Any, azurite: Azurite, tmp_path: Path
) -> None:
    settings = {"bucket": CONTAINER, "connection_string": azurite.connection_string}
    for driver in (
        AzureStorageDriver(settings),
        AzureStorageDriver(settings=AzureStorageDriverSettings(**settings)),
        AzureStorageDriver(None, azurite.service_client(), settings={"bucket": CONTAINER}),
    ):
        assert _round_trip(driver, tmp_path) == b"payload"
    assert "AccountKey" not in repr(AzureStorageDriverSettings(**settings))


def test_the_azure_settings_know_every_transfer_keyword() -> None:
    import attrs

    from modelkit_assets_az.client import AzureSettings

    fields = {field.name for field in attrs.fields(AzureSettings)}
    assert set(AzureStorageDriverSettings.driver_options) == fields


# -- 2. StorageProvider keywords -----------------------------------------------------------------


def test_the_provider_takes_modelkits_s3_keywords(moto_server: S3Server, tmp_path: Path) -> None:
    settings = _moto_settings(moto_server)
    store = StorageProvider(provider="s3", prefix=_name(), lazy_driver=True, **settings)
    assert isinstance(store.driver, S3StorageDriver)
    assert store.driver._client is None
    assert store.driver.settings.region_name == REGION
    source = tmp_path / "f.txt"
    source.write_text("x")
    store.new(str(source), "asset")
    assert store.get_versions_info("asset") == ["0.0"]


def test_the_provider_takes_modelkits_gcs_and_azure_keywords(
    gcs: GCSServer, az_backend: Any, azurite: Azurite
) -> None:
    with pytest.raises(errors.ConfigurationError, match=r"no-such\.json"):
        StorageProvider(provider="gcs", bucket=GCS_BUCKET, service_account_path="/no-such.json")
    store = StorageProvider(
        provider="az", bucket=CONTAINER, connection_string=azurite.connection_string
    )
    assert store.driver.exists(f"{_name()}/absent") is False


@pytest.mark.parametrize("provider", ["local", "s3", "gcs", "az"])
def test_unknown_keywords_are_refused_in_one_line(
    provider: str, bucket: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AZURE_STORAGE_CONNECTION_STRING", "AccountName=a;AccountKey=a2V5")
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", "http://127.0.0.1:9")
    with pytest.raises(errors.UnknownSettingError) as caught:
        StorageProvider(
            provider=provider, bucket=str(bucket), lazy_driver=True, aws_regoin="x", colour=1
        )
    message = str(caught.value)
    assert "\n" not in message
    assert "aws_regoin" in message
    assert "colour" in message
    assert isinstance(caught.value, TypeError)  # as an unknown argument is


def test_one_setting_under_two_names_is_refused(bucket: Path) -> None:
    with pytest.raises(errors.ConfigurationError, match="region_name"):
        S3StorageDriver("b", lazy=True, aws_default_region="x", region_name="y")


# -- 3. driver.client, build_client -----------------------------------------------------------


def _cloud_drivers(
    moto_server: S3Server, azurite: Azurite, lazy: bool
) -> Iterator[tuple[StorageDriver, type]]:
    """One driver of each cloud kind, built modelkit's way, with the SDK client class it
    should expose (GCS reaches the emulator through STORAGE_EMULATOR_HOST)."""
    from azure.storage.blob import BlobServiceClient
    from google.cloud import storage

    yield S3StorageDriver({**_moto_settings(moto_server), "lazy_driver": lazy}), object
    yield GCSStorageDriver({"bucket": GCS_BUCKET, "lazy_driver": lazy}), storage.Client
    settings = {"bucket": CONTAINER, "connection_string": azurite.connection_string}
    yield AzureStorageDriver({**settings, "lazy_driver": lazy}), BlobServiceClient


@pytest.mark.parametrize("engine_name", ["sdk", "obstore"])
@pytest.mark.parametrize("lazy", [False, True])
def test_every_cloud_driver_has_a_client_built_on_first_use_when_lazy(
    moto_server: S3Server,
    gcs: GCSServer,
    az_backend: Any,
    azurite: Azurite,
    lazy: bool,
    engine_name: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A driver that is not lazy builds its SDK client at once, as modelkit's do; but with the
    obstore engine moving its bytes, the S3, Azure and GCS drivers leave their SDK client to
    first use (a fetch then loads no SDK client at all: a deliberate difference)."""
    monkeypatch.setenv("MODELKIT_STORAGE_ENGINE", engine_name)
    for driver, client_class in _cloud_drivers(moto_server, azurite, lazy):
        built = "_service" if isinstance(driver, AzureStorageDriver) else "_client"
        engine_moves_bytes = (
            isinstance(driver, S3StorageDriver | AzureStorageDriver | GCSStorageDriver)
            and engine_name == "obstore"
        )
        assert (getattr(driver, built) is None) is (lazy or engine_moves_bytes)
        client = driver.client  # type: ignore[attr-defined]
        assert isinstance(client, client_class)
        assert driver.client is client  # type: ignore[attr-defined]  # built once
        assert not driver.exists(f"{_name()}/absent")
        rebuilt = type(driver).build_client(driver.client_configuration)  # type: ignore[attr-defined]
        assert type(rebuilt).__name__ == type(client).__name__  # boto3 makes a class per session


def test_the_s3_client_is_boto3s_and_its_configuration_modelkits(moto_server: S3Server) -> None:
    driver = S3StorageDriver(_moto_settings(moto_server))
    configuration = driver.client_configuration
    for key in ("endpoint_url", "aws_access_key_id", "aws_secret_access_key", "region_name"):
        assert key in configuration
    assert SECRET_KEY not in repr(configuration)
    assert driver.client.meta.service_model.service_name == "s3"
    assert driver.client.meta.endpoint_url == moto_server.endpoint
    assert (
        S3StorageDriver.build_client(
            {"endpoint_url": moto_server.endpoint, "region_name": REGION}
        ).meta.endpoint_url
        == moto_server.endpoint
    )


def test_a_subclass_build_client_builds_every_client(
    moto_server: S3Server, gcs: GCSServer, az_backend: Any, azurite: Azurite
) -> None:
    built: list[str] = []
    for driver, _ in _cloud_drivers(moto_server, azurite, lazy=True):
        counting = pickle_copy(driver, _counting_clients(type(driver), built))
        assert not counting.exists(f"{_name()}/absent")
    assert built == ["S3StorageDriver", "GCSStorageDriver", "AzureStorageDriver"]


def _counting_clients(base: type, built: list[str]) -> type:
    """A subclass of ``base`` whose build_client records each client it builds."""

    class Counting(base):  # type: ignore[valid-type, misc]
        @staticmethod
        def build_client(client_configuration: Any) -> Any:
            built.append(base.__name__)
            return base.build_client(client_configuration)  # type: ignore[attr-defined]

    return Counting


def pickle_copy(driver: StorageDriver, cls: type) -> Any:
    """``driver``'s state in an instance of ``cls`` (a subclass), its client not built."""
    copy = cls.__new__(cls)
    copy.__setstate__(driver.__getstate__())
    return copy


# -- 4. pickling ---------------------------------------------------------------------------------


@pytest.fixture
def any_driver(
    request: pytest.FixtureRequest, bucket: Path, moto_server: S3Server
) -> StorageDriver:
    """A driver of each kind, its client built (and used) before it is pickled."""
    kind = request.param
    driver: StorageDriver
    if kind == "local":
        driver = LocalStorageDriver({"bucket": str(bucket)})
    elif kind == "s3":
        driver = S3StorageDriver(_moto_settings(moto_server))
    elif kind == "gcs":
        request.getfixturevalue("gcs")
        driver = GCSStorageDriver({"bucket": GCS_BUCKET})
    else:
        request.getfixturevalue("az_backend")
        azurite: Azurite = request.getfixturevalue("azurite")
        driver = AzureStorageDriver(
            {"bucket": CONTAINER, "connection_string": azurite.connection_string}
        )
    assert not driver.exists(f"{_name()}/absent")
    return driver


@pytest.mark.parametrize("any_driver", ["local", "s3", "gcs", "az"], indirect=True)
def test_drivers_pickle_and_work_once_unpickled(any_driver: StorageDriver, tmp_path: Path) -> None:
    source, target = tmp_path / "up", tmp_path / "down"
    source.write_bytes(b"before pickling")
    name = _name()
    any_driver.upload_object(str(source), name)
    copy = pickle.loads(pickle.dumps(any_driver))
    assert type(copy) is type(any_driver)
    assert copy.bucket == any_driver.bucket
    copy.download_object(name, str(target))
    assert target.read_bytes() == b"before pickling"
    assert _round_trip(copy, tmp_path, b"after pickling") == b"after pickling"
    assert list(copy.iterate_objects(name)) == [name]
    if not isinstance(copy, LocalStorageDriver):
        assert copy.client is not any_driver.client  # type: ignore[attr-defined]  # its own


def test_a_provider_and_a_manager_pickle_and_fetch(
    backend: Any, store_env: Any, tmp_path: Path
) -> None:
    from modelkit_assets.manager import AssetsManager

    source = tmp_path / "folder"
    (source / "sub").mkdir(parents=True)
    (source / "a.txt").write_text("a")
    (source / "sub" / "b.txt").write_text("b")
    store = StorageProvider()
    store.new(str(source), "pickled/asset")
    store_copy = pickle.loads(pickle.dumps(store))
    assert store_copy.get_versions_info("pickled/asset") == ["0.0"]
    manager = AssetsManager(storage_provider=store_copy)
    manager_copy = pickle.loads(pickle.dumps(manager))
    info = manager_copy.fetch_asset("pickled/asset:0.0", return_info=True)
    assert info["from_cache"] is False
    assert (Path(info["path"]) / "sub" / "b.txt").read_text() == "b"
    # the environment's manager (its provider built on first use) pickles too
    fresh = pickle.loads(pickle.dumps(AssetsManager()))
    assert fresh.fetch_asset("pickled/asset", return_info=True)["from_cache"] is True
    store_copy.update(str(source), "pickled/asset", "0.1")
    assert store.get_versions_info("pickled/asset") == ["0.1", "0.0"]


# -- 5. the local driver: a folder and an object of one name ------------------------------------


def test_uploading_over_a_folder_replaces_it_as_modelkit_does(bucket: Path, tmp_path: Path) -> None:
    driver = LocalStorageDriver({"bucket": str(bucket)})
    source = tmp_path / "f"
    source.write_bytes(b"new")
    (bucket / "a" / "b").mkdir(parents=True)
    (bucket / "a" / "b" / "c").write_bytes(b"old")
    driver.upload_object(str(source), "a/b")
    assert (bucket / "a" / "b").read_bytes() == b"new"
    assert list(driver.iterate_objects("a/")) == ["a/b"]


def test_uploading_under_an_object_replaces_it_as_modelkit_does(
    bucket: Path, tmp_path: Path
) -> None:
    driver = LocalStorageDriver({"bucket": str(bucket)})
    source = tmp_path / "f"
    source.write_bytes(b"new")
    (bucket / "a").mkdir()
    (bucket / "a" / "b").write_bytes(b"old")
    driver.upload_object(str(source), "a/b/c")
    assert (bucket / "a" / "b" / "c").read_bytes() == b"new"
    (bucket / "x").write_bytes(b"old")  # deeper: modelkit fails there, the object wins here
    driver.upload_object(str(source), "x/y/z")
    assert list(driver.iterate_objects("x")) == ["x/y/z"]


@pytest.mark.parametrize("layout", ["folder at the name", "object at a folder"])
def test_create_only_writes_in_the_way_of_a_folder_say_so(
    bucket: Path, tmp_path: Path, layout: str
) -> None:
    """A create-only write (a push) never deletes: it says what is in the way, in one line."""
    driver = LocalStorageDriver({"bucket": str(bucket)})
    (bucket / "a").mkdir()
    if layout == "folder at the name":
        (bucket / "a" / "b").mkdir()
        (bucket / "a" / "b" / "c").write_bytes(b"old")
        name, kept = "a/b", bucket / "a" / "b" / "c"
    else:
        (bucket / "a" / "b").write_bytes(b"old")
        name, kept = "a/b/c", bucket / "a" / "b"
    source = tmp_path / "f"
    source.write_bytes(b"new")
    attempts = [
        lambda: driver.create_object(str(source), name),
        lambda: driver.create_bytes(b"new", name),
        lambda: driver.write_object(b"new", name, if_absent=True),
    ]
    for attempt in attempts:
        with pytest.raises(errors.StorageDriverError, match="a/b and a/b/c") as caught:
            attempt()
        assert not isinstance(caught.value, errors.ObjectAlreadyExistsError)
        assert "\n" not in str(caught.value)
    assert kept.read_bytes() == b"old"
    assert not driver.exists(name)


# -- 6. subclasses that override upload_object / download_object --------------------------------

_KEY = 0x5A
_LARGE = 9 * 1024 * 1024  # past the sizes a push stages, sends in parts or reads in ranges


def _scramble(data: bytes) -> bytes:
    return bytes(b ^ _KEY for b in data)


def _scrambling(base: type[StorageDriver], calls: dict[str, list[str]]) -> type[StorageDriver]:
    """modelkit's way to encrypt a store: a subclass whose upload_object scrambles the bytes
    it stores and whose download_object unscrambles them, counting its calls."""

    class Scrambling(base):  # type: ignore[valid-type, misc]
        def upload_object(self, file_path: str, object_name: str) -> None:
            calls["upload"].append(object_name)
            scrambled = f"{file_path}.scrambled-{uuid.uuid4().hex}"
            Path(scrambled).write_bytes(_scramble(Path(file_path).read_bytes()))
            try:
                super().upload_object(scrambled, object_name)
            finally:
                os.unlink(scrambled)

        def download_object(self, object_name: str, destination_path: str) -> None:
            calls["download"].append(object_name)
            super().download_object(object_name, destination_path)
            target = Path(destination_path)
            target.write_bytes(_scramble(target.read_bytes()))

    return Scrambling


def _register(name: str, driver_class: type[StorageDriver]) -> None:
    from modelkit_assets.plugins import Registered, Source, get_registry
    from modelkit_assets.records import StorageDriverPlugin

    record = StorageDriverPlugin(name=name, driver=driver_class)
    get_registry().drivers[name] = Registered(record, Source.named("modelkit-assets-core"))


@pytest.mark.parametrize("kind", ["local", "s3"])
def test_an_overridden_upload_and_download_object_carry_every_push_and_fetch(
    kind: str, bucket: Path, tmp_path: Path, moto_server: S3Server
) -> None:
    from modelkit_assets.manager import AssetsManager

    base = LocalStorageDriver if kind == "local" else S3StorageDriver
    calls: dict[str, list[str]] = {"upload": [], "download": []}
    _register("scrambling", _scrambling(base, calls))
    settings: dict[str, Any] = (
        {"bucket": str(bucket)} if kind == "local" else _moto_settings(moto_server)
    )
    prefix = _name()
    store = StorageProvider(provider="scrambling", prefix=prefix, **settings)
    plain = StorageProvider(provider=kind, prefix=prefix, **settings)

    source = tmp_path / "folder"
    (source / "sub").mkdir(parents=True)
    files = {
        "small.txt": b"small file",
        "sub/other.txt": b"another small file",
        "large.bin": bytes(range(256)) * (_LARGE // 256),
    }
    for part, data in files.items():
        (source / part).write_bytes(data)
    store.new(str(source), "secret/asset")
    changed = tmp_path / "changed.txt"  # new bytes: an unchanged file would be copied instead
    changed.write_bytes(b"a changed small file")
    store.update(str(changed), "secret/asset", "0.1")

    objects = {part: f"{prefix}/secret/asset/0.0/{part}" for part in files}
    assert sorted(calls["upload"]) == sorted([*objects.values(), f"{prefix}/secret/asset/0.1"])
    stored = tmp_path / "stored"
    for part, object_name in objects.items():  # what the store holds is scrambled
        plain.driver.download_object(object_name, str(stored))
        assert stored.read_bytes() == _scramble(files[part])
    # the claim and the index went through the parent's conditional writes, unscrambled
    assert plain.get_versions_info("secret/asset") == ["0.1", "0.0"]
    assert plain.get_asset_meta("secret/asset", "0.0")["is_directory"] is True

    assets = tmp_path / "assets"
    assets.mkdir()
    fetched = Path(
        AssetsManager(assets_dir=str(assets), storage_provider=store).fetch_asset(
            "secret/asset:0.0"
        )
    )
    for part, data in files.items():
        assert (fetched / part).read_bytes() == data
    assert sorted(calls["download"]) == sorted(objects.values())
    with pytest.raises(errors.AssetIntegrityError):  # the plain driver gets scrambled bytes
        AssetsManager(assets_dir=str(tmp_path), storage_provider=plain).fetch_asset(
            "secret/asset:0.1"
        )


def test_an_overridden_upload_object_keeps_pushes_create_only(bucket: Path, tmp_path: Path) -> None:
    """The override is called after an existence check: a push never replaces an object."""
    calls: dict[str, list[str]] = {"upload": [], "download": []}
    driver = _scrambling(LocalStorageDriver, calls)({"bucket": str(bucket)})
    source = tmp_path / "f"
    source.write_bytes(b"first")
    driver.create_object_from_bytes(b"first", "a/b", str(source))
    with pytest.raises(errors.ObjectAlreadyExistsError):
        driver.create_object_from_bytes(b"second", "a/b", str(source))
    with pytest.raises(errors.ObjectAlreadyExistsError):
        driver.create_object_with_progress(str(source), "a/b", lambda _: None)
    assert calls["upload"] == ["a/b"]
    assert (bucket / "a" / "b").read_bytes() == _scramble(b"first")
    outcomes = dict(driver.create_objects_from_bytes([(b"x", "a/c", str(source))] * 1, 4))
    assert outcomes == {0: None}
    assert calls["upload"] == ["a/b", "a/c"]
    assert driver.stager() is None  # large files are not staged past the override
    assert LocalStorageDriver(str(bucket)).stager() is not None
