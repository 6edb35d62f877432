"""One-line error reporting for the CLI: exit code 2, no traceback."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

import typer
from rich.console import Console
from rich.markup import escape

F = TypeVar("F", bound=Callable[..., Any])
_stderr = Console(stderr=True)


def one_line_errors(func: F) -> F:
    """Turn ValueError/TypeError/NotImplementedError/OSError into 'error: ...' and exit code 2."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except (ValueError, TypeError, NotImplementedError, OSError) as exc:
            # escape: messages quote values such as "[Errno 2]" that rich would take for markup
            message = " ".join(str(exc).split())  # always one line
            _stderr.print(f"[bold red]error:[/] {escape(message)}", highlight=False, markup=True, soft_wrap=True)
            raise typer.Exit(code=2) from None

    return wrapper  # type: ignore[return-value]
