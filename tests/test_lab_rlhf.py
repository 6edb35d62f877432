"""Smoke test of the lab's rlhf section ("Which KL does your RLHF loss minimise?") in --quick mode."""

from __future__ import annotations

import json

import pytest

from klkit.lab import runner as lab_runner
from klkit.lab.sections import SECTIONS, TITLES
from test_lab_training import assert_same_state, assert_teaches, global_state


def test_rlhf_section_is_registered_after_ppo():
    assert "rlhf" in SECTIONS and SECTIONS.index("rlhf") == SECTIONS.index("ppo") + 1
    assert TITLES["rlhf"] == "Which KL does your RLHF loss minimise?"


def test_rlhf_section_passes_in_quick_mode(tmp_path):
    pytest.importorskip("torch")
    pytest.importorskip("matplotlib")
    import rich.style  # noqa: F401 (the runner's progress display; its import draws from Python's random)

    before = global_state()
    report = lab_runner.run_lab(tmp_path, quick=True, only=["rlhf"], seed=0, show_progress=False)
    assert_same_state(before, global_state())
    (section,) = report.sections
    failing = [(c.name, c.measured) for c in section.checks if not c.passed]
    assert section.key == "rlhf" and section.passed, failing
    assert section.title == TITLES["rlhf"] and section.claim and section.how and len(section.checks) == 7
    assert_teaches(section)
    assert "{EVERY}" not in section.how and "every 5 steps" in section.how
    data = json.loads((tmp_path / "results.json").read_text())
    numbers = data["sections"]["rlhf"]["numbers"]
    assert numbers["tv_between_optima"] >= 0.3
    methods = {m["method"]: m for m in numbers["methods"]}
    k3, k1 = methods["k3 in the loss"], methods["k1 in the reward"]
    # k3 as a loss controls the forward KL and lets the reverse KL drift; k1 in the reward the other way round
    assert k3["forward_kl"] < k1["forward_kl"] and k3["reverse_kl"] > k1["reverse_kl"]
    assert k3["tv_forward_opt"] < 0.05 and k1["tv_reverse_opt"] < 0.05
    (figure,) = data["sections"]["rlhf"]["figures"]
    assert (tmp_path / figure).is_file()
