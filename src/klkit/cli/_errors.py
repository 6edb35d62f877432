"""One-line error reporting for the CLI: exit code 2, no traceback."""

from __future__ import annotations

import functools
import re
import sys
import typing
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import typer
from rich.console import Console
from rich.markup import escape
from typer.core import TyperCommand, TyperGroup
from typer.models import OptionInfo

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

    options = spelled_options(func)

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except Exception as exc:
            if not is_user_error(exc):
                raise
            print_error(in_cli_words(str(exc), options))
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


def spelled_options(func: Callable[..., Any]) -> dict[str, str]:
    """A command function's options: Python name -> how the command line spells it (arguments keep their names).

    Examples
    --------
    >>> from typing import Annotated
    >>> def command(q_kind: Annotated[str, typer.Option("--q-kind")] = "probs") -> None: ...
    >>> spelled_options(command)
    {'q_kind': '--q-kind'}
    """
    spelled = {}
    for name, hint in typing.get_type_hints(func, include_extras=True).items():
        for meta in getattr(hint, "__metadata__", ()):
            if isinstance(meta, OptionInfo):
                long = [decl for decl in meta.param_decls or () if decl.startswith("--")]
                spelled[name] = long[0] if long else "--" + name.replace("_", "-")
    return spelled


def in_cli_words(message: str, options: dict[str, str]) -> str:
    """Say a library message in the command line's words: `` `kind` `` -> ``--kind``, ``kind='logits'`` ->
    ``--kind logits``, ``base=2`` -> ``--base 2``, ``klkit.normalize(x)`` -> ``--normalize`` and ``base=math.e or
    None`` -> ``--base e`` (where the command has those options). Names that are not options of the command are left
    as they are.

    Examples
    --------
    >>> in_cli_words("`q_kind` is bad; pass q_kind='logits' or base=2", {"q_kind": "--q-kind", "base": "--base"})
    '`--q-kind` is bad; pass --q-kind logits or --base 2'
    """

    def option(match: re.Match[str]) -> str:
        name = match.group("name")
        return f"`{options[name]}`" if name in options else match.group(0)

    def assignment(match: re.Match[str]) -> str:
        name, value = match.group("name"), match.group("value").strip("'\"")
        return f"{options[name]} {value}" if name in options else match.group(0)

    message = re.sub(r"`(?P<name>[a-z_][a-z0-9_]*)`", option, message)
    message = re.sub(r"\b(?P<name>[a-z_][a-z0-9_]*)=(?P<value>'[^']*'|\"[^\"]*\"|[\w.+-]+)", assignment, message)
    if "normalize" in options:
        message = re.sub(
            r"(call )?klkit\.normalize\(\w*\)( first)?( \(or pass np\.log\(\w+\) with [^)]*\))?",
            f"pass {options['normalize']}",
            message,
        )
    message = message.replace("math.inf", "inf")  # what the command line parses
    if "base" in options:  # nats: the option's default, spelled 'e' on the command line
        message = message.replace(" None (nats)", " e (nats)").replace(
            f"{options['base']} math.e or None", f"{options['base']} e"
        )
    return message


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


class OneLineErrorsGroup(TyperGroup):
    """The root command group: every usage error of every command (unknown command or option, a missing
    argument or value) prints one line ``error: ... (see `klkit CMD --help`)`` on stderr and exits with code 2,
    instead of click's framed usage box.
    """

    def main(
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> Any:
        try:
            code = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except typer.TyperException as exc:  # click's usage and parameter errors
            ctx = getattr(exc, "ctx", None)
            path = ctx.command_path if ctx is not None else (prog_name or "klkit")
            usage = exc.exit_code == 2
            print_error(f"{exc.format_message()} (see `{path} --help`)" if usage else exc.format_message())
            code = exc.exit_code
        except typer.Abort:
            print_error("aborted")
            code = 1
        if not standalone_mode:
            return code
        sys.exit(code if isinstance(code, int) else 0)
