"""The deployed cluster as ipyparallel's ``Cluster`` API and JupyterLab's "Clusters" panel see it.

ipyparallel 9 knows a running cluster by a *cluster file*, ``security/cluster-<id>.json`` in the
profile: ``Cluster.to_dict()`` of the cluster, naming a launcher class for its controller and
one for its engines, each with its state.  ``Cluster.from_file`` rebuilds the cluster from it
(``connect_client_sync()`` then gives a client), and the JupyterLab panel lists every such file
of every profile, with a START or STOP button.  The deployed controller and engines are systemd
units, not processes of an ``ipcluster``, so this module describes them with classes of its own:

- :class:`SystemdCluster`, whose controller is :class:`SystemdControllerLauncher`
  (``ipp-controller.service``) and whose engines are one :class:`SystemdEngineSetLauncher`
  (the ``ipp-engine@`` units of each engine host).  ``connect_client`` works (from the
  profile's ``ipcontroller-client.json``, as ``ipp.Client(profile=...)`` reads it); starting,
  stopping, restarting and signalling refuse with :class:`Refused`, whose message names the
  playbooks: a stop here would fight systemd (which starts the units again), a start would be
  a second controller on the same ports, files and task database.  ipyparallel never rewrites
  or removes the file (:meth:`SystemdCluster.update_cluster_file`): only the deployment does.
- :class:`GuardedControllerLauncher`, named by the profile's ``ipcluster_config.py``:
  ``ipcluster start`` and the panel's new clusters on the deployed profile refuse while its
  controller runs (its unit is active here, or its registration port answers), and start the
  controller as before when it does not (the tutorial's way, after ``stop.yml``).
  :class:`ShadowControllerLauncher`, named by a workstation's shadow profile, always refuses:
  a controller there would write over the cluster's connection file.

:class:`Refused` is a tornado ``HTTPError`` (409): the Jupyter server's API handlers show the
message of such an error to the panel's user, and nothing else ("Unhandled error").

Installed by role ipp_install into every venv (cluster hosts and workstations), beside
ipp-check.  Its command line:

- ``python -m ipp_jupyter write --profile-dir P --controller-host H`` writes the cluster file of
  profile P (0600), the engine hosts and counts read from ``P/ipcluster_config.py``, which role
  ipp_profile writes from the inventory (role ipp_controller runs it);
  ``write --profile-dir SHADOW --copy-of -`` writes a workstation's, with the engines of the
  controller host's file given on stdin (role ipp_workstation).  It prints
  ``{"path": ..., "changed": ...}`` and, with ``--check``, changes nothing.
- ``python -m ipp_jupyter check --profile NAME [--expect N] [--guard]`` loads the file as the
  panel and a researcher do, connects, waits for N engines (the file's count by default), and checks that stop and start
  are refused (and, with ``--guard``, a second controller on the profile); one JSON report,
  exit status 0 when all holds, 1 when not, 2 when the cluster cannot be reached.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from ipyparallel.client.client import Client
from ipyparallel.cluster import Cluster, ClusterManager
from ipyparallel.cluster.app import ALREADY_STARTED, IPClusterStart
from ipyparallel.cluster.launcher import ControllerLauncher, EngineLauncher, LocalControllerLauncher
from tornado.web import HTTPError
from traitlets import Bool, Dict, Float, Integer, Unicode

#: The module's import name: the cluster file names its classes by it (also when run as a script).
MODULE = "ipp_jupyter"
#: The deployed cluster's id: its file is ``security/cluster-systemd.json``.
CLUSTER_ID = "systemd"
#: The id of its one engine set.
ENGINE_SET_ID = "systemd"
CONTROLLER_UNIT = "ipp-controller.service"
ENGINE_UNIT = "ipp-engine@.service"
#: Unit states in which systemd runs the controller or is about to (``Restart=always``).
UNIT_RUNNING_STATES = frozenset({"active", "activating", "reloading"})


class Refused(HTTPError):
    """What the deployed cluster answers to start, stop and signal requests (HTTP 409)."""

    def __init__(self, message: str) -> None:
        super().__init__(409, message, reason="Run by systemd")
        self.message = message

    def __str__(self) -> str:
        return self.message


#: What to do instead, at the end of every refusal.
INSTEAD = (
    "Stop, start or restart the cluster with `ansible-playbook stop.yml`, `start.yml` or `restart.yml` "
    "from the deployment's repository; engine counts are ipp_engines in its inventory (then `site.yml`)."
)


def refusal(action: str, where: str) -> str:
    """The message of a start, stop or signal refused by the deployed cluster."""
    return f"{action} refused: {where}, which systemd runs and starts again when they exit. {INSTEAD}"


def _units_text(host: str, hosts: dict[str, int]) -> str:
    engines = ", ".join(f"{count} on {name}" for name, count in sorted(hosts.items())) or "none"
    controller = f"{CONTROLLER_UNIT} on {host or 'its controller host'}"
    return f"the cluster's controller is {controller}, its engines {ENGINE_UNIT} units ({engines})"


class SystemdControllerLauncher(ControllerLauncher):  # type: ignore[misc]
    """The controller as ``ipp-controller.service`` runs it: connect to it, never start or stop it."""

    # How to_dict() names the class (ipyparallel looks entry points up otherwise; this module has none).
    entrypoint_name = f"{MODULE}.SystemdControllerLauncher"

    unit = Unicode(CONTROLLER_UNIT, help="The systemd unit that runs the controller.").tag(to_dict=True)
    host = Unicode("", help="The controller host (its inventory name).").tag(to_dict=True)
    state: str  # upstream's trait: before, running, after

    @property
    def connection_files(self) -> dict[str, str]:
        """The unit's files: without the cluster id in their names (``ipcontroller-client.json``)."""
        security = os.path.join(self.profile_dir, "security")
        return {kind: os.path.join(security, f"ipcontroller-{kind}.json") for kind in ("client", "engine")}

    async def get_connection_info(self, timeout: float | None = None) -> dict[str, Any]:
        """The client file (a workstation's shadow profile has no other), and the engine file where it exists."""
        wait = self.connection_info_timeout if timeout is None else timeout
        files = self.connection_files
        deadline = time.monotonic() + wait
        while not os.path.exists(files["client"]):
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"No {files['client']} after {wait} s: the controller has not written it "
                    "(deploy with site.yml; on a workstation, run shadow.yml)"
                )
            await asyncio.sleep(0.1)
        info: dict[str, Any] = {}
        for kind, path in files.items():
            if os.path.exists(path):
                with open(path) as f:
                    info[kind] = json.load(f)
        return info

    def _refuse(self, action: str) -> Refused:
        if self.state == "before":
            self.state = "after"  # a launcher made here never ran: no cluster counts it as running
        return Refused(refusal(action, f"the controller is {self.unit} on {self.host or 'its controller host'}"))

    def start(self) -> None:
        raise self._refuse("Starting the controller")

    async def stop(self) -> None:
        raise self._refuse("Stopping the controller")

    def signal(self, sig: int | str) -> None:
        raise self._refuse(f"Signal {sig} to the controller")

    def poll(self) -> None:
        """Still running, as far as ipyparallel can tell (systemd knows better)."""
        return None


class SystemdEngineSetLauncher(EngineLauncher):  # type: ignore[misc]
    """The engines as the ``ipp-engine@`` units run them; ``n`` is their deployed total."""

    entrypoint_name = f"{MODULE}.SystemdEngineSetLauncher"

    unit = Unicode(ENGINE_UNIT, help="The systemd template unit of the engines.").tag(to_dict=True)
    hosts = Dict(value_trait=Integer(), help="Engine units per engine host.").tag(to_dict=True)
    state: str

    def _refuse(self, action: str) -> Refused:
        if self.state == "before":
            self.state = "after"
        return Refused(refusal(action, f"the engines are {self.unit} units ({_units_text('', self.hosts)})"))

    def start(self, n: int | None = None) -> None:
        raise self._refuse("Starting engines")

    async def stop(self) -> None:
        raise self._refuse("Stopping the engines")

    def signal(self, sig: int | str) -> None:
        raise self._refuse(f"Signal {sig} to the engines")

    def poll(self) -> None:
        return None


class SystemdCluster(Cluster):  # type: ignore[misc]
    """The deployed cluster, loaded from its cluster file: a client, but no start or stop."""

    paramiko = Bool(
        False, help="Tunnel with paramiko (a workstation in SSH tunnel mode): connect_client's default."
    ).tag(to_dict=True)

    def update_cluster_file(self) -> None:
        """Never: the deployment writes this file; ipyparallel would remove it once it thinks
        the cluster stopped, and rewrite it from whatever this process believes."""
        return None

    async def connect_client(self, **client_kwargs: object) -> Client:
        """A client of the running controller (``paramiko`` as the shadow profile needs it)."""
        if self.paramiko:
            client_kwargs.setdefault("paramiko", True)
        return await super().connect_client(**client_kwargs)

    def _where(self) -> str:
        host = getattr(self.controller, "host", "")
        hosts: dict[str, int] = {}
        for engine_set in self.engines.values():
            hosts.update(getattr(engine_set, "hosts", {}))
        return _units_text(host, hosts)

    async def start_controller(self, **kwargs: object) -> None:
        raise Refused(refusal("Starting a controller", self._where()))

    async def start_engines(self, n: int | None = None, engine_set_id: str | None = None, **kwargs: object) -> None:
        raise Refused(refusal("Starting engines", self._where()))

    async def start_cluster(self, n: int | None = None) -> None:
        raise Refused(refusal("Starting the cluster", self._where()))

    async def stop_controller(self) -> None:
        raise Refused(refusal("Stopping the controller", self._where()))

    async def stop_engines(self, engine_set_id: str | None = None) -> None:
        raise Refused(refusal("Stopping the engines", self._where()))

    async def stop_cluster(self) -> None:
        raise Refused(refusal("Stopping the cluster", self._where()))

    async def restart_engines(self, engine_set_id: str | None = None) -> None:
        raise Refused(refusal("Restarting the engines", self._where()))

    async def signal_engines(self, signum: int, engine_set_id: str | None = None) -> None:
        raise Refused(refusal(f"Signal {signum} to the engines", self._where()))


def running_controller(profile_dir: str, unit: str = CONTROLLER_UNIT, timeout: float = 2.0) -> str | None:
    """Why a controller of this profile is running (or about to), or None.

    Its unit active (or restarting) on this host, or anything answering at the registration
    port of its client file: the engine hosts and the controller host reach it there.
    """
    try:
        state = subprocess.run(
            ["systemctl", "is-active", unit], capture_output=True, text=True, timeout=10, check=False
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        state = ""
    if state in UNIT_RUNNING_STATES:
        return f"{unit} is {state} on {socket.gethostname()}"
    client_file = Path(profile_dir) / "security" / "ipcontroller-client.json"
    try:
        info = json.loads(client_file.read_text())
        address = (str(info["location"]), int(info["registration"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None
    try:
        with socket.create_connection(address, timeout=timeout):
            return f"the controller of {client_file} answers at {address[0]}:{address[1]}"
    except OSError:
        return None


def refuse_start(launcher: ControllerLauncher, message: str) -> Refused:
    """Refuse a controller launcher's start: the error to raise (``ipcluster start`` exits)."""
    # Not started: the Cluster must not count it as running, nor stop it later. No stop
    # notification either: that would remove the starting cluster's file, which may be
    # another cluster's of the same id.
    launcher.state = "after"
    parent = launcher.parent
    while parent is not None:
        if isinstance(parent, IPClusterStart):
            # `ipcluster start` would log the error of its callback and wait for ever: exit as
            # it does when its own cluster file says the cluster is already running.
            parent.log.critical(message)
            parent.exit(ALREADY_STARTED)
        parent = getattr(parent, "parent", None)
    return Refused(message)


class GuardedControllerLauncher(LocalControllerLauncher):  # type: ignore[misc]
    """``ipcluster``'s controller for the deployed profile: refused while the deployed one runs."""

    entrypoint_name = f"{MODULE}.GuardedControllerLauncher"

    unit = Unicode(CONTROLLER_UNIT, config=True, help="The systemd unit of the deployed controller.")
    probe_timeout = Float(2.0, config=True, help="Seconds to wait for the registration port to answer.")

    def start(self) -> None:
        reason = running_controller(self.profile_dir, self.unit, self.probe_timeout)
        if reason is None:
            super().start()
            return
        raise refuse_start(
            self,
            f"Starting a controller of profile {self.profile_dir} refused: one is running ({reason}), "
            "and a second one would collide with it on its ports, connection files and task database. "
            f"Connect to it instead: ipp.Cluster.from_file(profile_dir={self.profile_dir!r}, "
            f"cluster_id={CLUSTER_ID!r}).connect_client_sync(). To run the profile with ipcluster, "
            "stop the deployed cluster first (`ansible-playbook stop.yml`).",
        )


class ShadowControllerLauncher(ControllerLauncher):  # type: ignore[misc]
    """A workstation's shadow profile: never a controller of its own.

    Its ``ipcontroller-client.json`` is the cluster's: a controller started here would write
    its own over it (ipcluster's default cluster id is ""), and remove it when it stops.
    """

    entrypoint_name = f"{MODULE}.ShadowControllerLauncher"

    def start(self) -> None:
        raise refuse_start(
            self,
            f"Starting a controller of profile {self.profile_dir} refused: it is a shadow profile, whose "
            "ipcontroller-client.json is the deployed cluster's, and a controller here would write its own "
            f"over it. Connect to the cluster: ipp.Cluster.from_file(profile_dir={self.profile_dir!r}, "
            f"cluster_id={CLUSTER_ID!r}).connect_client_sync(). For a cluster on this machine, use "
            "another profile (e.g. default).",
        )


# ----- the cluster file -----


def engine_hosts(profile_dir: str) -> dict[str, int]:
    """The engines per host the inventory asks for, from the profile's ipcluster_config.py."""
    from traitlets.config.loader import PyFileConfigLoader

    path = Path(profile_dir) / "ipcluster_config.py"
    if not path.exists():
        return {}
    config = PyFileConfigLoader(path.name, path=str(path.parent)).load_config()
    engines = config.SSHEngineSetLauncher.get("engines", {})
    return {str(host): int(count) for host, count in dict(engines).items() if int(count) > 0}


def describe(profile_dir: str, controller_host: str, hosts: dict[str, int], paramiko: bool = False) -> dict[str, Any]:
    """The cluster file of the deployed cluster for this profile directory: ipyparallel's own
    ``Cluster.to_dict()``, so that ``Cluster.from_file`` gives back exactly this."""
    total = sum(hosts.values())
    cluster = SystemdCluster(
        profile_dir=profile_dir,
        cluster_id=CLUSTER_ID,
        load_profile=False,
        shutdown_atexit=False,
        n=total,
        paramiko=paramiko,
        controller=SystemdControllerLauncher,
        engines=SystemdEngineSetLauncher,
    )
    common = {"parent": cluster, "profile_dir": cluster.profile_dir, "cluster_id": CLUSTER_ID, "state": "running"}
    cluster.controller = SystemdControllerLauncher(host=controller_host, **common)
    cluster.engines[ENGINE_SET_ID] = SystemdEngineSetLauncher(
        engine_set_id=ENGINE_SET_ID, n=total, hosts=dict(hosts), **common
    )
    description: dict[str, Any] = json.loads(json.dumps(cluster.to_dict()))
    cluster.controller = None
    cluster.engines = {}
    return description


def copy_of(description: dict[str, Any]) -> tuple[str, dict[str, int]]:
    """The controller host and engine hosts of another profile's cluster file (the controller host's)."""
    try:
        host = str(description["controller"]["state"]["host"])
        hosts = description["engines"]["sets"][ENGINE_SET_ID]["hosts"]
        return host, {str(name): int(count) for name, count in hosts.items()}
    except (KeyError, TypeError, ValueError, AttributeError) as error:
        raise SystemExit(f"not a cluster file of the deployed cluster (no {error})") from error


def cluster_file(profile_dir: str) -> Path:
    """Where ipyparallel looks for the deployed cluster (upstream's ``cluster-{id}.json``)."""
    return Path(os.path.abspath(profile_dir)) / "security" / f"cluster-{CLUSTER_ID}.json"


def write(path: Path, description: dict[str, Any], check: bool = False) -> bool:
    """Write the file (0600) unless it already says this; whether it changed (or would)."""
    try:
        same = json.loads(path.read_text()) == description and (path.stat().st_mode & 0o777) == 0o600
    except (OSError, ValueError):
        same = False
    if same or check:
        return not same
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=".cluster-", suffix=".json")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(json.dumps(description, indent=2, sort_keys=True) + "\n")
        os.chmod(temporary, 0o600)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return True


# ----- the check -----


def profile_location(name: str) -> str:
    """The directory of a profile by name, where ipyparallel looks for it ($IPYTHONDIR)."""
    from IPython.core.profiledir import ProfileDir, ProfileDirError
    from IPython.paths import get_ipython_dir

    try:
        found = ProfileDir.find_profile_dir_by_name(get_ipython_dir(), name)  # type: ignore[no-untyped-call]
        location: str = found.location
    except ProfileDirError as error:
        raise SystemExit(f"no profile {name!r} in {get_ipython_dir()}: {error}") from error
    return location


def check(profile_dir: str, expect: int | None, timeout: float, guard: bool) -> tuple[int, dict[str, Any]]:
    """The cluster as the panel and a researcher see it: (exit status, report)."""
    import ipyparallel as ipp

    path = cluster_file(profile_dir)
    report: dict[str, Any] = {"cluster_file": str(path), "problems": []}
    problems: list[str] = report["problems"]
    try:
        before = path.read_text()
        cluster = ipp.Cluster.from_file(profile_dir=profile_dir, cluster_id=CLUSTER_ID)
    except (OSError, ValueError, ImportError) as error:
        report["error"] = f"cannot load {path}: {error}"
        return 2, report
    if not isinstance(cluster, SystemdCluster):
        problems.append(f"{path} loads as {type(cluster).__name__}, not SystemdCluster")

    # The panel's listing: what ClusterManager loads and what the REST handler adds to it.
    clusters = ClusterManager().load_clusters(profile_dirs=[str(path.parent.parent)])
    listed = [c for c in clusters.values() if c.cluster_file == str(path)]
    if listed:
        model = listed[0].to_dict()
        report["panel"] = {
            "state": (model.get("controller") or {}).get("state", {}).get("state", "Stopped"),
            "engines": sum(s.get("n", 0) for s in model["engines"]["sets"].values()),
            "clusters_of_profile": len(clusters),
        }
    else:
        problems.append("ClusterManager does not list the cluster")

    wanted = cluster.n if expect is None else expect
    try:
        client = cluster.connect_client_sync(timeout=timeout)
    except Exception as error:
        report["error"] = f"cannot connect: {type(error).__name__}: {error}"
        return 2, report
    try:
        with contextlib.suppress(TimeoutError):
            client.wait_for_engines(wanted, timeout=timeout, interactive=False)
        report["engines"] = len(client.ids)
        if report["engines"] != wanted:
            problems.append(f"{report['engines']} engines registered, {wanted} expected")
        elif wanted:
            hosts = client[:].apply_async(socket.gethostname).get(timeout=timeout)
            report["hosts"] = {host: hosts.count(host) for host in sorted(set(hosts))}
    finally:
        client.close()

    for action in ("stop_cluster", "start_cluster", "stop_engines", "restart_engines"):
        try:
            getattr(cluster, f"{action}_sync")()
        except Refused as refused:
            report.setdefault("refused", {})[action] = refused.message
        else:
            problems.append(f"{action} was not refused")

    if guard:
        probe = ipp.Cluster(profile_dir=profile_dir, cluster_id=f"check-{os.getpid()}", shutdown_atexit=False)
        try:
            probe.start_controller_sync()
        except Refused as refused:
            report.setdefault("refused", {})["second_controller"] = refused.message
        else:
            problems.append("a second controller of the profile was started")
            probe.stop_cluster_sync()

    if path.read_text() != before:
        problems.append(f"{path} changed while it was used")
    return (1 if problems else 0), report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    writing = commands.add_parser("write", help="write the profile's cluster file")
    writing.add_argument("--profile-dir", required=True)
    source = writing.add_mutually_exclusive_group(required=True)
    source.add_argument("--controller-host", help="engines from the profile's ipcluster_config.py")
    source.add_argument("--copy-of", metavar="FILE", help="the controller host's cluster file ('-': stdin)")
    writing.add_argument("--paramiko", action="store_true", help="clients tunnel with paramiko (SSH mode)")
    writing.add_argument("--check", action="store_true", help="say whether it would change; change nothing")
    checking = commands.add_parser("check", help="connect through the cluster file; check the refusals")
    where = checking.add_mutually_exclusive_group(required=True)
    where.add_argument("--profile", help="a profile name, as ipp.Cluster.from_file(profile=...) finds it")
    where.add_argument("--profile-dir")
    checking.add_argument("--expect", type=int, help="engines expected (default: the file's count)")
    checking.add_argument("--timeout", type=float, default=60)
    checking.add_argument("--guard", action="store_true", help="also try a second controller (refused)")
    args = parser.parse_args(argv)

    if args.command == "write":
        profile_dir = os.path.abspath(args.profile_dir)
        if args.copy_of is not None:
            text = sys.stdin.read() if args.copy_of == "-" else Path(args.copy_of).read_text()
            host, hosts = copy_of(json.loads(text))
        else:
            host, hosts = args.controller_host, engine_hosts(profile_dir)
        path = cluster_file(profile_dir)
        changed = write(path, describe(profile_dir, host, hosts, args.paramiko), args.check)
        print(json.dumps({"path": str(path), "changed": changed, "engines": sum(hosts.values())}))
        return 0
    profile_dir = args.profile_dir or profile_location(args.profile)
    status, report = check(profile_dir, args.expect, args.timeout, args.guard)
    print(json.dumps(report))
    return status


if __name__ == "__main__":
    # Run as ``python -m ipp_jupyter``: use the module's classes under their import name, which
    # the cluster file names (``__main__.SystemdCluster`` would import nowhere else).
    import ipp_jupyter

    sys.exit(ipp_jupyter.main())
