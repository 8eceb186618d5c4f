"""The benchmark's arithmetic: medians, ratios against the issue's targets, the report."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import probe
import pytest

import bench

RECAP = """
PLAY RECAP *********************************************************************
bench-0                    : ok=41   changed=0    unreachable=0    failed=0    skipped=9    rescued=0    ignored=0
bench-1                    : ok=30   changed=3    unreachable=0    failed=0    skipped=7    rescued=0    ignored=0
"""


def results() -> dict[str, Any]:
    return {
        "date": "2026-11-25 10:00",
        "machine": "2 CPUs",
        "repeats": 3,
        "deploy": {
            "median": {
                "2": {"cold": 100.0, "warm": 8.0},
                "4": {"cold": 120.0, "warm": 15.0},
                "8": {"cold": 200.0, "warm": 20.0},
            }
        },
        "startup": {"median": {"startyml": 10.0, "systemctl": 5.0, "ipcluster_ssh": 40.0}},
        "throughput": {
            "median": {
                "deployed": {"tasks": 900.0, "epyc": 50.0},
                "bare_memory": {"tasks": 1000.0, "epyc": 60.0},
            }
        },
    }


def test_recap_changes_reads_every_host() -> None:
    assert bench.recap_changes(RECAP) == {"bench-0": 0, "bench-1": 3}


def test_slowest_tasks_come_from_the_profile_tasks_summary() -> None:
    output = (
        "ipp_install : Install the pinned packages in the virtual environment ------ 35.21s\n"
        "Gathering Facts ----------------------------------------------------------- 2.04s\n"
        "ipp_install : Install Python and venv support (Debian family) ------------- 40.50s\n"
    )
    assert bench.slowest_tasks(output, 2) == [
        ("ipp_install : Install Python and venv support (Debian family)", 40.5),
        ("ipp_install : Install the pinned packages in the virtual environment", 35.21),
    ]


def test_cpu_busy_seconds_leaves_out_idle_and_iowait() -> None:
    line = "cpu  1000 0 500 9000 300 0 100 0 0 0"
    assert bench.cpu_busy_seconds(line) == pytest.approx(1600 / os.sysconf("SC_CLK_TCK"))


def test_median_of_an_even_count_is_the_middle_mean() -> None:
    assert bench.median([4.0, 1.0, 3.0, 2.0]) == 2.5


@pytest.mark.parametrize(("turn", "expected"), [(0, [2, 4, 8]), (1, [4, 8, 2]), (5, [8, 2, 4])])
def test_rotate_starts_each_round_elsewhere(turn: int, expected: list[int]) -> None:
    assert bench.rotate([2, 4, 8], turn) == expected


def test_ratios_follow_the_targets_definitions() -> None:
    figures = bench.ratios(results())
    assert figures["deploy_warm_over_cold_4"] == pytest.approx(0.125)
    assert figures["deploy_cold_8_over_2"] == pytest.approx(2.0)
    assert figures["startup_ipcluster_over_startyml"] == pytest.approx(4.0)
    assert figures["startup_ipcluster_over_systemctl"] == pytest.approx(8.0)
    assert figures["tasks_deployed_over_bare"] == pytest.approx(0.9)


def test_verdicts_say_met_missed_and_not_measured() -> None:
    figures = bench.ratios(results())
    del figures["startup_ipcluster_over_systemctl"]
    met = {row["figure"]: row["met"] for row in bench.verdicts(figures)}
    assert met == {
        "deploy_warm_over_cold_4": False,
        "deploy_cold_8_over_2": False,
        "startup_ipcluster_over_startyml": True,
        "startup_ipcluster_over_systemctl": None,
        "tasks_deployed_over_bare": False,
    }


def test_markdown_and_plot_from_one_result(tmp_path: Path) -> None:
    data = results()
    data["targets"] = bench.verdicts(bench.ratios(data))
    text = bench.markdown(data)
    assert "| 4 | 120.0 | 0 | 0.00 of" in text
    assert "| 15.0 | 0 | 0.12 |" in text
    assert "| warm re-run / cold deploy, 4 engine hosts | <= 0.1 | 0.12 | **no** |" in text
    bench.plot(data, tmp_path / "plot.png")
    assert (tmp_path / "plot.png").read_bytes().startswith(b"\x89PNG")


def test_the_probe_squares_like_the_cluster_would() -> None:
    assert probe.Square().do({"x": 7}) == {"square": 49}
    assert probe.noop(3) == 3
