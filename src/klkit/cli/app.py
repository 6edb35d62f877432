"""The typer application: thin wrappers that parse options and call plain functions."""

from __future__ import annotations

import typer

app = typer.Typer(help="klkit: entropy, cross-entropy and KL divergence.", no_args_is_help=True)


def main() -> None:
    app()
