"""Smoke test of the lab's distill section in --quick mode: it runs, writes its figure and numbers, and
leaves the caller's torch threads and global generators untouched.

The section trains on standard-library docstrings, which change between Python versions, so its six
checks (orderings of trained models) are reported here, not all required: the test asserts the
structural claims, and only the orderings that hold with a clear margin (quick mode, seed 0, Python 3.11:
held-out NLL forward 2.23 < JSD 2.37 < reverse 2.51 nats/char, sample entropy reverse 1.92 < JSD 2.03 <
forward 2.20; on another Python version 2.01 < 2.19 < 2.45 and 1.60 < 1.80 < 2.10)."""

from __future__ import annotations

import json
import math

import pytest

from klkit.lab import runner as lab_runner
from klkit.lab.sections import SECTIONS, TITLES
from klkit.lab.sections import distill as section
from test_lab_training import assert_same_state, assert_teaches, global_state


def test_registered_after_losses():
    assert SECTIONS[SECTIONS.index("losses") + 1] == "distill"
    assert TITLES["distill"] == "Distilling a language model: forward KL covers, reverse KL seeks modes"


def test_split_modules_are_small():
    """The section, its corpus and its character models are separate modules, each under 400 lines."""
    from pathlib import Path

    for name in ("distill", "_corpus", "_charlm"):
        path = Path(section.__file__).with_name(f"{name}.py")
        assert len(path.read_text(encoding="utf-8").splitlines()) <= 400, name


def test_corpus_is_deterministic_text_on_the_alphabet():
    text = section.corpus()
    assert len(text) > 50_000 and set(text) <= set(section.CHARS) and "  " not in text
    assert section.corpus() == text


@pytest.mark.slow
def test_distill_section_runs_in_quick_mode(tmp_path):
    pytest.importorskip("torch")
    pytest.importorskip("sklearn")
    for module in ("matplotlib.pyplot", "rich.console"):  # the runner's first imports of these draw from
        pytest.importorskip(module)  # Python's generator: done here, so the check sees the section alone
    before = global_state()
    report = lab_runner.run_lab(tmp_path, quick=True, only=["distill"], seed=0, show_progress=False)
    assert_same_state(before, global_state())
    (result,) = report.sections
    assert result.key == "distill" and result.claim and result.how and result.tables_html
    assert "{" not in result.how and "10 characters" in result.how  # the text is formatted
    assert len(result.checks) == 6 and all(c.name and c.measured for c in result.checks)
    assert_teaches(result)
    data = json.loads((tmp_path / "results.json").read_text())
    entry = data["sections"]["distill"]
    assert entry["figures"]
    for name in entry["figures"]:
        assert (tmp_path / name).is_file(), name

    lm, digits = entry["numbers"]["language_model"], entry["numbers"]["digits"]
    assert lm["characters"] > 50_000 and lm["parameters"]["student"] < lm["parameters"]["teacher"]
    uniform = math.log(len(section.CHARS))  # a model that learned nothing
    for key in ("teacher", "forward_kl", "reverse_kl", "jsd"):
        res = lm[key]
        assert 0 < res["held_out_nll"] < uniform, key
        assert 0 < res["sample_entropy"] < uniform, key
        assert res["teacher_log_likelihood"] < 0, key
        prompt, continuation = res["lines"][0]
        assert len(prompt) == section.TEACHER_CONTEXT and len(continuation) == section.QUICK.sample_length, key
        assert set(prompt + continuation) <= set(section.CHARS), key
    # the orderings with a clear margin: forward KL covers (lowest NLL), reverse KL seeks modes (lowest
    # entropy), the JSD between on both
    f, j, r = lm["forward_kl"], lm["jsd"], lm["reverse_kl"]
    assert f["held_out_nll"] < j["held_out_nll"] < r["held_out_nll"]
    assert r["sample_entropy"] < j["sample_entropy"] < f["sample_entropy"]
    by_name = {c.name: c for c in result.checks}
    assert by_name["the forward-KL student has the lowest held-out NLL (it covers the teacher's mass)"].passed
    assert by_name["the reverse-KL student's samples have the lowest entropy (it seeks the teacher's modes)"].passed

    assert [s["seed"] for s in digits["seeds"]] == [0, 1, 2]
    assert digits["n_train"] + digits["n_test"] == 1797 and digits["temperature"] == 4.0
    for row in digits["seeds"]:
        for name in ("teacher", "hard", "distilled"):
            assert 0.5 < row[name]["accuracy"] <= 1 and 0 < row[name]["nll"] < math.log(10), (row["seed"], name)
