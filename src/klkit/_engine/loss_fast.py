"""The cross-entropy loss's common small case, decided in one test: class indices on the CPU.

Plain CPU ``(N, C)`` float32/float64 logits with ``(N,)`` int64 labels, no class weights, no
smoothing and the default ``ignore_index``: :func:`torch.nn.functional.cross_entropy` itself, after
one compiled look at the tensors' shared memory (every logit finite, every label in ``[0, C)``)
when validating. Anything else, or a look that is not conclusive, takes the full path of
:func:`klkit.losses.cross_entropy_loss` (which names what is wrong).
"""

from __future__ import annotations

import math
import sys
from typing import Any

import numba
import numpy as np

__all__ = ["plainly_valid", "small_index_loss"]

SMALL_LOSS = 1 << 18  # logits with at most this many entries (torch's fused kernel is fastest there)
_REDUCTIONS = ("mean", "sum", "none")


@numba.njit(nogil=True, cache=True, fastmath={"reassoc"})
def _finite_and_in_range(z, labels, n):  # pragma: no cover - compiled
    """Σ z finite (in float64: then every logit is finite) and every label in [0, n)."""
    total = 0.0
    for v in z:
        total += np.float64(v)
    if not abs(total) < math.inf:
        return False
    for y in labels:
        if y < 0 or y >= n:
            return False
    return labels.shape[0] > 0


def plainly_valid(zl: Any, tl: Any, n: int) -> bool:
    """Small CPU inputs with every logit finite and every label in [0, n), read from shared memory
    in one compiled pass. False means "look closer" (masks, ignored positions, or bad input),
    never "invalid"."""
    torch = sys.modules["torch"]
    if (
        not zl.is_cpu
        or not tl.is_cpu
        or tl.dtype is not torch.int64
        or torch.compiler.is_compiling()
        or not zl.is_contiguous()
        or not tl.is_contiguous()
    ):
        return False
    return _finite_and_in_range(zl.detach().numpy().reshape(-1), tl.numpy().reshape(-1), n)


def small_index_loss(
    logits: Any, target: Any, weight: Any, ignore_index: Any, label_smoothing: Any, reduction: Any, validate: Any
) -> Any:
    """``F.cross_entropy(logits, target, reduction=reduction)`` for the common small case; None otherwise."""
    torch = sys.modules.get("torch")
    if (
        torch is None
        or type(logits) is not torch.Tensor
        or type(target) is not torch.Tensor
        or weight is not None
        or type(ignore_index) is not int
        or ignore_index != -100
        or type(label_smoothing) not in (float, int)
        or label_smoothing != 0
        or type(reduction) is not str
        or reduction not in _REDUCTIONS
        or (validate is not True and validate is not False)
    ):
        return None
    if (
        (logits.dtype is not torch.float32 and logits.dtype is not torch.float64)
        or logits.ndim != 2
        or target.ndim != 1
        or target.shape[0] != logits.shape[0]
        or logits.shape[1] == 0
        or logits.numel() > SMALL_LOSS
        or not logits.is_cpu
        or logits.layout is not torch.strided
        or target.layout is not torch.strided
        or logits.is_nested
    ):
        return None
    if validate and not plainly_valid(logits, target, logits.shape[1]):
        return None
    if not validate and (target.dtype is not torch.int64 or not target.is_cpu):
        return None
    return torch.nn.functional.cross_entropy(logits, target, reduction=reduction)
