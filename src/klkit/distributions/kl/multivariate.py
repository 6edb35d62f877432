"""Closed-form KL of multivariate laws: Dirichlet, MultivariateNormal, LowRankMultivariateNormal."""

from __future__ import annotations

from typing import Any

from klkit.distributions import families as fam
from klkit.distributions.entropy_forms import (
    low_rank_as_full,
)
from klkit.distributions.registry import register_kl

__all__ = ["mvn_kl"]


@register_kl(fam.Dirichlet, fam.Dirichlet)
def _kl_dirichlet_dirichlet(p: fam.Dirichlet, q: fam.Dirichlet) -> Any:
    """log Γ(α₀) − log Γ(β₀) − Σ[log Γ(αi) − log Γ(βi)] + Σ (αi − βi)(ψ(αi) − ψ(α₀))."""
    xp = p.xp
    a, b = p.concentration, q.concentration
    a0, b0 = xp.sum(a), xp.sum(b)
    return (
        xp.lgamma(a0)
        - xp.lgamma(b0)
        - xp.sum(xp.lgamma(a) - xp.lgamma(b))
        + xp.sum((a - b) * (xp.digamma(a) - xp.digamma(a0)[..., None]))
    )


def mvn_kl(p: fam.MultivariateNormal, q: fam.MultivariateNormal) -> Any:
    r"""Σ log diag Lq − Σ log diag Lp + ½(‖Lq⁻¹Lp‖²_F + ‖Lq⁻¹(μq−μp)‖² − d)."""
    xp = p.xp
    d = p.loc.shape[-1]
    if q.loc.shape[-1] != d:
        raise ValueError(f"`p` and `q` must have the same dimension; found {d} and {q.loc.shape[-1]}.")
    half_logdet = xp.sum(xp.log(xp.diagonal(q.scale_tril))) - xp.sum(xp.log(xp.diagonal(p.scale_tril)))
    trace = xp.sum(xp.sum(xp.solve_lower(q.scale_tril, p.scale_tril) ** 2))
    diff = (q.loc - p.loc)[..., None]
    maha = xp.sum(xp.sum(xp.solve_lower(q.scale_tril, diff) ** 2))
    return half_logdet + 0.5 * (trace + maha - d)


register_kl(fam.MultivariateNormal, fam.MultivariateNormal)(mvn_kl)


@register_kl(fam.LowRankMultivariateNormal, fam.LowRankMultivariateNormal)
def _kl_lowrank_lowrank(p: fam.LowRankMultivariateNormal, q: fam.LowRankMultivariateNormal) -> Any:
    """As full-covariance Gaussians (covariance W Wᵀ + diag(D) factorised)."""
    return mvn_kl(low_rank_as_full(p), low_rank_as_full(q))


@register_kl(fam.MultivariateNormal, fam.LowRankMultivariateNormal)
def _kl_mvn_lowrank(p: fam.MultivariateNormal, q: fam.LowRankMultivariateNormal) -> Any:
    return mvn_kl(p, low_rank_as_full(q))


@register_kl(fam.LowRankMultivariateNormal, fam.MultivariateNormal)
def _kl_lowrank_mvn(p: fam.LowRankMultivariateNormal, q: fam.MultivariateNormal) -> Any:
    return mvn_kl(low_rank_as_full(p), q)
