"""The status report: the controller's state, the cluster's verdict and its text, from what
status.yml gathered (no hosts needed)."""

from __future__ import annotations

import json
from typing import Any

from ipp_status import FilterModule, cluster_line, controller, document, duration, host_problems, sandbox, verdict

SHOW = "LoadState=loaded\nActiveState=active\nActiveEnterTimestamp=@1796136405\n"
TASKS = {"exists": True, "running": 2, "queued": 1, "completed": 6, "failed": 1}


def host(
    name: str, expected: int, running: int | None = None, registered: int | None = None, controller_state: str = ""
) -> dict[str, Any]:
    return {
        "name": name,
        "controller": controller_state,
        "units": {},
        "expected": expected,
        "running": expected if running is None else running,
        "registered": expected if registered is None else registered,
        "sandbox": "full",
        "resources": "enforced",
        "line": f"{name}: ...",
    }


def ctl(state: str = "active") -> dict[str, Any]:
    return {
        "state": state,
        "since": "2026-12-01T14:46:45Z",
        "uptime_seconds": 3723,
        "host": "cl-0",
        "task_db": {"file": "/var/lib/ipyparallel/tasks-cluster.db", "bytes": 2_500_000},
    }


COUNTS = {"cl-1": 8, "cl-2": 8, "cl-3": 8}
BY_HOST = {"cl-1": 8, "cl-2": 8, "cl-3": 8}
ALL: dict[str, Any] = {"by_host": BY_HOST, "engines": 24, "engines_seconds": 0.02}


def test_the_controller_since_when_and_for_how_long() -> None:
    assert controller(SHOW, 1796136405 + 3723.6) == {
        "state": "active",
        "since": "2026-12-01T14:46:45Z",
        "uptime_seconds": 3723,
    }


def test_a_controller_that_does_not_run_has_no_uptime() -> None:
    stopped = "LoadState=loaded\nActiveState=inactive\nActiveEnterTimestamp=@1796136405\n"
    assert controller(stopped, 1796140000) == {"state": "inactive", "since": None, "uptime_seconds": None}
    missing = "LoadState=not-found\nActiveState=inactive\nActiveEnterTimestamp=\n"
    assert controller(missing, 1796140000)["state"] == "missing"
    assert controller("", 1796140000)["state"] == "unknown"  # systemd did not answer


def test_durations_read_in_their_two_largest_units() -> None:
    assert duration(45) == "45 s"
    assert duration(0) == "0 s"
    assert duration(3723) == "1 h 2 min"
    assert duration(3 * 86400 + 4 * 3600 + 5) == "3 d 4 h"
    assert duration(120) == "2 min"


def test_a_run_limited_to_one_host_compares_the_cluster_with_the_whole_inventory() -> None:
    doc = document([host("cl-1", 8)], COUNTS, ALL, ctl(), TASKS)
    assert doc["complete"] is True and doc["problems"] == []
    assert doc["engines"]["expected"] == 24 and doc["engines"]["registered"] == 24
    assert [entry["name"] for entry in doc["hosts"]] == ["cl-1"]
    assert doc["left_out"] == ["cl-0", "cl-2", "cl-3"]
    assert "line" not in doc["hosts"][0]
    json.dumps(doc)  # a script can read it


def test_a_limited_run_notices_engines_missing_elsewhere() -> None:
    elsewhere = {**ALL, "by_host": {"cl-1": 8, "cl-2": 8, "cl-3": 5}}
    doc = document([host("cl-1", 8)], COUNTS, elsewhere, ctl(), TASKS)
    assert doc["complete"] is False
    assert doc["hosts"][0]["ok"] is True
    assert doc["problems"] == ["21 engines registered in the cluster, 24 expected"]


def test_a_host_whose_engines_do_not_run_or_register_is_named() -> None:
    assert host_problems(host("cl-1", 8, running=7, registered=7)) == [
        "7 of 8 engines running",
        "7 of 8 engines registered",
    ]
    assert host_problems(host("cl-0", 0, controller_state="failed")) == ["controller failed"]
    doc = document([host("cl-1", 8, running=7, registered=7)], COUNTS, {"by_host": {"cl-1": 7}}, ctl(), TASKS)
    assert doc["problems"][0] == "cl-1: 7 of 8 engines running, 7 of 8 engines registered"
    assert doc["hosts"][0]["ok"] is False


def test_more_engines_than_expected_is_not_complete_either() -> None:
    doc = document([host("cl-1", 8)], COUNTS, {"by_host": {**BY_HOST, "stray": 1}}, ctl(), TASKS)
    assert doc["problems"] == ["25 engines registered in the cluster, 24 expected"]


def test_an_unknown_engine_count_is_not_complete() -> None:
    doc = document([host("cl-1", 8)], {**COUNTS, "cl-3": None}, ALL, ctl(), TASKS)
    assert doc["engines"]["expected"] is None
    assert not doc["complete"]
    assert doc["problems"][0].startswith("the engine count of cl-3 is unknown")


def test_the_controller_is_checked_also_when_the_run_leaves_its_host_out() -> None:
    doc = document([host("cl-1", 8)], COUNTS, {"error": "no cluster on profile 'cluster'"}, ctl("failed"), TASKS)
    assert doc["problems"] == [
        "the controller did not answer: no cluster on profile 'cluster'",
        "the controller on cl-0 is failed",
        "0 engines registered in the cluster, 24 expected",
    ]
    # Where its host is in the run, its line says it (once).
    head = host("cl-0", 0, controller_state="failed")
    doc = document([head], COUNTS, ALL, ctl("failed"), TASKS)
    assert doc["problems"] == ["cl-0: controller failed"]


def test_the_task_figures_add_what_is_pending() -> None:
    doc = document([host("cl-1", 8)], COUNTS, ALL, ctl(), TASKS)
    assert doc["tasks"] == {**TASKS, "pending": 3}


def test_the_cluster_line_and_the_verdict() -> None:
    doc = document([host("cl-1", 8)], COUNTS, ALL, ctl(), TASKS)
    assert cluster_line(doc) == (
        "cluster: controller on cl-0 active since 2026-12-01 14:46:45 UTC (up 1 h 2 min), task DB 2.5 MB,"
        " tasks 2 running, 1 queued, 6 completed and not collected (1 failed);"
        " engines 24 expected, 24 registered (whole inventory)"
    )
    assert verdict(doc) == "complete"
    broken = document(
        [host("cl-1", 8)], {**COUNTS, "cl-3": None}, ALL, {**ctl("inactive"), "since": None}, {"error": "no venv"}
    )
    assert cluster_line(broken) == (
        "cluster: controller on cl-0 inactive, task DB 2.5 MB, tasks unknown (no venv);"
        " engines ? expected, 24 registered (whole inventory)"
    )
    assert verdict(broken).startswith("NOT complete: the controller on cl-0 is inactive; the engine count of cl-3")


def test_the_filters_are_registered_under_their_names() -> None:
    assert FilterModule().filters() == {
        "ipp_status_controller": controller,
        "ipp_status_document": document,
        "ipp_status_cluster_line": cluster_line,
        "ipp_status_sandbox": sandbox,
        "ipp_status_verdict": verdict,
    }


KERNEL_OPTIONS = ["PrivateDevices", "ProtectKernelTunables", "ProtectKernelModules"]


def test_the_sandbox_reads_the_loaded_units_options() -> None:
    full = {"PrivateDevices": "yes", "ProtectKernelTunables": "yes", "ProtectKernelModules": "yes"}
    units = {
        "ipp.slice": {"CPUWeight": "100"},  # a slice has no such options: not counted
        "ipp-engine@1.service": full,
        "ipp-engine@2.service": {**full, "ProtectKernelModules": "no"},
    }
    assert sandbox(units, ["ipp-engine@1.service"], KERNEL_OPTIONS) == "full"
    assert sandbox(units, ["ipp-engine@1.service", "ipp-engine@2.service"], KERNEL_OPTIONS) == "reduced"
    assert sandbox(units, [], KERNEL_OPTIONS) == ""
