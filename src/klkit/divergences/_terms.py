"""The reductions behind :mod:`klkit.divergences`: each relative's sum over the outcome axis of prepared inputs.

Inputs arrive as :class:`klkit._engine.Inputs` (outcomes on the last axis, checked, with ``p``, ``q``
and their logs); each function sums terms of one sign (:mod:`klkit._relative_terms`) and clamps the
result to the measure's range.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from klkit._engine import Inputs, check_f_at_one, errstate, f_values, to_numpy, unknown_slope
from klkit._relative_terms import chi2_terms, clamp, hellinger_differences, js_terms

__all__ = [
    "callable_f_sum",
    "chi2_sum",
    "hellinger_squared_sum",
    "js_sum",
    "out_axis",
    "sqrt_zero_gradient",
    "total_variation_sum",
]

LOG2 = math.log(2.0)


def total_variation_sum(x: Inputs) -> Any:
    xp = x.xp
    return clamp(0.5 * xp.sum(xp.abs(x.p - x.q), axis=-1), 0.0, 1.0, xp)


def hellinger_squared_sum(x: Inputs) -> Any:
    """½ Σ (√p − √q)², each difference as (p − q)/(√p + √q): no cancellation near P = Q."""
    xp = x.xp
    with errstate(xp):
        d = hellinger_differences(x.p, x.q, xp)
    return clamp(0.5 * xp.sum(d * d, axis=-1), 0.0, 1.0, xp)


def js_sum(x: Inputs) -> Any:
    """JS in nats, from terms that are ≥ 0 and exactly 0 where p = q."""
    xp = x.xp
    with errstate(xp):
        value = xp.sum(js_terms(x.logp, x.p, x.logq, x.q, xp), axis=-1)
    return clamp(value, 0.0, LOG2, xp)


def chi2_sum(x: Inputs) -> Any:
    """Pearson χ² = Σ (p − q)²/q, a sum of terms ≥ 0 (+inf where p > 0 = q)."""
    xp = x.xp
    with errstate(xp):
        return xp.sum(chi2_terms(x.logp, x.p, x.logq, x.q, xp), axis=-1)


def sqrt_zero_gradient(value: Any, xp: Any) -> Any:
    """√value with a zero gradient (not NaN) at 0."""
    positive = value > 0
    return xp.where(positive, xp.sqrt(xp.where(positive, value, 1.0)), 0.0 * value)


def out_axis(axis: int, ndim: int) -> int:
    """Where ``keepdims`` puts the outcome axis back (``axis`` was checked against ``ndim``)."""
    return int(axis) % ndim


def callable_f_sum(x: Inputs, f: Callable[[Any], Any]) -> Any:
    """Σ_{q > 0} q f(p/q) for a user's generator f (checked: f(1) = 0, no NaN, elementwise)."""
    xp = x.xp
    check_f_at_one(f, xp, x.p)
    qpos = x.logq > -math.inf
    ppos = x.p > 0  # the support rule: an underflowed p is outside P's support (ratio 0)
    escape = ppos & ~qpos
    if bool(xp.any(escape)):
        raise unknown_slope(f"{int(to_numpy(xp.sum(xp.astype(escape, xp.int64))))} outcome(s) with q_i = 0 < p_i")
    with errstate(xp):
        ratio = xp.where(
            qpos & ppos,
            xp.exp(xp.where(qpos & ppos, x.logp - x.logq, 0.0)),
            xp.where(qpos, xp.zeros_like(x.p), xp.ones_like(x.p)),
        )
        values = f_values(f, ratio, xp)
    return xp.sum(xp.where(qpos, x.q * values, 0.0), axis=-1)
