r"""Fused torch autograd Functions for measures of softmax distributions given by logits.

Each Function works on the last axis of ``(rows, n)`` logits (the public wrappers accept
``(..., n)``), keeps for backward only its inputs and one float per row (the log-sum-exp
:math:`\mathrm{lse}_n = \log \sum_c e^{z_{n,c}}`, and the row's value where the gradient needs
it), and computes the gradient analytically, in tiles of rows (and of columns, for rows longer
than a tile), so that the temporaries of one call stay within a few tiles of
:data:`TILE_ELEMENTS` entries (1 MiB of float32: in cache, and ≤ 25% of any input above 16 MiB)
instead of several copies of the input as in the plain ``log_softmax`` one-liners:

- :func:`logits_cross_entropy`: :math:`\ell_n = m_n \mathrm{lse}_n - \sum_c a_{n,c} z_{n,c}`,
  :math:`\partial \ell_n / \partial z_n = m_n \mathrm{softmax}(z_n) - a_n`;
- :func:`logits_kl`: :math:`\mathrm{KL}_n = \sum_c p_c (\log p_c - \log q_c)`,
  :math:`\partial/\partial z_q = q - p`, :math:`\partial/\partial z_p = p\,(\log p - \log q - \mathrm{KL}_n)`;
- :func:`logits_cross_entropy_soft`: :math:`H_n = -\sum_c p_c \log q_c`,
  :math:`\partial/\partial z_q = q - p`, :math:`\partial/\partial z_p = p\,(-\log q - H_n)`;
- :func:`logits_entropy`: :math:`H_n = -\sum_c p_c \log p_c`,
  :math:`\partial/\partial z = -p\,(\log p + H_n)`;

(each gradient times the incoming gradient :math:`g_n`),
with :math:`p = \mathrm{softmax}(z_p)`, :math:`q = \mathrm{softmax}(z_q)`, :math:`a` the target
weights of the cross-entropy loss and :math:`m_n = \sum_c a_{n,c}`.

Conventions:

- masked logits (``-inf``) are exact: a term with :math:`p_c = 0` is 0 (never ``0·inf = NaN``),
  and :math:`q_c = 0` where :math:`p_c > 0` gives ``+inf`` (also when :math:`p_c` underflows in
  the compute dtype); its gradient wrt :math:`z_q` stays finite, the one wrt :math:`z_p` is NaN
  (the derivative of an infinite value);
- float16/bfloat16 inputs are computed in float32 and returned (values and gradients) in the
  input dtype, as torch's own reductions do; other dtypes are computed in their own;
- any device: every temporary is created from the inputs (no CPU tensors, no generators);
- no host synchronisation and no Python branching on tensor values, so the Functions trace under
  ``torch.compile(fullgraph=True)``; while compiling they use a single tile (the compiler fuses
  the element-wise work itself);
- invalid logits (NaN, ``+inf``, a row of only ``-inf``) give a non-finite ``lse``; these
  Functions do not raise (callers validate: :func:`klkit.losses.cross_entropy_loss` checks
  the ``lse`` it gets back).
"""

from __future__ import annotations

import math
from typing import Any

import torch

__all__ = ["TILE_ELEMENTS", "logits_cross_entropy", "logits_cross_entropy_soft", "logits_entropy", "logits_kl"]

TILE_ELEMENTS = 1 << 18  # entries per tile: 1 MiB of float32
_MIN_TILE = 1 << 12  # small inputs: tiles of at least this many entries (memory is no concern there)
_NEG_INF = -math.inf


# ---------------------------------------------------------------------------
# Tiles and scratch buffers
# ---------------------------------------------------------------------------


def _compute_dtype(dtype: torch.dtype) -> torch.dtype:
    """float32 for half precision, else the dtype itself."""
    return torch.float32 if dtype in (torch.float16, torch.bfloat16) else dtype


def _plan(rows: int, n: int, lean: bool) -> tuple[int, int]:
    """(rows per tile, columns per tile): whole rows while a row fits in a tile, else column tiles.

    ``lean`` (a forward pass with no backward to come, as in the measures): the few scratch
    tiles stay under 25% of one input, at most 1/16 of it per tile. Under autograd the
    gradient costs a whole input anyway, and fewer, larger tiles are faster.
    While ``torch.compile`` traces, one tile holds everything (the compiler fuses the loop itself).
    """
    if torch.compiler.is_compiling():
        return max(rows, 1), max(n, 1)
    tile = min(TILE_ELEMENTS, max(_MIN_TILE, rows * n // 16)) if lean else TILE_ELEMENTS
    if n > tile:
        return 1, tile
    return max(1, min(rows, tile // max(n, 1))), max(n, 1)


def _slices(total: int, step: int) -> list[slice]:
    return [slice(start, min(start + step, total)) for start in range(0, total, step)]


class _Tiles:
    """The tiles of a ``(rows, n)`` input and reusable scratch buffers of one tile each.

    Reusing the buffers keeps every tile's temporaries in a few cache-sized blocks allocated once
    per call (freshly allocated megabyte blocks come from ``mmap`` and cost a page fault per page).
    """

    def __init__(self, x: torch.Tensor, dtype: torch.dtype, lean: bool = False) -> None:
        self.rows, self.n = x.shape
        self.step, self.width = _plan(self.rows, self.n, lean)
        self.dtype, self.device = dtype, x.device
        self.row_slices = _slices(self.rows, self.step)
        self.col_slices = _slices(self.n, self.width)
        self._buffers: dict[tuple[int, torch.dtype], torch.Tensor] = {}

    def buf(self, k: int, rs: slice, cs: slice, dtype: torch.dtype | None = None) -> torch.Tensor:
        """Scratch buffer ``k`` shaped like the tile ``[rs, cs]`` (compute dtype unless given)."""
        dtype = self.dtype if dtype is None else dtype
        key = (k, dtype)
        if key not in self._buffers:
            self._buffers[key] = torch.empty(self.step * self.width, dtype=dtype, device=self.device)
        r, c = rs.stop - rs.start, cs.stop - cs.start
        return self._buffers[key][: r * c].view(r, c)

    def mask(self, x: torch.Tensor, rs: slice, cs: slice) -> torch.Tensor:
        """Where the tile of ``x`` is ``-inf`` (a masked outcome), in a scratch boolean buffer."""
        return torch.eq(x[rs, cs], _NEG_INF, out=self.buf(0, rs, cs, torch.bool))

    def out(self, grad: torch.Tensor, rs: slice, cs: slice, k: int) -> torch.Tensor:
        """Where to compute the tile ``[rs, cs]`` of ``grad``: the tile itself, or scratch for half precision."""
        return grad[rs, cs] if grad.dtype == self.dtype else self.buf(k, rs, cs)

    @staticmethod
    def store(grad: torch.Tensor, rs: slice, cs: slice, tile: torch.Tensor) -> None:
        if tile.dtype != grad.dtype:
            grad[rs, cs].copy_(tile)


def _block_lse(x: torch.Tensor, rs: slice, tiles: _Tiles) -> torch.Tensor:
    """log Σ exp of the rows ``rs`` of ``x`` in the compute dtype (a row of only ``-inf`` gives ``-inf``)."""
    top = x[rs].amax(dim=-1).to(tiles.dtype)  # a reduction: no full-size temporary
    shift = torch.where(torch.isfinite(top), top, torch.zeros_like(top))
    total = None
    for cs in tiles.col_slices:
        b = torch.sub(x[rs, cs], shift[:, None], out=tiles.buf(0, rs, cs))
        part = b.exp_().sum(dim=-1)
        total = part if total is None else total + part
    return torch.log(total) + shift


def _rows_lse(x: torch.Tensor, tiles: _Tiles) -> torch.Tensor:
    return torch.cat([_block_lse(x, rs, tiles) for rs in tiles.row_slices])


def _as_rows(x: torch.Tensor, name: str) -> torch.Tensor:
    if not isinstance(x, torch.Tensor) or not x.is_floating_point():
        found = x.dtype if isinstance(x, torch.Tensor) else type(x).__name__
        raise TypeError(
            f"`{name}` must be a floating torch.Tensor of logits; found {found}. "
            "Convert with torch.as_tensor(x, dtype=torch.float32)."
        )
    if x.ndim == 0 or x.shape[-1] == 0:
        raise ValueError(
            f"`{name}` must have a non-empty class axis (the last); found shape {tuple(x.shape)}. "
            "Pass logits of shape (..., n) with n >= 1."
        )
    return x.reshape(-1, x.shape[-1])


def _check_pair(p: torch.Tensor, q: torch.Tensor) -> None:
    if isinstance(p, torch.Tensor) and isinstance(q, torch.Tensor) and p.shape != q.shape:
        raise ValueError(
            f"`p_logits` and `q_logits` must have the same shape; found {tuple(p.shape)} and "
            f"{tuple(q.shape)}. Expand them to one shape first (e.g. q.expand_as(p))."
        )


def _fix_underflow(value: torch.Tensor, lse_p: torch.Tensor, lse_q: torch.Tensor) -> torch.Tensor:
    """A NaN row with finite log-normalisers is ``p_c·(+inf)`` with ``p_c`` underflowed to 0: ``+inf``."""
    underflow = torch.isnan(value) & torch.isfinite(lse_p) & torch.isfinite(lse_q)
    return torch.where(underflow, torch.full_like(value, math.inf), value)


def _empty(rows: int, like: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    return like.new_zeros((rows,), dtype=dtype)


# ---------------------------------------------------------------------------
# Pairs: KL(p‖q) and H(p, q) of softmax(p_logits) and softmax(q_logits)
# ---------------------------------------------------------------------------


def _log_probs(
    zp: torch.Tensor, zq: torch.Tensor, lse_p: torch.Tensor, lse_q: torch.Tensor, rs: slice, cs: slice, tiles: _Tiles
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(log p, log q, p) of one tile, in scratch buffers 1, 2, 3."""
    lp = torch.sub(zp[rs, cs], lse_p[:, None], out=tiles.buf(1, rs, cs))
    lq = torch.sub(zq[rs, cs], lse_q[:, None], out=tiles.buf(2, rs, cs))
    return lp, lq, torch.exp(lp, out=tiles.buf(3, rs, cs))


class _Pair(torch.autograd.Function):
    """KL(p‖q) = Σ p (log p − log q) (``kl``) or H(p, q) = −Σ p log q, per row."""

    @staticmethod
    def forward(ctx: Any, zp: torch.Tensor, zq: torch.Tensor, kl: bool) -> torch.Tensor:
        dtype = _compute_dtype(torch.promote_types(zp.dtype, zq.dtype))
        tiles = _Tiles(zp, dtype, lean=not any(ctx.needs_input_grad))
        lses_p, lses_q, values = [], [], []
        for rs in tiles.row_slices:
            lse_p, lse_q = _block_lse(zp, rs, tiles), _block_lse(zq, rs, tiles)
            total = None
            for cs in tiles.col_slices:
                lp, lq, p = _log_probs(zp, zq, lse_p, lse_q, rs, cs, tiles)
                term = lp.sub_(lq) if kl else lq  # then · p: p (log p − log q), or p log q
                term.mul_(p).masked_fill_(tiles.mask(zp, rs, cs), 0.0)  # p = 0: the term is 0
                part = term.sum(dim=-1)
                total = part if total is None else total + part
            lses_p.append(lse_p)
            lses_q.append(lse_q)
            values.append(total if kl else -total)
        lse_p, lse_q = torch.cat(lses_p), torch.cat(lses_q)
        value = _fix_underflow(torch.cat(values), lse_p, lse_q)
        ctx.save_for_backward(zp, zq, lse_p, lse_q, value)
        ctx.kl = kl
        out = value.clamp(min=0) if kl else value  # rounding below 0 is clamped (KL ≥ 0)
        return out.to(torch.promote_types(zp.dtype, zq.dtype))

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[Any, ...]:
        zp, zq, lse_p, lse_q, value = ctx.saved_tensors
        need_p, need_q = ctx.needs_input_grad[:2]
        tiles = _Tiles(zp, lse_p.dtype)
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
                    o.masked_fill_(tiles.mask(zp, rs, cs), 0.0)
                    tiles.store(grad_p, rs, cs, o)
        return grad_p, grad_q, None


def _pair(p_logits: torch.Tensor, q_logits: torch.Tensor, kl: bool) -> torch.Tensor:
    _check_pair(p_logits, q_logits)
    zp, zq = _as_rows(p_logits, "p_logits"), _as_rows(q_logits, "q_logits")
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
    >>> from klkit._torch_functions import logits_kl
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
    >>> from klkit._torch_functions import logits_cross_entropy_soft
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
        tiles = _Tiles(z, _compute_dtype(z.dtype), lean=not any(ctx.needs_input_grad))
        lses, values = [], []
        for rs in tiles.row_slices:
            lse = _block_lse(z, rs, tiles)
            total = None
            for cs in tiles.col_slices:
                lp = torch.sub(z[rs, cs], lse[:, None], out=tiles.buf(1, rs, cs))
                p = torch.exp(lp, out=tiles.buf(2, rs, cs))
                part = lp.mul_(p).masked_fill_(tiles.mask(z, rs, cs), 0.0).sum(dim=-1)
                total = part if total is None else total + part
            lses.append(lse)
            values.append(-total)
        lse, value = torch.cat(lses), torch.cat(values)
        ctx.save_for_backward(z, lse, value)
        return value.clamp(min=0).to(z.dtype)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> torch.Tensor:
        z, lse, value = ctx.saved_tensors
        tiles = _Tiles(z, lse.dtype)
        g = grad.to(lse.dtype)
        out = torch.empty_like(z)
        for rs in tiles.row_slices:
            for cs in tiles.col_slices:  # −p (log p + H) g
                lp = torch.sub(z[rs, cs], lse[rs, None], out=tiles.buf(1, rs, cs))
                p = torch.exp(lp, out=tiles.buf(2, rs, cs))
                o = torch.add(lp, value[rs, None], out=tiles.out(out, rs, cs, 3))
                o.mul_(p).mul_(-g[rs, None]).masked_fill_(tiles.mask(z, rs, cs), 0.0)
                tiles.store(out, rs, cs, o)
        return out


def logits_entropy(logits: torch.Tensor) -> torch.Tensor:
    r"""Entropy of softmax(``logits``) over the last axis, with the analytic gradient.

    .. math:: H_n = -\sum_c p_{n,c} \log p_{n,c},\quad
       \frac{\partial H_n}{\partial z_{n,c}} = -p_{n,c} \big(\log p_{n,c} + H_n\big)

    Examples
    --------
    >>> import torch
    >>> from klkit._torch_functions import logits_entropy
    >>> round(float(logits_entropy(torch.zeros(4))), 6)  # log 4
    1.386294
    """
    z = _as_rows(logits, "logits")
    return _Entropy.apply(z).reshape(logits.shape[:-1])


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
        tiles = _Tiles(z, _compute_dtype(z.dtype), lean=not any(ctx.needs_input_grad))
        valid = y != ignore_index
        safe = torch.where(valid, y, torch.zeros_like(y)).clamp(0, n - 1).long()  # the caller validates
        w = None if weight is None else weight.to(tiles.dtype)
        label_w = valid.to(tiles.dtype) if w is None else w[safe] * valid  # w_{y_n}, 0 where ignored
        lse = _rows_lse(z, tiles) if z.shape[0] else _empty(0, z, tiles.dtype)
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
        tiles = _Tiles(z, lse.dtype)
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


def _weighted_row_sums(z: torch.Tensor, w: torch.Tensor | None, tiles: _Tiles) -> torch.Tensor:
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
    t: torch.Tensor, w: torch.Tensor | None, rs: slice, cs: slice, eps: float, tiles: _Tiles
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
        tiles = _Tiles(z, _compute_dtype(z.dtype), lean=not any(ctx.needs_input_grad))
        w = None if weight is None else weight.to(tiles.dtype)
        lses, masses, dots = [], [], []
        for rs in tiles.row_slices:
            lses.append(_block_lse(z, rs, tiles))
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
        lse = torch.cat(lses) if rows else _empty(0, z, tiles.dtype)
        mass = torch.cat(masses) if rows else _empty(0, z, tiles.dtype)
        dot = torch.cat(dots) if rows else _empty(0, z, tiles.dtype)
        ctx.save_for_backward(z, t, lse, mass, w)
        ctx.eps = eps
        ctx.mark_non_differentiable(lse)
        return (mass * lse - dot).to(z.dtype), lse

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor, _grad_lse: Any) -> tuple[Any, ...]:
        z, t, lse, mass, w = ctx.saved_tensors
        eps = ctx.eps
        tiles = _Tiles(z, lse.dtype)
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
    >>> from klkit._torch_functions import logits_cross_entropy
    >>> z = torch.tensor([[0.7, 0.2, 0.1], [0.1, 0.1, 0.8]]).log()
    >>> loss, lse = logits_cross_entropy(torch.tensor([0, 2]), z)
    >>> loss.round(decimals=6)  # -log 0.7, -log 0.8
    tensor([0.3567, 0.2231])
    """
    eps = float(label_smoothing)
    if target.is_floating_point():
        return _ProbsCE.apply(logits, target, weight, eps)
    return _IndexCE.apply(logits, target, weight, eps, int(ignore_index))
