"""ipp_firewall_resolve: the engine hosts' addresses as the controller host resolves them."""

from __future__ import annotations

import importlib.util

from conftest import ROLES

_spec = importlib.util.spec_from_file_location(
    "ipp_firewall_resolve", ROLES / "ipp_firewall" / "library" / "ipp_firewall_resolve.py"
)
assert _spec and _spec.loader
resolve = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(resolve)

NAMES = {"cl-1": ["192.0.2.11"], "mgmt-2": ["10.0.0.2", "2001:db8::2"], "cl-2": ["192.0.2.12"]}


def lookup(name: str) -> list[str]:
    return NAMES.get(name, [])


def test_a_host_counts_by_its_name_and_its_address() -> None:
    addresses, unresolved = resolve.resolve({"cl-1": "cl-1", "cl-2": "mgmt-2"}, lookup)
    assert addresses == ["10.0.0.2", "192.0.2.11", "192.0.2.12", "2001:db8::2"]
    assert unresolved == []


def test_a_host_resolves_when_either_name_does() -> None:
    assert resolve.resolve({"cl-3": "mgmt-2"}, lookup) == (["10.0.0.2", "2001:db8::2"], [])
    assert resolve.resolve({"cl-1": "nowhere"}, lookup) == (["192.0.2.11"], [])


def test_a_host_unset_address_means_its_name() -> None:
    assert resolve.resolve({"cl-1": ""}, lookup) == (["192.0.2.11"], [])


def test_hosts_that_resolve_nowhere_are_named() -> None:
    addresses, unresolved = resolve.resolve({"cl-9": "", "cl-1": "", "cl-8": "nowhere"}, lookup)
    assert addresses == ["192.0.2.11"]
    assert unresolved == ["cl-9", "cl-8"]


def test_the_system_resolver_reads_literals_and_hosts_file() -> None:
    assert resolve.system_lookup("127.0.0.1") == ["127.0.0.1"]
    assert "127.0.0.1" in resolve.system_lookup("localhost") or "::1" in resolve.system_lookup("localhost")
    assert resolve.system_lookup("no-such-host.invalid") == []
    assert resolve.system_lookup("") == []
