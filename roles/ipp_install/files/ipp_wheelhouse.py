#!/usr/bin/env python3
"""Build an offline wheelhouse on the control node for cluster nodes without internet.

The nodes' Python may differ from the control node's, so binary wheels are fetched with
``pip download --only-binary=:all:`` for the nodes' interpreter and platform, and the
packages published only as source (epyc is) are built into pure-Python wheels first.

The requirements are a lock's pins (``--requirement``, a file made by ``scripts/lock.sh``)
and any more given as arguments: the wheelhouse holds exactly their versions.

The wheelhouse is complete when its stamp file names the same requirements: a second call
with the same requirements changes nothing and prints ``unchanged``. Beside the directory
``DEST`` it leaves ``DEST.tar``, one file to copy to each node (much faster than many).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import subprocess
import sys
import tarfile
from pathlib import Path

STAMP = ".ipp-wheelhouse.json"
# Published as source only, and pure Python: built here with `pip wheel --no-deps`.
SOURCE_ONLY = ("epyc",)


def platform_tags(arch: str, glibc: str) -> list[str]:
    """Return the wheel platform tags a node with this glibc and architecture accepts.

    >>> platform_tags("x86_64", "2.19")[:3]
    ['manylinux_2_19_x86_64', 'manylinux_2_18_x86_64', 'manylinux_2_17_x86_64']
    """
    major, minor = (int(part) for part in glibc.split(".")[:2])
    if major != 2:
        raise ValueError(f"unexpected glibc version {glibc!r}")
    tags = [f"manylinux_2_{m}_{arch}" for m in range(minor, 4, -1)]
    legacy = {17: "manylinux2014", 12: "manylinux2010", 5: "manylinux1"}
    tags += [f"{name}_{arch}" for floor, name in legacy.items() if minor >= floor]
    return [*tags, f"linux_{arch}"]


def requirements_digest(requirements: list[str], python: str, arch: str, glibc: str) -> str:
    """A digest naming what the wheelhouse was built for."""
    text = json.dumps([sorted(requirements), python, arch, glibc])
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def read_requirements(path: Path) -> list[str]:
    """The requirements of a pip requirements file (a lock): its lines without comments."""
    lines = (line.split("#", 1)[0].strip() for line in path.read_text().splitlines())
    return [line for line in lines if line]


def is_source_only(requirement: str) -> bool:
    name = requirement.split("==")[0].split(">")[0].split("<")[0].strip().lower()
    return name in SOURCE_ONLY


def build_commands(
    pip: list[str], dest: Path, requirements: list[str], python: str, arch: str, glibc: str
) -> list[list[str]]:
    """The pip commands that fill ``dest`` for the given target."""
    commands = [
        [*pip, "wheel", "--no-deps", "--wheel-dir", str(dest), req] for req in requirements if is_source_only(req)
    ]
    abi = "cp" + python.replace(".", "")
    download = [*pip, "download", "--only-binary=:all:", "--dest", str(dest)]
    download += ["--find-links", str(dest), "--python-version", python]
    download += ["--implementation", "cp", "--abi", abi, "--abi", "abi3", "--abi", "none"]
    for tag in platform_tags(arch, glibc):
        download += ["--platform", tag]
    commands.append(download + requirements)
    return commands


def archive_path(dest: Path) -> Path:
    """The single-file copy of the wheelhouse ``dest``."""
    return dest.with_name(dest.name + ".tar")


def write_archive(dest: Path) -> None:
    """Pack the wheels and the stamp of ``dest`` into ``DEST.tar`` (wheels are compressed)."""
    partial = dest.with_name(dest.name + ".tar.partial")
    with tarfile.open(partial, "w") as archive:
        for path in sorted(dest.iterdir()):
            if path.suffix == ".whl" or path.name == STAMP:
                archive.add(path, arcname=path.name)
    partial.replace(archive_path(dest))


def build(dest: Path, requirements: list[str], python: str, arch: str, glibc: str) -> bool:
    """Fill ``dest``; return False when it was already complete for these requirements."""
    digest = requirements_digest(requirements, python, arch, glibc)
    stamp = dest / STAMP
    if stamp.is_file() and json.loads(stamp.read_text()).get("digest") == digest:
        if archive_path(dest).is_file():
            return False
        write_archive(dest)
        return True
    if dest.exists():
        # Other requirements: start again, so no wheel of an older pin lingers.
        for path in dest.iterdir():
            path.unlink()
    dest.mkdir(parents=True, exist_ok=True)
    for command in build_commands(
        [sys.executable, "-m", "pip", "--disable-pip-version-check"],
        dest,
        requirements,
        python,
        arch,
        glibc,
    ):
        subprocess.run(command, check=True, stdout=sys.stderr)
    stamp.write_text(json.dumps({"digest": digest, "requirements": requirements}) + "\n")
    write_archive(dest)
    return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dest", type=Path, required=True)
    parser.add_argument("--python", required=True, help="the nodes' Python, e.g. 3.11")
    parser.add_argument("--arch", required=True, help="e.g. x86_64 or aarch64")
    parser.add_argument("--glibc", required=True, help="e.g. 2.36")
    parser.add_argument(
        "--requirement", "-r", type=Path, action="append", default=[], help="a lock file (may be repeated)"
    )
    parser.add_argument("requirements", nargs="*", help="more requirements, e.g. scipy==1.16.3")
    args = parser.parse_args(argv)
    requirements = [req for path in args.requirement for req in read_requirements(path)] + args.requirements
    if not requirements:
        parser.error("no requirements: give a lock file (--requirement) or requirements")
    changed = build(args.dest, requirements, args.python, args.arch, args.glibc)
    print("changed" if changed else "unchanged")
    return 0


if __name__ == "__main__":
    sys.exit(main())
