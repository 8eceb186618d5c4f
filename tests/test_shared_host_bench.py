"""bench/shared_host.py: its inventory, its parsing of the programs' output, its summary."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import shared_host
import yaml


def test_the_small_inventory_is_the_labs_groups_with_one_engine_host(tmp_path: Path) -> None:
    inventory = shared_host.write_inventory(tmp_path)
    hosts = yaml.safe_load(inventory.read_text())["all"]["children"]
    assert list(hosts["controller"]["hosts"]) == [shared_host.CONTROLLER]
    assert list(hosts["engines"]["hosts"]) == [shared_host.ENGINE_HOST]
    assert hosts["engines"]["vars"]["ipp_engines"] == shared_host.ENGINES
    assert (tmp_path / "group_vars" / "all.yml").is_file()  # the lab's own settings
    names = [platform["name"] for platform in shared_host.platforms()]
    assert names == [shared_host.CONTROLLER, shared_host.ENGINE_HOST]


def test_the_last_json_line_wins_over_logging() -> None:
    out = 'engine 0 registered\n{"rate": 1.0}\nnoise\n{"rate": 9.5}\n'
    assert shared_host.parse_last_json(out) == {"rate": 9.5}


def test_the_interactive_job_reports_its_own_time_nice_and_cgroup() -> None:
    done = subprocess.run(
        [sys.executable, "-c", shared_host.INTERACTIVE], capture_output=True, text=True, check=True, timeout=120
    )
    job = json.loads(done.stdout)
    assert job["seconds"] > 0 and isinstance(job["nice"], int) and job["cgroup"].startswith("/")


def test_the_client_script_compiles() -> None:
    compile(shared_host.CLIENT, "client", "exec")


def rounds() -> list[dict[str, Any]]:
    made = []
    for index, (alone, busy, rate) in enumerate([(1.0, 1.1, 10.0), (0.8, 1.2, 8.0), (0.9, 0.9, 12.0)]):
        for setting, factor in (("defaults", 1.0), ("none", 1.5)):
            made.append(
                {
                    "round": index,
                    "setting": setting,
                    "alone_s": alone,
                    "busy_s": busy * factor,
                    "slowdown": busy * factor / alone,
                    "rate": rate if setting == "defaults" else rate / 0.9,
                    "CPUWeight": "20" if setting == "defaults" else "[not set]",
                    "engine_nice": 10 if setting == "defaults" else 0,
                    "cgroup": "/x/user.slice/run-u5.service",
                    "nice": 0,
                }
            )
    return made


def test_the_summary_takes_medians_spreads_and_ratios() -> None:
    figures = shared_host.summary(rounds())
    assert figures["defaults_alone_s"] == 0.9 and figures["defaults_alone_s_spread"] == "0.80-1.00"
    assert figures["defaults_busy_s"] == 1.1 and figures["none_busy_s"] == 1.65
    assert figures["defaults_slowdown"] == round(1.1 / 1.0, 3)
    assert figures["none_rate_spread"] == "8.9-13.3"
    assert figures["rate_defaults_over_none"] == 0.9
    text = shared_host.markdown(figures, rounds(), argparse.Namespace(repeats=3, samples=3, tasks=60))
    assert "| throughput, defaults / none (goal >= 0.95) | 0.9 | |" in text
    assert "CPUWeight=20, nice 10 | CPUWeight=[not set], nice 0 |" in text
    assert "only `Nice=`" in text
