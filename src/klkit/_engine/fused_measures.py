"""Fused torch autograd Functions for KL, cross-entropy and entropy of softmax distributions.

:func:`logits_kl`, :func:`logits_cross_entropy_soft` and :func:`logits_entropy` work on the last
axis of logits, keep for backward only their inputs and one float per row, and compute the
gradient analytically on tiles (:mod:`klkit._engine.fused_tiles` states the conventions).
"""

from __future__ import annotations

from typing import Any

import torch

from klkit._engine.fused_second import entropy_grad, pair_grads
from klkit._engine.fused_tiles import Tiles, as_rows, block_lse, check_pair, tile_dtype

__all__ = ["logits_cross_entropy_soft", "logits_entropy", "logits_kl"]


# ---------------------------------------------------------------------------
# Pairs: KL(p‖q) and H(p, q) of softmax(p_logits) and softmax(q_logits)
# ---------------------------------------------------------------------------


def _log_probs(
    zp: torch.Tensor, zq: torch.Tensor, lse_p: torch.Tensor, lse_q: torch.Tensor, rs: slice, cs: slice, tiles: Tiles
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(log p, log q, p) of one tile, in scratch buffers 1, 2, 3."""
    lp = torch.sub(zp[rs, cs], lse_p[:, None], out=tiles.buf(1, rs, cs))
    lq = torch.sub(zq[rs, cs], lse_q[:, None], out=tiles.buf(2, rs, cs))
    return lp, lq, torch.exp(lp, out=tiles.buf(3, rs, cs))


class _Pair(torch.autograd.Function):
    """KL(p‖q) = Σ p (log p − log q) (``kl``) or H(p, q) = −Σ p log q, per row."""

    @staticmethod
    def forward(ctx: Any, zp: torch.Tensor, zq: torch.Tensor, kl: bool) -> torch.Tensor:
        dtype = tile_dtype(torch.promote_types(zp.dtype, zq.dtype))
        tiles = Tiles(zp, dtype, lean=not any(ctx.needs_input_grad))
        lses_p, lses_q, values = [], [], []
        for rs in tiles.row_slices:
            lse_p, lse_q = block_lse(zp, rs, tiles), block_lse(zq, rs, tiles)
            total = None
            for cs in tiles.col_slices:
                lp, lq, p = _log_probs(zp, zq, lse_p, lse_q, rs, cs, tiles)
                term = lp.sub_(lq) if kl else lq  # then · p: p (log p − log q), or p log q
                term.mul_(p).masked_fill_(tiles.outside(p, rs, cs), 0.0)  # p = 0: the term is 0
                part = term.sum(dim=-1)
                total = part if total is None else total + part
            lses_p.append(lse_p)
            lses_q.append(lse_q)
            values.append(total if kl else -total)
        lse_p, lse_q = torch.cat(lses_p), torch.cat(lses_q)
        value = torch.cat(values)
        ctx.save_for_backward(zp, zq, lse_p, lse_q, value)
        ctx.kl = kl
        out = value.clamp(min=0) if kl else value  # rounding below 0 is clamped (KL ≥ 0)
        return out.to(torch.promote_types(zp.dtype, zq.dtype))

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[Any, ...]:
        zp, zq, lse_p, lse_q, value = ctx.saved_tensors
        need_p, need_q = ctx.needs_input_grad[:2]
        if torch.is_grad_enabled():  # create_graph=True: a composition autograd can differentiate again
            return (*pair_grads(zp, zq, ctx.kl, grad, need_p, need_q), None)
        tiles = Tiles(zp, lse_p.dtype)
        g = grad.to(lse_p.dtype)
        grad_p = torch.empty_like(zp) if need_p else None
        grad_q = torch.empty_like(zq) if need_q else None
        for rs in tiles.row_slices:
            for cs in tiles.col_slices:
                lp, lq, p = _log_probs(zp, zq, lse_p[rs], lse_q[rs], rs, cs, tiles)
                if need_q:  # (q − p) g
                    o = torch.exp(lq, out=tiles.out(grad_q, rs, cs, 4))
                    o.sub_(p).mul_(g[rs, None])
                    tiles.store(grad_q, rs, cs, o)
                if need_p:  # p (log p − log q − KL) g, or p (−log q − H) g; 0 where p is masked
                    o = (
                        torch.sub(lp, lq, out=tiles.out(grad_p, rs, cs, 4))
                        if ctx.kl
                        else torch.neg(lq, out=tiles.out(grad_p, rs, cs, 4))
                    )
                    o.sub_(value[rs, None]).mul_(p).mul_(g[rs, None])
                    o.masked_fill_(tiles.outside(p, rs, cs), 0.0)
                    tiles.store(grad_p, rs, cs, o)
        return grad_p, grad_q, None


def _pair(p_logits: torch.Tensor, q_logits: torch.Tensor, kl: bool) -> torch.Tensor:
    check_pair(p_logits, q_logits)
    zp, zq = as_rows(p_logits, "p_logits"), as_rows(q_logits, "q_logits")
    return _Pair.apply(zp, zq, kl).reshape(p_logits.shape[:-1])


def logits_kl(p_logits: torch.Tensor, q_logits: torch.Tensor) -> torch.Tensor:
    r"""KL(softmax(``p_logits``) ‖ softmax(``q_logits``)) over the last axis, with analytic gradients.

    .. math:: \mathrm{KL}_n = \sum_c p_{n,c} (\log p_{n,c} - \log q_{n,c}),\quad
       \frac{\partial \mathrm{KL}_n}{\partial z^q_{n,c}} = q_{n,c} - p_{n,c},\quad
       \frac{\partial \mathrm{KL}_n}{\partial z^p_{n,c}} = p_{n,c} \big(\log p_{n,c} - \log q_{n,c} - \mathrm{KL}_n\big)

    with :math:`\log p = z^p - \mathrm{lse}(z^p)` and :math:`\log q = z^q - \mathrm{lse}(z^q)`.

    Parameters
    ----------
    p_logits, q_logits : torch.Tensor
        Logits of the same shape ``(..., n)``, floating, on one device; ``-inf`` masks an outcome.

    Returns
    -------
    torch.Tensor
        Shape ``(...)``, the inputs' (promoted) dtype, ≥ 0. ``+inf`` where ``q`` masks an outcome
        that ``p`` does not.

    Examples
    --------
    >>> import torch
    >>> from klkit._engine import logits_kl
    >>> p, q = torch.tensor([0.5, 0.5]).log(), torch.tensor([0.9, 0.1]).log()
    >>> round(float(logits_kl(p, q)), 6)
    0.510826
    >>> float(logits_kl(torch.tensor([0.0, 0.0]), torch.tensor([0.0, -float("inf")])))
    inf
    """
    return _pair(p_logits, q_logits, kl=True)


def logits_cross_entropy_soft(p_logits: torch.Tensor, q_logits: torch.Tensor) -> torch.Tensor:
    r"""Cross-entropy H(softmax(``p_logits``), softmax(``q_logits``)) over the last axis, analytic gradients.

    .. math:: H_n = -\sum_c p_{n,c} \log q_{n,c},\quad
       \frac{\partial H_n}{\partial z^q_{n,c}} = q_{n,c} - p_{n,c},\quad
       \frac{\partial H_n}{\partial z^p_{n,c}} = p_{n,c} \big(-\log q_{n,c} - H_n\big)

    Parameters and returns as :func:`logits_kl` (the value is not clamped).

    Examples
    --------
    >>> import torch
    >>> from klkit._engine import logits_cross_entropy_soft
    >>> p, q = torch.tensor([0.5, 0.5]).log(), torch.tensor([0.9, 0.1]).log()
    >>> round(float(logits_cross_entropy_soft(p, q)), 6)
    1.203973
    """
    return _pair(p_logits, q_logits, kl=False)


# ---------------------------------------------------------------------------
# Entropy of softmax(logits)
# ---------------------------------------------------------------------------


class _Entropy(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, z: torch.Tensor) -> torch.Tensor:
        tiles = Tiles(z, tile_dtype(z.dtype), lean=not any(ctx.needs_input_grad))
        lses, values = [], []
        for rs in tiles.row_slices:
            lse = block_lse(z, rs, tiles)
            total = None
            for cs in tiles.col_slices:
                lp = torch.sub(z[rs, cs], lse[:, None], out=tiles.buf(1, rs, cs))
                p = torch.exp(lp, out=tiles.buf(2, rs, cs))
                part = lp.mul_(p).masked_fill_(tiles.outside(p, rs, cs), 0.0).sum(dim=-1)
                total = part if total is None else total + part
            lses.append(lse)
            values.append(-total)
        lse, value = torch.cat(lses), torch.cat(values)
        ctx.save_for_backward(z, lse, value)
        return value.clamp(min=0).to(z.dtype)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> torch.Tensor:
        z, lse, value = ctx.saved_tensors
        if torch.is_grad_enabled():  # create_graph=True: a composition autograd can differentiate again
            return entropy_grad(z, grad)
        tiles = Tiles(z, lse.dtype)
        g = grad.to(lse.dtype)
        out = torch.empty_like(z)
        for rs in tiles.row_slices:
            for cs in tiles.col_slices:  # −p (log p + H) g
                lp = torch.sub(z[rs, cs], lse[rs, None], out=tiles.buf(1, rs, cs))
                p = torch.exp(lp, out=tiles.buf(2, rs, cs))
                o = torch.add(lp, value[rs, None], out=tiles.out(out, rs, cs, 3))
                o.mul_(p).mul_(-g[rs, None]).masked_fill_(tiles.outside(p, rs, cs), 0.0)
                tiles.store(out, rs, cs, o)
        return out


def logits_entropy(logits: torch.Tensor) -> torch.Tensor:
    r"""Entropy of softmax(``logits``) over the last axis, with the analytic gradient.

    .. math:: H_n = -\sum_c p_{n,c} \log p_{n,c},\quad
       \frac{\partial H_n}{\partial z_{n,c}} = -p_{n,c} \big(\log p_{n,c} + H_n\big)

    Examples
    --------
    >>> import torch
    >>> from klkit._engine import logits_entropy
    >>> round(float(logits_entropy(torch.zeros(4))), 6)  # log 4
    1.386294
    """
    z = as_rows(logits, "logits")
    return _Entropy.apply(z).reshape(logits.shape[:-1])
