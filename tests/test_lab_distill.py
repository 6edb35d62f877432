"""Smoke test of the lab's distill section in --quick mode: every check passes, the figure is written,
the numbers are in results.json, and the caller's torch threads and global generators are untouched."""

from __future__ import annotations

import json

import pytest

from klkit.lab import runner as lab_runner
from klkit.lab.sections import SECTIONS, TITLES
from klkit.lab.sections import distill as section
from test_lab_training import assert_same_state, global_state


def test_registered_after_losses():
    assert SECTIONS[SECTIONS.index("losses") + 1] == "distill"
    assert TITLES["distill"] == "Distilling a language model: forward KL covers, reverse KL seeks modes"


def test_corpus_is_deterministic_text_on_the_alphabet():
    text = section.corpus()
    assert len(text) > 50_000 and set(text) <= set(section.CHARS) and "  " not in text
    assert section.corpus() == text


@pytest.mark.slow
def test_distill_section_passes_in_quick_mode(tmp_path):
    pytest.importorskip("torch")
    pytest.importorskip("sklearn")
    for module in ("matplotlib.pyplot", "rich.console"):  # the runner's first imports of these draw from
        pytest.importorskip(module)  # Python's generator: done here, so the check sees the section alone
    before = global_state()
    report = lab_runner.run_lab(tmp_path, quick=True, only=["distill"], seed=0, show_progress=False)
    assert_same_state(before, global_state())
    (result,) = report.sections
    failing = [(c.name, c.measured) for c in result.checks if not c.passed]
    assert result.key == "distill" and result.passed, failing
    assert len(result.checks) == 6 and result.claim and result.how and result.tables_html
    data = json.loads((tmp_path / "results.json").read_text())
    numbers = data["sections"]["distill"]["numbers"]
    lm = numbers["language_model"]
    assert lm["forward_kl"]["held_out_nll"] < lm["reverse_kl"]["held_out_nll"]
    assert lm["reverse_kl"]["sample_entropy"] < lm["forward_kl"]["sample_entropy"]
    assert len(numbers["digits"]["seeds"]) == 3
    for name in data["sections"]["distill"]["figures"]:
        assert (tmp_path / name).is_file(), name
