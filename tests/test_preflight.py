"""Bad input stops site.yml in its first play, before any host is changed.

Each case runs the real playbook against an inventory of hosts reached with the local
connection, and asserts the message names the problem and no later play started.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from conftest import failed_without_changes, run_playbook

# The tests' hosts are this machine, whose systemd may not be its init system (a container):
# "reduced" skips the sandbox probe, which the cases below give stand-ins to.
GOOD_VARS: dict[str, Any] = {"ipp_user": "nobody", "ipp_unit_sandbox": "reduced"}


def inventory(controllers: list[str], engines: dict[str, Any], extra: dict[str, Any] | None = None) -> dict[str, Any]:
    local = {"ansible_connection": "local", "ansible_python_interpreter": sys.executable}
    return {
        "all": {
            "vars": {**local, **GOOD_VARS, **(extra or {})},
            "children": {
                "controller": {"hosts": {name: None for name in controllers}},
                "engines": {"hosts": {name: {"ipp_engines": n} for name, n in engines.items()}},
            },
        }
    }


def assert_stopped_before_changes(result: subprocess.CompletedProcess[str]) -> str:
    text = failed_without_changes(result)
    plays = re.findall(r"^PLAY \[(.*)\]", result.stdout, flags=re.M)
    assert plays == ["Check the inventory and the variables on every cluster host"], plays
    return text


CASES = {
    "two controllers": (
        inventory(["cl-0", "cl-9"], {"cl-1": 2}),
        ["exactly one host in group 'controller'", "cl-0, cl-9"],
    ),
    "no controller": (
        inventory([], {"cl-1": 2}),
        ["exactly one host in group 'controller'", "it has 0 (none)", "Put the host that runs ipcontroller in it"],
    ),
    "negative engine count": (
        inventory(["cl-0"], {"cl-1": 2, "cl-2": -1}),
        ["ipp_engines for host cl-2", "'-1'"],
    ),
    "fractional engine count": (
        inventory(["cl-0"], {"cl-1": 2.5}),
        ["ipp_engines", "cl-1"],
    ),
    "word for engine count": (
        inventory(["cl-0"], {"cl-1": "eight"}),
        ["ipp_engines", "cl-1"],
    ),
    "root as cluster account": (
        inventory(["cl-0"], {"cl-1": 2}, {"ipp_user": "root"}),
        ["ipp_user must name an ordinary account, not root"],
    ),
    "no cluster account set": (
        inventory(["cl-0"], {"cl-1": 2}, {"ipp_user": ""}),
        ["ipp_user must name an ordinary account"],
    ),
    "missing cluster account": (
        inventory(["cl-0"], {"cl-1": 2}, {"ipp_user": "no-such-researcher"}),
        ["ipp_user 'no-such-researcher' does not exist on host", "ipp_user_create"],
    ),
    "profile name with a path": (
        inventory(["cl-0"], {"cl-1": 2}, {"ipp_profile": "../evil"}),
        ["ipp_profile and ipp_shadow_profile must be plain names", "'../evil'"],
    ),
    "port range too small": (
        inventory(["cl-0"], {"cl-1": 2}, {"ipp_controller_port_min": 10101, "ipp_controller_port_max": 10110}),
        ["at least 18 ports", "10101..10110"],
    ),
    "task database off /var/lib": (
        inventory(["cl-0"], {"cl-1": 2}, {"ipp_task_db_dir": "/home/shared/db"}),
        ["ipp_task_db_dir must be a directory under /var/lib"],
    ),
    "engine memory cap larger than the host": (
        inventory(["cl-0"], {"cl-1": 2}, {"ipp_engine_memory_max": "64T"}),
        [
            "Bad resource-control settings (ipp_resource_control) for host cl-1",
            "ipp_engine_memory_max of host cl-1 is larger than the host's memory",
        ],
    ),
    "engine CPU weight out of range": (
        inventory(["cl-0"], {"cl-1": 2}, {"ipp_engine_cpu_weight": 0}),
        ["ipp_engine_cpu_weight of host cl-1 must be a CPU weight, a whole number 1..10000 or 'idle' (it is '0')"],
    ),
    "controller weaker than its engines": (
        inventory(["cl-0"], {"cl-0": 2}, {"ipp_engine_cpu_weight": 500}),
        ["ipp_controller_cpu_weight of host cl-0 (200) must be above ipp_engine_cpu_weight (500)"],
    ),
    "firewall source that is no address": (
        inventory(["cl-0"], {"cl-1": 2}, {"ipp_firewall": True, "ipp_firewall_allow": ["10.0.0.0/24", "lab.example"]}),
        ["ipp_firewall_allow must list IPv4 or IPv6 addresses or networks", "are not: lab.example."],
    ),
    "metrics beyond loopback without a token": (
        inventory(["cl-0"], {"cl-1": 2}, {"ipp_metrics_address": "0.0.0.0", "ipp_metrics_token": "short"}),
        ["an ipp_metrics_token of 16 characters or more when ipp_metrics_address", "(0.0.0.0) is not loopback"],
    ),
    "metrics port in the controller's range": (
        inventory(["cl-0"], {"cl-1": 2}, {"ipp_metrics_port": 10105}),
        ["ipp_metrics_port a TCP port outside the controller's", "(it is 10105)"],
    ),
    "firewall and an engine host the controller cannot resolve": (
        inventory(["cl-0"], {"nowhere.invalid": 2}, {"ipp_firewall": True}),
        ["must resolve every engine host's name", "cannot resolve: nowhere.invalid."],
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_input_stops_the_run_before_any_change(tmp_path: Path, case: str) -> None:
    inv, messages = CASES[case]
    text = assert_stopped_before_changes(run_playbook(tmp_path, inv, "site.yml"))
    for message in messages:
        assert message in text, text


# Stand-ins for systemd-run, as the sandbox probe (role ipp, tasks/sandbox.yml) meets them.
SYSTEMD_RUN = {
    # systemd 257 without CAP_SYS_ADMIN (an unprivileged container): a unit with User= and
    # PrivateDevices= (or ProtectKernelTunables=, ProtectKernelModules=) fails with 217/USER.
    "without CAP_SYS_ADMIN": 'case "$*" in *PrivateDevices=*) exit 217;; esac; exit 0',
    "without systemd": "echo 'System has not been booted with systemd as init system (PID 1).' >&2; exit 1",
}

SANDBOX_CASES: dict[str, tuple[str, dict[str, Any], list[str]]] = {
    "full sandbox asked of hosts without CAP_SYS_ADMIN": (
        "without CAP_SYS_ADMIN",
        {"ipp_unit_sandbox": "full"},
        [
            "Host cl-1 cannot apply the full sandbox of the units (ipp_unit_sandbox: full)",
            "PrivateDevices=, ProtectKernelTunables=, ProtectKernelModules=",
            "exit status 217 = 217/USER",
            "The host lacks CAP_SYS_ADMIN, as an unprivileged container does",
            "set ipp_unit_sandbox: auto (or reduced)",
        ],
    ),
    "hosts whose systemd cannot run units": (
        "without systemd",
        {"ipp_unit_sandbox": "auto"},
        ["systemd on host cl-0 cannot start a unit as an ordinary account", "has not been booted with systemd"],
    ),
    # auto goes on with the reduced sandbox and says so; the unresolvable engine host then
    # stops the run in the same first play.
    "auto on hosts without CAP_SYS_ADMIN": (
        "without CAP_SYS_ADMIN",
        {"ipp_unit_sandbox": "auto", "ipp_firewall": True},
        [
            "cl-0: reduced sandbox for the controller and engine units, without PrivateDevices,"
            " ProtectKernelTunables, ProtectKernelModules,"
            " because systemd on this host lacks CAP_SYS_ADMIN (an unprivileged container?) (ipp_unit_sandbox: auto)",
            "cannot resolve: nowhere.invalid.",
        ],
    ),
}


@pytest.mark.parametrize("case", sorted(SANDBOX_CASES))
def test_the_sandbox_probe_refuses_or_reduces_before_any_change(tmp_path: Path, case: str) -> None:
    systemd_run, extra, messages = SANDBOX_CASES[case]
    stand_ins = tmp_path / "bin"
    stand_ins.mkdir()
    script = stand_ins / "systemd-run"
    script.write_text(f"#!/bin/sh\n{SYSTEMD_RUN[systemd_run]}\n")
    script.chmod(0o755)
    engines = {"nowhere.invalid": 1} if extra.get("ipp_firewall") else {"cl-1": 2}
    inv = inventory(["cl-0"], engines, extra)
    text = assert_stopped_before_changes(run_playbook(tmp_path, inv, "site.yml", path_first=stand_ins))
    for message in messages:
        assert message in text, text
