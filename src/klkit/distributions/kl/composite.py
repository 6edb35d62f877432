"""Closed-form KL of composite laws: Independent, Transformed, and torch exponential families (Bregman form)."""

from __future__ import annotations

from typing import Any

from klkit.distributions import families as fam
from klkit.distributions._ops import (
    sum_rightmost,
)
from klkit.distributions.kl.common import kl_of
from klkit.distributions.registry import register_kl
from klkit.errors import NotRegisteredError

__all__ = []


@register_kl(fam.Independent, fam.Independent)
def _kl_independent_independent(p: fam.Independent, q: fam.Independent) -> Any:
    """Σ over the reinterpreted axes of the base KL."""
    if p.ndims != q.ndims:
        raise ValueError(
            f"`p` and `q` must reinterpret the same number of batch axes as event axes; found "
            f"{p.ndims} and {q.ndims}. Build both with the same reinterpreted_batch_ndims."
        )
    return sum_rightmost(p.xp, kl_of(p.base, q.base), p.ndims)


@register_kl(fam.Transformed, fam.Transformed)
def _kl_transformed_transformed(p: fam.Transformed, q: fam.Transformed) -> Any:
    """KL is invariant under a shared bijection: KL of the base distributions."""
    if p.transforms != q.transforms or p.event_ndims_ != q.event_ndims_:
        raise NotRegisteredError(
            "KL between TransformedDistributions has a closed form only when both use the same transforms "
            f"({p.transforms} vs {q.transforms}); use method='mc' for these."
        )
    return sum_rightmost(p.xp, kl_of(p.base, q.base), p.event_ndims_ - p.base.event_ndims)


@register_kl(fam.TorchExponentialFamily, fam.TorchExponentialFamily)
def _kl_expfamily_expfamily(p: fam.TorchExponentialFamily, q: fam.TorchExponentialFamily) -> Any:
    r"""Bregman divergence of the log-normaliser A: A(ηq) − A(ηp) − ⟨ηq − ηp, ∇A(ηp)⟩ (autograd; torch only)."""
    import torch

    dp, dq = p.dist, q.dist
    if type(dp) is not type(dq):
        raise NotRegisteredError(
            f"KL between different exponential families ({type(dp).__name__}, {type(dq).__name__}) "
            "has no Bregman form; use method='mc'."
        )
    differentiable = torch.is_grad_enabled()
    with torch.enable_grad():  # ∇A(ηp) by autograd, also when the caller computes without gradients
        # ηp stays in the graph of p's parameters (the KL is differentiable in p too); a parameter
        # that does not require grad gets a leaf that does, only to take ∇A
        eta_p = [e if e.requires_grad else e.detach().requires_grad_() for e in dp._natural_params]
        eta_q = dq._natural_params
        a_p = dp._log_normalizer(*eta_p)
        grads = torch.autograd.grad(a_p.sum(), eta_p, create_graph=differentiable)
        result = dq._log_normalizer(*eta_q) - a_p
        batch = len(torch.broadcast_shapes(dp.batch_shape, dq.batch_shape))
        for ep, eq, g in zip(eta_p, eta_q, grads, strict=True):
            term = (eq - ep) * g
            # each natural parameter's own trailing axes (torch sums len(event_shape) axes, which for
            # Wishart's scalar parameter sums across the batch)
            result = result - sum_rightmost(p.xp, term, term.dim() - batch)
    return result if differentiable else result.detach()
