"""README.md cannot go stale: its Python examples run and print what it says, its numbers and names
are the code's, and every ``klkit`` command line it shows is one the CLI accepts.
"""

from __future__ import annotations

import re
import shlex
import tomllib
from pathlib import Path

import pytest

from _markdown_doctest import python_blocks, run_markdown_doctest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
TEXT = README.read_text(encoding="utf-8")


def _flat(text: str) -> str:
    return " ".join(text.split())


def test_every_python_block_is_a_doctest():
    """A ```python block without ``>>>`` would be a snippet nothing runs."""
    untested = [line for line, block in python_blocks(README) if ">>>" not in block]
    assert not untested, f"README.md: ```python blocks at lines {untested} have no >>> examples; write them as doctests"


def test_python_examples_print_what_the_readme_says():
    results = run_markdown_doctest(README)
    assert results.attempted > 0


def test_pair_counts_are_the_registry():
    from klkit.cli.pairs import pairs_table

    table = pairs_table()
    found = re.search(r"\((\d+) finite pairs, (\d+) of them missing from torch", _flat(TEXT))
    assert found, "README.md no longer states the registry's counts as '(N finite pairs, M of them missing from torch'"
    klkit_only = sum(1 for r in table["pairs"] if r["finite"] and r["in_torch"] is False)
    stated = (int(found.group(1)), int(found.group(2)))
    assert stated == (table["finite_pairs"], klkit_only), (
        f"README.md says {stated[0]} finite pairs, {stated[1]} missing from torch; `klkit pairs` has "
        f"{table['finite_pairs']} and {klkit_only}: update the sentence"
    )


def test_lab_section_names_are_the_labs():
    from klkit.lab.sections import SECTIONS

    found = re.search(r"`--only` takes these section names: (.*?) \(repeat it", _flat(TEXT))
    assert found, "README.md no longer lists the lab's section names after '`--only` takes these section names:'"
    stated = re.findall(r"`(\w+)`", found.group(1))
    assert stated == list(SECTIONS), f"README.md lists {stated}; the lab has {list(SECTIONS)}"


def test_extras_are_pyprojects():
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["optional-dependencies"]
    install = _flat(TEXT.split("## Install", 1)[1].split("\n## ", 1)[0])
    missing = [name for name in extras if f"`{name}`" not in install]
    assert not missing, f"README.md's Install section does not name the extras {missing}"


def _command_lines() -> list[str]:
    lines = []
    for block in re.findall(r"^```bash\n(.*?)^```", TEXT, re.MULTILINE | re.DOTALL):
        for line in block.splitlines():
            line = line.split(" #", 1)[0].strip()
            if re.match(r"^(\.venv/bin/)?klkit\s", line):
                lines.append(line)
    return lines


@pytest.mark.parametrize("line", _command_lines())
def test_command_line_is_accepted(line, tmp_path, monkeypatch):
    """Each ``klkit`` command in README.md names a real command and options it takes (parsed, not run)."""
    import click
    import typer
    import typer.main

    from klkit.cli.app import app

    monkeypatch.chdir(tmp_path)  # option types that check paths see an empty folder
    args = shlex.split(line)[1:]
    command = typer.main.get_command(app)
    ctx = click.Context(command, info_name="klkit")
    while isinstance(command, click.Group) and args and not args[0].startswith("-"):
        name, command, args = command.resolve_command(ctx, args)
        assert command is not None, f"README.md: `{line}` names no klkit command"
        ctx = click.Context(command, info_name=name, parent=ctx)
    try:
        command.make_context(ctx.info_name, list(args), parent=ctx.parent)
    except (click.exceptions.Exit, typer.Exit):
        pass  # --help
    except click.UsageError as err:
        pytest.fail(f"README.md: `{line}` is not accepted by the CLI: {err.format_message()}")


def test_measure_example_runs():
    """The README's first command prints the table it describes."""
    from typer.testing import CliRunner

    from klkit.cli.app import app

    result = CliRunner().invoke(app, ["measure", "--p", "0.5,0.5", "--q", "0.9,0.1", "--base", "2"])
    assert result.exit_code == 0, result.output
    assert "1.736966 = 1.000000 + 0.736966" in result.output  # H(P,Q) = H(P) + KL(P‖Q) in bits


def test_changelog_and_package_metadata_agree():
    """One version (klkit.__version__, read by hatch), a CHANGELOG entry for it, py.typed and the licence shipped."""
    import klkit

    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    assert project["project"]["dynamic"] == ["version"]
    assert project["tool"]["hatch"]["version"]["path"] == "src/klkit/__init__.py"
    changelog = (ROOT / "CHANGELOG.md").read_text(encoding="utf-8")
    assert f"## [{klkit.__version__}]" in changelog, f"CHANGELOG.md has no entry for version {klkit.__version__}"
    assert (ROOT / "src" / "klkit" / "py.typed").is_file()  # inside the package folder hatch ships whole
    assert "MIT License" in (ROOT / "LICENSE").read_text(encoding="utf-8") and project["project"]["license"] == "MIT"
