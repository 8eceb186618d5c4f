"""A real cluster on this machine, run as the units run it: `python -m ipp_recovery` with the
SQLite task database, and engines that are started again whenever they exit (systemd's
Restart=always), each with the identity its unit gives it (``<host>/<instance>/<uuid>``).
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROLES

MODULE_DIR = ROLES / "ipp_install" / "files" / "helpers"
BIN = Path(sys.executable).parent


def free_port_range(size: int) -> tuple[int, int]:
    """A run of `size` ports nothing listens on, for the controller's port pool."""
    for start in range(21101, 30000, size):
        for port in range(start, start + size):
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", port)) == 0:
                    break
        else:
            return start, start + size - 1
    pytest.fail("no free port range")


class Cluster:
    """A controller run like ipp-controller.service and engines restarted like ipp-engine@."""

    def __init__(self, root: Path, curve: bool = False, hosts: tuple[str, ...] = ("node-a", "node-b")) -> None:
        self.curve = curve
        self.profile = root / "profile"
        self.profile.mkdir()
        self.log = root / "controller.log"
        self.running = root / "running"
        self.running.touch()
        low, high = free_port_range(20)
        (self.profile / "ipcontroller_config.py").write_text(
            "c = get_config()\n"
            "c.IPController.reuse_files = True\n"
            "c.IPController.ip = '127.0.0.1'\n"
            f"c.IPController.ports = list(range({low}, {high + 1}))\n"
            "c.IPController.db_class = 'ipp_recovery.SQLiteDB'\n"
            f"c.SQLiteDB.location = {str(root)!r}\n"
            f"c.IPController.enable_curve = {curve}\n"
        )
        self.env = {**os.environ, "PYTHONPATH": str(MODULE_DIR), "PYTHONWARNINGS": "ignore"}
        self.controller: subprocess.Popen[bytes] | None = None
        self.hosts = hosts

        def engine_loop(host: str, instance: int) -> str:
            identity = f"--Session.session={host}/{instance}/$(cat /proc/sys/kernel/random/uuid)"
            start = f'"{BIN}/ipengine" --profile-dir={self.profile} {identity}'
            return f"while test -e {self.running}; do {start}; sleep 1; done"

        self.engines = [
            subprocess.Popen(
                ["sh", "-c", engine_loop(host, instance)],
                env=self.env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,
            )
            for instance, host in enumerate(hosts, start=1)
        ]

    def start_controller(self) -> None:
        with self.log.open("a") as log:
            self.controller = subprocess.Popen(
                [sys.executable, "-m", "ipp_recovery", f"--profile-dir={self.profile}"],
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        # Its process group, for a task that kills its controller (the poison test).
        (self.profile / "controller.pgid").write_text(str(self.controller.pid))

    def controller_died(self, within: float) -> bool:
        """Whether the controller exits within `within` seconds (it is reaped then)."""
        assert self.controller is not None
        try:
            self.controller.wait(timeout=within)
        except subprocess.TimeoutExpired:
            return False
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.controller.pid, signal.SIGKILL)  # its schedulers
        return True

    def kill_controller(self) -> None:
        """SIGKILL the controller and its schedulers, as systemd's control-group kill does."""
        assert self.controller is not None
        os.killpg(self.controller.pid, signal.SIGKILL)
        self.controller.wait(timeout=10)

    def stop(self) -> None:
        self.running.unlink(missing_ok=True)
        processes = [*self.engines, *([self.controller] if self.controller else [])]
        for process in processes:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
        for process in processes:
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
