"""Forward fits, KL(target‖q): the Gaussian of the target's moments, and EM for mixtures."""

from __future__ import annotations

import math
from typing import Any

from klkit.fitting.family import Shape, build, scale_from_cov

__all__ = ["em", "exact_moments", "gaussian_of_moments", "moment_match"]


def exact_moments(target: Any, shape: Shape, covariance: str) -> tuple[Any, Any] | None:
    r"""The target's exact mean (d,) and covariance (d, d), or None where torch does not give them.

    A mixture :math:`\sum_k w_k p_k` of Gaussian components (``MixtureSameFamily`` over ``Normal``,
    ``Independent(Normal)`` or ``MultivariateNormal``) has mean :math:`\mu = \sum_k w_k\mu_k` and
    covariance :math:`\sum_k w_k(\Sigma_k + \mu_k\mu_k^\top) - \mu\mu^\top`, computed as
    :math:`\sum_k w_k(\Sigma_k + (\mu_k - \mu)(\mu_k - \mu)^\top)` (no cancellation). Other
    targets: their ``mean`` and ``covariance_matrix`` (or ``variance`` for scalar events, for
    ``Independent`` ones, and whenever only the diagonal is fitted).
    """
    import torch
    from torch.distributions import Independent, MixtureSameFamily

    try:
        if isinstance(target, MixtureSameFamily):
            comp = target.component_distribution
            component_cov = _covariance(comp, shape)
            if component_cov is None:
                return None
            w = target.mixture_distribution.probs  # (k,)
            mu_k = shape.flat(comp.mean)  # (k, d)
            mean = (w[:, None] * mu_k).sum(0)
            spread = mu_k - mean
            cov = (w[:, None, None] * (component_cov + spread[:, :, None] * spread[:, None, :])).sum(0)
        else:
            mean = shape.flat(target.mean[None])[0]
            cov = _covariance(target, shape)
            if cov is None and (covariance == "diag" or isinstance(target, Independent)):
                cov = torch.diag_embed(shape.flat(target.variance[None])[0])
    except NotImplementedError:
        return None
    if cov is None or not bool(torch.isfinite(mean).all() and torch.isfinite(cov).all()):
        return None
    return mean, cov


def _covariance(dist: Any, shape: Shape) -> Any | None:
    """(..., d, d) covariance of a Gaussian (or scalar) distribution, None for other vector families."""
    import torch
    from torch.distributions import Independent, MultivariateNormal, Normal

    if shape.scalar:
        return dist.variance[..., None, None]
    if isinstance(dist, MultivariateNormal):
        return dist.covariance_matrix
    if isinstance(dist, Independent) and isinstance(dist.base_dist, Normal):
        return torch.diag_embed(dist.variance)
    return None


def gaussian_of_moments(mean: Any, cov: Any, covariance: str, shape: Shape) -> tuple[Any, float, int, list[float]]:
    r"""The Gaussian with the target's exact mean and covariance: the forward-KL optimum, in closed form.

    Its loss is the exact cross-entropy
    :math:`E_p[-\log q] = \tfrac12(d\log 2\pi + \log\det\Sigma + d)` (the expectation of the
    quadratic form under p is :math:`\operatorname{tr}(\Sigma^{-1}\Sigma) = d`).
    """
    import torch

    if covariance == "diag" or shape.scalar:
        cov = torch.diag(torch.diagonal(cov))
    q = build(shape, mean[None], scale_from_cov(cov[None], covariance, shape), covariance, None)
    d = shape.d
    loss = 0.5 * (d * math.log(2 * math.pi) + float(torch.linalg.slogdet(cov)[1]) + d)
    return q, loss, 0, [loss]


def moment_match(x: Any, covariance: str, shape: Shape) -> tuple[Any, float, int, list[float]]:
    """The Gaussian MLE of samples x (n, d): sample mean and (biased, 1/n) covariance."""
    import torch

    mean = x.mean(0)
    centred = x - mean
    cov = centred.T @ centred / x.shape[0]
    if covariance == "diag" or shape.scalar:
        cov = torch.diag(torch.diagonal(cov))
    q = build(shape, mean[None], scale_from_cov(cov[None], covariance, shape), covariance, None)
    nll = -float(q.log_prob(shape.unflat(x)).mean())
    return q, nll, 0, [nll]


def em(
    x: Any, k: int, covariance: str, shape: Shape, max_iter: int = 300, tol: float = 1e-7
) -> tuple[Any, float, int, list[float]]:
    """EM for a k-component Gaussian mixture on x (n, d), k-means++ start; returns (q, final NLL, iterations, trace)."""
    import torch

    n, d = x.shape
    dtype = x.dtype
    eye = torch.eye(d, dtype=dtype)
    jitter = 1e-6 * torch.clamp(x.var(0).mean(), min=1e-12)
    # k-means++ start: each new centre drawn with probability ∝ squared distance to the nearest centre
    centres = x[torch.randint(n, (1,))]
    for _ in range(1, k):
        d2 = torch.cdist(x, centres).min(1).values ** 2
        centres = torch.cat([centres, x[torch.multinomial(d2 / d2.sum(), 1)]])
    cov = ((x - x.mean(0)).T @ (x - x.mean(0)) / n)[None].repeat(k, 1, 1) / k ** (2 / d) + jitter * eye
    if covariance == "diag" or shape.scalar:
        cov = torch.diag_embed(torch.diagonal(cov, dim1=-2, dim2=-1))
    logw = torch.full((k,), -math.log(k), dtype=dtype)
    mean = centres
    trace: list[float] = []
    for it in range(1, max_iter + 1):
        q = build(shape, mean, scale_from_cov(cov, covariance, shape), covariance, logw)
        comp_lp = q.component_distribution.log_prob(shape.unflat(x)[:, None] if shape.scalar else x[:, None, :])
        joint = comp_lp + logw  # (n, k)
        lse = torch.logsumexp(joint, 1)
        trace.append(-float(lse.mean()))
        resp = torch.exp(joint - lse[:, None])  # E-step: responsibilities (n, k)
        nk = resp.sum(0) + 1e-12
        logw = torch.log(nk / n)  # M-step
        mean = (resp.T @ x) / nk[:, None]
        diff = x[None] - mean[:, None]  # (k, n, d)
        cov = torch.einsum("kn,kni,knj->kij", resp.T, diff, diff) / nk[:, None, None] + jitter * eye
        if covariance == "diag" or shape.scalar:
            cov = torch.diag_embed(torch.diagonal(cov, dim1=-2, dim2=-1))
        if it > 1 and abs(trace[-2] - trace[-1]) < tol * max(1.0, abs(trace[-1])):
            break
    q = build(shape, mean, scale_from_cov(cov, covariance, shape), covariance, logw)
    nll = -float(q.log_prob(shape.unflat(x)).mean())
    trace.append(nll)
    return q, nll, it, trace
