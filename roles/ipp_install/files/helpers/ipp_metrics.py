"""ipp-metrics: the cluster's figures in Prometheus text format, and a dashboard page.

Run by ipp-metrics.service on the controller host, as the cluster account:
``python -m ipp_metrics --config /etc/ipp-metrics/<profile>.json`` (a module of the ipp-helpers
wheel).  Every ``interval``
seconds a sampler thread asks the hub, as a client, for its engines and queues (nothing runs
on the engines), reads the task database read-only (WAL: it never blocks the controller's
writes) and the engine list of the profile's ``ipcluster_config.py`` (what the inventory
expects).  Requests are answered from the last sample, so a scrape costs no query.

- ``GET /metrics``: Prometheus text format.
- ``GET /``: a page that refreshes by itself; engines per host, queue and throughput over the
  last hour, recent failures and recovery events, the controller's uptime, the versions.

With a ``token`` in the configuration every request needs it (``Authorization: Bearer ...``,
or ``?token=...`` for a browser); a bind address other than loopback needs one.
"""

from __future__ import annotations

import argparse
import contextlib
import hmac
import html
import ipaddress
import itertools
import json
import logging
import math
import os
import socket
import sqlite3
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import metadata
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

LOG = logging.getLogger("ipp-metrics")

#: The hub's table in the task database (ipyparallel's SQLiteDB default).
TASK_TABLE = "ipython-tasks"
#: ipp_recovery's log of recovery events, beside the hub's table.
EVENT_TABLE = "ipp_events"
#: The events ipp_recovery records, as counted in ipyparallel_recovery_events_total.
EVENT_KINDS = ("controller_start", "engine_stopped", "task_rerun", "task_given_up")
#: An engine's identity, as its unit names it: ``<inventory host>/<instance>/<invocation>``.
IDENTITY_SEPARATOR = "/"
#: The shortest token for a bind beyond loopback (the role's preflight refuses the same).
MIN_TOKEN = 16
#: Query fields a request may carry (the token is the only one read).
MAX_FIELDS = 8
#: Requests answered at once; more connections wait for a slot (each holds a thread).
MAX_REQUESTS = 16
#: Requests are short: anything longer is refused before it is parsed.
MAX_TARGET = 2048
PACKAGES = ("ipyparallel", "epyc", "pyzmq", "jupyter_client")


@dataclass(frozen=True)
class Settings:
    """The service's configuration file (written by the ipp_metrics role)."""

    profile_dir: Path
    task_db: Path
    address: str = "127.0.0.1"
    port: int = 9731
    token: str = ""
    interval: float = 5.0
    history: float = 3600.0
    timeout: float = 3.0
    failures: int = 10

    @classmethod
    def load(cls, path: Path) -> Settings:
        raw = json.loads(path.read_text())
        settings = cls(
            profile_dir=Path(raw["profile_dir"]),
            task_db=Path(raw["task_db"]),
            address=str(raw.get("address", cls.address)),
            port=int(raw.get("port", cls.port)),
            token=str(raw.get("token", "")),
            interval=float(raw.get("interval", cls.interval)),
            history=float(raw.get("history", cls.history)),
            timeout=float(raw.get("timeout", cls.timeout)),
            failures=int(raw.get("failures", cls.failures)),
        )
        settings.check()
        return settings

    def check(self) -> None:
        """Refuse what would expose the figures, or cannot work."""
        if not 0 < self.port < 65536:
            raise ValueError(f"port {self.port} is not a TCP port")
        if self.interval <= 0 or self.history < self.interval:
            raise ValueError("interval must be positive and history at least one interval")
        if len(self.token) < MIN_TOKEN and not is_loopback(self.address):
            raise ValueError(f"address {self.address} is not loopback: a token of {MIN_TOKEN} characters is needed")

    @property
    def client_file(self) -> Path:
        return self.profile_dir / "security" / "ipcontroller-client.json"


def is_loopback(address: str) -> bool:
    """Whether a bind address reaches this host only."""
    if address == "localhost":
        return True
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        return False


def engine_host(identity: str) -> str:
    """The inventory host of an engine, from the identity its unit gives it ('' if another)."""
    host, separator, _ = identity.partition(IDENTITY_SEPARATOR)
    return host if separator else ""


@dataclass
class Sample:
    """The cluster at one moment."""

    time: float
    up: bool = False
    expected: dict[str, int] = field(default_factory=dict)
    registered: dict[str, int] = field(default_factory=dict)
    busy: dict[str, int] = field(default_factory=dict)
    unassigned: int = 0
    queued: int = 0
    completed: int = 0
    failed: int = 0
    pending: int = 0
    db_bytes: int = 0
    controller_start: float | None = None
    events: dict[str, int] = field(default_factory=dict)
    recent_failures: list[dict[str, str]] = field(default_factory=list)
    recent_events: list[dict[str, str]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    sample_seconds: float = 0.0


def hub_figures(engines: Mapping[str, str], queues: Mapping[str, Any], sample: Sample) -> None:
    """Engines registered and busy per host, and the tasks waiting, from the hub's replies.

    engines: the connection reply's ``{id: identity}``; queues: the queue reply.
    """
    hosts = {engine_id: engine_host(identity) for engine_id, identity in engines.items()}
    sample.registered = count_by(hosts.values())
    sample.busy = {host: 0 for host in sample.registered}
    sample.unassigned = int(queues.get("unassigned", 0))
    sample.queued = sample.unassigned
    for engine_id, host in hosts.items():
        queue = queues.get(engine_id)
        if not isinstance(queue, Mapping):
            continue
        waiting = int(queue.get("queue", 0)) + int(queue.get("tasks", 0))
        sample.queued += waiting
        if waiting:
            sample.busy[host] += 1


def count_by(items: Iterable[str]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for item in items:
        counts[item] = counts.get(item, 0) + 1
    return counts


def expected_engines(profile_dir: Path) -> dict[str, int]:
    """The engines per host the inventory asks for: the profile's ipcluster_config.py."""
    from traitlets.config.loader import PyFileConfigLoader

    path = profile_dir / "ipcluster_config.py"
    if not path.exists():
        return {}
    config = PyFileConfigLoader(path.name, path=str(profile_dir)).load_config()
    engines = config.SSHEngineSetLauncher.get("engines", {})
    return {str(host): int(count) for host, count in dict(engines).items()}


#: SQLite refuses statements with more variables than this (999 before 3.32).
CHUNK = 500


def chunks(items: list[int]) -> Iterator[list[int]]:
    for start in range(0, len(items), CHUNK):
        yield items[start : start + CHUNK]


class TaskDB:
    """The task database, read-only and incrementally: each read looks at the rows added since
    the last one and at the rows that had no result then, not at the whole table (whose rows
    keep their rowid: the hub inserts each task once and updates it)."""

    def __init__(self, path: Path, failures: int) -> None:
        self.path = path
        self.failures = failures
        self.reset()

    def reset(self) -> None:
        self.last_rowid = 0
        self.completed = 0
        self.failed = 0
        self.open: set[int] = set()
        self.recent: deque[dict[str, str]] = deque(maxlen=self.failures)

    def read(self, sample: Sample) -> None:
        """Task totals, recent failures and recovery events into `sample`."""
        files = [self.path, self.path.with_name(self.path.name + "-wal")]
        sample.db_bytes = sum(file.stat().st_size for file in files if file.exists())
        if not self.path.exists():
            self.reset()
            return
        with contextlib.closing(sqlite3.connect(f"{self.path.as_uri()}?mode=ro", uri=True, timeout=1)) as db:
            tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
            if TASK_TABLE in tables:
                self.read_tasks(db)
            if EVENT_TABLE in tables:
                read_events(db, sample, self.failures)
        sample.completed, sample.failed, sample.pending = self.completed, self.failed, len(self.open)
        sample.recent_failures = list(reversed(self.recent))

    def read_tasks(self, db: sqlite3.Connection) -> None:
        columns = (
            "SELECT rowid, completed IS NOT NULL, resubmitted IS NOT NULL,"
            f" json_extract(result_content, '$.status') FROM \"{TASK_TABLE}\""
        )
        top = int(db.execute(f'SELECT COALESCE(MAX(rowid), 0) FROM "{TASK_TABLE}"').fetchone()[0])
        if top < self.last_rowid:
            self.reset()  # a new table (the database was deleted and made again)
        # Bounded by `top`: a row the hub adds meanwhile is read next time, once.
        rows = list(db.execute(f"{columns} WHERE rowid > ? AND rowid <= ?", (self.last_rowid, top)))
        for part in chunks(sorted(self.open)):
            rows += db.execute(f"{columns} WHERE rowid IN ({','.join('?' * len(part))})", part)
        self.last_rowid = max(top, self.last_rowid)
        failed: list[int] = []
        for rowid, done, resubmitted, status in rows:
            self.open.discard(rowid)
            if done:
                self.completed += 1
                if status != "ok":
                    self.failed += 1
                    failed.append(rowid)
            elif not resubmitted:  # upstream's resubmit runs it under a new id, in a new row
                self.open.add(rowid)
        for part in chunks(failed):
            for msg_id, completed, ename, evalue in db.execute(
                "SELECT msg_id, completed, json_extract(result_content, '$.ename'),"
                f" json_extract(result_content, '$.evalue') FROM \"{TASK_TABLE}\""
                f" WHERE rowid IN ({','.join('?' * len(part))}) ORDER BY completed",
                part,
            ):
                error = f"{ename or 'error'}: {evalue or ''}".strip()
                self.recent.append({"completed": str(completed), "msg_id": str(msg_id), "error": error})


def read_events(db: sqlite3.Connection, sample: Sample, last: int) -> None:
    """ipp_recovery's events: counts by kind, the last controller start, the latest ones."""
    sample.events = {kind: 0 for kind in EVENT_KINDS}
    for kind, count in db.execute(f"SELECT kind, COUNT(*) FROM {EVENT_TABLE} GROUP BY kind"):
        sample.events[str(kind)] = int(count)
    start = db.execute(f"SELECT MAX(time) FROM {EVENT_TABLE} WHERE kind = 'controller_start'").fetchone()
    sample.controller_start = float(start[0]) if start and start[0] is not None else None
    sample.recent_events = [
        {"time": format_time(float(when)), "event": str(kind), "detail": str(detail)}
        for when, kind, detail in db.execute(
            f"SELECT time, kind, detail FROM {EVENT_TABLE} ORDER BY time DESC LIMIT ?", (last,)
        )
    ]


def format_time(when: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(when))


class Hub:
    """A client of the controller that asks the hub only: its engines and its queues."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.client: Any = None

    def ask(self, msg_type: str, content: dict[str, Any] | None = None) -> dict[str, Any]:
        """One request to the hub's query socket, with a time limit (a dead hub never answers)."""
        import ipyparallel

        if self.client is None:
            self.client = ipyparallel.Client(str(self.settings.client_file), timeout=self.settings.timeout)
        try:
            future = self.client._send(self.client._query_stream, msg_type, content=content)
            reply: dict[str, Any] = future.result(timeout=self.settings.timeout)["content"]
        except BaseException:
            self.close()  # the next sample connects again (to the controller systemd restarted)
            raise
        if reply.get("status", "ok") != "ok":
            raise RuntimeError(f"{msg_type}: {reply.get('ename')}: {reply.get('evalue')}")
        return reply

    def sample(self, sample: Sample) -> None:
        engines = self.ask("connection_request")["engines"]
        queues = self.ask("queue_request", {"targets": None, "verbose": False})
        hub_figures(engines, queues, sample)

    def close(self) -> None:
        if self.client is not None:
            with contextlib.suppress(Exception):
                self.client.close(linger=0)
            self.client = None


class Monitor:
    """Samples the cluster every interval, keeping the last hour."""

    def __init__(self, settings: Settings, hub: Hub | None = None) -> None:
        self.settings = settings
        self.hub = hub or Hub(settings)
        self.history: deque[Sample] = deque(maxlen=max(2, math.ceil(settings.history / settings.interval)))
        self.lock = threading.Lock()
        self.sampling = threading.Lock()  # one sample at a time (the task counts add up)
        self.stopped = threading.Event()
        self.versions = versions()
        self.task_db = TaskDB(settings.task_db, settings.failures)
        self.first = threading.Event()  # set by the first sample

    def take(self) -> Sample:
        with self.sampling:
            return self.take_one()

    def take_one(self) -> Sample:
        started = time.monotonic()
        sample = Sample(time=time.time())
        steps: list[tuple[str, Callable[[], None]]] = [
            ("controller", lambda: self.hub.sample(sample)),
            ("task database", lambda: self.task_db.read(sample)),
            ("profile", lambda: setattr(sample, "expected", expected_engines(self.settings.profile_dir))),
        ]
        for name, step in steps:
            try:
                step()
            except Exception as error:  # one source down must not stop the others
                sample.errors.append(f"{name}: {type(error).__name__}: {error}")
                LOG.warning("%s: %s", name, error)
            else:
                if name == "controller":
                    sample.up = True
        sample.sample_seconds = time.monotonic() - started
        with self.lock:
            self.history.append(sample)
        self.first.set()
        return sample

    def latest(self) -> Sample:
        """The last sample; before the first, waits for the sampler (requests never sample)."""
        self.first.wait(self.settings.timeout * 3)
        with self.lock:
            if self.history:
                return self.history[-1]
        return Sample(time=time.time(), errors=["no sample yet: the service is starting"])

    def samples(self) -> list[Sample]:
        with self.lock:
            return list(self.history)

    def run(self) -> None:
        while not self.stopped.is_set():
            self.take()
            self.stopped.wait(self.settings.interval)
        self.hub.close()


def versions() -> dict[str, str]:
    found = {"python": ".".join(str(part) for part in sys.version_info[:3])}
    for package in PACKAGES:
        with contextlib.suppress(metadata.PackageNotFoundError):
            found[package] = metadata.version(package)
    return found


def label(value: str) -> str:
    """A Prometheus label value, escaped."""
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def number(value: float) -> str:
    """A sample value in full: integers as such, other numbers to their last digit."""
    value = float(value)
    return str(int(value)) if value.is_integer() and abs(value) < 2**53 else repr(value)


def metric(
    lines: list[str],
    name: str,
    kind: str,
    help_text: str,
    values: Mapping[str, float] | float,
    label_name: str = "host",
) -> None:
    """One metric family: HELP, TYPE and its samples (a mapping: by its one label)."""
    lines.append(f"# HELP {name} {help_text}")
    lines.append(f"# TYPE {name} {kind}")
    if isinstance(values, Mapping):
        for key, value in sorted(values.items()):
            lines.append(f'{name}{{{label_name}="{label(key)}"}} {number(value)}')
    else:
        lines.append(f"{name} {number(values)}")


def render_metrics(sample: Sample, versions: Mapping[str, str]) -> str:
    """The sample in Prometheus text format (version 0.0.4)."""
    lines: list[str] = []
    hosts = sorted(set(sample.expected) | set(sample.registered))
    metric(lines, "ipyparallel_up", "gauge", "Whether the hub answered the last sample.", 1 if sample.up else 0)
    metric(
        lines,
        "ipyparallel_engines_expected",
        "gauge",
        "Engines the inventory asks for, per host.",
        {host: sample.expected.get(host, 0) for host in hosts},
    )
    if sample.up:
        metric(
            lines,
            "ipyparallel_engines_registered",
            "gauge",
            "Engines registered with the hub, per host.",
            {host: sample.registered.get(host, 0) for host in hosts},
        )
        metric(
            lines,
            "ipyparallel_engines_busy",
            "gauge",
            "Engines with a task, per host.",
            {host: sample.busy.get(host, 0) for host in hosts},
        )
        metric(
            lines,
            "ipyparallel_tasks_queued",
            "gauge",
            "Tasks submitted and not finished: unassigned, and in the engines' queues.",
            sample.queued,
        )
        metric(lines, "ipyparallel_tasks_unassigned", "gauge", "Tasks no engine has taken yet.", sample.unassigned)
    completed = "Tasks in the task database that completed."
    metric(lines, "ipyparallel_tasks_completed_total", "counter", completed, sample.completed)
    metric(lines, "ipyparallel_tasks_failed_total", "counter", "Completed tasks whose status is not ok.", sample.failed)
    metric(lines, "ipyparallel_tasks_pending", "gauge", "Tasks in the task database without a result.", sample.pending)
    metric(lines, "ipyparallel_task_db_bytes", "gauge", "Size of the task database and its WAL file.", sample.db_bytes)
    if sample.controller_start is not None:
        metric(
            lines,
            "ipyparallel_controller_start_time_seconds",
            "gauge",
            "When the controller last started (Unix time).",
            sample.controller_start,
        )
    if sample.events:
        metric(
            lines,
            "ipyparallel_recovery_events_total",
            "counter",
            "Recovery events: controller starts, stranded engines stopped, tasks re-run or given up.",
            sample.events,
            label_name="event",
        )
    took = "How long the last sample took."
    metric(lines, "ipyparallel_metrics_sample_seconds", "gauge", took, sample.sample_seconds)
    lines.append("# HELP ipyparallel_build_info Versions on the controller host.")
    lines.append("# TYPE ipyparallel_build_info gauge")
    pairs = ",".join(f'{key}="{label(value)}"' for key, value in sorted(versions.items()))
    lines.append(f"ipyparallel_build_info{{{pairs}}} 1")
    return "\n".join(lines) + "\n"


def polyline(points: list[tuple[float, float | None]], width: int, height: int, top: float) -> list[str]:
    """SVG polylines through (x in 0..1, y) points; a None y (controller down) breaks the line."""
    runs: list[list[str]] = [[]]
    for x, y in points:
        if y is None:
            runs.append([])
            continue
        runs[-1].append(f"{x * width:.1f},{height - (y / top if top else 0) * height:.1f}")
    return [f'<polyline points="{" ".join(run)}"/>' for run in runs if run]


def chart(title: str, element_id: str, samples: list[Sample], value: Callable[[Sample, Sample], float | None]) -> str:
    """A small SVG chart of one figure over the history, with its last value."""
    width, height = 600, 120
    if len(samples) < 2:
        return f'<h3>{html.escape(title)}</h3><p class="muted">not enough samples yet</p>'
    first, last = samples[0].time, samples[-1].time
    span = max(last - first, 1e-9)
    points = [
        ((current.time - first) / span, value(previous, current)) for previous, current in itertools.pairwise(samples)
    ]
    known = [y for _, y in points if y is not None]
    top = max(known, default=0.0) or 1.0
    latest = points[-1][1]
    lines = "".join(polyline(points, width, height, top))
    shown = "controller down" if latest is None else f"{latest:g}"
    return (
        f'<h3>{html.escape(title)}: <span id="{element_id}">{html.escape(shown)}</span></h3>'
        f'<svg viewBox="0 0 {width} {height}" width="100%" height="{height}" role="img"'
        f' aria-label="{html.escape(title)}"><rect width="{width}" height="{height}" class="frame"/>'
        f'{lines}<text x="4" y="14">max {top:g}</text>'
        f'<text x="4" y="{height - 4}">{html.escape(format_time(first))}</text></svg>'
    )


def queued(_: Sample, current: Sample) -> float | None:
    return float(current.queued) if current.up else None


def throughput(previous: Sample, current: Sample) -> float | None:
    """Tasks completed per minute between two samples."""
    if not current.up or current.time <= previous.time:
        return None
    return round(max(current.completed - previous.completed, 0) * 60 / (current.time - previous.time), 1)


def render_page(sample: Sample, samples: list[Sample], versions: Mapping[str, str], refresh: int, query: str) -> str:
    """The dashboard: plain HTML and SVG, no script and nothing from the internet."""
    esc = html.escape
    hosts = sorted(set(sample.expected) | set(sample.registered))
    rows = "".join(
        f'<tr id="host-{esc(host)}"><td>{esc(host or "(not from a unit)")}</td>'
        f'<td class="expected">{sample.expected.get(host, 0)}</td>'
        f'<td class="registered">{sample.registered.get(host, 0) if sample.up else "-"}</td>'
        f'<td class="busy">{sample.busy.get(host, 0) if sample.up else "-"}</td></tr>'
        for host in hosts
    )
    total_expected = sum(sample.expected.values())
    total_registered = sum(sample.registered.values())
    if sample.up and sample.controller_start is not None:
        uptime = f"up for {format_duration(sample.time - sample.controller_start)}"
    else:
        uptime = "up" if sample.up else "DOWN (no answer from the hub)"
    failures = (
        "".join(
            f"<tr><td>{esc(item['completed'])}</td><td><code>{esc(item['msg_id'])}</code></td>"
            f"<td>{esc(item['error'])}</td></tr>"
            for item in sample.recent_failures
        )
        or '<tr><td colspan="3" class="muted">none</td></tr>'
    )
    events = (
        "".join(
            f"<tr><td>{esc(item['time'])}</td><td>{esc(item['event'])}</td><td>{esc(item['detail'])}</td></tr>"
            for item in sample.recent_events
        )
        or '<tr><td colspan="3" class="muted">none</td></tr>'
    )
    errors = "".join(f"<li>{esc(error)}</li>" for error in sample.errors)
    version_text = ", ".join(f"{esc(key)} {esc(value)}" for key, value in sorted(versions.items()))
    target = f"/{'?' + esc(query) if query else ''}"
    metrics_link = f"/metrics{'?' + esc(query) if query else ''}"
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="refresh" content="{refresh};url={target}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>ipyparallel cluster</title>
<style>
body {{ font-family: sans-serif; margin: 1.5em auto; max-width: 60em; padding: 0 1em; color: #222; }}
table {{ border-collapse: collapse; margin-bottom: 1em; }}
td, th {{ border-bottom: 1px solid #ccc; padding: 0.2em 0.8em; text-align: left; }}
td.expected, td.registered, td.busy {{ text-align: right; }}
svg polyline {{ fill: none; stroke: #1f6fb4; stroke-width: 2; }}
svg .frame {{ fill: #f6f8fa; stroke: #ccc; }}
svg text {{ font-size: 11px; fill: #666; }}
.muted {{ color: #888; }} .down {{ color: #b00; font-weight: bold; }}
</style></head><body>
<h1>ipyparallel cluster</h1>
<p>Controller: <span id="controller" class="{"" if sample.up else "down"}">{esc(uptime)}</span>.
Engines: <span id="registered-total">{total_registered if sample.up else "-"}</span> registered of
<span id="expected-total">{total_expected}</span> expected.
Tasks queued: <span id="tasks-queued">{sample.queued if sample.up else "-"}</span>.
Task database: <span id="db-bytes">{sample.db_bytes}</span> bytes,
<span id="completed">{sample.completed}</span> tasks completed,
<span id="failed">{sample.failed}</span> failed.
Sampled {esc(format_time(sample.time))}.</p>
{f'<ul class="down">{errors}</ul>' if errors else ""}
<h2>Engines per host</h2>
<table id="engines"><tr><th>host</th><th>expected</th><th>registered</th><th>busy</th></tr>{rows}</table>
<h2>The last hour</h2>
{chart("Tasks queued", "queued", samples, queued)}
{chart("Tasks completed per minute", "throughput", samples, throughput)}
<h2>Recent failures</h2>
<table id="failures"><tr><th>completed</th><th>task</th><th>error</th></tr>{failures}</table>
<h2>Recovery events</h2>
<table id="events"><tr><th>time</th><th>event</th><th>detail</th></tr>{events}</table>
<p class="muted">{version_text}. Prometheus metrics: <a href="{metrics_link}">/metrics</a>.</p>
</body></html>
"""


def format_duration(seconds: float) -> str:
    seconds = max(int(seconds), 0)
    days, seconds = divmod(seconds, 86400)
    hours, seconds = divmod(seconds, 3600)
    minutes, seconds = divmod(seconds, 60)
    return f"{days}d {hours}h {minutes}m" if days else f"{hours}h {minutes}m {seconds}s"


class Handler(BaseHTTPRequestHandler):
    """GET / and /metrics, with the token when one is set; clean errors for anything else."""

    server: Server
    server_version = "ipp-metrics"
    sys_version = ""
    timeout = 10  # a client that stops sending mid-request does not hold a thread for ever
    error_content_type = "text/plain; charset=utf-8"
    error_message_format = "%(code)d %(message)s\n"

    def do_GET(self) -> None:  # http.server's name
        self.answer(body=True)

    def do_HEAD(self) -> None:
        self.answer(body=False)

    def refuse_method(self) -> None:
        self.send_text(HTTPStatus.METHOD_NOT_ALLOWED, "only GET and HEAD\n", headers={"Allow": "GET, HEAD"})

    do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = refuse_method

    def answer(self, body: bool) -> None:
        if len(self.path) > MAX_TARGET:
            self.send_text(HTTPStatus.REQUEST_URI_TOO_LONG, "request too long\n", body=body)
            return
        target = urlsplit(self.path)
        try:
            query = parse_qs(target.query, max_num_fields=MAX_FIELDS)
        except ValueError:
            self.send_text(HTTPStatus.BAD_REQUEST, f"at most {MAX_FIELDS} query fields\n", body=body)
            return
        if not self.authorised(query):
            self.send_text(
                HTTPStatus.UNAUTHORIZED, "a token is needed\n", body=body, headers={"WWW-Authenticate": "Bearer"}
            )
            return
        monitor = self.server.monitor
        if target.path == "/metrics":
            text = render_metrics(monitor.latest(), monitor.versions)
            self.send_text(HTTPStatus.OK, text, content_type="text/plain; version=0.0.4", body=body)
        elif target.path == "/":
            keep = urlencode({"token": query["token"][0]}) if "token" in query else ""
            refresh = max(int(monitor.settings.interval), 5)
            page = render_page(monitor.latest(), monitor.samples(), monitor.versions, refresh, keep)
            self.send_text(HTTPStatus.OK, page, content_type="text/html", body=body)
        else:
            self.send_text(HTTPStatus.NOT_FOUND, "not found: / and /metrics only\n", body=body)

    def authorised(self, query: Mapping[str, list[str]]) -> bool:
        token = self.server.monitor.settings.token
        if not token:
            return True
        header = self.headers.get("Authorization", "")
        offered = header[len("Bearer ") :] if header.startswith("Bearer ") else query.get("token", [""])[0]
        return hmac.compare_digest(offered.encode(), token.encode())

    def send_text(
        self,
        status: HTTPStatus,
        text: str,
        content_type: str = "text/plain",
        body: bool = True,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        data = text.encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", f"{content_type}; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Content-Type-Options", "nosniff")
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        if body:
            self.wfile.write(data)

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        """Log refusals only: a scrape every few seconds would fill the journal."""
        if str(code).isdigit() and int(code) >= 400:
            super().log_request(code, size)

    def log_message(self, format: str, *args: object) -> None:
        # The request line without its query: a browser's ?token= must not reach the journal.
        LOG.info("%s %s", self.address_string(), (format % args).split("?", 1)[0])


class Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, monitor: Monitor) -> None:
        self.monitor = monitor
        self.slots = threading.BoundedSemaphore(MAX_REQUESTS)
        settings = monitor.settings
        if ":" in settings.address:
            self.address_family = socket.AF_INET6
        super().__init__((settings.address, settings.port), Handler)

    def process_request(self, request: socket.socket | tuple[bytes, socket.socket], client_address: object) -> None:
        """A thread per request, at most MAX_REQUESTS at once (the others wait their turn)."""
        self.slots.acquire()
        super().process_request(request, client_address)

    def process_request_thread(
        self, request: socket.socket | tuple[bytes, socket.socket], client_address: object
    ) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self.slots.release()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", type=Path, required=True, help="the service's JSON configuration")
    arguments = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    try:
        settings = Settings.load(arguments.config)
    except (OSError, ValueError, KeyError, TypeError) as error:
        print(f"ipp-metrics: {arguments.config}: {error}", file=sys.stderr)
        return 2
    monitor = Monitor(settings)
    server = Server(monitor)
    sampler = threading.Thread(target=monitor.run, name="sampler", daemon=True)
    sampler.start()
    LOG.info("serving http://%s:%d/ (metrics at /metrics)", settings.address, settings.port)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        monitor.stopped.set()
        server.server_close()
    return 0


if __name__ == "__main__":
    os.umask(0o077)
    sys.exit(main())
