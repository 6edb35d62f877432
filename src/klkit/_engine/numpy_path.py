"""The numpy path: the fused numba kernels of :mod:`klkit._engine.kernels` on numpy arrays.

Large C-contiguous float32/float64 arrays take the chunked kernels; small probabilities (and small
CPU tensors outside autograd, through shared memory) take the kernels' single-chunk entry, where a
call's cost is interpreter overhead. Both validate from the kernels' summaries: only a failure runs
the full checks that build the message.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from klkit._engine.arrays import namespace
from klkit._engine.checks import CHECKS, sum_tolerance
from klkit._engine.kernels import CROSS_ENTROPY, ENTROPY, KL, probs_rows, probs_rows_small
from klkit._engine.kernels_logits import logits_rows
from klkit._engine.prepare import FAST_MIN, Measure, under_autograd

__all__ = ["KERNEL_MODES", "SMALL_TORCH", "numpy_bridge_applies", "numpy_kernels_path", "numpy_small_path"]

KERNEL_MODES = {"entropy": ENTROPY, "cross_entropy": CROSS_ENTROPY, "kl_divergence": KL}


SMALL_TORCH = 1 << 12  # CPU tensors up to this many elements may take the numpy kernels


_SUM_TOLERANCE = {np.float32: sum_tolerance(np.float32), np.float64: sum_tolerance(np.float64)}


def numpy_kernels_path(
    measure: Measure, P: np.ndarray, Q: np.ndarray | None, kind: str, q_kind: str, validate: bool
) -> np.ndarray | None:
    """Large, C-contiguous float32/float64 numpy inputs of one kind: the fused kernels.

    The kernels give NaN for every row holding an entry outside its kind's domain,
    as the generic path does; with ``validate`` such rows raise instead.
    """
    if (
        measure not in KERNEL_MODES
        or kind != q_kind
        or kind == "log_probs"
        or P.size < FAST_MIN
        or P.dtype not in (np.float32, np.float64)
        or not P.flags.c_contiguous
    ):
        return None
    if Q is not None and (Q.dtype != P.dtype or not Q.flags.c_contiguous):
        return None
    batch = P.shape[:-1]
    P2 = P.reshape(-1, P.shape[-1])
    Q2 = None if Q is None else Q.reshape(P2.shape)
    mode = KERNEL_MODES[measure]
    xp = namespace(P)
    if kind == "probs":
        value, psum, qsum, bad = probs_rows(P2, Q2, mode)
        if validate:
            _check_probs_summaries(P, Q, psum, qsum, bad)
    else:
        value, lse_p, lse_q, bad = logits_rows(P2, P2 if Q2 is None else Q2, mode)
        if validate and (bad.any() or np.isneginf(lse_p).any() or np.isneginf(lse_q).any()):
            CHECKS["logits"](P, "p", xp)
            if Q is not None:
                CHECKS["logits"](Q, "q", xp)
    return value.reshape(batch)


def numpy_small_path(measure: Measure, P: np.ndarray, Q: np.ndarray | None, validate: bool) -> np.ndarray | None:
    """Small numpy probabilities: the kernels' single-chunk entry (:func:`klkit._engine.kernels.probs_rows_small`).

    On a short vector the cost of a call is interpreter overhead, not arithmetic: one
    compiled pass validates, applies ``0 · log 0 = 0`` and ``p > 0, q = 0 → inf``,
    corrects the rounding of ``p / q`` and gives NaN for rows outside the domain,
    with the same numerics as the large-input kernels.
    """
    if measure == "js_divergence" or P.dtype not in (np.float32, np.float64) or (Q is not None and Q.dtype != P.dtype):
        return None
    batch = P.shape[:-1]
    P2 = np.ascontiguousarray(P).reshape(-1, P.shape[-1])
    Q2 = None if Q is None else np.ascontiguousarray(Q).reshape(P2.shape)
    value, psum, qsum, bad = probs_rows_small(P2, Q2, KERNEL_MODES[measure])
    if validate:
        _check_probs_summaries(P, Q, psum, qsum, bad)
    return value.reshape(batch)


def numpy_bridge_applies(P: Any, Q: Any) -> bool:
    """Small CPU float32/float64 tensors outside autograd and ``torch.compile``: share their memory
    with numpy and take :func:`numpy_small_path` (a torch op costs microseconds of dispatch each;
    the compiled kernel does the whole call in one). Same values, same dtype back."""
    import torch

    return (
        P.numel() <= SMALL_TORCH
        and P.device.type == "cpu"
        and P.dtype in (torch.float32, torch.float64)
        and (Q is None or (Q.dtype == P.dtype and Q.device.type == "cpu"))
        and not under_autograd(P, Q)
        and not torch.compiler.is_compiling()
    )


def _check_probs_summaries(P: np.ndarray, Q: np.ndarray | None, psum: float, qsum: float, bad: int) -> None:
    """The kernels' summaries (bad entries, row sums farthest from 1) against the probability rules;
    only a failure runs the full checks, which raise with the details."""
    tol = _SUM_TOLERANCE[P.dtype.type]
    if bad or abs(psum - 1) > tol or abs(qsum - 1) > tol:
        xp = namespace(P)
        for x, name in ((P, "p"), (Q, "q"))[: 1 if Q is None else 2]:
            CHECKS["probs"](x, name, xp)
