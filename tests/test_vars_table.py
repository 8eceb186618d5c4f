"""The variable table of docs/variables.md is generated from the argument specs and kept current."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from conftest import ROOT

SCRIPT = ROOT / "scripts" / "vars_table.py"
VARIABLES = ROOT / "docs" / "variables.md"


def test_the_variables_table_matches_the_argument_specs() -> None:
    result = subprocess.run([sys.executable, str(SCRIPT), "--check", str(VARIABLES)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_table_lists_every_variable_once() -> None:
    table = subprocess.run([sys.executable, str(SCRIPT)], capture_output=True, text=True, check=True).stdout
    rows = [line for line in table.splitlines()[2:] if line.startswith("| `")]
    names = [row.split("`")[1] for row in rows]
    assert len(names) == len(set(names))
    assert {"ipp_user", "ipp_engines", "ipp_profile", "ipp_venv", "ipp_install_source"} <= set(names)


def test_a_stale_table_is_reported(tmp_path: Path) -> None:
    variables = tmp_path / "variables.md"
    variables.write_text(VARIABLES.read_text().replace("| `ipp_user` |", "| `ipp_someone` |"))
    result = subprocess.run([sys.executable, str(SCRIPT), "--check", str(variables)], capture_output=True, text=True)
    assert result.returncode == 1
    assert "out of date" in result.stdout


def test_write_brings_a_stale_table_up_to_date(tmp_path: Path) -> None:
    variables = tmp_path / "variables.md"
    variables.write_text(VARIABLES.read_text().replace("| `ipp_user` |", "| `ipp_someone` |"))
    subprocess.run([sys.executable, str(SCRIPT), "--write", str(variables)], check=True)
    assert variables.read_text() == VARIABLES.read_text()


def test_a_file_without_the_table_is_refused_with_a_message() -> None:
    # The README links to the table; it no longer holds one.
    result = subprocess.run(
        [sys.executable, str(SCRIPT), "--check", str(ROOT / "README.md")], capture_output=True, text=True
    )
    assert result.returncode == 1
    assert "no variable table here" in result.stdout
    assert "docs/variables.md" in (ROOT / "README.md").read_text()
