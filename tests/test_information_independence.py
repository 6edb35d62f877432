"""Mutual information of independent tables: exactly 0 when the float table is independent, else its own tiny MI.

``np.outer(px, py)`` rounds each cell, so the stored table is independent only up to that rounding:
its true MI (mpmath at 60 digits on the stored floats) is positive and below u²/2. klkit must return
that value, not 0 and not the O(u) noise of a naive sum.
"""

from __future__ import annotations

from fractions import Fraction

import mpmath
import numpy as np
import pytest

import klkit


def _exact_mi(table: np.ndarray) -> float:
    """I(X;Y) of the stored float table (normalised by its own total), at 60 digits."""
    with mpmath.workdps(60):
        cells = [[mpmath.mpf(float(c)) for c in row] for row in table]
        total = mpmath.fsum(mpmath.fsum(row) for row in cells)
        cells = [[c / total for c in row] for row in cells]
        px = [mpmath.fsum(row) for row in cells]
        py = [mpmath.fsum(col) for col in zip(*cells)]
        return float(
            mpmath.fsum(
                c * mpmath.log(c / (px[i] * py[j])) for i, row in enumerate(cells) for j, c in enumerate(row) if c > 0
            )
        )


@pytest.mark.parametrize("seed", range(20))
def test_rounded_outer_product_gives_the_tables_own_mi(seed):
    rng = np.random.default_rng(seed)
    n, m = rng.integers(2, 7, size=2)
    table = np.outer(rng.dirichlet(np.ones(n)), rng.dirichlet(np.ones(m)))
    truth = _exact_mi(table)
    u = np.finfo(np.float64).eps / 2
    assert 0 <= truth <= u * u / 2
    value = float(klkit.mutual_information(table))
    assert value == pytest.approx(truth, rel=1e-14, abs=1e-300)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_rounded_outer_product_stays_below_half_u_squared(dtype):
    rng = np.random.default_rng(7)
    u = float(np.finfo(dtype).eps) / 2
    for _ in range(200):
        n, m = rng.integers(2, 100, size=2)
        px = rng.dirichlet(np.full(n, rng.choice([0.1, 1.0, 10.0]))).astype(dtype)
        py = rng.dirichlet(np.full(m, rng.choice([0.1, 1.0, 10.0]))).astype(dtype)
        value = float(klkit.mutual_information(np.outer(px, py)))
        assert 0 <= value <= u * u / 2


def test_exactly_independent_float_tables_give_exactly_zero():
    rng = np.random.default_rng(3)
    px = np.array([0.5, 0.25, 0.125, 0.0625, 0.0625])  # powers of two: px_i · py_j is exact
    for _ in range(50):
        py = rng.dirichlet(np.ones(rng.integers(2, 40)))
        table = np.outer(px, py)
        # independent in exact arithmetic: every cell times the total is its row sum times its column sum
        cells = [[Fraction(float(c)) for c in row] for row in table]
        total = sum(map(sum, cells))
        rows, cols = [sum(r) for r in cells], [sum(c) for c in zip(*cells)]
        assert all(cells[i][j] * total == rows[i] * cols[j] for i in range(len(rows)) for j in range(len(cols)))
        assert float(klkit.mutual_information(table)) == 0.0
