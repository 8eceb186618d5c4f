"""ipcontroller with five work-arounds for eight ipyparallel 9 defects that break restarts.

A module of the ipp-helpers wheel, which the ipp_install role installs into the cluster's
virtual environment; run by ipp-controller.service (role ipp_controller) as
``python -m ipp_recovery`` with ipcontroller's own arguments.  Remove it when upstream fixes
these defects.  Work-around 1 covers two defects and 5 covers three;
docs/upstream-defects.md has a reproduction of each.

1. Results survive a restart.  ``SQLiteDB._check_table`` compares the column types SQLite
   reports with its own spelling, case-sensitively.  SQLite 3.40 reports them in another case,
   so every restarted controller decides its table is foreign, opens ``ipython-tasks_1`` (then
   ``_2`` ...) and results stored before the restart can no longer be fetched
   (``KeyError: 'No such message'``).  :class:`SQLiteDB` compares without case.  Upstream
   also commits only every 2 s, so a crash lost the results of the last seconds (measured: 156
   of 1500); :class:`SQLiteDB` commits each record, in WAL mode, with SQLite's ``synchronous``
   from ``c.SQLiteDB.synchronous``: ``FULL`` by default (an fsync per commit: a power loss
   takes nothing committed), or ``NORMAL`` (safe against a crash of the process; a power loss
   can take the records written since the last checkpoint).  The profile selects it with
   ``c.IPController.db_class = "ipp_recovery.SQLiteDB"``.

2. Engines come back after a restart.  A new controller has never heard of the engines of the
   previous one.  Their hearts still answer its pings, so they never exit, and it ignores them:
   they stay connected and count zero ("stranded").  ``--restore`` re-adopts them but loses its
   id counter and the engines' direct queues.  Instead, when the hub sees a heart it does not
   know (the heart monitor's "new heart" that belongs to no pending registration), it sends
   that engine a ``signal_request`` on the control channel: SIGTERM, then SIGKILL, for as
   long as that heart beats unregistered.  The engine's nanny process handles it even while
   the engine runs a task (a ``shutdown_request`` would wait for the task to end).  The
   engine exits, systemd starts it again (``Restart=always``) and it registers as a new
   engine; its task was lost with the old controller anyway.  This needs no state from the
   previous controller, so it works after a crash, a clean restart or a reboot, and for any
   number of restarts in a row.

3. Direct views work after a restart.  With ``reuse_files`` the controller takes its public
   ports from the connection files but still hands out its internal ports (monitor, the
   schedulers' back ends) from the start of ``IPController.ports``, which the files already
   use: the MUX and broadcast schedulers fail with "Address already in use", so
   ``client[:]`` (and epyc's ``ClusterLab.use``) hang while load-balanced tasks work.
   :func:`load_config_from_json` takes the files' ports out of the pools first.

4. CurveZMQ survives a restart.  With ``enable_curve`` the controller makes a new key pair at
   every start, but with ``reuse_files`` it keeps the connection files, which name the old
   public key: engines and clients holding them can no longer connect.  :func:`keep_curve_keys`
   keeps the pair in ``security/ipcontroller-curve.json`` (0600) beside the files and uses it
   again; when the files are missing or name another key, it removes them so that the
   controller writes new ones with the pair it has just made.

5. Work in flight survives a restart.  The hub keeps every request (header, metadata,
   content, buffers) in the task database, but a new controller ignores the requests of its
   predecessor that never completed: they stay "pending" for good.  Upstream's
   ``resubmit_task`` re-sends them under *new* ids, which no client (no epyc ``ClusterLab``
   notebook) knows.  :func:`rerun_unfinished` re-sends each one, at start, to the task
   scheduler under its *original* id, so ``result_status``/``get_result`` of that id (epyc's
   ``updateResults``) resolve it.  A request that was on an engine when its controller went
   counts as run once more (table ``ipp_reruns``); past :attr:`TaskRerun.limit` such runs it
   is not sent again but stored as failed (:class:`TaskRerunLimit`), so a point that kills
   its controller every time cannot loop for ever.  Requests sent to one engine (direct
   views) cannot run again (their engine is gone): they are stored as failed.  An engine of
   the previous controller may still send the result of the task it was running: the task
   scheduler takes it for the re-run's and then drops the re-run's own result (a ``KeyError``
   in ``dispatch_result``), so the task stays pending.  :func:`dispatch_result` ignores
   results from engines the scheduler has not registered.  (The schedulers are forked from
   the controller process, so they inherit this patch.)  A new hub also forgets which
   tasks have completed, so ``result_status`` (``status_only``, its default) raises
   ``KeyError: No such message`` for a result stored by its predecessor:
   :func:`remember_completed` reads their ids from the database at start.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import zmq
from ipyparallel import error, util
from ipyparallel.controller.app import IPController
from ipyparallel.controller.app import main as ipcontroller_main
from ipyparallel.controller.hub import Hub
from ipyparallel.controller.sqlitedb import SQLiteDB as UpstreamSQLiteDB
from ipyparallel.controller.task_scheduler import TaskScheduler
from traitlets import Bool, CaselessStrEnum, Integer
from traitlets.config import Configurable
from zmq.eventloop.zmqstream import ZMQStream

#: How often a stranded engine is signalled: the control scheduler drops messages for an
#: engine that has not reconnected to it yet.  The first attempts send SIGTERM, the later
#: ones SIGKILL (an engine stuck in C code ignores SIGTERM).  After STOP_ATTEMPTS quick ones,
#: an engine whose heart still beats unregistered is signalled every STOP_SLOW_INTERVAL for as
#: long as it beats: nothing else would ever make it leave (its own heartbeat check is
#: satisfied by the new controller's pings).
STOP_INTERVAL = 2.0
STOP_ATTEMPTS = 15
STOP_TERM_ATTEMPTS = 2
STOP_SLOW_INTERVAL = 10.0


def same_columns(found: list[tuple[str, str]], expected: dict[str, str], keys: list[str]) -> bool:
    """True when a table's (name, declared type) columns are ipyparallel's, types without case."""
    if [name for name, _ in found] != keys:
        return False
    return all(kind.lower() == expected[name].lower() for name, kind in found)


class SQLiteDB(UpstreamSQLiteDB):  # type: ignore[misc]
    """ipyparallel's SQLite task database that finds its own table again after a restart."""

    synchronous = CaselessStrEnum(
        ["NORMAL", "FULL"],
        "FULL",
        config=True,
        help="SQLite's synchronous setting: FULL also survives a power loss, at an fsync per record.",
    )

    def _check_table(self) -> bool:
        cursor = self._db.execute(f"PRAGMA table_info('{self.table}')")
        found = [(str(line[1]), str(line[2])) for line in cursor.fetchall()]
        if not found:
            return True
        if same_columns(found, dict(self._types), list(self._keys)):
            return True
        self.log.warning("table %s does not have ipyparallel's columns", self.table)
        return False

    def _init_db(self) -> None:
        super()._init_db()
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute(f"PRAGMA synchronous={self.synchronous.upper()}")

    def add_record(self, msg_id: str, rec: dict[str, Any]) -> None:
        super().add_record(msg_id, rec)
        self._db.commit()

    def update_record(self, msg_id: str, rec: dict[str, Any]) -> None:
        super().update_record(msg_id, rec)
        self._db.commit()


upstream_handle_new_heart = Hub.handle_new_heart
upstream_handle_stopped_heart = Hub.handle_stopped_heart


#: The recovery events, in the task database beside ipyparallel's table (ipp-metrics counts them).
EVENT_TABLE = "ipp_events"


def record_event(hub: Hub, kind: str, detail: str) -> None:
    """Note a recovery event (a controller start, an engine stopped, a task run again or not)."""
    db = getattr(hub.db, "_db", None)
    if not isinstance(db, sqlite3.Connection):
        return
    db.execute(f"CREATE TABLE IF NOT EXISTS {EVENT_TABLE} (time REAL NOT NULL, kind TEXT NOT NULL, detail TEXT)")
    db.execute(f"INSERT INTO {EVENT_TABLE} (time, kind, detail) VALUES (?, ?, ?)", (time.time(), kind, detail))
    db.commit()


def handle_new_heart(hub: Hub, heart: bytes) -> None:
    """A heart beats: finish its registration, or stop the engine if it belongs to none."""
    stop_stranded_engine(hub, heart)
    upstream_handle_new_heart(hub, heart)


def handle_stopped_heart(hub: Hub, heart: bytes) -> None:
    """A heart stopped: an engine being stopped has exited, so stop signalling it."""
    stranded_hearts(hub).pop(heart, None)
    upstream_handle_stopped_heart(hub, heart)


def stranded_hearts(hub: Hub) -> dict[bytes, object]:
    """The hearts that beat but belong to no engine of this hub, each with the token of the
    series of signals that stops its engine (made once)."""
    hearts: dict[bytes, object] | None = getattr(hub, "_ipp_recovery_stranded", None)
    if hearts is None:
        hearts = hub._ipp_recovery_stranded = {}
    return hearts


def control_stream(hub: Hub) -> ZMQStream:
    """The hub's own connection to the control scheduler, as a client (made once)."""
    stream: ZMQStream | None = getattr(hub, "_ipp_recovery_control", None)
    if stream is None:
        app = hub.parent
        socket: zmq.Socket[bytes] = zmq.Context.instance().socket(zmq.DEALER)
        socket.linger = 0
        app.connect(socket, util.disambiguate_url(app.client_url("control")))
        stream = ZMQStream(socket, hub.loop)
        hub._ipp_recovery_control = stream
    return stream


def stop_stranded_engine(hub: Hub, heart: bytes, attempt: int = 1, series: object = None) -> None:
    """Make the engine behind `heart` exit (systemd restarts it and it registers).

    Signals it until it registers (also between two attempts) or its heart stops beating.  A
    heart reported new again (after it stopped) starts a new series, which ends the old one.
    """
    stranded = stranded_hearts(hub)
    if heart in hub.hearts or heart in hub.incoming_registrations:
        stranded.pop(heart, None)
        return
    if series is None:
        series = stranded[heart] = object()
        hub.log.warning("engine %s belongs to a previous controller: asking it to restart", heart)
        record_event(hub, "engine_stopped", heart.decode("utf-8", "replace"))
    elif stranded.get(heart) is not series:
        return
    if attempt == STOP_ATTEMPTS + 1:
        hub.log.warning(
            "engine %s still beats after %d signals: signalling it every %.0f s while it does",
            heart,
            STOP_ATTEMPTS,
            STOP_SLOW_INTERVAL,
        )
    sig = "SIGTERM" if attempt <= STOP_TERM_ATTEMPTS else "SIGKILL"
    hub.session.send(control_stream(hub), "signal_request", content={"sig": sig}, ident=[heart])
    interval = STOP_INTERVAL if attempt < STOP_ATTEMPTS else STOP_SLOW_INTERVAL
    hub.loop.add_timeout(hub.loop.time() + interval, lambda: stop_stranded_engine(hub, heart, attempt + 1, series))


def connection_ports(info: dict[str, Any]) -> set[int]:
    """The ports named in a connection file's contents (numbers and lists of numbers)."""
    ports: set[int] = set()
    for value in info.values():
        values = value if isinstance(value, list) else [value]
        ports.update(v for v in values if isinstance(v, int) and not isinstance(v, bool))
    return ports


#: Where the controller's CurveZMQ key pair is kept, in the profile's security directory.
CURVE_FILE = "ipcontroller-curve.json"


def read_json(path: Path) -> dict[str, Any] | None:
    """A JSON file's object, or None when it is missing or not a JSON object."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def curve_pair_fits(pair: dict[str, Any] | None, infos: list[dict[str, Any] | None]) -> bool:
    """Whether the kept pair is a key pair (its public key derives from its secret one) and
    every connection file exists and names that public key.

    A damaged pair would give a controller nobody can connect to, or one that fails at every
    start: it does not fit, so the controller starts afresh.
    """
    if not pair or not isinstance(pair.get("public"), str) or not isinstance(pair.get("secret"), str):
        return False
    try:
        public = zmq.curve_public(pair["secret"].encode("ascii")).decode("ascii")
    except (ValueError, zmq.ZMQError):  # UnicodeEncodeError is a ValueError
        return False
    if public != pair["public"]:
        return False
    return all(info is not None and info.get("curve_serverkey") == pair["public"] for info in infos)


def remove_files(paths: list[Path]) -> None:
    """Delete the files that exist of `paths`."""
    for path in paths:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


def write_private(path: Path, data: dict[str, Any]) -> None:
    """Write JSON readable by the owner only, atomically (a crash leaves the old file or the new)."""
    temporary = path.with_name(path.name + ".tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as stream:
        os.fchmod(stream.fileno(), 0o600)
        json.dump(data, stream)
        stream.flush()
        os.fsync(stream.fileno())
    os.replace(temporary, path)


def keep_curve_keys(app: IPController) -> None:
    """With CurveZMQ, use the key pair the connection files were written for, or start afresh.

    Without it, connection files written for CurveZMQ (no HMAC key: reused, they would leave
    the controller with neither signing nor encryption) are removed with the kept pair.
    """
    security = Path(app.profile_dir.security_dir)
    files = [security / app.engine_json_file, security / app.client_json_file]
    kept = security / CURVE_FILE
    infos = [read_json(path) for path in files]
    if not app.enable_curve:
        if any(info is not None and (info.get("curve_serverkey") or not info.get("key")) for info in infos):
            app.log.warning("connection files written for CurveZMQ: writing new ones")
            remove_files(files)
        remove_files([kept])
        return
    pair = read_json(kept)
    if pair is not None and curve_pair_fits(pair, infos):
        app.curve_publickey = pair["public"].encode("ascii")
        app.curve_secretkey = pair["secret"].encode("ascii")
        return
    app.log.warning("no CurveZMQ key pair for the connection files: writing new files and keys")
    remove_files(files)
    app._ensure_curve_keypair()
    fresh = {"public": app.curve_publickey.decode("ascii"), "secret": app.curve_secretkey.decode("ascii")}
    try:
        write_private(kept, fresh)
    except OSError as error:
        # Upstream swallows an OSError here ("could not load config from JSON"): the
        # controller would make new keys at every start. Stop instead; systemd says why.
        raise RuntimeError(f"cannot keep the CurveZMQ key pair in {kept}: {error}") from error


upstream_load_config_from_json = IPController.load_config_from_json


def load_config_from_json(app: IPController) -> None:
    """Load the connection files, then keep their ports out of the pools of free ports."""
    keep_curve_keys(app)
    upstream_load_config_from_json(app)
    used = connection_ports(app.engine_info) | connection_ports(app.client_info)
    app.ports = [port for port in app.ports if port not in used]
    app.engine_ports = [port for port in app.engine_ports if port not in used]
    app.client_ports = [port for port in app.client_ports if port not in used]


class TaskRerun(Configurable):
    """Settings of :func:`rerun_unfinished`, from the profile (``c.TaskRerun.*``)."""

    enabled = Bool(True, config=True, help="Run unfinished tasks of earlier controllers again.")
    limit = Integer(
        2,
        config=True,
        help="How many times a task that was on an engine when its controller went is run again.",
    )


class TaskRerunLimit(RuntimeError):
    """The error stored for a task that will not run again."""


#: The rerun counts, in the task database beside ipyparallel's table.
RERUN_TABLE = "ipp_reruns"
#: The record fields a request is sent again from.
REQUEST_KEYS = ["header", "metadata", "content", "buffers", "queue", "engine_uuid", "resubmitted"]


def count_run(db: sqlite3.Connection, msg_id: str, was_running: bool) -> int:
    """How often the task has been run again, counting this time when it was on an engine."""
    db.execute(f"CREATE TABLE IF NOT EXISTS {RERUN_TABLE} (msg_id TEXT PRIMARY KEY, runs INTEGER NOT NULL)")
    row = db.execute(f"SELECT runs FROM {RERUN_TABLE} WHERE msg_id = ?", (msg_id,)).fetchone()
    runs = (int(row[0]) if row else 0) + (1 if was_running else 0)
    if was_running:
        db.execute(f"INSERT OR REPLACE INTO {RERUN_TABLE} (msg_id, runs) VALUES (?, ?)", (msg_id, runs))
        db.commit()
    return runs


def failure_record(session_id: str, reason: str) -> dict[str, Any]:
    """The record fields of a task that failed with ``reason``, as the hub stores a result."""
    try:
        raise TaskRerunLimit(reason)
    except TaskRerunLimit:
        content = error.wrap_exception()
    now = util.utcnow()
    header = {"msg_id": str(uuid.uuid4()), "msg_type": "apply_reply", "date": now, "session": session_id}
    return {
        "result_header": header,
        "result_metadata": {"status": "error", "engine": "", "date": now},
        "result_content": content,
        "result_buffers": [],
        "completed": now,
        "received": now,
    }


def request_message(record: dict[str, Any]) -> dict[str, Any]:
    """The request of a task record, as it was sent, with its original id and header."""
    header = record["header"]
    return {
        "header": header,
        "msg_id": header["msg_id"],
        "msg_type": header["msg_type"],
        "parent_header": {},
        "metadata": record["metadata"] or {},
        "content": record["content"] or {},
    }


def rerun_unfinished(hub: Hub) -> dict[str, int]:
    """Send the unfinished tasks of earlier controllers to the scheduler again, under their ids.

    Returns how many were sent again and how many were stored as failed.
    """
    settings = TaskRerun(parent=hub.parent)
    done = {"rerun": 0, "failed": 0}
    db = getattr(hub.db, "_db", None)
    if not settings.enabled or not isinstance(db, sqlite3.Connection):
        return done
    for record in hub.db.find_records({"completed": None}, keys=list(REQUEST_KEYS)):
        msg_id = record["msg_id"]
        if record["resubmitted"] or record["header"] is None:
            continue  # upstream's resubmit gave it a new id, which runs instead
        if record["queue"] != "task":
            reason = f"task {msg_id} was sent to one engine, which went with its controller: it cannot run again"
        else:
            runs = count_run(db, msg_id, bool(record["engine_uuid"]))
            reason = (
                f"task {msg_id} was running when its controller stopped {runs} times: not run again "
                f"(ipp_task_rerun_limit is {settings.limit}); it may be what stopped the controller"
            )
            if runs <= settings.limit:
                # Forget its engine first: the hub keeps fields a request does not name.
                hub.db.update_record(msg_id, {"engine_uuid": None, "started": None})
                hub.session.send(hub.resubmit, request_message(record), buffers=record["buffers"] or [])
                record_event(hub, "task_rerun", msg_id)
                done["rerun"] += 1
                continue
        hub.db.update_record(msg_id, failure_record(hub.session.session, reason))
        record_event(hub, "task_given_up", msg_id)
        hub.log.warning("%s", reason)
        done["failed"] += 1
    hub.log.warning("unfinished tasks of earlier controllers: %(rerun)d run again, %(failed)d failed", done)
    return done


upstream_dispatch_result = TaskScheduler.dispatch_result


def dispatch_result(scheduler: TaskScheduler, raw_msg: list[Any]) -> None:
    """Relay a task's result, unless it comes from an engine this scheduler never registered."""
    idents, _ = scheduler.session.feed_identities(raw_msg, copy=False)
    if idents and idents[0] not in scheduler.pending:
        scheduler.log.warning("result from engine %r of an earlier controller ignored: its task runs again", idents[0])
        return
    upstream_dispatch_result(scheduler, raw_msg)


def remember_completed(hub: Hub) -> int:
    """Tell the hub which tasks of the database completed (under earlier controllers too)."""
    completed = hub.db.find_records({"completed": {"$ne": None}}, keys=["msg_id"])
    hub.all_completed.update(record["msg_id"] for record in completed)
    return len(completed)


def recover_tasks(hub: Hub) -> None:
    """What a new hub must know of the tasks of earlier controllers (those failed here too)."""
    record_event(hub, "controller_start", f"pid {os.getpid()}")
    rerun_unfinished(hub)
    remember_completed(hub)


upstream_init_hub = IPController.init_hub


def init_hub(app: IPController) -> None:
    """Make the hub, then, once the event loop runs, recover the earlier controllers' tasks."""
    upstream_init_hub(app)
    app.hub.loop.add_callback(recover_tasks, app.hub)


def main() -> None:
    """Run ipcontroller with the work-arounds; arguments as for ipcontroller."""
    IPController.load_config_from_json = load_config_from_json
    IPController.init_hub = init_hub
    TaskScheduler.dispatch_result = dispatch_result
    Hub.handle_new_heart = handle_new_heart
    Hub.handle_stopped_heart = handle_stopped_heart
    sys.argv[0] = "ipcontroller"
    ipcontroller_main()


if __name__ == "__main__":
    main()
