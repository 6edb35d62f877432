"""The cross-entropy loss's paths: torch (the fused autograd Function, or ``F.cross_entropy`` for
small inputs) and the generic array-API path in float64 (:func:`klkit.losses.cross_entropy_loss`)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from klkit._engine.arrays import compute_dtype, errstate, is_half, is_numpy, logsumexp
from klkit._engine.checks import sum_tolerance
from klkit._engine.loss_checks import raise_bad_index, raise_bad_logits, raise_bad_probs
from klkit._engine.loss_fast import plainly_valid

__all__ = ["generic_loss_path", "torch_loss_path"]


# ---------------------------------------------------------------------------
# torch: fused autograd Function (large or half precision), F.cross_entropy (small)
# ---------------------------------------------------------------------------


def torch_loss_path(
    z: Any, t: Any, w: Any, index: bool, ignore_index: int, eps: float, reduction: str, validate: bool, class_axis: int
) -> Any:
    import torch

    from klkit._engine.fused_loss import logits_cross_entropy
    from klkit._engine.fused_tiles import TILE_ELEMENTS

    n = z.shape[class_axis]
    t = t.to(z.device)
    w = None if w is None else w.to(device=z.device, dtype=compute_dtype(torch, z.dtype))
    zl = torch.movedim(z, class_axis, -1).reshape(-1, n)  # a view for (N, C): positions first, classes last
    small = zl.numel() <= TILE_ELEMENTS and not is_half(z.dtype)
    if index and small:  # F.cross_entropy's fused kernels beat any op-by-op composition here
        tl = t.reshape(-1)
        if (
            validate
            and not plainly_valid(zl, tl, n)
            and bool(_bad_index(tl, n, ignore_index) | _bad_rows(zl.amax(dim=-1)))
        ):
            _raise_details(zl, tl, n, ignore_index, index, class_axis)
        return torch.nn.functional.cross_entropy(
            z,
            t,
            weight=None if w is None else w.to(z.dtype),
            ignore_index=ignore_index,
            label_smoothing=eps,
            reduction=reduction,
        )
    tl = t.reshape(-1) if index else torch.movedim(t.to(z.dtype), class_axis, -1).reshape(-1, n)
    per_row, lse = logits_cross_entropy(tl, zl, weight=w, ignore_index=ignore_index, label_smoothing=eps)
    if validate:
        bad = _bad_rows(lse) | (_bad_index(tl, n, ignore_index) if index else _bad_probs(tl))
        if bool(bad):  # the one host synchronisation
            _raise_details(zl, tl, n, ignore_index, index, class_axis)
    positions = tuple(s for i, s in enumerate(z.shape) if i != class_axis)
    if reduction == "none":
        return per_row.reshape(positions)
    total = per_row.sum(dtype=lse.dtype)
    if reduction == "sum":
        return total.to(z.dtype)
    return (total / _mean_denominator(tl, w, index, ignore_index, lse.dtype)).to(z.dtype)


def _bad_rows(row_stat: Any) -> Any:
    """A row maximum or log-sum-exp that is not finite: NaN, +inf, or a row of only -inf."""
    return ~row_stat.isfinite().all()


def _bad_index(tl: Any, n: int, ignore_index: int) -> Any:
    return ((tl != ignore_index) & ((tl < 0) | (tl >= n))).any()


def _bad_probs(tl: Any) -> Any:
    """Negative, NaN or +inf entries, or sums off 1 (NaN and inf fail the sum test)."""
    import torch

    sums = tl.sum(dim=-1, dtype=compute_dtype(torch, tl.dtype))
    low = tl.amin(dim=-1) if tl.shape[-1] else sums
    return ~(((sums - 1).abs() <= sum_tolerance(tl.dtype)) & (low >= 0)).all()


def _raise_details(zl: Any, tl: Any, n: int, ignore_index: int, index: bool, class_axis: int) -> None:
    if index:
        raise_bad_index(tl, n, ignore_index)
    else:
        raise_bad_probs(tl, class_axis)
    raise_bad_logits(zl)


def _mean_denominator(tl: Any, w: Any, index: bool, ignore_index: int, dtype: Any) -> Any:
    """Σ_n w_{y_n} over non-ignored positions (class indices), or the number of positions."""
    if not index:
        return float(tl.shape[0])
    valid = tl != ignore_index
    if w is None:
        return valid.sum(dtype=dtype)
    safe = tl.where(valid, 0).clamp(0, w.shape[0] - 1)
    return (w[safe].to(dtype) * valid).sum()


# ---------------------------------------------------------------------------
# numpy and other array-API libraries: float64 (or the input's wider dtype), whole arrays
# ---------------------------------------------------------------------------


def generic_loss_path(
    xp: Any,
    z: Any,
    t: Any,
    w: Any,
    index: bool,
    ignore_index: int,
    eps: float,
    reduction: str,
    validate: bool,
    class_axis: int,
) -> Any:
    n = z.shape[class_axis]
    dtype = compute_dtype(xp, z.dtype)
    zl = xp.astype(xp.moveaxis(z, class_axis, -1), dtype)  # (..., C): positions first, classes last
    if index:
        if validate and bool(xp.any((t != ignore_index) & ((t < 0) | (t >= n)))):
            raise_bad_index(t, n, ignore_index)
        valid = t != ignore_index
        safe = xp.where(valid, t, xp.zeros_like(t))
        onehot = xp.astype(safe[..., None] == xp.arange(n), dtype)
        w_full = xp.ones(n, dtype=dtype) if w is None else xp.astype(w, dtype)
        label_w = xp.take(w_full, xp.reshape(safe, (-1,)))
        label_w = xp.reshape(label_w, safe.shape) * xp.astype(valid, dtype)  # w_{y_n}, 0 where ignored
        a = onehot * ((1.0 - eps) * label_w)[..., None]
        if eps > 0:
            a = a + (eps / n) * w_full * xp.astype(valid, dtype)[..., None]
        denominator = xp.sum(label_w)
    else:
        tl = xp.moveaxis(t, class_axis, -1)
        if validate:
            _check_probs_generic(xp, tl, class_axis)
        a = xp.astype(tl, dtype) * (1.0 - eps) + eps / n
        if w is not None:
            a = a * xp.astype(w, dtype)
        denominator = None  # mean over positions
    lse = logsumexp(zl, xp)
    if validate and not bool(xp.all(xp.isfinite(lse))):
        raise_bad_logits(zl)
    with errstate(xp):
        az = xp.where(a == 0, xp.zeros_like(a), a * zl)  # 0·(−inf) = 0
        per_position = xp.sum(a, axis=-1) * lse - xp.sum(az, axis=-1)
        if reduction == "none":
            return _finish(xp, per_position, z.dtype)
        total = xp.sum(per_position)
        if reduction == "sum":
            return _finish(xp, total, z.dtype)
        count = float(math.prod(per_position.shape)) if denominator is None else denominator
        return _finish(xp, total / count, z.dtype)  # 0/0 = NaN when every position is ignored


def _finish(xp: Any, x: Any, dtype: Any) -> Any:
    """``x`` in ``dtype``; numpy results stay arrays (0-d for a reduction), never numpy scalars."""
    return np.asarray(x, dtype=dtype) if is_numpy(xp) else xp.astype(x, dtype)


def _check_probs_generic(xp: Any, tl: Any, class_axis: int) -> None:
    dtype = compute_dtype(xp, tl.dtype)
    sums = xp.sum(xp.astype(tl, dtype), axis=-1)
    ok = xp.all(xp.isfinite(tl) & (tl >= 0)) and xp.all(xp.abs(sums - 1.0) <= sum_tolerance(tl.dtype))
    if not bool(ok):
        raise_bad_probs(tl, class_axis)
