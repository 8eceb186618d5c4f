#!/usr/bin/env python3
"""Check an ipyparallel cluster the way an epyc user sees it.

Connects ``epyc.ClusterLab`` to a profile, waits until the expected number of engines is
registered, runs a small epyc experiment whose every point reports the host that ran it,
and prints one JSON object: the engine count, the results per host, and timings. With
``--versions`` it also asks every engine its Python and package versions and reports each one
that differs from this client's venv (a workstation set up from another lock, an engine host
left out of an upgrade).
Exit status: 0 when the cluster matches the expectations given, 1 when it does not,
2 when it cannot be reached at all.

Three other modes, for the operations and the tests:

- ``--task-db PATH`` counts the tasks in the controller's database (running, queued,
  completed and not collected, failed), without the controller;
- ``--submit N --notebook PATH`` submits an N-point epyc experiment whose points take
  ``--seconds`` each (point ``--poison`` kills the engine that runs it) and exits at once,
  as an epyc user who goes away does; the job ids stay in the notebook (JSON);
- ``--collect --notebook PATH`` collects them later, from any client, and reports every
  point: the results, the failures with their errors, what is still pending, and whether
  ``ClusterLab.wait()`` returned.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import runpy
import signal
import socket
import sqlite3
import sys
import time
from collections import Counter
from typing import Any

import epyc
import ipyparallel


class WhereAmI(epyc.Experiment):  # type: ignore[misc]
    """One point of the check: says which host and process computed it."""

    def do(self, params: dict[str, Any]) -> dict[str, Any]:
        return {
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "square": params["x"] ** 2,
        }


class SlowPoint(epyc.Experiment):  # type: ignore[misc]
    """A point that takes a while; the poison point kills the engine running it, every time."""

    def do(self, params: dict[str, Any]) -> dict[str, Any]:
        if params["x"] == params["poison"]:
            os.kill(os.getpid(), signal.SIGKILL)
        time.sleep(params["seconds"])
        return {"host": socket.gethostname(), "pid": os.getpid(), "square": params["x"] ** 2}


#: The hub's table in the task database (ipyparallel's SQLiteDB default).
TASK_TABLE = "ipython-tasks"


def task_counts(path: str) -> dict[str, Any]:
    """The tasks of a controller's database: running, queued, completed (not collected), failed."""
    if not os.path.exists(path):
        return {"exists": False, "running": 0, "queued": 0, "completed": 0, "failed": 0}
    with contextlib.closing(sqlite3.connect(path, timeout=10)) as db:
        row = db.execute(
            "SELECT"
            " COALESCE(SUM(completed IS NULL AND resubmitted IS NULL AND engine_uuid IS NOT NULL), 0),"
            " COALESCE(SUM(completed IS NULL AND resubmitted IS NULL AND engine_uuid IS NULL), 0),"
            " COALESCE(SUM(completed IS NOT NULL), 0),"
            " COALESCE(SUM(completed IS NOT NULL AND json_extract(result_content, '$.status') = 'error'), 0)"
            f' FROM "{TASK_TABLE}"'
        ).fetchone()
    running, queued, completed, failed = (int(value) for value in row)
    return {"exists": True, "running": running, "queued": queued, "completed": completed, "failed": failed}


def forget(client: ipyparallel.Client, wait: float = 5.0) -> None:
    """Purge from the hub's task database what this client ran there and got back.

    A check is no epyc user: the results of its own tasks (ClusterLab's ``use_cloudpickle`` on
    every engine, the host names and versions it asks) would stay as completed and never
    collected, counted by status.yml and uninstall.yml (measured: 6 more per status run on
    3 engines). Tasks still running after ``wait`` seconds are left: the hub refuses to purge those.
    """
    with contextlib.suppress(Exception):
        client.wait(timeout=wait)
    done = [job for job in client.history if job not in client.outstanding]
    # The hub records a result after the client has it, and refuses to purge it until then
    # ("msg pending": measured on a loaded host, 3 results of 6 status runs left): try again.
    for _ in range(20):
        if not done:
            return
        with contextlib.suppress(Exception):
            client.purge_hub_results(jobs=done)
        try:
            done = [str(record["msg_id"]) for record in client.db_query({"msg_id": {"$in": done}}, keys=["msg_id"])]
        except Exception:
            return
        time.sleep(0.25)


def cluster_lab(profile: str, **arguments: object) -> epyc.ClusterLab:
    """An epyc.ClusterLab whose set-up task (use_cloudpickle on every engine) leaves no record."""
    lab = epyc.ClusterLab(profile=profile, **arguments)
    forget(lab._client)
    return lab


def lab_on(profile: str, notebook: str, timeout: float, paramiko: bool, create: bool = False) -> epyc.ClusterLab:
    """A ClusterLab on the profile whose job ids live in a JSON notebook."""
    deadline = time.monotonic() + timeout
    arguments: dict[str, Any] = {"paramiko": True} if paramiko else {}
    while True:
        try:
            return cluster_lab(profile=profile, notebook=epyc.JSONLabNotebook(notebook, create=create), **arguments)
        except Exception as error:
            if time.monotonic() > deadline:
                raise TimeoutError(f"no cluster on profile {profile!r}: {error}") from error
            time.sleep(1)


def submit(lab: epyc.ClusterLab, points: int, seconds: float, poison: int) -> dict[str, Any]:
    """Submit the slow experiment and go away; the notebook keeps the job ids."""
    lab["x"] = range(points)
    lab["seconds"] = seconds
    lab["poison"] = poison
    lab.runExperiment(SlowPoint())
    return {"submitted": int(lab.notebook().numberOfAllPendingResults())}


def failure_of(client: ipyparallel.Client, job: str) -> str | None:
    """The error of a job that failed in the cluster (not in the experiment), else None."""
    try:
        client.result_status([job], status_only=False)
    except ipyparallel.RemoteError as error:
        return f"{error.ename}: {error.evalue}"
    except Exception:  # not known (yet) to this controller
        return None
    return None


def collect(lab: epyc.ClusterLab, timeout: float) -> dict[str, Any]:
    """Collect every point: until none is pending but the failed ones, or the timeout."""
    started = time.monotonic()
    failed: dict[str, str] = {}
    with open(os.devnull, "w") as quiet, contextlib.redirect_stderr(quiet):  # epyc prints each failure
        while True:
            lab.updateResults()
            pending = set(lab.notebook().allPendingResults())
            lab.open()
            try:
                for job in sorted(pending - set(failed)):
                    error = failure_of(lab._client, job)
                    if error is not None:
                        failed[job] = error
            finally:
                lab.close()
            if pending <= set(failed) or time.monotonic() - started > timeout:
                break
            time.sleep(1)
    lab.WaitingTime = 1
    waited = False if failed else bool(lab.wait(timeout=5))
    results = lab.results()
    answers = [(r[epyc.Experiment.PARAMETERS]["x"], r[epyc.Experiment.RESULTS]) for r in results]
    return {
        "results": len(results),
        "correct": all(result["square"] == x**2 for x, result in answers),
        "hosts": dict(Counter(str(result["host"]) for _, result in answers)),
        "pending": len(pending - set(failed)),
        "failed": failed,
        "wait_returned": waited,
        "seconds": round(time.monotonic() - started, 1),
    }


def connect(profile: str, timeout: float, paramiko: bool = False) -> epyc.ClusterLab:
    """A ClusterLab on the profile, retried while no engine is registered yet.

    ``paramiko`` makes ipyparallel tunnel through SSH with paramiko (for a profile whose
    connection file names an SSH server) rather than with the ``ssh`` command.
    """
    deadline = time.monotonic() + timeout
    arguments: dict[str, Any] = {"paramiko": True} if paramiko else {}
    while True:
        try:
            return cluster_lab(profile=profile, **arguments)
        except Exception as error:  # NoEnginesRegistered, or a controller still starting
            if time.monotonic() > deadline:
                raise TimeoutError(f"no cluster on profile {profile!r}: {error}") from error
            time.sleep(1)


def wait_for_engines(lab: epyc.ClusterLab, expect: int | None, timeout: float) -> int:
    """The registered engine count, once it equals ``expect`` (or at the timeout)."""
    deadline = time.monotonic() + timeout
    while True:
        count = int(lab.numberOfEngines())
        if expect is None or count == expect or time.monotonic() > deadline:
            return count
        time.sleep(1)


def unit_hosts(identities: dict[int, str]) -> dict[int, str]:
    """The inventory host of each engine whose identity its unit gave it (host/instance/start)."""
    return {engine: name.split("/")[0] for engine, name in identities.items() if name.count("/") >= 2}


def engines_by_host(profile: str, timeout: float, paramiko: bool = False) -> dict[str, int]:
    """How many registered engines each host runs.

    An engine of the cluster's units names its inventory host in its identity, which the hub
    hands to clients: it is counted without being asked (so an engine busy with a long point
    counts too). Any other engine (started by hand) is asked its host name; one that does not
    answer within ``timeout`` (died but still listed until the controller misses its
    heartbeats, or busy) is not counted.
    """
    client = ipyparallel.Client(profile=profile, timeout=timeout, paramiko=paramiko)
    try:
        named = unit_hosts(dict(client._engines))
        asked = [client[engine].apply_async(socket.gethostname) for engine in client.ids if engine not in named]
        deadline = time.monotonic() + timeout
        names: list[str] = list(named.values())
        for answer in asked:
            with contextlib.suppress(Exception):
                names.append(str(answer.get(timeout=max(0.1, deadline - time.monotonic()))))
        return dict(Counter(names))
    finally:
        forget(client, wait=0)
        client.close()


# What `python -m venv` installs, in the version its interpreter bundles: not the lock's.
VENV_TOOLS = frozenset({"pip", "setuptools", "wheel"})


def local_versions() -> dict[str, Any]:
    """This interpreter's Python version and every package of its environment (PEP 503 names)."""
    return engine_versions()


def engine_versions() -> dict[str, Any]:
    """The host, Python version and packages of the interpreter that runs it.

    Sent to the engines as code (so it imports what it needs itself): it must not use this
    module's globals, which do not exist there.
    """
    import platform
    import re
    import socket
    from importlib import metadata

    packages = {
        re.sub(r"[-_.]+", "-", dist.metadata["Name"]).lower(): dist.version
        for dist in metadata.distributions()
        if dist.metadata["Name"]
    }
    return {"host": socket.gethostname(), "python": platform.python_version(), "packages": packages}


def ask_versions(profile: str, timeout: float, paramiko: bool = False) -> list[dict[str, Any]]:
    """The answer of ``engine_versions`` from every registered engine that answers in time."""
    client = ipyparallel.Client(profile=profile, timeout=timeout, paramiko=paramiko)
    try:
        asked = [client[engine].apply_async(engine_versions) for engine in client.ids]
        deadline = time.monotonic() + timeout
        answers: list[dict[str, Any]] = []
        for answer in asked:
            with contextlib.suppress(Exception):
                answers.append(dict(answer.get(timeout=max(0.1, deadline - time.monotonic()))))
        return answers
    finally:
        forget(client, wait=0)
        client.close()


def minor(version: str) -> str:
    """``3.11`` of ``3.11.2``."""
    return ".".join(re.findall(r"\d+", version)[:2])


def version_differences(local: dict[str, Any], engines: list[dict[str, Any]]) -> list[str]:
    """Each Python minor and package version an engine host has other than ``local``, in words.

    Packages only one side holds are not compared (a tunnel-mode workstation adds paramiko),
    nor the venv's own tools (pip, setuptools: they come with the interpreter, not the lock).
    """
    found: dict[str, list[str]] = {}
    for engine in engines:
        what = []
        if minor(engine["python"]) != minor(local["python"]):
            what.append(f"Python {local['python']} here, {engine['python']} there")
        for name in sorted((set(local["packages"]) & set(engine["packages"])) - VENV_TOOLS):
            if local["packages"][name] != engine["packages"][name]:
                what.append(f"{name} {local['packages'][name]} here, {engine['packages'][name]} there")
        for difference in what:
            found.setdefault(difference, [])
            if engine["host"] not in found[difference]:
                found[difference].append(engine["host"])
    return [f"{difference} ({', '.join(sorted(hosts))})" for difference, hosts in found.items()]


def wait_for_results(lab: epyc.ClusterLab, timeout: float) -> bool:
    """Collect results until none is pending; False at the timeout.

    ``ClusterLab.wait`` polls every 30 s (``WaitingTime``): far too slow for a check. Each
    poll reconnects (new SSH tunnels in tunnel mode), so not much faster than every second.
    """
    deadline = time.monotonic() + timeout
    while not lab.ready():
        if time.monotonic() > deadline:
            return False
        time.sleep(1.0)
    return True


def run_experiment(lab: epyc.ClusterLab, points: int, timeout: float) -> dict[str, Any]:
    """Run ``points`` experiments and collect them; return per-host counts and timings."""
    lab["x"] = range(points)
    started = time.monotonic()
    lab.runExperiment(WhereAmI())
    submitted = time.monotonic()
    complete = wait_for_results(lab, timeout)
    collected = time.monotonic()
    results = lab.results()
    ok = [r for r in results if r[epyc.Experiment.METADATA][epyc.Experiment.STATUS]]
    answers = [(r[epyc.Experiment.PARAMETERS]["x"], r[epyc.Experiment.RESULTS]) for r in ok]
    return {
        "complete": bool(complete),
        "results": len(ok),
        "failed": len(results) - len(ok),
        "correct": all(result["square"] == x**2 for x, result in answers),
        "hosts": dict(Counter(str(result["host"]) for _, result in answers)),
        "submit_seconds": round(submitted - started, 3),
        "collect_seconds": round(collected - submitted, 3),
    }


def problems(report: dict[str, Any], expect: int | None, hosts: list[str]) -> list[str]:
    """What differs from the expectations, in words (empty when all is well)."""
    found = []
    if report.get("version_differences"):
        found.append("versions differ from the engines': " + "; ".join(report["version_differences"]))
    if expect is not None and report["engines"] != expect:
        found.append(f"{report['engines']} engines registered, {expect} expected")
    experiment = report.get("experiment")
    if experiment is not None:
        if not experiment["complete"] or experiment["results"] != report["points"]:
            found.append(f"{experiment['results']} of {report['points']} results collected")
        if not experiment["correct"]:
            found.append("some results are wrong")
        missing = sorted(set(hosts) - set(experiment["hosts"]))
        if missing:
            found.append("no result from " + ", ".join(missing))
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="ipp-check", description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default="cluster")
    parser.add_argument("--expect", type=int, help="the engine count there must be")
    parser.add_argument("--hosts", default="", help="comma-separated hosts that must compute")
    parser.add_argument("--points", type=int, default=0, help="experiment size (0: none)")
    parser.add_argument("--timeout", type=float, default=120.0)
    parser.add_argument("--by-host", action="store_true", help="count the engines of each host")
    parser.add_argument(
        "--paramiko", action=argparse.BooleanOptionalAction, default=False, help="tunnel SSH with paramiko"
    )
    parser.add_argument("--task-db", help="count the tasks of this controller database and exit")
    parser.add_argument("--notebook", help="the JSON notebook of --submit and --collect")
    parser.add_argument("--submit", type=int, default=0, help="submit this many slow points and exit")
    parser.add_argument("--seconds", type=float, default=2.0, help="how long each slow point takes")
    parser.add_argument("--poison", type=int, default=-1, help="the slow point that kills its engine")
    parser.add_argument("--collect", action="store_true", help="collect the notebook's points")
    parser.add_argument(
        "--versions", action="store_true", help="compare this venv's Python and packages with every engine's"
    )
    args = parser.parse_args(argv)
    hosts = [host for host in args.hosts.split(",") if host]

    if args.task_db:
        print(json.dumps(task_counts(args.task_db), sort_keys=True))
        return 0
    if args.submit or args.collect:
        if not args.notebook:
            parser.error("--submit and --collect need --notebook")
        with contextlib.redirect_stdout(sys.stderr):
            lab = lab_on(args.profile, args.notebook, args.timeout, args.paramiko, create=bool(args.submit))
            report = submit(lab, args.submit, args.seconds, args.poison) if args.submit else collect(lab, args.timeout)
        print(json.dumps(report, sort_keys=True))
        return 0

    # ipyparallel prints progress on stdout: keep it for the JSON report alone.
    with contextlib.redirect_stdout(sys.stderr):
        report = check(
            args.profile, args.expect, hosts, args.points, args.timeout, args.paramiko, args.by_host, args.versions
        )
    print(json.dumps(report, sort_keys=True))
    if "error" in report:
        return 2
    return 1 if report["problems"] else 0


def check(
    profile: str,
    expect: int | None,
    hosts: list[str],
    points: int,
    timeout: float,
    paramiko: bool = False,
    by_host: bool = False,
    versions: bool = False,
) -> dict[str, Any]:
    """The report of one check: engines, experiment, problems (or an error)."""
    started = time.monotonic()
    try:
        lab = connect(profile, timeout, paramiko)
    except TimeoutError as error:
        return {"profile": profile, "error": str(error)}
    report: dict[str, Any] = {
        "profile": profile,
        "engines": wait_for_engines(lab, expect, timeout),
        "points": points,
    }
    report["engines_seconds"] = round(time.monotonic() - started, 3)
    if by_host:
        report["by_host"] = engines_by_host(profile, timeout, paramiko)
    if versions:
        here = local_versions()
        report["versions"] = {"python": here["python"], "packages": here["packages"]}
        report["version_differences"] = version_differences(here, ask_versions(profile, timeout, paramiko))
    if points > 0:
        report["experiment"] = run_experiment(lab, points, timeout)
    report["problems"] = problems(report, expect, hosts)
    return report


def script() -> None:
    """The ``ipp-check`` command (ipp-helpers' console script): this module run as ``__main__``.

    What the check sends to the engines (the experiments' classes, ``engine_versions``) is then
    pickled as code, as when the file runs as a script, not as a reference to module
    ``ipp_check``: an engine whose venv lacks it, or holds another version (a host left out of
    an upgrade, which ``--versions`` is there to find), still runs this client's check.
    """
    runpy.run_module(__name__, run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    sys.exit(main())
