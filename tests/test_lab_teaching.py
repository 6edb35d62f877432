"""The lab sections nonnegativity, fitting and losses in --quick mode: they pass, teach (intuition, worked
example, a caption for every figure) and report the evidence that could fail (exact KL, unclamped sums)."""

from __future__ import annotations

import json

import pytest

from klkit.lab import runner as lab_runner
from test_lab_training import assert_teaches

pytest.importorskip("matplotlib")
pytest.importorskip("mpmath")
KEYS = ["nonnegativity", "fitting", "losses"]


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    pytest.importorskip("torch")
    pytest.importorskip("sklearn")
    out = tmp_path_factory.mktemp("teaching")
    return lab_runner.run_lab(out, quick=True, only=KEYS, seed=0, show_progress=False), out


def test_sections_pass_and_teach(quick_run):
    report, _ = quick_run
    assert [s.key for s in report.sections] == KEYS
    for section in report.sections:
        failed = [(c.name, c.measured) for c in section.checks if not c.passed]
        assert section.passed, (section.key, failed)
        assert_teaches(section)


def test_nonnegativity_evidence_is_not_the_clamp(quick_run):
    _, out = quick_run
    numbers = json.loads((out / "results.json").read_text())["sections"]["nonnegativity"]["numbers"]
    exact = numbers["exact"]
    # exact (mpmath) KL of rational pairs: positive when P ≠ Q, 0 when P = Q; both float64 values within bound
    assert exact["min_exact"] > 0 and exact["max_equal"] == 0 and exact["distinct"] > 100
    assert exact["raw_error_ratio"] <= 1 and exact["klkit_error_ratio"] <= 1 and exact["klkit_zeros_resolved"] == 0
    assert exact["raw_negative"] > 0  # negative plain sums occur: the check meets the case it is about
    assert numbers["unclamped_negative"] >= 0 and numbers["min_unclamped_sum"] < 1e-12
