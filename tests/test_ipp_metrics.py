"""ipp_metrics: its figures and pages, and the service against a real cluster on this machine.

The cluster test runs what ipp-metrics.service runs (`python -m ipp_metrics --config ...`) beside
a controller and engines run as their units run them, and checks the figures against what the
cluster did: engines per host, tasks completed and failed, a controller killed and restarted.
"""

from __future__ import annotations

import datetime
import json
import re
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from cluster import Cluster
from conftest import ROLES
from ipyparallel.controller.sqlitedb import SQLiteDB

sys.path.insert(0, str(ROLES / "ipp_install" / "files" / "helpers"))

import ipp_metrics

TOKEN = "t0ken-for-the-test"
SAMPLE_LINE = re.compile(r'^[a-z_]+(\{([a-z_]+="([^"\\]|\\.)*",?)*\})? -?[0-9.e+]+$')


def parse(text: str) -> dict[str, float]:
    """Prometheus text format, checked line by line: {'name{labels}': value}."""
    values: dict[str, float] = {}
    for line in text.splitlines():
        if line.startswith("# HELP ") or line.startswith("# TYPE "):
            continue
        assert SAMPLE_LINE.match(line), line
        name, value = line.rsplit(" ", 1)
        values[name] = float(value)
    return values


def test_an_engine_is_counted_on_the_host_its_unit_names() -> None:
    assert ipp_metrics.engine_host("cl-1/3/5f0c") == "cl-1"
    assert ipp_metrics.engine_host("cl-1.example.org/1/x/y") == "cl-1.example.org"
    assert ipp_metrics.engine_host("0f8d2c1e-9a4b") == ""  # an engine started by hand


def test_hub_replies_give_engines_per_host_busy_and_queued() -> None:
    sample = ipp_metrics.Sample(time=0)
    engines = {"0": "cl-1/1/a", "1": "cl-1/2/b", "2": "cl-2/1/c", "3": "by-hand"}
    queues = {
        "status": "ok",
        "unassigned": 4,
        "0": {"queue": 0, "tasks": 2, "completed": 7},
        "1": {"queue": 0, "tasks": 0, "completed": 9},
        "2": {"queue": 1, "tasks": 0, "completed": 0},
    }
    ipp_metrics.hub_figures(engines, queues, sample)
    assert sample.registered == {"cl-1": 2, "cl-2": 1, "": 1}
    assert sample.busy == {"cl-1": 1, "cl-2": 1, "": 0}
    assert (sample.unassigned, sample.queued) == (4, 7)


def test_metrics_follow_the_text_format_and_escape_labels() -> None:
    sample = ipp_metrics.Sample(
        time=100, up=True, expected={'od"d\\host': 2, "cl-1": 1}, registered={"cl-1": 1}, completed=5, failed=1
    )
    sample.events = {"controller_start": 2, "engine_stopped": 1}
    text = ipp_metrics.render_metrics(sample, {"python": "3.13.5", "ipyparallel": "9.2.0"})
    values = parse(text)
    assert values['ipyparallel_engines_expected{host="od\\"d\\\\host"}'] == 2
    assert values['ipyparallel_engines_registered{host="cl-1"}'] == 1
    assert values['ipyparallel_engines_registered{host="od\\"d\\\\host"}'] == 0
    assert values["ipyparallel_tasks_completed_total"] == 5
    assert values['ipyparallel_recovery_events_total{event="engine_stopped"}'] == 1
    assert "# TYPE ipyparallel_tasks_failed_total counter" in text
    assert values['ipyparallel_build_info{ipyparallel="9.2.0",python="3.13.5"}'] == 1
    sample.controller_start = 1796140123.456
    assert "ipyparallel_controller_start_time_seconds 1796140123.456\n" in ipp_metrics.render_metrics(sample, {})


def test_with_the_controller_down_the_hub_figures_are_absent_not_zero() -> None:
    sample = ipp_metrics.Sample(time=100, up=False, expected={"cl-1": 2}, completed=5)
    values = parse(ipp_metrics.render_metrics(sample, {}))
    assert values["ipyparallel_up"] == 0
    assert not any(name.startswith("ipyparallel_engines_registered") for name in values)
    assert values["ipyparallel_tasks_completed_total"] == 5  # from the database, still known


def test_the_page_escapes_what_tasks_and_hosts_say() -> None:
    sample = ipp_metrics.Sample(time=100, up=True, expected={"<b>cl-1</b>": 1})
    sample.recent_failures = [{"completed": "now", "msg_id": "m1", "error": "ValueError: <script>alert(1)</script>"}]
    page = ipp_metrics.render_page(sample, [sample], {}, 5, "")
    assert "<script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "&lt;b&gt;cl-1&lt;/b&gt;" in page


def test_the_page_keeps_a_token_for_its_refresh_and_its_link_encoded() -> None:
    sample = ipp_metrics.Sample(time=100, up=True)
    page = ipp_metrics.render_page(sample, [sample], {}, 5, "token=a%26b%23c")
    assert 'content="5;url=/?token=a%26b%23c"' in page
    assert 'href="/metrics?token=a%26b%23c"' in page


def test_a_chart_breaks_its_line_where_the_controller_was_down() -> None:
    samples = [ipp_metrics.Sample(time=float(t), up=t != 2, queued=t) for t in range(5)]
    svg = ipp_metrics.chart("Tasks queued", "queued", samples, ipp_metrics.queued)
    assert svg.count("<polyline") == 2


def test_throughput_is_tasks_per_minute_between_samples() -> None:
    before = ipp_metrics.Sample(time=0, up=True, completed=10)
    after = ipp_metrics.Sample(time=30, up=True, completed=40)
    assert ipp_metrics.throughput(before, after) == 60
    assert ipp_metrics.throughput(before, ipp_metrics.Sample(time=30, up=False)) is None


def add_task(db: SQLiteDB, msg_id: str, status: str | None) -> None:
    """A task as the hub records it: submitted, then (status not None) its result."""
    db.add_record(msg_id, {"msg_id": msg_id, "header": {"msg_id": msg_id}, "submitted": datetime.datetime.now()})
    if status is not None:
        finish_task(db, msg_id, status)


def finish_task(db: SQLiteDB, msg_id: str, status: str) -> None:
    content = {"status": status, "ename": "ValueError", "evalue": msg_id} if status == "error" else {"status": status}
    db.update_record(msg_id, {"completed": datetime.datetime.now(), "result_content": content})
    db._db.commit()


def test_the_task_database_is_read_incrementally_and_counts_each_task_once(tmp_path: Path) -> None:
    path = tmp_path / "tasks.db"
    db = SQLiteDB(location=str(tmp_path), filename=path.name)
    for index in range(5):
        add_task(db, f"done-{index}", "ok")
    add_task(db, "broken", "error")
    add_task(db, "running", None)
    db._db.commit()
    reader = ipp_metrics.TaskDB(path, failures=10)
    sample = ipp_metrics.Sample(time=0)
    reader.read(sample)
    assert (sample.completed, sample.failed, sample.pending) == (6, 1, 1)
    assert [item["msg_id"] for item in sample.recent_failures] == ["broken"]
    finish_task(db, "running", "error")
    add_task(db, "later", "ok")
    for _ in range(2):  # reading again counts nothing twice
        reader.read(sample)
        assert (sample.completed, sample.failed, sample.pending) == (8, 2, 0)
    assert [item["msg_id"] for item in sample.recent_failures] == ["running", "broken"]
    db._db.close()
    for leftover in tmp_path.glob("tasks.db*"):
        leftover.unlink()
    db = SQLiteDB(location=str(tmp_path), filename=path.name)  # uninstalled and made again
    add_task(db, "new", "ok")
    db._db.commit()
    reader.read(sample)
    assert (sample.completed, sample.failed, sample.pending) == (1, 0, 0)


@pytest.mark.parametrize(
    ("address", "token", "refused"),
    [
        ("127.0.0.1", "", False),
        ("::1", "", False),
        ("0.0.0.0", "", True),
        ("10.0.0.5", "short", True),
        ("10.0.0.5", "s" * 16, False),
    ],
)
def test_a_bind_beyond_loopback_needs_a_token(address: str, token: str, refused: bool) -> None:
    settings = ipp_metrics.Settings(profile_dir=Path("/p"), task_db=Path("/d"), address=address, token=token)
    if refused:
        with pytest.raises(ValueError, match="token"):
            settings.check()
    else:
        settings.check()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def fetch(url: str, token: str | None = TOKEN, method: str = "GET") -> tuple[int, str]:
    request = urllib.request.Request(url, method=method)
    if token is not None:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return int(response.status), response.read().decode()
    except urllib.error.HTTPError as error:
        return int(error.code), error.read().decode()


class Service:
    """ipp_metrics run as its unit runs it (``python -m ipp_metrics``), for a cluster on this machine."""

    def __init__(self, cluster: Cluster, root: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = root / "metrics.json"
        config.write_text(
            json.dumps(
                {
                    "profile_dir": str(cluster.profile),
                    "task_db": str(root / "tasks.db"),
                    "port": self.port,
                    "token": TOKEN,
                    "interval": 0.5,
                    "history": 60,
                    "timeout": 2,
                }
            )
        )
        config.chmod(0o600)
        self.log = root / "metrics.log"
        with self.log.open("w") as log:
            self.process = subprocess.Popen(
                # cluster.env has the helpers' directory on PYTHONPATH, as the venv has the wheel.
                [sys.executable, "-m", "ipp_metrics", f"--config={config}"],
                env=cluster.env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    def values(self) -> dict[str, float]:
        status, text = fetch(f"{self.url}/metrics")
        assert status == 200, text
        return parse(text)

    def wait(self, what: str, test: Callable[[dict[str, float]], bool], within: float = 90) -> dict[str, float]:
        deadline = time.monotonic() + within
        while True:
            try:
                values = self.values()
                if test(values):
                    return values
            except (OSError, AssertionError):
                values = {}
            if time.monotonic() > deadline:
                pytest.fail(f"{what}: not within {within} s; last {values}; log {self.log.read_text()[-2000:]}")
            time.sleep(0.3)

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=10)


@pytest.fixture
def running(tmp_path: Path) -> Iterator[tuple[Cluster, Service]]:
    cluster = Cluster(tmp_path, hosts=("node-a", "node-a", "node-b"))
    # What the inventory asks for, as role ipp_profile writes it: node-c has no engine running.
    (cluster.profile / "ipcluster_config.py").write_text(
        "c = get_config()\nc.SSHEngineSetLauncher.engines = {'node-a': 2, 'node-b': 1, 'node-c': 1}\n"
    )
    cluster.start_controller()
    service = Service(cluster, tmp_path)
    try:
        yield cluster, service
    finally:
        service.stop()
        cluster.stop()


def registered(host: str) -> str:
    return f'ipyparallel_engines_registered{{host="{host}"}}'


WORK = """
client = ipp.Client(profile_dir=PROFILE, timeout=10)
view = client.load_balanced_view()
view.map_async(lambda x: x * x, range(40)).get(timeout=120)
failing = view.apply_async(lambda: 1 / 0)
try:
    failing.get(timeout=60)
except Exception as error:
    pass
print(json.dumps({"done": True}))
"""


def run_client(cluster: Cluster, code: str) -> None:
    prelude = f"import json\nimport ipyparallel as ipp\nPROFILE = {str(cluster.profile)!r}\n"
    command = [sys.executable, "-c", prelude + code]
    done = subprocess.run(command, env=cluster.env, capture_output=True, text=True, timeout=180, check=False)
    assert done.returncode == 0, done.stderr[-3000:]


def test_the_service_counts_what_the_cluster_does(running: tuple[Cluster, Service]) -> None:
    cluster, service = running
    values = service.wait("every engine registered", lambda v: v.get(registered("node-a")) == 2)
    assert values[registered("node-b")] == 1
    assert values[registered("node-c")] == 0
    assert values['ipyparallel_engines_expected{host="node-c"}'] == 1
    assert values["ipyparallel_up"] == 1
    before = values["ipyparallel_tasks_completed_total"]

    run_client(cluster, WORK)
    values = service.wait("the tasks counted", lambda v: v["ipyparallel_tasks_completed_total"] >= before + 41)
    assert values["ipyparallel_tasks_completed_total"] == before + 41
    assert values["ipyparallel_tasks_failed_total"] == 1
    assert values["ipyparallel_task_db_bytes"] > 0
    assert values["ipyparallel_metrics_sample_seconds"] < 1
    status, page = fetch(f"{service.url}/")
    assert status == 200
    assert "ZeroDivisionError" in page
    assert re.search(r'<tr id="host-node-a">.*?<td class="registered">2</td>', page)


def test_the_service_refuses_what_it_does_not_serve(running: tuple[Cluster, Service]) -> None:
    _, service = running
    service.wait("serving", lambda v: True)
    assert fetch(f"{service.url}/metrics", token=None)[0] == 401
    assert fetch(f"{service.url}/metrics", token="wrong")[0] == 401
    assert fetch(f"{service.url}/metrics?token={TOKEN}", token=None)[0] == 200
    assert fetch(f"{service.url}/nothing?token={TOKEN}", token=None)[0] == 404  # logged, without the query
    assert fetch(f"{service.url}/metrics?{'&'.join('abcdefghij')}")[0] == 400  # too many fields
    assert fetch(f"{service.url}/nothing-here")[0] == 404
    assert fetch(f"{service.url}/metrics", method="POST")[0] == 405
    assert fetch(f"{service.url}/metrics?{'x' * 5000}")[0] == 414
    with socket.create_connection(("127.0.0.1", service.port), timeout=10) as raw:
        raw.sendall(b"GET /metrics HTTP/9.x\r\n\r\n")  # not HTTP: an error, without a status line
        assert raw.recv(100).startswith(b"400 Bad request version")
    with socket.create_connection(("127.0.0.1", service.port), timeout=10) as raw:
        raw.sendall(b"GET /metrics HTTP/1.1\r\nX-Huge: " + b"x" * 70000 + b"\r\n\r\n")
        assert raw.recv(100).startswith(b"HTTP/1.0 431 ")
    assert service.process.poll() is None
    assert TOKEN not in service.log.read_text()


def test_the_service_shows_a_controller_restart_and_its_recovery(running: tuple[Cluster, Service]) -> None:
    cluster, service = running
    values = service.wait("every engine registered", lambda v: v.get(registered("node-a")) == 2)
    first_start = values["ipyparallel_controller_start_time_seconds"]
    cluster.kill_controller()
    service.wait("the controller seen down", lambda v: v["ipyparallel_up"] == 0, within=30)
    cluster.start_controller()
    # Its engines stopped by the new controller, started again and registered anew.
    values = service.wait(
        "the engines registered with the new controller",
        lambda v: (
            v.get("ipyparallel_controller_start_time_seconds", 0) > first_start
            and v.get(registered("node-a")) == 2
            and v.get(registered("node-b")) == 1
        ),
    )
    assert values['ipyparallel_recovery_events_total{event="controller_start"}'] == 2
    assert values['ipyparallel_recovery_events_total{event="engine_stopped"}'] >= 1
    status, page = fetch(f"{service.url}/")
    assert status == 200 and "engine_stopped" in page
