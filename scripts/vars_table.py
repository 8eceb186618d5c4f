#!/usr/bin/env python3
"""Print the variable table of docs/variables.md from the roles' meta/argument_specs.yml.

`scripts/vars_table.py --check docs/variables.md` exits 1 when the file's table (between the
markers) differs from the specs; `--write docs/variables.md` replaces it.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
BEGIN = "<!-- BEGIN VARIABLES (scripts/vars_table.py --write docs/variables.md) -->"
END = "<!-- END VARIABLES -->"
# The order a reader meets the roles in.
ROLES = ["ipp", "ipp_install", "ipp_profile", "ipp_controller", "ipp_engine", "ipp_verify"]


def plain(text: str) -> str:
    """Ansible doc markup (I(x), C(x)) as Markdown."""
    text = re.sub(r"[IC]\(([^)]*)\)", r"`\1`", text)
    return text.replace("|", "\\|")


def render_default(value: object) -> str:
    if value is None:
        return "(unset)"
    if value == "":
        return '`""`'
    return f"`{yaml.safe_dump(value, default_flow_style=True).strip().removesuffix('...').strip()}`"


def table(roles_dir: Path = ROOT / "roles") -> str:
    present = sorted(p.name for p in roles_dir.iterdir() if (p / "meta" / "argument_specs.yml").is_file())
    order = [r for r in ROLES if r in present] + [r for r in present if r not in ROLES]
    lines = ["| Variable | Role | Type | Default | Description |", "| --- | --- | --- | --- | --- |"]
    for role in order:
        spec = yaml.safe_load((roles_dir / role / "meta" / "argument_specs.yml").read_text())
        for name, option in spec["argument_specs"]["main"]["options"].items():
            kind = option["type"]
            if option.get("choices"):
                kind += " (" + ", ".join(map(str, option["choices"])) + ")"
            description = " ".join(plain(" ".join(str(d).split())) for d in option["description"])
            lines.append(
                f"| `{name}` | {role} | {kind} | {plain(render_default(option.get('default')))} | {description} |"
            )
    return "\n".join(lines)


def replace_table(text: str, new_table: str) -> str:
    start, end = text.index(BEGIN) + len(BEGIN), text.index(END)
    return text[:start] + "\n" + new_table + "\n" + text[end:]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--check", type=Path, metavar="FILE")
    group.add_argument("--write", type=Path, metavar="FILE")
    args = parser.parse_args(argv)
    if args.check or args.write:
        path: Path = args.check or args.write
        text = path.read_text()
        if BEGIN not in text or END not in text:
            print(f"{path}: no variable table here (its markers are in docs/variables.md)")
            return 1
        updated = replace_table(text, table())
        if args.write:
            path.write_text(updated)
        elif updated != text:
            print(f"{path}: the variable table is out of date: run scripts/vars_table.py --write {path}")
            return 1
        return 0
    print(table())
    return 0


if __name__ == "__main__":
    sys.exit(main())
