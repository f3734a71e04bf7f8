"""Tuning of the ``az`` driver's transfers and retries (its keywords), checked when given."""

from __future__ import annotations

from typing import Any, Final

import attrs

from modelkit_assets import errors

_MiB: Final = 1024 * 1024


def _positive_int(_: object, attribute: attrs.Attribute[int], value: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise errors.ConfigurationError(
            f"az driver setting {attribute.name} must be a positive integer, not {value!r}"
        )


def _positive_number(_: object, attribute: attrs.Attribute[float], value: float) -> None:
    if not isinstance(value, (int, float)) or isinstance(value, bool) or value <= 0:
        raise errors.ConfigurationError(
            f"az driver setting {attribute.name} must be a positive number, not {value!r}"
        )


@attrs.frozen(kw_only=True)
class AzureSettings:
    """Tuning of transfers and retries; every field is also a keyword of the driver."""

    #: Parallel connections per upload or download (the SDK's ``max_concurrency``).
    max_concurrency: int = attrs.field(default=4, validator=_positive_int)
    #: Files up to this size are sent in one request; larger ones in blocks.
    max_single_put_size: int = attrs.field(default=8 * _MiB, validator=_positive_int)
    max_block_size: int = attrs.field(default=4 * _MiB, validator=_positive_int)
    #: Size of the first ranged GET of a download, then of each further chunk.
    max_single_get_size: int = attrs.field(default=4 * _MiB, validator=_positive_int)
    max_chunk_get_size: int = attrs.field(default=4 * _MiB, validator=_positive_int)
    #: Blobs per listing request (the service's maximum is 5000).
    list_page_size: int = attrs.field(default=5000, validator=_positive_int)
    #: Retries of one request; the time budget may stop them sooner.
    retry_total: int = attrs.field(default=10, validator=_positive_int)
    #: Wait before the first retry, doubled for each next one (with +-25 % jitter).
    retry_backoff_s: float = attrs.field(default=0.5, validator=_positive_number)
    #: HTTP connections kept open to the service (threads of the core times max_concurrency).
    connection_pool_size: int = attrs.field(default=64, validator=_positive_int)

    @classmethod
    def from_kwargs(cls, settings: dict[str, Any]) -> AzureSettings:
        """Settings from the driver's keywords; an unknown keyword is a configuration error."""
        known = {field.name for field in attrs.fields(cls)}
        unknown = sorted(set(settings) - known)
        if unknown:
            raise errors.ConfigurationError(
                f"unknown az driver setting(s) {', '.join(unknown)}; "
                f"known: connection_string, client, {', '.join(sorted(known))}"
            )
        return cls(**settings)
