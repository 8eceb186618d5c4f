"""ipp_jupyter: the deployed cluster for ipyparallel's Cluster API and JupyterLab's panel.

The cluster file is written by the command the roles run (``python -m ipp_jupyter write``), the
profile's ``ipcluster_config.py`` is the role's template rendered by Ansible's own templar, and
the cluster is real: a controller and two engines run as their units run them (tests/cluster.py).
What JupyterLab's panel does is what its server extension does: ``ClusterManager.load_clusters``
for the list, ``Cluster.start_cluster``/``stop_cluster`` for START and STOP (the extension's
REST handlers need jupyter_server, which the project's venv does not hold; docs/jupyter.md says
how they were tried by hand).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import ipp_jupyter
import ipyparallel as ipp
import pytest
import yaml
from ansible.parsing.dataloader import DataLoader
from ansible.template import Templar, trust_as_template
from cluster import Cluster
from conftest import ROLES
from ipyparallel.cluster import ClusterManager

MODULES = str(ROLES / "ipp_install" / "files" / "helpers")
HOSTS = {"node-a": 1, "node-b": 1}


def render(role: str, template: str, **variables: object) -> str:
    """One of the roles' templates, as Ansible renders it."""
    text = (ROLES / role / "templates" / template).read_text()
    templar = Templar(loader=DataLoader(), variables={"ansible_managed": "Ansible managed", **variables})
    rendered: str = templar.template(trust_as_template(text))
    return rendered


def render_ipcluster_config(hosts: dict[str, int]) -> str:
    """Role ipp_profile's ipcluster_config.py for these engine hosts."""
    return render(
        "ipp_profile",
        "ipcluster_config.py.j2",
        ipp_profile="cluster",
        _ipp_profile_engine_counts=hosts,
        ipp_venv_python=sys.executable,
        ipp_shared_home=True,
        ipp_profile_cluster_extra_config="",
    )


def shadow_profile(directory: Path, client: str) -> Path:
    """A shadow profile as role ipp_workstation writes it: the client file, ipcluster_config.py."""
    (directory / "security").mkdir(parents=True)
    (directory / "security" / "ipcontroller-client.json").write_text(client)
    (directory / "ipcluster_config.py").write_text(
        render("ipp_workstation", "ipcluster_config.py.j2", ipp_shadow_profile="shadow", ipp_controller_location="cl-0")
    )
    return directory


def env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": MODULES, "PYTHONWARNINGS": "ignore"}


def write(profile: Path, *args: str, stdin: str | None = None) -> dict[str, Any]:
    """``python -m ipp_jupyter write`` as the roles run it."""
    done = subprocess.run(
        [sys.executable, "-m", "ipp_jupyter", "write", "--profile-dir", str(profile), *args],
        input=stdin,
        capture_output=True,
        text=True,
        env=env(),
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    report: dict[str, Any] = json.loads(done.stdout)
    return report


@pytest.fixture
def ipython(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An IPython directory with profile ``cluster`` as role ipp_profile writes it."""
    root = tmp_path / "ipython"
    profile = root / "profile_cluster"
    (profile / "security").mkdir(parents=True)
    (profile / "ipcluster_config.py").write_text(render_ipcluster_config({"cl-1": 8, "cl-2": 8, "cl-3": 0}))
    monkeypatch.setenv("IPYTHONDIR", str(root))
    return root


# ----- the file -----


def test_the_role_names_the_file_ipyparallel_looks_for() -> None:
    variables = yaml.safe_load((ROLES / "ipp" / "vars" / "main.yml").read_text())
    assert variables["ipp_cluster_file"] == "{{ ipp_security_dir }}/" + f"cluster-{ipp_jupyter.CLUSTER_ID}.json"
    cluster = ipp.Cluster(profile_dir="/p", cluster_id=ipp_jupyter.CLUSTER_ID, load_profile=False)
    assert cluster.cluster_file == str(ipp_jupyter.cluster_file("/p"))


def test_the_engines_are_the_inventory_counts_of_ipcluster_config(ipython: Path) -> None:
    assert ipp_jupyter.engine_hosts(str(ipython / "profile_cluster")) == {"cl-1": 8, "cl-2": 8}
    assert ipp_jupyter.engine_hosts(str(ipython / "nowhere")) == {}


def test_written_once_0600_and_then_unchanged(ipython: Path) -> None:
    profile = ipython / "profile_cluster"
    assert write(profile, "--controller-host", "cl-0", "--check") == {
        "path": str(profile / "security" / "cluster-systemd.json"),
        "changed": True,
        "engines": 16,
    }
    path = profile / "security" / "cluster-systemd.json"
    assert not path.exists()  # --check changes nothing
    assert write(profile, "--controller-host", "cl-0")["changed"]
    assert path.stat().st_mode & 0o777 == 0o600
    assert not write(profile, "--controller-host", "cl-0")["changed"]
    path.chmod(0o644)
    assert write(profile, "--controller-host", "cl-0")["changed"]
    assert path.stat().st_mode & 0o777 == 0o600
    assert write(profile, "--controller-host", "cl-9")["changed"]  # another controller host


def test_from_file_gives_back_exactly_the_file_and_never_rewrites_it(ipython: Path) -> None:
    profile = ipython / "profile_cluster"
    path = Path(write(profile, "--controller-host", "cl-0")["path"])
    text, mtime = path.read_text(), path.stat().st_mtime_ns
    # By profile name (ipcluster_config.py is loaded too) and by path, as the panel's code does.
    for cluster in (
        ipp.Cluster.from_file(profile="cluster", cluster_id="systemd"),
        ipp.Cluster.from_file(str(path)),
    ):
        assert isinstance(cluster, ipp_jupyter.SystemdCluster)
        assert cluster.to_dict() == json.loads(text)
        assert cluster.n == 16 and cluster.controller.running
        assert cluster.controller.host == "cl-0"
        assert cluster.engines["systemd"].hosts == {"cl-1": 8, "cl-2": 8}
    assert (path.read_text(), path.stat().st_mtime_ns) == (text, mtime)


def test_a_workstation_file_is_the_controllers_for_its_own_profile(ipython: Path, tmp_path: Path) -> None:
    controller = Path(write(ipython / "profile_cluster", "--controller-host", "cl-0")["path"])
    shadow = tmp_path / "laptop" / "profile_shadow"
    (shadow / "security").mkdir(parents=True)
    path = Path(write(shadow, "--copy-of", "-", "--paramiko", stdin=controller.read_text())["path"])
    cluster = ipp.Cluster.from_file(str(path))
    assert cluster.profile_dir == str(shadow) and cluster.controller.profile_dir == str(shadow)
    assert cluster.engines["systemd"].hosts == {"cl-1": 8, "cl-2": 8} and cluster.n == 16
    assert cluster.paramiko and cluster.controller.host == "cl-0"
    assert not write(shadow, "--copy-of", str(controller), "--paramiko")["changed"]
    with pytest.raises(SystemExit, match="not a cluster file"):
        ipp_jupyter.copy_of({"cluster": {}})


def test_in_tunnel_mode_the_panels_code_connects_with_paramiko(
    ipython: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    controller = Path(write(ipython / "profile_cluster", "--controller-host", "cl-0")["path"])
    shadow = shadow_profile(tmp_path / "profile_shadow", '{"ssh": "alice@cl-0"}')
    path = write(shadow, "--copy-of", "-", "--paramiko", stdin=controller.read_text())["path"]
    seen: dict[str, Any] = {}
    monkeypatch.setattr(ipp, "Client", lambda info, **kwargs: seen.update(info=info, **kwargs))
    ipp.Cluster.from_file(path).connect_client_sync()
    assert seen["paramiko"] is True and seen["info"] == {"ssh": "alice@cl-0"}


# ----- what the panel lists, and what its buttons do -----


def test_the_panel_lists_it_running_with_its_engines_and_no_default_cluster(ipython: Path) -> None:
    write(ipython / "profile_cluster", "--controller-host", "cl-0")
    (ipython / "profile_default").mkdir()
    clusters = ClusterManager().load_clusters(init_default_clusters=True)  # the panel's GET
    assert sorted(clusters) == ["cluster:systemd", "default:"]
    model = clusters["cluster:systemd"].to_dict()
    # What the extension's handler and the panel read: a controller state, the engine sets' n.
    assert model["controller"]["state"]["state"] == "running"
    assert sum(s["n"] for s in model["engines"]["sets"].values()) == 16


@pytest.mark.parametrize("action", ["stop_cluster", "start_cluster", "stop_engines", "restart_engines"])
def test_start_and_stop_are_refused_with_the_playbooks_and_the_file_stays(ipython: Path, action: str) -> None:
    path = Path(write(ipython / "profile_cluster", "--controller-host", "cl-0")["path"])
    text = path.read_text()
    cluster = ClusterManager().load_clusters(profile="cluster")["cluster:systemd"]
    with pytest.raises(ipp_jupyter.Refused) as refused:
        getattr(cluster, f"{action}_sync")()
    # The panel shows an HTTPError's log_message (anything else is "Unhandled error").
    assert refused.value.status_code == 409 and refused.value.log_message == str(refused.value)
    assert "ipp-controller.service on cl-0" in str(refused.value)
    assert "`ansible-playbook stop.yml`, `start.yml` or `restart.yml`" in str(refused.value)
    assert cluster.controller.running and path.read_text() == text
    for launcher in (cluster.controller, cluster.engines["systemd"]):
        with pytest.raises(ipp_jupyter.Refused):
            launcher.signal(15)


@pytest.fixture
def listening() -> Iterator[int]:
    """A port something answers on, as a running controller's registration port does."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        yield server.getsockname()[1]


def client_file(profile: Path, port: int) -> None:
    (profile / "security" / "ipcontroller-client.json").write_text(
        json.dumps({"location": "127.0.0.1", "registration": port})
    )


def test_the_guard_sees_a_controller_by_its_registration_port(ipython: Path, listening: int) -> None:
    profile = ipython / "profile_cluster"
    assert ipp_jupyter.running_controller(str(profile)) is None  # no client file
    client_file(profile, listening)
    assert "answers at 127.0.0.1:" in str(ipp_jupyter.running_controller(str(profile)))
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        client_file(profile, unused.getsockname()[1])  # nothing listens there
        assert ipp_jupyter.running_controller(str(profile)) is None


def test_the_panels_new_cluster_on_the_profile_is_refused_while_its_controller_runs(
    ipython: Path, listening: int
) -> None:
    profile = ipython / "profile_cluster"
    client_file(profile, listening)
    ours = Path(write(profile, "--controller-host", "cl-0")["path"])
    manager = ClusterManager()
    manager.load_clusters(init_default_clusters=True)
    # The panel's NEW with profile "cluster": its handler gives the id "" when none is listed.
    key, new = manager.new_cluster(profile="cluster", cluster_id="")
    assert new.controller_launcher_class is ipp_jupyter.GuardedControllerLauncher
    with pytest.raises(ipp_jupyter.Refused, match=r"Starting a controller of profile .* refused: one is running"):
        new.start_cluster_sync()
    assert key not in manager.load_clusters(init_default_clusters=True)  # gone at the next refresh
    assert ours.exists() and sorted(p.name for p in (profile / "security").iterdir()) == [
        "cluster-systemd.json",
        "ipcontroller-client.json",
    ]


def test_ipcluster_start_exits_with_the_reason_while_the_controller_runs(ipython: Path, listening: int) -> None:
    client_file(ipython / "profile_cluster", listening)
    done = subprocess.run(
        [str(Path(sys.executable).parent / "ipcluster"), "start", "--profile=cluster"],
        capture_output=True,
        text=True,
        env={**env(), "IPYTHONDIR": str(ipython)},
        timeout=60,
        check=False,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 10, output[-2000:]  # ipcluster's ALREADY_STARTED
    assert "refused: one is running" in output and "ansible-playbook stop.yml" in output


def test_a_shadow_profile_starts_no_controller_over_the_clusters_file(ipython: Path) -> None:
    shadow = shadow_profile(ipython / "profile_shadow", '{"location": "cl-0"}')
    manager = ClusterManager()
    _, new = manager.new_cluster(profile="shadow", cluster_id="")  # the panel's NEW, profile "shadow"
    with pytest.raises(ipp_jupyter.Refused, match="it is a shadow profile"):
        new.start_cluster_sync()
    done = subprocess.run(
        [str(Path(sys.executable).parent / "ipcluster"), "start", "--profile=shadow"],
        capture_output=True,
        text=True,
        env={**env(), "IPYTHONDIR": str(ipython)},
        timeout=60,
        check=False,
    )
    assert done.returncode == 10, (done.stdout + done.stderr)[-2000:]
    assert sorted(p.name for p in (shadow / "security").iterdir()) == ["ipcontroller-client.json"]
    assert (shadow / "security" / "ipcontroller-client.json").read_text() == '{"location": "cl-0"}'


def test_without_a_running_controller_the_guard_launches_ipp_recovery(ipython: Path) -> None:
    cluster = ipp.Cluster(profile="cluster", cluster_id="x", shutdown_atexit=False)
    launcher = cluster.controller_launcher_class(parent=cluster, profile_dir=cluster.profile_dir)
    assert isinstance(launcher, ipp_jupyter.GuardedControllerLauncher)
    assert launcher.controller_cmd == [sys.executable, "-m", "ipp_recovery"]
    # Nothing runs (a unit of another name: this machine may run a real cluster), so start() starts it.
    assert ipp_jupyter.running_controller(cluster.profile_dir, unit="ipp-test-absent.service") is None


# ----- against a real cluster -----


@pytest.fixture(scope="module")
def deployed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Cluster, Path]]:
    """A controller and two engines, profile ``cluster`` of an IPython directory, with the
    role's ipcluster_config.py and the cluster file the role writes."""
    root = tmp_path_factory.mktemp("deployed")
    cluster = Cluster(root)
    cluster.env["PYTHONPATH"] = MODULES
    (cluster.profile / "ipcluster_config.py").write_text(render_ipcluster_config(HOSTS))
    ipython = root / "ipython"
    ipython.mkdir()
    (ipython / "profile_cluster").symlink_to(cluster.profile)  # the profile by its user's path
    cluster.start_controller()
    try:
        # As the role does: the cluster file is written once the controller has its files.
        client_file = cluster.profile / "security" / "ipcontroller-client.json"
        deadline = time.monotonic() + 60
        while not client_file.exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        with pytest.MonkeyPatch.context() as patch:
            patch.setenv("IPYTHONDIR", str(ipython))
            write(ipython / "profile_cluster", "--controller-host", "head")
            yield cluster, ipython
    finally:
        cluster.stop()


def test_from_file_gives_a_client_of_both_engines_and_ipp_client_agrees(deployed: tuple[Cluster, Path]) -> None:
    cluster = ipp.Cluster.from_file(profile="cluster", cluster_id="systemd")
    client = cluster.connect_client_sync()
    try:
        client.wait_for_engines(timeout=60, interactive=False)  # n: the file's, the deployed count
        assert len(client.ids) == 2
        assert client.load_balanced_view().map_sync(abs, range(-5, 5)) == [abs(x) for x in range(-5, 5)]
    finally:
        client.close()
    plain = ipp.Client(profile="cluster", timeout=10)
    try:
        assert len(plain.ids) == 2
    finally:
        plain.close()


def test_a_shadow_profile_with_the_client_file_alone_connects(deployed: tuple[Cluster, Path], tmp_path: Path) -> None:
    _, ipython = deployed
    security = ipython / "profile_cluster" / "security"
    shadow = shadow_profile(tmp_path / "profile_shadow", (security / "ipcontroller-client.json").read_text())
    path = write(shadow, "--copy-of", str(security / "cluster-systemd.json"))["path"]
    client = ipp.Cluster.from_file(path).connect_client_sync()  # the panel's code
    try:
        client.wait_for_engines(timeout=60, interactive=False)
        assert len(client.ids) == 2
    finally:
        client.close()
    done = subprocess.run(
        [sys.executable, "-m", "ipp_jupyter", "check", "--profile-dir", str(shadow), "--guard"],
        capture_output=True,
        text=True,
        env=env(),
        timeout=180,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr[-2000:]
    assert "it is a shadow profile" in json.loads(done.stdout)["refused"]["second_controller"]


def test_the_check_the_scenarios_run_passes(deployed: tuple[Cluster, Path]) -> None:
    _, ipython = deployed
    done = subprocess.run(
        [sys.executable, "-m", "ipp_jupyter", "check", "--profile", "cluster", "--expect", "2", "--guard"],
        capture_output=True,
        text=True,
        env={**env(), "IPYTHONDIR": str(ipython)},
        timeout=180,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr[-2000:]
    report = json.loads(done.stdout)
    assert report["engines"] == 2 and report["panel"] == {"state": "running", "engines": 2, "clusters_of_profile": 1}
    assert sorted(report["refused"]) == [
        "restart_engines",
        "second_controller",
        "start_cluster",
        "stop_cluster",
        "stop_engines",
    ]


def test_the_check_fails_without_an_engine_or_the_file(deployed: tuple[Cluster, Path], tmp_path: Path) -> None:
    _, ipython = deployed

    def check(*args: str) -> tuple[int, dict[str, Any]]:
        done = subprocess.run(
            [sys.executable, "-m", "ipp_jupyter", "check", *args],
            capture_output=True,
            text=True,
            env={**env(), "IPYTHONDIR": str(ipython)},
            timeout=120,
            check=False,
        )
        return done.returncode, json.loads(done.stdout)

    status, report = check("--profile", "cluster", "--expect", "3", "--timeout", "3")
    assert status == 1 and report["problems"] == ["2 engines registered, 3 expected"]
    status, report = check("--profile-dir", str(tmp_path))
    assert status == 2 and "cannot load" in report["error"]


def test_ipcluster_start_on_the_running_cluster_exits_and_starts_nothing(deployed: tuple[Cluster, Path]) -> None:
    cluster, ipython = deployed
    security = cluster.profile / "security"
    before = sorted(p.name for p in security.iterdir())
    done = subprocess.run(
        [str(Path(sys.executable).parent / "ipcluster"), "start", "--profile=cluster", "--daemonize"],
        capture_output=True,
        text=True,
        env={**env(), "IPYTHONDIR": str(ipython)},
        timeout=60,
        check=False,
    )
    assert done.returncode == 10, done.stderr[-2000:]
    assert sorted(p.name for p in security.iterdir()) == before
    client = ipp.Client(profile="cluster", timeout=10)
    try:
        client.wait_for_engines(2, timeout=30, interactive=False)
        assert len(client.ids) == 2  # the running controller and its engines, untouched
    finally:
        client.close()
