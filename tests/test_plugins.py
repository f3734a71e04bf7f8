"""Third-party plugins are discovered through entry points; problems are reported clearly."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from modelkit_assets import StorageProvider, errors
from modelkit_assets.plugins import get_registry, load_registry, reset_registry
from tests.cli_runner import as_json, fails, ok

PLUGIN_MODULE = """
from modelkit_assets import StorageDriverPlugin, VersioningSystemPlugin, hookimpl
from modelkit_assets.drivers.local import LocalStorageDriver
from modelkit_assets.versioning.major_minor import MajorMinorAssetsVersioningSystem


class MyStoreDriver(LocalStorageDriver):
    provider_name = "mystore"


class EvenSystem(MajorMinorAssetsVersioningSystem):
    name = "even"

    @staticmethod
    def get_initial_version():
        return "2.0"


@hookimpl
def modelkit_assets_storage_drivers():
    yield StorageDriverPlugin(name="{name}", driver="{module}:MyStoreDriver", schemes=("{name}",))


@hookimpl
def modelkit_assets_versioning_systems():
    yield VersioningSystemPlugin(name="even-{name}", system=EvenSystem)
"""


def install_plugin(
    site: Path, distribution: str, module: str, body: str, entry_name: str = "main"
) -> None:
    """A real installed distribution: a module plus a .dist-info with entry_points.txt."""
    (site / f"{module}.py").write_text(body)
    info = site / f"{distribution.replace('-', '_')}-1.2.3.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {distribution}\nVersion: 1.2.3\n")
    (info / "entry_points.txt").write_text(f"[modelkit_assets]\n{entry_name} = {module}\n")


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "site"
    path.mkdir()
    monkeypatch.syspath_prepend(str(path))
    reset_registry()
    return path


def test_third_party_driver_and_versioning_system_work_through_the_cli(
    site: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    install_plugin(
        site,
        "mystore-plugin",
        "thirdparty_store",
        PLUGIN_MODULE.format(name="mystore", module="thirdparty_store"),
    )
    bucket, assets = tmp_path / "bucket", tmp_path / "assets"
    bucket.mkdir()
    assets.mkdir()
    source = tmp_path / "f.txt"
    source.write_text("x")
    monkeypatch.setenv("MODELKIT_STORAGE_PROVIDER", "mystore")
    monkeypatch.setenv("MODELKIT_STORAGE_BUCKET", str(bucket))
    monkeypatch.setenv("MODELKIT_ASSETS_DIR", str(assets))
    monkeypatch.setenv("MODELKIT_ASSETS_VERSIONING_SYSTEM", "even-mystore")
    assert "name:2.0" in ok("new", str(source), "name", "--yes").stdout
    assert "name:2.1" in ok("update", str(source), "name", "--yes").stdout
    assert Path(ok("fetch", "name:2").stdout.strip()).read_text() == "x"
    assert type(StorageProvider().driver).__name__ == "MyStoreDriver"

    listed = as_json(ok("plugins", "--json"))
    mine = [d for d in listed["storage_drivers"] if d["name"] == "mystore"]
    assert mine == [
        {
            "name": "mystore",
            "distribution": "mystore-plugin",
            "version": "1.2.3",
            "schemes": ["mystore"],
            "capabilities": [],
            "description": "",
        }
    ]
    local = next(d for d in listed["storage_drivers"] if d["name"] == "local")
    assert local["distribution"] == "modelkit-assets-core"
    systems = {s["name"]: s["distribution"] for s in listed["versioning_systems"]}
    assert systems["even-mystore"] == "mystore-plugin"
    assert systems["major_minor"] == systems["simple_date"] == "modelkit-assets-core"
    table = ok("plugins").stdout
    assert "mystore" in table
    assert "mystore-plugin 1.2.3" in table


def test_duplicate_names_are_an_error_naming_both_distributions(
    site: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for dist, module in (("first-plugin", "first_plugin"), ("second-plugin", "second_plugin")):
        install_plugin(site, dist, module, PLUGIN_MODULE.format(name="twice", module=module))
    with pytest.raises(errors.PluginConflictError) as info:
        get_registry().driver("twice")
    assert "first-plugin 1.2.3" in str(info.value)
    assert "second-plugin 1.2.3" in str(info.value)
    monkeypatch.setenv("MODELKIT_STORAGE_PROVIDER", "twice")
    line = fails("list")
    assert "first-plugin" in line
    assert "second-plugin" in line
    assert get_registry().driver("local")  # the rest still works


def test_a_broken_plugin_is_reported_and_the_rest_keep_working(
    site: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    install_plugin(site, "broken-plugin", "broken_plugin", "import does_not_exist_anywhere\n")
    install_plugin(
        site,
        "raising-plugin",
        "raising_plugin",
        "from modelkit_assets import hookimpl\n\n@hookimpl\n"
        "def modelkit_assets_storage_drivers():\n    raise RuntimeError('boom')\n",
    )
    install_plugin(
        site, "good-plugin", "good_plugin", PLUGIN_MODULE.format(name="good", module="good_plugin")
    )
    registry = get_registry()
    broken = {b.source.distribution for b in registry.broken}
    assert {"broken-plugin", "raising-plugin"} <= broken
    assert "good-plugin" not in broken
    assert "good" in registry.drivers
    assert "local" in registry.drivers
    listed = as_json(ok("plugins", "--json"))
    errors_by_dist = {b["distribution"]: b["error"] for b in listed["broken"]}
    assert "does_not_exist_anywhere" in errors_by_dist["broken-plugin"]
    assert "boom" in errors_by_dist["raising-plugin"]


def test_known_provider_not_installed_names_the_distribution(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    registry = load_registry(installed=[])  # only the built-ins, as after `pip install core`
    reset_registry(registry)
    for provider, distribution in (
        ("s3", "modelkit-assets-s3"),
        ("gcs", "modelkit-assets-gcs"),
        ("az", "modelkit-assets-az"),
    ):
        with pytest.raises(errors.DriverNotInstalledError) as info:
            registry.driver(provider)
        assert f"pip install {distribution}" in str(info.value)
    monkeypatch.setenv("MODELKIT_STORAGE_PROVIDER", "gcs")
    assert "pip install modelkit-assets-gcs" in fails("list")


def test_plugin_records_validate_names() -> None:
    from modelkit_assets import StorageDriverPlugin

    assert StorageDriverPlugin(name=" MyStore ", driver="x:y").name == "mystore"
    with pytest.raises(ValueError):
        StorageDriverPlugin(name="bad name", driver="x:y")


CLOUD_SDKS = ("boto3", "botocore", "google.cloud", "azure")


def _imported_sdks(code: str) -> list[str]:
    probe = (
        f"import json, sys\n{code}\n"
        f"print(json.dumps(sorted(m for m in sys.modules if m.startswith({CLOUD_SDKS!r}))))"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    ).stdout
    return list(json.loads(out.strip().splitlines()[-1]))


def test_importing_and_help_import_no_cloud_sdk() -> None:
    assert _imported_sdks("import modelkit_assets") == []
    assert (
        _imported_sdks(
            "from modelkit_assets.cli import modelkit_cli\n"
            "try:\n    modelkit_cli(['assets', '--help'])\nexcept SystemExit:\n    pass"
        )
        == []
    )
    assert _imported_sdks("from modelkit_assets.plugins import get_registry\nget_registry()") == []


def test_core_extras_pull_each_backend_distribution() -> None:
    from importlib import metadata

    requires = metadata.metadata("modelkit-assets-core").get_all("Requires-Dist") or []
    for extra, distribution in (
        ("assets-s3", "modelkit-assets-s3"),
        ("assets-gcs", "modelkit-assets-gcs"),
        ("assets-az", "modelkit-assets-az"),
    ):
        assert any(r.startswith(distribution) and extra in r.split(";")[-1] for r in requires)
        # each backend registers itself through the entry point group
        eps = metadata.distribution(distribution).entry_points
        assert [ep.group for ep in eps if ep.group == "modelkit_assets"] == ["modelkit_assets"]
    assert not any(
        "boto" in r or "google" in r or "azure" in r for r in requires if "extra" not in r
    )


REENTRANT_PLUGIN = """
from modelkit_assets import StorageDriverPlugin, StorageProvider, hookimpl


@hookimpl
def modelkit_assets_storage_drivers():
    StorageProvider(provider="local", bucket="/")  # uses the registry being built
    yield StorageDriverPlugin(name="reentrant", driver="x:Y")
"""


def test_a_plugin_calling_back_during_discovery_is_reported_in_one_line(
    site: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    install_plugin(site, "reentrant-plugin", "reentrant_plugin", REENTRANT_PLUGIN)
    registry = get_registry()  # no RecursionError
    assert "reentrant" not in registry.drivers
    assert "local" in registry.drivers
    (broken,) = registry.broken
    assert "while plugins were being discovered" in broken.error
    assert "modelkit_assets.builtin" not in broken.error
    assert "\n" not in broken.error
