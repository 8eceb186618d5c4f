"""The pure parts of bench/warm_ssh.py: the recap, the changed=0 check, the summary."""

from __future__ import annotations

import pytest
import warm_ssh

import bench

OUTPUT = """
PLAY RECAP *********************************************************************
ipp-trixie-head            : ok=86   changed=0    unreachable=0    failed=0    skipped=104  rescued=0    ignored=0
ipp-trixie-node            : ok=60   changed=1    unreachable=0    failed=0    skipped=90   rescued=0    ignored=0

TASKS RECAP ********************************************************************
"""


def test_the_recap_is_read_per_host() -> None:
    hosts = bench.recap(OUTPUT)
    assert set(hosts) == {"ipp-trixie-head", "ipp-trixie-node"}
    assert hosts["ipp-trixie-head"]["skipped"] == 104 and hosts["ipp-trixie-node"]["changed"] == 1


def test_a_warm_run_that_changed_something_or_has_no_recap_stops_the_benchmark() -> None:
    with pytest.raises(RuntimeError, match="ipp-trixie-node"):
        warm_ssh.check_warm(bench.recap(OUTPUT))
    with pytest.raises(RuntimeError, match="no PLAY RECAP"):
        warm_ssh.check_warm({})
    warm_ssh.check_warm(bench.recap(OUTPUT.replace("changed=1", "changed=0")))


def test_the_summary_takes_medians_and_ratios() -> None:
    rounds = [
        {
            "hosts": 2,
            "ping": 0.5,
            "linear": 20.0,
            "linear_cpu": 15.0,
            "linear_tasks": 200,
            "mitogen": 10.0,
            "mitogen_cpu": 8.0,
        },
        {
            "hosts": 2,
            "ping": 1.0,
            "linear": 22.0,
            "linear_cpu": 16.0,
            "linear_tasks": 200,
            "mitogen": 11.0,
            "mitogen_cpu": 9.0,
        },
        {
            "hosts": 2,
            "ping": 2.0,
            "linear": 30.0,
            "linear_cpu": 17.0,
            "linear_tasks": 200,
            "mitogen": 30.0,
            "mitogen_cpu": 9.0,
        },
    ]
    figures = warm_ssh.summary(rounds)
    assert figures["ping"] == 1.0 and figures["linear"] == 22.0
    assert figures["warm_over_ping"] == 22.0 and figures["per_task"] == 0.11
    assert figures["mitogen_over_linear"] == 0.5
    text = warm_ssh.markdown(figures, "today")
    assert "22.0x ping" in text and "0.50x linear" in text and "<= 3x" in text
    del rounds[0]["mitogen"]
    assert "mitogen" not in warm_ssh.summary(rounds[:1])
