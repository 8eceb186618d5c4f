#!/usr/bin/env python3
"""A warm site.yml against its floor, over SSH (issue #17, its first row), on a running lab.

A warm run (nothing to change) of site.yml is measured against one `ansible -m ping` round
on the same hosts, side by side in one run, interleaved, medians; optionally also with
Mitogen's strategy (`--mitogen DIR`, the directory of ansible_mitogen's strategy plugins, as
`pip install --target DIR mitogen` puts it under ansible_mitogen/plugins/strategy). Every warm
run must report changed=0 on every host, or the benchmark stops.

The hosts are reached as the SSH scenario reaches them: bring the `trixie` scenario's lab up
and keep it (`molecule converge -s trixie`), then, with its ephemeral directory E
(~/.ansible/tmp/molecule.*.trixie) and its ansible.cfg:

    ANSIBLE_CONFIG=$E/ansible.cfg MOLECULE_EPHEMERAL_DIRECTORY=$E \\
      .venv/bin/python bench/warm_ssh.py --inventory $E/inventory [--rounds 3] [--out docs/bench]

writes warm_ssh.json and warm_ssh.md into --out.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import bench

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
#: The hosts site.yml changes (the workstation is shadow.yml's).
HOSTS = "controller:engines"
#: The goal of issue #17: a warm run within this many ping rounds.
GOAL = 3.0


def check_warm(hosts: dict[str, dict[str, int]]) -> None:
    """Raise unless every host of the recap is there and reports nothing changed or failed."""
    if not hosts:
        raise RuntimeError("no PLAY RECAP in the output of the warm run")
    bad = {host: c for host, c in hosts.items() if c.get("changed") or c.get("failed") or c.get("unreachable")}
    if bad:
        raise RuntimeError(f"the warm run changed or failed something: {bad}")


def timed(argv: list[str], env: dict[str, str]) -> tuple[float, float, str]:
    """Run argv; return its wall seconds, the CPU seconds of the processes it started and reaped
    (not the ssh master connections, which outlive it), and its output."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.monotonic()
    done = subprocess.run(argv, env=env, cwd=ROOT, capture_output=True, text=True, check=False)
    wall = time.monotonic() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if done.returncode != 0:
        raise RuntimeError(
            f"{' '.join(argv)} failed ({done.returncode}):\n{done.stdout[-3000:]}\n{done.stderr[-2000:]}"
        )
    return wall, cpu, done.stdout


def one_round(inventory: str, mitogen: str | None) -> dict[str, Any]:
    """A ping round, a warm run, and a warm run with Mitogen if asked."""
    # The project's roles, also under an ansible.cfg of the lab that does not name them.
    env = dict(os.environ, ANSIBLE_NOCOLOR="1", ANSIBLE_FORCE_COLOR="0", ANSIBLE_ROLES_PATH=str(ROOT / "roles"))
    figures: dict[str, Any] = {}
    figures["ping"], _, _ = timed([str(BIN / "ansible"), "-i", inventory, HOSTS, "-m", "ansible.builtin.ping"], env)
    runs = {"linear": env}
    if mitogen:
        runs["mitogen"] = dict(env, ANSIBLE_STRATEGY_PLUGINS=mitogen, ANSIBLE_STRATEGY="mitogen_linear")
    for name, run_env in runs.items():
        wall, cpu, output = timed([str(BIN / "ansible-playbook"), "-i", inventory, "site.yml"], run_env)
        hosts = bench.recap(output)
        check_warm(hosts)
        figures[name] = wall
        figures[f"{name}_cpu"] = cpu
        figures[f"{name}_tasks"] = output.count("\nTASK [")
        figures["hosts"] = len(hosts)
    return figures


def summary(rounds: list[dict[str, Any]]) -> dict[str, Any]:
    """Medians over the rounds, and the ratios: warm/ping (goal <= GOAL), mitogen/linear."""

    def median(key: str) -> float:
        return float(statistics.median(r[key] for r in rounds))

    figures: dict[str, Any] = {"rounds": len(rounds), "hosts": rounds[0]["hosts"], "goal": GOAL}
    for key in ("ping", "linear", "linear_cpu", "linear_tasks"):
        figures[key] = median(key)
    figures["warm_over_ping"] = figures["linear"] / figures["ping"]
    figures["per_task"] = figures["linear"] / figures["linear_tasks"]
    if "mitogen" in rounds[0]:
        for key in ("mitogen", "mitogen_cpu"):
            figures[key] = median(key)
        figures["mitogen_over_linear"] = figures["mitogen"] / figures["linear"]
    return figures


def markdown(figures: dict[str, Any], when: str) -> str:
    """The figures as the table docs/benchmarks.md links to."""
    lines = [
        f"Run of {when} on {os.cpu_count()} CPUs, {figures['rounds']} interleaved rounds (medians), "
        f"{figures['hosts']} cluster hosts over SSH (admin with sudo, pipelining).",
        "",
        "| what | seconds | CPU s of Ansible's reaped processes | ratio | goal |",
        "|---|---:|---:|---:|---:|",
        f"| `ansible -m ping` round (the floor) | {figures['ping']:.2f} | | 1 | |",
        f"| warm `site.yml`, changed=0 ({figures['linear_tasks']:.0f} tasks, "
        f"{figures['per_task']:.2f} s each) | {figures['linear']:.1f} | {figures['linear_cpu']:.1f} "
        f"| {figures['warm_over_ping']:.1f}x ping | <= {figures['goal']:.0f}x |",
    ]
    if "mitogen" in figures:
        lines.append(
            f"| warm `site.yml` with Mitogen's strategy | {figures['mitogen']:.1f} | {figures['mitogen_cpu']:.1f} "
            f"| {figures['mitogen_over_linear']:.2f}x linear | |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--inventory", required=True, help="the lab's inventory (reached over SSH)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--mitogen", help="directory of ansible_mitogen's strategy plugins (measured too)")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "bench")
    args = parser.parse_args()
    rounds = []
    for number in range(1, args.rounds + 1):
        rounds.append(one_round(args.inventory, args.mitogen))
        print(f"round {number}: " + ", ".join(f"{k} {v:.2f}" for k, v in rounds[-1].items()), flush=True)
    figures = summary(rounds)
    when = time.strftime("%Y-%m-%d %H:%M")
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "warm_ssh.json").write_text(
        json.dumps({"when": when, "figures": figures, "rounds": rounds}, indent=2) + "\n"
    )
    text = markdown(figures, when)
    (args.out / "warm_ssh.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
