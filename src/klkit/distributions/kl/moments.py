"""Expectations under p (mean, variance, E[log X], E|X − c|, log E[e^{−tX}], E[X^k] …), one entry per family."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from klkit.distributions import families as fam
from klkit.distributions._ops import (
    EULER_GAMMA,
    INF,
)
from klkit.distributions.entropy_forms import (
    mean_continuous_bernoulli,
    variance_continuous_bernoulli,
)
from klkit.errors import NotRegisteredError

__all__ = ["moment"]


# ===================================================================================================
# Cross families: expectations under p ...
# ===================================================================================================
_SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)


def _normal_mad(xp: Any, mu: Any, sigma: Any, c: Any) -> Any:
    """E|X − c| for X ~ N(μ, σ²): σ√(2/π) exp(−d²/2σ²) + d erf(d/σ√2), d = μ − c."""
    d = mu - c
    return sigma * _SQRT_2_OVER_PI * xp.exp(-0.5 * (d / sigma) ** 2) + d * xp.erf(d / (sigma * math.sqrt(2.0)))


def _mad_from_lower(mean: Any, c: Any, below: Any) -> Any:
    """E|X − c| = E[X] − c + 2 E[(c − X)⁺], given ``below`` = E[(c − X)⁺]."""
    return mean - c + 2.0 * below


def _exp_below(p: fam.Exponential, c: Any) -> Any:
    xp = p.xp
    cc = xp.maximum(c, 0.0 * c)
    return cc - (-xp.expm1(-p.rate * cc)) / p.rate


def _gamma_below(p: fam.Gamma, c: Any) -> Any:
    """E[(c − X)⁺] = c P(α, βc) − (α/β) P(α + 1, βc) (regularised lower incomplete gamma P)."""
    xp = p.xp
    cc = xp.maximum(c + 0.0 * p.rate, 0.0)
    return cc * _gammainc(xp, p.concentration, p.rate * cc) - p.concentration / p.rate * _gammainc(
        xp, p.concentration + 1.0, p.rate * cc
    )


def _gammainc(xp: Any, a: Any, x: Any) -> Any:
    if xp.name == "numpy":
        from scipy import special

        return special.gammainc(a, x)
    a, x = xp.torch.broadcast_tensors(a, x)
    return xp.torch.special.gammainc(a, x)


def _pareto_below(p: fam.Pareto, c: Any) -> Any:
    """E[(c − X)⁺] = ∫_s^c F = (c − s) − s^α (c^{1−α} − s^{1−α})/(1 − α)  (s log(c/s) at α = 1), 0 for c ≤ s."""
    xp, s, a = p.xp, p.scale, p.alpha
    cc = xp.maximum(c + 0.0 * s, s)
    one = xp.abs(a - 1.0) < 1e-12
    a_safe = xp.where(one, 2.0 + 0.0 * a, a)
    log_ratio = xp.log(cc) - xp.log(s)
    general = s * (xp.expm1((1.0 - a_safe) * log_ratio)) / (1.0 - a_safe)
    return (cc - s) - xp.where(one, s * log_ratio, general)


def _uniform_mad(p: fam.Uniform, c: Any) -> Any:
    xp, lo, hi = p.xp, p.low, p.high
    mid = 0.5 * (lo + hi)
    inside = ((c - lo) ** 2 + (hi - c) ** 2) / (2.0 * (hi - lo))
    return xp.where(c <= lo, mid - c, xp.where(c >= hi, c - mid, inside))


def _half_normal_below(p: fam.HalfNormal, c: Any) -> Any:
    """∫_0^c erf(x/a) dx = c erf(c/a) + (a/√π)(exp(−c²/a²) − 1), a = σ√2 (0 for c ≤ 0)."""
    xp = p.xp
    a = p.scale * math.sqrt(2.0)
    cc = xp.maximum(c + 0.0 * a, 0.0)
    return cc * xp.erf(cc / a) + a / math.sqrt(math.pi) * xp.expm1(-((cc / a) ** 2))


def _gumbel_below(p: fam.Gumbel, c: Any) -> Any:
    """E[(c − X)⁺] = ∫_{−∞}^c exp(−e^{−(x−μ)/β}) dx = β E1(e^{−(c−μ)/β}) (substitute u = e^{−(x−μ)/β})."""
    xp = p.xp
    return p.scale * xp.exp1(xp.exp(-(c - p.loc) / p.scale))


def _beta_below(p: fam.Beta, c: Any) -> Any:
    """E[(c − X)⁺] = c I_c(a, b) − a/(a + b) I_c(a + 1, b) on (0, 1); 0 below, c − E[X] above."""
    xp, a, b = p.xp, p.concentration1, p.concentration0
    mean = a / (a + b)
    cc = c + 0.0 * a
    inside = (cc > 0) & (cc < 1)
    x = xp.where(inside, cc, 0.5 + 0.0 * cc)
    value = x * xp.betainc(a, b, x) - mean * xp.betainc(a + 1.0, b, x)
    return xp.where(inside, value, xp.where(cc <= 0, 0.0 * cc, cc - mean))


def _pareto_mean(p: fam.Pareto) -> Any:
    xp, a = p.xp, p.alpha
    safe = xp.where(a > 1, a, 2.0 + 0.0 * a)
    return xp.where(a > 1, safe * p.scale / (safe - 1.0), INF)


def _pareto_var(p: fam.Pareto) -> Any:
    xp, a = p.xp, p.alpha
    safe = xp.where(a > 2, a, 3.0 + 0.0 * a)
    return xp.where(a > 2, p.scale**2 * safe / ((safe - 1.0) ** 2 * (safe - 2.0)), INF)


def _uniform_log_mgf(p: fam.Uniform, t: Any) -> Any:
    """log E[e^{−tX}] = −t lo + log(1 − e^{−t(hi−lo)}) − log(t(hi−lo))."""
    xp = p.xp
    w = t * (p.high - p.low)
    return -t * p.low + xp.log(-xp.expm1(-w)) - xp.log(w)


def _mean_log_uniform(p: fam.Uniform) -> Any:
    """E[log X] = (h log h − l log l)/(h − l) − 1 (for l ≥ 0)."""
    xp = p.xp
    # clamped so that the branch +inf replaces (low < 0) stays finite, and so does its gradient
    h, lo = xp.maximum(p.high, 0.0), xp.maximum(p.low, 0.0)
    return (xp.xlogy(h, h) - xp.xlogy(lo, lo)) / (p.high - p.low) - 1.0


def _mean_log1m_uniform(p: fam.Uniform) -> Any:
    """E[log(1 − X)] = ((1−l) log(1−l) − (1−h) log(1−h))/(h − l) − 1 (for h ≤ 1)."""
    xp = p.xp
    u, v = xp.maximum(1.0 - p.low, 0.0), xp.maximum(1.0 - p.high, 0.0)
    return (xp.xlogy(u, u) - xp.xlogy(v, v)) / (p.high - p.low) - 1.0


def _beta_mean(p: fam.Beta) -> Any:
    return p.concentration1 / (p.concentration1 + p.concentration0)


def _beta_var(p: fam.Beta) -> Any:
    a, b = p.concentration1, p.concentration0
    s = a + b
    return a * b / (s * s * (s + 1.0))


# name -> {family: function(p, *args)}; looked up along the MRO of p's class.
_MOMENTS: dict[str, dict[type, Callable[..., Any]]] = {
    "mean": {
        fam.Normal: lambda p: p.loc,
        fam.Laplace: lambda p: p.loc,
        fam.Gumbel: lambda p: p.loc + EULER_GAMMA * p.scale,
        fam.Exponential: lambda p: 1.0 / p.rate,
        fam.Gamma: lambda p: p.concentration / p.rate,
        fam.Beta: _beta_mean,
        fam.ContinuousBernoulli: mean_continuous_bernoulli,
        fam.Uniform: lambda p: 0.5 * (p.low + p.high),
        fam.Pareto: _pareto_mean,
        fam.HalfNormal: lambda p: _SQRT_2_OVER_PI * p.scale,
        fam.LogNormal: lambda p: p.xp.exp(p.loc + 0.5 * p.scale**2),
        fam.Weibull: lambda p: p.scale * p.xp.exp(p.xp.lgamma(1.0 + 1.0 / p.concentration)),
        fam.Bernoulli: lambda p: p.probs,
        fam.Poisson: lambda p: p.rate,
    },
    "variance": {
        fam.Normal: lambda p: p.scale**2,
        fam.Laplace: lambda p: 2.0 * p.scale**2,
        fam.Gumbel: lambda p: (math.pi**2 / 6.0) * p.scale**2,
        fam.Exponential: lambda p: 1.0 / p.rate**2,
        fam.Gamma: lambda p: p.concentration / p.rate**2,
        fam.Beta: _beta_var,
        fam.ContinuousBernoulli: variance_continuous_bernoulli,
        fam.Uniform: lambda p: (p.high - p.low) ** 2 / 12.0,
        fam.Pareto: _pareto_var,
        fam.HalfNormal: lambda p: (1.0 - 2.0 / math.pi) * p.scale**2,
        fam.LogNormal: lambda p: p.xp.expm1(p.scale**2) * p.xp.exp(2.0 * p.loc + p.scale**2),
        fam.Weibull: lambda p: (
            p.scale**2
            * (
                p.xp.exp(p.xp.lgamma(1.0 + 2.0 / p.concentration))
                - p.xp.exp(2.0 * p.xp.lgamma(1.0 + 1.0 / p.concentration))
            )
        ),
    },
    "mean_log": {  # E[log X]
        fam.Exponential: lambda p: -EULER_GAMMA - p.xp.log(p.rate),
        fam.Gamma: lambda p: p.xp.digamma(p.concentration) - p.xp.log(p.rate),
        fam.Beta: lambda p: p.xp.digamma(p.concentration1) - p.xp.digamma(p.concentration1 + p.concentration0),
        fam.Uniform: _mean_log_uniform,
        fam.Pareto: lambda p: p.xp.log(p.scale) + 1.0 / p.alpha,
        fam.HalfNormal: lambda p: p.xp.log(p.scale) - 0.5 * (EULER_GAMMA + math.log(2.0)),
        fam.LogNormal: lambda p: p.loc,
        fam.Weibull: lambda p: p.xp.log(p.scale) - EULER_GAMMA / p.concentration,
    },
    "var_log": {  # Var[log X]
        fam.Exponential: lambda p: math.pi**2 / 6.0 + 0.0 * p.rate,
        fam.Gamma: lambda p: p.xp.trigamma(p.concentration) + 0.0 * p.rate,
        fam.LogNormal: lambda p: p.scale**2 + 0.0 * p.loc,
        fam.Weibull: lambda p: math.pi**2 / (6.0 * p.concentration**2) + 0.0 * p.scale,
    },
    "mean_log1m": {  # E[log(1 − X)]
        fam.Beta: lambda p: p.xp.digamma(p.concentration0) - p.xp.digamma(p.concentration1 + p.concentration0),
        fam.Uniform: _mean_log1m_uniform,
    },
    "log_mgf_neg": {  # log E[exp(−tX)], t > 0
        fam.Normal: lambda p, t: -t * p.loc + 0.5 * (t * p.scale) ** 2,
        fam.Gumbel: lambda p, t: -t * p.loc + p.xp.lgamma(1.0 + t * p.scale),
        fam.Exponential: lambda p, t: p.xp.log(p.rate) - p.xp.log(p.rate + t),
        fam.Gamma: lambda p, t: -p.concentration * p.xp.log1p(t / p.rate),
        fam.Uniform: _uniform_log_mgf,
    },
    "mean_power": {  # E[X^k], k > 0
        fam.Exponential: lambda p, k: p.xp.exp(p.xp.lgamma(k + 1.0) - k * p.xp.log(p.rate)),
        fam.Gamma: lambda p, k: p.xp.exp(
            p.xp.lgamma(p.concentration + k) - p.xp.lgamma(p.concentration) - k * p.xp.log(p.rate)
        ),
        fam.LogNormal: lambda p, k: p.xp.exp(k * p.loc + 0.5 * (k * p.scale) ** 2),
        fam.Weibull: lambda p, k: p.xp.exp(k * p.xp.log(p.scale) + p.xp.lgamma(1.0 + k / p.concentration)),
        fam.HalfNormal: lambda p, k: p.xp.exp(
            k * p.xp.log(p.scale) + 0.5 * k * math.log(2.0) + p.xp.lgamma(0.5 * (k + 1.0)) - 0.5 * math.log(math.pi)
        ),
    },
    "mean_abs_dev": {  # E|X − c|
        fam.Normal: lambda p, c: _normal_mad(p.xp, p.loc, p.scale, c),
        fam.Laplace: lambda p, c: (lambda d: d + p.scale * p.xp.exp(-d / p.scale))(p.xp.abs(p.loc - c)),
        fam.Exponential: lambda p, c: _mad_from_lower(1.0 / p.rate, c, _exp_below(p, c)),
        fam.Gamma: lambda p, c: _mad_from_lower(p.concentration / p.rate, c, _gamma_below(p, c)),
        fam.Pareto: lambda p, c: _mad_from_lower(_pareto_mean(p), c, _pareto_below(p, c)),
        fam.Uniform: _uniform_mad,
        fam.HalfNormal: lambda p, c: _mad_from_lower(_SQRT_2_OVER_PI * p.scale, c, _half_normal_below(p, c)),
        fam.Gumbel: lambda p, c: _mad_from_lower(p.loc + EULER_GAMMA * p.scale, c, _gumbel_below(p, c)),
        fam.Beta: lambda p, c: _mad_from_lower(_beta_mean(p), c, _beta_below(p, c)),
    },
}


def moment(name: str, p: Any, *args: Any) -> Any:
    """An expectation under ``p`` from the table ``_MOMENTS`` of this module (nearest base class wins)."""
    table = _MOMENTS[name]
    for cls in type(p).__mro__:
        if cls in table:
            return table[cls](p, *args)
    raise NotRegisteredError(f"klkit has no closed form of `{name}` for {type(p).__name__}")
