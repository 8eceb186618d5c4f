#!/usr/bin/env python3
"""Describe a node's interpreter and the venv made from it, as one JSON object.

Run with the interpreter the venv is made from (``ipp_python``), as
``python -c "$(cat ipp_probe.py)" VENV``: the role compares the answer with the lock
(filter ``ipp_venv_plan``). Only the standard library, and Python 3.9 or newer (what the
supported ansible-core allows on targets).

- ``python``, ``arch``, ``glibc``: the interpreter's minor version and platform (the lock and
  the wheelhouse are chosen by them);
- ``venv``: whether the venv exists, the Python minor it was made with (its ``pyvenv.cfg``) and
  whether its interpreter is still there (an in-place OS upgrade removes or replaces it);
- ``packages``: every distribution in the venv, with its version and the names it requires;
  for the cluster's own ``ipp-helpers`` also its modules' RECORD digests (``hashes``).
"""

from __future__ import annotations

import json
import os
import platform
import re
import sys
from importlib import metadata
from typing import Any

# The cluster's own package (files/helpers): its modules' digests are reported too.
HELPERS = "ipp-helpers"


def normalize(name: str) -> str:
    """A package name as the index compares it (PEP 503): ``Jupyter_Core`` is ``jupyter-core``."""
    return re.sub(r"[-_.]+", "-", name).lower()


def requirement_name(requirement: str) -> str:
    """The normalized name a requirement string starts with (``numpy>=1; extra == 'x'``: numpy)."""
    match = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", requirement)
    return normalize(match[1]) if match else ""


def read_pyvenv(venv: str) -> dict[str, str] | None:
    """The keys of ``VENV/pyvenv.cfg``, or None when there is no venv."""
    try:
        with open(os.path.join(venv, "pyvenv.cfg"), encoding="utf-8") as config:
            lines = config.read().splitlines()
    except OSError:
        return None
    pairs = (line.split("=", 1) for line in lines if "=" in line)
    return {key.strip(): value.strip() for key, value in pairs}


def minor(version: str) -> str | None:
    """``3.11`` of ``3.11.2``; None when it is no version."""
    match = re.match(r"(\d+)\.(\d+)", version)
    return f"{match[1]}.{match[2]}" if match else None


def venv_state(venv: str) -> dict[str, Any]:
    """Whether the venv exists, its Python minor, and whether its interpreter is still there."""
    config = read_pyvenv(venv)
    if config is None:
        return {"exists": False, "python": None, "interpreter": False, "executable": ""}
    executable = config.get("executable", "")
    interpreter = os.path.exists(os.path.join(venv, "bin", "python"))  # False when the link dangles
    if executable and not os.path.exists(executable):
        interpreter = False
    version = config.get("version") or config.get("version_info") or ""
    return {"exists": True, "python": minor(version), "interpreter": interpreter, "executable": executable}


def module_hashes(dist: metadata.Distribution) -> dict[str, str]:
    """The RECORD digests of a distribution's top-level modules (``ipp_recovery.py``)."""
    files = dist.files or []
    return {
        str(path): path.hash.value for path in files if path.hash and "/" not in str(path) and str(path).endswith(".py")
    }


def packages(site: str) -> dict[str, dict[str, Any]]:
    """Every distribution in ``site``: version and the names it requires (markers ignored)."""
    if not os.path.isdir(site):
        return {}
    found: dict[str, dict[str, Any]] = {}
    for dist in metadata.distributions(path=[site]):
        name = normalize(dist.metadata["Name"] or "")
        if not name:
            continue
        requires = sorted({requirement_name(req) for req in dist.requires or []} - {""})
        entry: dict[str, Any] = {"version": dist.version, "requires": requires}
        if name == HELPERS:
            entry["hashes"] = module_hashes(dist)
        found[name] = entry
    return found


def probe(venv: str) -> dict[str, Any]:
    python = "{}.{}".format(*sys.version_info[:2])
    state = venv_state(venv)
    site = os.path.join(venv, "lib", f"python{state['python'] or python}", "site-packages")
    return {
        "python": python,
        "arch": platform.machine(),
        "glibc": platform.libc_ver()[1],
        "venv": state,
        "packages": packages(site) if state["exists"] else {},
    }


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: ipp_probe.py VENV", file=sys.stderr)
        return 2
    print(json.dumps(probe(argv[0]), sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
