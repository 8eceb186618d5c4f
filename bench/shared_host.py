#!/usr/bin/env python3
"""What resource control buys a person on a shared engine host, and what it costs (issue #16, item 3).

On the lab (containers with systemd, deployed by site.yml), side by side in one run, with
the engine host's ``ipp_resource_control`` switched by re-running site.yml (``-e``), in
interleaved rounds (defaults, none, defaults, none, ...), medians:

  interactive  a fixed CPU job (a Python loop) run as a logged-in person runs it on the
               engine host (``systemd-run --uid=alice --slice=user.slice --wait --pipe``):
               alone (the floor, engines idle), then with every engine of the host busy
               (a DirectView job of busy loops, submitted from the controller host as the
               cluster account); slowdown = busy / alone
  throughput   busy-loop tasks per second the cluster completes through a LoadBalancedView
               with the host otherwise idle; ratio defaults / none

    .venv/bin/python bench/shared_host.py [--up] [--down] [--repeats 3] [--samples 3] [--out docs/bench]

``--up`` starts a small lab (cl-0 the controller, cl-1 with 2 engines: the 2 cores of this
machine) and deploys it; ``--down`` removes the lab at the end (scripts/lab.sh down).
Writes shared_host.json and shared_host.md into --out.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
CONTROLLER, ENGINE_HOST, ENGINES = "cl-0", "cl-1", 2
#: The lab's cluster account (lab/inventory/group_vars/all.yml) and venv (ipp_venv).
IPP_USER, VENV_PYTHON = "yourself", "/opt/ipyparallel/bin/python"
#: The person logged in on the engine host: not the cluster account.
PERSON, PERSON_UID = "alice", 3001
#: Iterations of the interactive job (about 0.5-1 s alone here) and of one throughput task.
INTERACTIVE_LOOPS = 8_000_000
TASK_LOOPS = 2_000_000
#: A file on the shared /home that tells the busy loops to stop early.
STOP_FILE = f"/home/{IPP_USER}/.shared-host-bench-stop"
SETTINGS = ("defaults", "none")

INVENTORY = f"""\
# A small inventory of the lab (lab/inventory): the controller and one engine host.
all:
  vars:
    ansible_connection: containers.podman.podman
  children:
    controller:
      hosts:
        {CONTROLLER}:
    engines:
      hosts:
        {ENGINE_HOST}:
      vars:
        ipp_engines: {ENGINES}
    workstations:
      hosts: {{}}
"""

#: The interactive job: times its own loop (not Python's start) and says where it ran.
INTERACTIVE = f"""
import json, os, time
started = time.perf_counter()
n = 0
for i in range({INTERACTIVE_LOOPS}):
    n += i
seconds = time.perf_counter() - started
lines = open("/proc/self/cgroup").read().splitlines()
cgroup = [line.split(":", 2)[2] for line in lines if ":name=systemd:" in line or line.startswith("0::")]
print(json.dumps({{"seconds": seconds, "nice": os.nice(0), "cgroup": cgroup[0].strip()}}))
"""

#: The cluster account's client on the controller host, with the cluster's venv.
#:   busy SECONDS    every engine spins until SECONDS from now or the stop file (DirectView)
#:   rate TASKS      TASKS fixed busy loops through a LoadBalancedView; prints tasks/s
CLIENT = f"""
import json, os, socket, sys, time
import ipyparallel as ipp
mode, amount = sys.argv[1], float(sys.argv[2])
# Just after a switch the hub may still list the engines that were stopped: wait until
# every listed engine answers.
deadline = time.monotonic() + 180
client = None
while True:
    try:
        client = ipp.Client(profile="cluster", timeout=5)
        if len(client.ids) == {ENGINES}:
            client[:].apply_async(os.getpid).get(timeout=15)
            break
        client.close()
    except Exception:
        if time.monotonic() > deadline:
            raise
        if client is not None:
            client.close()
    time.sleep(1)

def spin(until):
    import os, socket, time
    while time.time() < until and not os.path.exists({STOP_FILE!r}):
        for _ in range(100000):
            pass
    return socket.gethostname()

def work(x):
    n = 0
    for i in range({TASK_LOOPS}):
        n += i
    return x

if mode == "busy":
    result = client[:].apply_async(spin, time.time() + amount)
    print(json.dumps({{"submitted": len(client.ids)}}), flush=True)
    print(json.dumps({{"hosts": sorted(set(result.get(timeout=amount + 60)))}}), flush=True)
else:
    view = client.load_balanced_view()
    view.map_async(work, range({ENGINES})).get(timeout=120)  # warm up
    started = time.monotonic()
    view.map_async(work, range(int(amount))).get(timeout=600)
    print(json.dumps({{"rate": amount / (time.monotonic() - started)}}), flush=True)
"""


def ansible_env() -> dict[str, str]:
    return {**os.environ, "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg"), "PYTHONWARNINGS": "ignore"}


def platforms() -> list[dict[str, Any]]:
    """The lab's platforms (lab/platforms.yml) of the hosts this bench uses."""
    return [
        {
            "name": name,
            "image": "localhost/ipp-debian12:latest",
            "network": "ipp-lab",
            "volumes": ["{{ ipp_lab_home }}:/home"],
        }
        for name in (CONTROLLER, ENGINE_HOST)
    ]


def write_inventory(folder: Path) -> Path:
    """The small inventory, beside the lab's own group_vars."""
    (folder / "hosts.yml").write_text(INVENTORY)
    (folder / "group_vars").symlink_to(ROOT / "lab" / "inventory" / "group_vars")
    return folder / "hosts.yml"


def up(inventory: Path) -> None:
    lab_platforms = json.dumps({"ipp_lab_platforms": platforms()})
    subprocess.run(
        ["ansible-playbook", "-i", "localhost,", "lab/create.yml", "-e", "@lab/platforms.yml", "-e", lab_platforms],
        cwd=ROOT,
        env=ansible_env(),
        check=True,
    )
    subprocess.run(["ansible-playbook", "-i", str(inventory), "site.yml"], cwd=ROOT, env=ansible_env(), check=True)


def deploy(inventory: Path, setting: str) -> float:
    """Re-run site.yml with the engine host's resource control on (the defaults) or off.

    Only the engine role's part (``--tags ipp_engine``, with role ipp's checks, which are
    ``always``): it writes the slice and the engine unit and restarts the engines, in ~35 s
    here against ~150 s for the whole playbook, which changes nothing else for this switch.
    """
    started = time.monotonic()
    extra = json.dumps({"ipp_resource_control": setting == "defaults"})
    subprocess.run(
        ["ansible-playbook", "-i", str(inventory), "site.yml", "--tags", "ipp_engine", "-e", extra],
        cwd=ROOT,
        env=ansible_env(),
        check=True,
        stdout=subprocess.DEVNULL,
    )
    return time.monotonic() - started


def podman(host: str, *command: str, stdin: str | None = None) -> str:
    done = subprocess.run(
        ["podman", "exec", "-i", host, *command], input=stdin, capture_output=True, text=True, timeout=900
    )
    if done.returncode:
        raise RuntimeError(f"{host}: {command[-3:]} exited {done.returncode}: {done.stderr[-2000:]}")
    return done.stdout


def client_command(mode: str, amount: float) -> list[str]:
    # `sudo -i` sets HOME (the profile) as a login does; the script comes on stdin.
    return ["sudo", "-iu", IPP_USER, "env", "PYTHONWARNINGS=ignore", VENV_PYTHON, "-", mode, str(amount)]


def add_person() -> None:
    podman(ENGINE_HOST, "sh", "-c", f"id {PERSON} || useradd -m -u {PERSON_UID} {PERSON}")


def interactive() -> dict[str, Any]:
    """The job as a login's process runs it: in user.slice, as the person, nice 0."""
    out = podman(
        ENGINE_HOST,
        "systemd-run",
        f"--uid={PERSON}",
        "--slice=user.slice",
        "--wait",
        "--pipe",
        "--quiet",
        "/usr/bin/python3",
        "-c",
        INTERACTIVE,
    )
    return parse_last_json(out)


def parse_last_json(out: str) -> dict[str, Any]:
    """The last line of a program's output that is a JSON object (ipyparallel may log before it)."""
    for line in reversed(out.strip().splitlines()):
        if line.startswith("{"):
            value: dict[str, Any] = json.loads(line)
            return value
    raise ValueError(f"no JSON line in {out!r}")


def engine_state() -> dict[str, Any]:
    """What the engine host's systemd and kernel hold: the unit's limits and the engines' nice."""
    shown = podman(ENGINE_HOST, "systemctl", "show", "ipp-engine@1", "-p", "CPUWeight", "-p", "Nice")
    nice = podman(ENGINE_HOST, "sh", "-c", "ps -o ni= -p $(systemctl show -p MainPID --value ipp-engine@1)")
    state: dict[str, Any] = dict(line.split("=", 1) for line in shown.splitlines() if line)
    state["engine_nice"] = int(nice.strip())
    return state


def median_of(values: list[float]) -> float:
    return float(statistics.median(values))


def one_round(setting: str, samples: int, tasks: int) -> dict[str, Any]:
    """One round of one setting: the floor, the job beside busy engines, the idle throughput."""
    record: dict[str, Any] = {"setting": setting, **engine_state()}
    # The idle cluster's throughput first (it also waits until every engine is registered).
    record["rate"] = parse_last_json(podman(CONTROLLER, *client_command("rate", tasks), stdin=CLIENT))["rate"]
    alone = [interactive() for _ in range(samples)]
    podman(ENGINE_HOST, "rm", "-f", STOP_FILE)
    busy_for = 5 + samples * 4.0
    spinner = subprocess.Popen(
        ["podman", "exec", "-i", CONTROLLER, *client_command("busy", busy_for)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert spinner.stdin is not None and spinner.stdout is not None
    spinner.stdin.write(CLIENT)
    spinner.stdin.close()
    spinner.stdout.readline()  # submitted
    time.sleep(2)  # the engines take their loops
    busy = [interactive() for _ in range(samples)]
    podman(ENGINE_HOST, "touch", STOP_FILE)
    hosts = parse_last_json(spinner.stdout.read())["hosts"]
    spinner.wait(timeout=60)
    podman(ENGINE_HOST, "rm", "-f", STOP_FILE)
    assert hosts == [ENGINE_HOST], hosts
    record["alone_s"] = median_of([job["seconds"] for job in alone])
    record["busy_s"] = median_of([job["seconds"] for job in busy])
    record["slowdown"] = record["busy_s"] / record["alone_s"]
    record["cgroup"] = alone[0]["cgroup"]
    record["nice"] = alone[0]["nice"]
    return record


def spread(values: list[float], digits: int = 2) -> str:
    return f"{min(values):.{digits}f}-{max(values):.{digits}f}"


def summary(rounds: list[dict[str, Any]]) -> dict[str, Any]:
    """Medians per setting, the rounds' spread beside them, and the ratios."""
    figures: dict[str, Any] = {}
    for setting in SETTINGS:
        mine = [r for r in rounds if r["setting"] == setting]
        for key in ("alone_s", "busy_s", "slowdown", "rate"):
            values = [float(r[key]) for r in mine]
            figures[f"{setting}_{key}"] = round(median_of(values), 3)
            figures[f"{setting}_{key}_spread"] = spread(values, 1 if key == "rate" else 2)
    figures["rate_defaults_over_none"] = round(figures["defaults_rate"] / figures["none_rate"], 3)
    return figures


def markdown(figures: dict[str, Any], rounds: list[dict[str, Any]], args: argparse.Namespace) -> str:
    def row(label: str, key: str, unit: str = "") -> str:
        cells = [f"{figures[f'{s}_{key}']}{unit} ({figures[f'{s}_{key}_spread']})" for s in SETTINGS]
        return f"| {label} | {cells[0]} | {cells[1]} |"

    held = {s: next(r for r in rounds if r["setting"] == s) for s in SETTINGS}
    return "\n".join(
        [
            "# A shared engine host: resource control's benefit and cost",
            "",
            f"`bench/shared_host.py`, {args.repeats} interleaved rounds per setting (defaults, none, ...),"
            f" {args.samples} samples of the job per phase and round; medians, the rounds' spread in brackets.",
            f"The lab, reduced to {CONTROLLER} (controller) and {ENGINE_HOST} ({ENGINES} engines), podman + runc",
            "containers on this 2-core machine (cgroup v1 hybrid), which other people's tests share.",
            "",
            f"The job: a Python loop of {INTERACTIVE_LOOPS:,} additions, run on {ENGINE_HOST} as `{PERSON}` with"
            f" `systemd-run --uid={PERSON} --slice=user.slice --wait --pipe` (cgroup `{held['defaults']['cgroup']}`,"
            f" nice {held['defaults']['nice']}). Busy: every engine of the host spins (a DirectView job from"
            f" {CONTROLLER}, as `{IPP_USER}`).",
            f"Throughput: {args.tasks} tasks of {TASK_LOOPS:,} additions through a LoadBalancedView, host idle.",
            "Each round first switches the setting: `site.yml --tags ipp_engine -e ipp_resource_control=...`"
            " (the slice and the engine unit rewritten, the engines restarted).",
            "",
            "| | defaults (`ipp_resource_control: true`) | none (`false`) |",
            "| --- | --- | --- |",
            f"| engine unit as deployed | CPUWeight={held['defaults']['CPUWeight']},"
            f" nice {held['defaults']['engine_nice']} | CPUWeight={held['none']['CPUWeight']},"
            f" nice {held['none']['engine_nice']} |",
            row("job alone (the floor), s", "alone_s"),
            row("job beside busy engines, s", "busy_s"),
            row("slowdown, busy / alone (goal <= 1.3 with defaults)", "slowdown", "x"),
            row("idle cluster, tasks/s", "rate"),
            f"| throughput, defaults / none (goal >= 0.95) | {figures['rate_defaults_over_none']} | |",
            "",
            "**Which mechanism made the figure:** here only `Nice=` (a process setting, always applied).",
            "The containers' cgroups are v1 hybrid: systemd's `ipp.slice` exists only in its own",
            "hierarchy, every process of the container shares one `cpu` cgroup, so `CPUWeight=` (of the",
            "slice and of the engines) is accepted but not enforced (docs/shared-machines.md). On a cgroup v2",
            "host CPUWeight also applies between `ipp.slice` and `user.slice`: not tested here.",
            "",
        ]
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--up", action="store_true", help="start and deploy the small lab first")
    parser.add_argument("--down", action="store_true", help="remove the lab at the end (scripts/lab.sh down)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--samples", type=int, default=3)
    parser.add_argument("--tasks", type=int, default=60)
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "bench")
    args = parser.parse_args()
    rounds: list[dict[str, Any]] = []
    try:
        with tempfile.TemporaryDirectory() as folder:
            inventory = write_inventory(Path(folder))
            if args.up:
                up(inventory)
            add_person()
            for repeat in range(args.repeats):
                for setting in SETTINGS:
                    switch_s = deploy(inventory, setting)
                    measured = one_round(setting, args.samples, args.tasks)
                    rounds.append({"round": repeat, "switch_s": round(switch_s, 1), **measured})
                    print(json.dumps(rounds[-1]), flush=True)
            deploy(inventory, "defaults")
    finally:
        if args.down:
            subprocess.run(["bash", "scripts/lab.sh", "down"], cwd=ROOT, check=False)
    figures = summary(rounds)
    args.out.mkdir(parents=True, exist_ok=True)
    document = {"rounds": rounds, "figures": figures, "settings": vars(args) | {"out": str(args.out)}}
    (args.out / "shared_host.json").write_text(json.dumps(document, indent=2) + "\n")
    (args.out / "shared_host.md").write_text(markdown(figures, rounds, args))
    print(markdown(figures, rounds, args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
