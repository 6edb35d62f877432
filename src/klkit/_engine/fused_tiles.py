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

- the support rule of every measure (:mod:`klkit._engine.support`): a term with :math:`p_c = 0`
  in the compute dtype (a ``-inf`` logit, or one that underflows) is 0 with a zero gradient
  (never ``0·inf = NaN``), and :math:`q_c = 0` where :math:`p_c > 0` gives ``+inf``; its gradient
  wrt :math:`z_q` stays finite, the one wrt :math:`z_p` is NaN (the derivative of an infinite value);
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

import torch

from klkit._engine.support import in_support

__all__ = [
    "TILE_ELEMENTS",
    "Tiles",
    "as_rows",
    "block_lse",
    "check_pair",
    "rows_lse",
    "tile_dtype",
    "zeros_per_row",
]

TILE_ELEMENTS = 1 << 18  # entries per tile: 1 MiB of float32
_MIN_TILE = 1 << 12  # small inputs: tiles of at least this many entries (memory is no concern there)


# ---------------------------------------------------------------------------
# Tiles and scratch buffers
# ---------------------------------------------------------------------------


def tile_dtype(dtype: torch.dtype) -> torch.dtype:
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


class Tiles:
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

    def outside(self, p: torch.Tensor, rs: slice, cs: slice) -> torch.Tensor:
        """Where the tile ``p`` of probabilities is outside the support (p = 0 in the compute dtype:
        a ``-inf`` logit or one that underflows; :mod:`klkit._engine.support`), in a scratch boolean buffer."""
        return torch.logical_not(in_support(p), out=self.buf(0, rs, cs, torch.bool))

    def out(self, grad: torch.Tensor, rs: slice, cs: slice, k: int) -> torch.Tensor:
        """Where to compute the tile ``[rs, cs]`` of ``grad``: the tile itself, or scratch for half precision."""
        return grad[rs, cs] if grad.dtype == self.dtype else self.buf(k, rs, cs)

    @staticmethod
    def store(grad: torch.Tensor, rs: slice, cs: slice, tile: torch.Tensor) -> None:
        if tile.dtype != grad.dtype:
            grad[rs, cs].copy_(tile)


def block_lse(x: torch.Tensor, rs: slice, tiles: Tiles) -> torch.Tensor:
    """log Σ exp of the rows ``rs`` of ``x`` in the compute dtype (a row of only ``-inf`` gives ``-inf``)."""
    top = x[rs].amax(dim=-1).to(tiles.dtype)  # a reduction: no full-size temporary
    shift = torch.where(torch.isfinite(top), top, torch.zeros_like(top))
    total = None
    for cs in tiles.col_slices:
        b = torch.sub(x[rs, cs], shift[:, None], out=tiles.buf(0, rs, cs))
        part = b.exp_().sum(dim=-1)
        total = part if total is None else total + part
    return torch.log(total) + shift


def rows_lse(x: torch.Tensor, tiles: Tiles) -> torch.Tensor:
    return torch.cat([block_lse(x, rs, tiles) for rs in tiles.row_slices])


def as_rows(x: torch.Tensor, name: str) -> torch.Tensor:
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


def check_pair(p: torch.Tensor, q: torch.Tensor) -> None:
    if isinstance(p, torch.Tensor) and isinstance(q, torch.Tensor) and p.shape != q.shape:
        raise ValueError(
            f"`p_logits` and `q_logits` must have the same shape; found {tuple(p.shape)} and "
            f"{tuple(q.shape)}. Expand them to one shape first (e.g. q.expand_as(p))."
        )


def zeros_per_row(rows: int, like: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    return like.new_zeros((rows,), dtype=dtype)
