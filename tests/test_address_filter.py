"""The filter that checks ipp_firewall_allow before any change."""

from __future__ import annotations

from ipp_address import FilterModule, not_networks


def test_addresses_and_networks_of_both_families_pass() -> None:
    assert not_networks(["192.0.2.7", "198.51.100.0/24", "10.1.2.3/16", "2001:db8::/32", "::1"]) == []


def test_names_and_impossible_addresses_are_reported() -> None:
    values = ["lab.example", "999.1.1.1", "10.0.0.0/99", ":", "", "192.0.2.7"]
    assert not_networks(values) == ["lab.example", "999.1.1.1", "10.0.0.0/99", ":", ""]


def test_the_filter_is_registered_under_its_name() -> None:
    assert FilterModule().filters()["ipp_not_networks"] is not_networks
