"""numba twins of :mod:`klkit._engine.near_equal` for numpy: KL of near-equal rows, one row at a time.

The same forms (one-sign terms plus an exactly summed remainder for probabilities; k3 terms minus
``S − log1p(S)`` for logits), evaluated element by element in float64 with the remainder summed in
double-double (TwoSum), so that a batch of near-equal rows costs a few passes instead of the
array version's dozens of temporaries.
"""

from __future__ import annotations

import math

import numba
import numpy as np

__all__ = ["near_logits_rows", "near_probs_rows"]

_COEFFS = np.array([1.0 / math.factorial(n) for n in range(2, 18)])  # k3 series: 1/n!, n = 2..17
_TINY = 2.2250738585072014e-308


@numba.njit(inline="always", cache=True)
def _k3(t: float) -> float:
    """e^t − 1 − t: series below |t| = 1/2 (five terms below 2^-10), expm1(t) − t elsewhere."""
    if abs(t) <= 0.0009765625:  # t^5/7! < 2^-60 · t²/2
        return t * t * ((((_COEFFS[4] * t + _COEFFS[3]) * t + _COEFFS[2]) * t + _COEFFS[1]) * t + _COEFFS[0])
    if abs(t) <= 0.5:
        acc = _COEFFS[-1]
        for j in range(_COEFFS.shape[0] - 2, -1, -1):
            acc = acc * t + _COEFFS[j]
        return t * t * acc
    return math.expm1(t) - t


@numba.njit(inline="always", cache=True)
def _two_sum(a: float, b: float):
    s = a + b
    bv = s - a
    return s, (a - (s - bv)) + (b - bv)


@numba.njit(nogil=True, cache=True)
def near_probs_rows(p, q, out):  # pragma: no cover - compiled
    """``out[r]`` = KL of row r of (rows, n) probabilities: Σ[p t − d] + Σ d (double-double), p > 0 only.

    Examples
    --------
    >>> out = np.empty(1)
    >>> e = 2.0**-30
    >>> near_probs_rows(np.array([[0.5, 0.5]]), np.array([[0.5 + e, 0.5 - e]]), out)
    >>> float(out[0])  # −½log(1 − 4e²) to the last digit; the plain sum gives −1.73e-18
    1.734723475976807e-18
    """
    for r in range(p.shape[0]):
        v = 0.0
        s = 0.0
        c = 0.0
        for i in range(p.shape[1]):
            pi = np.float64(p[r, i])
            qi = np.float64(q[r, i])
            if not pi > 0.0:
                continue
            d = pi - qi
            if abs(d) <= 0.5 * qi:
                t = math.log1p(d / qi)
                v += d * t - qi * _k3(t)
            else:
                ratio = pi / qi
                t = math.log(ratio) if _TINY <= ratio < math.inf else math.log(pi) - math.log(qi)
                v += pi * t - d
            s, e = _two_sum(s, d)
            c += e
        out[r] = v + (s + c)


@numba.njit(inline="always", cache=True)
def _lse(x, r) -> float:
    m = -math.inf
    for i in range(x.shape[1]):
        m = max(m, np.float64(x[r, i]))
    total = 0.0
    for i in range(x.shape[1]):
        total += math.exp(np.float64(x[r, i]) - m)
    return m + math.log(total)


@numba.njit(nogil=True, cache=True)
def near_logits_rows(a, b, out):  # pragma: no cover - compiled
    """``out[r]`` = KL of row r of (rows, n) logits by the shifted k3 form (finite KL rows only)."""
    for r in range(a.shape[0]):
        la = _lse(a, r)
        lb = _lse(b, r)
        w = 0.0
        mean = 0.0
        mass = 0.0
        for i in range(a.shape[1]):
            ai = np.float64(a[r, i])
            pi = math.exp(ai - la)
            if pi > 0.0:
                w += pi
                mean += pi * (np.float64(b[r, i]) - ai)
            else:
                mass += math.exp(np.float64(b[r, i]) - lb)
        mean /= w
        k = 0.0
        s = 0.0
        for i in range(a.shape[1]):
            ai = np.float64(a[r, i])
            lp = ai - la
            pi = math.exp(lp)
            if not pi > 0.0:
                continue
            bi = np.float64(b[r, i])
            hi, lo = _two_sum(bi, -ai)
            delta = (hi - mean) + lo
            if abs(delta) <= 0.5:
                k3 = _k3(delta)
                k += pi * k3
                s += pi * (delta + k3)
            else:
                pe = math.exp(lp + delta)
                k += pe - pi - pi * delta
                s += pe - pi
        out[r] = k / w - _k3(math.log1p(s / w)) - math.log1p(-mass)
