r"""Cross-entropy loss from logits: the negative log-likelihood of the labels, built on :func:`klkit.cross_entropy`.

For one example with logits :math:`z \in \mathbb{R}^C` and label :math:`y`, the loss is the
cross-entropy between the label's distribution (one-hot, smoothed or soft) and the model's
:math:`\mathrm{softmax}(z)`, i.e. the surprise of the label under the model,
:math:`-\log \mathrm{softmax}(z)_y`. Averaged over a data set it is the negative mean
log-likelihood, so minimising it is maximum-likelihood estimation.

The options and conventions follow :func:`torch.nn.functional.cross_entropy` exactly (class axis
1, ``weight``, ``ignore_index``, ``label_smoothing``, ``reduction``), for numpy and torch inputs,
except that probability targets must be probabilities: torch accepts negative or unnormalised
"probabilities" silently, klkit raises.
"""

from __future__ import annotations

import math
import numbers
from typing import Any, Literal

import numpy as np

from klkit._backend import is_torch
from klkit._validation import _describe, sum_tolerance
from klkit.errors import BackendMismatchError, InvalidArgumentError, InvalidDistributionError, ShapeError
from klkit.measures import cross_entropy

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

    Each :math:`\ell_n` is computed as :math:`m_n \cdot H(a_n / m_n, \mathrm{softmax}(z_n))` with
    :math:`m_n = \sum_c a_{n,c}`, using :func:`klkit.cross_entropy` with ``q_kind="logits"``
    (log-sum-exp, no softmax overflow). ``reduction="mean"`` divides :math:`\sum_n \ell_n` by
    :math:`\sum_n w_{y_n}` over non-ignored positions (class indices) or by the number of
    positions (probabilities), as torch does.

    Parameters
    ----------
    logits : array_like or torch.Tensor
        Unnormalised scores, shape ``(C,)``, ``(N, C)`` or ``(N, C, d1, ..., dk)``: classes on
        axis 1 (axis 0 for a 1-D input), as in torch.
    target : array_like or torch.Tensor
        Either class indices (integer dtype) of shape ``()``, ``(N,)`` or ``(N, d1, ..., dk)``,
        values in ``[0, C)`` or ``ignore_index``; or probabilities (floating dtype) of the same
        shape as ``logits``, non-negative and summing to 1 over the class axis.
    weight : array_like or torch.Tensor, optional
        Non-negative weight per class, shape ``(C,)``.
    ignore_index : int, default -100
        Class-index value whose positions contribute nothing (not to the mean's denominator either).
        Unused for probability targets.
    label_smoothing : float, default 0.0
        :math:`\varepsilon \in [0, 1]`: mix the target with the uniform distribution.
    reduction : {'mean', 'sum', 'none'}, default 'mean'
        'none' returns one loss per position (shape of ``logits`` without the class axis).

    Returns
    -------
    ndarray, float or torch.Tensor
        numpy in, numpy out (a 0-d array for 'mean'/'sum'), in the dtype of ``logits``; torch in,
        torch out (dtype, device and autograd kept). A mean over zero weight (every position
        ignored) is NaN, as in torch.

    Raises
    ------
    ValueError
        Probability targets that are negative, NaN or do not sum to 1 (within √ε of the dtype);
        class indices outside ``[0, C)`` that are not ``ignore_index``; shapes that do not match;
        a ``weight`` that is not ``(C,)``, negative or not finite; ``label_smoothing`` outside
        [0, 1]; an unknown ``reduction``; NaN or +inf logits.
    TypeError
        numpy and torch inputs mixed; non-floating logits; a non-integer ``ignore_index``.

    See Also
    --------
    klkit.cross_entropy : the measure this loss is built on.

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
    torch_in = is_torch(logits)
    if torch_in != is_torch(target) or (weight is not None and is_torch(weight) != torch_in):
        kinds = ", ".join(f"`{n}` {'torch' if is_torch(v) else 'numpy'}"
                          for n, v in (("logits", logits), ("target", target), ("weight", weight)) if v is not None)
        raise BackendMismatchError(f"`logits`, `target` and `weight` must all be numpy or all torch; found {kinds}. "
                                   "Convert with torch.as_tensor or .numpy().")
    xp = _Torch() if torch_in else _Numpy()
    z = xp.asarray(logits)
    if not xp.is_float(z):
        raise TypeError(f"`logits` must have a floating dtype; found {z.dtype}. Cast with .astype(float) / .float().")
    if z.ndim == 0:
        raise ShapeError("`logits` must have a class axis: shape (C,), (N, C) or (N, C, d1, ...); found a 0-d scalar.")
    if reduction not in ("mean", "sum", "none"):
        raise InvalidArgumentError(f"`reduction` must be 'mean', 'sum' or 'none'; found {reduction!r}.")
    if isinstance(label_smoothing, bool) or not isinstance(label_smoothing, numbers.Real) \
            or not 0.0 <= float(label_smoothing) <= 1.0:
        raise InvalidArgumentError(f"`label_smoothing` must be a number in [0, 1]; found {label_smoothing!r}. "
                                   "Use e.g. 0.1; 0 disables smoothing.")
    if isinstance(ignore_index, bool) or not isinstance(ignore_index, numbers.Integral):
        raise TypeError(f"`ignore_index` must be an integer; found {ignore_index!r}. The default is -100.")
    eps = float(label_smoothing)
    class_axis = 0 if z.ndim == 1 else 1
    n_classes = z.shape[class_axis]
    if n_classes == 0:
        raise ShapeError("`logits` must have at least one class; found a class axis of length 0.")
    zl = xp.moveaxis(z, class_axis, -1)  # (..., C): positions first, classes last
    positions = tuple(zl.shape[:-1])
    w = None if weight is None else _check_weight(xp, weight, n_classes, z)
    t = xp.asarray(target)

    if xp.is_float(t):  # probability targets
        if tuple(t.shape) != tuple(z.shape):
            raise ShapeError(f"`target` probabilities must have the shape of `logits` {tuple(z.shape)}; found "
                             f"{tuple(t.shape)}. Pass class indices (integers) of shape {positions} instead.")
        tl = xp.moveaxis(xp.cast(t, zl), class_axis, -1)
        _check_probability_target(xp, tl, class_axis)
        a = tl * (1.0 - eps) + eps / n_classes if eps > 0 else tl
        if w is not None:
            a = a * w
        denominator = None  # mean over positions
    elif xp.is_integer(t):  # class indices
        if tuple(t.shape) != positions:
            raise ShapeError(f"`target` class indices must have shape {positions} (`logits` {tuple(z.shape)} without "
                             f"the class axis {class_axis}); found {tuple(t.shape)}.")
        valid = t != ignore_index
        out_of_range = valid & ((t < 0) | (t >= n_classes))
        if xp.any(out_of_range):
            raise InvalidArgumentError(
                f"`target` class indices must lie in [0, {n_classes - 1}] or equal `ignore_index` ({ignore_index}); "
                f"found {_describe(xp.to_numpy(t), xp.to_numpy(out_of_range))}. Check the labels and the class "
                "count of `logits`.")
        safe = xp.where(valid, t, 0)
        onehot = xp.one_hot(safe, n_classes, zl)
        w_full = xp.ones_like_classes(zl) if w is None else w
        label_weight = xp.take(w_full, safe) * xp.cast(valid, zl)  # w_{y_n}, 0 where ignored
        a = onehot * (label_weight * (1.0 - eps))[..., None]
        if eps > 0:
            a = a + (eps / n_classes) * w_full * xp.cast(valid, zl)[..., None]
        denominator = xp.sum_all(label_weight)
    else:
        raise TypeError(f"`target` must hold class indices (integer dtype) or probabilities (floating dtype); "
                        f"found dtype {t.dtype}.")

    # ℓ_n = m_n · H(a_n / m_n, softmax(z_n)): the weighted sum as a scaled cross-entropy of a distribution
    m = xp.sum(a)  # (positions,)
    has_mass = m > 0
    r = xp.where(has_mass[..., None], a / xp.where(has_mass, m, 1.0)[..., None], 1.0 / n_classes)
    per_position = m * cross_entropy(r, zl, axis=-1, q_kind="logits")
    if reduction == "none":
        return xp.finish(per_position, z)
    total = xp.sum_all(per_position)
    if reduction == "sum":
        return xp.finish(total, z)
    count = float(math.prod(positions)) if denominator is None else denominator
    return xp.finish(xp.divide(total, count), z)


# ---------------------------------------------------------------------------
# Checks
# ---------------------------------------------------------------------------


def _check_weight(xp: Any, weight: Any, n_classes: int, z: Any) -> Any:
    w = xp.cast(xp.asarray(weight), z)
    if tuple(w.shape) != (n_classes,):
        raise ShapeError(f"`weight` must have shape ({n_classes},), one weight per class; found {tuple(w.shape)}.")
    bad = ~xp.isfinite(w) | (w < 0)
    if xp.any(bad):
        raise InvalidArgumentError(f"`weight` must be finite and >= 0; found "
                                   f"{_describe(xp.to_numpy(w), xp.to_numpy(bad))}. Use 0 to drop a class.")
    return w


def _check_probability_target(xp: Any, tl: Any, class_axis: int) -> None:
    """Probability targets (classes last) must be finite, >= 0 and sum to 1: torch would accept anything."""
    bad = ~xp.isfinite(tl) | (tl < 0)
    if xp.any(bad):
        raise InvalidDistributionError(
            f"`target` probabilities must be finite and >= 0; found {_describe(xp.to_numpy(tl), xp.to_numpy(bad))} "
            "(index with classes last). Pass class indices as integers, or soft labels as probabilities.")
    sums = np.atleast_1d(xp.to_numpy(xp.sum(tl))).astype(np.float64)
    tol = sum_tolerance(tl.dtype)
    off = np.abs(sums - 1.0) > tol
    if off.any():
        raise InvalidDistributionError(
            f"`target` probabilities must sum to 1 over the class axis ({class_axis}) within {tol:.1e}; found sums "
            f"from {sums[off].min():.10g} to {sums[off].max():.10g} in {int(off.sum())} of {sums.size} position(s). "
            "klkit never renormalises silently: call klkit.normalize(target, axis=1) first.")


# ---------------------------------------------------------------------------
# Backends: the few operations the loss needs, for numpy and torch
# ---------------------------------------------------------------------------


class _Numpy:
    @staticmethod
    def asarray(x: Any) -> np.ndarray:
        return np.asarray(x)

    @staticmethod
    def is_float(x: np.ndarray) -> bool:
        return x.dtype.kind == "f"

    @staticmethod
    def is_integer(x: np.ndarray) -> bool:
        return x.dtype.kind in "iu"

    @staticmethod
    def cast(x: np.ndarray, like: np.ndarray) -> np.ndarray:
        return np.asarray(x, dtype=np.result_type(like.dtype, np.float32) if like.dtype.kind == "f" else np.float64)

    moveaxis = staticmethod(np.moveaxis)
    where = staticmethod(np.where)
    isfinite = staticmethod(np.isfinite)

    @staticmethod
    def any(x: np.ndarray) -> bool:
        return bool(np.any(x))

    @staticmethod
    def to_numpy(x: np.ndarray) -> np.ndarray:
        return np.asarray(x)

    @staticmethod
    def sum(x: np.ndarray) -> np.ndarray:
        return np.sum(x, axis=-1)

    @staticmethod
    def sum_all(x: np.ndarray) -> np.ndarray:
        return np.sum(x, dtype=np.float64)

    @staticmethod
    def divide(a: Any, b: Any) -> Any:
        with np.errstate(invalid="ignore", divide="ignore"):  # 0/0 = NaN when every position is ignored
            return np.float64(a) / np.float64(b)

    @staticmethod
    def one_hot(index: np.ndarray, n: int, like: np.ndarray) -> np.ndarray:
        return (index[..., None] == np.arange(n)).astype(like.dtype)

    @staticmethod
    def ones_like_classes(zl: np.ndarray) -> np.ndarray:
        return np.ones(zl.shape[-1], dtype=zl.dtype)

    @staticmethod
    def take(w: np.ndarray, index: np.ndarray) -> np.ndarray:
        return w[index]

    @staticmethod
    def finish(x: Any, z: np.ndarray) -> np.ndarray:
        return np.asarray(x, dtype=z.dtype)


class _Torch:
    def __init__(self) -> None:
        import torch

        self.torch = torch

    def asarray(self, x: Any) -> Any:
        return x if isinstance(x, self.torch.Tensor) else self.torch.as_tensor(x)

    @staticmethod
    def is_float(x: Any) -> bool:
        return x.is_floating_point()

    def is_integer(self, x: Any) -> bool:
        return not x.is_floating_point() and not x.is_complex() and x.dtype != self.torch.bool

    @staticmethod
    def cast(x: Any, like: Any) -> Any:
        return x.to(dtype=like.dtype if like.is_floating_point() else None, device=like.device)

    def moveaxis(self, x: Any, a: int, b: int) -> Any:
        return self.torch.movedim(x, a, b)

    def where(self, c: Any, a: Any, b: Any) -> Any:
        torch = self.torch
        if not isinstance(a, torch.Tensor):
            a = torch.as_tensor(a, dtype=b.dtype if isinstance(b, torch.Tensor) else None, device=c.device)
        return torch.where(c, a, b)

    def isfinite(self, x: Any) -> Any:
        return self.torch.isfinite(x)

    @staticmethod
    def any(x: Any) -> bool:
        return bool(x.any())

    @staticmethod
    def to_numpy(x: Any) -> np.ndarray:
        return x.detach().cpu().numpy()

    @staticmethod
    def sum(x: Any) -> Any:
        return x.sum(dim=-1)

    @staticmethod
    def sum_all(x: Any) -> Any:
        return x.sum()

    @staticmethod
    def divide(a: Any, b: Any) -> Any:
        return a / b

    def one_hot(self, index: Any, n: int, like: Any) -> Any:
        return self.torch.nn.functional.one_hot(index.long(), n).to(like.dtype)

    def ones_like_classes(self, zl: Any) -> Any:
        return self.torch.ones(zl.shape[-1], dtype=zl.dtype, device=zl.device)

    @staticmethod
    def take(w: Any, index: Any) -> Any:
        return w[index.long()]

    @staticmethod
    def finish(x: Any, z: Any) -> Any:
        return x.to(z.dtype)
