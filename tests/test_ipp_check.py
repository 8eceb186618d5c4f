"""ipp-check against a real local cluster (ipcluster with two engines), no mocks."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC
from pathlib import Path
from typing import Any

import ipp_check
import pytest
from conftest import ROLES

HELPERS = ROLES / "ipp_install" / "files" / "helpers"
# As the ipp-helpers wheel's console script runs it (`from ipp_check import script`), with the
# module on this client's path only: the fixture's engines cannot import it, so a check that
# sent them a reference to it instead of its code would fail.
COMMAND = [sys.executable, "-c", "import sys, ipp_check; sys.exit(ipp_check.script())"]
BIN = Path(sys.executable).parent


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """Two engines of profile `checktest` in a private IPYTHONDIR."""
    if not (BIN / "ipcluster").exists():
        pytest.fail("ipyparallel is not installed in the test environment (requirements-dev.txt)")
    ipython_dir = tmp_path_factory.mktemp("ipython")
    env = {**os.environ, "IPYTHONDIR": str(ipython_dir), "PYTHONWARNINGS": "ignore"}
    subprocess.run(
        [str(BIN / "ipython"), "profile", "create", "--parallel", "checktest"],
        env=env,
        check=True,
        capture_output=True,
    )
    process = subprocess.Popen(
        [str(BIN / "ipcluster"), "start", "--profile=checktest", "-n", "2", "--daemonize=False"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        yield env
    finally:
        subprocess.run(
            [str(BIN / "ipcluster"), "stop", "--profile=checktest"], env=env, capture_output=True, check=False
        )
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
        shutil.rmtree(ipython_dir, ignore_errors=True)


def check(env: dict[str, str], *args: str) -> tuple[int, dict[str, object]]:
    result = subprocess.run(
        [*COMMAND, "--profile", "checktest", *args],
        env={**env, "PYTHONPATH": str(HELPERS)},
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert result.stdout.strip(), result.stderr
    return result.returncode, json.loads(result.stdout)


def test_engines_register_and_every_point_returns_from_this_host(cluster: dict[str, str]) -> None:
    host = socket.gethostname()
    code, report = check(cluster, "--expect", "2", "--hosts", host, "--points", "60", "--timeout", "120")
    assert report["problems"] == []
    assert code == 0
    assert report["engines"] == 2
    experiment = report["experiment"]
    assert isinstance(experiment, dict)
    assert experiment["results"] == 60 and experiment["complete"] and experiment["correct"]
    assert experiment["hosts"] == {host: 60}


def test_an_engine_of_the_units_is_counted_by_the_host_its_identity_names() -> None:
    identities = {0: "cl-1/1/7f3a", 1: "cl-1/2/09bc", 2: "cl-2.example.org/1/aa", 3: "0f8d2c1e-9a4b"}
    assert ipp_check.unit_hosts(identities) == {0: "cl-1", 1: "cl-1", 2: "cl-2.example.org"}


def test_engines_are_counted_per_host(cluster: dict[str, str]) -> None:
    code, report = check(cluster, "--expect", "2", "--by-host", "--timeout", "120")
    assert code == 0
    assert report["by_host"] == {socket.gethostname(): 2}


def test_a_check_leaves_no_results_in_the_hub(cluster: dict[str, str]) -> None:
    """status.yml runs the check every time: its own tasks must not pile up as uncollected results."""
    import ipyparallel

    client = ipyparallel.Client(profile="checktest", ipython_dir=cluster["IPYTHONDIR"], timeout=60)
    try:
        client.wait_for_engines(2, timeout=120)
        before = set(client.hub_history())
        for args in (["--by-host"], ["--versions"]):
            code, report = check(cluster, "--expect", "2", *args, "--timeout", "120")
            assert code == 0, report
        assert set(client.hub_history()) == before
    finally:
        client.close()


def test_engines_are_counted_per_host_when_some_are_missing(cluster: dict[str, str]) -> None:
    code, report = check(cluster, "--expect", "3", "--by-host", "--timeout", "3")
    assert code == 1
    assert report["by_host"] == {socket.gethostname(): 2}


def test_a_wrong_engine_count_and_a_silent_host_are_reported(cluster: dict[str, str]) -> None:
    started = time.monotonic()
    code, report = check(
        cluster, "--expect", "3", "--hosts", f"{socket.gethostname()},cl-9", "--points", "4", "--timeout", "3"
    )
    assert code == 1
    assert report["engines"] == 2
    assert report["problems"] == ["2 engines registered, 3 expected", "no result from cl-9"]
    assert time.monotonic() - started < 60


def test_an_absent_cluster_is_an_error_not_a_hang(tmp_path: Path) -> None:
    env = {**os.environ, "IPYTHONDIR": str(tmp_path), "PYTHONWARNINGS": "ignore"}
    code, report = check(env, "--expect", "1", "--timeout", "2")
    assert code == 2
    assert "no cluster on profile 'checktest'" in str(report["error"])


def test_points_submitted_by_a_client_that_went_away_are_collected_by_another(
    cluster: dict[str, str], tmp_path: Path
) -> None:
    notebook = str(tmp_path / "notebook.json")
    code, report = check(cluster, "--submit", "6", "--seconds", "0.2", "--notebook", notebook, "--timeout", "60")
    assert (code, report) == (0, {"submitted": 6})
    code, report = check(cluster, "--collect", "--notebook", notebook, "--timeout", "60")
    assert code == 0
    assert report["results"] == 6 and report["correct"] and report["pending"] == 0
    assert report["failed"] == {} and report["wait_returned"] is True
    assert report["hosts"] == {socket.gethostname(): 6}


def test_the_task_database_is_counted_without_the_controller(tmp_path: Path) -> None:
    from datetime import datetime

    import ipp_check
    from ipyparallel.controller.sqlitedb import SQLiteDB

    db = SQLiteDB(location=str(tmp_path), filename="tasks.db", session="s")
    now = datetime.now(UTC)
    db.add_record("running", {"engine_uuid": "e1", "submitted": now})
    db.add_record("queued", {"submitted": now})
    db.add_record("done", {"completed": now, "result_content": {"status": "ok"}})
    db.add_record("lost", {"completed": now, "result_content": {"status": "error"}})
    db.add_record("moved", {"submitted": now, "resubmitted": "new-id"})  # runs under its new id
    db._db.commit()
    counts = ipp_check.task_counts(str(tmp_path / "tasks.db"))
    assert counts == {"exists": True, "running": 1, "queued": 1, "completed": 2, "failed": 1}
    assert ipp_check.task_counts(str(tmp_path / "none.db"))["exists"] is False


def test_the_engines_versions_are_compared_with_this_venv(cluster: dict[str, str]) -> None:
    code, report = check(cluster, "--expect", "2", "--versions", "--timeout", "120")
    assert code == 0, report
    assert report["version_differences"] == []
    versions = report["versions"]
    assert isinstance(versions, dict)
    assert versions["python"] == "{}.{}.{}".format(*sys.version_info[:3])
    assert versions["packages"]["ipyparallel"] == "9.2.0"


def test_version_differences_name_the_package_and_the_hosts() -> None:
    import ipp_check

    here: dict[str, Any] = {"python": "3.11.2", "packages": {"epyc": "1.7.2", "numpy": "2.4.6", "paramiko": "5.1.0"}}
    same = {"host": "cl-1", "python": "3.11.7", "packages": {"epyc": "1.7.2", "numpy": "2.4.6"}}
    older = {"host": "cl-2", "python": "3.11.2", "packages": {"epyc": "1.7.1", "numpy": "2.4.6"}}
    newer = {"host": "cl-3", "python": "3.13.5", "packages": {"epyc": "1.7.1", "numpy": "2.5.5", "scipy": "1"}}
    assert ipp_check.version_differences(here, [same, same]) == []
    tools = {"host": "cl-1", "python": "3.11.2", "packages": {"epyc": "1.7.2", "pip": "24.0", "setuptools": "1"}}
    assert ipp_check.version_differences({**here, "packages": {**here["packages"], "pip": "23.0.1"}}, [tools]) == []
    assert ipp_check.version_differences(here, [same, older, newer, older]) == [
        "epyc 1.7.2 here, 1.7.1 there (cl-2, cl-3)",
        "Python 3.11.2 here, 3.13.5 there (cl-3)",
        "numpy 2.4.6 here, 2.5.5 there (cl-3)",
    ]
    report = {"engines": 2, "version_differences": ["epyc 1.7.2 here, 1.7.1 there (cl-2)"]}
    assert ipp_check.problems(report, 2, []) == [
        "versions differ from the engines': epyc 1.7.2 here, 1.7.1 there (cl-2)"
    ]
