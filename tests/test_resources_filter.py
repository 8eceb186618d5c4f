"""ipp_limits: the resource-control values of a host and the errors preflight refuses."""

from __future__ import annotations

from typing import Any

import pytest
from ipp_resources import human, limits, size_bytes, summary, unit_size

GIB = 1024**3
DEFAULTS: dict[str, Any] = {
    "ipp_memory_reserve": "20%",
    "ipp_slice_cpu_weight": 20,
    "ipp_slice_memory_max": None,
    "ipp_engine_cpu_weight": 20,
    "ipp_engine_nice": 10,
    "ipp_engine_memory_max": None,
    "ipp_engine_memory_high": None,
    "ipp_engine_tasks_max": 1024,
    "ipp_engine_oom_policy": "stop",
    "ipp_engine_oom_score_adjust": 500,
    "ipp_controller_cpu_weight": 200,
    "ipp_controller_memory_low": "256M",
    "ipp_controller_oom_score_adjust": -100,
}


def host(memtotal_mb: int = 16384, engines: int = 4, controller: bool = False, **changes: object) -> dict[str, Any]:
    return limits({**DEFAULTS, **changes}, memtotal_mb, engines, controller, "cl-1")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("4G", 4 * GIB),
        ("512M", 512 * 1024**2),
        ("1.5G", int(1.5 * GIB)),
        ("25%", 4 * GIB),
        (1000, 1000),
        ("infinity", "infinity"),
        ("4X", None),
        ("-1G", None),
        ("150%", None),
        (True, None),
        ("", None),
    ],
)
def test_sizes_read_as_systemd_does(value: object, expected: object) -> None:
    assert size_bytes(value, 16 * GIB) == expected


def test_defaults_give_each_engine_a_fair_share_of_what_the_reserve_leaves() -> None:
    result = host()
    assert result["errors"] == []
    share = int(16 * GIB * 0.8) // 4
    assert result["engine_memory_max"] == unit_size(share) == "3276M"
    assert result["engine_memory_high"] == unit_size(int(share * 0.9))
    assert result["slice_memory_max"] == ""
    assert result["controller_memory_low"] == "256M"


def test_the_controller_host_keeps_the_controllers_reserve_out_of_the_engines_share() -> None:
    assert host(controller=True)["engine_memory_max"] == unit_size((int(16 * GIB * 0.8) - 256 * 1024**2) // 4)


def test_explicit_caps_and_the_slice() -> None:
    result = host(ipp_engine_memory_max="2G", ipp_engine_memory_high="infinity", ipp_slice_memory_max="auto")
    assert (result["engine_memory_max"], result["engine_memory_high"]) == ("2048M", "infinity")
    assert result["slice_memory_max"] == unit_size(int(16 * GIB * 0.8))
    assert host(ipp_engine_memory_max="infinity")["engine_memory_high"] == "infinity"


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        (
            {"ipp_engine_memory_max": "64G"},
            "ipp_engine_memory_max of host cl-1 is larger than the host's memory (16384 MiB)",
        ),
        ({"ipp_slice_memory_max": "17G"}, "ipp_slice_memory_max of host cl-1 is larger than the host's memory"),
        ({"ipp_controller_memory_low": "lots"}, "ipp_controller_memory_low of host cl-1 must be a size"),
        (
            {"ipp_engine_cpu_weight": 0},
            "ipp_engine_cpu_weight of host cl-1 must be a CPU weight, a whole number 1..10000",
        ),
        ({"ipp_slice_cpu_weight": 10001}, "ipp_slice_cpu_weight of host cl-1 must be a CPU weight"),
        ({"ipp_controller_cpu_weight": "high"}, "ipp_controller_cpu_weight of host cl-1 must be a CPU weight"),
        ({"ipp_engine_nice": 20}, "ipp_engine_nice of host cl-1 must be a whole number -20..19 (it is '20')"),
        ({"ipp_engine_oom_score_adjust": 1001}, "ipp_engine_oom_score_adjust of host cl-1 must be a whole number"),
        ({"ipp_engine_tasks_max": 0}, "ipp_engine_tasks_max of host cl-1 must be a number of tasks above 0"),
        ({"ipp_engine_oom_policy": "die"}, "ipp_engine_oom_policy of host cl-1 must be continue, stop or kill"),
        (
            {"ipp_memory_reserve": "99%"},
            "ipp_memory_reserve of host cl-1 leaves 163 MiB of its 16384 MiB for 4 engines",
        ),
    ],
)
def test_bad_settings_are_refused_naming_variable_and_host(changes: dict[str, Any], message: str) -> None:
    errors = host(**changes)["errors"]
    assert any(message in error for error in errors), errors


def test_weights_accept_idle_and_strings_from_the_command_line() -> None:
    assert host(ipp_engine_cpu_weight="idle", ipp_slice_cpu_weight="100", ipp_engine_nice="19")["errors"] == []


def test_the_controller_must_outweigh_engines_on_its_own_host() -> None:
    errors = host(controller=True, ipp_engine_cpu_weight=300)["errors"]
    assert errors == [
        "ipp_controller_cpu_weight of host cl-1 (200) must be above ipp_engine_cpu_weight (300):"
        " the host runs the controller and engines"
    ]
    assert host(controller=True, engines=0, ipp_engine_cpu_weight=300)["errors"] == []
    assert host(controller=True, ipp_engine_cpu_weight="idle")["errors"] == []


def test_summary_shows_limits_use_and_what_is_not_enforced() -> None:
    engine = {
        "CPUWeight": "20",
        "Nice": "10",
        "MemoryHigh": "3006477107",
        "MemoryMax": "3435973836",
        "TasksMax": "1024",
        "OOMScoreAdjust": "500",
        "MemoryCurrent": "[not set]",
    }
    info = {
        "units": {
            "ipp.slice": {"CPUWeight": "20", "MemoryMax": "infinity", "MemoryCurrent": "[not set]"},
            "ipp-engine@1.service": engine,
            "ipp-engine@2.service": engine,
        },
        "not_enforced": ["CPUWeight", "MemoryMax"],
    }
    assert summary(info) == (
        "slice CPUWeight=20 MemoryMax=infinity using unknown; 2 engines CPUWeight=20 Nice=10 MemoryHigh=2.8G"
        " MemoryMax=3.2G TasksMax=1024 OOMScoreAdjust=500 use unknown; not enforced here: CPUWeight, MemoryMax"
    )
    used = {**engine, "MemoryCurrent": str(300 * 1024**2)}
    info = {"units": {"ipp-engine@1.service": used, "ipp-engine@2.service": engine}, "not_enforced": []}
    assert summary(info).endswith("using 300.0M (largest 300.0M); enforced")
    assert human("1023") == "1023"
