"""ipp_units_info: the cluster's units on a host, from systemctl's listing and the wants links."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from conftest import ROLES

_spec = importlib.util.spec_from_file_location("ipp_units_info", ROLES / "ipp" / "library" / "ipp_units_info.py")
assert _spec and _spec.loader
info = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(info)

# `systemctl list-units --all --plain --no-legend --type=service ipp-controller.service
# "ipp-engine@*.service"` on an engine host, as systemd 252 prints it (not-found: the engines'
# After=ipp-controller.service on a host without that unit).
LISTING = """ipp-controller.service not-found inactive dead    ipp-controller.service
ipp-engine@1.service   loaded    active   running ipyparallel engine 1 (profile shared)
ipp-engine@2.service   loaded    activating start-pre ipyparallel engine 2 (profile shared)
ipp-engine@3.service   loaded    failed   failed  ipyparallel engine 3 (profile shared)
ipp-engine@4.service   loaded    active   running ipyparallel engine 4 (profile shared)

"""


def test_the_listing_gives_the_loaded_units_states() -> None:
    assert info.parse_list_units(LISTING) == {
        "ipp-engine@1.service": {"active": "active", "sub": "running"},
        "ipp-engine@2.service": {"active": "activating", "sub": "start-pre"},
        "ipp-engine@3.service": {"active": "failed", "sub": "failed"},
        "ipp-engine@4.service": {"active": "active", "sub": "running"},
    }


def test_the_summary_names_what_each_playbook_needs() -> None:
    enabled = ["ipp-engine@5.service", "ipp-engine@1.service", "ipp-engine@2.service", "ipp-engine@1.service"]
    found = info.summary(info.parse_list_units(LISTING), enabled)
    assert found["enabled"] == ["ipp-engine@1.service", "ipp-engine@2.service", "ipp-engine@5.service"]
    # loaded or enabled (a unit enabled but never loaded since is still installed)
    assert found["installed"] == [f"ipp-engine@{n}.service" for n in (1, 2, 3, 4, 5)]
    assert found["active"] == ["ipp-engine@1.service", "ipp-engine@4.service"]
    assert found["up"] == ["ipp-engine@1.service", "ipp-engine@2.service", "ipp-engine@4.service"]
    # running and enabled: 4 runs but is not enabled (a surplus instance), 2 is only starting
    assert found["ready"] == ["ipp-engine@1.service"]


def test_only_cluster_units_count_as_installed() -> None:
    states = {"ipp-engine@.service": {"active": "inactive", "sub": "dead"}}
    found = info.summary(states, ["ipp-metrics.service", "ipp-controller.service"])
    assert found["installed"] == ["ipp-controller.service"]


def test_the_wants_links_that_match(tmp_path: Path) -> None:
    for name in ["ipp-engine@1.service", "ipp-controller.service", "ssh.service", "ipp-engine@.service.d"]:
        (tmp_path / name).symlink_to("/nowhere")  # broken links count: systemd reads the name
    patterns = ["ipp-controller.service", "ipp-engine@*.service"]
    assert info.enabled_units(str(tmp_path), patterns) == ["ipp-controller.service", "ipp-engine@1.service"]
    assert info.enabled_units(str(tmp_path / "missing"), patterns) == []
