"""Specs and versioning systems, over generated inputs."""

from __future__ import annotations

import datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from modelkit_assets import AssetSpec, errors
from modelkit_assets.versioning.major_minor import MajorMinorAssetsVersioningSystem as MajorMinor
from modelkit_assets.versioning.simple_date import SimpleDateAssetsVersioningSystem as SimpleDate

segment = st.from_regex(r"[A-Za-z0-9]([A-Za-z0-9._\-]{0,10}[A-Za-z0-9])?", fullmatch=True).filter(
    lambda s: ".." not in s
)
names = st.lists(segment, min_size=1, max_size=4).map("/".join)
numbers = st.integers(min_value=0, max_value=10_000)
versions = st.tuples(numbers, numbers).map(lambda t: f"{t[0]}.{t[1]}")
sub_parts = st.lists(
    st.from_regex(r"[A-Za-z0-9._\- ]{1,12}", fullmatch=True).filter(lambda s: s not in (".", "..")),
    min_size=1,
    max_size=3,
).map("/".join)


@given(names, st.none() | versions | numbers.map(str), st.none() | sub_parts)
def test_spec_round_trips(name: str, version: str | None, sub_part: str | None) -> None:
    text = name + (f":{version}" if version else "") + (f"[{sub_part}]" if sub_part else "")
    spec = AssetSpec.from_string(text)
    assert (spec.name, spec.version, spec.sub_part) == (name, version, sub_part)
    assert str(spec) == text
    assert type(spec.versioning) is MajorMinor  # an instance, as modelkit has it


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("name:1.2.3.4", errors.InvalidVersionError),
        ("name:1.x", errors.InvalidVersionError),
        ("name:01", errors.InvalidVersionError),
        ("name:[broken", errors.InvalidAssetSpecError),
        ("name:", errors.InvalidAssetSpecError),
        ("bad name!", errors.InvalidNameError),
        ("../escape", errors.InvalidNameError),
        ("/abs", errors.InvalidNameError),
        ("name[../up]", errors.UnsafePathError),
        ("name[/../up]", errors.UnsafePathError),
        ("name[sub/]", errors.InvalidAssetSpecError),
        ("name[C:/x]", errors.UnsafePathError),
    ],
)
def test_invalid_specs(text: str, error: type[Exception]) -> None:
    with pytest.raises(error):
        AssetSpec.from_string(text)


def test_a_leading_slash_in_a_sub_part_is_relative_as_in_modelkit() -> None:
    spec = AssetSpec.from_string("name:1.0[/sub/part]")
    assert spec.sub_part == "/sub/part"
    assert spec.relative_sub_part == "sub/part"


@given(st.text(max_size=30))
def test_parsing_never_raises_anything_but_spec_errors(text: str) -> None:
    try:
        spec = AssetSpec.from_string(text)
    except errors.InvalidAssetSpecError:
        return
    assert ".." not in spec.name.split("/")
    assert not spec.name.startswith("/")


@given(st.lists(versions, min_size=1, max_size=20, unique=True))
def test_major_minor_sorting_and_increments(version_list: list[str]) -> None:
    ordered = MajorMinor.sort_versions(version_list)
    as_tuples = [tuple(map(int, v.split("."))) for v in ordered]
    assert as_tuples == sorted(as_tuples, reverse=True)
    bumped = MajorMinor.increment_version(version_list)
    major = as_tuples[0][0]
    same_major = max(m for M, m in as_tuples if major == M)
    assert bumped == f"{major}.{same_major + 1}"
    assert MajorMinor.increment_version(version_list, {"bump_major": True}) == f"{major + 1}.0"
    for old_major in {t[0] for t in as_tuples}:
        latest_minor = max(m for M, m in as_tuples if old_major == M)
        assert (
            MajorMinor.increment_version(version_list, {"major": old_major})
            == f"{old_major}.{latest_minor + 1}"
        )
        assert MajorMinor.get_latest_partial_version(str(old_major), version_list) == (
            f"{old_major}.{latest_minor}"
        )


def test_major_means_exactly_that_major() -> None:
    assert MajorMinor.get_latest_partial_version("1", ["10.3", "1.2", "1.10", "0.9"]) == "1.10"
    with pytest.raises(errors.AssetDoesNotExistError):
        MajorMinor.get_latest_partial_version("2", ["10.3", "1.2"])
    assert MajorMinor.increment_version([]) == "0.0"
    with pytest.raises(errors.MajorVersionDoesNotExistError):
        MajorMinor.increment_version(["1.0"], {"major": 3})


def test_simple_date_versions_are_utc_and_strictly_increasing() -> None:
    now = SimpleDate.get_initial_version()
    parsed = datetime.datetime.strptime(now, "%Y-%m-%dT%H-%M-%SZ").replace(
        tzinfo=datetime.timezone.utc
    )
    assert abs((datetime.datetime.now(datetime.timezone.utc) - parsed).total_seconds()) < 5
    future = "2999-01-01T00-00-00Z"
    assert SimpleDate.increment_version([future]) == "2999-01-01T00-00-01Z"
    assert SimpleDate.sort_versions(["2020-01-01T00-00-00Z", future]) == [
        future,
        "2020-01-01T00-00-00Z",
    ]
    assert SimpleDate.is_version_valid("2020-13-01T00-00-00Z")  # by format, as in modelkit
    assert not SimpleDate.is_version_valid("1.0")
    with pytest.raises(errors.InvalidVersionError):
        SimpleDate.check_version_valid("1.0")
    spec = AssetSpec.from_string("name:2020-01-01T00-00-00Z", versioning="simple_date")
    assert type(spec.versioning) is SimpleDate
    assert spec.is_version_complete()
    with pytest.raises(errors.UnknownAssetsVersioningSystemError):
        AssetSpec.from_string("name", versioning="nope")
