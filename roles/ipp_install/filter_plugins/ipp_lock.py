"""Filters that read a package lock and compare it with a venv (role ipp_install).

``ipp_lock_pins``: the ``name==version`` lines of a lock made by ``scripts/lock.sh``.
``ipp_venv_plan``: what the venv described by ``ipp_probe.py`` needs to hold exactly the
requirements and the ipp-helpers wheel: rebuilt (its interpreter is gone or of another minor),
packages installed, surplus packages removed; ``satisfied`` when nothing is to do; and which of
the helpers' modules an install changes (the services that run one restart for it).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from typing import Any

PIN = re.compile(r"([A-Za-z0-9][A-Za-z0-9._-]*)(\[[A-Za-z0-9._,-]*\])?==([A-Za-z0-9.+!_-]+)")
ANY_NAME = re.compile(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)")
# What `python -m venv` puts in every venv: never surplus.
VENV_OWN = frozenset({"pip", "setuptools"})


class LockError(ValueError):
    """A lock line that pins nothing exactly."""


def normalize(name: str) -> str:
    """A package name as the index compares it (PEP 503)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def lock_pins(text: str, path: str = "the lock") -> list[str]:
    """The requirements of a lock, one ``name==version`` per package, in the file's order.

    Comments, ``# via`` annotations and blank lines are skipped; any other line that is not an
    exact pin (a range, an option, a marker) is an error: a lock pins every package exactly.
    """
    pins = []
    for number, line in enumerate(text.splitlines(), start=1):
        requirement = line.split("#", 1)[0].strip()
        if not requirement:
            continue
        if not PIN.fullmatch(requirement):
            raise LockError(f"{path} line {number} is not an exact pin (name==version): {requirement!r}")
        pins.append(requirement)
    return pins


def requirement_name(requirement: str) -> str:
    """The normalized name a requirement starts with ('' when it starts with none)."""
    match = ANY_NAME.match(requirement)
    return normalize(match[1]) if match else ""


def closure(roots: Iterable[str], installed: dict[str, dict[str, Any]]) -> set[str]:
    """The names of ``roots`` and of everything they require, as far as the venv holds them."""
    seen: set[str] = set()
    todo = [name for name in roots if name]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        todo.extend(installed.get(name, {}).get("requires", []))
    return seen


def helpers_changed(installed: dict[str, dict[str, Any]], helpers: dict[str, Any]) -> list[str]:
    """The helpers' modules (``ipp_recovery``) whose installed file is not the built wheel's.

    Both sides are RECORD hashes by file name: the probe's of the installed ipp-helpers, the
    builder's of the wheel. Every module when ipp-helpers is not installed.
    """
    present = installed.get(normalize(helpers["name"]), {}).get("hashes", {})
    built: dict[str, str] = helpers["hashes"]
    return sorted(path.removesuffix(".py") for path, digest in built.items() if present.get(path) != digest)


def venv_plan(probe: dict[str, Any], requirements: list[str], helpers: dict[str, Any] | None = None) -> dict[str, Any]:
    """What the venv needs, from the probe's answer, the requirements (lock pins, extras) and
    the helpers' wheel as ``ipp_helpers_build.py`` described it (its pin joins the requirements).

    - ``rebuild``: the venv exists but its interpreter is gone or of another minor than the
      interpreter it is to be made from (an in-place OS upgrade): delete it and make it again;
    - ``missing``: requirements not installed at their pinned version (an unpinned one always);
    - ``surplus``: installed packages that no requirement pulls in (a lock that dropped one);
    - ``satisfied``: none of these, nothing to do;
    - ``lock_satisfied``: the same for the requirements alone (the wheelhouse holds those);
    - ``lock_missing``: whether a requirement (not the helpers) is missing;
    - ``helpers_changed``: the helpers' modules an install replaces (``[]`` without helpers);
    - ``reason``: why the venv is rebuilt, in words ('' when it is not).
    """
    venv = probe.get("venv", {})
    python = probe.get("python")
    reason = ""
    if venv.get("exists"):
        if venv.get("python") != python:
            reason = f"the venv was made with Python {venv.get('python')}, the interpreter is now {python}"
        elif not venv.get("interpreter"):
            reason = f"the venv's interpreter {venv.get('executable') or 'bin/python'} is gone"
    installed: dict[str, dict[str, Any]] = {} if reason else probe.get("packages", {})
    pins = [*requirements, helpers["requirement"]] if helpers else list(requirements)
    missing = []
    for requirement in pins:
        pin = PIN.fullmatch(requirement.strip())
        if not pin or installed.get(normalize(pin[1]), {}).get("version") != pin[3]:
            missing.append(requirement)
    wanted = closure((requirement_name(requirement) for requirement in pins), installed)
    surplus = sorted(set(installed) - wanted - VENV_OWN)
    lock_missing = any(requirement in missing for requirement in requirements)
    changed = helpers_changed(installed, helpers) if helpers and helpers["requirement"] in missing else []
    return {
        "rebuild": bool(reason),
        "reason": reason,
        "missing": missing,
        "surplus": surplus,
        "satisfied": bool(installed) and not missing and not surplus,
        "lock_satisfied": bool(installed) and not lock_missing and not surplus,
        "lock_missing": lock_missing,
        "helpers_changed": changed,
    }


class FilterModule:
    """ipp_lock_pins, ipp_venv_plan."""

    def filters(self) -> dict[str, Callable[..., Any]]:
        return {"ipp_lock_pins": lock_pins, "ipp_venv_plan": venv_plan}
