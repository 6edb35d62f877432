"""The lab: runner, report files, CLI, and every section in --quick mode."""

from __future__ import annotations

import json
import re
import sys
import types

import pytest
from typer.testing import CliRunner

from klkit.cli.app import app
from klkit.cli.lab import lab
from klkit.lab import runner as lab_runner
from klkit.lab.base import Check, SectionResult
from klkit.lab.lesson import OBJECTIVES, PARTS
from klkit.lab.sections import SECTIONS
from test_lab_training import assert_same_state, global_state

MINE = [
    "surprise",
    "entropy",
    "coin",
    "differential",
    "decomposition",
    "nonnegativity",
    "jensen",
    "asymmetry",
    "relatives",
    "fitting",
    "modes",
    "losses",
]
# the sections whose teaching text this file checks (the others' are checked by their own tests)
TEACHING = ["surprise", "entropy", "coin", "differential", "decomposition", "jensen", "asymmetry", "modes"]
TRAINING = ["vae", "trpo", "ppo"]
CLI = CliRunner()


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    """One --quick run of every lesson section (the training sections: tests/test_lab_training.py)."""
    out = tmp_path_factory.mktemp("lab")
    before = global_state()
    report = lab_runner.run_lab(out, quick=True, only=MINE, seed=0, show_progress=False)
    return report, out, before, global_state()


def test_sections_leave_global_state_as_they_found_it(quick_run):
    *_, before, after = quick_run
    assert_same_state(before, after)


def test_every_section_of_the_lesson_passes_in_quick_mode(quick_run):
    report, *_ = quick_run
    assert [s.key for s in report.sections] == MINE
    failed = {s.key: [(c.name, c.measured) for c in s.checks if not c.passed] for s in report.sections if not s.passed}
    assert not failed, failed
    for s in report.sections:
        assert s.checks and s.claim and s.how


def test_results_json_holds_every_check_and_number(quick_run):
    _, out, *_ = quick_run
    data = json.loads((out / "results.json").read_text())
    assert data["passed"] is True and data["quick"] is True
    assert list(data["sections"]) == MINE
    for key, section in data["sections"].items():
        assert section["status"] == "pass"
        assert section["checks"] and all(c["passed"] for c in section["checks"])
        for name in section["figures"]:
            assert (out / name).is_file(), (key, name)
    fitting = data["sections"]["fitting"]["numbers"]
    assert abs(fitting["forward_mean"]) <= 0.05 and abs(fitting["forward_std"] / 10**0.5 - 1) <= 0.02
    assert abs(abs(fitting["reverse_mean"]) - 3) <= 0.1 and abs(fitting["reverse_std"] - 1) <= 0.05


def _without_scripts(page: str) -> str:
    return re.sub(r"<script\b[^>]*>.*?</script>", "", page, flags=re.S)


def test_report_is_self_contained(quick_run):
    _, out, *_ = quick_run
    page = (out / "index.html").read_text()
    markup = _without_scripts(page)
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", markup)  # nothing fetched from a network
    assert "url(" not in markup and "@import" not in markup
    assert not re.search(r"<script[^>]*\bsrc=", page)  # every script inline, plotly.js included
    assert page.count("* plotly.js v") == 1  # plotly.js is embedded once, however many explorables
    images = re.findall(r'<img [^>]*src="([^"]*)"', page)
    assert images and all(src.startswith("data:image/") for src in images)
    for key in MINE:
        assert f'<section id="{key}"' in page


def test_each_lesson_section_teaches_before_it_verifies(quick_run):
    report, out, *_ = quick_run
    page = (out / "index.html").read_text()
    by_key = {s.key: s for s in report.sections}
    for key in TEACHING:
        s = by_key[key]
        assert len(s.intuition) > 80 and len(s.example) > 40, key
        assert all(s.captions.get(f.name, "").strip() for f in s.figures), (key, s.captions)
        section = page[page.index(f'<section id="{key}"') :]
        section = section[: section.index("</section>")]
        teaching = section.index('class="intuition"'), section.index('class="example"')
        assert max(teaching) < section.index('<details class="verification">')  # the checks come after, folded
        assert section.index('<details class="verification">') > section.rfind("<figure")
        assert 'class="caption-missing"' not in section, key


def test_report_follows_the_lesson_with_a_map(quick_run):
    _, out, *_ = quick_run
    page = (out / "index.html").read_text()
    order = re.findall(r'<section id="(\w+)"', page)
    lesson = [key for part in PARTS for key in part.sections if key in MINE]
    assert order == lesson  # relatives comes after the lesson, in the part beyond it
    assert page.index('id="part-lesson"') < page.index('<section id="surprise"')
    assert page.index('<section id="modes"') < page.index('id="part-beyond"') < page.index('<section id="relatives"')
    links = re.findall(r'<a class="objective-link" href="#(\w+)">', page)
    assert links == [o.section for o in OBJECTIVES if o.section in MINE]
    assert "1 nat = 1/ln 2" in page
    assert '<a href="#fitting">the fitting section</a>' in page  # variational inference → the fitting section


def test_every_section_has_a_place_in_the_lesson_plan():
    placed = [key for part in PARTS for key in part.sections]
    assert sorted(placed) == sorted(SECTIONS) and len(placed) == len(set(placed))
    assert {o.section for o in OBJECTIVES} <= set(PARTS[0].sections)


def test_a_figure_without_a_caption_is_shown_as_missing(tmp_path):
    from klkit.lab.report import write_html

    png = tmp_path / "plot.png"
    png.write_bytes(b"\x89PNG\r\n\x1a\n")
    section = SectionResult(key="demo", title="demo", claim="c", how="h", checks=[Check("x", "1", True)], figures=[png])
    page = write_html(tmp_path / "index.html", [section], {"demo": 0.0}, {"seed": 0}).read_text()
    assert '<figcaption class="caption-missing">No caption for plot.png.</figcaption>' in page
    section.captions = {"plot.png": "the curve [rises](#demo) <fast>"}
    page = write_html(tmp_path / "index.html", [section], {"demo": 0.0}, {"seed": 0}).read_text()
    assert '<figcaption>the curve <a href="#demo">rises</a> &lt;fast&gt;</figcaption>' in page


def test_unknown_section_is_an_error_naming_only(tmp_path):
    with pytest.raises(ValueError, match="`only` must name lab sections; found unknown 'nope'"):
        lab_runner.run_lab(tmp_path, only=["nope"], show_progress=False)
    result = CLI.invoke(app, ["lab", "--out", str(tmp_path), "--only", "nope"])
    assert result.exit_code == 2 and "`--only` must name lab sections" in result.output


def _fake_section(monkeypatch, key, run):
    module = types.ModuleType(f"klkit.lab.sections.{key}")
    module.run = run
    monkeypatch.setitem(sys.modules, module.__name__, module)


def test_a_missing_section_module_is_a_failure(tmp_path, monkeypatch):
    monkeypatch.setattr(lab_runner, "SECTIONS", ("coin", "not_written_yet"))
    report = lab_runner.run_lab(tmp_path, only=["coin", "not_written_yet"], show_progress=False)
    missing = report.sections[1]
    assert not missing.passed and not report.passed and report.failed == ["not_written_yet"]
    assert "No module named 'klkit.lab.sections.not_written_yet'" in missing.checks[0].measured
    data = json.loads((tmp_path / "results.json").read_text())
    assert data["passed"] is False and data["sections"]["not_written_yet"]["status"] == "fail"
    assert data["sections"]["coin"]["status"] == "pass"  # the other sections still ran
    page = (tmp_path / "index.html").read_text()
    assert '<section id="not_written_yet" class="lab-section fail"' in page and "not yet available" not in page


def test_a_missing_import_inside_a_section_is_a_failure(tmp_path, monkeypatch):
    def run(ctx):
        import klkit_package_that_does_not_exist  # noqa: F401

    _fake_section(monkeypatch, "broken", run)
    monkeypatch.setattr(lab_runner, "SECTIONS", ("broken", "coin"))
    report = lab_runner.run_lab(tmp_path, only=["broken", "coin"], show_progress=False)
    assert report.failed == ["broken"] and report.sections[1].passed  # the other sections still ran
    assert "ModuleNotFoundError" in report.sections[0].checks[0].measured


def test_a_failing_check_makes_the_cli_exit_non_zero(tmp_path, monkeypatch):
    _fake_section(
        monkeypatch,
        "fails",
        lambda ctx: SectionResult(
            key="fails", title="fails", claim="c", how="h", checks=[Check("x", "1", True), Check("y", "2", False)]
        ),
    )
    monkeypatch.setattr(lab_runner, "SECTIONS", ("fails",))
    assert lab(tmp_path, only=["fails"]) == 1
    data = json.loads((tmp_path / "results.json").read_text())
    assert data["passed"] is False and data["sections"]["fails"]["status"] == "fail"


def test_cli_runs_and_prints_where_the_report_is(tmp_path):
    result = CLI.invoke(app, ["lab", "--out", str(tmp_path / "r"), "--quick", "--only", "coin,asymmetry"])
    assert result.exit_code == 0, result.output
    assert f"Report: {(tmp_path / 'r' / 'index.html').resolve()}" in result.output.replace("\n", "")
    assert "2/2 sections pass" in result.output
    assert (tmp_path / "r" / "results.json").is_file()


def test_section_list_runs_the_lesson_in_its_order():
    lesson = list(PARTS[0].sections)
    assert [s for s in SECTIONS if s in lesson] == lesson  # the lesson's sections run in its order
    assert [s for s in SECTIONS if s in TRAINING] == TRAINING


def test_missing_lab_dependency_is_a_one_line_error(tmp_path, monkeypatch):
    def missing(*args, **kwargs):
        raise ModuleNotFoundError("No module named 'matplotlib'", name="matplotlib")

    monkeypatch.setattr("klkit.lab.runner.run_lab", missing)
    result = CLI.invoke(app, ["lab", "--out", str(tmp_path), "--quick"])
    assert result.exit_code == 2
    assert "needs the package 'matplotlib'" in result.output and "klkit[lab]" in result.output
