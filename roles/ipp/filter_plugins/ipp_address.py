"""Filters about the addresses and networks the controller's firewall lets in."""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Iterable
from typing import Any


def not_networks(values: Iterable[object]) -> list[str]:
    """The entries that are no IPv4 or IPv6 address or network (host bits may be set)."""
    bad = []
    for value in values:
        try:
            ipaddress.ip_network(str(value), strict=False)
        except ValueError:
            bad.append(str(value))
    return bad


def networks(values: Iterable[object]) -> list[str]:
    """The entries as networks with a prefix length, the only form nft takes.

    192.0.2.7 -> 192.0.2.7/32, 10.0.0.0/255.0.0.0 -> 10.0.0.0/8, 10.1.2.3/16 -> 10.1.0.0/16.
    Check the entries with not_networks first: one that is no network raises ValueError.
    """
    return [str(ipaddress.ip_network(str(value), strict=False)) for value in values]


class FilterModule:
    """ipp_not_networks, ipp_networks."""

    def filters(self) -> dict[str, Callable[..., Any]]:
        return {"ipp_not_networks": not_networks, "ipp_networks": networks}
