#!/usr/bin/env python3
"""Benchmarks of the deployment and of the cluster it builds, on the lab (issue #6).

Run as root on the lab machine, with the lab up (`sudo scripts/lab.sh up`):

    sudo .venv/bin/python bench/bench.py [--repeats 3] [--out docs/bench]

It measures, side by side in one run, repeated and interleaved (medians are reported):
  deploy      cold site.yml on fresh containers, then a warm re-run, for 2, 4 and 8 engine hosts
              (their own containers bench-0 ... bench-8; the lab's services are stopped meanwhile)
  startup     services started -> 32 engines registered on the lab: start.yml, plain systemctl
              (as at boot), and the tutorial's `ipcluster start` with its SSH launcher
  throughput  tiny tasks/s (LoadBalancedView) and epyc experiments/s (submit + collect) on the
              deployed cluster vs a bare `ipcluster start -n 32` on cl-0, in memory and SQLite
  memory      RSS of the controller's processes and of each engine
and writes results.json, results.md (tables and targets) and results.png into --out.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
PROBE = Path(__file__).resolve().parent / "probe.py"
VENV = "/opt/ipyparallel"  # the lab's ipp_venv
USER = "yourself"  # the lab's ipp_user
LAB_CONTROLLER = "cl-0"
LAB_ENGINE_HOSTS = ["cl-1", "cl-2", "cl-3", "cl-4"]
LAB_ENGINES = 32
IMAGE = "localhost/ipp-debian12:latest"

# The targets: (name, figure key, comparison, limit).
TARGETS: list[tuple[str, str, str, float]] = [
    ("warm re-run / cold deploy, 4 engine hosts", "deploy_warm_over_cold_4", "<=", 0.10),
    ("deploy 8 engine hosts / 2 engine hosts (cold)", "deploy_cold_8_over_2", "<=", 1.5),
    ("ipcluster+SSH start-up / systemd start-up (start.yml)", "startup_ipcluster_over_startyml", ">=", 3.0),
    ("ipcluster+SSH start-up / systemd start-up (systemctl)", "startup_ipcluster_over_systemctl", ">=", 3.0),
    ("deployed task rate / bare ipcluster (in memory)", "tasks_deployed_over_bare", ">=", 0.95),
]


# ----- figures (pure functions, tested in tests/test_bench.py) -----


def median(values: Iterable[float]) -> float:
    """The median of measured values (there is at least one)."""
    return float(statistics.median(list(values)))


RECAP_LINE = re.compile(r"^(\S+)\s+:\s+((?:\w+=\d+\s*)+)$", re.MULTILINE)


def recap(output: str) -> dict[str, dict[str, int]]:
    """Every count (ok, changed, failed, ...) of every host in an ansible-playbook PLAY RECAP."""
    hosts: dict[str, dict[str, int]] = {}
    for host, counts in RECAP_LINE.findall(output):
        hosts[host] = {key: int(value) for key, value in re.findall(r"(\w+)=(\d+)", counts)}
    return hosts


def recap_changes(output: str) -> dict[str, int]:
    """The `changed=` count of every host in an ansible-playbook PLAY RECAP."""
    return {host: counts.get("changed", 0) for host, counts in recap(output).items()}


def slowest_tasks(output: str, count: int = 8) -> list[tuple[str, float]]:
    """The slowest tasks of a run, from the profile_tasks callback's summary."""
    summary = output.rsplit("PLAY RECAP", 1)[-1]
    found = re.findall(r"^(\S.*?) -*\s*(\d+\.\d+)s$", summary, re.M)
    timed = [(name.strip(), float(seconds)) for name, seconds in found]
    return sorted(timed, key=lambda item: -item[1])[:count]


def cpu_busy_seconds(stat: str) -> float:
    """CPU time spent busy by the whole machine, from the first line of /proc/stat."""
    fields = [int(value) for value in stat.split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    busy = sum(fields[:8]) - idle  # user nice system idle iowait irq softirq steal
    return busy / os.sysconf("SC_CLK_TCK")


def rotate(items: Sequence[Any], turn: int) -> list[Any]:
    """``items`` starting at position ``turn``: interleaved runs do not always go in one order."""
    if not items:
        return []
    turn %= len(items)
    return list(items[turn:]) + list(items[:turn])


def ratios(results: dict[str, Any]) -> dict[str, float]:
    """The figures the targets are about, from the medians."""
    deploy = results.get("deploy", {}).get("median", {})
    startup = results.get("startup", {}).get("median", {})
    tasks = results.get("throughput", {}).get("median", {})
    figures: dict[str, float] = {}
    if "4" in deploy:
        figures["deploy_warm_over_cold_4"] = deploy["4"]["warm"] / deploy["4"]["cold"]
    if "2" in deploy and "8" in deploy:
        figures["deploy_cold_8_over_2"] = deploy["8"]["cold"] / deploy["2"]["cold"]
        figures["deploy_warm_8_over_2"] = deploy["8"]["warm"] / deploy["2"]["warm"]
    if "ipcluster_ssh" in startup:
        for name in ("startyml", "systemctl"):
            if name in startup:
                figures[f"startup_ipcluster_over_{name}"] = startup["ipcluster_ssh"] / startup[name]
    if "bare_memory" in tasks:
        for name in ("deployed", "bare_sqlite"):
            if name in tasks:
                figures[f"tasks_{name}_over_bare"] = tasks[name]["tasks"] / tasks["bare_memory"]["tasks"]
                figures[f"epyc_{name}_over_bare"] = tasks[name]["epyc"] / tasks["bare_memory"]["epyc"]
    return figures


def verdicts(figures: dict[str, float]) -> list[dict[str, Any]]:
    """Each target with its measured figure and whether it is met (None: not measured)."""
    out = []
    for name, key, comparison, limit in TARGETS:
        value = figures.get(key)
        met = None if value is None else (value <= limit if comparison == "<=" else value >= limit)
        out.append({"target": name, "figure": key, "limit": f"{comparison} {limit}", "value": value, "met": met})
    return out


def markdown(results: dict[str, Any]) -> str:
    """The tables of results.md: medians, ratios and targets."""
    lines = [f"Run of {results['date']} on {results['machine']}, {results['repeats']} repeats (medians).", ""]
    deploy = results.get("deploy", {}).get("median", {})
    if deploy:
        cpus = os.cpu_count() or 1
        lines += [
            "| engine hosts | cold site.yml (s) | its CPU time (s) | CPUs busy | warm re-run (s) | its CPU time (s)"
            " | warm / cold |",
            "|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for hosts, row in sorted(deploy.items(), key=lambda item: int(item[0])):
            cold_cpu, warm_cpu = row.get("cold_cpu", 0.0), row.get("warm_cpu", 0.0)
            lines.append(
                f"| {hosts} | {row['cold']:.1f} | {cold_cpu:.0f} | {cold_cpu / row['cold']:.2f} of {cpus} |"
                f" {row['warm']:.1f} | {warm_cpu:.0f} | {row['warm'] / row['cold']:.2f} |"
            )
        lines.append("")
        runs = results["deploy"].get("runs", {})
        largest = max(runs, key=int, default=None)
        if largest and runs[largest]:
            last = runs[largest][-1]
            for kind in ("cold", "warm"):
                lines += [f"Slowest tasks of the last {kind} run on {largest} engine hosts:", ""]
                lines += ["| task | seconds |", "|---|---:|"]
                lines += [f"| {name} | {seconds:.1f} |" for name, seconds in last.get(f"{kind}_slowest", [])]
                lines.append("")
    startup = results.get("startup", {}).get("median", {})
    if startup:
        lines += [f"| start-up of {LAB_ENGINES} engines (4 hosts x 8) | seconds to all registered |", "|---|---:|"]
        names = {
            "startyml": "`ansible-playbook start.yml` (systemd units)",
            "systemctl": "`systemctl start` on every host (as at boot)",
            "ipcluster_ssh": "`ipcluster start` with the SSH launcher (the tutorial)",
        }
        lines += [f"| {names.get(name, name)} | {seconds:.1f} |" for name, seconds in startup.items()]
        lines.append("")
    tasks = results.get("throughput", {}).get("median", {})
    if tasks:
        lines += [f"| cluster, {LAB_ENGINES} engines | tiny tasks / s | epyc experiments / s |", "|---|---:|---:|"]
        names = {
            "deployed": "deployed (systemd, 4 hosts, SQLite committed per record)",
            "bare_memory": "bare `ipcluster start -n 32` on cl-0, in-memory DictDB",
            "bare_sqlite": "bare `ipcluster start -n 32` on cl-0, upstream SQLiteDB",
        }
        lines += [
            f"| {names.get(name, name)} | {row['tasks']:.0f} | {row['epyc']:.0f} |" for name, row in tasks.items()
        ]
        lines.append("")
    memory = results.get("memory", {})
    if memory:
        lines += ["| process | MiB |", "|---|---:|"]
        lines += [f"| {name} | {mib:.0f} |" for name, mib in memory.items()]
        lines.append("")
    lines += ["| target | limit | measured | met |", "|---|---:|---:|---|"]
    for row in results.get("targets", []):
        value = "not measured" if row["value"] is None else f"{row['value']:.2f}"
        met = {True: "yes", False: "**no**", None: "-"}[row["met"]]
        lines.append(f"| {row['target']} | {row['limit']} | {value} | {met} |")
    return "\n".join(lines) + "\n"


# ----- running things -----


def say(message: str) -> None:
    print(f"\n>>> {time.strftime('%H:%M:%S')} {message}", flush=True)


def run(argv: Sequence[str], check: bool = True, timeout: float = 1800) -> subprocess.CompletedProcess[str]:
    """Run a command; its output is returned (and shown only when it fails)."""
    try:
        done = subprocess.run(list(argv), text=True, capture_output=True, check=False, timeout=timeout)
    except subprocess.TimeoutExpired as error:
        raise SystemExit(f"timed out after {timeout} s: {shlex.join(argv)}") from error
    if check and done.returncode != 0:
        sys.stderr.write(f"failed ({done.returncode}): {shlex.join(argv)}\n{done.stdout or ''}{done.stderr or ''}")
        raise SystemExit(1)
    return done


def playbook(inventory: str | Path, *args: str) -> tuple[float, str]:
    """Time an ansible-playbook run; its output."""
    started = time.perf_counter()
    done = run(["ansible-playbook", "-i", str(inventory), *args])
    return time.perf_counter() - started, done.stdout


def timed_playbook(inventory: str | Path, *args: str) -> tuple[float, float, str]:
    """Wall time and the machine's busy CPU time of an ansible-playbook run; its output."""
    before = cpu_busy_seconds(Path("/proc/stat").read_text().splitlines()[0])
    seconds, output = playbook(inventory, *args)
    after = cpu_busy_seconds(Path("/proc/stat").read_text().splitlines()[0])
    return seconds, after - before, output


def on_host(host: str, command: str, user: str | None = None, check: bool = True) -> str:
    """A shell command in a container (as ``user``); its standard output."""
    argv = ["podman", "exec", host, "runuser", "-u", user, "--"] if user else ["podman", "exec", host]
    return run([*argv, "sh", "-c", command], check=check).stdout


def probe(host: str, *args: str) -> subprocess.Popen[str]:
    """Start bench/probe.py in a host as the cluster's user."""
    argv = ["podman", "exec", host, "runuser", "-u", USER, "--", f"{VENV}/bin/python", "/tmp/probe.py", *args]
    return subprocess.Popen(argv, text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def answer(process: subprocess.Popen[str], timeout: float = 900) -> dict[str, Any]:
    """The JSON report of a probe."""
    try:
        out, err = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired as error:
        process.kill()
        raise SystemExit(f"probe timed out: {shlex.join(process.args)}") from error  # type: ignore[arg-type]
    if process.returncode != 0:
        sys.stderr.write(err)
        raise SystemExit(f"probe failed: {shlex.join(process.args)}")  # type: ignore[arg-type]
    report: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    return report


# ----- deploy -----


def deploy_fixture(work: Path, engine_hosts: int) -> tuple[Path, Path]:
    """Platforms and inventory for a controller bench-0 and engine hosts bench-1 ... bench-N."""
    home = work / "home"
    names = [f"bench-{i}" for i in range(engine_hosts + 1)]
    platforms = {
        "ipp_lab_platforms": [
            {"name": name, "image": IMAGE, "network": "ipp-bench", "volumes": [f"{home}:/home"]} for name in names
        ]
    }
    inventory = {
        "all": {
            "vars": {
                "ansible_connection": "containers.podman.podman",
                "ipp_user": USER,
                "ipp_user_create": True,
                "ipp_user_uid": 2001,
                "ipp_install_source": "wheelhouse",
            },
            "children": {
                "controller": {"hosts": {names[0]: None}},
                "engines": {"hosts": dict.fromkeys(names[1:]), "vars": {"ipp_engines": 2}},
            },
        }
    }
    (work / "platforms.json").write_text(json.dumps(platforms))
    (work / "hosts.json").write_text(json.dumps(inventory))
    return work / "platforms.json", work / "hosts.json"


def deploy_once(engine_hosts: int) -> dict[str, Any]:
    """Fresh containers, a cold site.yml, a warm re-run that must change nothing, containers gone."""
    with tempfile.TemporaryDirectory(prefix="ipp-bench-", dir="/var/tmp") as tmp:
        platforms, inventory = deploy_fixture(Path(tmp), engine_hosts)
        lab = ["-i", "localhost,", "-e", f"@{platforms}"]
        run(["ansible-playbook", *lab, str(ROOT / "lab/destroy.yml")])  # leftovers would not be cold
        run(["ansible-playbook", *lab, str(ROOT / "lab/create.yml")])
        try:
            cold, cold_cpu, cold_output = timed_playbook(inventory, str(ROOT / "site.yml"))
            warm, warm_cpu, warm_output = timed_playbook(inventory, str(ROOT / "site.yml"))
            changed = recap_changes(warm_output)
            if any(changed.values()):
                raise SystemExit(f"the warm re-run changed something: {changed}")
        finally:
            run(["ansible-playbook", *lab, str(ROOT / "lab/destroy.yml")])
    print(
        f"    {engine_hosts} engine hosts: cold {cold:.1f} s ({cold_cpu:.0f} CPU-s), warm {warm:.1f} s"
        f" ({warm_cpu:.0f} CPU-s)",
        flush=True,
    )
    return {
        "cold": cold,
        "warm": warm,
        "cold_cpu": cold_cpu,
        "warm_cpu": warm_cpu,
        "cold_slowest": slowest_tasks(cold_output),
        "warm_slowest": slowest_tasks(warm_output),
    }


def bench_deploy(sizes: list[int], repeats: int, warm_up: bool = True) -> dict[str, Any]:
    say("deploy: stopping the lab's services (they would compete for the CPUs)")
    playbook(ROOT / "lab/inventory", str(ROOT / "stop.yml"))
    try:
        if warm_up:
            say("deploy: one untimed run first (fills the wheelhouse and the page cache)")
            deploy_once(min(sizes))
        runs: dict[str, list[dict[str, Any]]] = {str(size): [] for size in sizes}
        for turn in range(repeats):
            for size in rotate(sizes, turn):
                say(f"deploy: round {turn + 1}/{repeats}, {size} engine hosts")
                runs[str(size)].append(deploy_once(size))
    finally:
        playbook(ROOT / "lab/inventory", str(ROOT / "start.yml"))
    medians = {
        size: {key: median(r[key] for r in rows) for key in ("cold", "warm", "cold_cpu", "warm_cpu")}
        for size, rows in runs.items()
    }
    return {"runs": runs, "median": medians}


# ----- the lab: start-up, throughput, memory -----


def lab_stop() -> None:
    """Nothing of the cluster runs on the lab: units stopped, ipcluster stopped."""
    playbook(ROOT / "lab/inventory", str(ROOT / "stop.yml"))
    on_host(LAB_CONTROLLER, f"{VENV}/bin/ipcluster stop --profile=cluster >/dev/null 2>&1", USER, check=False)
    for host in [LAB_CONTROLLER, *LAB_ENGINE_HOSTS]:
        deadline = time.monotonic() + 60
        while on_host(host, "pgrep -u " + USER + " -f ipyparallel || true").strip():
            if time.monotonic() > deadline:
                on_host(host, f"pkill -KILL -u {USER} -f ipyparallel || true")
            time.sleep(0.5)
    # ipcluster's own file (cluster id ""); the deployment's cluster-systemd.json stays.
    on_host(LAB_CONTROLLER, f"rm -f ~{USER}/.ipython/profile_cluster/security/cluster-.json")


def timed_startup(start: Sequence[Sequence[str]]) -> float:
    """Seconds from running the start commands (in parallel) to all the lab's engines registered."""
    waiter = probe(LAB_CONTROLLER, "wait", "--expect", str(LAB_ENGINES), "--timeout", "300")
    assert waiter.stdout is not None
    if waiter.stdout.readline().strip() != "ready":  # imported, about to poll
        raise SystemExit(f"the waiter did not start: {answer(waiter)}")
    started = time.time()
    commands = [subprocess.Popen(list(argv), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE) for argv in start]
    for command in commands:
        try:
            _, err = command.communicate(timeout=400)
        except subprocess.TimeoutExpired:
            command.kill()
            _, err = command.communicate()
        if command.returncode != 0:
            waiter.kill()
            raise SystemExit(f"start failed: {shlex.join(command.args)}: {err.decode()}")  # type: ignore[arg-type]
    report = answer(waiter, timeout=400)
    if report["registered_at"] is None:
        raise SystemExit(f"only {report['engines']} engines registered")
    return float(report["registered_at"]) - started


SSH_SAVED = "~/.ssh.before-bench"


def ssh_for_ipcluster() -> None:
    """What the tutorial's SSH launcher needs: a key of the cluster user, trusted on every host
    (the shared home: one authorized_keys). The user's own ~/.ssh is kept aside and restored."""
    on_host(
        LAB_CONTROLLER,
        f"set -e; umask 077; if test -d ~/.ssh && ! test -d {SSH_SAVED}; then cp -a ~/.ssh {SSH_SAVED}; fi; "
        "mkdir -p ~/.ssh; test -f ~/.ssh/bench_ed25519 || ssh-keygen -q -t ed25519 -N '' -f ~/.ssh/bench_ed25519; "
        "cat ~/.ssh/bench_ed25519.pub >> ~/.ssh/authorized_keys; "
        "printf 'Host *\\n  IdentityFile ~/.ssh/bench_ed25519\\n  StrictHostKeyChecking accept-new\\n"
        "  LogLevel ERROR\\n' > ~/.ssh/config",
        USER,
    )
    for host in LAB_ENGINE_HOSTS:
        on_host(LAB_CONTROLLER, f"ssh {host} true", USER)


def ssh_restore() -> None:
    """The cluster user's ~/.ssh as it was before the benchmark."""
    on_host(
        LAB_CONTROLLER,
        f"rm -rf ~/.ssh; if test -d {SSH_SAVED}; then mv {SSH_SAVED} ~/.ssh; fi",
        USER,
    )


def bench_startup(repeats: int) -> dict[str, Any]:
    ssh_for_ipcluster()
    inventory = str(ROOT / "lab/inventory")
    engine_units = " ".join(f"ipp-engine@{i}.service" for i in range(1, 9))
    as_user = ["podman", "exec", LAB_CONTROLLER, "runuser", "-u", USER, "--"]
    ways: dict[str, list[list[str]]] = {
        "startyml": [["ansible-playbook", "-i", inventory, str(ROOT / "start.yml")]],
        "systemctl": [["podman", "exec", LAB_CONTROLLER, "systemctl", "start", "ipp-controller.service"]]
        + [["podman", "exec", host, "sh", "-c", f"systemctl start {engine_units}"] for host in LAB_ENGINE_HOSTS],
        "ipcluster_ssh": [[*as_user, f"{VENV}/bin/ipcluster", "start", "--profile=cluster", "--daemonize"]],
    }
    runs: dict[str, list[float]] = {name: [] for name in ways}
    try:
        for turn in range(repeats):
            for name in rotate(list(ways), turn):
                lab_stop()
                seconds = timed_startup(ways[name])
                print(f"    {name}: {seconds:.1f} s", flush=True)
                runs[name].append(seconds)
    finally:
        lab_stop()
        ssh_restore()
        playbook(inventory, str(ROOT / "start.yml"))
    return {"runs": runs, "median": {name: median(values) for name, values in runs.items()}}


def bare_cluster_stop(profile: str) -> None:
    """Stop a bare cluster and delete its profile."""
    on_host(
        LAB_CONTROLLER,
        f"{VENV}/bin/ipcluster stop --profile={profile} >/dev/null 2>&1; rm -rf ~/.ipython/profile_{profile}",
        USER,
        check=False,
    )


def bare_cluster(profile: str, db_class: str) -> None:
    """A bare `ipcluster start -n 32` on cl-0 with its own profile and task store."""
    bare_cluster_stop(profile)
    on_host(
        LAB_CONTROLLER,
        f"set -e; {VENV}/bin/ipython profile create --parallel --profile={profile} >/dev/null 2>&1; "
        f"echo 'c.IPController.db_class = \"{db_class}\"' >> ~/.ipython/profile_{profile}/ipcontroller_config.py; "
        f"{VENV}/bin/ipcluster start -n {LAB_ENGINES} --profile={profile} --daemonize",
        USER,
    )
    report = answer(probe(LAB_CONTROLLER, "wait", "--profile", profile, "--expect", str(LAB_ENGINES)))
    if report["registered_at"] is None:
        raise SystemExit(f"bare cluster {profile}: only {report['engines']} engines")


def bench_throughput(repeats: int, count: int, points: int) -> dict[str, Any]:
    """Each bare cluster runs only for its own measurement; the deployed one idles meanwhile."""
    bare = {"bare_memory": ("bare-memory", "DictDB"), "bare_sqlite": ("bare-sqlite", "SQLiteDB")}
    names = ["deployed", *bare]
    answer(probe(LAB_CONTROLLER, "wait", "--expect", str(LAB_ENGINES)))
    runs: dict[str, list[dict[str, float]]] = {name: [] for name in names}
    for turn in range(repeats):
        for name in rotate(names, turn):
            profile = "cluster"
            if name in bare:
                profile, db_class = bare[name]
                bare_cluster(profile, db_class)
            try:
                tasks = answer(probe(LAB_CONTROLLER, "tasks", "--profile", profile, "--count", str(count)))
                epyc = answer(probe(LAB_CONTROLLER, "epyc", "--profile", profile, "--points", str(points)))
            finally:
                if name in bare:
                    bare_cluster_stop(profile)
            row = {"tasks": tasks["per_second"], "epyc": epyc["per_second"], "epyc_submit": epyc["submit_seconds"]}
            print(f"    {name}: {row['tasks']:.0f} tasks/s, {row['epyc']:.1f} experiments/s", flush=True)
            runs[name].append(row)
    medians = {
        name: {"tasks": median(r["tasks"] for r in rows), "epyc": median(r["epyc"] for r in rows)}
        for name, rows in runs.items()
    }
    return {"runs": runs, "median": medians, "tasks": count, "points": points}


def memory_mib(host: str, pattern: str) -> list[tuple[float, float]]:
    """(RSS, PSS) in MiB of each of the cluster user's processes whose command line matches.

    Read from this machine's /proc (root in a container may not read smaps). PSS shares each
    shared page among the processes using it: the controller's forked schedulers share much
    of their memory, so their RSS added up would overstate.
    """
    found = []
    for line in run(["podman", "top", host, "hpid", "user", "args"]).stdout.splitlines()[1:]:
        pid, user, args = line.split(None, 2)
        if user == USER and re.search(pattern, args):
            rollup = Path(f"/proc/{pid}/smaps_rollup").read_text()
            kib = {key: int(value.split()[0]) for key, value in re.findall(r"^(Rss|Pss):\s+(.*)$", rollup, re.M)}
            found.append((kib["Rss"] / 1024, kib["Pss"] / 1024))
    return found


def bench_memory() -> dict[str, float]:
    """Memory of the deployed cluster's processes: the controller's, and per engine and its nanny."""
    controller = memory_mib(LAB_CONTROLLER, "ipp_recovery")
    engines = memory_mib(LAB_ENGINE_HOSTS[0], "bin/ipengine")
    nannies = memory_mib(LAB_ENGINE_HOSTS[0], "ipyparallel.engine.nanny")
    if not (controller and engines and nannies):
        raise SystemExit(f"cluster processes not found: {controller}, {engines}, {nannies}")
    return {
        f"controller, its {len(controller)} processes, RSS added up": sum(rss for rss, _ in controller),
        f"controller, its {len(controller)} processes, PSS added up": sum(pss for _, pss in controller),
        f"one engine, RSS (median of {len(engines)})": median(rss for rss, _ in engines),
        f"one engine, PSS (median of {len(engines)})": median(pss for _, pss in engines),
        f"one engine's nanny, PSS (median of {len(nannies)})": median(pss for _, pss in nannies),
        "one engine with its nanny, PSS": median(pss for _, pss in engines) + median(pss for _, pss in nannies),
    }


# ----- output -----


def plot(results: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, 3, figsize=(15, 4.5))
    deploy = results.get("deploy", {}).get("median", {})
    if deploy:
        sizes = sorted(deploy, key=int)
        axes[0].plot([int(s) for s in sizes], [deploy[s]["cold"] for s in sizes], "o-", label="cold site.yml")
        axes[0].plot([int(s) for s in sizes], [deploy[s]["warm"] for s in sizes], "s-", label="warm re-run")
        axes[0].set(xlabel="engine hosts", ylabel="seconds", title="Deploy wall time (median)")
        axes[0].set_ylim(bottom=0)
        axes[0].legend()
    startup = results.get("startup", {}).get("median", {})
    if startup:
        axes[1].bar(list(startup), list(startup.values()), color=["C0", "C2", "C3"][: len(startup)])
        axes[1].set(ylabel="seconds", title=f"Start-up to {LAB_ENGINES} engines registered (median)")
    tasks = results.get("throughput", {}).get("median", {})
    if tasks:
        names = list(tasks)
        positions = range(len(names))
        axes[2].bar([p - 0.2 for p in positions], [tasks[n]["tasks"] for n in names], 0.4, label="tiny tasks/s")
        axes[2].bar([p + 0.2 for p in positions], [tasks[n]["epyc"] for n in names], 0.4, label="epyc experiments/s")
        axes[2].set_xticks(list(positions), names)
        axes[2].set(ylabel="per second", title=f"Throughput, {LAB_ENGINES} engines (median)")
        axes[2].set_ylim(0, 1.3 * max(tasks[n]["tasks"] for n in names))  # room for the legend
        axes[2].legend(loc="upper right")
    figure.tight_layout()
    figure.savefig(path, dpi=90)


def save(results: dict[str, Any], out: Path) -> None:
    """Write results.json, results.md and results.png (figures and targets from what there is)."""
    results["figures"] = ratios(results)
    results["targets"] = verdicts(results["figures"])
    (out / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    (out / "results.md").write_text(markdown(results))
    plot(results, out / "results.png")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path, default=ROOT / "bench/results")
    parser.add_argument("--only", nargs="*", default=["startup", "throughput", "memory", "deploy"])
    parser.add_argument("--sizes", type=int, nargs="*", default=[2, 4, 8], help="engine host counts for deploy")
    parser.add_argument("--tasks", type=int, default=1000, help="tiny tasks per throughput run")
    parser.add_argument("--points", type=int, default=200, help="epyc experiment points per throughput run")
    parser.add_argument("--merge", action="store_true", help="keep the other sections of an earlier results.json")
    parser.add_argument(
        "--no-warm-up", action="store_true", help="no untimed deploy first (the wheelhouse is built already)"
    )
    args = parser.parse_args(argv)
    os.environ["PATH"] = f"{ROOT / '.venv/bin'}:{os.environ['PATH']}"
    os.environ["ANSIBLE_CONFIG"] = str(ROOT / "ansible.cfg")
    if run(["podman", "container", "exists", LAB_CONTROLLER], check=False).returncode != 0:
        raise SystemExit("the lab is not up: run `sudo scripts/lab.sh up` first")
    for host in [LAB_CONTROLLER, *LAB_ENGINE_HOSTS]:
        run(["podman", "cp", str(PROBE), f"{host}:/tmp/probe.py"])
    machine = f"{os.cpu_count()} CPUs, {os.uname().release}"
    results: dict[str, Any] = {"date": time.strftime("%Y-%m-%d %H:%M"), "machine": machine, "repeats": args.repeats}
    args.out.mkdir(parents=True, exist_ok=True)
    if args.merge and (args.out / "results.json").exists():
        earlier = json.loads((args.out / "results.json").read_text())
        results = {**earlier, **results, "date": f"{earlier['date']} and {results['date']}"}
    sections: dict[str, tuple[str, Callable[[], Any]]] = {
        "startup": ("start-up: 32 engines, three ways, interleaved", lambda: bench_startup(args.repeats)),
        "throughput": (
            "throughput: deployed cluster vs bare ipcluster, interleaved",
            lambda: bench_throughput(args.repeats, args.tasks, args.points),
        ),
        "memory": ("memory: RSS of the controller and the engines", bench_memory),
        "deploy": (
            "deploy: cold and warm site.yml",
            lambda: bench_deploy(args.sizes, args.repeats, not args.no_warm_up),
        ),
    }
    for name, (title, measure) in sections.items():
        if name in args.only:
            say(title)
            results[name] = measure()
            save(results, args.out)  # what is measured is kept, whatever happens later
    print("\n" + markdown(results))
    print(f"saved: {args.out}/results.json, results.md, results.png")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
