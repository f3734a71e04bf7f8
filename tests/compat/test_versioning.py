"""modelkit's versioning systems, imported from modelkit's module paths: methods, errors,
return shapes, keyword rules."""

from __future__ import annotations

import pytest

from modelkit_assets import errors
from modelkit_assets.versioning.major_minor import (
    InvalidMajorVersionError,
    MajorMinorAssetsVersioningSystem,
    MajorVersionDoesNotExistError,
)
from modelkit_assets.versioning.simple_date import SimpleDateAssetsVersioningSystem
from modelkit_assets.versioning.versioning import AssetsVersioningSystem

MajorMinor = MajorMinorAssetsVersioningSystem
SimpleDate = SimpleDateAssetsVersioningSystem


def test_both_systems_share_modelkits_base() -> None:
    assert issubclass(MajorMinor, AssetsVersioningSystem)
    assert issubclass(SimpleDate, AssetsVersioningSystem)


@pytest.mark.parametrize("version", ["", "1", "1.1", "10.10", "123.4"])
def test_major_minor_valid(version: str) -> None:
    assert MajorMinor.check_version_valid(version) is None
    assert MajorMinor().is_version_valid(version) is True


@pytest.mark.parametrize("version", ["ok", "1.", "_", "a.1", ".1", "12.", "1/2", "1.1.1"])
def test_major_minor_invalid_raises(version: str) -> None:
    with pytest.raises(errors.InvalidVersionError):
        MajorMinor.check_version_valid(version)
    assert MajorMinor().is_version_valid(version) is False


@pytest.mark.parametrize(
    ("versions", "bump_major", "major", "expected"),
    [
        (["0.0"], False, None, "0.1"),
        (["0.0"], False, "0", "0.1"),
        (["0.0"], True, None, "1.0"),
        (["0.9"], False, None, "0.10"),
        (["0.9", "1.0"], False, "0", "0.10"),
        (["123.456"], True, "0", "124.0"),
    ],
)
def test_increment_version_takes_modelkits_params(
    versions: list[str], bump_major: bool, major: str | None, expected: str
) -> None:
    params = {"bump_major": bump_major, "major": major}
    assert MajorMinor.increment_version(versions, params=params) == expected


def test_increment_of_a_missing_major() -> None:
    with pytest.raises(MajorVersionDoesNotExistError):
        MajorMinor.increment_version(["123.456"], {"bump_major": False, "major": "0"})


def test_filter_and_latest_versions() -> None:
    listing = ["123.0", "123.1", "123.2", "0.1", "1.2", "2.3", "3.4"]
    assert MajorMinor.filter_versions(listing, "123") == ["123.0", "123.1", "123.2"]
    with pytest.raises(InvalidMajorVersionError):
        MajorMinor.filter_versions(listing, "ok")
    assert MajorMinor.latest_version(listing, "123") == "123.2"
    assert MajorMinor.latest_version(["0.0", "1.0", "2.0"]) == "2.0"
    with pytest.raises(MajorVersionDoesNotExistError):
        MajorMinor.latest_version(["0.0", "1.0"], "123")
    # a difference: a major selects that major only (modelkit's prefix match also takes 10.x)
    assert MajorMinor.filter_versions(["10.0", "1.0"], "1") == ["1.0"]


def test_errors_of_majors_are_invalid_versions() -> None:
    assert issubclass(InvalidMajorVersionError, errors.InvalidVersionError)
    assert issubclass(MajorVersionDoesNotExistError, errors.InvalidVersionError)


@pytest.mark.parametrize(
    ("version", "bump_major", "major"), [("1.0", True, "1"), ("2.1", False, "2")]
)
def test_major_minor_update_cli_params(version: str, bump_major: bool, major: str) -> None:
    result = MajorMinor.get_update_cli_params(
        version=version, version_list=["1.1", "1.0", "0.1", "0.0"], bump_major=bump_major
    )
    assert result["params"] == {"bump_major": bump_major, "major": major}
    assert "Found a total of 4 versions" in result["display"]


def test_get_latest_partial_version_is_on_every_system() -> None:
    assert MajorMinor.get_latest_partial_version("1", ["2.0", "1.3", "1.2"]) == "1.3"
    dates = ["2021-11-15T17-30-56Z", "2020-11-15T17-30-56Z"]
    assert SimpleDate.get_latest_partial_version(dates[1], dates) == dates[1]


@pytest.mark.parametrize(
    ("version", "valid"),
    [
        ("2021-11-15T17-30-56Z", True),
        ("0000-00-00T00-00-00Z", True),
        ("9999-99-99T99-99-99Z", True),
        ("2021-11-15T17-30-56", False),
        ("21-11-15T17-30-56Z", False),
        ("", False),
    ],
)
def test_simple_date_versions_are_checked_by_format(version: str, valid: bool) -> None:
    assert SimpleDate().is_version_valid(version) is valid
    if valid:
        SimpleDate.check_version_valid(version)
    else:
        with pytest.raises(errors.InvalidVersionError):
            SimpleDate.check_version_valid(version)


def test_simple_date_update_cli_params_take_the_version_list_alone() -> None:
    result = SimpleDate.get_update_cli_params(
        version_list=["2021-11-15T17-30-56Z", "2021-10-15T17-30-56Z"]
    )
    assert result["params"] == {}
    assert "Last version is 2021-11-15T17-30-56Z" in result["display"]


def test_systems_work_as_classes_and_as_instances() -> None:
    for system in (MajorMinor, MajorMinor()):
        assert system.sort_versions(["0.1", "1.0"]) == ["1.0", "0.1"]
        assert system.get_initial_version() == "0.0"
    assert SimpleDate().sort_versions(["2020-01-01T00-00-00Z", "2021-01-01T00-00-00Z"])[0] == (
        "2021-01-01T00-00-00Z"
    )
