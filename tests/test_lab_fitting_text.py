"""The fitting section says how its forward fit is computed: the target's exact moments, no samples."""

from __future__ import annotations

import math

import pytest

torch = pytest.importorskip("torch")

from klkit.lab import runner as lab_runner  # noqa: E402


def test_fitting_section_describes_the_exact_moment_forward_fit(tmp_path):
    report = lab_runner.run_lab(tmp_path, quick=True, only=["fitting"], seed=0, show_progress=False)
    (section,) = report.sections
    # the bimodal target ½N(−3,1) + ½N(3,1) has mean 0 and variance 1 + 9 = 10 exactly; a fit to samples
    # would miss both by ~1e-2, so these bounds pin the exact-moment fit the text must describe
    assert abs(section.numbers["forward_mean"]) <= 1e-12
    assert section.numbers["forward_std"] == pytest.approx(math.sqrt(10.0), rel=1e-12)
    assert "the target's exact mean and covariance" in section.how
    assert "target samples" not in section.how.split(";")[0]  # the forward part draws none
