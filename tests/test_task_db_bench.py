"""The pure parts of bench/task_db.py: WAL frames, the checkpoint window, the summary."""

from __future__ import annotations

import math

import task_db


def test_frames_are_counted_from_the_wal_size() -> None:
    assert task_db.frames(0, 4096) == 0
    assert task_db.frames(32, 4096) == 0
    assert task_db.frames(32 + 10 * (24 + 4096), 4096) == 10


def test_the_window_is_the_checkpoint_pages_over_frames_per_task() -> None:
    assert task_db.tasks_per_window(5.0) == 200.0
    assert task_db.tasks_per_window(2.0, pages=10) == 5.0


def test_the_summary_takes_medians_per_setting() -> None:
    rounds = [
        {"synchronous": "NORMAL", "rate": 100.0, "frames_per_task": math.nan},
        {"synchronous": "NORMAL", "rate": 300.0, "frames_per_task": math.nan},
        {"synchronous": "FULL", "rate": 100.0, "frames_per_task": math.nan},
        {"synchronous": "FULL", "rate": 100.0, "frames_per_task": math.nan},
        {"synchronous": "window", "rate": 10.0, "frames_per_task": 4.0},
    ]
    figures = task_db.summary(rounds)
    assert figures["rate_normal"] == 200.0 and figures["rate_full"] == 100.0
    assert figures["full_over_normal"] == 0.5
    assert figures["tasks_at_risk_normal"] == 250
