"""The lab: experiments that verify each claim of the lesson, and the HTML report.

Run it with ``klkit lab`` (or ``make lab``); in Python, :func:`klkit.lab.run_lab`.
"""

from __future__ import annotations

from klkit.lab.base import Check, LabContext, SectionResult, save_figure

__all__ = ["Check", "LabContext", "SectionResult", "run_lab", "save_figure"]


def __getattr__(name: str):  # lazy: the runner imports rich and matplotlib
    if name == "run_lab":
        from klkit.lab.runner import run_lab

        return run_lab
    raise AttributeError(f"module 'klkit.lab' has no attribute {name!r}")
