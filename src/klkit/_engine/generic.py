"""The generic path: any array-API library, autograd, half precision, ``torch.compile``.

Written once against the Python array API (log space, masks, chunks), it serves every library
and is the reference the fast paths are pinned to by ``tests/test_differential.py``. Large inputs
go in chunks so that peak extra memory stays under 25% of one input.
"""

from __future__ import annotations

import math
from typing import Any

from klkit._engine.arrays import compute_dtype, is_torch
from klkit._engine.finish import LOG2
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

__all__ = ["chunk_budget", "generic_path", "js_term"]


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
        logp, p = log_and_prob(P[..., c], kind, lse_p, dtype, xp)
        if measure == "entropy":
            term = -support_term(p, logp, xp)
        else:
            logq, q = log_and_prob(Q[..., c], q_kind, lse_q, dtype, xp)
            if measure == "cross_entropy":
                term = -support_term(p, logq, xp)
            elif measure == "kl_divergence":
                term = support_term(p, _log_ratio(logp, p, logq, q, kind == q_kind == "probs", xp), xp)
            else:
                term = js_term(logp, p, logq, q, xp, weights)
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


def js_term(logp: Any, p: Any, logq: Any, q: Any, xp: Any, weights: tuple[float, float] | None = None) -> Any:
    """½ p log(p/m) + ½ q log(q/m) with log m = logaddexp(log p, log q) − log 2 (where |p − q| ≤ ½(p + q):
    ¼ (p + q)(2x artanh x + log1p(−x²)), x = (p − q)/(p + q), the same value without cancellation);
    with weights (w, 1 − w), w p log(p/m) + (1 − w) q log(q/m) with
    log m = logaddexp(log w + log p, log(1 − w) + log q)."""
    either = in_support(p) | in_support(q)
    if weights is None:
        logm = xp.logaddexp(xp.where(either, logp, 0.0), xp.where(either, logq, 0.0)) - LOG2
        far = 0.5 * (support_term(p, logp - logm, xp) + support_term(q, logq - logm, xp))
        # near p = q the two log terms cancel to first order: with x = (p − q)/(p + q), |x| ≤ ½,
        # the outcome's term is ¼ (p + q)(2x artanh x + log1p(−x²)) ≥ 0, two parts of one size
        total = p + q
        near = in_support(total) & (xp.abs(p - q) <= 0.5 * total)
        x = xp.where(near, p - q, 0.0) / xp.where(near, total, 1.0)
        close = 0.25 * total * (2.0 * x * xp.atanh(x) + xp.log1p(-x * x))
        return xp.where(near, close, far)
    wp, wq = weights
    if wp == 0.0 or wq == 0.0:  # M is Q (or P): the divergence is 0; keep the graph
        return 0.0 * (p + q)
    logm = xp.logaddexp(xp.where(either, logp, 0.0) + math.log(wp), xp.where(either, logq, 0.0) + math.log(wq))
    return wp * support_term(p, logp - logm, xp) + wq * support_term(q, logq - logm, xp)
