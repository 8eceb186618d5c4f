"""Shared paths for the tests."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
ROLES = ROOT / "roles"


def mappings(node: object) -> Iterator[dict[str, Any]]:
    """Every mapping of a YAML document: plays, blocks, handlers, tasks and their arguments."""
    if isinstance(node, list):
        for item in node:
            yield from mappings(item)
    elif isinstance(node, dict):
        yield node
        for value in node.values():
            yield from mappings(value)


# The helpers' modules (the ipp-helpers wheel's sources), the roles' scripts and plugins.
for folder in (
    ROLES / "ipp_install" / "files" / "helpers",
    ROLES / "ipp_install" / "files",
    ROLES / "ipp_install" / "filter_plugins",
    ROLES / "ipp_controller" / "filter_plugins",
    ROLES / "ipp" / "filter_plugins",
    ROLES / "ipp_status" / "filter_plugins",
    ROOT / "bench",
):
    sys.path.insert(0, str(folder))


def run_playbook(
    tmp_path: Path, inventory: dict[str, Any], playbook: str, *args: str, path_first: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """Run one of the project's playbooks with this inventory, as a user would from the root.

    path_first: a directory searched first for commands (stand-ins the hosts then run).
    """
    path = tmp_path / "hosts.yml"
    path.write_text(yaml.safe_dump(inventory))
    env = {**os.environ, "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg"), "ANSIBLE_NOCOLOR": "1"}
    if path_first is not None:
        env["PATH"] = f"{path_first}{os.pathsep}{env.get('PATH', '')}"
    return subprocess.run(
        [str(Path(sys.executable).parent / "ansible-playbook"), "-i", str(path), *args, playbook],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=300,
        check=False,
    )


def failed_without_changes(result: subprocess.CompletedProcess[str]) -> str:
    """Assert the run failed and changed nothing on any host; return its output on one line."""
    text = " ".join((result.stdout + result.stderr).split())
    assert result.returncode != 0, text
    recap = re.findall(r"changed=(\d+)", result.stdout)
    assert recap and set(recap) == {"0"}, text
    return text
