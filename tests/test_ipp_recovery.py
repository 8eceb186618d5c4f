"""ipp_recovery: its helpers, and a real controller killed twice under a busy cluster.

The cluster test runs what the units run: `python -m ipp_recovery` with the SQLite task
database, and engines that are started again whenever they exit (systemd's Restart=always).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import ROLES

MODULE_DIR = ROLES / "ipp_controller" / "files"
sys.path.insert(0, str(MODULE_DIR))

import ipp_recovery  # noqa: E402

BIN = Path(sys.executable).parent
ENGINES = 2
TASKS = 1100  # more than the 1024 results upstream's in-memory store keeps


def test_same_columns_ignores_the_case_of_types() -> None:
    expected = {"msg_id": "text", "header": "dict text"}
    assert ipp_recovery.same_columns([("msg_id", "TEXT"), ("header", "dict text")], expected, ["msg_id", "header"])
    assert not ipp_recovery.same_columns([("msg_id", "blob"), ("header", "dict text")], expected, ["msg_id", "header"])
    assert not ipp_recovery.same_columns([("header", "dict text"), ("msg_id", "text")], expected, ["msg_id", "header"])


def test_connection_ports_reads_numbers_and_lists() -> None:
    info = {"key": "s3cret", "registration": 10101, "broadcast": [10108, 10109], "ssh": "", "curve": None}
    assert ipp_recovery.connection_ports(info) == {10101, 10108, 10109}
    assert ipp_recovery.connection_ports({"flag": True}) == set()


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

    def __init__(self, root: Path) -> None:
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
        )
        self.env = {**os.environ, "PYTHONPATH": str(MODULE_DIR), "PYTHONWARNINGS": "ignore"}
        self.controller: subprocess.Popen[bytes] | None = None
        engine_loop = f'while test -e {self.running}; do "{BIN}/ipengine" --profile-dir={self.profile}; sleep 1; done'
        self.engines = [
            subprocess.Popen(
                ["sh", "-c", engine_loop],
                env=self.env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,
            )
            for _ in range(ENGINES)
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


def client_script(cluster: Cluster, code: str, timeout: float = 240) -> dict[str, object]:
    """Run `code` in a fresh client process (as epyc users do) and return its JSON output."""
    prelude = (
        "import json, os, sys, time\nimport ipyparallel as ipp\n"
        f"PROFILE = {str(cluster.profile)!r}\nENGINES = {ENGINES}\nTASKS = {TASKS}\n"
        "def connect():\n"
        "    deadline = time.monotonic() + 120\n"
        "    while True:\n"
        "        try:\n"
        "            client = ipp.Client(profile_dir=PROFILE, timeout=5)\n"
        "            if len(client.ids) >= ENGINES:\n"
        "                return client\n"
        "            client.close()\n"
        "        except Exception:\n"
        "            if time.monotonic() > deadline:\n"
        "                raise\n"
        "        if time.monotonic() > deadline:\n"
        "            raise TimeoutError('engines did not register')\n"
        "        time.sleep(0.5)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", prelude + code],
        env=cluster.env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    output: dict[str, object] = json.loads(result.stdout.strip().splitlines()[-1])
    return output


SUBMIT = """
client = connect()
view = client.load_balanced_view()
squares = view.map_async(lambda x: x * x, range(TASKS))
squares.get(timeout=120)
busy = view.apply_async(time.sleep, 300)  # an engine is busy when the controller dies
time.sleep(1)
print(json.dumps({"msg_ids": squares.msg_ids}))
"""

CHECK = """
started = time.monotonic()
client = connect()
registered = time.monotonic() - started
msg_ids = MSG_IDS
results = []
for i in range(0, len(msg_ids), 500):  # SQLite refuses queries over about 1000 ids
    for chunk in client.get_result(msg_ids[i:i + 500]).get(timeout=60):
        results.extend(chunk)
direct = client[:].apply_async(os.getpid).get(timeout=30)
print(json.dumps({"registered_s": registered, "results": results, "direct": direct}))
"""


@pytest.fixture()
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    cluster = Cluster(tmp_path)
    cluster.start_controller()
    try:
        yield cluster
    finally:
        cluster.stop()


def test_controller_killed_twice_loses_no_result_and_gets_its_engines_back(cluster: Cluster) -> None:
    submitted = client_script(cluster, SUBMIT)
    msg_ids = submitted["msg_ids"]
    assert isinstance(msg_ids, list) and len(msg_ids) == TASKS
    for restart in (1, 2):
        cluster.kill_controller()
        cluster.start_controller()
        checked = client_script(cluster, f"MSG_IDS = {json.dumps(msg_ids)}\n" + CHECK)
        registered = checked["registered_s"]
        assert isinstance(registered, float)
        print(f"restart {restart}: {ENGINES} engines registered again in {registered:.1f} s")
        assert registered < 90
        assert checked["results"] == [x * x for x in range(TASKS)]
        direct = checked["direct"]
        assert isinstance(direct, list) and len(set(direct)) == ENGINES
    log = cluster.log.read_text()
    assert "belongs to a previous controller" in log
    assert "ipython-tasks_1" not in log
