"""The lab's `relatives` section: it runs through the runner, passes, leaves global state alone, and
every check carries its measured numbers (its speed is a benchmark's business, not a test's)."""

from __future__ import annotations

import json

import pytest

from klkit.lab import runner as lab_runner
from klkit.lab.sections import SECTIONS, TITLES
from test_lab_training import assert_same_state, assert_teaches, global_state

pytest.importorskip("matplotlib")
CLAIMS = (
    "Pinsker",
    "Bretagnolle–Huber",
    "H² ≤ KL",
    "non-decreasing",
    "continuous at α = 1",
    "I(X;Y) = KL(P_XY‖P_X P_Y)",
    "I(X;Y) ≥ 0, exactly",
    "scipy.special.rel_entr",
    "data processing",
)


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    """One --quick run (it also warms the runner, whose first call in a process touches global state)."""
    out = tmp_path_factory.mktemp("relatives")
    return lab_runner.run_lab(out, quick=True, only=["relatives"], seed=0, show_progress=False), out


def _assert_passes_with_numbers(report, out):
    (section,) = report.sections
    assert section.key == "relatives" and section.title == "KL bounds its relatives"
    failed = [(c.name, c.measured) for c in section.checks if not c.passed]
    assert section.passed and not failed, failed
    assert_teaches(section)
    names = " ".join(c.name for c in section.checks)
    for claim in CLAIMS:
        assert claim in names, claim
    assert all(any(ch.isdigit() for ch in c.measured) for c in section.checks)
    data = json.loads((out / "results.json").read_text())["sections"]["relatives"]
    assert data["status"] == "pass" and len(data["figures"]) == 1 and (out / data["figures"][0]).is_file()
    numbers = data["numbers"]
    assert numbers["max_tv_over_pinsker"] <= 1 and numbers["max_2h2_over_kl"] <= 1
    assert numbers["mutual_information"]["processing"] <= 0
    exact = numbers["mutual_information_exact"]
    assert exact["min_dependent"] > 0 and exact["max_independent"] == 0 and exact["klkit_error_ratio"] <= 1


def test_relatives_is_registered_after_asymmetry():
    assert SECTIONS[SECTIONS.index("asymmetry") + 1] == "relatives"
    assert TITLES["relatives"] == "KL bounds its relatives"


def test_quick_run_passes(quick_run):
    report, out = quick_run
    _assert_passes_with_numbers(report, out)


def test_full_run_passes_and_leaves_global_state_alone(quick_run, tmp_path):
    before = global_state()
    report = lab_runner.run_lab(tmp_path, quick=False, only=["relatives"], seed=0, show_progress=False)
    assert_same_state(before, global_state())
    _assert_passes_with_numbers(report, tmp_path)
