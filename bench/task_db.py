#!/usr/bin/env python3
"""What the task database's durability costs and bounds (issue #12, item 2), on this machine.

Runs the controller as the unit does (``python -m ipp_recovery``, the SQLite task database)
with two local engines, and measures, side by side in one run, interleaved (medians):

  rate    tiny tasks/s through a LoadBalancedView with ``synchronous=NORMAL`` and ``FULL``
  window  with NORMAL, how many tasks' records a power loss can take: SQLite syncs the WAL
          journal only when it checkpoints it (every 1000 pages), so what was written since
          the last checkpoint is at risk; measured as WAL frames written per task

    .venv/bin/python bench/task_db.py [--repeats 3] [--tasks 1000] [--out docs/bench]

writes task_db.json and task_db.md into --out.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
MODULE_DIR = ROOT / "roles" / "ipp_install" / "files" / "helpers"
BIN = Path(sys.executable).parent
#: SQLite's default wal_autocheckpoint, in pages.
CHECKPOINT_PAGES = 1000
#: Tasks of the run that counts WAL frames (fewer than a checkpoint window holds).
WINDOW_TASKS = 60
#: The WAL header and each frame's header, in bytes (sqlite.org/fileformat2.html#walformat).
WAL_HEADER, FRAME_HEADER = 32, 24

CLIENT = """
import json, sys, time
import ipyparallel as ipp
profile, tasks = sys.argv[1], int(sys.argv[2])
deadline = time.monotonic() + 120
while True:
    try:
        client = ipp.Client(profile_dir=profile, timeout=5)
        if len(client.ids) >= 2:
            break
        client.close()
    except Exception:
        if time.monotonic() > deadline:
            raise
    time.sleep(0.5)
view = client.load_balanced_view()
view.map_async(lambda x: x, range(20)).get(timeout=60)  # warm up
started = time.monotonic()
view.map_async(lambda x: x, range(tasks)).get(timeout=600)
print(json.dumps({"seconds": time.monotonic() - started}))
"""


def free_ports(size: int) -> tuple[int, int]:
    """A run of `size` ports nothing listens on."""
    for start in range(22101, 30000, size):
        taken = False
        for port in range(start, start + size):
            with socket.socket() as probe:
                taken = taken or probe.connect_ex(("127.0.0.1", port)) == 0
        if not taken:
            return start, start + size - 1
    raise RuntimeError("no free port range")


def tasks_per_window(frames_per_task: float, pages: int = CHECKPOINT_PAGES) -> float:
    """How many tasks' records fit in the WAL between two checkpoints.

    >>> tasks_per_window(4.0)
    250.0
    """
    return pages / frames_per_task


def frames(wal_bytes: int, page_size: int) -> int:
    """WAL frames in a WAL file of this size.

    >>> frames(32 + 3 * (24 + 4096), 4096)
    3
    """
    return max(0, wal_bytes - WAL_HEADER) // (FRAME_HEADER + page_size)


def controller_profile(root: Path, extra: str = "") -> Path:
    """A profile under `root` whose controller runs as the unit's does (ipp_recovery's SQLiteDB
    in `root`, on free local ports), with `extra` configuration lines."""
    profile = root / "profile"
    profile.mkdir(parents=True)
    low, high = free_ports(20)
    (profile / "ipcontroller_config.py").write_text(
        "c = get_config()\n"
        "c.IPController.ip = '127.0.0.1'\n"
        f"c.IPController.ports = list(range({low}, {high + 1}))\n"
        "c.IPController.db_class = 'ipp_recovery.SQLiteDB'\n"
        f"c.SQLiteDB.location = {str(root)!r}\n" + extra
    )
    return profile


def stop_all(processes: list[subprocess.Popen[bytes]]) -> None:
    """SIGTERM each process group, SIGKILL those that do not end within 15 s."""
    for process in processes:
        try:
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(timeout=15)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            os.killpg(process.pid, signal.SIGKILL)


def run_once(root: Path, synchronous: str, tasks: int) -> dict[str, float]:
    """One controller with the given setting: the task rate and the WAL frames per task."""
    profile = controller_profile(
        root,
        f"c.SQLiteDB.synchronous = {synchronous!r}\n"
        # Keep the whole run in the WAL, to count its frames.
        "c.TaskRerun.enabled = False\n",
    )
    env = {**os.environ, "PYTHONPATH": str(MODULE_DIR), "PYTHONWARNINGS": "ignore"}
    quiet = subprocess.DEVNULL
    processes = [
        subprocess.Popen(
            [sys.executable, "-m", "ipp_recovery", f"--profile-dir={profile}"],
            env=env,
            stdout=quiet,
            stderr=quiet,
            start_new_session=True,
        )
    ]
    try:
        processes += [
            subprocess.Popen(
                [str(BIN / "ipengine"), f"--profile-dir={profile}"],
                env=env,
                stdout=quiet,
                stderr=quiet,
                start_new_session=True,
            )
            for _ in range(2)
        ]
        db = root / "tasks.db"
        wal = root / "tasks.db-wal"
        result = subprocess.run(
            [sys.executable, "-c", CLIENT, str(profile), str(tasks)],
            env=env,
            capture_output=True,
            text=True,
            timeout=900,
            check=True,
        )
        seconds = float(json.loads(result.stdout.strip().splitlines()[-1])["seconds"])
        page_size = 4096
        with db.open("rb") as stream:
            header = stream.read(18)
            page_size = int.from_bytes(header[16:18], "big") or 65536
        written = frames(wal.stat().st_size, page_size) if wal.exists() else 0
        if written >= CHECKPOINT_PAGES:  # checkpointed meanwhile: the count is not the run's
            return {"rate": tasks / seconds, "frames_per_task": float("nan")}
        return {"rate": tasks / seconds, "frames_per_task": written / (tasks + 20)}
    finally:
        stop_all(processes)


def summary(rounds: list[dict[str, Any]]) -> dict[str, Any]:
    """Medians per setting, and the ratio FULL / NORMAL."""

    def med(setting: str, key: str) -> float:
        return float(statistics.median(r[key] for r in rounds if r["synchronous"] == setting))

    normal, full = med("NORMAL", "rate"), med("FULL", "rate")
    per_task = med("window", "frames_per_task")
    return {
        "rate_normal": round(normal, 1),
        "rate_full": round(full, 1),
        "full_over_normal": round(full / normal, 3),
        "wal_frames_per_task": round(per_task, 2),
        "tasks_at_risk_normal": round(tasks_per_window(per_task)) if per_task else None,
    }


def markdown(figures: dict[str, Any], rounds: int, tasks: int) -> str:
    return "\n".join(
        [
            "# Task database: durability and its cost",
            "",
            f"`bench/task_db.py`, {rounds} interleaved rounds of {tasks} tiny tasks, 2 local engines, medians.",
            "",
            "| figure | value |",
            "| --- | --- |",
            f"| tasks/s, synchronous=NORMAL | {figures['rate_normal']} |",
            f"| tasks/s, synchronous=FULL (the default) | {figures['rate_full']} |",
            f"| FULL / NORMAL | {figures['full_over_normal']} |",
            f"| WAL frames written per task | {figures['wal_frames_per_task']} |",
            f"| tasks a power loss can take with NORMAL (1000-page checkpoint window) | "
            f"{figures['tasks_at_risk_normal']} |",
            "",
        ]
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--tasks", type=int, default=1000)
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "bench")
    args = parser.parse_args()
    rounds: list[dict[str, Any]] = []
    for repeat in range(args.repeats):
        # Interleaved: the rate with each setting, then a run short enough to stay inside one
        # checkpoint window, whose WAL holds every frame it wrote.
        for synchronous, tasks in (("NORMAL", args.tasks), ("FULL", args.tasks), ("window", WINDOW_TASKS)):
            with tempfile.TemporaryDirectory() as folder:
                figures = run_once(Path(folder), "NORMAL" if synchronous == "window" else synchronous, tasks)
            rounds.append({"synchronous": synchronous, "round": repeat, "tasks": tasks, **figures})
            print(json.dumps(rounds[-1]), flush=True)
    figures = summary(rounds)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "task_db.json").write_text(json.dumps({"rounds": rounds, "figures": figures}, indent=2) + "\n")
    (args.out / "task_db.md").write_text(markdown(figures, args.repeats, args.tasks))
    print(markdown(figures, args.repeats, args.tasks))
    return 0


if __name__ == "__main__":
    sys.exit(main())
