"""The typer application. Each command lives in its own module as a thin wrapper
that parses options and calls one plain, typed function (which tests call directly);
the module's ``register(app)`` adds it here, so imports only point from this module to the
commands. Heavy imports (torch, matplotlib) happen inside the commands, so ``--help`` is fast.
"""

from __future__ import annotations

from typing import Annotated

import typer

from klkit.cli import evaluate, lab, measure, pairs, rl, vae
from klkit.cli._errors import OneLineErrorsGroup

app = typer.Typer(
    cls=OneLineErrorsGroup,
    help="klkit: entropy, cross-entropy and KL divergence, from the formula to the training loop.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
train_app = typer.Typer(help="Train a model (vae, ppo, trpo) into a run directory.", no_args_is_help=True)
app.add_typer(train_app, name="train")
for command in (evaluate, lab, measure, pairs):  # the order of `klkit --help`
    command.register(app)
for command in (rl, vae):
    command.register(train_app)


def _print_version(value: bool) -> None:
    if value:
        from klkit import __version__

        typer.echo(f"klkit {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option("--version", help="Print klkit's version and exit.", is_eager=True, callback=_print_version),
    ] = False,
) -> None:
    """klkit: entropy, cross-entropy and KL divergence, from the formula to the training loop."""


def main() -> None:
    """Console-script entry point."""
    app()
