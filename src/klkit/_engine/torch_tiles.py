"""The torch path without autograd: the library's fused kernels on tiles of rows.

Each tile goes through the kernels of the plain one-liner (``log_softmax``, ``softmax``, ``log``)
and is reduced in place; rows longer than a tile are cut into pieces recombined with the chain
rule of KL. Validation is folded into the same passes and checked with one host sync.
"""

from __future__ import annotations

import math
from typing import Any

from klkit._engine.checks import CHECKS, sum_tolerance
from klkit._engine.prepare import CHUNK_MIN, Measure, under_autograd

__all__ = ["TORCH_TILES", "torch_tiles_path"]

TORCH_TILES = 10  # large torch inputs go in tiles of ~1/TORCH_TILES of the input: two tile-sized temporaries


def torch_tiles_path(
    measure: Measure, P: Any, Q: Any, kind: str, q_kind: str, validate: bool, xp: Any
) -> tuple[Any, bool]:
    """KL, CE and entropy of torch tensors that need no gradient, from fused library ops.

    Each tile of rows goes through the kernels of the plain one-liner
    (``log_softmax``, ``softmax``, ``log``) and is reduced in place, so the
    temporaries stay two tiles (about 20% of one input). Rows too long for one tile
    are cut into equal pieces (a free view when the length has a divisor of the
    right size, else column slices), each normalised on its own and recombined with
    the chain rule (:func:`_chain`). Validation is folded in: per-row minima and
    sums for probabilities and, for logits, the value itself (NaN or infinite
    logits always give NaN), checked with one host sync; only a failure runs the
    detailed checks that build the message.

    Unvalidated inputs get the generic path's semantics: a row holding an entry
    outside its kind's domain is NaN (:func:`_domain_ok`).

    Returns ``(value, validate)``: ``value`` None hands over to the generic path
    (JS, autograd, half precision, ``torch.compile``, layouts that cannot be viewed
    as rows), and ``validate`` False says the inputs were checked already.
    """
    import torch

    if torch.compiler.is_compiling():  # the tiles sync with the host; the generic path does not
        return None, validate
    dtype = P.dtype if Q is None else torch.promote_types(P.dtype, Q.dtype)
    n = P.shape[-1]
    rows = math.prod(P.shape[:-1])
    if measure == "js_divergence" or dtype not in (torch.float32, torch.float64) or rows == 0 or under_autograd(P, Q):
        return None, validate
    try:
        A = P.view(rows, n)
        B = None if Q is None else Q.view(rows, n)
    except RuntimeError:  # a broadcast or transposed layout that only a copy could flatten
        return None, validate
    size = rows * n
    # elements per tile: two compute-dtype temporaries stay near 2/TORCH_TILES of one input
    budget = max(1, size // TORCH_TILES * P.element_size() // dtype.itemsize)
    pieces = 1
    if size > CHUNK_MIN and n > budget:  # rows longer than a tile: pieces of ~budget/rows
        pieces = _divisor(n, -(-size // budget))
        if A.is_contiguous() and (B is None or B.is_contiguous()):
            A = A.view(rows * pieces, n // pieces)
            B = None if B is None else B.view(rows * pieces, n // pieces)
        else:  # broadcast or strided rows: column slices instead
            pieces = 1
    width = A.shape[1]
    if size <= CHUNK_MIN:
        rstep, cstep = A.shape[0], width
    elif width <= budget:
        rstep, cstep = budget // width, width
    else:  # no view into pieces: column slices (the kernels copy them: a third temporary)
        rstep, cstep = rows, max(1, 2 * budget // 3 // rows)
    A = A if A.dtype == dtype else A.to(dtype) if size <= CHUNK_MIN else A
    B = B if B is None or B.dtype == dtype or size > CHUNK_MIN else B.to(dtype)
    whole = rstep >= A.shape[0] and cstep >= width
    parts = [
        _torch_tile(
            measure,
            A if whole else A[r0 : r0 + rstep, c0 : c0 + cstep].to(dtype),
            B if whole or B is None else B[r0 : r0 + rstep, c0 : c0 + cstep].to(dtype),
            kind,
            q_kind,
            pieces > 1 or cstep < width,
            validate,
            torch,
        )
        for r0 in range(0, A.shape[0], rstep)
        for c0 in range(0, width, cstep)
    ]
    if cstep < width:  # (rows, tiles)
        out = [None if parts[0][j] is None else torch.stack([t[j] for t in parts], -1) for j in range(7)]
    else:  # (rows, pieces)
        out = [None if parts[0][j] is None else torch.cat([t[j] for t in parts]).view(rows, -1) for j in range(7)]
    value = out[0].squeeze(-1) if out[0].shape[-1] == 1 else _chain(measure, out, kind, q_kind, torch)
    ok = None  # per row: inside the kinds' domains, where the value alone would not tell
    for x, k, lse in ((P, kind, out[1]), (Q, q_kind, out[4]))[: 1 if Q is None else 2]:
        if k == "logits":  # whole rows give NaN by themselves; rows in pieces are judged by their lse
            row_ok = None if lse is None else torch.logsumexp(lse, -1).isfinite()
        else:  # validated inputs are in the domain already
            row_ok = None if validate else _domain_ok(x.view(rows, n), k, torch)
        if row_ok is not None:
            ok = row_ok if ok is None else ok & row_ok
    if validate:
        failed = value.isnan() if ok is None else value.isnan() | ~ok
        for k, low, mass in ((kind, out[2], out[3]), (q_kind, out[5], out[6])):
            if k != "logits" and low is not None:
                failed = failed | ~_check_stats(k, low, mass, dtype, torch)
        if bool(failed.any()):
            CHECKS[kind](P, "p", xp)  # raises with the details
            if Q is not None:
                CHECKS[q_kind](Q, "q", xp)
            if bool(value.isnan().any()):  # not expected; the generic path is the reference
                return None, False
    value = value if ok is None else torch.where(ok, value, math.nan)
    return value.reshape(P.shape[:-1]), False


def _domain_ok(x: Any, kind: str, torch: Any) -> Any:
    """Per row: every entry lies in the domain of ``kind`` (reductions only, no temporaries)."""
    if kind == "probs":
        return (x.amin(-1) >= 0) & (x.sum(-1) < math.inf)  # +inf and NaN fail (so does a sum past the float range)
    top = x.amax(-1)  # NaN propagates into the maximum and fails both tests
    return top.isfinite() if kind == "logits" else top < math.inf  # logits: not all -inf either


def _divisor(n: int, least: int) -> int:
    """The smallest divisor of ``n`` in [least, 4·least]; 1 when there is none."""
    return next((k for k in range(least, min(n, 4 * least) + 1) if n % k == 0), 1)


def _check_stats(kind: str, low: Any, mass: Any, dtype: Any, torch: Any) -> Any:
    """Per-row pass/fail of the cheap checks: probs (min ≥ 0, Σ = 1), log_probs (max ≤ 0, lse = 0)."""
    tol = sum_tolerance(dtype)
    if kind == "probs":
        return (low.amin(-1) >= 0) & ((mass.sum(-1) - 1).abs() <= tol)
    return (low.amax(-1) <= tol) & (torch.logsumexp(mass, -1).abs() <= tol)


def _torch_tile(
    measure: Measure, a: Any, b: Any, kind: str, q_kind: str, column: bool, validate: bool, torch: Any
) -> tuple[Any, list, list]:
    """``(value, stats_p, stats_q)`` of one tile, per row.

    ``value`` is the measure with each tile of logits normalised on its own (see
    :func:`_chain`). ``stats`` is ``[lse, low, mass]``: the tile's log-sum-exp
    (logits in column tiles), its min (probs) or max (log_probs), and its mass
    (probs: Σp; log_probs: log Σ exp) when needed. Peak temporaries: two tiles.

    Terms with p = 0 beside log q = -inf (or log p = -inf) are 0 · inf = NaN; their
    limit is 0. Rows whose sum is NaN have those terms zeroed and are summed again,
    with ``0 · max|input|`` added so that NaN or infinite inputs still give NaN.
    """
    sp = _tile_stats(a, kind, column, validate)
    sq = None if b is None else _tile_stats(b, q_kind, column, validate)
    if measure == "entropy":
        term = _tile_log(a, kind, sp, torch)
        if kind == "probs":
            term.clamp_(min=torch.finfo(a.dtype).min)  # 0 · log 0 = 0 without a second pass
        term.mul_(_tile_prob(a, kind, torch))
    elif measure == "kl_divergence":
        logq = _tile_log(b, q_kind, sq, torch)
        term = _tile_log(a, kind, sp, torch)
        if kind == "probs":
            term.clamp_(min=torch.finfo(a.dtype).min)
        term.sub_(logq)
        if kind == q_kind == "probs":
            _near_log_ratio(a, b, term, logq, torch)  # logq's memory is scratch from here
        del logq
        term.mul_(_tile_prob(a, kind, torch))
    else:
        term = _tile_log(b, q_kind, sq, torch).mul_(_tile_prob(a, kind, torch))
    value = term.sum(-1)
    if a.device.type != "cpu" or bool(value.isnan().any()):  # a sync is cheap on the CPU only
        guard = _guard(a, kind) if b is None else _guard(a, kind) + _guard(b, q_kind)
        again = term.nan_to_num_(nan=0.0, posinf=math.inf, neginf=-math.inf).sum(-1) + guard
        value = torch.where(value.isnan(), again, value)
    del term
    for x, k, st in ((a, kind, sp), (b, q_kind, sq)):  # normalisers not met on the way
        if x is not None and k == "log_probs" and st[2] is None and (validate or column):
            st[2] = torch.logsumexp(x, -1)
        if x is not None and k == "logits" and column and st[0] is None:
            st[0] = torch.logsumexp(x, -1)
    value = value if measure == "kl_divergence" else -value
    return (value, *sp, *(sq or (None, None, None)))


def _near_log_ratio(a: Any, b: Any, term: Any, scratch: Any, torch: Any) -> None:
    """Where probabilities are within a factor 3/2 (|a − b| ≤ ½ b), ``term`` = log1p((a − b)/b) in place:
    a − b is exact there, so log(a/b) keeps its relative accuracy near a = b (log a − log b does not).
    The same form as the generic path's; ``scratch`` (a tile) is overwritten."""
    ratio = torch.sub(a, b, out=scratch).div_(b)  # b = 0 gives ±inf or NaN: never near
    near = (ratio >= -0.5).logical_and_(ratio <= 0.5)
    torch.where(near, ratio.log1p_(), term, out=term)


def _guard(x: Any, kind: str) -> Any:
    """0 per row, NaN if the row holds NaN or +inf (probabilities: or -inf; logits: or is all -inf)."""
    if kind == "probs":
        return 0.0 * x.sum(-1)
    top = x.amax(-1)
    return 0.0 * (top if kind == "logits" else top.masked_fill(top == -math.inf, 0.0))


def _tile_stats(x: Any, kind: str, column: bool, validate: bool) -> list:
    """``[lse, low, mass]`` of one tile as far as known before the measure (see :func:`_torch_tile`)."""
    stats = [None, None, None]
    if kind == "probs" and (validate or column):
        stats[1:] = x.amin(-1) if validate else None, x.sum(-1)
    elif (validate and kind == "log_probs") or (column and kind == "logits"):
        stats[1] = x.amax(-1)
    return stats


def _tile_log(x: Any, kind: str, stats: list, torch: Any) -> Any:
    """A new tensor holding log p̃ of the tile; records a column tile's log-sum-exp in ``stats``."""
    if kind == "probs":
        return torch.log(x)
    if kind == "log_probs":
        return x.clone()
    logp = torch.log_softmax(x, dim=-1)
    if stats[1] is not None:  # lse_t = max x − max log p̃ (the same entry); -inf for a tile of -inf
        top = stats[1]
        stats[0] = torch.where(top == -math.inf, top, top - logp.amax(-1))
    return logp


def _tile_prob(x: Any, kind: str, torch: Any) -> Any:
    """p̃ of the tile (``x`` itself for probs)."""
    if kind == "probs":
        return x
    if kind == "logits":
        return torch.softmax(x, dim=-1)
    return torch.exp(x)


def _chain(measure: Measure, out: list, kind: str, q_kind: str, torch: Any) -> Any:
    """Combine the pieces of each row with the chain rule of KL (and of entropy, cross-entropy).

    With piece t of logits normalised on its own, log p_i = log p̃_i + c_t where
    c_t = lse_t − lse and the piece's share is w_t = exp(c_t); for probabilities
    c_t = 0, w_t = 1. Then KL = Σ_t w_t [KL_t + m_t (c^p_t − c^q_t)] with
    m_t = Σ_{i∈t} p̃_i, CE = Σ_t w_t [CE_t − m_t c^q_t], H = Σ_t w_t [H_t − m_t c^p_t].
    ``out`` holds (rows, pieces) tensors: value, then lse, low, mass of p and of q.
    """
    value = out[0]
    cp = None if kind != "logits" else out[1] - torch.logsumexp(out[1], -1, keepdim=True)
    cq = None if q_kind != "logits" or out[4] is None else out[4] - torch.logsumexp(out[4], -1, keepdim=True)
    if measure == "entropy":
        shift = None if cp is None else -cp
    elif measure == "cross_entropy":
        shift = None if cq is None else -cq
    elif cp is None and cq is None:
        shift = None
    else:
        shift = (0.0 if cp is None else cp) - (0.0 if cq is None else cq)
    if cp is not None:  # p from logits: each piece has mass 1 and share exp(c_t)
        share = cp.exp()
        terms = share * (value if shift is None else value + shift)
        # a piece of p all -inf has no share (and NaN from its own softmax); NaN offsets stay NaN
        return (torch.where(share > 0, terms, 0.0) + 0.0 * cp.nan_to_num(neginf=0.0)).sum(-1)
    if shift is None:
        return value.sum(-1)
    mass = out[3] if kind == "probs" else out[3].exp()
    return (value + mass * shift).sum(-1)
