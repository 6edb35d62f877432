"""``klkit lab`` through typer's CliRunner: section names, sections that cannot run, reused output folders."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import types
from pathlib import Path

import pytest
from typer.testing import CliRunner

from klkit.cli.app import app
from klkit.lab import runner as lab_runner
from klkit.lab.base import Check, SectionResult, save_figure
from klkit.lab.sections import SECTIONS

CLI = CliRunner()
README = Path(__file__).resolve().parents[1] / "README.md"


def _fake_section(monkeypatch, key, run):
    module = types.ModuleType(f"klkit.lab.sections.{key}")
    module.run = run
    monkeypatch.setitem(sys.modules, module.__name__, module)


def _plot_section(key: str, names: list[str], extra: str | None = None):
    """A section that saves one figure per name (and optionally an unlisted file) and passes."""

    def run(ctx):
        import matplotlib.pyplot as plt

        figures = []
        for name in names:
            fig, ax = plt.subplots(figsize=(1, 1))
            ax.plot([0, 1])
            figures.append(save_figure(ctx, fig, name))
        if extra:
            (ctx.out_dir / extra).write_text("scratch")
        return SectionResult(key=key, title=key, claim="c", how="h", checks=[Check("x", "1", True)], figures=figures)

    return run


# ---- section names: --only coins is rejected with the valid names; --help and README list the same names
def test_an_unknown_section_name_is_one_line_listing_the_valid_names(tmp_path):
    out = tmp_path / "never-created"
    result = CLI.invoke(app, ["lab", "--out", str(out), "--only", "coins"])
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert len(lines) == 1, result.output
    assert "found unknown 'coins' (did you mean 'coin'?)" in lines[0]
    assert f"Choose from: {', '.join(SECTIONS)}." in lines[0]
    assert not out.exists()  # nothing is run or written for a mistyped name


def test_help_lists_every_section_name():
    result = CLI.invoke(app, ["lab", "--help"], env={"COLUMNS": "400", "TERMINAL_WIDTH": "400"})
    assert result.exit_code == 0
    text = " ".join(re.sub(r"[│╭╮╰╯─]", " ", result.output).split())
    assert f"Sections: {', '.join(SECTIONS)}." in text


def test_readme_names_the_sections_as_the_cli_accepts_them():
    text = " ".join(README.read_text(encoding="utf-8").split())
    lab = text[text.index("## The lab") :]
    lab = lab[: lab.index("## ", 3)]
    listed = re.search(r"`--only` takes these section names: ([^.]*)\.", lab)
    assert listed is not None, "README's lab paragraph should list the --only names"
    assert re.findall(r"`(\w+)`", listed.group(1)) == list(SECTIONS)


# ---- a section that cannot run fails; one left out with --only does not
def test_a_missing_extra_fails_the_lab_and_says_which_extra(tmp_path, monkeypatch):
    def run(ctx):
        raise ModuleNotFoundError("No module named 'gymnasium'", name="gymnasium")

    _fake_section(monkeypatch, "needs_rl", run)
    monkeypatch.setattr(lab_runner, "SECTIONS", ("coin", "needs_rl"))
    result = CLI.invoke(app, ["lab", "--out", str(tmp_path), "--only", "coin,needs_rl"])
    assert result.exit_code == 1, result.output
    output = " ".join(result.output.split())
    assert "1/2 sections pass; FAILED: needs_rl" in output
    assert (
        "FAIL needs_rl: the section's modules can be imported: ModuleNotFoundError: No module named "
        "'gymnasium'; install the `rl` extra: pip install 'klkit[rl]'" in output
    )
    data = json.loads((tmp_path / "results.json").read_text())
    assert data["passed"] is False and data["sections"]["needs_rl"]["status"] == "fail"
    assert "klkit[rl]" in data["sections"]["needs_rl"]["checks"][0]["measured"]
    assert "klkit[rl]" in (tmp_path / "index.html").read_text()


def test_the_trpo_section_without_gymnasium_fails_with_exit_1(tmp_path):
    """The real section, in a fresh interpreter where gymnasium cannot be imported."""
    out = tmp_path / "r"
    code = (
        "import sys; sys.modules['gymnasium'] = None\n"
        "from typer.testing import CliRunner\nfrom klkit.cli.app import app\n"
        f"r = CliRunner().invoke(app, ['lab', '--quick', '--only', 'trpo', '--out', {str(out)!r}])\n"
        "print(r.output)\nsys.exit(r.exit_code)\n"
    )
    env = {**os.environ, "CI": "1"}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=env)
    assert done.returncode == 1, done.stdout + done.stderr
    output = " ".join(done.stdout.split())
    assert "FAILED: trpo" in output and "gymnasium" in output and "klkit[rl]" in output, output
    assert json.loads((out / "results.json").read_text())["sections"]["trpo"]["status"] == "fail"


def test_sections_left_out_with_only_are_not_failures(tmp_path):
    result = CLI.invoke(app, ["lab", "--out", str(tmp_path), "--quick", "--only", "coin"])
    assert result.exit_code == 0, result.output
    assert "1/1 sections pass" in result.output and "left out: surprise, entropy" in result.output
    data = json.loads((tmp_path / "results.json").read_text())
    assert list(data["sections"]) == ["coin"] and data["left_out"] == [k for k in SECTIONS if k != "coin"]
    assert "Not run (left out with --only)" in (tmp_path / "index.html").read_text()


# ---- a reused output folder: the runner's old figures go, everything else stays
def test_only_on_a_reused_folder_leaves_no_stale_figures(tmp_path, monkeypatch):
    _fake_section(monkeypatch, "first", _plot_section("first", ["first_a", "first_b"]))
    _fake_section(monkeypatch, "second", _plot_section("second", ["second_a"]))
    monkeypatch.setattr(lab_runner, "SECTIONS", ("first", "second"))
    (tmp_path / "notes.txt").write_text("mine")
    (tmp_path / "mine.png").write_bytes(b"not the runner's")
    assert CLI.invoke(app, ["lab", "--out", str(tmp_path)]).exit_code == 0
    assert {"first_a.png", "first_b.png", "second_a.png"} <= {p.name for p in tmp_path.iterdir()}

    result = CLI.invoke(app, ["lab", "--out", str(tmp_path), "--only", "second"])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "index.html",
        "mine.png",
        "notes.txt",
        "results.json",
        "second_a.png",
    ]
    assert (tmp_path / "notes.txt").read_text() == "mine"
    assert (tmp_path / "mine.png").read_bytes() == b"not the runner's"
    data = json.loads((tmp_path / "results.json").read_text())
    assert list(data["sections"]) == ["second"] and data["sections"]["second"]["figures"] == ["second_a.png"]


def test_a_section_that_drops_a_figure_leaves_no_stale_copy(tmp_path, monkeypatch):
    monkeypatch.setattr(lab_runner, "SECTIONS", ("plots",))
    _fake_section(monkeypatch, "plots", _plot_section("plots", ["plots_a", "plots_b"]))
    lab_runner.run_lab(tmp_path, show_progress=False)
    _fake_section(monkeypatch, "plots", _plot_section("plots", ["plots_a"], extra="scratch.txt"))
    report = lab_runner.run_lab(tmp_path, show_progress=False)
    assert report.passed and [p.name for p in report.sections[0].figures] == ["plots_a.png"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["index.html", "plots_a.png", "results.json"]


def test_a_crashing_section_leaves_no_half_written_files(tmp_path, monkeypatch):
    def run(ctx):
        (ctx.out_dir / "half.png").write_bytes(b"\x89PNG")
        raise RuntimeError("boom")

    _fake_section(monkeypatch, "crash", run)
    monkeypatch.setattr(lab_runner, "SECTIONS", ("crash",))
    result = CLI.invoke(app, ["lab", "--out", str(tmp_path)])
    assert result.exit_code == 1 and "FAIL crash: section runs without error: RuntimeError: boom" in result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["index.html", "results.json"]


@pytest.mark.parametrize(
    "results",
    ['{"sections": {"x": {"figures": ["../outside.png", "sub/a.png", "notes.txt"]}}}', "not json", '{"sections": []}'],
)
def test_a_foreign_results_json_deletes_nothing_outside_the_figures_it_owns(tmp_path, results):
    out = tmp_path / "out"
    (out / "sub").mkdir(parents=True)
    (out / "results.json").write_text(results)
    for path in (tmp_path / "outside.png", out / "sub" / "a.png", out / "notes.txt"):
        path.write_text("keep")
    lab_runner.run_lab(out, only=["asymmetry"], show_progress=False)
    assert (tmp_path / "outside.png").exists() and (out / "sub" / "a.png").exists() and (out / "notes.txt").exists()
