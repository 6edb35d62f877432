"""Smoke tests of the lab's training sections (vae, trpo, ppo) in --quick mode.

Each trains through the public ``klkit.train`` API and must pass every check, write the figures it
lists, and leave the caller's torch thread count and global random generators as they were.
Each takes a few seconds on 2 cores (single-threaded training, small budgets).
"""

from __future__ import annotations

import json
import random
import re

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


PLACEHOLDER = re.compile(r"\{[A-Za-z_][A-Za-z_0-9]*\}")  # an unformatted f-string field such as {EVERY}


def assert_teaches(section) -> None:
    """The teaching text is there: intuition (two sentences or more), a worked example with numbers, and a
    caption for every figure that says more than the file name; no unformatted placeholder anywhere."""
    assert section.intuition.count(". ") >= 1 and len(section.intuition) > 150, section.key
    assert any(ch.isdigit() for ch in section.example), section.key
    for path in section.figures:
        caption = section.captions.get(path.name, "")
        assert len(caption) > 60 and path.stem not in caption, (section.key, path.name)
    texts = [section.claim, section.how, section.intuition, section.example, *section.captions.values()]
    texts += [c.name for c in section.checks] + [c.measured for c in section.checks]
    for text in texts:
        assert not PLACEHOLDER.search(text), (section.key, text)


def test_placeholder_check_can_fail():
    """Negative control: an unformatted field is found, a set of numbers is not."""
    assert PLACEHOLDER.search("both KLs exact every {EVERY} steps")
    assert not PLACEHOLDER.search("β ∈ {0.1, 0.3, 1}")


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
    pytest.importorskip("rich.console")  # the runner's progress display: its first import draws from Python's
    before = global_state()  # generator, so it is imported here and the check sees the section alone
    report = lab_runner.run_lab(tmp_path, quick=True, only=[key], seed=0, show_progress=False)
    assert_same_state(before, global_state())
    (section,) = report.sections
    failing = [(c.name, c.measured) for c in section.checks if not c.passed]
    assert section.key == key and section.passed, failing
    assert section.claim and section.how and len(section.checks) >= 3
    assert_teaches(section)
    data = json.loads((tmp_path / "results.json").read_text())
    assert data["passed"] is True and data["sections"][key]["status"] == "pass"
    assert data["sections"][key]["figures"], "a training section shows its curves"
    for name in data["sections"][key]["figures"]:
        assert (tmp_path / name).is_file(), name
    numbers = data["sections"][key]["numbers"]
    if key == "vae":  # the β sweep: the KL term falls and reconstruction rises with β
        sweep = numbers["beta_sweep"]
        assert [r["beta"] for r in sweep] == sorted(r["beta"] for r in sweep) and len(sweep) >= 3
        assert sweep[-1]["kl"] < sweep[0]["kl"] and sweep[-1]["reconstruction"] > sweep[0]["reconstruction"]
    if key == "trpo":  # every update within its own budget; the weights spread as the KL grows
        assert numbers["max_kl_over_budget"] <= 1 + 1e-6
        steps = numbers["importance_weights"]["steps"]
        assert steps[0]["ess"] > 0.99 > 0.6 > steps[-1]["ess"] and steps[0]["kl"] < steps[-1]["kl"]
    if key == "ppo":  # four objectives, three seeds each
        assert len(numbers["seeds"]) == 3 and len(numbers["median_kl_per_seed"]) == 4
        assert all(len(v) == 3 for v in numbers["median_kl_per_seed"].values())
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
