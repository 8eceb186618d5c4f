"""The filter that checks ipp_firewall_allow before any change."""

from __future__ import annotations

from ipp_address import FilterModule, networks, not_networks


def test_addresses_and_networks_of_both_families_pass() -> None:
    assert not_networks(["192.0.2.7", "198.51.100.0/24", "10.1.2.3/16", "2001:db8::/32", "::1"]) == []


def test_names_and_impossible_addresses_are_reported() -> None:
    values = ["lab.example", "999.1.1.1", "10.0.0.0/99", ":", "", "192.0.2.7"]
    assert not_networks(values) == ["lab.example", "999.1.1.1", "10.0.0.0/99", ":", ""]


def test_networks_take_the_prefix_form_nft_accepts() -> None:
    values = ["192.0.2.7", "10.0.0.0/255.0.0.0", "10.1.2.3/16", "2001:db8::1/32", "::1"]
    assert networks(values) == ["192.0.2.7/32", "10.0.0.0/8", "10.1.0.0/16", "2001:db8::/32", "::1/128"]


def test_the_filters_are_registered_under_their_names() -> None:
    filters = FilterModule().filters()
    assert filters["ipp_not_networks"] is not_networks
    assert filters["ipp_networks"] is networks
