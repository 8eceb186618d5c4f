"""Bad input stops shadow.yml before the workstation is changed.

The runs use hosts reached with the local connection (or a closed local port for an
unreachable controller) and real interpreters of this machine for the Python checks.
"""

from __future__ import annotations

import glob
import subprocess
import sys
from pathlib import Path
from typing import Any

from conftest import failed_without_changes, run_playbook

LOCAL = {"ansible_connection": "local", "ansible_python_interpreter": sys.executable}
MINOR = f"{sys.version_info.major}.{sys.version_info.minor}"


def other_minor_python() -> str:
    """A real interpreter on this machine whose minor version differs from the tests' own."""
    candidates = sorted(glob.glob("/root/.pyenv/versions/3.*/bin/python3")) + sorted(glob.glob("/usr/bin/python3.*"))
    for path in candidates:
        result = subprocess.run(
            [path, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"], capture_output=True, text=True
        )
        if result.returncode == 0 and result.stdout.strip() not in ("", MINOR):
            return path
    raise AssertionError(f"no Python other than {MINOR} on this machine to test a mismatch with")


def inventory(controller: dict[str, Any], laptop: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "all": {
            "vars": {"ipp_user": "nobody", "ipp_workstation_user": "nobody", "ipp_venv": sys.prefix},
            "children": {
                "controller": {"hosts": {"cl-0": controller}},
                "engines": {"hosts": {"cl-1": {**LOCAL, "ipp_engines": 2}}},
                "workstations": {"hosts": {"laptop": {**LOCAL, **(laptop or {})}}},
            },
        }
    }


def run(tmp_path: Path, inv: dict[str, Any], limit: str) -> str:
    result = run_playbook(tmp_path, inv, "shadow.yml", "-l", limit)
    text = failed_without_changes(result)
    assert "Install the pinned packages" not in result.stdout, text
    return text


def test_a_host_outside_workstations_is_refused(tmp_path: Path) -> None:
    text = run(tmp_path, inventory(LOCAL), "cl-1")
    assert "shadow.yml sets up hosts of group 'workstations' only" in text
    assert "names cl-1" in text


def test_an_unreachable_controller_is_reported_before_any_change(tmp_path: Path) -> None:
    closed_port = {"ansible_connection": "ssh", "ansible_host": "127.0.0.1", "ansible_port": 9}
    text = run(tmp_path, inventory(closed_port), "laptop")
    assert "Read the cluster's Python version on the controller host" in text
    assert "[laptop -> cl-0]: UNREACHABLE!" in text


def test_a_python_minor_mismatch_is_refused(tmp_path: Path) -> None:
    other = other_minor_python()
    text = run(tmp_path, inventory(LOCAL, {"ipp_workstation_python": other}), "laptop")
    assert f"The cluster runs Python {MINOR}" in text
    assert "must use the same minor version" in text


def test_root_as_the_workstation_user_is_refused(tmp_path: Path) -> None:
    text = run(tmp_path, inventory(LOCAL, {"ipp_workstation_user": "root"}), "laptop")
    assert "ipp_workstation_user 'root' on laptop must be an existing ordinary account" in text


def test_an_inventory_without_a_controller_is_refused(tmp_path: Path) -> None:
    inv = inventory(LOCAL)
    del inv["all"]["children"]["controller"]
    text = run(tmp_path, inv, "laptop")
    assert "The inventory must put exactly one host in group 'controller'; it has 0 (none)" in text
    assert "Put the host that runs ipcontroller in it" in text
