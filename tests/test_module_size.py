"""Small modules with one job: no file under src/ has more than 400 lines after ``ruff format``."""

from __future__ import annotations

import pathlib
import subprocess
import sys

import pytest

import klkit

SRC = pathlib.Path(klkit.__file__).parent
MODULES = sorted(SRC.rglob("*.py"))
LIMIT = 400


def test_the_package_has_modules_to_check() -> None:
    assert len(MODULES) > 100 and SRC / "measures.py" in MODULES


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(SRC)))
def test_no_module_over_400_lines_after_formatting(path: pathlib.Path) -> None:
    ruff = pathlib.Path(sys.executable).with_name("ruff")
    if not ruff.exists():
        pytest.skip("ruff is not installed next to this interpreter")
    formatted = subprocess.run(
        [str(ruff), "format", "--line-length", "120", "--stdin-filename", str(path), "-"],
        input=path.read_text(),
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    lines = formatted.count("\n")
    assert lines <= LIMIT, f"{path.relative_to(SRC)}: {lines} lines after ruff format (limit {LIMIT}); split it by job"
