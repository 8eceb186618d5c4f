"""The status report of the cluster: one document for people (a few lines) and scripts (JSON).

`ipp_status_document` decides whether the cluster is complete: every host of the run with
its units running and its engines registered, and the cluster's registered total equal to
the whole inventory's expected total, whatever hosts the run was limited to (-l). Pure
functions, tested in tests/test_status_filter.py.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

# What the text and the document leave out of a host's summary (status.yml's ipp_status_host).
TEXT_ONLY = ("line",)


def controller(show: str, now: float) -> dict[str, Any]:
    """The controller unit from `systemctl show --timestamp=unix
    --property=LoadState,ActiveState,ActiveEnterTimestamp`: state (active, inactive, failed,
    ..., missing when no such unit, unknown when systemd did not answer), and, while it is
    active, since when (UTC, ISO 8601) and for how many seconds at `now` (a Unix time)."""
    props = dict(line.split("=", 1) for line in str(show).splitlines() if "=" in line)
    if not props:
        state = "unknown"
    elif props.get("LoadState") == "not-found":
        state = "missing"
    else:
        state = props.get("ActiveState") or "unknown"
    entered = re.fullmatch(r"@([0-9]+)", props.get("ActiveEnterTimestamp", "").strip())
    if state != "active" or not entered:
        return {"state": state, "since": None, "uptime_seconds": None}
    since = int(entered[1])
    return {
        "state": state,
        "since": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(since)),
        "uptime_seconds": max(int(float(now)) - since, 0),
    }


def duration(seconds: int) -> str:
    """A duration for people, its two largest units: `3 d 4 h`, `2 h 5 min`, `45 s`."""
    parts: list[str] = []
    rest = int(seconds)
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60), ("s", 1)):
        if rest >= size or (unit == "s" and not parts):
            parts.append(f"{rest // size} {unit}")
            rest %= size
    return " ".join(parts[:2])


def _count(value: object) -> int | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        return int(str(value))
    except ValueError:
        return None


def host_problems(host: Mapping[str, Any]) -> list[str]:
    """What is wrong with one host of the run: its controller (where it runs one), its engines
    running (units) and registered (as the controller sees them), against its expected count."""
    found = []
    if host.get("controller") not in ("", None, "active"):
        found.append(f"controller {host['controller']}")
    expected = _count(host.get("expected"))
    running = _count(host.get("running"))
    registered = _count(host.get("registered"))
    if running != expected:
        found.append(f"{running} of {expected} engines running")
    if registered != expected:
        found.append(f"{registered} of {expected} engines registered")
    return found


def document(
    hosts: Sequence[Mapping[str, Any]],
    counts: Mapping[str, Any],
    report: Mapping[str, Any],
    controller_state: Mapping[str, Any],
    tasks: Mapping[str, Any],
) -> dict[str, Any]:
    """The cluster's status, for people and scripts.

    `hosts`: the run's hosts' summaries (name, controller, units, expected, running, registered,
    sandbox, resources); `counts`: every engine host's expected count, the whole inventory's (None
    where unknown); `report`: ipp-check --by-host's answer; `controller_state`: controller()'s,
    with the controller's host and task_db; `tasks`: ipp-check --task-db's counts.
    """
    counts = {str(name): _count(count) for name, count in counts.items()}
    unknown = sorted(name for name, count in counts.items() if count is None)
    expected = None if unknown else sum(count or 0 for count in counts.values())
    by_host = {str(name): int(count) for name, count in (report.get("by_host") or {}).items()}
    registered = sum(by_host.values())

    entries = []
    problems = []
    for host in hosts:
        found = host_problems(host)
        entry = {key: value for key, value in host.items() if key not in TEXT_ONLY}
        entries.append({**entry, "ok": not found, "problems": found})
        if found:
            problems.append(f"{host['name']}: {', '.join(found)}")
    names = {str(host["name"]) for host in hosts}
    where = str(controller_state.get("host", ""))
    if report.get("error"):
        problems.append(f"the controller did not answer: {report['error']}")
    if controller_state.get("state") != "active" and where not in names:
        problems.append(f"the controller on {where} is {controller_state.get('state')}")
    if unknown:
        problems.append(
            f"the engine count of {', '.join(unknown)} is unknown (left out of this run, and ipp_engines is"
            " not a whole number, or unset and the host did not say its CPU count)"
        )
    elif registered != expected:
        problems.append(f"{registered} engines registered in the cluster, {expected} expected")

    task_counts = dict(tasks)
    task_counts["pending"] = (_count(tasks.get("running")) or 0) + (_count(tasks.get("queued")) or 0)
    return {
        "complete": not problems,
        "problems": problems,
        "controller": dict(controller_state),
        "tasks": task_counts,
        "engines": {
            "expected": expected,
            "registered": registered,
            "expected_by_host": counts,
            "registered_by_host": by_host,
            "wait_seconds": report.get("engines_seconds"),
        },
        "hosts": entries,
        "left_out": sorted((set(counts) | ({where} if where else set())) - names),
    }


def cluster_line(doc: Mapping[str, Any]) -> str:
    """The cluster's line of the text report: the controller, its tasks, the engine totals."""
    ctl = doc["controller"]
    text = f"cluster: controller on {ctl.get('host')} {ctl.get('state')}"
    if ctl.get("since"):
        text += f" since {ctl['since'].replace('T', ' ').replace('Z', ' UTC')} (up {duration(ctl['uptime_seconds'])})"
    size = (ctl.get("task_db") or {}).get("bytes")
    if size is not None:
        text += f", task DB {size / 1e6:.1f} MB"
    tasks = doc["tasks"]
    if tasks.get("error"):
        text += f", tasks unknown ({tasks['error']})"
    else:
        text += (
            f", tasks {tasks.get('running')} running, {tasks.get('queued')} queued,"
            f" {tasks.get('completed')} completed and not collected ({tasks.get('failed')} failed)"
        )
    engines = doc["engines"]
    expected = "?" if engines["expected"] is None else engines["expected"]
    text += f"; engines {expected} expected, {engines['registered']} registered (whole inventory)"
    return text


def sandbox(units: Mapping[str, Mapping[str, str]], installed: Sequence[str], options: Sequence[str]) -> str:
    """The sandbox the host's cluster units run with, from their loaded properties
    (ipp_cgroup_info's units): full, reduced (a unit lacks one of `options`), '' (no unit)."""
    if not installed:
        return ""
    reduced = any(units.get(unit, {}).get(option) == "no" for unit in installed for option in options)
    return "reduced" if reduced else "full"


def verdict(doc: Mapping[str, Any]) -> str:
    """The report's last line: complete, or what is not."""
    return "complete" if doc["complete"] else "NOT complete: " + "; ".join(doc["problems"])


class FilterModule:
    """ipp_status_controller, ipp_status_document, ipp_status_cluster_line, ipp_status_sandbox,
    ipp_status_verdict."""

    def filters(self) -> dict[str, Callable[..., Any]]:
        return {
            "ipp_status_controller": controller,
            "ipp_status_document": document,
            "ipp_status_cluster_line": cluster_line,
            "ipp_status_sandbox": sandbox,
            "ipp_status_verdict": verdict,
        }
