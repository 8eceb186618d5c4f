#!/usr/bin/env python3
"""All engines back after a controller SIGKILL, over SSH (issue #17, its recovery row).

On a running lab reached over SSH as an admin with sudo (the `trixie` scenario's, as
bench/warm_ssh.py's docstring says how to keep it up), each round kills the controller's main
process with SIGKILL, as a crash or the OOM killer does, and waits until every engine unit of
every host has registered with the controller systemd starts again. The figure is the time from
the kill to the last engine's "Completed registration", read from the hosts' journals, with the
phases between (the controller's restart, its hub ready, the previous controller's engines
noticed and stopped, started again, registered).

Variants, interleaved (round k starts with a different one), medians:
  deployed     the units as the roles install them
  restart-0.1  the same with RestartSec=100ms for the controller and the engines
  restart-0.1+heartbeat-0.5
               and the controller's heart monitor pinging every 0.5 s (--HeartMonitor.period)
The variants are drop-ins under /run/systemd/system, made before each round and removed after
the last (/run does not survive a reboot either).

    ANSIBLE_CONFIG=$E/ansible.cfg MOLECULE_EPHEMERAL_DIRECTORY=$E \\
      .venv/bin/python bench/recovery_ssh.py --inventory $E/inventory \\
      [--rounds 5] [--out docs/bench] [--name recovery_ssh]

writes recovery_ssh.json and recovery_ssh.md (or --name's) into --out. The lab's 3 engines can be
made 16 first (8 on each of its 2 cluster hosts), as docs/benchmarks.md's second run was:

    ANSIBLE_ROLES_PATH=roles ANSIBLE_CONFIG=$E/ansible.cfg MOLECULE_EPHEMERAL_DIRECTORY=$E \\
      .venv/bin/ansible-playbook -i $E/inventory site.yml -e ipp_engines=8
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import bench

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
#: The goal of issue #17: every engine registered again within this many seconds.
GOAL = 15.0
#: A round that takes longer than this has failed.
LIMIT = 120.0
#: Seconds of rest before each kill.
SETTLE = 10.0
CONTROLLER_UNIT = "ipp-controller.service"
ENGINE_UNITS = "ipp-engine@*.service"
RESTART_FAST = "printf '[Service]\\nRestartSec=100ms\\n'"
#: The controller's own command line, with the heart monitor pinging every 0.5 s (engines take
#: the period from the hub when they register).
HEARTBEAT_FAST = (
    "printf '[Service]\\nRestartSec=100ms\\nExecStart=\\n'; "
    f"systemctl cat {CONTROLLER_UNIT} | sed -n 's/^ExecStart=\\(.*\\)/ExecStart=\\1 --HeartMonitor.period=500/p'"
)
#: The drop-ins of each variant: (unit, shell command that prints the drop-in).
DROP_INS: dict[str, list[tuple[str, str]]] = {
    "deployed": [],
    "restart-0.1": [(CONTROLLER_UNIT, RESTART_FAST), ("ipp-engine@.service", RESTART_FAST)],
    "restart-0.1+heartbeat-0.5": [(CONTROLLER_UNIT, HEARTBEAT_FAST), ("ipp-engine@.service", RESTART_FAST)],
}
#: What each variant's units must show once its drop-ins are in place: the restart delay of
#: every unit (systemctl's RestartUSec), the heartbeat period the controller logs (ms); None: as
#: deployed (recorded, not checked).
EXPECT: dict[str, tuple[str | None, int | None]] = {
    "deployed": (None, None),
    "restart-0.1": ("100ms", None),
    "restart-0.1+heartbeat-0.5": ("100ms", 500),
}
HEARTBEAT_WORDS = "Heartmonitor beating every "
DROP_IN_NAME = "zz-bench-recovery.conf"
#: What marks each phase in the journal: (phase, unit kind, words of the message).
MARKS: list[tuple[str, str, str]] = [
    ("controller_started", "controller", "Started ipp-controller.service"),
    ("hub_ready", "controller", "heartbeat::subscription started"),
    ("old_engines_seen", "controller", "belongs to a previous controller"),
    ("engines_stopped", "engine", "Deactivated successfully"),
    ("engines_started", "engine", "Started ipp-engine@"),
    ("registered", "engine", "Completed registration"),
]
PHASES = [phase for phase, _, _ in MARKS]


# ----- figures (pure functions, tested in tests/test_recovery_ssh_bench.py) -----


def journal_events(lines: Sequence[str]) -> list[dict[str, Any]]:
    """Events of `journalctl -o json` lines: seconds since the epoch, the unit, the message."""
    events = []
    for line in lines:
        if not line.startswith("{"):
            continue
        entry = json.loads(line)
        message = entry.get("MESSAGE")
        unit = entry.get("UNIT") or entry.get("_SYSTEMD_UNIT") or ""
        if isinstance(message, str):
            events.append({"time": int(entry["__REALTIME_TIMESTAMP"]) / 1e6, "unit": unit, "message": message})
    return events


def phase_times(events: Sequence[dict[str, Any]], killed: float) -> dict[str, float]:
    """Seconds from the kill to each phase: the first controller mark, the last engine mark
    (the last unit to get there ends the phase); only marks after the kill count."""
    times: dict[str, float] = {}
    for phase, kind, words in MARKS:
        found = [
            event["time"] - killed
            for event in events
            if event["time"] >= killed
            and words in event["message"]
            and (event["unit"] == CONTROLLER_UNIT) == (kind == "controller")
        ]
        if found:
            times[phase] = min(found) if kind == "controller" else max(found)
    return times


def heartbeat_period(events: Sequence[dict[str, Any]], killed: float) -> int | None:
    """The heartbeat period (ms) the controller started after the kill logged."""
    for event in events:
        if event["time"] >= killed and event["unit"] == CONTROLLER_UNIT and HEARTBEAT_WORDS in event["message"]:
            return int(event["message"].split(HEARTBEAT_WORDS)[1].split("ms")[0])
    return None


def check_variant(variant: str, delays: set[str], heartbeat: int | None) -> None:
    """Raise unless the units ran as the variant says (a drop-in that did not apply)."""
    delay, period = EXPECT[variant]
    if delay is not None and delays != {delay}:
        raise RuntimeError(f"{variant}: the units' restart delays are {sorted(delays)}, not {delay}")
    if period is not None and heartbeat != period:
        raise RuntimeError(f"{variant}: the controller's heartbeat period was {heartbeat} ms, not {period}")


def registered_units(events: Sequence[dict[str, Any]], killed: float) -> set[str]:
    """The engine units that logged a registration after the kill."""
    return {
        event["unit"]
        for event in events
        if event["time"] >= killed and "Completed registration" in event["message"] and event["unit"] != CONTROLLER_UNIT
    }


def summary(rounds: list[dict[str, Any]]) -> dict[str, Any]:
    """Per variant: the medians of each phase, and the total against the goal."""
    figures: dict[str, Any] = {"goal": GOAL, "rounds": len(rounds) // len({r["variant"] for r in rounds})}
    variants: dict[str, Any] = {}
    for name in DROP_INS:
        mine = [r for r in rounds if r["variant"] == name]
        if not mine:
            continue
        variants[name] = {phase: bench.median(r["phases"][phase] for r in mine) for phase in PHASES}
        variants[name]["engines"] = mine[0]["engines"]
        variants[name]["over_goal"] = variants[name]["registered"] / GOAL
    if "deployed" in variants:
        for figures_of in variants.values():
            figures_of["over_deployed"] = figures_of["registered"] / variants["deployed"]["registered"]
    figures["variants"] = variants
    return figures


def markdown(figures: dict[str, Any], when: str) -> str:
    """The figures as the table docs/benchmarks.md links to."""
    names = list(figures["variants"])
    lines = [
        f"Run of {when} on {os.cpu_count()} CPUs, {figures['rounds']} interleaved rounds of each variant "
        "(medians), over SSH (admin with sudo); seconds from the controller's SIGKILL.",
        "",
        "| phase | " + " | ".join(f"`{name}`" for name in names) + " |",
        "|---|" + "---:|" * len(names),
    ]
    for phase in PHASES:
        lines.append(
            f"| {phase.replace('_', ' ')} | " + " | ".join(f"{figures['variants'][n][phase]:.1f}" for n in names) + " |"
        )
    lines.append("| engines | " + " | ".join(str(figures["variants"][n]["engines"]) for n in names) + " |")
    lines.append(
        f"| all registered / goal ({GOAL:.0f} s) | "
        + " | ".join(f"{figures['variants'][n]['over_goal']:.2f}" for n in names)
        + " |"
    )
    if all("over_deployed" in figures["variants"][n] for n in names):
        lines.append(
            "| all registered / `deployed` | "
            + " | ".join(f"{figures['variants'][n]['over_deployed']:.2f}" for n in names)
            + " |"
        )
    return "\n".join(lines) + "\n"


# ----- the lab (over SSH, through Ansible ad-hoc commands) -----


def ad_hoc(inventory: str, hosts: str, command: str, become: bool = True) -> dict[str, str]:
    """Run a shell command on hosts; return each host's output (every host must succeed)."""
    env = dict(
        os.environ,
        ANSIBLE_LOAD_CALLBACK_PLUGINS="1",
        ANSIBLE_STDOUT_CALLBACK="ansible.posix.json",
        ANSIBLE_NOCOLOR="1",
    )
    argv = [str(BIN / "ansible"), "-i", inventory, hosts, "-m", "ansible.builtin.shell", "-a", command]
    if become:
        argv.append("--become")
    done = subprocess.run(argv, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(
            f"{hosts}: {command!r} failed ({done.returncode}):\n{done.stdout[-3000:]}\n{done.stderr[-2000:]}"
        )
    # The JSON document starts a line; a timing callback of the lab's ansible.cfg may print around it.
    document, _ = json.JSONDecoder().raw_decode(done.stdout[done.stdout.find("{") :])
    results = document["plays"][0]["tasks"][0]["hosts"]
    return {host: str(result.get("stdout", "")) for host, result in results.items()}


def set_variant(inventory: str, variant: str) -> None:
    """Put the variant's drop-ins in place on every cluster host (and no other's), for the units
    the host has."""
    # systemctl cat fails on a unit whose loaded drop-in is gone: reload before it reads one.
    commands = [f"rm -f /run/systemd/system/*.d/{DROP_IN_NAME}", "systemctl daemon-reload"]
    for unit, text in DROP_INS[variant]:
        directory = f"/run/systemd/system/{unit}.d"
        commands.append(
            f"if systemctl cat {shlex.quote(unit.replace('@.', '@1.'))} >/dev/null 2>&1; then "
            f"mkdir -p {directory} && ({text}) > {directory}/{DROP_IN_NAME}; fi"
        )
    commands.append("systemctl daemon-reload")
    ad_hoc(inventory, "controller:engines", " && ".join(commands))


def restart_delays(inventory: str) -> set[str]:
    """The restart delay (RestartUSec) of every controller and engine unit that runs."""
    # Only the active ones: a pattern also matches units that systemd holds as not found (an
    # instance some check asked about), which show the default delay.
    out = ad_hoc(
        inventory,
        "controller:engines",
        f"systemctl list-units --state=active --no-legend --plain {CONTROLLER_UNIT} {shlex.quote(ENGINE_UNITS)} "
        "| awk '{print $1}' | xargs --no-run-if-empty systemctl show --property=RestartUSec --value | sort -u",
    )
    return {line for text in out.values() for line in text.split() if line}


def kill_controller(inventory: str) -> float:
    """SIGKILL the controller's main process; return the time of the kill (epoch seconds)."""
    out = ad_hoc(
        inventory,
        "controller",
        f'pid=$(systemctl show --property=MainPID --value {CONTROLLER_UNIT}); test "$pid" -gt 0; '
        'date +%s.%N; kill -KILL "$pid"',
    )
    return float(next(iter(out.values())).split()[0])


def read_events(inventory: str, since: float) -> tuple[list[dict[str, Any]], int]:
    """The marked journal lines of every cluster host since `since`, and the number of engine
    units that run."""
    words = " ".join(f"-e {shlex.quote(w)}" for w in [*(w for _, _, w in MARKS), HEARTBEAT_WORDS])
    out = ad_hoc(
        inventory,
        "controller:engines",
        f"systemctl list-units {shlex.quote(ENGINE_UNITS)} --state=active --no-legend --plain | wc -l; "
        f"journalctl --since @{int(since)} -o json --output-fields=MESSAGE,UNIT,_SYSTEMD_UNIT --no-pager "
        f"-u {CONTROLLER_UNIT} -u {shlex.quote(ENGINE_UNITS)} | grep -F {words} || true",
    )
    events: list[dict[str, Any]] = []
    units = 0
    for host, text in out.items():
        lines = text.splitlines()
        units += int(lines[0])
        for event in journal_events(lines[1:]):
            event["unit"] = f"{host}:{event['unit']}" if event["unit"] != CONTROLLER_UNIT else CONTROLLER_UNIT
            events.append(event)
    return events, units


def one_kill(inventory: str, variant: str) -> dict[str, Any]:
    """Kill the controller and wait until every engine unit registered again."""
    set_variant(inventory, variant)
    delays = restart_delays(inventory)
    wait_settled()
    killed = kill_controller(inventory)
    while True:
        time.sleep(2)
        events, units = read_events(inventory, killed)
        registered = registered_units(events, killed)
        if units and len(registered) >= units:
            break
        if time.time() - killed > LIMIT:
            raise RuntimeError(f"{variant}: {len(registered)} of {units} engines registered after {LIMIT:.0f} s")
    phases = phase_times(events, killed)
    missing = [phase for phase in PHASES if phase not in phases]
    if missing:
        raise RuntimeError(f"{variant}: no journal line for {missing}")
    heartbeat = heartbeat_period(events, killed)
    check_variant(variant, delays, heartbeat)
    return {
        "variant": variant,
        "engines": units,
        "phases": phases,
        "restart_delays": sorted(delays),
        "heartbeat_ms": heartbeat,
    }


def wait_settled() -> None:
    """Let the cluster rest: a round starts SETTLE seconds after the last one's engines all
    registered (or after the deploy, which ends when they have), a few heartbeats on."""
    time.sleep(SETTLE)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--inventory", required=True, help="the lab's inventory (reached over SSH)")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--variants", nargs="+", default=list(DROP_INS), choices=list(DROP_INS))
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "bench")
    parser.add_argument("--name", default="recovery_ssh", help="the results' file name, without .json or .md")
    args = parser.parse_args()
    rounds = []
    try:
        for number in range(args.rounds):
            for variant in bench.rotate(args.variants, number):
                rounds.append(one_kill(args.inventory, variant))
                times = ", ".join(f"{k} {v:.1f}" for k, v in rounds[-1]["phases"].items())
                print(f"round {number + 1} {variant}: {times}", flush=True)
    finally:
        set_variant(args.inventory, "deployed")
    if rounds and rounds[-1]["variant"] != "deployed":
        # The controller still runs with the last variant's settings: one more kill, not counted.
        one_kill(args.inventory, "deployed")
    figures = summary(rounds)
    when = time.strftime("%Y-%m-%d %H:%M")
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"{args.name}.json").write_text(
        json.dumps({"when": when, "figures": figures, "rounds": rounds}, indent=2) + "\n"
    )
    text = markdown(figures, when)
    (args.out / f"{args.name}.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
