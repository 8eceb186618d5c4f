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


class FilterModule:
    """ipp_not_networks."""

    def filters(self) -> dict[str, Callable[..., Any]]:
        return {"ipp_not_networks": not_networks}
