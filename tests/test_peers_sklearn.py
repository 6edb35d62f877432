"""scikit-learn's mutual-information tests (``sklearn/metrics/cluster/tests/test_supervised.py``), ported to
klkit with their reference numbers: :func:`klkit.mutual_information` on the joint table ``C / C.sum()`` of a
contingency table ``C``, and :func:`klkit.estimators.mutual_information` on the labels / counts themselves.

Documented differences: klkit's array measures take a normalised joint table (``mutual_information``'s
docstring: "applied to ``C / C.sum()`` (klkit never renormalises)"), so counts go to the estimator or are
divided by their total first; sklearn's ``entropy([])`` is 1 by convention, klkit raises on an empty input
(:func:`klkit.entropy`'s Raises section).
"""

from __future__ import annotations

import math

import mpmath
import numpy as np
import pytest

import klkit
from klkit.estimators import mutual_information as estimate_mi

LABELS_A = np.array([1, 1, 1, 1, 1, 1, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3])
LABELS_B = np.array([1, 1, 1, 1, 2, 1, 2, 2, 2, 2, 3, 1, 3, 3, 3, 2, 2])
NEVER_RENORMALISES = "klkit.mutual_information docstring: a contingency table C is passed as C / C.sum()"


def contingency(a, b) -> np.ndarray:
    """The contingency table, as sklearn's own test builds its reference (np.histogram2d on the labels)."""
    _, ia = np.unique(a, return_inverse=True)
    _, ib = np.unique(b, return_inverse=True)
    edges = (np.arange(ia.max() + 2) - 0.5, np.arange(ib.max() + 2) - 0.5)
    return np.histogram2d(ia, ib, bins=edges)[0]


def test_mutual_info_score():  # from test_adjusted_mutual_info_score: MI of the labels is 0.41022
    c = contingency(LABELS_A, LABELS_B)
    assert float(klkit.mutual_information(c / c.sum())) == pytest.approx(0.41022, abs=5e-6)
    assert float(estimate_mi(LABELS_A, LABELS_B)) == pytest.approx(0.41022, abs=5e-6)
    assert float(estimate_mi(counts=c.astype(np.int64))) == pytest.approx(0.41022, abs=5e-6)
    # the table 110 times over (sklearn's "very large array"): the same distribution, the same MI
    a110, b110 = np.tile(LABELS_A, 110), np.tile(LABELS_B, 110)
    c110 = contingency(a110, b110)
    np.testing.assert_array_equal(c110, 110 * c)
    assert float(klkit.mutual_information(c110 / c110.sum())) == pytest.approx(0.41022, abs=5e-6)


@pytest.mark.xfail(strict=True, raises=ValueError, reason=NEVER_RENORMALISES)
def test_mutual_info_score_with_counts_as_the_table():
    assert float(klkit.mutual_information(contingency(LABELS_A, LABELS_B))) == pytest.approx(0.41022, abs=5e-6)


def test_int_overflow_mutual_info():
    x = np.array([1] * (52632 + 2529) + [2] * (14660 + 793) + [3] * (3271 + 204) + [4] * (814 + 39) + [5] * (316 + 20))
    y = np.array(
        [0] * 52632 + [1] * 2529 + [0] * 14660 + [1] * 793 + [0] * 3271 + [1] * 204 + [0] * 814 + [1] * 39
        + [0] * 316 + [1] * 20
    )  # fmt: skip
    c = contingency(x, y)
    mi = float(klkit.mutual_information(c / c.sum()))
    assert math.isfinite(mi) and mi >= 0
    with mpmath.workdps(50):  # the exact MI of the counts
        n = mpmath.mpf(int(c.sum()))
        rows, cols = c.sum(1), c.sum(0)
        exact = sum(
            (mpmath.mpf(int(v)) / n) * mpmath.log(mpmath.mpf(int(v)) * n / (int(rows[i]) * int(cols[j])))
            for (i, j), v in np.ndenumerate(c)
            if v
        )
    assert mi == pytest.approx(float(exact), rel=1e-12, abs=0)  # the table c / c.sum() is exact to 1e-16
    assert float(estimate_mi(x, y)) == pytest.approx(float(exact), rel=1e-9, abs=0)


def test_entropy():  # sklearn's entropy of the labels [0, 0, 42]: counts (2, 1)
    assert float(klkit.entropy(np.array([2.0, 1.0]) / 3.0)) == pytest.approx(0.6365141, abs=5e-6)


@pytest.mark.xfail(strict=True, raises=ValueError, reason="klkit.entropy: an empty input raises")
def test_entropy_of_nothing_is_one():
    assert float(klkit.entropy(np.array([]))) == pytest.approx(1.0)


@pytest.mark.parametrize("n", np.logspace(1, 4, 4).astype(int))
def test_exactly_zero_info_score(n):
    # one constant label against n distinct ones: X carries nothing about Y, MI is exactly 0 (not clamped to it:
    # every cell's p(x, y) equals p(x)p(y)/Σp exactly, so every term of the sum is 0)
    c = contingency(np.ones(n, dtype=int), np.arange(n))
    assert c.shape == (1, n)
    assert float(klkit.mutual_information(c / c.sum())) == 0.0
    # transposed (n × 1): p(y) is a sum of n entries that is 1 only within its rounding; still exactly 0
    assert float(klkit.mutual_information((c / c.sum()).T)) == 0.0
    assert float(estimate_mi(np.ones(n, dtype=int), np.arange(n))) == 0.0


@pytest.mark.parametrize("n", np.logspace(1, 4, 4).astype(int))
def test_v_measure_and_mutual_information(n):
    # sklearn checks v = 2 MI / (H(a) + H(b)); the identity behind it, MI = H(X) + H(Y) − H(X, Y), against
    # sklearn's own mutual_info_score on the same labels
    sklearn_metrics = pytest.importorskip("sklearn.metrics")
    rng = np.random.RandomState(36)
    a, b = rng.randint(0, 10, n), rng.randint(0, 10, n)
    c = contingency(a, b)
    pxy = c / c.sum()
    mi = float(klkit.mutual_information(pxy))
    hx, hy = float(klkit.entropy(pxy.sum(1))), float(klkit.entropy(pxy.sum(0)))
    assert mi == pytest.approx(hx + hy - float(klkit.joint_entropy(pxy)), rel=1e-10, abs=1e-14)
    assert mi == pytest.approx(sklearn_metrics.mutual_info_score(a, b), rel=1e-12, abs=1e-15)
    assert float(klkit.conditional_entropy(pxy)) == pytest.approx(hy - mi, rel=1e-10, abs=1e-14)


@pytest.mark.parametrize(
    ("labels_true", "labels_pred"),
    [
        (["a"] * 6, [1, 1, 0, 0, 1, 1]),
        ([1] * 6, [1, 1, 0, 0, 1, 1]),
        ([1, 1, 0, 0, 1, 1], ["a"] * 6),
        ([1, 1, 0, 0, 1, 1], [1] * 6),
    ],
)
def test_mutual_info_score_positive_constant_label(labels_true, labels_pred):
    c = contingency(labels_true, labels_pred)
    assert float(klkit.mutual_information(c / c.sum())) == 0.0  # sklearn asserts >= 0; a constant label gives 0
    assert float(estimate_mi(np.asarray(labels_true), np.asarray(labels_pred))) >= 0
