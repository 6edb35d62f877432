"""The contract between the lab runner and its sections.

Each section module in :mod:`klkit.lab.sections` exposes ``run(ctx: LabContext) -> SectionResult``.
It verifies one claim of the lesson: it measures numbers, turns them into :class:`Check` s
(pass/fail), writes its figures into ``ctx.out_dir`` and returns everything the report needs.
The runner (:mod:`klkit.lab.runner`) times the sections, writes ``results.json`` and ``index.html``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["Check", "LabContext", "SectionResult", "save_figure", "torch_rng", "torch_threads"]


@dataclass(frozen=True)
class LabContext:
    """What a section gets from the runner.

    Attributes
    ----------
    out_dir : Path
        Write figures here (PNG and/or SVG); it exists when ``run`` is called. It is a staging folder
        of the runner's: the figures listed in the result are moved into the report's folder, anything
        else written here is discarded.
    quick : bool
        ``--quick``: the whole lab must finish in <= 60 s on 2 cores (full lab: <= 5 min).
    seed : int
        Seed for every random draw of the section (results are reproducible). Seed local generators
        (``np.random.default_rng``, ``torch.Generator``) or use :func:`torch_rng`; never the caller's
        global ones.
    progress : Callable[[str], None]
        Call with a short status line; it is shown on the terminal's progress display.
    """

    out_dir: Path
    quick: bool
    seed: int
    progress: Callable[[str], None]


@dataclass
class Check:
    """One pass/fail check of a section.

    Attributes
    ----------
    name : str
        What is checked, e.g. ``"KL >= 0 on 10,000 random pairs"``.
    measured : str
        The measured number(s), e.g. ``"min KL = 3.1e-06"``.
    passed : bool
        Whether the measured numbers meet the bar.
    """

    name: str
    measured: str
    passed: bool


@dataclass
class SectionResult:
    """Everything the report shows for one claim.

    Attributes
    ----------
    key : str
        Short identifier (the module name), used in ``--only`` and ``results.json``.
    title : str
        Heading of the section.
    claim : str
        The claim of the lesson being verified (one or two sentences).
    how : str
        How it is checked (method, sample sizes, tolerances).
    checks : list of Check
        The pass/fail checks; the section passes when all of them pass.
    figures : list of Path
        Figure files inside ``ctx.out_dir`` (PNG or SVG), embedded in the report in this order.
    tables_html : list of str
        HTML fragments (``<table>...</table>``) shown under the checks; escape any text you insert.
    numbers : dict
        JSON-serialisable numbers written to ``results.json`` under the section's key.
    intuition : str
        Two or three plain sentences that give the idea before any check (plain text; the report escapes it).
        In ``intuition``, ``example``, ``claim`` and the captions, ``[label](#key)`` links to the section ``key``.
    example : str
        One worked numeric example a student can check by hand, e.g. "a fair coin: H = ln 2 = 0.693 nats = 1 bit"
        (plain text).
    captions : dict of str to str
        For each figure file name (``path.name``), what to notice in it: shown under the figure. A figure without a
        caption is a report error.
    interactive_html : list of str
        HTML fragments of explorable figures, from :meth:`klkit.lab.explore.Explorable.html` (sliders whose numbers
        were computed by klkit when the report was built); shown after the static figures. The report embeds
        plotly.js once.
    """

    key: str
    title: str
    claim: str
    how: str
    checks: list[Check]
    figures: list[Path] = field(default_factory=list)
    tables_html: list[str] = field(default_factory=list)
    numbers: dict[str, Any] = field(default_factory=dict)
    intuition: str = ""
    example: str = ""
    captions: dict[str, str] = field(default_factory=dict)
    interactive_html: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        """True when the section has checks and all of them pass."""
        return bool(self.checks) and all(c.passed for c in self.checks)


def save_figure(ctx: LabContext, fig: Any, name: str, *, fmt: str = "png", dpi: int = 110) -> Path:
    """Save a matplotlib figure as ``ctx.out_dir / f"{name}.{fmt}"``, close it and return the path.

    Examples
    --------
    >>> import tempfile, matplotlib
    >>> matplotlib.use("Agg")
    >>> import matplotlib.pyplot as plt
    >>> ctx = LabContext(Path(tempfile.mkdtemp()), quick=True, seed=0, progress=print)
    >>> fig, ax = plt.subplots()
    >>> save_figure(ctx, fig, "demo").name
    'demo.png'
    """
    import matplotlib.pyplot as plt

    path = Path(ctx.out_dir) / f"{name}.{fmt}"
    fig.savefig(path, format=fmt, dpi=dpi, bbox_inches="tight")
    plt.close(fig)
    return path


@contextlib.contextmanager
def torch_threads(n: int = 1) -> Iterator[None]:
    """Run the block with ``n`` intra-op torch threads, then restore the previous setting.

    Small-tensor work (a few thousand numbers per op) is faster single-threaded: thread
    synchronisation costs more than it saves, 10x more on a busy machine.
    """
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@contextlib.contextmanager
def torch_rng(seed: int) -> Iterator[None]:
    """Run the block with torch's global CPU generator seeded with ``seed``, then restore its state.

    For library calls that draw from the global generator and take no ``generator`` argument
    (e.g. :func:`klkit.fitting.mass_covered`); the caller's random stream is left as it was.

    Examples
    --------
    >>> import torch
    >>> before = torch.get_rng_state()
    >>> with torch_rng(0):
    ...     a = torch.rand(2)
    >>> with torch_rng(0):
    ...     b = torch.rand(2)
    >>> bool(torch.equal(a, b)), bool(torch.equal(before, torch.get_rng_state()))
    (True, True)
    """
    import torch

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield
