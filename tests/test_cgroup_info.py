"""ipp_cgroup_info: which cgroup controllers apply to a unit, from systemd's and the kernel's view."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

from conftest import ROLES

_spec = importlib.util.spec_from_file_location("ipp_cgroup_info", ROLES / "ipp" / "library" / "ipp_cgroup_info.py")
assert _spec and _spec.loader
info = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(info)

# Measured in a podman container (runc) on this cgroup v1 hybrid host.
CONTAINER_MOUNTS = """tmpfs /sys/fs/cgroup tmpfs ro,nosuid,nodev,noexec,mode=755 0 0
cgroup /sys/fs/cgroup/memory cgroup ro,nosuid,nodev,noexec,relatime,memory 0 0
cgroup /sys/fs/cgroup/systemd cgroup rw,relatime,name=systemd 0 0
"""
CONTAINER_GROUP = "/libpod_parent/libpod-7eac/ipp.slice"


def test_show_output_by_unit() -> None:
    text = "Id=ipp.slice\nCPUWeight=20\nMemoryCurrent=[not set]\n\nId=ipp-engine@1.service\nMemoryMax=infinity\n"
    assert info.parse_show(text) == {
        "ipp.slice": {"Id": "ipp.slice", "CPUWeight": "20", "MemoryCurrent": "[not set]"},
        "ipp-engine@1.service": {"Id": "ipp-engine@1.service", "MemoryMax": "infinity"},
    }


def test_versions() -> None:
    assert info.cgroup_version(CONTAINER_MOUNTS) == "v1"
    assert info.cgroup_version("cgroup2 /sys/fs/cgroup cgroup2 rw 0 0\n") == "v2"
    assert info.cgroup_version("") == "none"


def test_a_v1_container_enforces_nothing() -> None:
    applies = info.enforced("v1", CONTAINER_GROUP, lambda _: None, lambda path: path == "/sys/fs/cgroup/memory")
    assert applies == {"cpu": False, "memory": False, "pids": False}
    assert info.not_enforced(applies) == ["CPUWeight", "MemoryLow", "MemoryHigh", "MemoryMax", "TasksMax"]
    text = info.warning("cl-1", "v1", applies)
    assert text.startswith("host cl-1: systemd does not enforce CPUWeight, MemoryLow, MemoryHigh, MemoryMax, TasksMax")
    assert "cpu, memory, pids are not delegated" in text


def test_a_v1_host_with_the_groups_enforces_them() -> None:
    present = {"/sys/fs/cgroup/cpu,cpuacct/ipp.slice", "/sys/fs/cgroup/memory/ipp.slice"}
    applies = info.enforced("v1", "/ipp.slice", lambda _: None, present.__contains__)
    assert applies == {"cpu": True, "memory": True, "pids": False}


def test_v2_reads_the_groups_controllers(tmp_path: Path) -> None:
    (tmp_path / "ipp.slice").mkdir()
    (tmp_path / "ipp.slice" / "cgroup.controllers").write_text("cpuset cpu io memory pids\n")
    applies = info.enforced("v2", "/ipp.slice", info.read_file, os.path.isdir, root=str(tmp_path))
    assert applies == {"cpu": True, "memory": True, "pids": True}
    assert info.enforced("v2", "/gone.slice", info.read_file, os.path.isdir, root=str(tmp_path))["memory"] is False
    assert info.enforced("v2", "", info.read_file, os.path.isdir)["cpu"] is False
