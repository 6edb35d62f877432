"""Prepare: the measures' options and sizes, the value checks, and each kind's ``(log p, p)``.

What every path needs before its arithmetic: the size thresholds that choose a path and a chunk,
the checks of ``weights`` and of the input values (streamed over column chunks for large inputs),
whether a call runs under autograd, and the conversion of one chunk of probabilities,
log-probabilities or logits to ``(log p, p)`` in the compute dtype (``log 0 = -inf`` with a zero
gradient; logits normalised with a log-sum-exp, per chunk when the log-sum-exp is given).
"""

from __future__ import annotations

import math
from typing import Any, Literal

from klkit._engine.arrays import errstate, is_torch, logsumexp
from klkit._engine.checks import CHECKS, check_streaming
from klkit.errors import InvalidArgumentError

__all__ = [
    "CHUNK_BYTES",
    "CHUNK_MIN",
    "FAST_MIN",
    "Measure",
    "check_values",
    "check_weights",
    "invalid_logits",
    "log_and_prob",
    "log_softmax",
    "logits_normaliser",
    "out_of_domain",
    "safe_log",
    "under_autograd",
]

Measure = Literal["entropy", "cross_entropy", "kl_divergence", "js_divergence"]


FAST_MIN = 1 << 16  # numpy inputs with at least this many elements take the kernels


CHUNK_MIN = 1 << 18  # inputs with more elements than this are processed in chunks


CHUNK_BYTES = 320  # generic path: one chunk holds size · itemsize / CHUNK_BYTES elements, so that
# its ~8 float64 temporaries stay under 20% of one input (float32: chunks of 1/80 of the input)


def check_weights(weights: Any) -> tuple[float, float] | None:
    """``(w, 1 - w)`` as two floats; None for the default (½, ½)."""
    if weights is None:
        return None
    try:
        pair = tuple(float(w) for w in weights) if not isinstance(weights, (str, bytes)) else ()
    except (TypeError, ValueError):
        pair = ()
    if len(pair) != 2 or not all(0.0 <= w <= 1.0 for w in pair) or abs(pair[0] + pair[1] - 1.0) > 1e-12:
        raise InvalidArgumentError(
            f"`weights` must be two numbers in [0, 1] that sum to 1, (w, 1 - w); found {weights!r}. "
            "Pass e.g. weights=(0.3, 0.7), or None for the symmetric (0.5, 0.5)."
        )
    return None if pair == (0.5, 0.5) else pair


def check_has_values(x: Any, name: str) -> None:
    """Validation reads values: a meta tensor (a shape without values) is refused, naming the way out."""
    if getattr(getattr(x, "device", None), "type", None) == "meta":
        raise InvalidArgumentError(
            f"`{name}` must hold values to be validated; found a tensor on the meta device (a shape without values). "
            "Pass validate=False to propagate shapes only (as torch.compile's tracing does), or create the tensor "
            "on a real device."
        )


def check_values(x: Any, kind: str, name: str, xp: Any) -> None:
    """The checks of ``kind``; streamed over column chunks for large inputs (bounded memory)."""
    check_has_values(x, name)
    size = math.prod(x.shape)
    if size <= CHUNK_MIN:
        CHECKS[kind](x, name, xp)
    else:
        rows = size // x.shape[-1]
        itemsize = xp.finfo(x.dtype).bits // 8
        with errstate(xp):
            check_streaming(x, kind, name, xp, max(1, size * itemsize // CHUNK_BYTES // rows))


def under_autograd(P: Any, Q: Any) -> bool:
    import torch

    return torch.is_grad_enabled() and (P.requires_grad or (Q is not None and Q.requires_grad))


def safe_log(x: Any, xp: Any) -> Any:
    """``log x`` with ``log 0 = -inf`` and a zero (not NaN) gradient at 0."""
    positive = x > 0
    return xp.where(positive, xp.log(xp.where(positive, x, 1.0)), -math.inf)


def log_softmax(x: Any, xp: Any) -> Any:
    if is_torch(xp):
        return xp.log_softmax(x, dim=-1)
    return x - logsumexp(x, xp, keepdims=True)


def logits_normaliser(x: Any, kind: str, xp: Any, chunks: list[slice], dtype: Any) -> Any:
    """Per-slice log-sum-exp (keepdims) of logits in column chunks; None otherwise."""
    if kind != "logits" or len(chunks) == 1:
        return None
    top = xp.astype(xp.max(x, axis=-1, keepdims=True), dtype)
    total = sum(xp.sum(xp.exp(xp.astype(x[..., c], dtype) - top), axis=-1, keepdims=True) for c in chunks)
    return top + xp.log(total)


def out_of_domain(x: Any, kind: str, xp: Any) -> Any:
    """Per slice of a column chunk: an entry no valid input of ``kind`` holds (NaN; ±inf or
    negative probabilities; +inf log-probabilities). Logits are judged per whole slice."""
    if kind == "probs":
        return xp.any(~((x >= 0) & (x < math.inf)), axis=-1)
    if kind == "log_probs":
        return xp.any(~(x < math.inf), axis=-1)
    return None


def invalid_logits(x: Any, kind: str, xp: Any) -> Any:
    """Per slice: logits with NaN or +inf, or only -inf (no finite maximum); None for other kinds."""
    return ~xp.isfinite(xp.max(x, axis=-1)) if kind == "logits" else None


def log_and_prob(x: Any, kind: str, lse: Any, dtype: Any, xp: Any) -> tuple[Any, Any]:
    """(log p, p) of one chunk in the compute dtype."""
    x = xp.astype(x, dtype)
    if kind == "probs":
        return safe_log(x, xp), x
    logp = (log_softmax(x, xp) if lse is None else x - lse) if kind == "logits" else x
    return logp, xp.exp(logp)
