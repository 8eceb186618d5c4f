"""Filters about ipyparallel connection files (``ipcontroller-*.json``)."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any

from ansible.module_utils.parsing.convert_bool import boolean

# Keys of a connection file whose values are ports (an int, or a list of ints).
PORT_KEYS = (
    "registration",
    "control",
    "mux",
    "task",
    "iopub",
    "hb_ping",
    "hb_pong",
    "broadcast",
    "notification",
)


def connection_ports(info: Mapping[str, Any]) -> list[int]:
    """All ports named in a connection file."""

    def ports(value: object) -> Iterator[int]:
        if isinstance(value, int):
            yield value
        elif isinstance(value, list):
            for item in value:
                yield from ports(item)

    return sorted(port for key in PORT_KEYS for port in ports(info.get(key)))


def connection_matches(
    info: Mapping[str, Any], ip: str, location: str, port_min: int, port_max: int, curve: object = False
) -> bool:
    """Whether a connection file was written for these controller settings.

    A controller with ``reuse_files`` keeps its files and ignores changed ``ip``,
    ``location``, ``ports`` or ``enable_curve`` settings, so a file that disagrees must be
    removed. A file written with CurveZMQ names the controller's public key
    (``curve_serverkey``); one written without has none. ``curve`` is read as Ansible reads
    a boolean (``"false"`` from an INI inventory or ``-e`` is false).
    """
    if info.get("interface") != f"tcp://{ip}" or info.get("location") != location:
        return False
    if bool(info.get("curve_serverkey")) != boolean(curve, strict=False):
        return False
    ports = connection_ports(info)
    return bool(ports) and all(int(port_min) <= port <= int(port_max) for port in ports)


class FilterModule:
    """ipp_connection_matches, ipp_connection_ports."""

    def filters(self) -> dict[str, Callable[..., Any]]:
        return {
            "ipp_connection_matches": connection_matches,
            "ipp_connection_ports": connection_ports,
        }
