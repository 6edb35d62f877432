"""The Jensen–Shannon term per outcome, of one sign and accurate however close P and Q are.

With M = wP + (1 − w)Q, the divergence is Σ_i T_i with

.. math::

    T_i = w\\,p_i \\log\\frac{p_i}{m_i} + (1-w)\\,q_i \\log\\frac{q_i}{m_i}
        = m_i \\left[w\\,h(a_i) + (1-w)\\,h(b_i)\\right] \\ge 0,

:math:`h(y) = (1+y)\\log(1+y) - y`, :math:`a = (1-w)(p-q)/m`, :math:`b = -w(p-q)/m` (the
first-order parts :math:`w a + (1-w) b` cancel exactly, so they are never formed). For the
symmetric weights, with :math:`x = (p-q)/(p+q)`,

.. math::

    T_i = \\tfrac14 (p+q)\\,g(x), \\qquad g(x) = (1+x)\\log(1+x) + (1-x)\\log(1-x)
        = 2x\\,\\mathrm{artanh}\\,x + \\log(1-x^2),

the last form (two parts within a factor of 2, no cancellation) where :math:`|x| \\le \\tfrac12`.
Only :math:`p - q` and :math:`p + q` enter, never :math:`\\log p - \\log m`: a term is exactly 0
where p = q and keeps its relative accuracy (a few ulps) as p → q, where the log form loses all of it.

Every ``where`` feeds finite stand-ins to the branch it leaves out, so torch gradients stay finite.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from klkit._engine.arrays import is_numpy, is_torch

__all__ = ["js_term"]

_LOG4 = 2.0 * math.log(2.0)  # g(±1): one of p, q is 0
_H_RADIUS = 0.1  # |y| below this: h(y) by its series (17 terms: truncation < 1e-18 relative)
_H_COEFFICIENTS = [(-1.0) ** k / (k * (k - 1)) for k in range(18, 1, -1)]  # h(y) = Σ_{k≥2} (−1)^k y^k/(k(k−1))


def js_term(logp: Any, p: Any, logq: Any, q: Any, xp: Any, weights: tuple[float, float] | None = None) -> Any:
    """w p log(p/m) + (1 − w) q log(q/m) per outcome, m = w p + (1 − w) q (w = ½ when ``weights`` is None).

    Each term is ≥ 0 and exactly 0 where p = q (see the module's formulas). ``logp`` and ``logq``
    are accepted for the callers' uniform signature; the terms need only p and q (the support rule
    is that of the probabilities: an outcome with p = 0 holds no mass of P).

    Examples
    --------
    >>> import numpy as np
    >>> p, q = np.array([0.5, 0.5]), np.array([0.5 + 2.0**-30, 0.5 - 2.0**-30])  # x = ∓2^-30
    >>> bool(js_term(np.log(p), p, np.log(q), q, np).sum() == 2.0**-61)  # ½ Σ (x² + x⁴/6 + …), rounded
    True
    """
    if weights is not None and weights[0] != 0.5:
        return _weighted(p, q, xp, *weights)
    if _in_place(p, q, xp):
        return _symmetric_in_place(p, q, xp)
    d = p - q
    total = p + q
    x = d / xp.where(total > 0, total, 1.0)  # in [−1, 1]; 0 where p = q = 0
    xs = xp.clip(x, -0.5, 0.5)
    term = 0.25 * total * (2.0 * xs * xp.atanh(xs) + xp.log1p(-xs * xs))
    far = xp.abs(x) > 0.5
    if _none(far, xp):
        return term
    return xp.where(far, 0.25 * total * _g_far(x, xp), term)


def _g_far(x: Any, xp: Any) -> Any:
    """g(x) = (1 + x) log(1 + x) + (1 − x) log(1 − x) for ½ < |x| ≤ 1 (g(±1) = 2 log 2); stand-ins elsewhere."""
    edge = xp.abs(x) == 1.0
    xf = xp.where(edge | (xp.abs(x) <= 0.5), 0.75, x)
    return xp.where(edge, _LOG4, (1.0 + xf) * xp.log1p(xf) + (1.0 - xf) * xp.log1p(-xf))


def _symmetric_in_place(p: Any, q: Any, xp: Any) -> Any:
    """The symmetric terms with two full-size buffers (numpy, torch outside autograd): the same
    arithmetic as the autograd form, without its temporaries."""
    total = p + q
    x = p - q
    if _none(total <= 0, xp):
        x /= total
    else:
        x = x / xp.where(total > 0, total, 1.0)
    far = xp.abs(x) > 0.5
    patch = None
    if not _none(far, xp):
        patch = 0.25 * total[far] * _g_far(x[far], xp)
    x = np.clip(x, -0.5, 0.5, out=x) if is_numpy(xp) else x.clamp_(-0.5, 0.5)
    a = np.arctanh(x) if is_numpy(xp) else x.atanh()
    a *= x
    a *= 2.0
    x *= x
    x *= -1.0
    if is_numpy(xp):
        np.log1p(x, out=x)
    else:
        x.log1p_()
    a += x
    a *= total
    a *= 0.25
    if patch is not None:
        a[far] = patch
    return a


def _in_place(p: Any, q: Any, xp: Any) -> bool:
    """Whether buffers may be updated in place: numpy arrays, or eager torch tensors outside autograd."""
    if is_numpy(xp):
        return True
    if is_torch(xp):
        import torch

        grad = torch.is_grad_enabled() and (p.requires_grad or q.requires_grad)
        return not grad and p.device.type != "meta" and not torch.compiler.is_compiling()
    return False


def _weighted(p: Any, q: Any, xp: Any, wp: float, wq: float) -> Any:
    """m [w h(a) + (1 − w) h(b)] for weights (wp, wq), wp + wq = 1."""
    if wp == 0.0 or wq == 0.0:  # M is Q (or P): the divergence is 0; keep the graph
        return 0.0 * (p + q)
    d = p - q
    m = wp * p + wq * q
    delta = d / xp.where(m > 0, m, 1.0)
    return m * (wp * _h(wq * delta, xp) + wq * _h(-wp * delta, xp))


def _h(y: Any, xp: Any) -> Any:
    """h(y) = (1 + y) log(1 + y) − y for y ≥ −1 (h(−1) = 1): the series for |y| < 0.1, else the log form."""
    small = xp.abs(y) < _H_RADIUS
    ys = xp.where(small, y, 0.0)
    acc = _H_COEFFICIENTS[0]
    for c in _H_COEFFICIENTS[1:]:
        acc = acc * ys + c
    series = acc * ys * ys
    if not _none(~small, xp):
        edge = y <= -1.0
        yf = xp.where(small | edge, 0.5, y)
        direct = xp.where(edge, 1.0, (1.0 + yf) * xp.log1p(yf) - yf)
        series = xp.where(small, series, direct)
    return series


def _none(mask: Any, xp: Any) -> bool:
    """True when ``mask`` is known to be all False (numpy and eager torch on real data only; other
    libraries may be lazy or traced, and always take both branches)."""
    if is_numpy(xp):
        return not mask.any()
    if is_torch(xp):
        import torch

        if mask.device.type == "meta" or torch.compiler.is_compiling():
            return False
        try:
            return not bool(mask.any())
        except RuntimeError:  # data-dependent control flow refused (torch.func transforms)
            return False
    return False
