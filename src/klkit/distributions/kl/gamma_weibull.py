"""Gamma(1, λ) = Exponential(λ) = Weibull(1/λ, 1): cross-family KLs regrouped so the first-order terms cancel."""

from __future__ import annotations

from typing import Any

from klkit.distributions import families as fam
from klkit.distributions._ops import EULER_GAMMA
from klkit.distributions._precise import digamma1p_euler, expm1mx, lgamma1p_euler, log1pmx, log_product
from klkit.distributions.kl import cross  # noqa: F401  (registers the generic forms that this module overrides)
from klkit.distributions.registry import register_kl

__all__ = []


# ---------------------------------------------------------------------------------------------------
# Cross-family pairs that can be near-identical (Gamma(1, λ) = Exponential(λ) = Weibull(1/λ, 1)):
# the closed forms regrouped so that the first-order terms cancel analytically, not H(p, q) − H(p).
# With α = shape_gamma − 1, d = k − 1 (exact), t = log(rate · scale) (exact product),
# G(x) = lgamma(1+x) + γx and P(x) = ψ(1+x) + γ (series near 0), log1pmx and expm1mx:
# every term is O(distance²) and computed to full relative precision. Measured against 50-digit
# mpmath references (tests/test_distributions_accuracy.py) at shape offsets 1e-6..1e-9 and
# rate·scale offsets 1e-8: relative error ≤ 4e-16 (H(p, q) − H(p): 1e-5 at offsets 1e-6, 1 to 500
# at offsets 1e-9, i.e. no correct digit); far apart ≤ 1e-13 (Gamma(5, 2) ‖ Weibull(3, 2.5): 7e-14).
# ---------------------------------------------------------------------------------------------------
def _shape_rate(p: Any) -> tuple[Any, Any]:
    """(concentration, rate) of a Gamma; an Exponential is Gamma(1, rate)."""
    if isinstance(p, fam.Gamma):
        return p.concentration, p.rate
    return 0.0 * p.rate + 1.0, p.rate


@register_kl(fam.Exponential, fam.Gamma, override=True)
def _kl_exponential_gamma(p: fam.Exponential, q: fam.Gamma) -> Any:
    r"""−log1pmx(u) − d·log1p(u) + G(d), u = (βq − λp)/λp, d = αq − 1 (Gamma(1, λ) against Gamma(αq, βq)).

    Relative error ≤ 1e-16 against 50-digit mpmath for Exponential(1) vs Gamma(1 + 1e-6, 1) (was 1.6e-5
    as H(p, q) − H(p)).
    """
    xp = p.xp
    a, b = q.concentration, q.rate
    d, u = a - 1.0, (b - p.rate) / p.rate
    return -log1pmx(xp, u) - d * xp.log1p(u) + lgamma1p_euler(xp, d, a)


@register_kl(fam.Gamma, fam.Exponential, override=True)
def _kl_gamma_exponential(p: fam.Gamma, q: fam.Exponential) -> Any:
    r"""−log1pmx(u) + d·u + d·P(d) − G(d), u = (λq − βp)/βp, d = αp − 1 (Gamma(αp, βp) against Gamma(1, λq)).

    Relative error ≤ 2e-16 against 50-digit mpmath for Gamma(1 + 1e-6, 1) vs Exponential(1) (was 1.6e-5).
    """
    xp = p.xp
    a, b = p.concentration, p.rate
    d, u = a - 1.0, (q.rate - b) / b
    return -log1pmx(xp, u) + d * u + d * digamma1p_euler(xp, d, a) - lgamma1p_euler(xp, d, a)


def _kl_gamma_weibull(p: Any, q: fam.Weibull) -> Any:
    r"""KL(Gamma(a, b) ‖ Weibull(s, k)) = expm1mx(M) + R (Exponential: a = 1).

    M = log Γ(a + k) − log Γ(a) − k t = log1p(α + d) + G(α + d) − G(α) − γd − k t and
    R = log1pmx(α/k) − αd/k + G(α + d) − 2G(α) + (α − d) P(α).
    """
    xp = p.xp
    a, b = _shape_rate(p)
    k = q.concentration
    alpha, d = a - 1.0, k - 1.0
    t = log_product(xp, b, q.scale)
    g_ad, g_a = lgamma1p_euler(xp, alpha + d, a + d), lgamma1p_euler(xp, alpha, a)
    m = xp.log1p(alpha + d) + g_ad - g_a - EULER_GAMMA * d - k * t
    r = log1pmx(xp, alpha / k) - alpha * d / k + g_ad - 2.0 * g_a + (alpha - d) * digamma1p_euler(xp, alpha, a)
    return expm1mx(xp, m) + r


def _kl_weibull_gamma(p: fam.Weibull, q: Any) -> Any:
    r"""KL(Weibull(s, k) ‖ Gamma(a, b)) = expm1mx(E) + G(e) + G(α) + α(γe − t) (Exponential: a = 1).

    e = 1/k − 1 and E = t + log Γ(1 + 1/k) = t − log k − γe + G(e).
    """
    xp = p.xp
    a, b = _shape_rate(q)
    k = p.concentration
    alpha, e = a - 1.0, (1.0 - k) / k
    t = log_product(xp, b, p.scale)
    g_e = lgamma1p_euler(xp, e, 1.0 / k)
    big_e = t - xp.log(k) - EULER_GAMMA * e + g_e
    return expm1mx(xp, big_e) + g_e + lgamma1p_euler(xp, alpha, a) + alpha * (EULER_GAMMA * e - t)


for _p in (fam.Exponential, fam.Gamma):
    register_kl(_p, fam.Weibull, override=True)(_kl_gamma_weibull)
    register_kl(fam.Weibull, _p, override=True)(_kl_weibull_gamma)
