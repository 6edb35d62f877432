"""Functions that vanish at 0, to full relative precision (for the KLs and divergences of near-identical laws).

``log1p(u) − u``, ``expm1(x) − x``, ``lgamma(1 + x) + γx``, ``ψ(1 + x) + γ``, ``log(a·b)`` near 1,
``log(sinh x / x)``, ``x coth x − 1`` and the Bregman divergence of lgamma: power series near 0
(where the plain difference cancels), the plain expression elsewhere. Written once for numpy and
torch through the special-function object of :mod:`klkit.distributions._ops`.
"""

from __future__ import annotations

import math
from fractions import Fraction
from typing import Any

from scipy import special

from klkit._engine import dtype_name
from klkit.distributions._ops import EULER_GAMMA

__all__ = [
    "SERIES_CUT",
    "digamma1p_euler",
    "expm1mx",
    "lgamma1p_euler",
    "lgamma_bregman",
    "log1pmx",
    "log_product",
    "log_sinhc",
    "x_coth_x_m1",
]

# ---------------------------------------------------------------------------------------------------
# Functions that vanish at 0, to full relative precision (for KLs of near-identical laws)
# ---------------------------------------------------------------------------------------------------
SERIES_CUT = 0.2  # |x| below this: the power series (28 terms: truncation < 1e-19 relative at the cut)
_TERMS = 28
_ZETA = [float(special.zeta(k)) for k in range(2, _TERMS + 2)]
_LOG1PMX = [(-1.0) ** (j + 1) / (j + 2) for j in range(_TERMS)]  # log1p(u) − u = u² Σ c_j u^j
_EXPM1MX = [1.0 / math.factorial(j + 2) for j in range(18)]  # expm1(x) − x = x² Σ c_j x^j
_LGAMMA1P = [(-1.0) ** j * z / (j + 2) for j, z in enumerate(_ZETA)]  # lgamma(1+x) + γx = x² Σ c_j x^j
_DIGAMMA1P = [(-1.0) ** j * z for j, z in enumerate(_ZETA)]  # ψ(1+x) + γ = x Σ c_j x^j


def _series(xp: Any, x: Any, coefficients: list[float], power: int) -> tuple[Any, Any]:
    """(|x| ≤ SERIES_CUT, x^power Σ c_j x^j) with x zeroed where the series is not used (no overflow)."""
    small = xp.abs(x) <= SERIES_CUT
    xs = xp.where(small, x, 0.0 * x)
    acc = 0.0 * xs + coefficients[-1]
    for c in reversed(coefficients[:-1]):
        acc = acc * xs + c
    return small, acc * xs**power


def log1pmx(xp: Any, u: Any) -> Any:
    """``log1p(u) − u`` to full relative precision (a series for |u| ≤ 0.2; −u²/2 + u³/3 − …)."""
    small, series = _series(xp, u, _LOG1PMX, 2)
    ud = xp.where(small, 0.0 * u + 1.0, u)
    return xp.where(small, series, xp.log1p(ud) - ud)


def expm1mx(xp: Any, x: Any) -> Any:
    """``expm1(x) − x`` to full relative precision (a series for |x| ≤ 0.2; x²/2 + x³/6 + …)."""
    small, series = _series(xp, x, _EXPM1MX, 2)
    xd = xp.where(small, 0.0 * x + 1.0, x)
    return xp.where(small, series, xp.expm1(xd) - xd)


def lgamma1p_euler(xp: Any, x: Any, one_plus_x: Any = None) -> Any:
    r"""``lgamma(1 + x) + γx`` :math:`= \sum_{k\ge2} (-1)^k \zeta(k) x^k / k` (≥ 0, O(x²)), full relative precision.

    ``one_plus_x`` is ``1 + x`` without rounding where the caller has it (e.g. the shape parameter itself).
    """
    small, series = _series(xp, x, _LGAMMA1P, 2)
    onep = 1.0 + x if one_plus_x is None else one_plus_x
    onep = xp.where(small, 0.0 * onep + 2.0, onep)
    xd = xp.where(small, 0.0 * x + 1.0, x)
    return xp.where(small, series, xp.lgamma(onep) + EULER_GAMMA * xd)


def digamma1p_euler(xp: Any, x: Any, one_plus_x: Any = None) -> Any:
    r"""``ψ(1 + x) + γ`` :math:`= \sum_{k\ge2} (-1)^k \zeta(k) x^{k-1}` (O(x)), full relative precision."""
    small, series = _series(xp, x, _DIGAMMA1P, 1)
    onep = 1.0 + x if one_plus_x is None else one_plus_x
    onep = xp.where(small, 0.0 * onep + 2.0, onep)
    return xp.where(small, series, xp.digamma(onep) + EULER_GAMMA)


def log_product(xp: Any, a: Any, b: Any) -> Any:
    """``log(a·b)`` without the rounding of ``a·b`` near 1 (Dekker's exact product), else ``log a + log b``."""
    hi = a * b
    near = xp.abs(hi - 1.0) < 0.5
    a1, b1 = xp.where(near, a, 0.0 * a + 1.0), xp.where(near, b, 0.0 * b + 1.0)
    split = 4097.0 if dtype_name(getattr(hi, "dtype", "float64")) in ("float32", "float16", "bfloat16") else 134217729.0
    p = a1 * b1
    ah, bh = _split_high(a1, split), _split_high(b1, split)
    al, bl = a1 - ah, b1 - bh
    low = ((ah * bh - p) + ah * bl + al * bh) + al * bl
    return xp.where(near, xp.log1p((p - 1.0) + low), xp.log(a) + xp.log(b))


def _split_high(a: Any, split: float) -> Any:
    c = split * a
    return c - (c - a)


def _bernoulli_numbers(n: int) -> list[Fraction]:
    """B_0 … B_n exactly (Akiyama–Tanigawa; B_1 = +½); scipy's lose digits from B_4 on."""
    out, row = [], []
    for m in range(n + 1):
        row.append(Fraction(1, m + 1))
        for j in range(m, 0, -1):
            row[j - 1] = j * (row[j - 1] - row[j])
        out.append(row[0])
    return out


_B = _bernoulli_numbers(30)
_LOG_SINHC = [
    float(2 ** (2 * n) * _B[2 * n] / (2 * n * math.factorial(2 * n))) for n in range(1, 16)
]  # log(sinh x / x) = Σ_n c_n x^{2n}
_X_COTH_X = [float(2 ** (2 * n) * _B[2 * n] / math.factorial(2 * n)) for n in range(1, 16)]  # x coth x − 1
_HYPERBOLIC_CUT = 0.5


def _even_series(xp: Any, x: Any, coefficients: list[float]) -> tuple[Any, Any, Any]:
    """(|x| ≤ ½, Σ c_n x^{2n}, x neutralised to 1 where the series is used)."""
    small = xp.abs(x) <= _HYPERBOLIC_CUT
    x2 = xp.where(small, x, 0.0 * x) ** 2
    acc = 0.0 * x2 + coefficients[-1]
    for c in reversed(coefficients[:-1]):
        acc = acc * x2 + c
    return small, acc * x2, xp.where(small, 0.0 * x + 1.0, x)


def log_sinhc(xp: Any, x: Any) -> Any:
    """``log(sinh(x)/x)`` (≥ 0, O(x²)) to full relative precision: x²/6 − x⁴/180 + … for |x| ≤ ½."""
    small, series, xd = _even_series(xp, x, _LOG_SINHC)
    ax = xp.abs(xd)
    return xp.where(small, series, ax + xp.log(-xp.expm1(-2.0 * ax)) - xp.log(2.0 * ax))


def x_coth_x_m1(xp: Any, x: Any) -> Any:
    """``x coth(x) − 1`` (≥ 0, O(x²)) to full relative precision: x²/3 − x⁴/45 + … for |x| ≤ ½."""
    small, series, xd = _even_series(xp, x, _X_COTH_X)
    return xp.where(small, series, xd / xp.tanh(xd) - 1.0)


_BREGMAN_CUT = 0.05  # |y − x| ≤ 0.05 x: Taylor series (term ratio ≈ |y − x|/x; 14 terms < 1e-17 relative)
_BREGMAN_TERMS = 14


def lgamma_bregman(xp: Any, x: Any, y: Any, delta: Any = None) -> Any:
    r"""``lgamma(y) − lgamma(x) − (y − x) ψ(x)`` (≥ 0, O((y − x)²)) to full relative precision.

    The Taylor series :math:`\sum_{n\ge2} \psi^{(n-1)}(x) (y-x)^n / n!` where ``|y − x| ≤ 0.05 x``, the
    difference elsewhere (where it loses at most a few digits). The Gamma, Beta and Dirichlet KLs are
    sums of these. ``delta`` is ``y − x`` without rounding where the caller has it (e.g. a sum of differences).
    """
    delta = y - x if delta is None else delta
    small = xp.abs(delta) <= _BREGMAN_CUT * x
    xs, ds = xp.where(small, x, 1.0), xp.where(small, delta, 0.0)
    series = 0.0 * ds
    power = ds
    for n in range(2, _BREGMAN_TERMS + 2):
        power = power * ds / n
        series = series + xp.polygamma(n - 1, xs) * power
    return xp.where(small, series, xp.lgamma(y) - xp.lgamma(x) - delta * xp.digamma(x))
