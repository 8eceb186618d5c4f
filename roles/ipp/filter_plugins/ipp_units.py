"""Filters about the cluster's systemd units (ipp-controller.service, ipp-engine@N.service)."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from typing import Any

ENGINE_UNIT = re.compile(r"ipp-engine@([0-9]+)\.service")


def engine_numbers(units: Iterable[str]) -> list[int]:
    """The instance numbers N of the ipp-engine@N.service names among `units`, sorted, once each."""
    return sorted({int(match[1]) for unit in units if (match := ENGINE_UNIT.fullmatch(unit))})


def unit_states(lines: Iterable[str]) -> dict[str, dict[str, str]]:
    """`systemctl list-units --plain --no-legend` lines (units.yml's ipp_units_lines) as
    {unit: {"active": ..., "sub": ...}}, for the loaded units only: a unit another one names
    is listed "not-found" on hosts without it."""
    states = {}
    for line in lines:
        fields = line.split()
        if len(fields) >= 4 and fields[1] == "loaded":
            states[fields[0]] = {"active": fields[2], "sub": fields[3]}
    return states


class FilterModule:
    """ipp_engine_numbers, ipp_unit_states."""

    def filters(self) -> dict[str, Callable[..., Any]]:
        return {"ipp_engine_numbers": engine_numbers, "ipp_unit_states": unit_states}
