"""The exact references of the lab's inequality checks (:mod:`klkit.lab.sections._exact`).

``exact_kl`` is held to hand-computed closed forms and to mpmath on the same fractions; the rational
pairs are exact distributions; the unclamped float64 sum's rounding bound covers its error against the
exact value, and a wrong formula (the sign flipped) is caught by the same comparison.
"""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest

from klkit.lab.sections._exact import exact_kl, input_rounding, rational_pairs, unclamped_kl

mpmath = pytest.importorskip("mpmath")


def test_exact_kl_matches_hand_computed_values():
    half, quarter = Fraction(1, 2), Fraction(1, 4)
    # ½ ln(½/¼) + ½ ln(½/¾) = ½ ln 2 + ½ ln(2/3)
    assert exact_kl([half, half], [quarter, 3 * quarter]) == pytest.approx(
        0.5 * math.log(2) + 0.5 * math.log(2 / 3), rel=1e-15
    )
    assert exact_kl([half, half], [half, half]) == 0.0
    assert exact_kl([Fraction(1), Fraction(0)], [half, half]) == pytest.approx(math.log(2), rel=1e-15)


def test_exact_kl_resolves_what_float64_cannot():
    """Near-equal rationals: KL ≈ ½ Σ δ²/p, positive far below float64's rounding of the plain sum."""
    n = 10**9
    p = [Fraction(n // 2, n), Fraction(n - n // 2, n)]
    q = [Fraction(n // 2 + 1, n), Fraction(n - n // 2 - 1, n)]
    expected = 0.5 * sum(float((a - b) ** 2 / a) for a, b in zip(p, q, strict=True))  # second order, δ = 1e-9
    assert exact_kl(p, q) == pytest.approx(expected, rel=1e-6)
    assert 0 < exact_kl(p, q) < 1e-17


def test_rational_pairs_are_exact_distributions():
    pairs = rational_pairs(np.random.default_rng(0), 200)
    assert all(sum(p) == 1 and sum(q) == 1 for p, q in pairs)
    assert all(min(p) > 0 and min(q) > 0 for p, q in pairs)
    assert any(p == q for p, q in pairs) and any(p != q for p, q in pairs)


def test_rounding_bound_covers_the_plain_sum_and_catches_a_wrong_formula():
    pairs = rational_pairs(np.random.default_rng(1), 200)
    ratios, flipped = [], []
    for p, q in pairs:
        fp, fq = np.array(p, dtype=float), np.array(q, dtype=float)
        total, bound = unclamped_kl(fp, fq)
        bound = bound + input_rounding(fp, fq)
        truth = exact_kl(p, q)
        ratios.append(abs(float(total) - truth) / float(bound))
        wrong = float(np.sum(fp * (np.log(fq) - np.log(fp))))  # −KL: the sign flipped
        flipped.append(abs(wrong - truth) / float(bound))
    assert max(ratios) <= 1.0
    assert max(flipped) > 1.0  # negative control: the comparison can fail


def test_unclamped_sum_is_negative_only_within_its_bound():
    """Pairs of float vectors that sum to 1 only up to rounding: negative sums occur, never beyond the bound."""
    rng = np.random.default_rng(2)
    p = rng.dirichlet(np.ones(5), size=2000)
    q = p * (1 + 1e-9 * rng.standard_normal(p.shape))
    q /= q.sum(axis=1, keepdims=True)
    total, bound = unclamped_kl(p, q)
    assert np.any(total < 0)
    assert np.all(total >= -bound)
