r"""Closed-form differential (or Shannon) entropies, written once for numpy and torch.

Each function takes a family record (:mod:`klkit.distributions.families`) and
returns :math:`H(P) = -E_P[\log p(X)]` in nats with the batch shape. Poisson
and Binomial have no elementary closed form; their entropies are exact sums
over the support (truncated where the Poisson tail is below 1e-17 of the total).
"""

from __future__ import annotations

import math
from typing import Any

from klkit.distributions import families as fam
from klkit.distributions._ops import EULER_GAMMA, log_beta, sum_rightmost
from klkit.distributions.registry import lookup_entropy, register_entropy

__all__ = ["bernoulli_entropy", "entropy_of", "log_normaliser_continuous_bernoulli"]

_HALF_LOG_2PI = 0.5 * math.log(2 * math.pi)


def entropy_of(p: Any) -> Any:
    """The registered closed-form entropy of a family record (used by the cross-family KL forms)."""
    function = lookup_entropy(type(p))
    if function is None:
        from klkit.errors import NotRegisteredError

        raise NotRegisteredError(f"no closed-form entropy is registered for {type(p).__name__}")
    return function(p)


# --- real line -------------------------------------------------------------------------------------
@register_entropy(fam.Normal)
def _entropy_normal(p: fam.Normal) -> Any:
    """½ log(2πe σ²)."""
    return 0.5 + _HALF_LOG_2PI + p.xp.log(p.scale) + 0.0 * p.loc  # (batch shape of both parameters)


@register_entropy(fam.Laplace)
def _entropy_laplace(p: fam.Laplace) -> Any:
    """1 + log(2b)."""
    return 1.0 + math.log(2.0) + p.xp.log(p.scale) + 0.0 * p.loc


@register_entropy(fam.Cauchy)
def _entropy_cauchy(p: fam.Cauchy) -> Any:
    """log(4πγ)."""
    return math.log(4 * math.pi) + p.xp.log(p.scale) + 0.0 * p.loc


@register_entropy(fam.Gumbel)
def _entropy_gumbel(p: fam.Gumbel) -> Any:
    """log β + γ + 1."""
    return p.xp.log(p.scale) + EULER_GAMMA + 1.0 + 0.0 * p.loc


@register_entropy(fam.StudentT)
def _entropy_student_t(p: fam.StudentT) -> Any:
    """(ν+1)/2 [ψ((ν+1)/2) − ψ(ν/2)] + log(√ν B(ν/2, ½)) + log σ."""
    xp, nu = p.xp, p.df
    return (
        0.5 * (nu + 1) * (xp.digamma(0.5 * (nu + 1)) - xp.digamma(0.5 * nu))
        + 0.5 * xp.log(nu)
        + log_beta(xp, 0.5 * nu, 0.5 + 0.0 * nu)
        + xp.log(p.scale)
        + 0.0 * p.loc
    )


# --- half line -------------------------------------------------------------------------------------
@register_entropy(fam.Exponential)
def _entropy_exponential(p: fam.Exponential) -> Any:
    """1 − log λ."""
    return 1.0 - p.xp.log(p.rate)


@register_entropy(fam.Gamma)
def _entropy_gamma(p: fam.Gamma) -> Any:
    """α − log β + log Γ(α) + (1 − α) ψ(α)."""
    xp, a = p.xp, p.concentration
    return a - xp.log(p.rate) + xp.lgamma(a) + (1.0 - a) * xp.digamma(a)


@register_entropy(fam.InverseGamma)
def _entropy_inverse_gamma(p: fam.InverseGamma) -> Any:
    """α + log β + log Γ(α) − (1 + α) ψ(α)."""
    xp, a = p.xp, p.concentration
    return a + xp.log(p.rate) + xp.lgamma(a) - (1.0 + a) * xp.digamma(a)


@register_entropy(fam.HalfNormal)
def _entropy_half_normal(p: fam.HalfNormal) -> Any:
    """½ log(πeσ²/2)."""
    return 0.5 * math.log(math.pi / 2) + 0.5 + p.xp.log(p.scale)


@register_entropy(fam.LogNormal)
def _entropy_log_normal(p: fam.LogNormal) -> Any:
    """μ + ½ log(2πe σ²)."""
    return p.loc + 0.5 + _HALF_LOG_2PI + p.xp.log(p.scale)


@register_entropy(fam.Weibull)
def _entropy_weibull(p: fam.Weibull) -> Any:
    """γ (1 − 1/k) + log(λ/k) + 1."""
    xp, k = p.xp, p.concentration
    return EULER_GAMMA * (1.0 - 1.0 / k) + xp.log(p.scale) - xp.log(k) + 1.0


@register_entropy(fam.Pareto)
def _entropy_pareto(p: fam.Pareto) -> Any:
    """log(x_m / α) + 1/α + 1."""
    xp = p.xp
    return xp.log(p.scale) - xp.log(p.alpha) + 1.0 / p.alpha + 1.0


# --- bounded ---------------------------------------------------------------------------------------
@register_entropy(fam.Uniform)
def _entropy_uniform(p: fam.Uniform) -> Any:
    """log(high − low)."""
    return p.xp.log(p.high - p.low)


@register_entropy(fam.Beta)
def _entropy_beta(p: fam.Beta) -> Any:
    """log B(a, b) − (a−1)ψ(a) − (b−1)ψ(b) + (a+b−2)ψ(a+b)."""
    xp, a, b = p.xp, p.concentration1, p.concentration0
    return log_beta(xp, a, b) - (a - 1) * xp.digamma(a) - (b - 1) * xp.digamma(b) + (a + b - 2) * xp.digamma(a + b)


_CB_CUT = 1e-3  # |λ − ½| below this: Taylor expansions (the exact forms are 0/0 at ½)


def _cb_parts(p: fam.ContinuousBernoulli) -> tuple[Any, Any, Any, Any]:
    """(x, near, safe λ, log((1 − λ)/λ)) for the continuous Bernoulli expressions."""
    xp, lam = p.xp, p.probs
    x = lam - 0.5
    near = xp.abs(x) < _CB_CUT
    safe = xp.where(near, 0.5 - _CB_CUT + 0.0 * lam, lam)  # keeps the far branch finite (and its gradient)
    two_atanh = xp.log1p(-safe) - xp.log(safe)  # 2 atanh(1 − 2λ)
    return x, near, safe, two_atanh


def log_normaliser_continuous_bernoulli(p: fam.ContinuousBernoulli) -> Any:
    r"""log C(λ) with :math:`C(λ) = 2\,\mathrm{atanh}(1-2λ)/(1-2λ)` (C(½) = 2)."""
    xp = p.xp
    x, near, safe, two_atanh = _cb_parts(p)
    exact = xp.log(xp.abs(two_atanh)) - xp.log(xp.abs(1.0 - 2.0 * safe))
    taylor = math.log(2.0) + (4.0 / 3.0) * x**2 + (104.0 / 45.0) * x**4
    return xp.where(near, taylor, exact)


def mean_continuous_bernoulli(p: fam.ContinuousBernoulli) -> Any:
    """E[X] = λ/(2λ−1) + 1/(2 atanh(1−2λ))."""
    xp = p.xp
    x, near, safe, two_atanh = _cb_parts(p)
    exact = safe / (2.0 * safe - 1.0) + 1.0 / two_atanh
    taylor = 0.5 + (1.0 / 3.0 + (16.0 / 45.0) * x**2) * x
    return xp.where(near, taylor, exact)


def variance_continuous_bernoulli(p: fam.ContinuousBernoulli) -> Any:
    """Var[X] = λ(λ−1)/(1−2λ)² + 1/(2 atanh(1−2λ))²."""
    xp = p.xp
    x, near, safe, two_atanh = _cb_parts(p)
    exact = safe * (safe - 1.0) / (1.0 - 2.0 * safe) ** 2 + 1.0 / two_atanh**2
    taylor = 1.0 / 12.0 - (1.0 / 15.0 - (128.0 / 945.0) * x**2) * x**2
    return xp.where(near, taylor, exact)


@register_entropy(fam.ContinuousBernoulli)
def _entropy_continuous_bernoulli(p: fam.ContinuousBernoulli) -> Any:
    """−log C(λ) − E[X] log λ − (1 − E[X]) log(1 − λ)."""
    xp = p.xp
    mean = mean_continuous_bernoulli(p)
    log1m = -xp.softplus(p.logits)  # log(1 − λ)
    return -log_normaliser_continuous_bernoulli(p) - mean * p.logits - log1m


@register_entropy(fam.VonMises)
def _entropy_von_mises(p: fam.VonMises) -> Any:
    """log(2π s I0(κ)) − κ I1(κ)/I0(κ) over one period (s the scale), with exponentially scaled Bessel functions."""
    xp, k = p.xp, p.concentration
    i0e = xp.i0e(k)
    log_scale = math.log(p.scale) if isinstance(p.scale, float) else xp.log(p.scale)
    return math.log(2 * math.pi) + xp.log(i0e) + k - k * xp.i1e(k) / i0e + log_scale + 0.0 * p.loc


# --- multivariate ----------------------------------------------------------------------------------
@register_entropy(fam.MultivariateNormal)
def _entropy_mvn(p: fam.MultivariateNormal) -> Any:
    """d/2 (1 + log 2π) + Σ log diag(L)."""
    xp = p.xp
    d = p.loc.shape[-1]
    return d * (0.5 + _HALF_LOG_2PI) + xp.sum(xp.log(xp.diagonal(p.scale_tril))) + 0.0 * p.loc[..., 0]


def low_rank_as_full(p: fam.LowRankMultivariateNormal) -> fam.MultivariateNormal:
    """The same Gaussian with its covariance ``W Wᵀ + diag(D)`` factorised (exact, O(d³))."""
    xp = p.xp
    W = p.cov_factor
    d = p.loc.shape[-1]
    eye = xp.asarray(_eye(d, W))
    cov = W @ xp.transpose(W) + p.cov_diag[..., :, None] * eye
    return fam.MultivariateNormal(xp, p.loc, xp.cholesky(cov))


def _eye(d: int, like: Any) -> Any:
    import numpy as np

    if type(like).__module__.startswith("torch"):
        import torch

        return torch.eye(d, dtype=like.dtype, device=like.device)
    return np.eye(d)


@register_entropy(fam.LowRankMultivariateNormal)
def _entropy_low_rank_mvn(p: fam.LowRankMultivariateNormal) -> Any:
    """As the full-covariance Gaussian."""
    return _entropy_mvn(low_rank_as_full(p))


@register_entropy(fam.Dirichlet)
def _entropy_dirichlet(p: fam.Dirichlet) -> Any:
    """log B(α) + (α₀ − K) ψ(α₀) − Σ (α_j − 1) ψ(α_j)."""
    xp, a = p.xp, p.concentration
    a0 = xp.sum(a)
    k = a.shape[-1]
    log_b = xp.sum(xp.lgamma(a)) - xp.lgamma(a0)
    return log_b + (a0 - k) * xp.digamma(a0) - xp.sum((a - 1.0) * xp.digamma(a))


# --- discrete --------------------------------------------------------------------------------------
def bernoulli_entropy(xp: Any, probs: Any, logits: Any) -> Any:
    """−π log π − (1−π) log(1−π) from logits (``log π = −softplus(−ℓ)``), 0 at π ∈ {0, 1}."""
    t1 = xp.where(probs > 0, probs * xp.softplus(-logits), 0.0)
    t0 = xp.where(probs < 1, (1.0 - probs) * xp.softplus(logits), 0.0)
    return t1 + t0


@register_entropy(fam.Bernoulli)
def _entropy_bernoulli(p: fam.Bernoulli) -> Any:
    return bernoulli_entropy(p.xp, p.probs, p.logits)


@register_entropy(fam.Geometric)
def _entropy_geometric(p: fam.Geometric) -> Any:
    """H_Bernoulli(π) / π."""
    return bernoulli_entropy(p.xp, p.probs, p.logits) / p.probs


@register_entropy(fam.Categorical)
def _entropy_categorical(p: fam.Categorical) -> Any:
    """−Σ p_i log p_i, in log space via :func:`klkit.entropy`."""
    from klkit.measures import entropy

    return entropy(p.log_probs, kind="log_probs", validate=False)


register_entropy(fam.OneHotCategorical)(_entropy_categorical)


def binomial_log_pmf(xp: Any, k: Any, n: Any, probs: Any) -> Any:
    """log C(n, k) + k log π + (n − k) log(1 − π); −inf for k > n."""
    inside = k <= n
    m = xp.where(inside, n - k, 0.0 * k)
    value = xp.lgamma(n + 1.0) - xp.lgamma(k + 1.0) - xp.lgamma(m + 1.0) + xp.xlogy(k, probs) + xp.xlogy(m, 1.0 - probs)
    return xp.where(inside, value, -math.inf)


def support_grid(xp: Any, size: int, like: Any) -> Any:
    """0, 1, …, size−1 on a new trailing axis, matching ``like``'s backend."""
    return xp.arange(size, xp.asarray(like) if xp.name == "numpy" else like)


@register_entropy(fam.Binomial)
def _entropy_binomial(p: fam.Binomial) -> Any:
    """−Σ_k P(k) log P(k), k = 0 … n (exact sum)."""
    xp = p.xp
    n_max = int(float(_max(xp, p.total_count)))
    k = support_grid(xp, n_max + 1, p.probs)
    logp = binomial_log_pmf(xp, k, p.total_count[..., None], p.probs[..., None])
    return -xp.sum(xp.where(logp > -math.inf, xp.exp(logp) * logp, 0.0))


def poisson_log_pmf(xp: Any, k: Any, rate: Any) -> Any:
    return xp.xlogy(k, rate) - rate - xp.lgamma(k + 1.0)


def poisson_support_size(xp: Any, rate: Any) -> int:
    """Terms enough that the omitted tail mass is negligible in float64."""
    top = float(_max(xp, rate))
    return int(top + 12.0 * math.sqrt(top) + 40.0)


def _max(xp: Any, x: Any) -> Any:
    import numpy as np

    if xp.name == "numpy":
        return np.max(x) if np.size(x) else 0.0
    return x.detach().max() if x.numel() else 0.0


@register_entropy(fam.Poisson)
def _entropy_poisson(p: fam.Poisson) -> Any:
    """−Σ_k P(k) log P(k) over k = 0 … ⌈λ + 12√λ + 40⌉ (series; tail below float64 resolution)."""
    xp = p.xp
    k = support_grid(xp, poisson_support_size(xp, p.rate), p.rate)
    logp = poisson_log_pmf(xp, k, p.rate[..., None])
    return -xp.sum(xp.where(logp > -math.inf, xp.exp(logp) * logp, 0.0))


# --- composites ------------------------------------------------------------------------------------
@register_entropy(fam.Independent)
def _entropy_independent(p: fam.Independent) -> Any:
    """Sum of the base entropies over the reinterpreted axes."""
    return sum_rightmost(p.xp, entropy_of(p.base), p.ndims)


@register_entropy(fam.Transformed)
def _entropy_transformed(p: fam.Transformed) -> Any:
    """H(base) + Σ log|scale| for a chain of scalar affine maps (constant Jacobian); others have no closed form."""
    import torch

    affine = torch.distributions.transforms.AffineTransform
    if p.event_ndims_ != p.base.event_ndims or not all(
        isinstance(t, affine) and t.event_dim == 0 for t in p.transforms
    ):
        from klkit.errors import NotRegisteredError

        raise NotRegisteredError(
            "a TransformedDistribution has a closed-form entropy here only through scalar AffineTransforms; "
            f"found {[type(t).__name__ for t in p.transforms]}. Use method='mc'."
        )
    h = entropy_of(p.base)
    for t in p.transforms:
        log_scale = torch.log(torch.abs(torch.as_tensor(t.scale, dtype=h.dtype, device=h.device)))
        h = h + log_scale
    return h


@register_entropy(fam.TorchExponentialFamily)
def _entropy_torch_exponential_family(p: fam.TorchExponentialFamily) -> Any:
    """The distribution's own closed form (torch implements one for each of its exponential families)."""
    return p.dist.entropy()
