"""How many engines a host runs: the one rule every role uses (facts.yml, resources.yml,
engine_counts.yml), tested in tests/test_engines_filter.py."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any


def engine_count(engines: object, cpus: object = None, engine_host: bool = True) -> int | None:
    """The engine count of one host, from its `ipp_engines`.

    0 for a host outside group engines; `ipp_engines` where it is set; where it is unset
    (None: one engine per CPU), the host's CPU count `cpus`. None when that is not known: a
    value that is no whole number >= 0 (preflight refuses it for the hosts of a run; a host a
    run leaves out was not checked), or CPUs not counted (a host that did not answer).
    """
    if not engine_host:
        return 0
    value = cpus if engines is None else engines
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if value >= 0 else None
    text = str(value).strip() if value is not None else ""
    return int(text) if re.fullmatch(r"[0-9]+", text) else None


class FilterModule:
    """ipp_engine_count."""

    def filters(self) -> dict[str, Callable[..., Any]]:
        return {"ipp_engine_count": engine_count}
