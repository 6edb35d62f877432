"""The fused torch autograd Function of the cross-entropy loss (:func:`klkit.losses.cross_entropy_loss`).

Class-index or probability targets, class weights, label smoothing, ignored positions; the
gradient is ``m_n softmax(z_n) - a_n``, computed on tiles (:mod:`klkit._engine.fused_tiles`
states the conventions).
"""

from __future__ import annotations

from typing import Any

import torch

from klkit._engine.fused_second import index_ce_grad, probs_ce_grads
from klkit._engine.fused_tiles import Tiles, block_lse, rows_lse, tile_dtype, zeros_per_row

__all__ = ["logits_cross_entropy"]


# ---------------------------------------------------------------------------
# Cross-entropy loss: class-index or probability targets, class weights, smoothing
# ---------------------------------------------------------------------------


class _IndexCE(torch.autograd.Function):
    """ℓ_n = m_n lse_n − (1−ε) w_{y_n} z_{n,y_n} − (ε/C) Σ_c w_c z_{n,c}; 0 for ignored positions."""

    @staticmethod
    def forward(
        ctx: Any, z: torch.Tensor, y: torch.Tensor, weight: torch.Tensor | None, eps: float, ignore_index: int
    ) -> tuple[torch.Tensor, torch.Tensor]:
        n = z.shape[1]
        tiles = Tiles(z, tile_dtype(z.dtype), lean=not any(ctx.needs_input_grad))
        valid = y != ignore_index
        safe = torch.where(valid, y, torch.zeros_like(y)).clamp(0, n - 1).long()  # the caller validates
        w = None if weight is None else weight.to(tiles.dtype)
        label_w = valid.to(tiles.dtype) if w is None else w[safe] * valid  # w_{y_n}, 0 where ignored
        lse = rows_lse(z, tiles) if z.shape[0] else zeros_per_row(0, z, tiles.dtype)
        picked = z.gather(1, safe[:, None])[:, 0].to(tiles.dtype)
        picked = torch.where(label_w != 0, label_w * picked, torch.zeros_like(picked))  # no 0·(−inf)
        loss = (1.0 - eps) * (label_w * lse - picked)
        if eps > 0:
            total_w = float(n) if w is None else w.sum()
            loss = loss + (eps / n) * (total_w * lse - _weighted_row_sums(z, w, tiles))
        loss = torch.where(valid, loss, torch.zeros_like(loss))
        ctx.save_for_backward(z, safe, valid, label_w, lse, w)
        ctx.eps = eps
        ctx.mark_non_differentiable(lse)
        return loss.to(z.dtype), lse

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor, _grad_lse: Any) -> tuple[Any, ...]:
        z, safe, valid, label_w, lse, w = ctx.saved_tensors
        eps, n = ctx.eps, z.shape[1]
        if torch.is_grad_enabled():  # create_graph=True: a composition autograd can differentiate again
            return index_ce_grad(z, safe, valid, label_w, w, eps, grad), None, None, None, None
        tiles = Tiles(z, lse.dtype)
        g = grad.to(lse.dtype)
        hit = g * (1.0 - eps) * label_w  # g_n a_{n,y_n} from the label, subtracted there
        spread = g * (eps / n) * valid  # g_n ε/C, times w_c, subtracted everywhere
        mass = hit + spread * (float(n) if w is None else w.sum())  # g_n m_n
        # g_n m_n softmax(z_n) = exp(z_n − lse_n + log(g_n m_n)) when g_n m_n ≥ 0 (the usual case:
        # a loss being minimised): one pass fewer. A row of mass 0 gives exp(−inf) = 0. Deciding
        # needs the host, which is free on the CPU only (and not allowed while compiling).
        folded = z.device.type == "cpu" and not torch.compiler.is_compiling() and bool((mass >= 0).all())
        shift = lse - torch.log(mass) if folded else lse
        out = torch.empty_like(z)
        for rs in tiles.row_slices:
            for cs in tiles.col_slices:
                o = torch.sub(z[rs, cs], shift[rs, None], out=tiles.out(out, rs, cs, 1)).exp_()
                if not folded:
                    o.mul_(mass[rs, None])
                if eps > 0:
                    if w is None:
                        o.sub_(spread[rs, None])
                    else:
                        o.addcmul_(spread[rs, None], w[None, cs], value=-1.0)
                col = safe[rs] - cs.start
                inside = (col >= 0) & (col < o.shape[1])
                delta = torch.where(inside, -hit[rs], torch.zeros_like(hit[rs]))
                o.scatter_add_(1, col.clamp(0, o.shape[1] - 1)[:, None], delta[:, None])
                tiles.store(out, rs, cs, o)
        return out, None, None, None, None


def _weighted_row_sums(z: torch.Tensor, w: torch.Tensor | None, tiles: Tiles) -> torch.Tensor:
    """Σ_c w_c z_{n,c} per row (w = 1 when None), accumulated in the compute dtype."""
    parts = []
    for rs in tiles.row_slices:
        total = None
        for cs in tiles.col_slices:
            block = z[rs, cs] if z.dtype == tiles.dtype else tiles.buf(0, rs, cs).copy_(z[rs, cs])
            part = block.sum(dim=-1) if w is None else block @ w[cs]
            total = part if total is None else total + part
        parts.append(total)
    return torch.cat(parts)


def _soft_weights(
    t: torch.Tensor, w: torch.Tensor | None, rs: slice, cs: slice, eps: float, tiles: Tiles
) -> torch.Tensor:
    """A tile of ``a = w_c ((1−ε) t_{n,c} + ε/C)`` in scratch buffer 1."""
    a = tiles.buf(1, rs, cs).copy_(t[rs, cs])
    if eps > 0:
        a.mul_(1.0 - eps).add_(eps / tiles.n)
    return a if w is None else a.mul_(w[None, cs])


class _ProbsCE(torch.autograd.Function):
    """ℓ_n = m_n lse_n − Σ_c a_{n,c} z_{n,c}, a_{n,c} = w_c ((1−ε) t_{n,c} + ε/C); terms with a = 0 are 0."""

    @staticmethod
    def forward(
        ctx: Any, z: torch.Tensor, t: torch.Tensor, weight: torch.Tensor | None, eps: float
    ) -> tuple[torch.Tensor, torch.Tensor]:
        tiles = Tiles(z, tile_dtype(z.dtype), lean=not any(ctx.needs_input_grad))
        w = None if weight is None else weight.to(tiles.dtype)
        lses, masses, dots = [], [], []
        for rs in tiles.row_slices:
            lses.append(block_lse(z, rs, tiles))
            mass = dot = None
            for cs in tiles.col_slices:
                a = _soft_weights(t, w, rs, cs, eps, tiles)
                az = torch.mul(a, z[rs, cs], out=tiles.buf(2, rs, cs))
                az.masked_fill_(torch.eq(a, 0.0, out=tiles.buf(0, rs, cs, torch.bool)), 0.0)
                m, d = a.sum(dim=-1), az.sum(dim=-1)
                mass, dot = (m, d) if mass is None else (mass + m, dot + d)
            masses.append(mass)
            dots.append(dot)
        rows = z.shape[0]
        lse = torch.cat(lses) if rows else zeros_per_row(0, z, tiles.dtype)
        mass = torch.cat(masses) if rows else zeros_per_row(0, z, tiles.dtype)
        dot = torch.cat(dots) if rows else zeros_per_row(0, z, tiles.dtype)
        ctx.save_for_backward(z, t, lse, mass, w)
        ctx.eps = eps
        ctx.mark_non_differentiable(lse)
        return (mass * lse - dot).to(z.dtype), lse

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor, _grad_lse: Any) -> tuple[Any, ...]:
        z, t, lse, mass, w = ctx.saved_tensors
        eps = ctx.eps
        if torch.is_grad_enabled():  # create_graph=True: a composition autograd can differentiate again
            return (*probs_ce_grads(z, t, w, eps, grad, *ctx.needs_input_grad[:2]), None, None)
        tiles = Tiles(z, lse.dtype)
        g = grad.to(lse.dtype)
        grad_z = torch.empty_like(z) if ctx.needs_input_grad[0] else None
        grad_t = torch.empty_like(t) if ctx.needs_input_grad[1] else None
        for rs in tiles.row_slices:
            for cs in tiles.col_slices:
                if grad_z is not None:  # (m softmax(z) − a) g
                    o = torch.sub(z[rs, cs], lse[rs, None], out=tiles.out(grad_z, rs, cs, 2))
                    o.exp_().mul_(mass[rs, None]).sub_(_soft_weights(t, w, rs, cs, eps, tiles)).mul_(g[rs, None])
                    tiles.store(grad_z, rs, cs, o)
                if grad_t is not None:  # ∂ℓ/∂t_c = (1 − ε) w_c (lse − z_c) g
                    o = torch.sub(lse[rs, None], z[rs, cs], out=tiles.out(grad_t, rs, cs, 3))
                    o.mul_((1.0 - eps) * g[rs, None])
                    if w is not None:
                        o.mul_(w[None, cs])
                    tiles.store(grad_t, rs, cs, o)
        return grad_z, grad_t, None, None


def logits_cross_entropy(
    target: torch.Tensor,
    logits: torch.Tensor,
    *,
    weight: torch.Tensor | None = None,
    ignore_index: int = -100,
    label_smoothing: float = 0.0,
) -> tuple[torch.Tensor, torch.Tensor]:
    r"""Per-row weighted cross-entropy of ``target`` under softmax(``logits``), and the rows' log-sum-exp.

    With :math:`a_{n,c}` the target weights and :math:`m_n = \sum_c a_{n,c}`:

    .. math:: \ell_n = m_n\, \mathrm{lse}(z_n) - \sum_c a_{n,c} z_{n,c},\qquad
       \frac{\partial \ell_n}{\partial z_{n,c}} = m_n\, \mathrm{softmax}(z_n)_c - a_{n,c}

    where, for class weights :math:`w` (default 1), smoothing :math:`\varepsilon` and :math:`C` classes,
    class indices :math:`y_n` give :math:`a_{n,c} = (1-\varepsilon) w_{y_n} [c = y_n] + \tfrac{\varepsilon}{C} w_c`
    (0 where :math:`y_n` = ``ignore_index``) and probabilities :math:`t_n` give
    :math:`a_{n,c} = w_c ((1-\varepsilon) t_{n,c} + \tfrac{\varepsilon}{C})` (terms with
    :math:`a_{n,c} = 0` are 0, also at a ``-inf`` logit). These are the per-position losses of
    :func:`torch.nn.functional.cross_entropy` with ``reduction='none'``.

    Parameters
    ----------
    target : torch.Tensor
        Class indices, integer ``(rows,)``, or probabilities ``(rows, n)`` (differentiable).
        Indices are not validated here: out-of-range ones are clamped into ``[0, n)``.
    logits : torch.Tensor
        ``(rows, n)``, floating.
    weight : torch.Tensor, optional
        ``(n,)`` class weights (a constant: no gradient flows into it).
    ignore_index : int, default -100
    label_smoothing : float, default 0.0

    Returns
    -------
    loss : torch.Tensor
        ``(rows,)`` in the dtype of ``logits``.
    lse : torch.Tensor
        ``(rows,)`` log-sum-exp of each row in the compute dtype (float32 for half precision), not
        differentiable; non-finite exactly when the row holds NaN, ``+inf`` or only ``-inf``.

    Examples
    --------
    >>> import torch
    >>> from klkit._engine import logits_cross_entropy
    >>> z = torch.tensor([[0.7, 0.2, 0.1], [0.1, 0.1, 0.8]]).log()
    >>> loss, lse = logits_cross_entropy(torch.tensor([0, 2]), z)
    >>> loss.round(decimals=6)  # -log 0.7, -log 0.8
    tensor([0.3567, 0.2231])
    """
    eps = float(label_smoothing)
    if target.is_floating_point():
        return _ProbsCE.apply(logits, target, weight, eps)
    return _IndexCE.apply(logits, target, weight, eps, int(ignore_index))
