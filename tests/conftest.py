"""Fixtures shared by the whole suite: a clean environment, the backends, a store per test."""

from __future__ import annotations

import os
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import attrs
import hypothesis
import pytest

from modelkit_assets.engines import ENGINE_ENV, obstore_installed
from modelkit_assets.plugins import reset_registry
from tests.servers import BACKENDS, Backend

# google-auth probes the GCE metadata server (a link-local address) when it finds no
# credentials: keep every lookup on loopback. Set before google.auth is first imported.
os.environ["NO_GCE_CHECK"] = "true"
os.environ["GCE_METADATA_HOST"] = os.environ["GCE_METADATA_IP"] = "127.0.0.1:9"
# Records the drivers keep in the user's cache (GCS upload sessions) go to a folder of the run's
# own, for every process the tests start: a test cut off midway leaves nothing in ~/.cache.
os.environ["XDG_CACHE_HOME"] = tempfile.mkdtemp(prefix="modelkit-assets-tests-cache-")

# No deadline on examples: speed is measured by bench/, not by timed tests. The first example of
# a test loads the plugin registry (reset for every test), 0.3 s on a loaded CI machine, and a
# deadline made that a flaky failure.
hypothesis.settings.register_profile("modelkit-assets", deadline=None)
hypothesis.settings.load_profile("modelkit-assets")

pytest_plugins = [
    "tests.servers.s3",
    "tests.servers.gcs",
    "tests.servers.azure",
    "tests.guarantees.reporting",
]


#: The data-path engines present (see modelkit_assets.engines): obstore with the fast extra.
ENGINES = ["sdk", "obstore"] if obstore_installed() else ["sdk"]
#: Backends whose driver has an obstore engine.
ENGINE_BACKENDS = ("s3-moto", "s3-seaweedfs", "az", "gcs")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """``backend`` runs once per backend; a test that also takes ``engine`` runs once per
    engine present on the backends that have one (the others run with the default)."""
    if "backend" in metafunc.fixturenames and "engine" in metafunc.fixturenames:
        pairs = [
            pytest.param(b, e, id=f"{b}-{e}" if b in ENGINE_BACKENDS else b)
            for b in BACKENDS
            for e in (ENGINES if b in ENGINE_BACKENDS else ["auto"])
        ]
        metafunc.parametrize(("backend", "engine"), pairs, indirect=True)
    elif "backend" in metafunc.fixturenames:
        metafunc.parametrize("backend", BACKENDS, indirect=True)
    elif "engine" in metafunc.fixturenames:
        metafunc.parametrize("engine", ENGINES, indirect=True)


@pytest.fixture
def engine(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """The data-path engine of the test's drivers (``MODELKIT_STORAGE_ENGINE``)."""
    name: str = getattr(request, "param", "auto")
    monkeypatch.setenv(ENGINE_ENV, name)
    return name


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No test sees the developer's MODELKIT_* settings or a stale plugin registry."""
    for key in list(os.environ):
        if key.startswith(("MODELKIT_", "AWS_", "S3_", "GOOGLE_", "AZURE_", "STORAGE_EMULATOR")):
            monkeypatch.delenv(key)
    reset_registry()
    yield
    reset_registry()


@pytest.fixture(scope="session")
def server_logs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("server-logs")


@pytest.fixture(scope="session")
def local_backend(tmp_path_factory: pytest.TempPathFactory) -> Backend:
    return Backend(id="local", provider="local", bucket=str(tmp_path_factory.mktemp("bucket")))


@pytest.fixture
def backend(request: pytest.FixtureRequest) -> Backend:
    backend: Backend = request.getfixturevalue(f"{request.param.replace('-', '_')}_backend")
    return backend


@attrs.frozen
class StoreEnv:
    """A store configured through the environment: fresh prefix, fresh assets dir."""

    backend: Backend
    prefix: str
    assets_dir: Path

    @property
    def env(self) -> dict[str, str]:
        return {
            **self.backend.env,
            "MODELKIT_STORAGE_PROVIDER": self.backend.provider,
            "MODELKIT_STORAGE_BUCKET": self.backend.bucket,
            "MODELKIT_STORAGE_PREFIX": self.prefix,
            "MODELKIT_ASSETS_DIR": str(self.assets_dir),
        }


@pytest.fixture
def store_env(backend: Backend, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> StoreEnv:
    """Point MODELKIT_* at ``backend`` under a prefix no other test uses."""
    assets_dir = tmp_path / "assets"
    assets_dir.mkdir()
    store = StoreEnv(backend, f"test-{uuid.uuid4().hex[:12]}", assets_dir)
    for key, value in store.env.items():
        monkeypatch.setenv(key, value)
    return store
