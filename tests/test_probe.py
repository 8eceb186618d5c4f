"""The node probe of role ipp_install (files/ipp_probe.py), run as the role runs it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import venv
from pathlib import Path
from typing import Any

import ipp_probe
import pytest
from conftest import ROLES

SCRIPT = ROLES / "ipp_install" / "files" / "ipp_probe.py"


def run_probe(python: str, target: Path) -> dict[str, Any]:
    """The probe as probe.yml runs it: its text given to `python -c`, the venv as argument."""
    answer = subprocess.run([python, "-c", SCRIPT.read_text(), str(target)], capture_output=True, text=True, check=True)
    found: dict[str, Any] = json.loads(answer.stdout)
    return found


def test_no_venv_yet(tmp_path: Path) -> None:
    found = run_probe(sys.executable, tmp_path / "venv")
    assert found["python"] == "{}.{}".format(*sys.version_info[:2])
    assert found["venv"] == {"exists": False, "python": None, "interpreter": False, "executable": ""}
    assert found["packages"] == {}
    assert found["arch"] and found["glibc"]


def test_a_venv_gives_its_python_and_packages_with_their_requirements(tmp_path: Path) -> None:
    target = tmp_path / "venv"
    venv.create(target, with_pip=True)
    found = run_probe(sys.executable, target)
    assert found["venv"]["exists"] and found["venv"]["interpreter"]
    assert found["venv"]["python"] == found["python"]
    assert "pip" in found["packages"]
    assert found["packages"]["pip"]["version"]


def test_a_venv_whose_interpreter_is_gone(tmp_path: Path) -> None:
    target = tmp_path / "venv"
    venv.create(target, with_pip=False, symlinks=True)
    gone = tmp_path / "python3.9"
    (target / "bin" / "python").unlink()
    os.symlink(gone, target / "bin" / "python")
    assert run_probe(sys.executable, target)["venv"]["interpreter"] is False


def test_pyvenv_cfg_of_another_minor_and_a_missing_executable(tmp_path: Path) -> None:
    target = tmp_path / "venv"
    (target / "bin").mkdir(parents=True)
    (target / "bin" / "python").symlink_to(sys.executable)
    (target / "pyvenv.cfg").write_text("home = /usr/bin\nversion = 3.11.2\nexecutable = /nonexistent/python3.11\n")
    state = ipp_probe.venv_state(str(target))
    assert state == {"exists": True, "python": "3.11", "interpreter": False, "executable": "/nonexistent/python3.11"}


def test_requirement_names_are_normalized() -> None:
    assert ipp_probe.requirement_name("Jupyter_Core>=4.12; extra == 'x'") == "jupyter-core"
    assert ipp_probe.requirement_name("(nothing") == ""
    assert ipp_probe.minor("3.13.5") == "3.13" and ipp_probe.minor("x") is None


def test_bad_usage(capsys: pytest.CaptureFixture[str]) -> None:
    assert ipp_probe.main([]) == 2
    assert "usage" in capsys.readouterr().err
