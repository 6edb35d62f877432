r"""Cross-entropy loss from logits: the negative log-likelihood of the labels.

For one example with logits :math:`z \in \mathbb{R}^C` and label :math:`y`, the loss is the
cross-entropy between the label's distribution (one-hot, smoothed or soft) and the model's
:math:`\mathrm{softmax}(z)`, i.e. the surprise of the label under the model,
:math:`-\log \mathrm{softmax}(z)_y`. Averaged over a data set it is the negative mean
log-likelihood, so minimising it is maximum-likelihood estimation.

The options and conventions follow :func:`torch.nn.functional.cross_entropy` exactly (class axis
1, ``weight``, ``ignore_index``, ``label_smoothing``, ``reduction``), for numpy and torch inputs,
except that klkit validates: probability targets must be probabilities (torch accepts negative or
unnormalised "probabilities" silently) and logits must not be NaN or ``+inf``.

torch inputs larger than one tile (:data:`klkit._torch_functions.TILE_ELEMENTS` entries) and all
half-precision inputs take :func:`klkit._torch_functions.logits_cross_entropy`, a fused autograd
Function that keeps only the logits and one log-sum-exp per row for backward (peak memory about one
gradient, against about three input-sized buffers for ``log_softmax`` + ``nll_loss``), accumulates
half precision in float32, and is faster than ``F.cross_entropy`` on large vocabularies. Smaller
float32/float64 inputs with class-index targets, where Python overhead per operation dominates, call
``F.cross_entropy`` itself after the checks. numpy (and other array-API) inputs are computed in
float64 through :mod:`klkit._xp`.
"""

from __future__ import annotations

import math
import numbers
import sys
from typing import Any, Literal

import numpy as np

from klkit import _xp
from klkit._validation import _describe, sum_tolerance
from klkit.errors import BackendMismatchError, InvalidArgumentError, InvalidDistributionError, ShapeError

__all__ = ["cross_entropy_loss"]

Reduction = Literal["mean", "sum", "none"]


def cross_entropy_loss(
    logits: Any,
    target: Any,
    /,
    *,
    weight: Any = None,
    ignore_index: int = -100,
    label_smoothing: float = 0.0,
    reduction: Reduction = "mean",
    validate: bool = True,
) -> Any:
    r"""Cross-entropy loss of ``target`` under ``softmax(logits)``, as :func:`torch.nn.functional.cross_entropy`.

    For each position :math:`n` (example, pixel, token) with class weights :math:`w` (default 1),
    smoothing :math:`\varepsilon` and :math:`C` classes, the loss is a weighted cross-entropy
    :math:`\ell_n = -\sum_c a_{n,c} \log \mathrm{softmax}(z_n)_c` with

    - class-index targets :math:`y_n`:
      :math:`a_{n,c} = (1-\varepsilon)\, w_{y_n} [c = y_n] + \tfrac{\varepsilon}{C} w_c`
      (0 where :math:`y_n` = ``ignore_index``); with :math:`w = 1, \varepsilon = 0` this is
      :math:`\ell_n = -\log \mathrm{softmax}(z_n)_{y_n}`, the negative log-likelihood of the label;
    - probability targets :math:`t_n`:
      :math:`a_{n,c} = w_c \big((1-\varepsilon)\, t_{n,c} + \tfrac{\varepsilon}{C}\big)`.

    Each :math:`\ell_n` is computed as :math:`m_n \,\mathrm{lse}(z_n) - \sum_c a_{n,c} z_{n,c}` with
    :math:`m_n = \sum_c a_{n,c}` and the log-sum-exp :math:`\mathrm{lse}` (no softmax overflow;
    terms with :math:`a_{n,c} = 0` are 0, also at a ``-inf`` logit), and its gradient analytically as
    :math:`m_n \mathrm{softmax}(z_n) - a_n`. ``reduction="mean"`` divides :math:`\sum_n \ell_n` by
    :math:`\sum_n w_{y_n}` over non-ignored positions (class indices) or by the number of positions
    (probabilities), as torch does.

    Parameters
    ----------
    logits : array_like or torch.Tensor
        Unnormalised scores, shape ``(C,)``, ``(N, C)`` or ``(N, C, d1, ..., dk)``: classes on
        axis 1 (axis 0 for a 1-D input), as in torch. ``-inf`` masks a class.
    target : array_like or torch.Tensor
        Either class indices (integer dtype) of shape ``()``, ``(N,)`` or ``(N, d1, ..., dk)``,
        values in ``[0, C)`` or ``ignore_index``; or probabilities (floating dtype) of the same
        shape as ``logits``, non-negative and summing to 1 over the class axis.
    weight : array_like or torch.Tensor, optional
        Non-negative weight per class, shape ``(C,)`` (a constant: no gradient flows into it).
    ignore_index : int, default -100
        Class-index value whose positions contribute nothing (not to the mean's denominator either).
        Unused for probability targets.
    label_smoothing : float, default 0.0
        :math:`\varepsilon \in [0, 1]`: mix the target with the uniform distribution.
    reduction : {'mean', 'sum', 'none'}, default 'mean'
        'none' returns one loss per position (shape of ``logits`` without the class axis).
    validate : bool, default True
        Check the values of ``logits`` and ``target`` (rules under Raises). On torch the checks are
        reductions that produce one boolean, read once (one host synchronisation per call; after the
        forward pass for large inputs, before it for small ones); only a failure builds the detailed
        message. ``False`` skips them (no synchronisation: for ``torch.compile(fullgraph=True)`` or
        CUDA graphs); invalid values then give NaN or ``inf`` (or clamped class indices) instead of
        an error. Shapes, dtypes and options are always checked.

    Returns
    -------
    ndarray, float or torch.Tensor
        numpy in, numpy out (a 0-d array for 'mean'/'sum'), in the dtype of ``logits``; torch in,
        torch out (dtype, device and autograd kept; float16/bfloat16 accumulated in float32). A mean
        over zero weight (every position ignored) is NaN, as in torch.

    Raises
    ------
    ValueError
        Probability targets that are negative, NaN or do not sum to 1 (within √ε of the dtype);
        class indices outside ``[0, C)`` that are not ``ignore_index``; NaN or +inf logits, or a
        position whose logits are all ``-inf``; shapes that do not match; a ``weight`` that is not
        ``(C,)``, negative or not finite; ``label_smoothing`` outside [0, 1]; an unknown ``reduction``.
    TypeError
        numpy and torch inputs mixed; non-floating logits; a non-integer ``ignore_index``.

    See Also
    --------
    klkit.cross_entropy : the measure this loss is the weighted, averaged form of.
    klkit._torch_functions.logits_cross_entropy : the fused torch autograd Function.

    References
    ----------
    .. [1] C. Szegedy et al., "Rethinking the Inception Architecture for Computer Vision", 2016
       (label smoothing).

    Examples
    --------
    >>> import numpy as np
    >>> from klkit.losses import cross_entropy_loss
    >>> logits = np.log([[0.7, 0.2, 0.1], [0.1, 0.1, 0.8]])
    >>> round(float(cross_entropy_loss(logits, np.array([0, 2]))), 12)  # mean of -log 0.7 and -log 0.8
    0.289909247626
    >>> round(float(cross_entropy_loss(logits, np.array([0, -100]))), 12)  # the second one is ignored
    0.356674943939
    >>> cross_entropy_loss(logits, np.array([[1.0, 0, 0], [0, 0, 1]]), reduction="none").round(6)
    array([0.356675, 0.223144])
    """
    xp = _namespace(logits, target, weight)
    z = _as_logits(logits, xp)
    reduction, eps = _check_options(reduction, label_smoothing, ignore_index)
    class_axis = 0 if z.ndim == 1 else 1
    n_classes = z.shape[class_axis]
    if n_classes == 0:
        raise ShapeError("`logits` must have at least one class; found a class axis of length 0.")
    t = target if _xp.is_torch_array(target) else xp.asarray(target)
    index = _target_kind(t, xp) == "index"
    positions = tuple(s for i, s in enumerate(z.shape) if i != class_axis)
    _check_target_shape(t, z, index, positions, class_axis)
    w = None if weight is None else _check_weight(xp, weight, n_classes, z)
    if _xp.is_torch(xp):
        return _torch_loss(z, t, w, index, int(ignore_index), eps, reduction, validate, class_axis)
    return _generic_loss(xp, z, t, w, index, int(ignore_index), eps, reduction, validate, class_axis)


# ---------------------------------------------------------------------------
# Checks
# ---------------------------------------------------------------------------


def _namespace(logits: Any, target: Any, weight: Any) -> Any:
    named = (("logits", logits), ("target", target), ("weight", weight))
    torch_in = _xp.is_torch_array(logits)
    if any(_xp.is_torch_array(v) != torch_in for _, v in named if v is not None):
        kinds = ", ".join(f"`{n}` {'torch' if _xp.is_torch_array(v) else 'numpy'}" for n, v in named if v is not None)
        raise BackendMismatchError(
            f"`logits`, `target` and `weight` must all be numpy or all torch; found {kinds}. "
            "Convert with torch.as_tensor or .numpy()."
        )
    return _xp.namespace(*(v for _, v in named if v is not None), names=tuple(n for n, v in named if v is not None))


def _as_logits(logits: Any, xp: Any) -> Any:
    z = logits if _xp.is_torch_array(logits) else xp.asarray(logits)
    if not _is_float(z, xp):
        raise TypeError(f"`logits` must have a floating dtype; found {z.dtype}. Cast with .astype(float) / .float().")
    if z.ndim == 0:
        raise ShapeError("`logits` must have a class axis: shape (C,), (N, C) or (N, C, d1, ...); found a 0-d scalar.")
    return z


def _is_float(x: Any, xp: Any) -> bool:
    return x.is_floating_point() if _xp.is_torch_array(x) else xp.isdtype(x.dtype, "real floating")


def _target_kind(t: Any, xp: Any) -> str:
    if _is_float(t, xp):
        return "probs"
    if (_xp.is_torch_array(t) and not t.is_complex() and t.dtype != sys.modules["torch"].bool) or (
        not _xp.is_torch_array(t) and xp.isdtype(t.dtype, "integral")
    ):
        return "index"
    raise TypeError(
        f"`target` must hold class indices (integer dtype) or probabilities (floating dtype); found dtype {t.dtype}."
    )


def _check_options(reduction: Any, label_smoothing: Any, ignore_index: Any) -> tuple[str, float]:
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


def _check_target_shape(t: Any, z: Any, index: bool, positions: tuple[int, ...], class_axis: int) -> None:
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


def _check_weight(xp: Any, weight: Any, n_classes: int, z: Any) -> Any:
    w = weight if _xp.is_torch_array(weight) else xp.asarray(weight)
    if tuple(w.shape) != (n_classes,):
        raise ShapeError(f"`weight` must have shape ({n_classes},), one weight per class; found {tuple(w.shape)}.")
    wn = _xp.to_numpy(w).astype(np.float64)  # C values: checked on the host
    bad = ~np.isfinite(wn) | (wn < 0)
    if bad.any():
        raise InvalidArgumentError(
            f"`weight` must be finite and >= 0; found {_describe(wn, bad)}. Use 0 to drop a class."
        )
    return w


def _raise_bad_index(t: Any, n_classes: int, ignore_index: int) -> None:
    tn = _xp.to_numpy(t)
    out = (tn != ignore_index) & ((tn < 0) | (tn >= n_classes))
    if out.any():
        raise InvalidArgumentError(
            f"`target` class indices must lie in [0, {n_classes - 1}] or equal `ignore_index` ({ignore_index}); "
            f"found {_describe(tn, out)}. Check the labels and the class count of `logits`."
        )


def _raise_bad_logits(zl: Any) -> None:
    """``zl`` (classes last) holds NaN, +inf or a row of only -inf: raise with the first offender."""
    zn = _xp.to_numpy(zl)
    bad = np.isnan(zn) | (zn == np.inf)
    if bad.any():
        raise InvalidDistributionError(
            f"`logits` must hold logits: real numbers or -inf (masked), never NaN or +inf; found "
            f"{_describe(zn, bad)} (index with classes last). Check the model output for overflow."
        )
    empty = np.all(zn == -np.inf, axis=-1)
    if empty.any():
        raise InvalidDistributionError(
            f"`logits` must have at least one finite logit per position; found {int(empty.sum())} position(s) "
            "with every logit -inf. Leave at least one class unmasked."
        )


def _raise_bad_probs(tl: Any, class_axis: int) -> None:
    """Probability targets (classes last) must be finite, >= 0 and sum to 1: torch would accept anything."""
    tn = _xp.to_numpy(tl)
    bad = ~np.isfinite(tn) | (tn < 0)
    if bad.any():
        raise InvalidDistributionError(
            f"`target` probabilities must be finite and >= 0; found {_describe(tn, bad)} "
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


# ---------------------------------------------------------------------------
# torch: fused autograd Function (large or half precision), F.cross_entropy (small)
# ---------------------------------------------------------------------------


def _torch_loss(
    z: Any, t: Any, w: Any, index: bool, ignore_index: int, eps: float, reduction: str, validate: bool, class_axis: int
) -> Any:
    import torch

    from klkit._torch_functions import TILE_ELEMENTS, logits_cross_entropy

    n = z.shape[class_axis]
    t = t.to(z.device)
    w = None if w is None else w.to(device=z.device, dtype=_xp.compute_dtype(torch, z.dtype))
    zl = torch.movedim(z, class_axis, -1).reshape(-1, n)  # a view for (N, C): positions first, classes last
    small = zl.numel() <= TILE_ELEMENTS and not _xp.is_half(z.dtype)
    if index and small:  # F.cross_entropy's fused kernels beat any op-by-op composition here
        tl = t.reshape(-1)
        if (
            validate
            and not _plainly_valid(zl, tl, n)
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


def _plainly_valid(zl: Any, tl: Any, n: int) -> bool:
    """Small CPU inputs with every logit finite and every label in [0, n): checked in numpy on
    shared memory (three calls, no torch dispatch). False means "look closer" (masks, ignored
    positions, or bad input), never "invalid"."""
    import torch

    if zl.device.type != "cpu" or torch.compiler.is_compiling():
        return False
    with np.errstate(over="ignore", invalid="ignore"):
        total = zl.detach().numpy().sum()  # finite logits (an overflowing sum only costs the closer look)
    labels = tl.numpy()
    return bool(np.isfinite(total)) and labels.size > 0 and labels.min() >= 0 and labels.max() < n


def _bad_rows(row_stat: Any) -> Any:
    """A row maximum or log-sum-exp that is not finite: NaN, +inf, or a row of only -inf."""
    return ~row_stat.isfinite().all()


def _bad_index(tl: Any, n: int, ignore_index: int) -> Any:
    return ((tl != ignore_index) & ((tl < 0) | (tl >= n))).any()


def _bad_probs(tl: Any) -> Any:
    """Negative, NaN or +inf entries, or sums off 1 (NaN and inf fail the sum test)."""
    import torch

    sums = tl.sum(dim=-1, dtype=_xp.compute_dtype(torch, tl.dtype))
    low = tl.amin(dim=-1) if tl.shape[-1] else sums
    return ~(((sums - 1).abs() <= sum_tolerance(tl.dtype)) & (low >= 0)).all()


def _raise_details(zl: Any, tl: Any, n: int, ignore_index: int, index: bool, class_axis: int) -> None:
    if index:
        _raise_bad_index(tl, n, ignore_index)
    else:
        _raise_bad_probs(tl, class_axis)
    _raise_bad_logits(zl)


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


def _generic_loss(
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
    dtype = _xp.compute_dtype(xp, z.dtype)
    zl = xp.astype(xp.moveaxis(z, class_axis, -1), dtype)  # (..., C): positions first, classes last
    if index:
        if validate and bool(xp.any((t != ignore_index) & ((t < 0) | (t >= n)))):
            _raise_bad_index(t, n, ignore_index)
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
    lse = _xp.logsumexp(zl, xp)
    if validate and not bool(xp.all(xp.isfinite(lse))):
        _raise_bad_logits(zl)
    with _xp.errstate(xp):
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
    return np.asarray(x, dtype=dtype) if _xp.is_numpy(xp) else xp.astype(x, dtype)


def _check_probs_generic(xp: Any, tl: Any, class_axis: int) -> None:
    dtype = _xp.compute_dtype(xp, tl.dtype)
    sums = xp.sum(xp.astype(tl, dtype), axis=-1)
    ok = xp.all(xp.isfinite(tl) & (tl >= 0)) and xp.all(xp.abs(sums - 1.0) <= sum_tolerance(tl.dtype))
    if not bool(ok):
        _raise_bad_probs(tl, class_axis)
