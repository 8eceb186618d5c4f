"""ipp_engine_count: the engine count of a host, the one rule every role uses."""

from __future__ import annotations

import pytest
from ipp_engines import FilterModule, engine_count


@pytest.mark.parametrize(
    ("engines", "cpus", "expected"),
    [
        (8, None, 8),
        ("8", None, 8),  # -e ipp_engines=8
        (0, 4, 0),  # a host that runs none
        (None, "4", 4),  # unset: one per CPU (nproc's stdout)
        (None, 4, 4),  # processor_nproc
        (None, None, None),  # unset, and the host did not say its CPU count
        ("eight", 4, None),  # no whole number (a host preflight did not check)
        (-1, 4, None),
        ("3.5", 4, None),
        (True, 4, None),
        ("", 4, None),
    ],
)
def test_an_engine_host_runs_its_ipp_engines_or_one_per_cpu(engines: object, cpus: object, expected: object) -> None:
    assert engine_count(engines, cpus) == expected


def test_a_host_outside_group_engines_runs_none() -> None:
    assert engine_count(8, 4, False) == 0
    assert engine_count(None, None, False) == 0


def test_the_filter_is_registered_under_its_name() -> None:
    assert FilterModule().filters()["ipp_engine_count"] is engine_count
