"""Exact references for the lab's inequality checks: rational distributions and their KL at 50 digits.

A divergence library returns ``max(0, ·)`` of a rounded sum, so "KL ≥ 0" read off its output holds by
construction. The evidence that can fail is elsewhere: distributions whose probabilities are exact
fractions (:class:`fractions.Fraction`), whose KL mpmath evaluates to 50 significant digits, and the
unclamped float64 sum compared with that exact value within its rounding bound.
"""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np

EPS = float(np.finfo(np.float64).eps)
DIGITS = 50


def rational_pairs(rng: np.random.Generator, n: int) -> list[tuple[list[Fraction], list[Fraction]]]:
    """``n`` pairs (P, Q) of distributions on 2 to 10 outcomes whose probabilities are fractions a/N, b/N.

    N is drawn log-uniformly from 10 to 10⁹; Q moves 0 (P = Q), 1 or 3 units of 1/N between outcomes
    of P, or is drawn afresh, so the exact KL ranges from 0 through ~10⁻¹⁸ (below float64's resolution) to order 1.
    """
    pairs = []
    for _ in range(n):
        k = int(rng.choice([2, 3, 5, 10]))
        total = int(10 ** rng.uniform(1, 9))
        total = max(total, 2 * k)
        a = 1 + rng.multinomial(total - k, rng.dirichlet(np.ones(k)))
        b = a.copy()
        moves = int(rng.choice([0, 1, 3, -1]))
        if moves < 0:  # far apart: Q drawn afresh
            b = 1 + rng.multinomial(total - k, rng.dirichlet(np.ones(k)))
        for _ in range(max(moves, 0)):  # near-equal: move single units of 1/N between outcomes
            i, j = rng.choice(k, size=2, replace=False)
            if b[i] > 1:
                b[i] -= 1
                b[j] += 1
        pairs.append(([Fraction(int(x), total) for x in a], [Fraction(int(x), total) for x in b]))
    return pairs


def exact_kl(p: list[Fraction], q: list[Fraction]) -> float:
    """KL(P‖Q) = Σ p_i log(p_i/q_i) in nats, from the exact fractions with mpmath at 50 digits, rounded once.

    Examples
    --------
    >>> exact_kl([Fraction(1, 2), Fraction(1, 2)], [Fraction(1, 4), Fraction(3, 4)])  # ½ ln 2 + ½ ln(2/3)
    0.14384103622589045
    """
    import mpmath

    with mpmath.workdps(DIGITS):
        total = mpmath.fsum(
            mpmath.mpf(pi.numerator) / pi.denominator * mpmath.log(mpmath.mpf(r.numerator) / r.denominator)
            for pi, qi in zip(p, q, strict=True)
            if pi
            for r in (pi / qi,)
        )
        return float(total)


def unclamped_kl(p: np.ndarray, q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The plain float64 sum Σ p (log p − log q) per row, with no clamp, and a bound on its rounding error.

    The bound (K + 3)·ε·Σ p (|log p| + |log q|) + |Σp − Σq| covers the rounding of the logs, the
    subtraction, the product and the K-term sum (ε = 2⁻⁵²), and, through the log-sum inequality
    Σ p log(p/q) ≥ Σp · log(Σp/Σq), float vectors that sum to 1 only up to rounding (|Σp − Σq| is bounded
    through the float sums, and summed exactly with :func:`math.fsum` where the plain sum is not positive).

    Examples
    --------
    >>> total, bound = unclamped_kl(np.array([[0.5, 0.5]]), np.array([[0.25, 0.75]]))
    >>> round(float(total[0]), 6), bool(bound[0] < 1e-14)
    (0.143841, True)
    """
    logp, logq = np.log(p), np.log(q)
    total = np.sum(p * (logp - logq), axis=-1)
    k = p.shape[-1]
    bound = (k + 3) * EPS * np.sum(p * (np.abs(logp) + np.abs(logq)), axis=-1)
    # |Σp − Σq|: bounded by the float sums' difference plus their rounding, and summed exactly (math.fsum) on
    # the rows whose plain sum is not positive, where the bound has to be tight
    sum_p, sum_q = p.sum(axis=-1), q.sum(axis=-1)
    mass = np.array(np.abs(sum_p - sum_q) + (k + 1) * EPS * (sum_p + sum_q), ndmin=1).reshape(-1)
    rows_p, rows_q = p.reshape(-1, k), q.reshape(-1, k)
    for i in np.flatnonzero(np.reshape(total, -1) <= 0):
        mass[i] = abs(math.fsum([*rows_p[i], *(-rows_q[i])]))
    return total, bound + mass.reshape(np.shape(total))


def input_rounding(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    """A bound on how much rounding exact probabilities to float64 (relative error ≤ ε/2 each) moves Σ p log(p/q).

    First order in the relative errors δ: Σ p δ_p (log(p/q) + 1) − Σ p δ_q, at most ε/2 · Σ p (|log(p/q)| + 2).
    Doubled for the second-order terms.
    """
    return EPS * np.sum(p * (np.abs(np.log(p) - np.log(q)) + 2), axis=-1)
