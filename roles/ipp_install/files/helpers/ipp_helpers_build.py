#!/usr/bin/env python3
"""Build the ipp-helpers wheel: the same sources always give the same bytes.

Role ipp_install runs it on the control node (``python ipp_helpers_build.py --dest DIR``,
which prints what it built as JSON), copies the wheel to the nodes and installs it with pip,
like every other package of the lock. It is also this project's PEP 517 backend
(``pyproject.toml``), so ``pip install`` and ``pip wheel`` of the directory build the same wheel.

The wheel's version is ``[tool.ipp-helpers] version`` with a digest of the sources as its local
label, e.g. ``1.0.0+0123456789ab``: a changed module is a new version. Its files carry a fixed
date and mode, so a rebuild of unchanged sources leaves the wheel as it was (and a copy to a
node changes nothing).

Only the standard library; Python 3.11 or newer (``tomllib``): the control node has 3.12 or newer.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import io
import json
import os
import re
import sys
import tarfile
import tempfile
import tomllib
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
# The earliest date a zip file can hold, for every member.
ZIP_DATE = (1980, 1, 1, 0, 0, 0)


@dataclass(frozen=True)
class Project:
    """What pyproject.toml says, with the sources read."""

    name: str
    version: str
    summary: str
    requires_python: str
    dependencies: list[str]
    scripts: dict[str, str]
    modules: dict[str, bytes]  # file name -> content
    pyproject: bytes

    @property
    def distribution(self) -> str:
        """The name as in file names (PEP 427): ``ipp_helpers``."""
        return re.sub(r"[-_.]+", "_", self.name).lower()

    @property
    def dist_info(self) -> str:
        return f"{self.distribution}-{self.version}.dist-info"

    @property
    def wheel_name(self) -> str:
        return f"{self.distribution}-{self.version}-py3-none-any.whl"


def source_digest(pyproject: bytes, modules: dict[str, bytes]) -> str:
    """12 hex digits naming these sources: the project file, every module and this builder
    (a change to what it writes is a new version too)."""
    digest = hashlib.sha256(pyproject + b"\0" + Path(__file__).read_bytes())
    for name in sorted(modules):
        digest.update(b"\0" + name.encode() + b"\0" + modules[name])
    return digest.hexdigest()[:12]


def read_project(source: Path = HERE) -> Project:
    """The project in ``source``: its pyproject.toml and the modules it lists."""
    pyproject = (source / "pyproject.toml").read_bytes()
    config = tomllib.loads(pyproject.decode())
    project, tool = config["project"], config["tool"]["ipp-helpers"]
    modules = {f"{name}.py": (source / f"{name}.py").read_bytes() for name in tool["modules"]}
    return Project(
        name=project["name"],
        version=f"{tool['version']}+{source_digest(pyproject, modules)}",
        summary=project["description"],
        requires_python=project["requires-python"],
        dependencies=list(project.get("dependencies", [])),
        scripts=dict(project.get("scripts", {})),
        modules=modules,
        pyproject=pyproject,
    )


def metadata(project: Project) -> bytes:
    """The core metadata (METADATA in the wheel, PKG-INFO in the sdist)."""
    lines = [
        "Metadata-Version: 2.1",
        f"Name: {project.name}",
        f"Version: {project.version}",
        f"Summary: {project.summary}",
        f"Requires-Python: {project.requires_python}",
        *(f"Requires-Dist: {dependency}" for dependency in project.dependencies),
    ]
    return ("\n".join(lines) + "\n").encode()


def record_digest(content: bytes) -> str:
    """A RECORD file's digest of ``content``: urlsafe base64 of its SHA-256, unpadded."""
    return base64.urlsafe_b64encode(hashlib.sha256(content).digest()).rstrip(b"=").decode()


def wheel_files(project: Project) -> dict[str, bytes]:
    """Every file of the wheel, by its path in the wheel, RECORD last."""
    files = dict(sorted(project.modules.items()))
    info = project.dist_info
    files[f"{info}/METADATA"] = metadata(project)
    files[f"{info}/WHEEL"] = (
        b"Wheel-Version: 1.0\nGenerator: ipp_helpers_build\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
    )
    if project.scripts:
        entries = "".join(f"{name} = {target}\n" for name, target in sorted(project.scripts.items()))
        files[f"{info}/entry_points.txt"] = f"[console_scripts]\n{entries}".encode()
    record = [f"{path},sha256={record_digest(content)},{len(content)}" for path, content in files.items()]
    files[f"{info}/RECORD"] = ("\n".join([*record, f"{info}/RECORD,,"]) + "\n").encode()
    return files


def wheel_bytes(project: Project) -> bytes:
    """The wheel as a zip file with a fixed date and mode on every member."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as wheel:
        for path, content in wheel_files(project).items():
            member = zipfile.ZipInfo(path, date_time=ZIP_DATE)
            member.external_attr = 0o100644 << 16
            member.compress_type = zipfile.ZIP_DEFLATED
            wheel.writestr(member, content)
    return buffer.getvalue()


def write_if_changed(path: Path, content: bytes) -> bool:
    """Write ``content`` to ``path`` unless it holds it already; True when written.

    The file is replaced whole (a temporary file renamed), so builds running side by side
    never see half a wheel.
    """
    if path.is_file() and path.read_bytes() == content:
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=path.parent, prefix=".tmp-", delete=False) as temporary:
        temporary.write(content)
    os.chmod(temporary.name, 0o644)
    os.replace(temporary.name, path)
    return True


def build(dest: Path, source: Path = HERE) -> dict[str, Any]:
    """Build the wheel into ``dest``: what was built, whether the file changed, and each module's
    RECORD digest (which the role compares with the installed ones, to restart what runs a
    changed module)."""
    project = read_project(source)
    path = dest / project.wheel_name
    changed = write_if_changed(path, wheel_bytes(project))
    return {
        "changed": changed,
        "name": project.name,
        "version": project.version,
        "requirement": f"{project.name}=={project.version}",
        "wheel": str(path),
        "hashes": {name: record_digest(content) for name, content in sorted(project.modules.items())},
    }


# PEP 517 hooks (pyproject.toml names this module as the backend).
def get_requires_for_build_wheel(config_settings: dict[str, Any] | None = None) -> list[str]:
    return []


def get_requires_for_build_sdist(config_settings: dict[str, Any] | None = None) -> list[str]:
    return []


def build_wheel(
    wheel_directory: str, config_settings: dict[str, Any] | None = None, metadata_directory: str | None = None
) -> str:
    return Path(build(Path(wheel_directory))["wheel"]).name


def build_sdist(sdist_directory: str, config_settings: dict[str, Any] | None = None) -> str:
    """A source archive: the project file, the modules, this backend and PKG-INFO."""
    project = read_project()
    base = f"{project.distribution}-{project.version}"
    files = {
        "pyproject.toml": project.pyproject,
        Path(__file__).name: Path(__file__).read_bytes(),
        "PKG-INFO": metadata(project),
        **project.modules,
    }
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz", format=tarfile.PAX_FORMAT) as archive:
        for name, content in sorted(files.items()):
            member = tarfile.TarInfo(f"{base}/{name}")
            member.size, member.mode, member.mtime = len(content), 0o644, 0
            archive.addfile(member, io.BytesIO(content))
    write_if_changed(Path(sdist_directory) / f"{base}.tar.gz", buffer.getvalue())
    return f"{base}.tar.gz"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dest", type=Path, required=True, help="the directory to build the wheel into")
    arguments = parser.parse_args(argv)
    print(json.dumps(build(arguments.dest), sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
