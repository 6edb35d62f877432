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

torch inputs larger than one tile (:data:`klkit._engine.fused_tiles.TILE_ELEMENTS` entries) and all
half-precision inputs take :func:`klkit._engine.fused_loss.logits_cross_entropy`, a fused autograd
Function that keeps only the logits and one log-sum-exp per row for backward (peak memory about one
gradient, against about three input-sized buffers for ``log_softmax`` + ``nll_loss``), accumulates
half precision in float32, and is faster than ``F.cross_entropy`` on large vocabularies. Smaller
float32/float64 inputs with class-index targets, where Python overhead per operation dominates, call
``F.cross_entropy`` itself after the checks. numpy (and other array-API) inputs are computed in
float64 through :mod:`klkit._engine.arrays`.
"""

from __future__ import annotations

from typing import Any, Literal

from klkit._engine import (
    check_loss_options,
    check_loss_target_shape,
    check_loss_weight,
    generic_loss_path,
    is_torch,
    is_torch_array,
    loss_logits,
    loss_namespace,
    loss_target_kind,
    small_index_loss,
    torch_loss_path,
)
from klkit.errors import ShapeError

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
    klkit._engine.fused_loss.logits_cross_entropy : the fused torch autograd Function.

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
    fast = small_index_loss(logits, target, weight, ignore_index, label_smoothing, reduction, validate)
    if fast is not None:
        return fast
    xp = loss_namespace(logits, target, weight)
    z = loss_logits(logits, xp)
    reduction, eps = check_loss_options(reduction, label_smoothing, ignore_index)
    class_axis = 0 if z.ndim == 1 else 1
    n_classes = z.shape[class_axis]
    if n_classes == 0:
        raise ShapeError("`logits` must have at least one class; found a class axis of length 0.")
    t = target if is_torch_array(target) else xp.asarray(target)
    index = loss_target_kind(t, xp) == "index"
    positions = tuple(s for i, s in enumerate(z.shape) if i != class_axis)
    check_loss_target_shape(t, z, index, positions, class_axis)
    w = None if weight is None else check_loss_weight(xp, weight, n_classes, z)
    if is_torch(xp):
        return torch_loss_path(z, t, w, index, int(ignore_index), eps, reduction, validate, class_axis)
    return generic_loss_path(xp, z, t, w, index, int(ignore_index), eps, reduction, validate, class_axis)
