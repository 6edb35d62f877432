"""Cross-family KL(p‖q) = H(p, q) − H(p): the cross-entropy of each q family from the moments of p.

+inf where the supports never nest.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from klkit.distributions import families as fam
from klkit.distributions._ops import (
    INF,
    log_beta,
)
from klkit.distributions.entropy_forms import (
    entropy_of,
    log_normaliser_continuous_bernoulli,
)
from klkit.distributions.kl.discrete import bernoulli_kl
from klkit.distributions.kl.moments import moment
from klkit.distributions.registry import register_infinite_kl, register_kl

__all__ = ["cross_binomial", "cross_family", "support"]


_HALF_LOG_2PI = 0.5 * math.log(2 * math.pi)


# ---------------------------------------------------------------------------------------------------
# ... and the cross-entropy of each q family in terms of them
# ---------------------------------------------------------------------------------------------------
def _cross_normal(p: Any, q: fam.Normal) -> Any:
    """½ log(2πσq²) + (Var_p + (E_p X − μq)²) / (2σq²)."""
    xp = p.xp
    return (
        _HALF_LOG_2PI
        + xp.log(q.scale)
        + 0.5 * (moment("variance", p) + (moment("mean", p) - q.loc) ** 2) / (q.scale**2)
    )


def _cross_half_normal(p: Any, q: fam.HalfNormal) -> Any:
    """½ log(πσq²/2) + E_p[X²] / (2σq²)."""
    xp = p.xp
    m2 = moment("variance", p) + moment("mean", p) ** 2
    return 0.5 * math.log(math.pi / 2.0) + xp.log(q.scale) + 0.5 * m2 / q.scale**2


def _cross_exponential(p: Any, q: fam.Exponential) -> Any:
    """−log λq + λq E_p[X]."""
    return -p.xp.log(q.rate) + q.rate * moment("mean", p)


def _cross_gamma(p: Any, q: fam.Gamma) -> Any:
    """log Γ(αq) − αq log βq − (αq − 1) E_p[log X] + βq E_p[X]."""
    xp = p.xp
    a, b = q.concentration, q.rate
    return xp.lgamma(a) - a * xp.log(b) - (a - 1.0) * moment("mean_log", p) + b * moment("mean", p)


def _cross_gumbel(p: Any, q: fam.Gumbel) -> Any:
    """log βq + (E_p X − μq)/βq + exp(μq/βq + log E_p[e^{−X/βq}])."""
    xp = p.xp
    t = 1.0 / q.scale
    return xp.log(q.scale) + (moment("mean", p) - q.loc) * t + xp.exp(q.loc * t + moment("log_mgf_neg", p, t))


def _cross_laplace(p: Any, q: fam.Laplace) -> Any:
    """log(2bq) + E_p|X − μq| / bq."""
    return math.log(2.0) + p.xp.log(q.scale) + moment("mean_abs_dev", p, q.loc) / q.scale


def _cross_pareto(p: Any, q: fam.Pareto) -> Any:
    """−log αq − αq log sq + (αq + 1) E_p[log X]."""
    xp = p.xp
    return -xp.log(q.alpha) - q.alpha * xp.log(q.scale) + (q.alpha + 1.0) * moment("mean_log", p)


def _cross_uniform(p: Any, q: fam.Uniform) -> Any:
    """log(hq − lq)."""
    return p.xp.log(q.high - q.low) + 0.0 * p.zero()


def _cross_beta(p: Any, q: fam.Beta) -> Any:
    """log B(a, b) − (a − 1) E_p[log X] − (b − 1) E_p[log(1 − X)]."""
    xp = p.xp
    a, b = q.concentration1, q.concentration0
    return log_beta(xp, a, b) - (a - 1.0) * moment("mean_log", p) - (b - 1.0) * moment("mean_log1m", p)


def _cross_cb(p: Any, q: fam.ContinuousBernoulli) -> Any:
    """−log C(λq) − E_p[X] ℓq − log(1 − λq)."""
    xp = p.xp
    return -log_normaliser_continuous_bernoulli(q) - moment("mean", p) * q.logits + xp.softplus(q.logits)


def _cross_weibull(p: Any, q: fam.Weibull) -> Any:
    """−log k + k log λ − (k − 1) E_p[log X] + E_p[X^k] / λ^k."""
    xp = p.xp
    k, lam = q.concentration, q.scale
    return (
        -xp.log(k)
        + k * xp.log(lam)
        - (k - 1.0) * moment("mean_log", p)
        + xp.exp(xp.log(moment("mean_power", p, k)) - k * xp.log(lam))
    )


def _cross_log_normal(p: Any, q: fam.LogNormal) -> Any:
    """E_p[log X] + log(σq √2π) + (Var_p[log X] + (E_p[log X] − μq)²) / (2σq²)."""
    xp = p.xp
    m = moment("mean_log", p)
    return m + xp.log(q.scale) + _HALF_LOG_2PI + 0.5 * (moment("var_log", p) + (m - q.loc) ** 2) / q.scale**2


def _cross_poisson(p: Any, q: fam.Poisson) -> Any:
    """λq − E_p[X] log λq + E_p[log X!] (the last term is 0 for p on {0, 1})."""
    return q.rate - moment("mean", p) * p.xp.log(q.rate)


def _cross_geometric(p: Any, q: fam.Geometric) -> Any:
    """−log πq − E_p[X] log(1 − πq)."""
    xp = p.xp
    return -xp.log(q.probs) - moment("mean", p) * xp.log1p(-q.probs)


def cross_binomial(p: fam.Bernoulli, q: fam.Binomial) -> Any:
    """For p on {0, 1}: −n log(1 − πq) − πp (log n + ℓq)."""
    xp = p.xp
    return -q.total_count * xp.log1p(-q.probs) - p.probs * (xp.log(q.total_count) + q.logits)


_CROSS: dict[type, Callable[[Any, Any], Any]] = {
    fam.Normal: _cross_normal,
    fam.HalfNormal: _cross_half_normal,
    fam.Exponential: _cross_exponential,
    fam.Gamma: _cross_gamma,
    fam.Gumbel: _cross_gumbel,
    fam.Laplace: _cross_laplace,
    fam.Pareto: _cross_pareto,
    fam.Uniform: _cross_uniform,
    fam.Beta: _cross_beta,
    fam.ContinuousBernoulli: _cross_cb,
    fam.Weibull: _cross_weibull,
    fam.LogNormal: _cross_log_normal,
    fam.Poisson: _cross_poisson,
    fam.Geometric: _cross_geometric,
    fam.Binomial: cross_binomial,
}


def support(p: Any) -> tuple[Any, Any]:
    """(lower, upper) of the support of ``p`` as arrays of the batch shape."""
    z = p.zero()
    if isinstance(p, fam.Uniform):
        return p.low + z, p.high + z
    if isinstance(p, fam.Pareto):
        return p.scale + z, z + INF
    if isinstance(p, fam.Binomial):
        return z, p.total_count + z
    if isinstance(p, fam.Geometric):
        return z + p.support_start, z + INF
    lower, upper = _SUPPORT[next(c for c in type(p).__mro__ if c in _SUPPORT)]
    return z + lower, z + upper


_SUPPORT: dict[type, tuple[float, float]] = {
    fam.Normal: (-INF, INF),
    fam.Laplace: (-INF, INF),
    fam.Gumbel: (-INF, INF),
    fam.Cauchy: (-INF, INF),
    fam.Exponential: (0.0, INF),
    fam.Gamma: (0.0, INF),
    fam.HalfNormal: (0.0, INF),
    fam.LogNormal: (0.0, INF),
    fam.Weibull: (0.0, INF),
    fam.Beta: (0.0, 1.0),
    fam.ContinuousBernoulli: (0.0, 1.0),
    fam.Bernoulli: (0.0, 1.0),
    fam.Poisson: (0.0, INF),
    fam.Geometric: (0.0, INF),
}


def cross_family(type_p: type, type_q: type) -> Callable[[Any, Any], Any]:
    cross = _CROSS[type_q]

    def kl(p: Any, q: Any) -> Any:
        xp = p.xp
        lo_p, hi_p = support(p)
        lo_q, hi_q = support(q)
        inside = (lo_p >= lo_q) & (hi_p <= hi_q)
        return xp.where(inside, cross(p, q) - entropy_of(p), INF)

    kl.__name__ = kl.__qualname__ = f"_kl_{type_p.__name__.lower()}_{type_q.__name__.lower()}"
    kl.__doc__ = f"H({type_p.__name__}, {type_q.__name__}) − H({type_p.__name__}): {cross.__doc__}"
    return kl


# Pairs torch.distributions.kl also has (same values; written from the moments above).
_TORCH_CROSS = [
    (fam.Bernoulli, fam.Poisson),
    (fam.Beta, fam.ContinuousBernoulli),
    (fam.Beta, fam.Exponential),
    (fam.Beta, fam.Gamma),
    (fam.Beta, fam.Normal),
    (fam.Beta, fam.Uniform),
    (fam.ContinuousBernoulli, fam.Exponential),
    (fam.ContinuousBernoulli, fam.Normal),
    (fam.ContinuousBernoulli, fam.Uniform),
    (fam.Exponential, fam.Gamma),
    (fam.Exponential, fam.Gumbel),
    (fam.Exponential, fam.Normal),
    (fam.Gamma, fam.Exponential),
    (fam.Gamma, fam.Gumbel),
    (fam.Gamma, fam.Normal),
    (fam.Gumbel, fam.Normal),
    (fam.Laplace, fam.Normal),
    (fam.Normal, fam.Gumbel),
    (fam.Normal, fam.Laplace),
    (fam.Pareto, fam.Exponential),
    (fam.Pareto, fam.Gamma),
    (fam.Pareto, fam.Normal),
    (fam.Uniform, fam.Beta),
    (fam.Uniform, fam.ContinuousBernoulli),
    (fam.Uniform, fam.Exponential),
    (fam.Uniform, fam.Gamma),
    (fam.Uniform, fam.Gumbel),
    (fam.Uniform, fam.Normal),
    (fam.Uniform, fam.Pareto),
]
# Pairs torch lacks.
_NEW_CROSS = [
    (fam.Beta, fam.Laplace),
    (fam.Gumbel, fam.Laplace),
    (fam.Exponential, fam.Laplace),
    (fam.Gamma, fam.Laplace),
    (fam.Pareto, fam.Laplace),
    (fam.Uniform, fam.Laplace),
    (fam.HalfNormal, fam.Laplace),
    (fam.HalfNormal, fam.Exponential),
    (fam.HalfNormal, fam.Normal),
    (fam.HalfNormal, fam.Gamma),
    (fam.HalfNormal, fam.Weibull),
    (fam.Exponential, fam.HalfNormal),
    (fam.Gamma, fam.HalfNormal),
    (fam.Uniform, fam.HalfNormal),
    (fam.Beta, fam.HalfNormal),
    (fam.Exponential, fam.Weibull),
    (fam.Weibull, fam.Exponential),
    (fam.Weibull, fam.Gamma),
    (fam.Gamma, fam.Weibull),
    (fam.LogNormal, fam.Gamma),
    (fam.LogNormal, fam.Exponential),
    (fam.LogNormal, fam.Weibull),
    (fam.Gamma, fam.LogNormal),
    (fam.Exponential, fam.LogNormal),
    (fam.Weibull, fam.LogNormal),
    (fam.Bernoulli, fam.Binomial),
    (fam.Bernoulli, fam.Geometric),
    (fam.Poisson, fam.Geometric),
]
for _p, _q in _TORCH_CROSS + _NEW_CROSS:
    register_kl(_p, _q)(cross_family(_p, _q))

# Supports that never nest: q = 0 on a set where p > 0.
_BOUNDED = (fam.Beta, fam.ContinuousBernoulli, fam.Uniform, fam.Pareto)
register_infinite_kl(fam.Exponential, *_BOUNDED, reason="p has mass outside q's bounded (or x ≥ scale) support")
register_infinite_kl(fam.Gamma, *_BOUNDED, reason="p has mass outside q's bounded (or x ≥ scale) support")
register_infinite_kl(fam.Gumbel, *_BOUNDED, fam.Exponential, fam.Gamma, reason="p has mass on the whole line")
register_infinite_kl(fam.Laplace, *_BOUNDED, fam.Exponential, fam.Gamma, reason="p has mass on the whole line")
register_infinite_kl(fam.Normal, *_BOUNDED, fam.Exponential, fam.Gamma, reason="p has mass on the whole line")
register_infinite_kl(fam.Beta, fam.Pareto, reason="p has mass near 0, below q's scale")
register_infinite_kl(fam.ContinuousBernoulli, fam.Pareto, reason="p has mass near 0, below q's scale")
register_infinite_kl(fam.Pareto, fam.Beta, fam.ContinuousBernoulli, fam.Uniform, reason="p is unbounded above")
register_infinite_kl(fam.Poisson, fam.Bernoulli, fam.Binomial, reason="p is unbounded above")
register_infinite_kl(fam.HalfNormal, *_BOUNDED, reason="p has mass outside q's bounded (or x ≥ scale) support")
register_infinite_kl(fam.Normal, fam.HalfNormal, fam.LogNormal, fam.Weibull, reason="p has mass below 0")
register_infinite_kl(fam.Laplace, fam.HalfNormal, fam.LogNormal, fam.Weibull, reason="p has mass below 0")


@register_kl(fam.Bernoulli, fam.Binomial, override=True)
def kl_bernoulli_binomial(p: fam.Bernoulli, q: fam.Binomial) -> Any:
    """n = 1 (Binomial(1, π) is Bernoulli(π), so p ≈ q is possible): the Bernoulli form, not H(p, q) − H(p)."""
    xp = p.xp
    one = bernoulli_kl(xp, p.probs, p.logits, q.probs, q.logits)
    return xp.where(q.total_count == 1, one, cross_binomial(p, q) - entropy_of(p))
