"""systemd resource control of the cluster's units on shared machines (issue 16).

`ipp_limits` turns the role variables of one host (weights, caps, reserve) and the host's
memory size into the values the unit templates write, and the list of what is wrong with
them: preflight refuses a host whose list is not empty, before any change. Pure functions,
tested in tests/test_resources_filter.py.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

MIB = 1024 * 1024
# systemd's sizes: bytes with an optional K, M, G or T suffix (powers of 1024).
SIZE = re.compile(r"([0-9]+(?:\.[0-9]+)?)([KMGT]?)")
PERCENT = re.compile(r"([0-9]+(?:\.[0-9]+)?)%")
UNITS = {"": 1, "K": 1024, "M": MIB, "G": 1024 * MIB, "T": 1024 * 1024 * MIB}
INFINITY = "infinity"
# The share of an engine's cap at which the kernel starts reclaiming its memory (MemoryHigh),
# before MemoryMax kills it.
HIGH_FRACTION = 0.9


def size_bytes(value: object, total: int) -> int | str | None:
    """A systemd memory size (`4G`, `512M`, `25%` of `total`, a number of bytes, `infinity`) in
    bytes; `"infinity"` for no limit; None when it is no size."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if value >= 0 else None
    text = str(value).strip()
    if text == INFINITY:
        return INFINITY
    if match := PERCENT.fullmatch(text):
        share = float(match[1])
        return int(total * share / 100) if share <= 100 else None
    if match := SIZE.fullmatch(text.upper()):
        return int(float(match[1]) * UNITS[match[2]])
    return None


def unit_size(value: int | str) -> str:
    """Bytes as a unit file writes them: whole MiB (`9830M`), or `infinity`."""
    return value if isinstance(value, str) else f"{max(value // MIB, 1)}M"


def whole(value: object) -> int | None:
    """An int from an int or a string of digits (inventory and -e values), else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    text = str(value).strip()
    return int(text) if re.fullmatch(r"-?[0-9]+", text) else None


def cpu_weight(value: object) -> int | str | None:
    """A CPUWeight= value: 1..10000 or `idle`; None otherwise."""
    if str(value).strip() == "idle":
        return "idle"
    number = whole(value)
    return number if number is not None and 1 <= number <= 10000 else None


def limits(
    settings: Mapping[str, Any], memtotal_mb: object, engines: object, controller: bool, host: str
) -> dict[str, Any]:
    """The resource-control values of one host and what is wrong with its settings.

    `settings` maps the role variables (ipp_engine_cpu_weight, ...) to their values;
    `memtotal_mb` is the host's memory (Ansible's memtotal_mb fact), `engines` its engine
    count, `controller` whether it runs the controller. Errors name the variable and the host.
    """
    errors: list[str] = []
    total = (whole(memtotal_mb) or 0) * MIB
    count = whole(engines) or 0

    def fail(name: str, what: str) -> None:
        errors.append(f"{name} of host {host} {what} (it is '{settings.get(name)}')")

    for name in ("ipp_slice_cpu_weight", "ipp_engine_cpu_weight", "ipp_controller_cpu_weight"):
        if cpu_weight(settings.get(name)) is None:
            fail(name, "must be a CPU weight, a whole number 1..10000 or 'idle'")
    ranges = {
        "ipp_engine_nice": (-20, 19),
        "ipp_engine_oom_score_adjust": (-1000, 1000),
        "ipp_controller_oom_score_adjust": (-1000, 1000),
    }
    for name, (low, high) in ranges.items():
        number = whole(settings.get(name))
        if number is None or not low <= number <= high:
            fail(name, f"must be a whole number {low}..{high}")
    tasks = str(settings.get("ipp_engine_tasks_max")).strip()
    if not (tasks == INFINITY or PERCENT.fullmatch(tasks) or (whole(tasks) or 0) > 0):
        fail("ipp_engine_tasks_max", "must be a number of tasks above 0, a percentage or 'infinity'")
    if settings.get("ipp_engine_oom_policy") not in ("continue", "stop", "kill"):
        fail("ipp_engine_oom_policy", "must be continue, stop or kill")

    def memory(name: str, *, allow_infinity: bool = True) -> int | str | None:
        value = settings.get(name)
        if value is None or value == "":
            return None
        size = size_bytes(value, total)
        if size is None or (size == INFINITY and not allow_infinity):
            fail(
                name,
                "must be a size such as 4G, 512M or 25% (of the host's memory)"
                + (" or 'infinity'" if allow_infinity else ""),
            )
            return None
        if isinstance(size, int) and size > total:
            fail(name, f"is larger than the host's memory ({total // MIB} MiB)")
            return None
        return size

    reserve = memory("ipp_memory_reserve", allow_infinity=False)
    slice_max = memory("ipp_slice_memory_max") if settings.get("ipp_slice_memory_max") != "auto" else "auto"
    engine_max = memory("ipp_engine_memory_max")
    engine_high = memory("ipp_engine_memory_high")
    controller_low = memory("ipp_controller_memory_low", allow_infinity=False)

    # What the engines of this host may use together: the host's memory less the reserve
    # (and less the controller's reserve where it runs too), shared fairly.
    room = total - (reserve if isinstance(reserve, int) else 0)
    room -= controller_low if controller and isinstance(controller_low, int) else 0
    if count and engine_max is None and room < count * 64 * MIB:
        errors.append(
            f"ipp_memory_reserve of host {host} leaves {max(room, 0) // MIB} MiB of its {total // MIB} MiB"
            f" for {count} engines (less than 64 MiB each): lower it, or set ipp_engine_memory_max"
        )
    if engine_max is None:
        engine_max = max(room // max(count, 1), 0)
    if engine_high is None:
        engine_high = INFINITY if engine_max == INFINITY else int(int(engine_max) * HIGH_FRACTION)
    if slice_max == "auto":
        slice_max = max(total - (reserve if isinstance(reserve, int) else 0), 0)

    engine_weight = cpu_weight(settings.get("ipp_engine_cpu_weight"))
    controller_weight = cpu_weight(settings.get("ipp_controller_cpu_weight"))
    if (
        controller
        and count
        and engine_weight is not None
        and controller_weight is not None
        and engine_weight != "idle"
        and (controller_weight == "idle" or int(controller_weight) <= int(engine_weight))
    ):
        errors.append(
            f"ipp_controller_cpu_weight of host {host} ({controller_weight}) must be above"
            f" ipp_engine_cpu_weight ({engine_weight}): the host runs the controller and engines"
        )

    return {
        "errors": errors,
        "memtotal": total,
        "engine_memory_max": unit_size(engine_max),
        "engine_memory_high": unit_size(engine_high),
        "slice_memory_max": unit_size(slice_max) if slice_max is not None else "",
        "controller_memory_low": unit_size(controller_low) if controller_low is not None else "",
    }


def human(value: str | None) -> str:
    """A byte count from `systemctl show` for people (`9.6G`); `infinity` as such; `[not set]`
    (no memory accounting) as `unknown`."""
    if value is None or value == "[not set]":
        return "unknown"
    if not value.isdigit():
        return value
    number = float(value)
    for suffix in ("", "K", "M", "G"):
        if number < 1024:
            return f"{number:.0f}{suffix}" if suffix in ("", "K") else f"{number:.1f}{suffix}"
        number /= 1024
    return f"{number:.1f}T"


def summary(info: Mapping[str, Any]) -> str:
    """One line of the limits and current use of a host's cluster units (ipp_cgroup_info's result)."""
    units: Mapping[str, Mapping[str, str]] = info.get("units") or {}
    parts = []
    if slice_ := units.get("ipp.slice"):
        parts.append(
            f"slice CPUWeight={slice_.get('CPUWeight')} MemoryMax={human(slice_.get('MemoryMax'))}"
            f" using {human(slice_.get('MemoryCurrent'))}"
        )
    if controller := units.get("ipp-controller.service"):
        parts.append(
            f"controller CPUWeight={controller.get('CPUWeight')}"
            f" MemoryLow={human(controller.get('MemoryLow'))}"
            f" OOMScoreAdjust={controller.get('OOMScoreAdjust')}"
            f" using {human(controller.get('MemoryCurrent'))}"
        )
    engines = [props for name, props in sorted(units.items()) if name.startswith("ipp-engine@")]
    if engines:
        first = engines[0]
        used = [int(props["MemoryCurrent"]) for props in engines if props.get("MemoryCurrent", "").isdigit()]
        use = f"using {human(str(sum(used)))} (largest {human(str(max(used)))})" if used else "use unknown"
        parts.append(
            f"{len(engines)} engines CPUWeight={first.get('CPUWeight')} Nice={first.get('Nice')}"
            f" MemoryHigh={human(first.get('MemoryHigh'))} MemoryMax={human(first.get('MemoryMax'))}"
            f" TasksMax={first.get('TasksMax')} OOMScoreAdjust={first.get('OOMScoreAdjust')} {use}"
        )
    missing = info.get("not_enforced") or []
    parts.append(f"not enforced here: {', '.join(missing)}" if missing else "enforced")
    return "; ".join(parts)


class FilterModule:
    """ipp_limits, ipp_resources_summary."""

    def filters(self) -> dict[str, Callable[..., Any]]:
        return {"ipp_limits": limits, "ipp_resources_summary": summary}
