"""The generic path: any array-API library, autograd, half precision, ``torch.compile``.

Written once against the Python array API (log space, masks, chunks), it serves every library
and is the reference the fast paths are pinned to by ``tests/test_differential.py``. Large inputs
go in chunks so that peak extra memory stays under 25% of one input.
"""

from __future__ import annotations

import math
from typing import Any

from klkit._engine.arrays import compute_dtype, is_torch
from klkit._engine.jensen_shannon import js_term
from klkit._engine.prepare import (
    CHUNK_BYTES,
    CHUNK_MIN,
    Measure,
    invalid_logits,
    log_and_prob,
    logits_normaliser,
    out_of_domain,
    under_autograd,
)
from klkit._engine.support import in_support, support_term

__all__ = ["chunk_budget", "generic_path"]


def chunk_budget(P: Any, Q: Any, xp: Any) -> int:
    """Elements per chunk of the generic path: the whole input when small or under autograd."""
    size = math.prod(P.shape)
    if size <= CHUNK_MIN:
        return size
    if is_torch(xp) and under_autograd(P, Q):
        return size  # autograd keeps every temporary anyway
    itemsize = xp.finfo(P.dtype).bits // 8
    return max(4096, size * itemsize // CHUNK_BYTES)


def generic_path(
    measure: Measure,
    P: Any,
    Q: Any,
    kind: str,
    q_kind: str,
    xp: Any,
    budget: int,
    guard: bool,
    weights: tuple[float, float] | None = None,
) -> Any:
    """The measure along the last axis, in chunks of at most ``budget`` elements when large.

    Blocks along the first axis first, then column chunks within a block (logits
    then take their log-sum-exp over the chunks before the terms). With ``guard``
    (unvalidated inputs), a slice holding an entry outside its kind's domain is NaN.
    """
    n = P.shape[-1]
    size = math.prod(P.shape)
    if size > budget and P.ndim > 1 and P.shape[0] > 1:
        step = max(1, P.shape[0] * budget // size)
        return xp.concat(
            [
                generic_path(
                    measure,
                    P[i : i + step],
                    None if Q is None else Q[i : i + step],
                    kind,
                    q_kind,
                    xp,
                    budget,
                    guard,
                    weights,
                )
                for i in range(0, P.shape[0], step)
            ],
            axis=0,
        )
    width = n if size <= budget else max(1, budget // max(1, size // n))
    chunks = [slice(c, min(c + width, n)) for c in range(0, n, width)]
    dtype = compute_dtype(xp, P.dtype if Q is None else xp.result_type(P, Q))
    lse_p = logits_normaliser(P, kind, xp, chunks, dtype)
    lse_q = None if Q is None else logits_normaliser(Q, q_kind, xp, chunks, dtype)
    total = 0.0
    invalid = None
    if guard:
        for x, k in ((P, kind), (Q, q_kind))[: 1 if Q is None else 2]:
            bad = invalid_logits(x, k, xp)
            if bad is not None:
                invalid = bad if invalid is None else invalid | bad
    for c in chunks:
        if measure == "js_divergence":  # its terms read p and q only: no logs of probabilities
            p, q = _prob(P[..., c], kind, lse_p, dtype, xp), _prob(Q[..., c], q_kind, lse_q, dtype, xp)
            term = js_term(None, p, None, q, xp, weights)
        elif measure == "entropy":
            logp, p = log_and_prob(P[..., c], kind, lse_p, dtype, xp)
            term = -support_term(p, logp, xp)
        else:
            logp, p = log_and_prob(P[..., c], kind, lse_p, dtype, xp)
            logq, q = log_and_prob(Q[..., c], q_kind, lse_q, dtype, xp)
            if measure == "cross_entropy":
                term = -support_term(p, logq, xp)
            else:  # kl_divergence
                term = support_term(p, _log_ratio(logp, p, logq, q, kind == q_kind == "probs", xp), xp)
        total = total + xp.sum(term, axis=-1)
        if guard:
            for x, k in ((P, kind), (Q, q_kind))[: 1 if Q is None else 2]:
                bad = out_of_domain(x[..., c], k, xp)
                if bad is not None:
                    invalid = bad if invalid is None else invalid | bad
    return total if invalid is None else xp.where(invalid, math.nan, total)


def _log_ratio(logp: Any, p: Any, logq: Any, q: Any, probs: bool, xp: Any) -> Any:
    """log(p/q); for probabilities within a factor 3/2 of each other, log1p((p − q)/q): p − q is exact
    there (Sterbenz), so the log of the ratio keeps its relative accuracy near p = q (log p − log q
    would leave an error of one rounding of log p, larger than the term itself)."""
    if not probs:
        return logp - logq
    d = p - q
    near = in_support(q) & (xp.abs(d) <= 0.5 * q)
    close = xp.log1p(xp.where(near, d, 0.0) / xp.where(near, q, 1.0))
    return xp.where(near, close, logp - logq)


def _prob(x: Any, kind: str, lse: Any, dtype: Any, xp: Any) -> Any:
    """p of one chunk in the compute dtype (probabilities as they are: no log taken)."""
    return xp.astype(x, dtype, copy=False) if kind == "probs" else log_and_prob(x, kind, lse, dtype, xp)[1]
