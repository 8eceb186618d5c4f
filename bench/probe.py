#!/usr/bin/env python3
"""The in-cluster half of the benchmarks: runs on a cluster host with the cluster's venv.

bench/bench.py copies this file into a host and runs it as the cluster's user. Each command
prints one JSON object on its last line.

  wait    --profile P --expect N     wall-clock time (time.time()) when N engines are registered
  tasks   --profile P --count M      tiny tasks per second through a LoadBalancedView
  epyc    --profile P --points K     epyc experiments per second, submit + collect
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

import epyc
import ipyparallel


def client(profile: str, timeout: float) -> ipyparallel.Client:
    """An ipyparallel Client on the profile, retried while the controller is not up yet."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return ipyparallel.Client(profile=profile, timeout=5)
        except Exception:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def registered(rc: ipyparallel.Client) -> int:
    """The engines the hub has registered, asked of the hub (no missed notification)."""
    try:
        status = rc.queue_status()
    except Exception:  # "No Engines Registered"
        return 0
    return sum(1 for key in status if isinstance(key, int))


def wait(profile: str, expect: int, timeout: float) -> dict[str, Any]:
    """Poll the engine count every 0.1 s; report the wall-clock time the count reached expect.

    Prints ``ready`` first, once imported, so that the caller starts the cluster only then.
    """
    print("ready", flush=True)
    deadline = time.monotonic() + timeout
    rc = client(profile, timeout)
    try:
        while (count := registered(rc)) < expect:
            if time.monotonic() > deadline:
                return {"engines": count, "registered_at": None}
            time.sleep(0.1)
        return {"engines": count, "registered_at": time.time()}
    finally:
        rc.close()


class Square(epyc.Experiment):  # type: ignore[misc]
    """An epyc experiment that squares its parameter."""

    def do(self, params: dict[str, Any]) -> dict[str, Any]:
        return {"square": params["x"] ** 2}


def noop(x: int) -> int:
    return x


def tasks(profile: str, count: int) -> dict[str, Any]:
    """Submit ``count`` one-item tasks through a LoadBalancedView and wait for all of them."""
    rc = client(profile, 60)
    try:
        view = rc.load_balanced_view()
        view.apply_sync(noop, 0)  # warm the connections
        started = time.perf_counter()
        pending = [view.apply_async(noop, i) for i in range(count)]
        results = [answer.get(timeout=300) for answer in pending]
        seconds = time.perf_counter() - started
        assert results == list(range(count)), "wrong task results"
        return {"engines": len(rc.ids), "tasks": count, "seconds": seconds, "per_second": count / seconds}
    finally:
        rc.close()


def experiments(profile: str, points: int) -> dict[str, Any]:
    """Run a ``points``-point epyc experiment on a ClusterLab; submit, poll, collect."""
    lab = epyc.ClusterLab(profile=profile)
    lab["x"] = range(points)
    started = time.perf_counter()
    lab.runExperiment(Square())  # epyc sleeps 0.01 s after each point it submits
    submitted = time.perf_counter()
    # ClusterLab.wait polls every 30 s: poll ourselves, as a patient user's collect would.
    deadline = time.monotonic() + 600
    while not lab.ready():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{points} points not all collected in 600 s")
        time.sleep(0.05)
    results = lab.results()
    seconds = time.perf_counter() - started
    good = [r for r in results if r[epyc.Experiment.METADATA][epyc.Experiment.STATUS]]
    assert len(good) == points, f"{len(good)} of {points} results"
    assert all(r[epyc.Experiment.RESULTS]["square"] == r[epyc.Experiment.PARAMETERS]["x"] ** 2 for r in good)
    return {
        "points": points,
        "seconds": seconds,
        "submit_seconds": submitted - started,
        "per_second": points / seconds,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("command", choices=["wait", "tasks", "epyc"])
    parser.add_argument("--profile", default="cluster")
    parser.add_argument("--expect", type=int, default=1)
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--points", type=int, default=200)
    parser.add_argument("--timeout", type=float, default=300.0)
    args = parser.parse_args(argv)
    if args.command == "wait":
        report = wait(args.profile, args.expect, args.timeout)
    elif args.command == "tasks":
        report = tasks(args.profile, args.count)
    else:
        report = experiments(args.profile, args.points)
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
