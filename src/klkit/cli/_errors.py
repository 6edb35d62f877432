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
    """Print a user's error as one line 'error: ...' and exit with code 2; let bugs raise.

    A user's error is one that :func:`is_user_error` accepts: an exception class klkit defines
    (:mod:`klkit.errors`, :mod:`klkit.train.errors`), a ``ValueError`` or ``NotImplementedError``
    that klkit's own code raised with its "`name` must be ...; found ..." message, or an
    ``OSError`` (a path that cannot be read or written). A ``TypeError``, ``KeyError``, a
    ``ValueError`` from deep inside numpy or torch, and the like are bugs: they keep their traceback.
    """

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except Exception as exc:
            if not is_user_error(exc):
                raise
            print_error(str(exc))
            raise typer.Exit(code=2) from None

    return wrapper  # type: ignore[return-value]


def is_user_error(exc: BaseException) -> bool:
    """Whether ``exc`` reports a user's mistake (printed on one line) rather than a bug (traceback).

    Examples
    --------
    >>> from klkit.errors import InvalidArgumentError
    >>> is_user_error(InvalidArgumentError("`k` must be positive")), is_user_error(TypeError("bug"))
    (True, False)
    """
    if type(exc).__module__.split(".")[0] == "klkit":  # a class klkit defines for its users
        return True
    if isinstance(exc, OSError):
        return True
    if type(exc) in (ValueError, NotImplementedError):
        return _raised_by_klkit(exc)
    return False


def _raised_by_klkit(exc: BaseException) -> bool:
    """Whether the innermost frame of ``exc``'s traceback is klkit's own code."""
    tb = exc.__traceback__
    if tb is None:
        return False
    while tb.tb_next is not None:
        tb = tb.tb_next
    return str(tb.tb_frame.f_globals.get("__name__", "")).split(".")[0] == "klkit"


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
