"""ipp_recovery: its helpers, and a real controller killed twice under a busy cluster.

The cluster test runs what the units run: `python -m ipp_recovery` with the SQLite task
database, and engines that are started again whenever they exit (systemd's Restart=always).
"""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import zmq
from cluster import MODULE_DIR, Cluster

sys.path.insert(0, str(MODULE_DIR))

import ipp_recovery

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


def test_a_curve_pair_fits_only_files_that_name_its_public_key() -> None:
    public, secret = (key.decode("ascii") for key in zmq.curve_keypair())
    pair = {"public": public, "secret": secret}
    named = {"curve_serverkey": public}
    assert ipp_recovery.curve_pair_fits(pair, [named, named])
    assert not ipp_recovery.curve_pair_fits(pair, [named, None])  # a file is missing
    assert not ipp_recovery.curve_pair_fits(pair, [named, {"curve_serverkey": "Q" * 40}])
    assert not ipp_recovery.curve_pair_fits(pair, [named, {"curve_serverkey": None}])
    assert not ipp_recovery.curve_pair_fits({"public": public}, [named, named])
    assert not ipp_recovery.curve_pair_fits(None, [named, named])


def test_a_damaged_curve_pair_does_not_fit() -> None:
    public, secret = (key.decode("ascii") for key in zmq.curve_keypair())
    other_secret = zmq.curve_keypair()[1].decode("ascii")
    named: list[dict[str, Any] | None] = [{"curve_serverkey": public}] * 2
    for damaged in ("", "S" * 40, secret[:39], "é" * 40, other_secret):
        assert not ipp_recovery.curve_pair_fits({"public": public, "secret": damaged}, named), damaged


def client_script(cluster: Cluster, code: str, timeout: float = 240) -> dict[str, object]:
    """Run `code` in a fresh client process (as epyc users do) and return its JSON output."""
    prelude = (
        "import json, os, sys, time\nimport ipyparallel as ipp\n"
        f"PROFILE = {str(cluster.profile)!r}\nENGINES = {ENGINES}\nTASKS = {TASKS}\n"
        f"NOTEBOOK = {str(cluster.profile.parent / 'notebook.json')!r}\n"
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
# The client has the results; wait until the hub has recorded them too (it writes each as it
# hears of it, a little later: what it had not written when it died is the documented bound).
def recorded():
    ids = squares.msg_ids
    query = lambda part: {"msg_id": {"$in": part}, "completed": {"$ne": None}}
    return sum(len(client.db_query(query(ids[i:i + 500]), keys=["msg_id"])) for i in range(0, len(ids), 500))
while recorded() < TASKS:
    time.sleep(0.2)
# An engine is busy when the controller dies; the task runs again after each restart (and
# holds its engine meanwhile, so the direct view below waits for it).
busy = view.apply_async(time.sleep, 10)
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
direct = client[:].apply_async(os.getpid).get(timeout=60)
print(json.dumps({"registered_s": registered, "results": results, "direct": direct}))
"""


@pytest.fixture(params=[False, True], ids=["hmac", "curve"])
def cluster(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Cluster]:
    cluster = Cluster(tmp_path, curve=request.param)
    cluster.start_controller()
    try:
        yield cluster
    finally:
        cluster.stop()


def test_controller_killed_twice_loses_no_result_and_gets_its_engines_back(cluster: Cluster) -> None:
    submitted = client_script(cluster, SUBMIT)
    files = [cluster.profile / "security" / f"ipcontroller-{kind}.json" for kind in ("client", "engine")]
    written = [path.read_text() for path in files]
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
        # The same files (and so the same keys) serve every controller.
        assert [path.read_text() for path in files] == written
    log = cluster.log.read_text()
    assert "belongs to a previous controller" in log
    assert "ipython-tasks_1" not in log


CLIENT_FROM_FILE = """
info = json.load(open(os.path.join(PROFILE, "security", "ipcontroller-client.json")))
if PLAIN:
    info["curve_serverkey"] = None  # a client that does not speak CurveZMQ
try:
    client = ipp.Client(info, timeout=5)
    client[:].apply_async(os.getpid).get(timeout=5)
    print(json.dumps({"refused": False}))
except Exception as error:
    print(json.dumps({"refused": True, "error": type(error).__name__}))
"""


def test_with_curve_the_files_name_a_kept_key_and_plain_clients_get_nothing(tmp_path: Path) -> None:
    cluster = Cluster(tmp_path, curve=True)
    cluster.start_controller()
    try:
        client_script(cluster, "client = connect()\nprint(json.dumps({}))")
        security = cluster.profile / "security"
        info = json.loads((security / "ipcontroller-client.json").read_text())
        kept = security / ipp_recovery.CURVE_FILE
        assert info["curve_serverkey"] == json.loads(kept.read_text())["public"]
        assert kept.stat().st_mode & 0o777 == 0o600
        # The same client with the file as it is gets through; without CurveZMQ it gets nothing.
        assert client_script(cluster, "PLAIN = False\n" + CLIENT_FROM_FILE)["refused"] is False
        assert client_script(cluster, "PLAIN = True\n" + CLIENT_FROM_FILE)["refused"] is True
    finally:
        cluster.stop()


def fake_controller(security: Path, curve: bool) -> SimpleNamespace:
    """What keep_curve_keys reads of an IPController (its keys are made as upstream does)."""
    public, secret = zmq.curve_keypair()
    return SimpleNamespace(
        profile_dir=SimpleNamespace(security_dir=str(security)),
        engine_json_file="ipcontroller-engine.json",
        client_json_file="ipcontroller-client.json",
        enable_curve=curve,
        curve_publickey=public,
        curve_secretkey=secret,
        _ensure_curve_keypair=lambda: None,
        log=logging.getLogger("test"),
    )


def write_files(security: Path, info: dict[str, Any]) -> list[Path]:
    files = [security / "ipcontroller-engine.json", security / "ipcontroller-client.json"]
    for path in files:
        path.write_text(json.dumps(info))
    return files


def test_curve_keys_are_kept_for_files_that_name_them_and_made_anew_otherwise(tmp_path: Path) -> None:
    first = fake_controller(tmp_path, curve=True)
    ipp_recovery.keep_curve_keys(first)  # no files yet: the pair made at start is kept
    kept = json.loads((tmp_path / ipp_recovery.CURVE_FILE).read_text())
    assert kept["public"] == first.curve_publickey.decode()
    files = write_files(tmp_path, {"key": "", "curve_serverkey": kept["public"]})
    second = fake_controller(tmp_path, curve=True)
    ipp_recovery.keep_curve_keys(second)  # a restart: the kept pair is used again
    assert (second.curve_publickey, second.curve_secretkey) == (first.curve_publickey, first.curve_secretkey)
    assert all(path.exists() for path in files)
    write_files(tmp_path, {"key": "", "curve_serverkey": "another"})
    third = fake_controller(tmp_path, curve=True)
    ipp_recovery.keep_curve_keys(third)  # files for another key: removed, a new pair kept
    assert not any(path.exists() for path in files)
    assert json.loads((tmp_path / ipp_recovery.CURVE_FILE).read_text())["public"] == third.curve_publickey.decode()


@pytest.mark.parametrize("info", [{"key": "", "curve_serverkey": "P" * 40}, {"key": "", "curve_serverkey": None}])
def test_without_curve_files_written_for_it_are_removed_with_the_pair(tmp_path: Path, info: dict[str, Any]) -> None:
    files = write_files(tmp_path, info)
    (tmp_path / ipp_recovery.CURVE_FILE).write_text("{}")
    ipp_recovery.keep_curve_keys(fake_controller(tmp_path, curve=False))
    assert not any(path.exists() for path in [*files, tmp_path / ipp_recovery.CURVE_FILE])


def test_without_curve_signed_files_are_kept(tmp_path: Path) -> None:
    files = write_files(tmp_path, {"key": "s3cret", "curve_serverkey": None})
    ipp_recovery.keep_curve_keys(fake_controller(tmp_path, curve=False))
    assert all(path.exists() for path in files)


# epyc's own way: submit and go away (the notebook keeps the job ids), collect later from
# another process. Each point takes a while, so points are running and queued at a kill.
EPYC_SUBMIT = """
import epyc
class Slow(epyc.Experiment):
    def do(self, params):
        time.sleep(1.5)
        return {"square": params["x"] ** 2, "pid": os.getpid()}
client = connect(); client.close()
lab = epyc.ClusterLab(profile_dir=PROFILE, notebook=epyc.JSONLabNotebook(NOTEBOOK, create=True))
lab["x"] = range(POINTS)
lab.runExperiment(Slow())
print(json.dumps({"pending": lab.notebook().numberOfAllPendingResults()}))
"""

EPYC_COLLECT = """
import epyc
client = connect(); client.close()
lab = epyc.ClusterLab(profile_dir=PROFILE, notebook=epyc.JSONLabNotebook(NOTEBOOK))
deadline = time.monotonic() + 150
while not lab.ready() and time.monotonic() < deadline:
    time.sleep(1)
results = lab.results()
print(json.dumps({
    "pending": lab.notebook().numberOfAllPendingResults(),
    "squares": sorted(
        [int(r[epyc.Experiment.PARAMETERS]["x"]), int(r[epyc.Experiment.RESULTS]["square"])] for r in results
    ),
}))
"""

POINTS = 20


def test_points_in_flight_survive_two_controller_kills_under_their_ids(tmp_path: Path) -> None:
    cluster = Cluster(tmp_path)
    cluster.start_controller()
    try:
        submitted = client_script(cluster, f"POINTS = {POINTS}\n" + EPYC_SUBMIT)
        assert submitted["pending"] == POINTS
        time.sleep(3)  # some points done, two running, the rest queued
        cluster.kill_controller()
        cluster.start_controller()
        time.sleep(1)  # and again, before its engines are back
        cluster.kill_controller()
        cluster.start_controller()
        collected = client_script(cluster, EPYC_COLLECT)
        assert collected["pending"] == 0
        assert collected["squares"] == [[x, x * x] for x in range(POINTS)]
        assert "run again" in cluster.log.read_text()
    finally:
        cluster.stop()


# A point that kills its controller whenever it runs (as one that makes it run out of
# memory would), among ordinary ones.
POISON = """
client = connect()
view = client.load_balanced_view()
def poison(pgid_file=os.path.join(PROFILE, "controller.pgid")):
    import os, signal, time
    time.sleep(2)
    os.killpg(int(open(pgid_file).read()), signal.SIGKILL)
    time.sleep(60)
bad = view.apply_async(poison)
good = view.map_async(lambda x: x * x, range(6))
while True:  # until the hub has them all
    try:
        client.result_status(bad.msg_ids + good.msg_ids)
        break
    except ipp.RemoteError:
        time.sleep(0.1)
print(json.dumps({"bad": bad.msg_ids[0], "good": good.msg_ids}))
"""

POISON_CHECK = """
client = connect()
status = client.result_status([BAD] + GOOD, status_only=True)
good = [client.get_result(msg_id).get(timeout=30) for msg_id in GOOD]
try:
    client.get_result(BAD).get(timeout=30)
    error = None
except ipp.RemoteError as failure:
    error = [failure.ename, failure.evalue]
print(json.dumps({"pending": status["pending"], "good": good, "error": error}))
"""


def test_a_point_that_kills_its_controller_fails_after_the_rerun_limit(tmp_path: Path) -> None:
    cluster = Cluster(tmp_path)
    cluster.start_controller()
    try:
        ids = client_script(cluster, POISON)
        took: list[float] = []  # how long each death took to come after the start before it
        while len(took) < 6:
            started = time.monotonic()
            # A further death would come within twice the longest one took (restart, engines
            # back, the point's 2 s), and 30 s at least.
            if not cluster.controller_died(within=max([30.0, *(2 * t for t in took)])):
                break
            took.append(time.monotonic() - started)
            cluster.start_controller()
        deaths = len(took)
        # It ran once, then twice again (the default limit), and then no more.
        assert deaths == 3
        checked = client_script(
            cluster, f"BAD = {json.dumps(ids['bad'])}\nGOOD = {json.dumps(ids['good'])}\n" + POISON_CHECK
        )
        assert checked["pending"] == []
        assert checked["good"] == [[x * x] for x in range(6)]
        error = checked["error"]
        assert isinstance(error, list) and error[0] == "TaskRerunLimit"
        assert "running when its controller stopped 3 times" in error[1]
    finally:
        cluster.stop()


def test_only_runs_that_were_on_an_engine_count_towards_the_limit() -> None:
    import sqlite3

    db = sqlite3.connect(":memory:")
    assert ipp_recovery.count_run(db, "queued", was_running=False) == 0
    assert ipp_recovery.count_run(db, "queued", was_running=False) == 0
    assert [ipp_recovery.count_run(db, "poison", was_running=True) for _ in range(3)] == [1, 2, 3]
    assert ipp_recovery.count_run(db, "poison", was_running=False) == 3


def test_a_failure_record_reads_as_a_remote_error_with_the_reason() -> None:
    from ipyparallel import error

    record = ipp_recovery.failure_record("session", "task t was running when its controller stopped 3 times")
    assert record["completed"] and record["result_header"]["msg_type"] == "apply_reply"
    assert record["result_metadata"]["status"] == "error"
    raised = error.unwrap_exception(record["result_content"])
    assert raised.ename == "TaskRerunLimit"
    assert "stopped 3 times" in raised.evalue


def test_a_request_is_sent_again_with_its_own_header_and_metadata() -> None:
    header = {"msg_id": "m1", "msg_type": "apply_request", "session": "s", "date": "d"}
    record = {"header": header, "metadata": {"retries": 3}, "content": {}}
    message = ipp_recovery.request_message(record)
    assert message["header"] is header and message["msg_id"] == "m1"
    assert message["metadata"] == {"retries": 3} and message["parent_header"] == {}


class SignalledHub:
    """What stop_stranded_engine and upstream's handle_stopped_heart use of a hub: its engines,
    its session and its loop (timers kept, run by tick)."""

    def __init__(self) -> None:
        self.hearts: dict[bytes, int] = {}
        self.incoming_registrations: dict[bytes, object] = {}
        self.expect_stopped_hearts: set[bytes] = set()
        self.log = logging.getLogger("test-hub")
        self.db = None
        self.sent: list[str] = []
        self.timers: list[Any] = []
        self.session = SimpleNamespace(send=lambda _stream, _type, content, ident: self.sent.append(content["sig"]))
        self.loop = SimpleNamespace(time=lambda: 0.0, add_timeout=lambda when, call: self.timers.append((when, call)))
        self._ipp_recovery_control = object()

    def tick(self) -> float:
        """Run the next timer; return its delay."""
        when, call = self.timers.pop(0)
        call()
        return float(when)


def test_a_stranded_engine_is_signalled_while_its_heart_beats_and_no_longer() -> None:
    hub: Any = SignalledHub()
    ipp_recovery.stop_stranded_engine(hub, b"old")
    delays = [hub.tick() for _ in range(ipp_recovery.STOP_ATTEMPTS + 2)]
    assert hub.sent[:3] == ["SIGTERM", "SIGTERM", "SIGKILL"]
    assert len(hub.sent) == ipp_recovery.STOP_ATTEMPTS + 3  # it goes on past the quick attempts
    assert delays[0] == ipp_recovery.STOP_INTERVAL and delays[-1] == ipp_recovery.STOP_SLOW_INTERVAL
    ipp_recovery.handle_stopped_heart(hub, b"old")  # the engine exited
    hub.tick()
    assert not hub.timers and len(hub.sent) == ipp_recovery.STOP_ATTEMPTS + 3


def test_a_heart_that_stops_and_beats_again_gets_one_series_of_signals() -> None:
    hub: Any = SignalledHub()
    ipp_recovery.stop_stranded_engine(hub, b"old")
    ipp_recovery.handle_stopped_heart(hub, b"old")
    ipp_recovery.stop_stranded_engine(hub, b"old")  # reported new again: a new series
    assert hub.sent == ["SIGTERM", "SIGTERM"] and len(hub.timers) == 2
    hub.tick()  # the first series' timer: it ends
    assert hub.sent == ["SIGTERM", "SIGTERM"] and len(hub.timers) == 1
    hub.tick()  # the new series goes on
    assert len(hub.sent) == 3 and len(hub.timers) == 1


def test_a_stranded_engine_that_registers_is_left_alone() -> None:
    hub: Any = SignalledHub()
    hub.incoming_registrations[b"new"] = object()
    ipp_recovery.stop_stranded_engine(hub, b"new")
    assert not hub.sent and not hub.timers
    ipp_recovery.stop_stranded_engine(hub, b"old")
    hub.hearts[b"old"] = 0  # registered between two attempts
    hub.tick()
    assert hub.sent == ["SIGTERM"] and not hub.timers and not ipp_recovery.stranded_hearts(hub)
