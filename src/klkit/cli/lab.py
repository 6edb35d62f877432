"""``klkit lab``: run the experiments that verify each claim and write the HTML report."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from klkit.cli._errors import one_line_errors
from klkit.lab.sections import SECTIONS

ONLY_HELP = (
    "Run only these sections (repeatable or comma-separated), e.g. --only coin,asymmetry. "
    f"Sections: {', '.join(SECTIONS)}."
)


def section_names(only: list[str] | None) -> list[str]:
    """Split repeated and comma-separated ``--only`` values into names (empty items dropped).

    Examples
    --------
    >>> section_names(["coin,asymmetry", " vae "])
    ['coin', 'asymmetry', 'vae']
    """
    return [name.strip() for item in only or [] for name in item.split(",") if name.strip()]


def lab(out: Path, *, quick: bool = False, only: list[str] | None = None, seed: int = 0) -> int:
    """Run the lab into ``out``, print where the report is; returns the exit code (1 if a section fails).

    A section fails when a check fails, when it crashes, or when it cannot run (a missing module or
    extra); each failure is printed with its reason.
    """
    from rich.console import Console
    from rich.markup import escape

    from klkit.lab.runner import run_lab

    names = section_names(only)
    report = run_lab(out, quick=quick, only=names or None, seed=seed)
    console = Console()
    n = len(report.sections)
    console.print(
        f"{n - len(report.failed)}/{n} sections pass"
        + (f"; [red]FAILED: {', '.join(report.failed)}[/]" if report.failed else "")
        + (f"; left out: {', '.join(report.left_out)}" if report.left_out else "")
        + f" ({report.duration_s:.1f} s)",
        highlight=False,
    )
    for key, why in report.why_failed().items():
        console.print(f"[red]FAIL[/] {key}: {escape(why)}", highlight=False, soft_wrap=True)
    console.print(f"Report: {report.index_html.resolve()}", highlight=False, soft_wrap=True)
    console.print(f"Results: {report.results_json.resolve()}", highlight=False, soft_wrap=True)
    return 0 if report.passed else 1


@one_line_errors
def lab_command(
    out: Annotated[Path, typer.Option("--out", help="Directory for index.html, results.json and the figures.")] = Path(
        "lab-report"
    ),
    quick: Annotated[bool, typer.Option("--quick", help="Smaller experiments: a minute instead of five.")] = False,
    only: Annotated[list[str] | None, typer.Option("--only", help=ONLY_HELP)] = None,
    seed: Annotated[int, typer.Option("--seed", help="Seed for every random draw.")] = 0,
) -> None:
    """Run every demonstration and write a self-contained HTML report.

    Exit 1 if a section fails: a failing check, a crash, or a missing module or extra.
    Exit 2 for an unknown --only name or a missing lab dependency.
    """
    try:
        code = lab(out, quick=quick, only=only, seed=seed)
    except ModuleNotFoundError as exc:  # matplotlib, rich: what the runner itself needs
        typer.echo(
            f"error: `klkit lab` needs the package {exc.name!r}, which is not installed. "
            "Install the lab extra: pip install 'klkit[lab]'.",
            err=True,
        )
        raise typer.Exit(code=2) from None
    if code:
        raise typer.Exit(code=code)


def register(app: typer.Typer) -> None:
    """Add ``klkit lab`` to ``app`` (the ``klkit`` application)."""
    app.command("lab")(lab_command)
