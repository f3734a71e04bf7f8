"""modelkit's settings objects of drivers, and the one place driver keywords are checked.

modelkit builds a driver from a settings object (``S3StorageDriver(settings=S3StorageDriverSettings(
bucket=..., aws_default_region=...))``, or a dict of the same fields); this project's drivers take
keywords named as their SDKs name them (``region_name``). :func:`driver_keywords` turns either
into the other: a settings object or dict, modelkit's field names (and the environment variables
modelkit accepts as their aliases) and the driver's own keywords all become the driver's
keywords. A keyword that is none of these is refused in one line (modelkit ignores it: a typo
there reaches another store).

As in modelkit (pydantic settings), a settings object's fields left out default to their
environment variables when the object is made.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar, Final

import attrs

from .. import environment, errors


@attrs.frozen
class SettingField:
    """One of modelkit's fields: the environment variable modelkit also accepts as its name
    (and reads it from, unless ``from_env`` is false: the driver reads it itself, with more
    care), the driver keyword it stands for, and whether it is secret."""

    env: str | None
    keyword: str
    secret: bool = False
    from_env: bool = True


#: The fields every driver's settings have, as in modelkit's ``StorageDriverSettings``.
_BASE_FIELDS: Final = {
    "bucket": SettingField("MODELKIT_STORAGE_BUCKET", "bucket"),
    "lazy_driver": SettingField("MODELKIT_LAZY_DRIVER", "lazy"),
}


class StorageDriverSettings:
    """modelkit's settings of a driver: its bucket, whether its client is built on first use,
    and (in subclasses) how to reach the store.

    ``Settings(bucket="b", lazy_driver=True)``; fields left out are read from the environment
    (``MODELKIT_STORAGE_BUCKET``, ``MODELKIT_LAZY_DRIVER``...); a driver built from the object
    gets :meth:`keywords`. Secrets never show in ``repr()``.
    """

    #: Name used in messages.
    provider: ClassVar[str] = "storage"
    #: modelkit's fields, by name.
    fields: ClassVar[Mapping[str, SettingField]] = _BASE_FIELDS
    #: Keywords of this project's driver, accepted as they are (no environment default here:
    #: the driver has its own fallbacks).
    driver_options: ClassVar[tuple[str, ...]] = ()

    bucket: str
    lazy_driver: bool

    def __init__(self, **values: Any) -> None:
        given = self._by_field(values)
        self._options = {k: v for k, v in given.items() if k not in self.fields}
        for name, field in self.fields.items():
            value = given.get(name)
            if value is None and field.env is not None and field.from_env:
                value = environment.env_str(field.env)
            setattr(self, name, value)
        if not self.bucket:
            raise errors.ConfigurationError(
                f"no bucket for the {self.provider} provider: set MODELKIT_STORAGE_BUCKET "
                "or give bucket="
            )
        self.lazy_driver = bool(
            self.lazy_driver is not None and environment.parse_flag("lazy_driver", self.lazy_driver)
        )

    @classmethod
    def _by_field(cls, values: Mapping[str, Any], provider: str | None = None) -> dict[str, Any]:
        """``values`` keyed by field name (a field's environment variable counts as its name)
        or driver option; UnknownSettingError (naming ``provider``, else this class's) for
        anything else."""
        aliases = {f.env: name for name, f in cls.fields.items() if f.env}
        known = {*cls.fields, *cls.driver_options}
        by_field: dict[str, Any] = {}
        unknown = []
        for key, value in values.items():
            name = aliases.get(key, key)
            if name not in known:
                unknown.append(key)
            else:
                by_field[name] = value
        if unknown:
            raise errors.UnknownSettingError(provider or cls.provider, unknown, cls.known_names())
        return by_field

    @classmethod
    def known_names(cls) -> list[str]:
        """Every keyword a driver of this kind takes (its settings' fields and its options)."""
        return sorted({*cls.fields, *cls.driver_options})

    def keywords(self) -> dict[str, Any]:
        """The driver keywords these settings stand for (fields that are None left out)."""
        values = {f.keyword: getattr(self, n) for n, f in self.fields.items()}
        values.update(self._options)
        return {k: v for k, v in values.items() if v is not None}

    def __repr__(self) -> str:
        shown = ", ".join(
            f"{name}={'***' if field.secret and getattr(self, name) else repr(getattr(self, name))}"
            for name, field in self.fields.items()
        )
        return f"{type(self).__name__}({shown})"


def driver_keywords(
    settings_class: type[StorageDriverSettings],
    bucket: Any,
    settings: StorageDriverSettings | Mapping[str, Any] | None,
    keywords: Mapping[str, Any],
    provider: str | None = None,
) -> dict[str, Any]:
    """The keywords a driver (of ``provider``, for messages) is to be built with, ``bucket``
    (and ``lazy``, when said) among them: from ``settings`` (an object, or a dict of its
    fields, also accepted in the place of ``bucket``: modelkit's first argument), then
    ``keywords``, modelkit's names translated.

    A keyword that is no field or option of ``settings_class`` raises UnknownSettingError;
    two names of one setting (``aws_default_region`` and ``region_name``) a ConfigurationError.
    """
    if isinstance(bucket, (StorageDriverSettings, Mapping)):
        if settings is not None:
            raise errors.ConfigurationError("give the driver's settings once, not also as bucket")
        settings, bucket = bucket, None
    result: dict[str, Any] = {}
    if settings is not None:
        if isinstance(settings, Mapping):
            settings = settings_class(**{"bucket": bucket, **settings} if bucket else settings)
        result.update(settings.keywords())
    if bucket is not None:
        result["bucket"] = bucket
    given = settings_class._by_field(keywords, provider)
    translated: dict[str, str] = {}
    provider = provider or settings_class.provider
    for name, value in given.items():
        field = settings_class.fields.get(name)
        keyword = field.keyword if field is not None else name
        if keyword in translated:
            raise errors.ConfigurationError(
                f"{provider} setting given twice: as {translated[keyword]} and as {name}; give one"
            )
        translated[keyword] = name
        result[keyword] = value
    return result


class LocalStorageDriverSettings(StorageDriverSettings):
    """modelkit's settings of the ``local`` driver: the bucket is the folder."""

    provider = "local"


class ClientConfiguration(dict[str, Any]):
    """modelkit's ``driver.client_configuration``: what ``build_client`` builds an SDK client
    from. A dict, whose ``repr()`` masks the values of its ``secret_keys``."""

    def __init__(self, values: Mapping[str, Any], secret_keys: tuple[str, ...] = ()) -> None:
        super().__init__(values)
        self.secret_keys = secret_keys

    def __repr__(self) -> str:
        shown = ", ".join(
            f"{key!r}: {'***' if key in self.secret_keys and value else repr(value)}"
            for key, value in self.items()
        )
        return "{" + shown + "}"

    __str__ = __repr__

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (dict(self), self.secret_keys))
