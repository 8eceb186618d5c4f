"""Roles talk through what they document, not through each other's registered results.

A role's `register:` names are its own: another role (or a playbook) that reads one depends
on how that role happens to do its work. What a role offers others is a fact it sets in every
run and names in its meta/argument_specs.yml (docs/design.md, "Restarts: who decides").
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml
from conftest import ROLES, ROOT, mappings


def registered(role: Path) -> set[str]:
    """The names a role's tasks and handlers register."""
    names: set[str] = set()
    for path in [*role.glob("tasks/*.yml"), *role.glob("handlers/*.yml")]:
        for task in mappings(yaml.safe_load(path.read_text())):
            if isinstance(task.get("register"), str):
                names.add(str(task["register"]))
    return names


def readers(name: str, owner: Path) -> list[str]:
    """The files outside role `owner` (other roles, the playbooks) that name `name`."""
    word = re.compile(rf"\b{re.escape(name)}\b")
    files = [path for path in ROLES.rglob("*") if path.is_file() and owner not in path.parents]
    files += sorted((ROOT / "playbooks").glob("*.yml"))
    return [
        str(path.relative_to(ROOT))
        for path in files
        if path.suffix in {".yml", ".j2", ".py"} and word.search(path.read_text())
    ]


ROLE_DIRS = sorted(path for path in ROLES.iterdir() if (path / "tasks").is_dir())


def test_the_roles_register_results() -> None:
    assert sum(len(registered(role)) for role in ROLE_DIRS) > 20  # the search finds them


@pytest.mark.parametrize("role", ROLE_DIRS, ids=lambda path: path.name)
def test_no_one_else_reads_a_roles_registered_results(role: Path) -> None:
    leaks = {name: found for name in sorted(registered(role)) if (found := readers(name, role))}
    assert not leaks, f"registered results of role {role.name} read elsewhere: {leaks}"


def test_the_restart_facts_are_documented_by_the_roles_that_set_them() -> None:
    for role, fact in [("ipp_install", "ipp_install_changed"), ("ipp_profile", "ipp_profile_engines_changed")]:
        assert fact in (ROLES / role / "meta" / "argument_specs.yml").read_text(), (role, fact)
        tasks = "".join(path.read_text() for path in (ROLES / role / "tasks").glob("*.yml"))
        assert re.search(rf"set_fact:\n\s+{fact}:", tasks), f"{role} does not set {fact}"
