#!/usr/bin/python
"""Ansible module: the cluster's units on this host, as systemd sees them.

One call gives what the playbooks that start, stop, report or remove units need: each loaded
unit's active and sub state, the units enabled at boot, those installed, those running and
enabled. It replaces a `systemctl list-units` command whose text several task files parsed
with regular expressions of their own.
"""

from __future__ import annotations

DOCUMENTATION = r"""
module: ipp_units_info
short_description: The cluster's systemd units on this host and their states
description:
  - Lists the controller unit and the engine instances systemd knows (C(systemctl list-units
    --all)) and those enabled at boot (links in I(wants_dir)). Changes nothing.
options:
  wants_dir:
    description: The directory whose links enable units at boot.
    type: str
    default: /etc/systemd/system/multi-user.target.wants
"""

RETURN = r"""
states:
  description: Each loaded unit's C(active) and C(sub) state (a unit another one only names is
    listed C(not-found) on hosts without it, and left out).
  type: dict
  returned: always
enabled:
  description: The units enabled at boot, sorted.
  type: list
  returned: always
installed:
  description: The controller unit and engine instances that are loaded or enabled, sorted.
  type: list
  returned: always
active:
  description: The loaded units whose active state is C(active), sorted.
  type: list
  returned: always
up:
  description: The loaded units that are active, activating or reloading (a stop acts on them), sorted.
  type: list
  returned: always
ready:
  description: The units both running and enabled (nothing to do for them), sorted.
  type: list
  returned: always
"""

import fnmatch  # noqa: E402 (Ansible reads DOCUMENTATION first)
import os  # noqa: E402
import re  # noqa: E402
from collections.abc import Iterable  # noqa: E402
from typing import Any  # noqa: E402

CLUSTER_UNIT = re.compile(r"ipp-(controller|engine@[0-9]+)\.service")
#: What systemctl lists: the controller unit and the engine template's instances.
PATTERNS = ["ipp-controller.service", "ipp-engine@*.service"]
UP = ("active", "activating", "reloading")


def parse_list_units(text: str) -> dict[str, dict[str, str]]:
    """`systemctl list-units --plain --no-legend` output as {unit: {active, sub}}, loaded units only."""
    states = {}
    for line in text.splitlines():
        fields = line.split()
        if len(fields) >= 4 and fields[1] == "loaded":
            states[fields[0]] = {"active": fields[2], "sub": fields[3]}
    return states


def summary(states: dict[str, dict[str, str]], enabled: Iterable[str]) -> dict[str, Any]:
    """What the playbooks read: the states and the name lists derived from them."""
    enabled = sorted(set(enabled))
    return {
        "states": states,
        "enabled": enabled,
        "installed": sorted(name for name in set(states) | set(enabled) if CLUSTER_UNIT.fullmatch(name)),
        "active": sorted(name for name, state in states.items() if state["active"] == "active"),
        "up": sorted(name for name, state in states.items() if state["active"] in UP),
        "ready": sorted(
            name
            for name, state in states.items()
            if state["active"] == "active" and state["sub"] == "running" and name in enabled
        ),
    }


def enabled_units(wants_dir: str, patterns: Iterable[str]) -> list[str]:
    """The names in the wants directory that match a pattern (links, broken ones too)."""
    try:
        names = os.listdir(wants_dir)
    except OSError:
        return []
    return sorted(name for name in names if any(fnmatch.fnmatchcase(name, pattern) for pattern in patterns))


def main() -> None:
    from ansible.module_utils.basic import AnsibleModule

    module = AnsibleModule(
        argument_spec={"wants_dir": {"type": "str", "default": "/etc/systemd/system/multi-user.target.wants"}},
        supports_check_mode=True,
    )
    argv = ["systemctl", "list-units", "--all", "--plain", "--no-legend", "--type=service", *PATTERNS]
    rc, out, err = module.run_command(argv)
    if rc != 0:
        module.fail_json(msg=f"systemctl list-units failed: {err.strip()}", rc=rc)
    found = summary(parse_list_units(out), enabled_units(module.params["wants_dir"], PATTERNS))
    module.exit_json(changed=False, **found)


if __name__ == "__main__":
    main()
