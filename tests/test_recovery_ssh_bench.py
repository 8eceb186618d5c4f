"""The pure parts of bench/recovery_ssh.py: the journal read, the phases, the summary."""

from __future__ import annotations

import json
from typing import Any

import pytest
import recovery_ssh

KILLED = 1000.0


def entry(seconds: float, unit: str, message: str, field: str = "_SYSTEMD_UNIT") -> str:
    return json.dumps({"__REALTIME_TIMESTAMP": str(int(seconds * 1e6)), field: unit, "MESSAGE": message})


LINES = [
    "3",
    entry(990.0, "ipp-engine@1.service", "[IPEngine.0] Completed registration with id 0"),
    entry(1001.3, "ipp-controller.service", "Started ipp-controller.service - ipyparallel controller", "UNIT"),
    entry(1002.0, "ipp-controller.service", "[IPController] heartbeat::subscription started"),
    entry(1004.0, "ipp-controller.service", "engine b'a/1/x' belongs to a previous controller: asking it to restart"),
    entry(1004.1, "ipp-controller.service", "engine b'b/1/y' belongs to a previous controller: asking it to restart"),
    entry(1004.3, "ipp-engine@1.service", "ipp-engine@1.service: Deactivated successfully.", "UNIT"),
    entry(1004.5, "ipp-engine@2.service", "ipp-engine@2.service: Deactivated successfully.", "UNIT"),
    entry(1005.7, "ipp-engine@1.service", "Started ipp-engine@1.service - ipyparallel engine 1", "UNIT"),
    entry(1005.9, "ipp-engine@2.service", "Started ipp-engine@2.service - ipyparallel engine 2", "UNIT"),
    entry(1007.2, "ipp-engine@2.service", "[IPEngine.1] Completed registration with id 1"),
    entry(1007.7, "ipp-engine@1.service", "[IPEngine.2] Completed registration with id 2"),
    '{"MESSAGE": [1, 2], "__REALTIME_TIMESTAMP": "1007800000"}',
]


def test_journal_lines_become_events_with_their_unit_and_only_text_messages() -> None:
    events = recovery_ssh.journal_events(LINES)
    assert len(events) == 11
    assert events[1] == {
        "time": 1001.3,
        "unit": "ipp-controller.service",
        "message": "Started ipp-controller.service - ipyparallel controller",
    }
    assert {e["unit"] for e in events} == {"ipp-controller.service", "ipp-engine@1.service", "ipp-engine@2.service"}


def test_phases_run_from_the_kill_to_the_first_controller_mark_and_the_last_engine_mark() -> None:
    phases = recovery_ssh.phase_times(recovery_ssh.journal_events(LINES), KILLED)
    assert {k: round(v, 1) for k, v in phases.items()} == {
        "controller_started": 1.3,
        "hub_ready": 2.0,
        "old_engines_seen": 4.0,
        "engines_stopped": 4.5,
        "engines_started": 5.9,
        "registered": 7.7,
    }


def test_only_registrations_after_the_kill_count() -> None:
    events = recovery_ssh.journal_events(LINES)
    assert recovery_ssh.registered_units(events, KILLED) == {"ipp-engine@1.service", "ipp-engine@2.service"}
    assert recovery_ssh.registered_units(events, 1007.5) == {"ipp-engine@1.service"}
    assert recovery_ssh.phase_times(events, 1008.0) == {}


def rounds_of(variant: str, totals: list[float]) -> list[dict[str, Any]]:
    return [
        {
            "variant": variant,
            "engines": 3,
            "phases": {phase: total * (n + 1) / 6 for n, phase in enumerate(recovery_ssh.PHASES)},
        }
        for total in totals
    ]


def test_the_summary_takes_medians_per_variant_and_ratios_to_the_goal_and_the_deployed_units() -> None:
    rounds = rounds_of("deployed", [9.0, 6.0, 7.5]) + rounds_of("restart-0.1", [5.0, 6.0, 4.5])
    figures = recovery_ssh.summary(rounds)
    assert figures["rounds"] == 3 and set(figures["variants"]) == {"deployed", "restart-0.1"}
    deployed, fast = figures["variants"]["deployed"], figures["variants"]["restart-0.1"]
    assert deployed["registered"] == 7.5 and deployed["controller_started"] == 7.5 / 6
    assert fast["registered"] == 5.0 and fast["over_deployed"] == 5.0 / 7.5
    assert deployed["over_goal"] == 0.5 and deployed["over_deployed"] == 1.0
    text = recovery_ssh.markdown(figures, "2026-12-02 10:00")
    assert "| registered | 7.5 | 5.0 |" in text
    assert "| all registered / `deployed` | 1.00 | 0.67 |" in text


def test_each_variant_other_than_the_deployed_units_has_drop_ins_for_the_controller_and_the_engines() -> None:
    assert recovery_ssh.DROP_INS["deployed"] == []
    for name, drop_ins in recovery_ssh.DROP_INS.items():
        if name != "deployed":
            assert [unit for unit, _ in drop_ins] == ["ipp-controller.service", "ipp-engine@.service"]


def test_the_heartbeat_period_is_the_one_logged_by_the_controller_started_after_the_kill() -> None:
    beats = [
        entry(990.0, "ipp-controller.service", "[IPController] Heartmonitor beating every 1000ms"),
        entry(1002.0, "ipp-controller.service", "[IPController] Heartmonitor beating every 500ms"),
    ]
    events = recovery_ssh.journal_events(beats)
    assert recovery_ssh.heartbeat_period(events, KILLED) == 500
    assert recovery_ssh.heartbeat_period(events[:1], KILLED) is None


def test_a_variant_whose_drop_ins_did_not_apply_stops_the_benchmark() -> None:
    recovery_ssh.check_variant("deployed", {"1s"}, 1000)
    recovery_ssh.check_variant("restart-0.1", {"100ms"}, 1000)
    recovery_ssh.check_variant("restart-0.1+heartbeat-0.5", {"100ms"}, 500)
    with pytest.raises(RuntimeError, match="restart delays are"):
        recovery_ssh.check_variant("restart-0.1", {"100ms", "1s"}, 1000)
    with pytest.raises(RuntimeError, match="heartbeat period was 1000 ms"):
        recovery_ssh.check_variant("restart-0.1+heartbeat-0.5", {"100ms"}, 1000)
