"""The ipp-helpers wheel (roles/ipp_install/files/helpers): built the same every time, a new
version for changed code, and a package pip installs, checks and removes like any other."""

from __future__ import annotations

import base64
import csv
import hashlib
import io
import json
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import ipp_helpers_build
import pytest
from ipp_lock import venv_plan

HELPERS = Path(__file__).resolve().parent.parent / "roles" / "ipp_install" / "files" / "helpers"
MODULES = ["ipp_check", "ipp_jupyter", "ipp_metrics", "ipp_recovery"]


@pytest.fixture
def source(tmp_path: Path) -> Path:
    """A copy of the helpers' sources, to change."""
    copy = tmp_path / "helpers"
    shutil.copytree(HELPERS, copy, ignore=shutil.ignore_patterns("__pycache__"))
    return copy


def site_packages(python: str) -> str:
    """The site-packages directory of the venv whose interpreter this is."""
    return subprocess.run(
        [python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()


def test_the_same_sources_build_the_same_bytes(tmp_path: Path) -> None:
    first = ipp_helpers_build.build(tmp_path / "a")
    second = ipp_helpers_build.build(tmp_path / "b")
    again = ipp_helpers_build.build(tmp_path / "a")
    assert first["changed"] and second["changed"] and not again["changed"]
    assert Path(first["wheel"]).read_bytes() == Path(second["wheel"]).read_bytes()
    assert first["requirement"] == f"ipp-helpers=={first['version']}"
    assert Path(first["wheel"]).name == f"ipp_helpers-{first['version']}-py3-none-any.whl"


def test_the_version_is_the_base_and_a_digest_of_the_sources(source: Path, tmp_path: Path) -> None:
    before = ipp_helpers_build.build(tmp_path, source)
    base, digest = before["version"].split("+")
    assert base == "1.0.0" and len(digest) == 12 and int(digest, 16) >= 0
    module = source / "ipp_recovery.py"
    module.write_text(module.read_text() + "\n# changed\n")
    after = ipp_helpers_build.build(tmp_path, source)
    assert after["version"] != before["version"] and after["version"].startswith("1.0.0+")
    assert after["changed"] and Path(before["wheel"]).is_file()


def test_the_wheel_holds_the_modules_and_a_valid_record(tmp_path: Path) -> None:
    built = ipp_helpers_build.build(tmp_path)
    with zipfile.ZipFile(built["wheel"]) as wheel:
        names = wheel.namelist()
        info = f"ipp_helpers-{built['version']}.dist-info"
        assert names == [f"{name}.py" for name in MODULES] + [
            f"{info}/{name}" for name in ("METADATA", "WHEEL", "entry_points.txt", "RECORD")
        ]
        for name in MODULES:
            assert wheel.read(f"{name}.py") == (HELPERS / f"{name}.py").read_bytes()
        assert all(member.date_time == (1980, 1, 1, 0, 0, 0) for member in wheel.infolist())
        rows = list(csv.reader(io.StringIO(wheel.read(f"{info}/RECORD").decode())))
        assert [row[0] for row in rows] == names
        for path, digest, size in rows[:-1]:
            content = wheel.read(path)
            expected = base64.urlsafe_b64encode(hashlib.sha256(content).digest()).rstrip(b"=").decode()
            assert digest == f"sha256={expected}" and int(size) == len(content)
        assert rows[-1] == [f"{info}/RECORD", "", ""]
        assert wheel.read(f"{info}/entry_points.txt").decode() == "[console_scripts]\nipp-check = ipp_check:script\n"
        metadata = wheel.read(f"{info}/METADATA").decode().splitlines()
        assert f"Version: {built['version']}" in metadata
        assert "Requires-Dist: ipyparallel" in metadata and "Requires-Dist: epyc" in metadata


def test_pip_builds_the_same_wheel_through_the_backend(tmp_path: Path) -> None:
    built = ipp_helpers_build.build(tmp_path / "direct")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-index", "--wheel-dir", tmp_path / "pip", HELPERS],
        check=True,
        capture_output=True,
    )
    (wheel,) = (tmp_path / "pip").iterdir()
    assert wheel.read_bytes() == Path(built["wheel"]).read_bytes()


def test_pip_installs_checks_and_removes_it_in_a_venv(tmp_path: Path) -> None:
    built = ipp_helpers_build.build(tmp_path / "wheels")
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", venv], check=True)
    python = venv / "bin" / "python"
    pip = [str(python), "-m", "pip", "--disable-pip-version-check"]
    # As role ipp_install installs it: by its pin, from the directory the wheel was copied to.
    subprocess.run(
        [*pip, "install", "--no-deps", "--no-index", "--find-links", str(tmp_path / "wheels"), built["requirement"]],
        check=True,
        capture_output=True,
    )
    site = site_packages(str(python))
    assert sorted(path.name for path in Path(site).glob("ipp_*.py")) == [f"{name}.py" for name in MODULES]
    script = venv / "bin" / "ipp-check"
    assert script.read_text().splitlines()[0] == f"#!{python}"
    listed = json.loads(subprocess.run([*pip, "list", "--format=json"], check=True, capture_output=True).stdout)
    assert {"name": "ipp-helpers", "version": built["version"]} in listed
    # Its dependencies are the lock's: pip check names them when they are missing.
    check = subprocess.run([*pip, "check"], capture_output=True, text=True)
    assert check.returncode == 1 and "ipyparallel" in check.stdout and "epyc" in check.stdout
    subprocess.run([*pip, "uninstall", "--yes", "ipp-helpers"], check=True, capture_output=True)
    assert not list(Path(site).glob("ipp_*.py")) and not script.exists()


def test_the_probe_of_an_installed_wheel_tells_which_modules_a_new_one_changes(source: Path, tmp_path: Path) -> None:
    built = ipp_helpers_build.build(tmp_path / "wheels", source)
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", venv], check=True)
    python = str(venv / "bin" / "python")
    site = site_packages(python)
    # The dev venv's pip installs into the bare venv, as the role's pip does into its own.
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "--disable-pip-version-check",
            "install",
            "--no-deps",
            "--target",
            site,
            built["wheel"],
        ],
        check=True,
        capture_output=True,
    )
    probe_script = HELPERS.parent / "ipp_probe.py"
    found = json.loads(
        subprocess.run([python, "-c", probe_script.read_text(), str(venv)], check=True, capture_output=True).stdout
    )
    assert found["packages"]["ipp-helpers"]["hashes"] == built["hashes"]
    assert venv_plan(found, [], built)["satisfied"]
    module = source / "ipp_metrics.py"
    module.write_text(module.read_text() + "\n# changed\n")
    plan = venv_plan(found, [], ipp_helpers_build.build(tmp_path / "wheels", source))
    assert plan["helpers_changed"] == ["ipp_metrics"] and not plan["lock_missing"]
