"""bench/metrics.py: its scale measurement on a small database, and its summary."""

from __future__ import annotations

import argparse

import metrics


def test_the_scale_measurement_reads_what_it_wrote() -> None:
    figures = metrics.scale(records=300, repeats=2)
    for key in ("db_floor_s", "db_first_read_s", "db_read_s", "hub_figures_s", "scrape_metrics_s", "scrape_page_s"):
        assert 0 < figures[key] < 5, key
    assert figures["sample_s"] == figures["db_read_s"] + figures["hub_figures_s"]


def test_the_hub_replies_spread_engines_over_hosts() -> None:
    engines, queues = metrics.hub_replies(64, 8)
    assert len(engines) == 64 and len({identity.split("/")[0] for identity in engines.values()}) == 8
    assert queues["unassigned"] == 100 and sum(queues[str(e)]["tasks"] for e in range(64)) == 32


def test_the_summary_takes_medians_and_spreads() -> None:
    rounds = [
        {"metrics": False, "rate": 100.0},
        {"metrics": False, "rate": 300.0},
        {"metrics": False, "rate": 200.0},
        {"metrics": True, "rate": 150.0},
        {"metrics": True, "rate": 250.0},
        {"metrics": True, "rate": 200.0},
    ]
    figures = metrics.summary(rounds)
    assert (figures["rate_without"], figures["rate_with"], figures["with_over_without"]) == (200.0, 200.0, 1.0)
    assert (figures["spread_without"], figures["spread_with"]) == ("100-300", "150-250")
    scaled = {key: 0.001 for key in ("db_floor_s", "db_first_read_s", "db_read_s", "hub_figures_s", "sample_s")}
    scaled |= {"scrape_metrics_s": 0.001, "scrape_page_s": 0.001, "db_first_read_over_floor": 1.0}
    text = metrics.markdown(scaled, figures, argparse.Namespace(repeats=3, records=100, tasks=10))
    assert "| with / without | 1.0 |" in text and "100-300 / 150-250" in text
