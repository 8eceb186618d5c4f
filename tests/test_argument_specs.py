"""Every public role variable is in defaults/main.yml and meta/argument_specs.yml, alike."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import ROLES

ROLE_DIRS = sorted(path for path in ROLES.iterdir() if (path / "meta" / "argument_specs.yml").is_file())


def load(path: Path) -> dict[str, Any]:
    data = yaml.safe_load(path.read_text()) if path.is_file() else None
    return data or {}


def test_every_role_has_an_argument_spec() -> None:
    assert sorted(path.name for path in ROLES.iterdir()) == [path.name for path in ROLE_DIRS]


@pytest.mark.parametrize("role", ROLE_DIRS, ids=lambda path: path.name)
def test_defaults_and_argument_spec_name_the_same_variables(role: Path) -> None:
    defaults = load(role / "defaults" / "main.yml")
    options = load(role / "meta" / "argument_specs.yml")["argument_specs"]["main"]["options"]
    assert sorted(defaults) == sorted(options)
    prefix = "ipp_" if role.name == "ipp" else role.name + "_"
    assert all(name.startswith(prefix) for name in options), prefix


@pytest.mark.parametrize("role", ROLE_DIRS, ids=lambda path: path.name)
def test_each_option_is_described_and_defaults_agree(role: Path) -> None:
    defaults = load(role / "defaults" / "main.yml")
    options = load(role / "meta" / "argument_specs.yml")["argument_specs"]["main"]["options"]
    for name, spec in options.items():
        assert spec.get("description"), f"{name} has no description"
        assert "type" in spec, f"{name} has no type"
        assert spec.get("default") == defaults[name], f"{name}: spec default differs from defaults/main.yml"
