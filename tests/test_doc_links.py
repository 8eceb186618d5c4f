"""The README and docs/*.md: every relative link leads to a file, every anchor to a heading.

The README is the front door (issue #14, item 7): short, with the two set-up commands CI runs.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from conftest import ROOT

DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
# The one link out of the repository: epyc's tutorial, which lies beside it on the project's
# machines. Any other (a docs/ file that says ../../roles/ for ../roles/) is a mistake.
OUTSIDE = {"tutorial-sharedfs.rst"}
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")
FENCE = re.compile(r"^```.*?^```", re.M | re.S)
HEADING = re.compile(r"^#{1,6} +(.+?) *#*$", re.M)
README_LINES = 200


def links(document: Path) -> list[str]:
    """The link targets of a Markdown file, outside its code blocks."""
    return LINK.findall(FENCE.sub("", document.read_text()))


def relative(target: str) -> bool:
    return not re.match(r"^[a-z][a-z0-9+.-]*:", target)


def slug(heading: str) -> str:
    """The anchor GitHub gives a heading: lower case, punctuation dropped, spaces as hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def anchors(document: Path) -> set[str]:
    return {slug(heading) for heading in HEADING.findall(FENCE.sub("", document.read_text()))}


def ids(documents: list[Path]) -> list[str]:
    return [str(document.relative_to(ROOT)) for document in documents]


@pytest.mark.parametrize("document", DOCUMENTS, ids=ids(DOCUMENTS))
def test_every_relative_link_leads_to_a_file_of_the_repository(document: Path) -> None:
    broken = []
    for target in filter(relative, links(document)):
        path = target.split("#")[0]
        if not path:
            continue
        resolved = (document.parent / path).resolve()
        if resolved.is_relative_to(ROOT) and not resolved.exists():
            broken.append(target)
    assert broken == [], f"{document.name}: links to nothing"


@pytest.mark.parametrize("document", DOCUMENTS, ids=ids(DOCUMENTS))
def test_only_the_tutorial_link_leaves_the_repository(document: Path) -> None:
    outside = [
        target
        for target in filter(relative, links(document))
        if target.split("#")[0]
        and not (document.parent / target.split("#")[0]).resolve().is_relative_to(ROOT)
        and Path(target.split("#")[0]).name not in OUTSIDE
    ]
    assert outside == [], f"{document.name}: links out of the repository"


@pytest.mark.parametrize("document", DOCUMENTS, ids=ids(DOCUMENTS))
def test_every_anchor_names_a_heading(document: Path) -> None:
    missing = []
    for target in filter(relative, links(document)):
        path, _, anchor = target.partition("#")
        if not anchor:
            continue
        linked = (document.parent / path).resolve() if path else document
        if linked.suffix == ".md" and anchor not in anchors(linked):
            missing.append(target)
    assert missing == [], f"{document.name}: anchors with no heading"


def test_slugs_follow_github() -> None:
    assert slug("Versions: the lock") == "versions-the-lock"
    assert slug("The tutorial's introduction: machines") == "the-tutorials-introduction-machines"
    assert slug("`default`: the tutorial's cluster") == "default-the-tutorials-cluster"


def test_the_readme_is_a_front_door_with_the_commands_ci_runs() -> None:
    readme = (ROOT / "README.md").read_text()
    assert len(readme.splitlines()) <= README_LINES, "long text belongs in docs/, linked from the README"
    assert "```sh\nsudo scripts/setup-dev.sh && sudo scripts/test.sh\n```" in readme
    assert "```sh\nsudo scripts/lab.sh up\n" in readme
    ci = (ROOT / ".ci" / "run").read_text()
    assert "scripts/setup-dev.sh" in ci and "scripts/test.sh" in ci
