"""Real storage servers for the test suite, and the backends the shared tests run on.

Each backend module (``tests/servers/<name>.py``) defines a session fixture named
``<id>_backend`` (dashes become underscores) returning a :class:`Backend`, and appends ``<id>``
to :data:`BACKENDS`. Tests taking the ``backend`` fixture run once per id.
"""

from __future__ import annotations

from collections.abc import Mapping

import attrs

#: Ids of the backends every shared test runs on; backend modules append theirs.
BACKENDS: list[str] = ["local"]


@attrs.frozen
class Backend:
    """How to reach one store: the provider name, a bucket that exists, and extra environment."""

    id: str
    provider: str
    bucket: str
    env: Mapping[str, str] = attrs.field(factory=dict)
