"""Near-identical pairs against 50-digit references: no H(p, q) − H(p) cancellation where families meet."""

from __future__ import annotations

import mpmath
import numpy as np
import pytest
from scipy import stats

import klkit


def _bernoulli_kl_mp(a: float, b: float) -> mpmath.mpf:
    with mpmath.workdps(50):
        a, b = mpmath.mpf(a), mpmath.mpf(b)  # the float64 inputs exactly
        return a * mpmath.log(a / b) + (1 - a) * mpmath.log((1 - a) / (1 - b))


def test_near_identical_geometric_and_bernoulli_binomial() -> None:
    """Was 4e-3 (Geometric) and 2.5e-3 (Bernoulli‖Binomial(1)) relative error as H(p, q) − H(p)."""
    a, b = 0.3, 0.3 + 1e-7
    truth = _bernoulli_kl_mp(a, b)
    ours = float(klkit.kl_divergence(stats.bernoulli(a), stats.binom(1, b)))
    assert ours == pytest.approx(float(truth), rel=1e-3, abs=0)
    ours = float(klkit.kl_divergence(stats.geom(a), stats.geom(b)))
    assert ours == pytest.approx(float(truth / mpmath.mpf(a)), rel=1e-3, abs=0)  # KL_Bernoulli / πp
    assert float(klkit.kl_divergence(stats.geom(a), stats.geom(a))) == 0.0
    n4 = float(klkit.kl_divergence(stats.bernoulli(a), stats.binom(4, 0.2)))
    k = np.arange(5)
    exact = (1 - a) * (np.log(1 - a) - stats.binom(4, 0.2).logpmf(0)) + a * (np.log(a) - stats.binom(4, 0.2).logpmf(1))
    assert n4 == pytest.approx(exact, rel=1e-12) and k.size == 5
