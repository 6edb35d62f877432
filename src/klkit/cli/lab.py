"""``klkit lab``: run the experiments that verify each claim and write the HTML report."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from klkit.cli._errors import one_line_errors
from klkit.cli.app import app


def lab(out: Path, *, quick: bool = False, only: list[str] | None = None, seed: int = 0) -> int:
    """Run the lab into ``out``, print where the report is; returns the exit code (1 if a check fails)."""
    from rich.console import Console

    from klkit.lab.runner import run_lab

    names = [name.strip() for item in only or [] for name in item.split(",") if name.strip()]
    report = run_lab(out, quick=quick, only=names or None, seed=seed)
    console = Console()
    n_av = sum(s.available for s in report.sections)
    console.print(
        f"{n_av - len(report.failed)}/{n_av} available sections pass"
        + (f"; not yet available: {', '.join(report.unavailable)}" if report.unavailable else "")
        + (f"; [red]FAILED: {', '.join(report.failed)}[/]" if report.failed else "")
        + f" ({report.duration_s:.1f} s)",
        highlight=False,
    )
    console.print(f"Report: {report.index_html.resolve()}", highlight=False, soft_wrap=True)
    console.print(f"Results: {report.results_json.resolve()}", highlight=False, soft_wrap=True)
    return 0 if report.passed else 1


@app.command("lab")
@one_line_errors
def lab_command(
    out: Annotated[Path, typer.Option("--out", help="Directory for index.html, results.json and the figures.")] = Path(
        "lab-report"
    ),
    quick: Annotated[bool, typer.Option("--quick", help="Smaller experiments: a minute instead of five.")] = False,
    only: Annotated[
        list[str] | None,
        typer.Option("--only", help="Run only these sections (repeatable or comma-separated): --only coin,asymmetry."),
    ] = None,
    seed: Annotated[int, typer.Option("--seed", help="Seed for every random draw.")] = 0,
) -> None:
    """Run every demonstration and write a self-contained HTML report; exit 1 if any check fails."""
    try:
        code = lab(out, quick=quick, only=only, seed=seed)
    except ModuleNotFoundError as exc:  # matplotlib, scikit-learn, torch: the lab's extra dependencies
        typer.echo(f"error: `klkit lab` needs the package {exc.name!r}, which is not installed. "
                   "Install the lab extra: pip install 'klkit[lab]'.", err=True)
        raise typer.Exit(code=2) from None
    if code:
        raise typer.Exit(code=code)
