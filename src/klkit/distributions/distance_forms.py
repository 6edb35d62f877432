r"""Closed forms of the total variation, Hellinger distance and Jensen–Shannon divergence, numpy and torch.

Registered with :func:`~klkit.distributions.registry.register_divergence` on the family
records (the Rényi divergences are in :mod:`klkit.distributions.divergence_forms`, which imports
this module, so one import registers both):

- Hellinger distance :math:`H = \sqrt{1 - \int\sqrt{pq}}`: wherever a Rényi divergence of order ½ is
  registered it follows from it (:math:`H^2 = -\mathrm{expm1}(-D_{1/2}/2)`, in
  :mod:`klkit.distributions.divergence_api`); Uniform has its own form here, Bernoulli and
  Categorical go to :func:`klkit.hellinger_distance`.
- Total variation :math:`\sup_A |P(A) - Q(A)|`: Normal (any two: through the points where the
  densities cross), LogNormal, HalfNormal, multivariate Normals of equal covariance and
  Independent Normals of equal scales (:math:`2\Phi(\Delta/2) - 1`, Δ the Mahalanobis distance [1]_),
  Exponential, Uniform; Bernoulli and Categorical through :func:`klkit.total_variation`. A
  formula that covers only part of its types (equal covariances) raises
  :class:`~klkit.errors.NotRegisteredError` elsewhere, and the caller samples.
- Jensen–Shannon: Bernoulli and Categorical, through :func:`klkit.js_divergence` on the
  log-probabilities.

References
----------
.. [1] L. Devroye, A. Mehrabian and T. Reddad, "The total variation distance between
       high-dimensional Gaussians", 2018 (the equal-covariance case).
"""

from __future__ import annotations

import math
from typing import Any

from klkit.distributions import families as fam
from klkit.distributions._ops import INF, sum_rightmost
from klkit.distributions.registry import register_divergence
from klkit.errors import NotRegisteredError

__all__: list[str] = []

_SQRT2 = math.sqrt(2.0)
TV, HELLINGER, JS = "total_variation", "hellinger_distance", "js_divergence"


# ===================================================================================================
# Bernoulli and Categorical: log-probabilities with the outcomes on the last axis
# ===================================================================================================
def _two_point_log_probs(xp: Any, x: fam.Bernoulli) -> tuple[Any, Any]:
    """(log π, log(1 − π)) from the logits, exact near 0 and 1 and at them (torch clamps the logits there)."""
    one = xp.where(x.probs > 0, xp.where(x.probs < 1, -xp.softplus(-x.logits), 0.0 * x.probs), -INF)
    zero = xp.where(x.probs < 1, xp.where(x.probs > 0, -xp.softplus(x.logits), 0.0 * x.probs), -INF)
    return one, zero


def _log_probs_of(x: Any) -> Any:
    """Log-probabilities with the outcomes on the last axis (a Bernoulli's two: success, failure)."""
    if isinstance(x, fam.Categorical):
        return x.log_probs
    one, zero = _two_point_log_probs(x.xp, x)
    if x.xp.name == "torch":
        return x.xp.torch.stack([one, zero], dim=-1)
    import numpy as np

    return np.stack(np.broadcast_arrays(one, zero), axis=-1)


# ===================================================================================================
# Hellinger distance (everything with a Rényi divergence gets it from the order ½; these are the others)
# ===================================================================================================
def _overlap(p: fam.Uniform, q: fam.Uniform) -> Any:
    xp = p.xp
    length = xp.minimum(p.high, q.high) - xp.maximum(p.low, q.low)
    return xp.where(length > 0, length, 0.0 * length)


@register_divergence(HELLINGER, fam.Uniform, fam.Uniform)
def _hellinger_uniform_uniform(p: fam.Uniform, q: fam.Uniform) -> Any:
    r""":math:`\sqrt{1 - L/\sqrt{w_p w_q}}`, L the length of the overlap, w the widths."""
    xp = p.xp
    bc = _overlap(p, q) / xp.sqrt((p.high - p.low) * (q.high - q.low))
    return xp.sqrt(xp.where(bc < 1.0, 1.0 - bc, 0.0 * bc))


# ===================================================================================================
# Total variation
# ===================================================================================================
def _normal_interval(xp: Any, a: Any, b: Any) -> Any:
    """Φ(b) − Φ(a) for a ≤ b, from the tail nearer to the interval (no cancellation of values near 1)."""
    right = xp.erfc(a / _SQRT2) - xp.erfc(b / _SQRT2)  # both in the right tail
    left = xp.erfc(-b / _SQRT2) - xp.erfc(-a / _SQRT2)  # both in the left tail
    middle = xp.erf(b / _SQRT2) - xp.erf(a / _SQRT2)
    return 0.5 * xp.where(a > 0, right, xp.where(b < 0, left, middle))


def _normal_total_variation(xp: Any, loc_p: Any, scale_p: Any, loc_q: Any, scale_q: Any) -> Any:
    r"""TV between two univariate Normals, from the points where the densities cross.

    In the coordinates :math:`t = (x - \mu_p)/\sigma_p`, with :math:`s = \sigma_p/\sigma_q` and
    :math:`m = (\mu_p - \mu_q)/\sigma_q`, :math:`\log p = \log q` is
    :math:`(1 - s^2)t^2 - 2smt + 2\log s - m^2 = 0`, whose discriminant :math:`4[m^2 - 2(1-s^2)\log s]`
    is never negative. Between the roots :math:`t_1 < t_2` one density is the larger, so
    :math:`TV = |[\Phi(t_2) - \Phi(t_1)] - [\Phi(st_2 + m) - \Phi(st_1 + m)]|` (roots by the stable
    quadratic formula). Equal variances: :math:`2\Phi(|m|/2) - 1 = \mathrm{erf}(|m|/(2\sqrt2))`.
    """
    s = scale_p / scale_q
    m = (loc_p - loc_q) / scale_q
    log_s = xp.log(scale_p) - xp.log(scale_q)
    equal = log_s == 0
    a = -xp.expm1(2.0 * log_s)  # 1 − s²
    a_safe = xp.where(equal, 1.0 + 0.0 * a, a)
    sign = xp.where(m < 0, -1.0 + 0.0 * m, 1.0 + 0.0 * m)
    root = xp.sqrt(xp.where(equal, 1.0 + 0.0 * m, m * m - 2.0 * a * log_s))
    qq = s * m + sign * root
    t1, t2 = qq / a_safe, (2.0 * log_s - m * m) / qq
    lo, hi = xp.minimum(t1, t2), xp.maximum(t1, t2)
    unequal = xp.abs(_normal_interval(xp, lo, hi) - _normal_interval(xp, s * lo + m, s * hi + m))
    return xp.where(equal, xp.erf(xp.abs(m) / (2.0 * _SQRT2)), unequal)


@register_divergence(TV, fam.Normal, fam.Normal)
def _tv_normal_normal(p: fam.Normal, q: fam.Normal) -> Any:
    return _normal_total_variation(p.xp, p.loc, p.scale, q.loc, q.scale)


@register_divergence(TV, fam.LogNormal, fam.LogNormal)
def _tv_lognormal_lognormal(p: fam.LogNormal, q: fam.LogNormal) -> Any:
    """Invariant under the bijection log."""
    return _normal_total_variation(p.xp, p.loc, p.scale, q.loc, q.scale)


@register_divergence(TV, fam.HalfNormal, fam.HalfNormal)
def _tv_halfnormal_halfnormal(p: fam.HalfNormal, q: fam.HalfNormal) -> Any:
    """Folding at 0 maps both the same way and the densities are even: the Normal formula with locations 0."""
    return _normal_total_variation(p.xp, 0.0 * p.scale, p.scale, 0.0 * q.scale, q.scale)


def _not_equal_covariance(what: str) -> NotRegisteredError:
    return NotRegisteredError(
        f"the total variation between {what} has a closed form only for equal covariances; these differ. "
        "Use method='mc' (or 'auto') for a Monte Carlo estimate."
    )


@register_divergence(TV, fam.MultivariateNormal, fam.MultivariateNormal)
def _tv_mvn_mvn(p: fam.MultivariateNormal, q: fam.MultivariateNormal) -> Any:
    r"""Equal covariances: :math:`\mathrm{erf}(\Delta/(2\sqrt2))`, Δ the Mahalanobis distance of the means [1]."""
    xp = p.xp
    if not bool(xp.xp.all(p.scale_tril == q.scale_tril)):
        raise _not_equal_covariance("multivariate Normals")
    z = xp.solve_lower(q.scale_tril, (p.loc - q.loc)[..., None])
    return xp.erf(xp.sqrt(xp.sum(xp.sum(z * z))) / (2.0 * _SQRT2))


@register_divergence(TV, fam.Independent, fam.Independent)
def _tv_independent_independent(p: fam.Independent, q: fam.Independent) -> Any:
    """Independent Normals of equal scales: a multivariate Normal with equal diagonal covariances."""
    if not (isinstance(p.base, fam.Normal) and isinstance(q.base, fam.Normal) and p.ndims == q.ndims):
        raise NotRegisteredError(
            f"the total variation between Independent({type(p.base).__name__}) and Independent("
            f"{type(q.base).__name__}) has no closed form here (only Independent Normals of equal scales); "
            "use method='mc' (or 'auto') for a Monte Carlo estimate."
        )
    xp = p.xp
    if not bool(xp.xp.all(p.base.scale == q.base.scale)):
        raise _not_equal_covariance("Independent Normals")
    z = (p.base.loc - q.base.loc) / q.base.scale
    return xp.erf(xp.sqrt(sum_rightmost(xp, z * z, p.ndims)) / (2.0 * _SQRT2))


@register_divergence(TV, fam.Exponential, fam.Exponential)
def _tv_exponential_exponential(p: fam.Exponential, q: fam.Exponential) -> Any:
    r""":math:`e^{-t^*}|u|/(1+u)`, u = λq/λp − 1, the densities crossing at :math:`\lambda_p x = t^* = \log(1+u)/u`."""
    xp = p.xp
    u = (q.rate - p.rate) / p.rate
    same = u == 0
    u_safe = xp.where(same, 1.0 + 0.0 * u, u)
    t = xp.where(same, 1.0 + 0.0 * u, xp.log1p(u_safe) / u_safe)
    return xp.exp(-t) * xp.abs(u) / (1.0 + u)


@register_divergence(TV, fam.Uniform, fam.Uniform)
def _tv_uniform_uniform(p: fam.Uniform, q: fam.Uniform) -> Any:
    """1 − L / max(w_p, w_q), L the length of the overlap."""
    xp = p.xp
    return 1.0 - _overlap(p, q) / xp.maximum(p.high - p.low, q.high - q.low)


@register_divergence(TV, fam.Categorical, fam.Categorical)
@register_divergence(TV, fam.Bernoulli, fam.Bernoulli)
def _tv_discrete(p: Any, q: Any) -> Any:
    """:func:`klkit.total_variation` on the log-probabilities: ½ Σ |p_i − q_i|."""
    from klkit.divergences import total_variation

    return total_variation(_log_probs_of(p), _log_probs_of(q), kind="log_probs", validate=False)


@register_divergence(HELLINGER, fam.Categorical, fam.Categorical)
@register_divergence(HELLINGER, fam.Bernoulli, fam.Bernoulli)
def _hellinger_discrete(p: Any, q: Any) -> Any:
    """:func:`klkit.hellinger_distance` on the log-probabilities: sqrt(1 − Σ sqrt(p_i q_i))."""
    from klkit.divergences import hellinger_distance

    return hellinger_distance(_log_probs_of(p), _log_probs_of(q), kind="log_probs", validate=False)


# ===================================================================================================
# Jensen–Shannon (discrete laws: through the array function)
# ===================================================================================================
@register_divergence(JS, fam.Categorical, fam.Categorical)
@register_divergence(JS, fam.Bernoulli, fam.Bernoulli)
def _js_discrete(p: Any, q: Any) -> Any:
    """:func:`klkit.js_divergence` on the log-probabilities (the outcomes along the last axis)."""
    from klkit.measures import js_divergence

    return js_divergence(_log_probs_of(p), _log_probs_of(q), kind="log_probs", validate=False)
