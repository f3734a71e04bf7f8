"""Entry points read from disk are exactly those importlib.metadata finds."""

from __future__ import annotations

import subprocess
import sys
import tempfile
import zipfile
from importlib import metadata
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from modelkit_assets import entry_points as ep


def _ours(group: str) -> list[tuple[str, str, str]]:
    return [(e.name, e.value, _dist_name(e.dist)) for e in ep.entry_points(group)]


def _theirs(group: str) -> list[tuple[str, str, str]]:
    return [(e.name, e.value, _dist_name(e.dist)) for e in metadata.entry_points(group=group)]


def _dist_name(dist: metadata.Distribution | None) -> str:
    return dist.metadata["Name"] if dist is not None else "?"


def _install(site: Path, distribution: str, entry_points: str, version: str = "1.0") -> Path:
    info = site / f"{distribution}-{version}.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: {distribution}\nVersion: {version}\n"
    )
    (info / "entry_points.txt").write_text(entry_points)
    return info


@pytest.fixture
def sites(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    first, second = tmp_path / "first", tmp_path / "second"
    first.mkdir()
    second.mkdir()
    monkeypatch.syspath_prepend(str(second))
    monkeypatch.syspath_prepend(str(first))
    return first, second


@pytest.mark.parametrize("group", ["modelkit_assets", "console_scripts", "pytest11", "none.such"])
def test_installed_groups_match_importlib(group: str) -> None:
    assert _ours(group) == _theirs(group)


def test_our_plugins_are_found() -> None:
    names = {e.name: e.value for e in ep.entry_points("modelkit_assets")}
    assert names == {
        "s3": "modelkit_assets_s3.plugin",
        "gcs": "modelkit_assets_gcs.plugin",
        "az": "modelkit_assets_az.plugin",
    }


def test_the_first_distribution_of_a_name_on_sys_path_wins(sites: tuple[Path, Path]) -> None:
    first, second = sites
    _install(second, "Shadowed_Dist", "[grp]\nold = old_module\n", "1.0")
    _install(first, "shadowed.dist", "[grp]\nnew = new_module\n", "2.0")
    _install(second, "other_dist", "[grp]\nother = other_module\n")
    assert [e.name for e in ep.entry_points("grp")] == ["new", "other"]
    assert _ours("grp") == _theirs("grp")


def test_lines_are_read_as_importlib_reads_them(sites: tuple[Path, Path]) -> None:
    text = (
        "# a comment\n\n[console_scripts]\nx = y:z\n"
        "[grp]\n  spaced   =   mod.sub : attr.inner [extra1, extra2]  \n# off = commented\n"
        "plain=mod\n[grp.other]\nno = no\n"
    )
    _install(sites[0], "lines", text)
    assert [(e.name, e.value) for e in ep.entry_points("grp")] == [
        ("spaced", "mod.sub : attr.inner [extra1, extra2]"),
        ("plain", "mod"),
    ]
    assert _ours("grp") == _theirs("grp")


def test_load_imports_the_module_and_attribute(sites: tuple[Path, Path]) -> None:
    (sites[0] / "ep_target.py").write_text("class Outer:\n    class Inner:\n        pass\n")
    _install(sites[0], "target", "[grp]\nmodule = ep_target\nnested = ep_target:Outer.Inner [x]\n")
    module, nested = ep.entry_points("grp")
    assert module.load().__name__ == "ep_target"
    assert nested.load().__qualname__ == "Outer.Inner"


def test_an_invalid_value_fails_on_load_only(sites: tuple[Path, Path]) -> None:
    _install(sites[0], "broken", "[grp]\nbad = not a module!\nno_value\n")
    bad, empty = ep.entry_points("grp")
    for entry_point in (bad, empty):
        with pytest.raises(ValueError, match="invalid entry point value"):
            entry_point.load()


def test_a_zip_on_sys_path_is_left_to_importlib(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    archive = tmp_path / "zipped.zip"
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("zipped-1.0.dist-info/METADATA", "Metadata-Version: 2.1\nName: zipped\n")
        z.writestr("zipped-1.0.dist-info/entry_points.txt", "[grp]\nin_zip = zipped_mod\n")
    monkeypatch.syspath_prepend(str(archive))
    assert [e.name for e in ep.entry_points("grp")] == ["in_zip"]


def test_an_import_hook_that_finds_distributions_is_left_to_importlib(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    info = _install(tmp_path / "hidden", "hooked", "[grp]\nfrom_hook = hooked_mod\n")

    class Finder:
        @staticmethod
        def find_spec(*args: Any) -> None:
            return None

        @staticmethod
        def find_distributions(context: Any = None) -> list[metadata.Distribution]:
            return [metadata.PathDistribution(info)]

    monkeypatch.setattr(sys, "meta_path", [Finder, *sys.meta_path])
    assert [e.name for e in ep.entry_points("grp")] == ["from_hook"]


_word = st.text(alphabet="abcxyz_.", min_size=1, max_size=6)
_line = st.one_of(
    st.builds(
        lambda n, v, a, b: f"{a}{n}{a}={b}{v}{b}",
        _word,
        _word,
        st.sampled_from(["", " "]),
        st.sampled_from(["", "  "]),
    ),
    st.builds(lambda g: f"[{g}]", st.sampled_from(["grp", "other", "grp.sub"])),
    st.builds(lambda c: f"#{c}", _word),
    st.just(""),
)


@settings(max_examples=60, deadline=None)
@given(lines=st.lists(_line, max_size=12))
def test_any_file_reads_as_importlib_reads_it(lines: list[str]) -> None:
    with tempfile.TemporaryDirectory() as root:
        info = _install(Path(root), "generated", "\n".join(lines) + "\n")
        theirs = metadata.PathDistribution(info).entry_points.select(group="grp")
        ours = ep.read_group(str(info), "grp")
        assert [(e.name, e.value) for e in ours] == [(e.name, e.value) for e in theirs]


def test_a_push_does_not_import_importlib_metadata(tmp_path: Path) -> None:
    source = tmp_path / "weights.bin"
    source.write_bytes(b"w")
    (tmp_path / "bucket").mkdir()
    code = (
        "import sys\n"
        "from modelkit_assets import StorageProvider\n"
        f"store = StorageProvider(provider='local', bucket={str(tmp_path / 'bucket')!r})\n"
        f"store.new({str(source)!r}, 'x', '0.0')\n"
        "assert store.get_versions_info('x') == ['0.0']\n"
        "assert 'importlib.metadata' not in sys.modules, 'imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
