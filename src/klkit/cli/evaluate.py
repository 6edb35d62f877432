"""``klkit eval DIR`` (or ``klkit eval vae DIR``): evaluate a run directory.

The run's ``config.json`` names its ``algorithm``; the matching module's
``evaluate(run_dir, ...)`` does the work.
"""

from __future__ import annotations

import importlib
import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from klkit.cli._errors import one_line_errors
from klkit.errors import InvalidArgumentError
from klkit.train.errors import RunDirectoryError

ALGORITHMS = ("vae", "ppo", "trpo")


def read_algorithm(run_dir: Path) -> str:
    """The ``algorithm`` recorded in ``run_dir/config.json``."""
    config = Path(run_dir) / "config.json"
    if not config.is_file():
        raise RunDirectoryError(
            f"`run_dir` must be a klkit run directory holding config.json; found no {config}. "
            "Train first, e.g. `klkit train vae --run-dir DIR`."
        )
    algorithm = json.loads(config.read_text()).get("algorithm")
    if algorithm not in ALGORITHMS:
        raise ValueError(
            f"`{config}` must name an algorithm in {ALGORITHMS}; found {algorithm!r}. "
            "Was this directory written by klkit?"
        )
    return algorithm


def evaluate_run(run_dir: Path, *, algorithm: str | None = None, **options: Any) -> dict[str, Any]:
    """Evaluate ``run_dir`` with its algorithm's ``evaluate``; ``algorithm`` must match if given."""
    recorded = read_algorithm(run_dir)
    if algorithm is not None and algorithm != recorded:
        raise ValueError(f"`{run_dir}` holds a {recorded} run, not {algorithm}; use `klkit eval {recorded} DIR`.")
    module = importlib.import_module(f"klkit.train.{recorded}")
    return module.evaluate(Path(run_dir), **{k: v for k, v in options.items() if v is not None})


@one_line_errors
def eval_command(
    target: Annotated[str, typer.Argument(help="A run directory, or an algorithm (vae, ppo, trpo) followed by one.")],
    run_dir: Annotated[Path | None, typer.Argument(help="The run directory when TARGET is an algorithm.")] = None,
    episodes: Annotated[int | None, typer.Option(help="Episodes to average (ppo, trpo).")] = None,
    k: Annotated[int | None, typer.Option(help="Importance samples per image for log p(x) (vae).")] = None,
    device: Annotated[str | None, typer.Option(help="auto | cpu | cuda: where to evaluate (vae; default cpu).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """Evaluate a trained run: test log-likelihood (vae) or mean episode return (ppo, trpo)."""
    if run_dir is None:
        algorithm, directory = None, Path(target)
    elif target in ALGORITHMS:
        algorithm, directory = target, run_dir
    else:
        raise ValueError(f"`TARGET` must be one of {ALGORITHMS} when a run directory follows; found {target!r}.")
    recorded = read_algorithm(directory)
    if recorded != "vae" and device not in (None, "cpu"):
        raise InvalidArgumentError(
            f"`--device` applies to vae runs; found --device {device} for the {recorded} run in {directory}, "
            "whose policies evaluate on the CPU. Drop --device."
        )
    options: dict[str, Any] = {"episodes": episodes} if recorded != "vae" else {"k": k, "device": device}
    result = evaluate_run(directory, algorithm=algorithm, **options)
    if as_json:
        typer.echo(json.dumps(result, indent=2, default=float))
        return
    table = Table("metric", "value", title=f"{recorded} run {directory}")
    for name, value in result.items():
        if isinstance(value, float):
            table.add_row(name, f"{value:.6g}")
        elif isinstance(value, int | str | bool):
            table.add_row(name, str(value))
        # lists and nested results (per-dimension KL, checks) are in the --json output
    Console().print(table)
    if any(isinstance(v, list | dict) for v in result.values()):
        typer.echo("Per-dimension and nested results: use --json.")


def register(app: typer.Typer) -> None:
    """Add ``klkit eval`` to ``app`` (the ``klkit`` application)."""
    app.command("eval")(eval_command)
