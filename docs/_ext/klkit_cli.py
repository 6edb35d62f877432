"""``.. klkit-cli-help::`` — every ``klkit`` command's ``--help``, taken from the typer app at build time.

The options, defaults and help texts on the CLI page are the ones the installed ``klkit`` prints, so a
new command or option shows up without editing the docs.
"""

from __future__ import annotations

from typing import Any

from docutils import nodes
from sphinx.application import Sphinx
from sphinx.util.docutils import SphinxDirective


def _commands(group: Any, path: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """Every leaf command's path, depth first, in the order ``klkit --help`` lists them."""
    out = []
    for name in sorted(group.commands):
        command = group.commands[name]
        if getattr(command, "hidden", False):
            continue
        if hasattr(command, "commands"):
            out += _commands(command, (*path, name))
        else:
            out.append((*path, name))
    return out


def _help(path: tuple[str, ...]) -> str:
    from typer.testing import CliRunner

    from klkit.cli.app import app

    result = CliRunner().invoke(
        app, [*path, "--help"], env={"COLUMNS": "100", "NO_COLOR": "1", "TERM": "dumb"}, color=False
    )
    if result.exit_code != 0:
        raise RuntimeError(f"`klkit {' '.join(path)} --help` exited {result.exit_code}: {result.output}")
    return "\n".join(line.rstrip() for line in result.output.strip("\n").splitlines())


class CliHelp(SphinxDirective):
    """One subsection per command: its name as the title and its ``--help`` as a literal block."""

    def run(self) -> list[nodes.Node]:
        import typer.main

        from klkit.cli.app import app

        group = typer.main.get_command(app)
        out: list[nodes.Node] = []
        for path in _commands(group):
            name = " ".join(("klkit", *path))
            section = nodes.section(ids=[nodes.make_id(name)])
            section += nodes.title(text=name)
            section += nodes.literal_block(text=_help(path), language="text")
            out.append(section)
        return out


def setup(app: Sphinx) -> dict[str, Any]:
    app.add_directive("klkit-cli-help", CliHelp)
    return {"parallel_read_safe": True, "parallel_write_safe": True, "version": "1"}
