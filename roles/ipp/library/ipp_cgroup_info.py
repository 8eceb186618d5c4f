#!/usr/bin/python
"""Ansible module: the resource-control settings systemd holds for some units, their current use,
and which cgroup controllers (cpu, memory, pids) really apply to them on this host.

systemd accepts CPUWeight=, MemoryMax=, TasksMax= everywhere and `systemctl show` reports them,
but only a cgroup controller delegated to systemd enforces them. In a container on a host with
cgroup v1 (hybrid) the controllers are mounted read-only and the unit's cgroup exists only in
systemd's own hierarchy: nothing is enforced but Nice= and OOMScoreAdjust= (process settings).
"""

from __future__ import annotations

DOCUMENTATION = r"""
module: ipp_cgroup_info
short_description: Resource-control settings of systemd units and whether this host enforces them
description:
  - Reads C(systemctl show) of the units and, from the cgroup file system, which of the cpu,
    memory and pids controllers apply to the first unit's control group. Changes nothing.
options:
  units:
    description: Units to read; the first one (e.g. C(ipp.slice)) decides what is enforced.
    type: list
    elements: str
    required: true
  host:
    description: The inventory name of the host, for the warning.
    type: str
    default: ""
  warn:
    description: Warn when a controller does not apply (names the host and the settings).
    type: bool
    default: false
"""

RETURN = r"""
units:
  description: Per unit, its properties (Slice, CPUWeight, Nice, MemoryMax, MemoryCurrent, ...).
  type: dict
  returned: always
cgroup:
  description: v2 (unified), v1 (legacy or hybrid), or none.
  type: str
  returned: always
enforced:
  description: cpu, memory, pids, each true where that controller applies to the first unit.
  type: dict
  returned: always
not_enforced:
  description: The unit settings this host accepts but does not enforce.
  type: list
  returned: always
"""

import os  # noqa: E402 (Ansible reads DOCUMENTATION first)
from collections.abc import Callable, Mapping  # noqa: E402

PROPERTIES = [
    "Id",
    "ActiveState",
    "ControlGroup",
    "Slice",
    "CPUWeight",
    "Nice",
    "MemoryLow",
    "MemoryHigh",
    "MemoryMax",
    "MemoryCurrent",
    "TasksMax",
    "TasksCurrent",
    "OOMPolicy",
    "OOMScoreAdjust",
    # The sandbox options that need CAP_SYS_ADMIN (role ipp's ipp_unit_sandbox_kernel), as
    # the loaded unit has them: status.yml tells a full sandbox from a reduced one by them.
    "PrivateDevices",
    "ProtectKernelTunables",
    "ProtectKernelModules",
]
CONTROLLERS = ("cpu", "memory", "pids")
# What each controller enforces of the roles' settings.
SETTINGS = {"cpu": ["CPUWeight"], "memory": ["MemoryLow", "MemoryHigh", "MemoryMax"], "pids": ["TasksMax"]}
# cgroup v1 mount directories of each controller.
V1_DIRS = {"cpu": ["cpu", "cpu,cpuacct"], "memory": ["memory"], "pids": ["pids"]}


def parse_show(text: str) -> dict[str, dict[str, str]]:
    """`systemctl show -p ... UNIT...` output (blocks separated by blank lines) by unit Id."""
    units: dict[str, dict[str, str]] = {}
    for block in text.strip().split("\n\n"):
        props = dict(line.split("=", 1) for line in block.splitlines() if "=" in line)
        if props.get("Id"):
            units[props["Id"]] = props
    return units


def cgroup_version(mounts: str, root: str = "/sys/fs/cgroup") -> str:
    """v2, v1 or none, from /proc/self/mounts: what is mounted at `root`."""
    for line in mounts.splitlines():
        fields = line.split()
        if len(fields) >= 3 and fields[1] == root:
            if fields[2] == "cgroup2":
                return "v2"
            if fields[2] in ("tmpfs", "cgroup"):
                return "v1"
    return "none"


def enforced(
    version: str,
    cgroup: str,
    read: Callable[[str], str | None],
    isdir: Callable[[str], bool],
    root: str = "/sys/fs/cgroup",
) -> dict[str, bool]:
    """Which controllers apply to the control group `cgroup` (systemd's ControlGroup path).

    v2: those listed in its cgroup.controllers. v1: those whose hierarchy holds the group (a
    container's read-only controller mounts hold only the container's own group)."""
    path = cgroup.strip("/")
    if not cgroup or version == "none":
        return dict.fromkeys(CONTROLLERS, False)
    if version == "v2":
        listed = (read(os.path.join(root, path, "cgroup.controllers")) or "").split()
        return {name: name in listed for name in CONTROLLERS}
    return {name: any(isdir(os.path.join(root, d, path)) for d in V1_DIRS[name]) for name in CONTROLLERS}


def not_enforced(applies: Mapping[str, bool]) -> list[str]:
    """The unit settings that the missing controllers would enforce."""
    return [setting for name in CONTROLLERS if not applies[name] for setting in SETTINGS[name]]


def warning(host: str, version: str, applies: Mapping[str, bool]) -> str:
    missing = [name for name in CONTROLLERS if not applies[name]]
    return (
        f"host {host}: systemd does not enforce {', '.join(not_enforced(applies))} of ipp.slice and the"
        f" cluster's units here: the cgroup controller(s) {', '.join(missing)} are not delegated to it"
        f" (cgroup {version}; a container?). Nice= and OOMScoreAdjust= still apply: engines yield CPU by"
        " their nice level only, and their memory is not capped."
    )


def read_file(path: str) -> str | None:
    try:
        with open(path) as handle:
            return handle.read()
    except OSError:
        return None


def main() -> None:
    from ansible.module_utils.basic import AnsibleModule

    module = AnsibleModule(
        argument_spec={
            "units": {"type": "list", "elements": "str", "required": True},
            "host": {"type": "str", "default": ""},
            "warn": {"type": "bool", "default": False},
        },
        supports_check_mode=True,
    )
    units: list[str] = module.params["units"]
    argv = ["systemctl", "show", "--property=" + ",".join(PROPERTIES), "--", *units]
    rc, out, err = module.run_command(argv)
    if rc != 0:
        module.fail_json(msg=f"systemctl show failed: {err.strip()}", rc=rc)
    shown = parse_show(out)
    version = cgroup_version(read_file("/proc/self/mounts") or "")
    first = shown.get(units[0], {}) if units else {}
    applies = enforced(version, first.get("ControlGroup", ""), read_file, os.path.isdir)
    missing = not_enforced(applies)
    if module.params["warn"] and missing:
        module.warn(warning(module.params["host"] or "this host", version, applies))
    module.exit_json(changed=False, units=shown, cgroup=version, enforced=applies, not_enforced=missing)


if __name__ == "__main__":
    main()
