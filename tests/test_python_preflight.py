"""A cluster whose hosts run different Python minor versions (of ipp_python), or one without a
lock, is refused by site.yml's first play, before any host is changed.

Real runs of the playbook against hosts reached with the local connection, each given its own
``ipp_python``: interpreters of two minor versions found on this machine (the venv's, pyenv's,
the distribution's). Without two such interpreters the mixed case is skipped.
"""

from __future__ import annotations

import functools
import glob
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from conftest import ROOT, failed_without_changes, run_playbook
from test_preflight import assert_stopped_before_changes


def minor_of(python: str) -> str | None:
    """The minor version ``3.X`` the interpreter answers, None when it does not run."""
    try:
        answer = subprocess.run(
            [python, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return answer.stdout.strip()


@functools.cache
def interpreters() -> dict[str, str]:
    """One interpreter per Python minor version found here: {minor: path}."""
    candidates = [sys.executable, "/usr/bin/python3"]
    candidates += sorted(glob.glob(str(Path.home() / ".pyenv" / "versions" / "3.*" / "bin" / "python3")))
    candidates += [path for name in ("python3.11", "python3.12", "python3.13") if (path := shutil.which(name))]
    found: dict[str, str] = {}
    for python in candidates:
        minor = minor_of(python)
        if minor and minor not in found:
            found[minor] = python
    return found


def inventory(pythons: dict[str, str], extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """cl-0 the controller, the other hosts engines; each host with its own ipp_python."""
    local = {"ansible_connection": "local", "ansible_python_interpreter": sys.executable}
    names = list(pythons)
    return {
        "all": {
            "vars": {**local, "ipp_user": "nobody", **(extra or {})},
            "children": {
                "controller": {"hosts": {names[0]: {"ipp_python": pythons[names[0]]}}},
                "engines": {"hosts": {name: {"ipp_python": pythons[name], "ipp_engines": 1} for name in names[1:]}},
            },
        }
    }


def test_hosts_of_different_python_minors_are_refused_with_each_version(tmp_path: Path) -> None:
    found = interpreters()
    if len(found) < 2:
        pytest.skip(f"needs interpreters of two Python minor versions, found {found}")
    (old, old_python), (new, new_python) = sorted(found.items())[:2]
    hosts = {"cl-0": old_python, "cl-1": old_python, "cl-2": new_python}
    text = assert_stopped_before_changes(run_playbook(tmp_path, inventory(hosts), "site.yml"))
    assert "run different Python minor versions" in text, text
    assert f"cl-0: Python {old}, cl-1: Python {old}, cl-2: Python {new}" in text, text


def test_a_limited_run_is_compared_with_the_controller_host(tmp_path: Path) -> None:
    found = interpreters()
    if len(found) < 2:
        pytest.skip(f"needs interpreters of two Python minor versions, found {found}")
    (old, old_python), (new, new_python) = sorted(found.items())[:2]
    hosts = {"cl-0": old_python, "cl-1": new_python}
    text = assert_stopped_before_changes(run_playbook(tmp_path, inventory(hosts), "site.yml", "-l", "cl-1"))
    assert f"cl-0: Python {old}, cl-1: Python {new}" in text, text


def test_a_python_minor_without_a_lock_is_refused(tmp_path: Path) -> None:
    minor, python = next(iter(interpreters().items()))
    locks = tmp_path / "locks"
    locks.mkdir()
    (locks / "cluster-py2.7.txt").write_text("six==1.16.0\n")
    hosts = {"cl-0": python, "cl-1": python}
    result = run_playbook(tmp_path, inventory(hosts, {"ipp_lock_dir": str(locks)}), "site.yml")
    text = assert_stopped_before_changes(result)
    assert f"run Python {minor} (cl-0, cl-1), and there is no lock for it" in text, text
    assert f"{locks}/cluster-py{minor}.txt is missing (locks exist for Python 2.7)" in text, text


def test_an_interpreter_that_does_not_run_is_refused(tmp_path: Path) -> None:
    hosts = {"cl-0": sys.executable, "cl-1": "/nonexistent/python3"}
    text = failed_without_changes(run_playbook(tmp_path, inventory(hosts), "site.yml"))
    assert "ipp_python '/nonexistent/python3' does not run on host cl-1" in text, text


def test_every_supported_minor_has_its_locks() -> None:
    """scripts/lock.sh made the cluster and tunnel-mode locks of each minor, in both lock sets."""
    for folder in (ROOT / "requirements", ROOT / "molecule" / "resources" / "lock-upgrade"):
        minors = {path.name.removeprefix("cluster-py").removesuffix(".txt") for path in folder.glob("cluster-py*.txt")}
        assert minors == {"3.11", "3.13"}, folder
        for minor in minors:
            assert (folder / f"ssh-py{minor}.txt").is_file()
