"""Smoke tests of the lab's training sections (vae, trpo, ppo) in --quick mode.

Each trains through the public ``klkit.train`` API and must pass every check, write the figures it
lists, and leave the caller's torch thread count and global random generators as they were.
Each takes a few seconds on 2 cores (single-threaded training, small budgets).
"""

from __future__ import annotations

import json
import random

import numpy as np
import pytest

from klkit.lab import runner as lab_runner

TRAINING = ["vae", "trpo", "ppo"]
NEEDS = {"vae": ["torch", "sklearn"], "trpo": ["torch", "gymnasium"], "ppo": ["torch", "gymnasium"]}


def global_state() -> tuple:
    """What a section must not change for its caller: torch threads and every global generator."""
    import torch

    return (
        torch.get_num_threads(),
        torch.get_rng_state().clone(),
        np.random.get_state()[1].copy(),  # noqa: NPY002 (the global one)
        random.getstate(),
    )


def assert_same_state(before: tuple, after: tuple) -> None:
    import torch

    assert after[0] == before[0], "torch thread count changed"
    assert torch.equal(after[1], before[1]), "torch's global generator was drawn from or re-seeded"
    assert np.array_equal(after[2], before[2]), "numpy's global generator was drawn from or re-seeded"
    assert after[3] == before[3], "Python's random module was drawn from or re-seeded"


@pytest.mark.parametrize("key", TRAINING)
def test_training_section_passes_in_quick_mode(key, tmp_path):
    for module in NEEDS[key]:
        pytest.importorskip(module)
    before = global_state()
    report = lab_runner.run_lab(tmp_path, quick=True, only=[key], seed=0, show_progress=False)
    assert_same_state(before, global_state())
    (section,) = report.sections
    failing = [(c.name, c.measured) for c in section.checks if not c.passed]
    assert section.key == key and section.passed, failing
    assert section.claim and section.how and len(section.checks) >= 3
    data = json.loads((tmp_path / "results.json").read_text())
    assert data["passed"] is True and data["sections"][key]["status"] == "pass"
    assert data["sections"][key]["figures"], "a training section shows its curves"
    for name in data["sections"][key]["figures"]:
        assert (tmp_path / name).is_file(), name
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        ["index.html", "results.json", *data["sections"][key]["figures"]]
    )


def test_state_check_can_fail():
    """Negative control: drawing from the global generator is seen by the state comparison."""
    torch = pytest.importorskip("torch")
    before = global_state()
    torch.rand(1)
    with pytest.raises(AssertionError, match="torch's global generator"):
        assert_same_state(before, global_state())
    before = global_state()
    threads = torch.get_num_threads()
    torch.set_num_threads(threads + 1)
    try:
        with pytest.raises(AssertionError, match="thread count"):
            assert_same_state(before, global_state())
    finally:
        torch.set_num_threads(threads)
