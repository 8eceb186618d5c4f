"""Every role entry point the playbooks use (include_role/import_role tasks_from) has an
argument spec: a newcomer reads what it does and what it needs in meta/argument_specs.yml."""

from __future__ import annotations

import pytest
import yaml
from conftest import ROLES, ROOT, mappings

PLAYBOOK_DIRS = ["playbooks", "roles", "molecule", "lab"]
ROLE_ACTIONS = {"ansible.builtin.include_role", "ansible.builtin.import_role"}


def entry_points() -> list[tuple[str, str, str]]:
    """(role, entry point, where) for each tasks_from of the project's YAML."""
    found = []
    files = [ROOT / "site.yml", ROOT / "shadow.yml"]
    for folder in PLAYBOOK_DIRS:
        files += sorted((ROOT / folder).rglob("*.yml"))
    for path in files:
        document = yaml.safe_load(path.read_text())
        for task in mappings(document):
            for action in ROLE_ACTIONS & task.keys():
                arguments = task[action]
                if isinstance(arguments, dict) and "tasks_from" in arguments:
                    entry = str(arguments["tasks_from"])
                    found.append((str(arguments["name"]), entry, str(path.relative_to(ROOT))))
    return found


ENTRY_POINTS = entry_points()


def test_the_playbooks_use_entry_points() -> None:
    assert len(ENTRY_POINTS) > 5  # the search finds them


@pytest.mark.parametrize(("role", "entry", "where"), ENTRY_POINTS, ids=lambda value: str(value))
def test_each_entry_point_has_an_argument_spec(role: str, entry: str, where: str) -> None:
    # Ansible validates an entry point against the spec named as tasks_from is: with ".yml"
    # it looks for a spec "units.yml" and validates nothing.
    assert not entry.endswith((".yml", ".yaml")), f"{where}: tasks_from {entry} names the file, not the entry point"
    assert (ROLES / role / "tasks" / f"{entry}.yml").is_file(), f"{where}: no tasks/{entry}.yml in {role}"
    specs = yaml.safe_load((ROLES / role / "meta" / "argument_specs.yml").read_text())["argument_specs"]
    assert entry in specs, f"{where} runs {role}'s {entry}, which meta/argument_specs.yml does not describe"
    assert specs[entry].get("short_description"), f"{role}'s {entry} has no short_description"


def test_role_ipp_runs_nothing_as_a_dependency() -> None:
    # Every ipp_* role depends on role ipp; with tasks of its own it would run them in every
    # play again (and once needed a run-state flag to skip them). Its preflight is an entry
    # point the playbooks run once, named without ".yml" so that Ansible validates it.
    assert not (ROLES / "ipp" / "tasks" / "main.yml").exists()
    preflights = [where for role, entry, where in ENTRY_POINTS if (role, entry) == ("ipp", "preflight")]
    assert "playbooks/cluster.yml" in preflights and "playbooks/settings.yml" in preflights
