"""The lab report in a real browser: headless Chromium loads index.html; every figure and section must be there.

The page carries a tiny inline script that, on the window's load event, marks each figure
``data-loaded="yes"`` when ``naturalWidth > 0`` and counts them on ``<body>``; Chromium's ``--dump-dom``
prints the DOM after that event, so the marks are what the browser actually decoded.
"""

from __future__ import annotations

import base64
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from klkit.lab import runner as lab_runner
from klkit.lab.base import Check, SectionResult
from klkit.lab.report import write_html

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed (CI installs Debian's `chromium`)")

CHEAP = ["surprise", "entropy", "coin", "decomposition", "nonnegativity", "asymmetry"]


def _dump_dom(page: Path, tmp_path: Path) -> str:
    profile = tmp_path / "chromium-profile"
    cmd = [
        CHROMIUM,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--disable-extensions",
        f"--user-data-dir={profile}",
        "--virtual-time-budget=5000",
        "--dump-dom",
        page.resolve().as_uri(),
    ]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "<body" in done.stdout, done.stderr[-2000:]
    return done.stdout


def _figures(dom: str) -> tuple[int, int, list[str]]:
    total = int(re.search(r'data-figures-total="(\d+)"', dom).group(1))
    loaded = int(re.search(r'data-figures-loaded="(\d+)"', dom).group(1))
    marks = re.findall(r'<img [^>]*data-loaded="(yes|no)"', dom)
    return total, loaded, marks


def test_report_renders_with_every_figure_and_section(tmp_path):
    out = tmp_path / "lab"
    report = lab_runner.run_lab(out, quick=True, only=CHEAP, seed=0, show_progress=False)
    assert report.passed
    expected_figures = sum(len(s.figures) for s in report.sections)
    dom = _dump_dom(report.index_html, tmp_path)
    total, loaded, marks = _figures(dom)
    assert total == expected_figures > 0
    assert loaded == total and marks == ["yes"] * total
    for key in CHEAP:
        section = re.search(rf'<section id="section-{key}"[^>]*data-status="(\w+)"', dom)
        assert section is not None, f"section {key} missing from the rendered page"
        assert section.group(1) == "pass"


def test_a_broken_figure_is_detected(tmp_path):
    """Negative control: the check must be able to fail."""
    good = tmp_path / "good.png"
    good.write_bytes(
        base64.b64decode(  # a 1x1 PNG
            "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
        )
    )
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n not really a png")
    sections = [
        SectionResult(key="demo", title="demo", claim="c", how="h", checks=[Check("x", "1", True)], figures=[good, bad])
    ]
    page = write_html(tmp_path / "index.html", sections, {"demo": 0.0}, {"seed": 0})
    total, loaded, marks = _figures(_dump_dom(page, tmp_path))
    assert (total, loaded, marks) == (2, 1, ["yes", "no"])
