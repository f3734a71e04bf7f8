"""Every installed driver passes the conformance suite shipped in modelkit_assets.testing."""

from __future__ import annotations

import pytest

from modelkit_assets.drivers.base import StorageDriver
from modelkit_assets.store import make_driver
from modelkit_assets.testing import StorageDriverConformance
from tests.servers import Backend


class TestEveryDriver(StorageDriverConformance):
    @pytest.fixture
    def driver(
        self, backend: Backend, engine: str, monkeypatch: pytest.MonkeyPatch
    ) -> StorageDriver:
        """On S3, once per data-path engine present (``engine`` sets it)."""
        for key, value in backend.env.items():
            monkeypatch.setenv(key, value)
        return make_driver(backend.provider, backend.bucket, None, 60.0)
