"""Prepare the cross-entropy loss: backends, logits, options, targets and class weights, with the
messages that name what is wrong (:func:`klkit.losses.cross_entropy_loss`)."""

from __future__ import annotations

import numbers
import sys
from typing import Any

import numpy as np

from klkit._engine.arrays import is_torch_array, namespace, to_numpy
from klkit._engine.checks import describe_entries, sum_tolerance
from klkit.errors import BackendMismatchError, InvalidArgumentError, InvalidDistributionError, ShapeError

__all__ = [
    "check_loss_options",
    "check_loss_target_shape",
    "check_loss_weight",
    "loss_logits",
    "loss_namespace",
    "loss_target_kind",
    "raise_bad_index",
    "raise_bad_logits",
    "raise_bad_probs",
]


# ---------------------------------------------------------------------------
# Checks
# ---------------------------------------------------------------------------


def loss_namespace(logits: Any, target: Any, weight: Any) -> Any:
    named = (("logits", logits), ("target", target), ("weight", weight))
    torch_in = is_torch_array(logits)
    if any(is_torch_array(v) != torch_in for _, v in named if v is not None):
        kinds = ", ".join(f"`{n}` {'torch' if is_torch_array(v) else 'numpy'}" for n, v in named if v is not None)
        raise BackendMismatchError(
            f"`logits`, `target` and `weight` must all be numpy or all torch; found {kinds}. "
            "Convert with torch.as_tensor or .numpy()."
        )
    return namespace(*(v for _, v in named if v is not None), names=tuple(n for n, v in named if v is not None))


def loss_logits(logits: Any, xp: Any) -> Any:
    z = logits if is_torch_array(logits) else xp.asarray(logits)
    if not _is_float(z, xp):
        raise TypeError(f"`logits` must have a floating dtype; found {z.dtype}. Cast with .astype(float) / .float().")
    if z.ndim == 0:
        raise ShapeError("`logits` must have a class axis: shape (C,), (N, C) or (N, C, d1, ...); found a 0-d scalar.")
    return z


def _is_float(x: Any, xp: Any) -> bool:
    return x.is_floating_point() if is_torch_array(x) else xp.isdtype(x.dtype, "real floating")


def loss_target_kind(t: Any, xp: Any) -> str:
    if _is_float(t, xp):
        return "probs"
    if (is_torch_array(t) and not t.is_complex() and t.dtype != sys.modules["torch"].bool) or (
        not is_torch_array(t) and xp.isdtype(t.dtype, "integral")
    ):
        return "index"
    raise TypeError(
        f"`target` must hold class indices (integer dtype) or probabilities (floating dtype); found dtype {t.dtype}."
    )


def check_loss_options(reduction: Any, label_smoothing: Any, ignore_index: Any) -> tuple[str, float]:
    if reduction not in ("mean", "sum", "none"):
        raise InvalidArgumentError(f"`reduction` must be 'mean', 'sum' or 'none'; found {reduction!r}.")
    if (
        isinstance(label_smoothing, bool)
        or not isinstance(label_smoothing, numbers.Real)
        or not 0.0 <= float(label_smoothing) <= 1.0
    ):
        raise InvalidArgumentError(
            f"`label_smoothing` must be a number in [0, 1]; found {label_smoothing!r}. "
            "Use e.g. 0.1; 0 disables smoothing."
        )
    if isinstance(ignore_index, bool) or not isinstance(ignore_index, numbers.Integral):
        raise TypeError(f"`ignore_index` must be an integer; found {ignore_index!r}. The default is -100.")
    return reduction, float(label_smoothing)


def check_loss_target_shape(t: Any, z: Any, index: bool, positions: tuple[int, ...], class_axis: int) -> None:
    if index and tuple(t.shape) != positions:
        raise ShapeError(
            f"`target` class indices must have shape {positions} (`logits` {tuple(z.shape)} without "
            f"the class axis {class_axis}); found {tuple(t.shape)}."
        )
    if not index and tuple(t.shape) != tuple(z.shape):
        raise ShapeError(
            f"`target` probabilities must have the shape of `logits` {tuple(z.shape)}; found "
            f"{tuple(t.shape)}. Pass class indices (integers) of shape {positions} instead."
        )


def check_loss_weight(xp: Any, weight: Any, n_classes: int, z: Any) -> Any:
    w = weight if is_torch_array(weight) else xp.asarray(weight)
    if tuple(w.shape) != (n_classes,):
        raise ShapeError(f"`weight` must have shape ({n_classes},), one weight per class; found {tuple(w.shape)}.")
    wn = to_numpy(w).astype(np.float64)  # C values: checked on the host
    bad = ~np.isfinite(wn) | (wn < 0)
    if bad.any():
        raise InvalidArgumentError(
            f"`weight` must be finite and >= 0; found {describe_entries(wn, bad)}. Use 0 to drop a class."
        )
    return w


def raise_bad_index(t: Any, n_classes: int, ignore_index: int) -> None:
    tn = to_numpy(t)
    out = (tn != ignore_index) & ((tn < 0) | (tn >= n_classes))
    if out.any():
        raise InvalidArgumentError(
            f"`target` class indices must lie in [0, {n_classes - 1}] or equal `ignore_index` ({ignore_index}); "
            f"found {describe_entries(tn, out)}. Check the labels and the class count of `logits`."
        )


def raise_bad_logits(zl: Any) -> None:
    """``zl`` (classes last) holds NaN, +inf or a row of only -inf: raise with the first offender."""
    zn = to_numpy(zl)
    bad = np.isnan(zn) | (zn == np.inf)
    if bad.any():
        raise InvalidDistributionError(
            f"`logits` must hold logits: real numbers or -inf (masked), never NaN or +inf; found "
            f"{describe_entries(zn, bad)} (index with classes last). Check the model output for overflow."
        )
    empty = np.all(zn == -np.inf, axis=-1)
    if empty.any():
        raise InvalidDistributionError(
            f"`logits` must have at least one finite logit per position; found {int(empty.sum())} position(s) "
            "with every logit -inf. Leave at least one class unmasked."
        )


def raise_bad_probs(tl: Any, class_axis: int) -> None:
    """Probability targets (classes last) must be finite, >= 0 and sum to 1: torch would accept anything."""
    tn = to_numpy(tl)
    bad = ~np.isfinite(tn) | (tn < 0)
    if bad.any():
        raise InvalidDistributionError(
            f"`target` probabilities must be finite and >= 0; found {describe_entries(tn, bad)} "
            "(index with classes last). Pass class indices as integers, or soft labels as probabilities."
        )
    sums = np.atleast_1d(tn.astype(np.float64).sum(axis=-1))
    tol = sum_tolerance(tl.dtype)
    off = np.abs(sums - 1.0) > tol
    if off.any():
        raise InvalidDistributionError(
            f"`target` probabilities must sum to 1 over the class axis ({class_axis}) within {tol:.1e}; found sums "
            f"from {sums[off].min():.10g} to {sums[off].max():.10g} in {int(off.sum())} of {sums.size} position(s). "
            "klkit never renormalises silently: call klkit.normalize(target, axis=1) first."
        )
