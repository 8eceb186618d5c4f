#!/usr/bin/env python3
"""What the metrics service (role ipp_metrics) costs, on this machine (issue #15).

Two measurements, interleaved, medians:

  scale     one sample and one scrape with 64 engines and 100 000 task records: the task
            database read (against a floor, a bare ``COUNT(*)`` of the same table, measured
            alongside), the hub replies' figures, /metrics and the dashboard page rendered
            with an hour of samples
  overhead  the controller's task rate (tiny tasks through a LoadBalancedView, 2 local
            engines, the unit's ``python -m ipp_recovery``) without the service and with it
            sampling every second (five times the default rate); the ratio with/without

    .venv/bin/python bench/metrics.py [--repeats 3] [--tasks 1000] [--records 100000] [--out docs/bench]

writes metrics.json and metrics.md into --out.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import functools
import json
import os
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from ipyparallel.controller.sqlitedb import SQLiteDB
from task_db import CLIENT, controller_profile, free_ports, stop_all

ROOT = Path(__file__).resolve().parent.parent
HELPERS_DIR = ROOT / "roles" / "ipp_install" / "files" / "helpers"
sys.path[:0] = [str(HELPERS_DIR)]

import ipp_metrics  # noqa: E402

BIN = Path(sys.executable).parent
ENGINES_AT_SCALE = 64
HOSTS_AT_SCALE = 8
#: One failed task in this many.
FAILING_EVERY = 50


def task_db(path: Path) -> SQLiteDB:
    """A task database as the hub writes it (ipyparallel's table)."""
    return SQLiteDB(location=str(path.parent), filename=path.name)


def add_tasks(db: SQLiteDB, records: int) -> None:
    """Tasks as the hub records them: all but the last 10 completed, one in FAILING_EVERY failed."""
    now = datetime.datetime.now()
    for index in range(records):
        msg_id = str(uuid.uuid4())
        failed = index % FAILING_EVERY == 0
        content = {"status": "error", "ename": "ValueError", "evalue": str(index)} if failed else {"status": "ok"}
        record = {
            "msg_id": msg_id,
            "header": {"msg_id": msg_id, "msg_type": "apply_request"},
            "content": {},
            "buffers": [b"x" * 64],
            "submitted": now,
            "completed": now if index < records - 10 else None,
            "engine_uuid": f"cl-{index % HOSTS_AT_SCALE}/1/{index}",
            "result_content": content,
            "result_buffers": [b"y" * 64],
            "queue": "task",
        }
        db.add_record(msg_id, record)
    db._db.commit()


def hub_replies(engines: int, hosts: int) -> tuple[dict[str, str], dict[str, Any]]:
    """What the hub answers for a cluster of `engines` over `hosts` hosts, half of them busy."""
    identities = {
        str(engine): f"cl-{engine % hosts}/{engine // hosts + 1}/{uuid.uuid4().hex}" for engine in range(engines)
    }
    queues: dict[str, Any] = {"status": "ok", "unassigned": 100}
    queues.update({str(engine): {"queue": 0, "tasks": engine % 2, "completed": 10} for engine in range(engines)})
    return identities, queues


def median_seconds(action: Callable[[], object], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        action()
        times.append(time.perf_counter() - started)
    return float(statistics.median(times))


def floor_count(path: Path) -> None:
    with contextlib.closing(sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True)) as db:
        db.execute(f'SELECT COUNT(*) FROM "{ipp_metrics.TASK_TABLE}"').fetchone()


def scale(records: int, repeats: int) -> dict[str, float]:
    """The cost of one sample and one scrape at scale, and the floor read of the same table."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "tasks.db"
        db = task_db(path)
        add_tasks(db, records)
        engines, queues = hub_replies(ENGINES_AT_SCALE, HOSTS_AT_SCALE)
        sample = ipp_metrics.Sample(time=time.time(), up=True)
        sample.expected = {f"cl-{host}": ENGINES_AT_SCALE // HOSTS_AT_SCALE for host in range(HOSTS_AT_SCALE)}
        figures: dict[str, float] = {}
        # Interleaved: the floor, the service's first read (the whole table, once at its
        # start) and its steady read (what one interval adds: here 100 tasks), in turn.
        floors, firsts, steadies = [], [], []
        for _ in range(repeats):
            floors.append(median_seconds(lambda: floor_count(path), 1))
            reader = ipp_metrics.TaskDB(path, 10)
            firsts.append(median_seconds(functools.partial(reader.read, sample), 1))
            add_tasks(db, 100)
            steadies.append(median_seconds(functools.partial(reader.read, sample), 1))
        figures["db_floor_s"] = float(statistics.median(floors))
        figures["db_first_read_s"] = float(statistics.median(firsts))
        figures["db_read_s"] = float(statistics.median(steadies))
        figures["hub_figures_s"] = median_seconds(lambda: ipp_metrics.hub_figures(engines, queues, sample), repeats)
        assert sum(sample.registered.values()) == ENGINES_AT_SCALE
        assert sample.completed == records + 100 * repeats - 10 * (repeats + 1)
        history = [ipp_metrics.Sample(time=sample.time - 5 * i, up=True, completed=i) for i in range(720, 0, -1)]
        history.append(sample)
        versions = ipp_metrics.versions()
        figures["scrape_metrics_s"] = median_seconds(lambda: ipp_metrics.render_metrics(sample, versions), repeats)
        figures["scrape_page_s"] = median_seconds(
            lambda: ipp_metrics.render_page(sample, history, versions, 5, ""), repeats
        )
    figures["sample_s"] = figures["db_read_s"] + figures["hub_figures_s"]
    figures["db_first_read_over_floor"] = figures["db_first_read_s"] / figures["db_floor_s"]
    return figures


@contextlib.contextmanager
def cluster(root: Path, metrics: bool) -> Iterator[Path]:
    """A controller as the unit runs it, 2 engines, and the metrics service if asked."""
    profile = controller_profile(root)
    env = {**os.environ, "PYTHONPATH": str(HELPERS_DIR), "PYTHONWARNINGS": "ignore"}
    commands = [[sys.executable, "-m", "ipp_recovery", f"--profile-dir={profile}"]]
    commands += [
        [str(BIN / "ipengine"), f"--profile-dir={profile}", f"--Session.session=local/{n}/{n}"] for n in (1, 2)
    ]
    port = free_ports(1)[0]
    if metrics:
        config = root / "metrics.json"
        config.write_text(
            json.dumps({"profile_dir": str(profile), "task_db": str(root / "tasks.db"), "port": port, "interval": 1})
        )
        commands.append([sys.executable, str(HELPERS_DIR / "ipp_metrics.py"), f"--config={config}"])
    processes = []
    try:
        for command in commands:
            processes.append(
                subprocess.Popen(
                    command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
                )
            )
            time.sleep(0.5 if command is commands[0] else 0)
        if metrics:  # measure once it runs: its start (Python, imports) is not its cost
            wait_for_port(port)
        yield profile
    finally:
        stop_all(processes)


def wait_for_port(port: int, within: float = 60) -> None:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
            time.sleep(2)  # and its first samples
            return
        time.sleep(0.2)
    raise TimeoutError(f"nothing listens on port {port}")


def task_rate(metrics: bool, tasks: int) -> float:
    with tempfile.TemporaryDirectory() as folder, cluster(Path(folder), metrics) as profile:
        env = {**os.environ, "PYTHONWARNINGS": "ignore"}
        done = subprocess.run(
            [sys.executable, "-c", CLIENT, str(profile), str(tasks)],
            env=env,
            capture_output=True,
            text=True,
            timeout=900,
            check=True,
        )
        return tasks / float(json.loads(done.stdout.strip().splitlines()[-1])["seconds"])


def summary(rates: list[dict[str, Any]]) -> dict[str, Any]:
    def med(metrics: bool) -> float:
        return float(statistics.median(r["rate"] for r in rates if r["metrics"] is metrics))

    def spread(metrics: bool) -> str:
        values = [r["rate"] for r in rates if r["metrics"] is metrics]
        return f"{min(values):.0f}-{max(values):.0f}"

    without, with_service = med(False), med(True)
    return {
        "spread_without": spread(False),
        "spread_with": spread(True),
        "rate_without": round(without, 1),
        "rate_with": round(with_service, 1),
        "with_over_without": round(with_service / without, 3),
    }


def markdown(scaled: dict[str, float], rates: dict[str, Any], args: argparse.Namespace) -> str:
    ms = {key: f"{value * 1000:.1f} ms" for key, value in scaled.items() if key.endswith("_s")}
    return "\n".join(
        [
            "# Metrics service: its cost",
            "",
            f"`bench/metrics.py`, {args.repeats} interleaved rounds, medians, on this machine.",
            "",
            f"At scale: {ENGINES_AT_SCALE} engines on {HOSTS_AT_SCALE} hosts, {args.records} task records.",
            "",
            "| figure | value |",
            "| --- | --- |",
            f"| task database, first read (the whole table, at the service's start) | {ms['db_first_read_s']} |",
            f"| floor: a bare COUNT(*) of the same table | {ms['db_floor_s']} |",
            f"| first read / floor | {scaled['db_first_read_over_floor']:.2f} |",
            f"| task database, steady read per sample (100 new tasks) | {ms['db_read_s']} |",
            f"| hub replies to figures | {ms['hub_figures_s']} |",
            f"| one sample (read + figures; the hub's two replies come on top) | {ms['sample_s']} |",
            f"| a scrape of /metrics (answered from the last sample) | {ms['scrape_metrics_s']} |",
            f"| the dashboard page, an hour of samples | {ms['scrape_page_s']} |",
            "",
            f"Controller task rate, {args.tasks} tiny tasks, 2 local engines:",
            "",
            "| figure | value |",
            "| --- | --- |",
            f"| tasks/s without the service | {rates['rate_without']} |",
            f"| tasks/s with it, sampling every second | {rates['rate_with']} |",
            f"| with / without | {rates['with_over_without']} |",
            f"| spread over the rounds, without / with | {rates['spread_without']} / {rates['spread_with']} tasks/s |",
            "",
            "A ratio inside the rounds' spread is no measurable difference: the sample's own cost",
            "(above) is what the service adds, once per interval.",
            "",
        ]
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--tasks", type=int, default=1000)
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "bench")
    args = parser.parse_args()
    scaled = scale(args.records, args.repeats)
    print(json.dumps({"scale": scaled}), flush=True)
    rounds: list[dict[str, Any]] = []
    for repeat in range(args.repeats):
        for metrics in (False, True):
            rounds.append({"round": repeat, "metrics": metrics, "rate": task_rate(metrics, args.tasks)})
            print(json.dumps(rounds[-1]), flush=True)
    rates = summary(rounds)
    args.out.mkdir(parents=True, exist_ok=True)
    document = {"scale": scaled, "rounds": rounds, "figures": rates}
    (args.out / "metrics.json").write_text(json.dumps(document, indent=2) + "\n")
    (args.out / "metrics.md").write_text(markdown(scaled, rates, args))
    print(markdown(scaled, rates, args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
