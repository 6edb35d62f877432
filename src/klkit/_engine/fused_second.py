r"""The fused Functions' gradients as plain differentiable torch compositions (second derivatives).

The fused autograd Functions (:mod:`klkit._engine.fused_loss`, :mod:`klkit._engine.fused_measures`)
compute their gradients with in-place kernels on tiles, which autograd cannot differentiate. When a
backward pass runs with ``create_graph=True`` (Hessian-vector products, Fisher-vector products,
meta-learning), their ``backward`` calls these functions instead: the same analytic gradients,
written with ordinary whole-batch torch operations on the saved inputs, so that autograd
differentiates them once more (in the inputs and in the incoming gradient :math:`g_n`):

- cross-entropy loss: :math:`g_n (m_n\, \mathrm{softmax}(z_n) - a_n)` and, for probability
  targets, :math:`\partial \ell_n / \partial t_{n,c} = (1-\varepsilon) w_c (\mathrm{lse}_n - z_{n,c})\, g_n`;
- KL / cross-entropy of two softmax distributions: :math:`g_n (q - p)` for :math:`z_q` and
  :math:`g_n\, p\, (x - D_n)` for :math:`z_p`, with :math:`x = \log p - \log q` (KL) or :math:`-\log q`;
- entropy: :math:`-g_n\, p\, (\log p + H_n)`.

The support rule (:mod:`klkit._engine.support`) holds to every order: the logarithms are masked
where p = 0 *before* any product, so a ``-inf`` logit gives a zero term and finite derivatives.
Half precision is computed in float32 and returned in the inputs' dtype, as the fused Functions do.
These run only under ``create_graph=True``; first-order backward passes keep the fused kernels.

Examples
--------
Two classes at z = (0, 0): H = h(σ(z₀ − z₁)) has ∂²H/∂z₀² = −σ'(0) = −¼ and ∂²H/∂z₀∂z₁ = ¼.

>>> import torch
>>> from klkit._engine import logits_entropy
>>> z = torch.zeros(1, 2, dtype=torch.float64, requires_grad=True)
>>> (g,) = torch.autograd.grad(logits_entropy(z).sum(), z, create_graph=True)
>>> torch.autograd.grad(g[0, 0], z)[0]
tensor([[-0.2500,  0.2500]], dtype=torch.float64)
"""

from __future__ import annotations

import torch

from klkit._engine.fused_tiles import tile_dtype
from klkit._engine.support import in_support

__all__ = ["entropy_grad", "index_ce_grad", "pair_grads", "probs_ce_grads"]


def index_ce_grad(
    z: torch.Tensor,
    safe: torch.Tensor,
    valid: torch.Tensor,
    label_w: torch.Tensor,
    w: torch.Tensor | None,
    eps: float,
    g: torch.Tensor,
) -> torch.Tensor:
    """``g_n (m_n softmax(z_n) − a_n)`` for class-index targets ``safe`` (ignored rows: ``label_w`` = 0)."""
    dtype, n = tile_dtype(z.dtype), z.shape[1]
    zc = z.to(dtype)
    hit = ((1.0 - eps) * label_w.to(dtype))[:, None]
    a = torch.zeros_like(zc).scatter(1, safe[:, None], hit)  # (1 − ε) w_{y_n} at the label
    if eps > 0:
        spread = torch.ones(n, dtype=dtype, device=z.device) if w is None else w.to(dtype)
        a = a + (eps / n) * spread[None, :] * valid.to(dtype)[:, None]
    mass = a.sum(dim=-1, keepdim=True)
    return ((mass * torch.softmax(zc, dim=-1) - a) * g.to(dtype)[:, None]).to(z.dtype)


def probs_ce_grads(
    z: torch.Tensor,
    t: torch.Tensor,
    w: torch.Tensor | None,
    eps: float,
    g: torch.Tensor,
    need_z: bool,
    need_t: bool,
) -> tuple[torch.Tensor | None, torch.Tensor | None]:
    """(∂ℓ/∂z, ∂ℓ/∂t) · g for probability targets, a = w((1−ε)t + ε/C), m = Σ_c a."""
    dtype, n = tile_dtype(z.dtype), z.shape[1]
    zc, gc = z.to(dtype), g.to(dtype)[:, None]
    grad_z = grad_t = None
    if need_z:
        a = t.to(dtype) * (1.0 - eps) + eps / n
        a = a if w is None else a * w.to(dtype)
        mass = a.sum(dim=-1, keepdim=True)
        grad_z = ((mass * torch.softmax(zc, dim=-1) - a) * gc).to(z.dtype)
    if need_t:
        o = (torch.logsumexp(zc, dim=-1, keepdim=True) - zc) * ((1.0 - eps) * gc)
        grad_t = (o if w is None else o * w.to(dtype)).to(t.dtype)
    return grad_z, grad_t


def pair_grads(
    zp: torch.Tensor, zq: torch.Tensor, kl: bool, g: torch.Tensor, need_p: bool, need_q: bool
) -> tuple[torch.Tensor | None, torch.Tensor | None]:
    """Gradients of KL(p‖q) (``kl``) or H(p, q) per row, times g, wrt the logits of p and q."""
    dtype = tile_dtype(torch.promote_types(zp.dtype, zq.dtype))
    lp = torch.log_softmax(zp.to(dtype), dim=-1)
    lq = torch.log_softmax(zq.to(dtype), dim=-1)
    p, gc = lp.exp(), g.to(dtype)[:, None]
    grad_p = grad_q = None
    if need_q:
        grad_q = ((lq.exp() - p) * gc).to(zq.dtype)
    if need_p:
        inside = in_support(p)
        x = torch.where(inside, lp - lq if kl else -lq, 0.0)  # masked before any product
        value = (p * x).sum(dim=-1, keepdim=True)
        grad_p = (torch.where(inside, p * (x - value), 0.0) * gc).to(zp.dtype)
    return grad_p, grad_q


def entropy_grad(z: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    """``−g_n p (log p + H_n)``, 0 where p = 0."""
    dtype = tile_dtype(z.dtype)
    lp = torch.log_softmax(z.to(dtype), dim=-1)
    p = lp.exp()
    x = torch.where(in_support(p), lp, 0.0)
    h = -(p * x).sum(dim=-1, keepdim=True)
    return (-p * (x + h) * g.to(dtype)[:, None]).to(z.dtype)
