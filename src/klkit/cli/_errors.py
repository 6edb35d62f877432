"""One-line error reporting for the CLI: exit code 2, no traceback."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

import typer
from rich.console import Console
from rich.markup import escape
from typer.core import TyperCommand

F = TypeVar("F", bound=Callable[..., Any])
_stderr = Console(stderr=True)


def one_line_errors(func: F) -> F:
    """Turn ValueError/TypeError/NotImplementedError/OSError into 'error: ...' and exit code 2."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except (ValueError, TypeError, NotImplementedError, OSError) as exc:
            print_error(str(exc))
            raise typer.Exit(code=2) from None

    return wrapper  # type: ignore[return-value]


def print_error(message: str) -> None:
    """Print ``error: MESSAGE`` on one line to stderr."""
    # escape: messages quote values such as "[Errno 2]" that rich would take for markup
    one_line = " ".join(message.split())
    _stderr.print(f"[bold red]error:[/] {escape(one_line)}", highlight=False, markup=True, soft_wrap=True)


class OneLineUsageCommand(TyperCommand):
    """A command whose usage errors (unknown option, missing value) also print one line and exit 2.

    Use as ``@app.command("name", cls=OneLineUsageCommand)``; without it typer prints a usage box.
    """

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        try:
            return super().parse_args(ctx, args)
        except typer.TyperException as exc:
            if getattr(exc, "exit_code", 1) != 2:  # only usage errors
                raise
            print_error(f"{exc.format_message()} (see `{ctx.command_path} --help`)")
            raise typer.Exit(code=2) from None
