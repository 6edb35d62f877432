"""Code, docstrings and docs say what a thing is; they never point at this project's tracker.

A reference such as "issue 4", "issues 2/5" or "#9" means nothing to a reader of the code or of the
installed package, and goes stale the day the tracker moves. Checked: src/, docs/ (not the build
output), tests/, benchmarks/, README.md and CHANGELOG.md (this file's own examples excepted).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SUFFIXES = {".py", ".md", ".rst", ".txt", ".toml", ".cfg", ".html", ".css", ".js"}
SKIP_DIRS = {"_build", "api", "gallery", "__pycache__"}  # docs/api and docs/gallery are generated

PATTERNS = [
    re.compile(r"\bissues?\s*#?\d+(\s*[/,&]\s*#?\d+)*", re.IGNORECASE),  # issue 4, issues 2/4/5, issue #9
    re.compile(r"\b(?:PR|pull request|ticket|bug)\s*#\s*\d+", re.IGNORECASE),  # PR #12, ticket #3
    re.compile(r"\bGH-\d+\b"),  # GH-12
    re.compile(r"(?<![\w&#/\"'=-])#\d{1,5}(?![\w;:%-])"),  # a bare #9 (not an HTML entity, CSS colour or anchor)
]


def _files() -> list[Path]:
    out = [ROOT / "README.md", ROOT / "CHANGELOG.md"]
    for top in (ROOT / "src", ROOT / "docs", ROOT / "tests", ROOT / "benchmarks"):
        for path in top.rglob("*"):
            if path.is_file() and path.suffix in SUFFIXES and not SKIP_DIRS.intersection(path.relative_to(top).parts):
                out.append(path)
    out.remove(Path(__file__).resolve())  # its own examples of what is refused
    return sorted(out)


def find_references(text: str) -> list[str]:
    """Every tracker-looking reference in ``text``."""
    return [m.group(0) for pattern in PATTERNS for m in pattern.finditer(text)]


@pytest.mark.parametrize(
    "text", ["see issue 4", "Issues 2/4/5/6 asked for this", "fixed in #9.", "(issue #12)", "as PR #3 did", "GH-7"]
)
def test_detects(text):
    assert find_references(text), text


@pytest.mark.parametrize(
    "text",
    [
        "color: #555;",
        "border-left: 6px solid #999;",
        "&#8214;",
        "x = y  # 2 ways",
        "see docs/rl.md#results",
        "the 4 issues with scipy",
        "#!/usr/bin/env python",
    ],
)
def test_ignores(text):
    assert not find_references(text), text


def test_no_tracker_references():
    found = []
    for path in _files():
        for number, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
            found += [f"{path.relative_to(ROOT)}:{number}: {ref!r}" for ref in find_references(line)]
    assert not found, "tracker references (say what the thing is instead):\n" + "\n".join(found)
