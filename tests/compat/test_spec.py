"""modelkit's AssetSpec, imported the modelkit way (``...settings``): signature, methods, shapes.

Differences on purpose (README, "Moving from modelkit"): absolute and Windows paths are not
names (they stay local paths), and names are stricter ('..', empty segments are refused).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from modelkit_assets import errors
from modelkit_assets.settings import AssetSpec
from modelkit_assets.versioning.major_minor import MajorMinorAssetsVersioningSystem
from modelkit_assets.versioning.simple_date import SimpleDateAssetsVersioningSystem


def test_positional_arguments_are_modelkits() -> None:
    spec = AssetSpec("cat/name", "simple_date", "2024-01-31T12-00-00Z", "sub/part")
    assert (spec.name, spec.version, spec.sub_part) == (
        "cat/name",
        "2024-01-31T12-00-00Z",
        "sub/part",
    )
    assert isinstance(spec.versioning, SimpleDateAssetsVersioningSystem)
    assert type(AssetSpec("cat/name").versioning) is MajorMinorAssetsVersioningSystem


def test_versioning_follows_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MODELKIT_ASSETS_VERSIONING_SYSTEM", "simple_date")
    assert isinstance(AssetSpec("name").versioning, SimpleDateAssetsVersioningSystem)
    with pytest.raises(errors.UnknownAssetsVersioningSystemError):
        AssetSpec("name", versioning="nope")


def test_is_version_complete_is_a_method() -> None:
    assert AssetSpec(name="a", version="1.1").is_version_complete() is True
    assert AssetSpec(name="a", version="1").is_version_complete() is False
    assert AssetSpec(name="a").is_version_complete() is False


@pytest.mark.parametrize("version", ["1.1.1", ".10", "1.x"])
def test_invalid_versions_raise_invalid_asset_spec_errors(version: str) -> None:
    with pytest.raises(errors.InvalidAssetSpecError):
        AssetSpec(name="ontologies/skills.csv", version=version)


def test_check_name_and_version_valid_are_class_methods() -> None:
    AssetSpec.check_name_valid("blabli/BLEBLA.csv")
    with pytest.raises(errors.InvalidNameError):
        AssetSpec.check_name_valid("ontologies/skills.csv:")
    AssetSpec.check_version_valid("1.2")
    AssetSpec.check_version_valid("2024-01-31T12-00-00Z")
    with pytest.raises(errors.InvalidVersionError):
        AssetSpec.check_version_valid("1/2")


def test_sort_versions_and_set_latest_version() -> None:
    spec = AssetSpec(name="a")
    assert spec.sort_versions(["0.2", "0.10", "2"]) == ["2", "0.10", "0.2"]
    spec.set_latest_version(["3", "2.1", "1.3"])
    assert spec.version == "3"
    partial = AssetSpec(name="a", version="2")
    partial.set_latest_version(["3", "2.1", "2.0", "1.3"])
    assert partial.version == "2.1"


def test_get_local_versions(tmp_path: Path) -> None:
    spec = AssetSpec(name="name")
    assert spec.get_local_versions(str(tmp_path / "not_a_dir")) == []
    for version in ("0.0", "0.1", "1.0", "notes"):
        (tmp_path / version).mkdir()
    assert spec.get_local_versions(str(tmp_path)) == ["1.0", "0.1", "0.0"]


def test_from_string_and_equality() -> None:
    assert AssetSpec.from_string("blabli/blebla:1.2[/foo/bar]") == AssetSpec(
        name="blabli/blebla", version="1.2", sub_part="/foo/bar"
    )
    assert AssetSpec.from_string("a:1", versioning="major_minor") == AssetSpec("a", version="1")
    assert AssetSpec("a") != AssetSpec("b")


@pytest.mark.parametrize(
    "text", ["/modelkit/tmp-local-asset/1.0/README.md", r"C:\A\L0cAL\Windows\file.ext"]
)
def test_absolute_and_windows_paths_are_not_specs(text: str) -> None:
    """A difference: modelkit parses these as names, then looks them up as paths."""
    with pytest.raises(errors.InvalidAssetSpecError):
        AssetSpec.from_string(text)
