"""The README's variable table is generated from the argument specs and kept current."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from conftest import ROOT

SCRIPT = ROOT / "scripts" / "vars_table.py"


def test_the_readme_table_matches_the_argument_specs() -> None:
    result = subprocess.run(
        [sys.executable, str(SCRIPT), "--check", str(ROOT / "README.md")], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_table_lists_every_variable_once() -> None:
    table = subprocess.run([sys.executable, str(SCRIPT)], capture_output=True, text=True, check=True).stdout
    rows = [line for line in table.splitlines()[2:] if line.startswith("| `")]
    names = [row.split("`")[1] for row in rows]
    assert len(names) == len(set(names))
    assert {"ipp_user", "ipp_engines", "ipp_profile", "ipp_venv", "ipp_install_source"} <= set(names)


def test_a_stale_table_is_reported(tmp_path: Path) -> None:
    readme = tmp_path / "README.md"
    text = (ROOT / "README.md").read_text().replace("| `ipp_user` |", "| `ipp_someone` |")
    readme.write_text(text)
    result = subprocess.run([sys.executable, str(SCRIPT), "--check", str(readme)], capture_output=True, text=True)
    assert result.returncode == 1
    assert "out of date" in result.stdout
