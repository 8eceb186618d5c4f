"""Filters about the cluster's systemd units (ipp-controller.service, ipp-engine@N.service)."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from typing import Any

ENGINE_UNIT = re.compile(r"ipp-engine@([0-9]+)\.service")


def engine_numbers(units: Iterable[str]) -> list[int]:
    """The instance numbers N of the ipp-engine@N.service names among `units`, sorted, once each."""
    return sorted({int(match[1]) for unit in units if (match := ENGINE_UNIT.fullmatch(unit))})


class FilterModule:
    """ipp_engine_numbers."""

    def filters(self) -> dict[str, Callable[..., Any]]:
        return {"ipp_engine_numbers": engine_numbers}
