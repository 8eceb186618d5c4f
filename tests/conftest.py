"""Shared paths for the tests."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ROLES = ROOT / "roles"

# The Python files the roles ship are plain scripts and plugins, not a package.
for folder in (ROLES / "ipp_install" / "files", ROLES / "ipp_controller" / "filter_plugins"):
    sys.path.insert(0, str(folder))
