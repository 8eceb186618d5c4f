"""The offline wheelhouse builder (ipp_install/files/ipp_wheelhouse.py)."""

from __future__ import annotations

import tarfile
from pathlib import Path

import ipp_wheelhouse
import pytest


def test_platform_tags_cover_every_older_glibc() -> None:
    tags = ipp_wheelhouse.platform_tags("x86_64", "2.36")
    assert tags[0] == "manylinux_2_36_x86_64"
    assert "manylinux_2_17_x86_64" in tags
    assert "manylinux_2_5_x86_64" in tags
    assert "manylinux2014_x86_64" in tags and "manylinux1_x86_64" in tags
    assert tags[-1] == "linux_x86_64"
    assert not any("2_37" in tag for tag in tags)


def test_platform_tags_skip_legacy_names_a_glibc_is_too_old_for() -> None:
    tags = ipp_wheelhouse.platform_tags("aarch64", "2.12")
    assert "manylinux2014_aarch64" not in tags
    assert "manylinux2010_aarch64" in tags


def test_platform_tags_reject_an_unknown_glibc() -> None:
    with pytest.raises(ValueError, match="glibc"):
        ipp_wheelhouse.platform_tags("x86_64", "3.1")


def test_source_only_packages_are_built_and_the_rest_downloaded() -> None:
    commands = ipp_wheelhouse.build_commands(
        ["pip"], Path("/w"), ["ipyparallel==9.2.0", "epyc==1.7.2"], "3.11", "x86_64", "2.36"
    )
    assert commands[0] == ["pip", "wheel", "--no-deps", "--wheel-dir", "/w", "epyc==1.7.2"]
    download = commands[-1]
    assert download[:3] == ["pip", "download", "--only-binary=:all:"]
    assert download[download.index("--python-version") + 1] == "3.11"
    assert "cp311" in download
    assert download[-2:] == ["ipyparallel==9.2.0", "epyc==1.7.2"]
    assert len(commands) == 2


def test_the_digest_names_requirements_and_target() -> None:
    digest = ipp_wheelhouse.requirements_digest(["a==1", "b==2"], "3.11", "x86_64", "2.36")
    assert digest == ipp_wheelhouse.requirements_digest(["b==2", "a==1"], "3.11", "x86_64", "2.36")
    assert digest != ipp_wheelhouse.requirements_digest(["a==1", "b==3"], "3.11", "x86_64", "2.36")
    assert digest != ipp_wheelhouse.requirements_digest(["a==1", "b==2"], "3.12", "x86_64", "2.36")


def test_a_real_wheelhouse_is_built_once_and_then_left_alone(tmp_path: Path) -> None:
    dest = tmp_path / "cp311-x86_64-glibc2.36"
    assert (
        ipp_wheelhouse.main(
            ["--dest", str(dest), "--python", "3.11", "--arch", "x86_64", "--glibc", "2.36", "six==1.16.0"]
        )
        == 0
    )
    wheels = sorted(path.name for path in dest.glob("*.whl"))
    assert wheels == ["six-1.16.0-py2.py3-none-any.whl"]
    with tarfile.open(ipp_wheelhouse.archive_path(dest)) as archive:
        assert sorted(archive.getnames()) == [ipp_wheelhouse.STAMP, *wheels]
    before = ipp_wheelhouse.archive_path(dest).stat().st_mtime_ns
    assert not ipp_wheelhouse.build(dest, ["six==1.16.0"], "3.11", "x86_64", "2.36")
    assert ipp_wheelhouse.archive_path(dest).stat().st_mtime_ns == before


def test_new_requirements_replace_the_old_wheels(tmp_path: Path) -> None:
    dest = tmp_path / "wh"
    assert ipp_wheelhouse.build(dest, ["six==1.16.0"], "3.11", "x86_64", "2.36")
    assert ipp_wheelhouse.build(dest, ["six==1.17.0"], "3.11", "x86_64", "2.36")
    assert sorted(path.name for path in dest.glob("*.whl")) == ["six-1.17.0-py2.py3-none-any.whl"]


def test_a_lock_file_gives_its_pins_and_more_requirements_follow(tmp_path: Path) -> None:
    lock = tmp_path / "cluster-py3.11.txt"
    lock.write_text("# made by scripts/lock.sh\nsix==1.16.0\n    # via -r cluster.in\n\n")
    assert ipp_wheelhouse.read_requirements(lock) == ["six==1.16.0"]
    dest = tmp_path / "wh"
    args = ["--dest", str(dest), "--python", "3.11", "--arch", "x86_64", "--glibc", "2.36"]
    assert ipp_wheelhouse.main([*args, "--requirement", str(lock)]) == 0
    assert sorted(path.name for path in dest.glob("*.whl")) == ["six-1.16.0-py2.py3-none-any.whl"]
    stamp = (dest / ipp_wheelhouse.STAMP).read_text()
    assert "six==1.16.0" in stamp


def test_no_requirement_at_all_is_refused(tmp_path: Path) -> None:
    with pytest.raises(SystemExit):
        ipp_wheelhouse.main(["--dest", str(tmp_path), "--python", "3.11", "--arch", "x86_64", "--glibc", "2.36"])
