"""Mutual information, joint and conditional entropy of a joint distribution table P(X, Y).

The table lies on two axes of ``pxy`` (``axes``, default the last two: X then Y); any other
axes are a batch. Every quantity is computed from its own terms in log space,
:math:`I(X;Y) = \\mathrm{KL}(P_{XY}\\|P_X P_Y)` and :math:`H(Y|X) = -\\sum p(x,y)\\log p(y|x)`,
never as a difference of entropies, which cancels when X and Y are nearly independent
(or nearly determined).
"""

from __future__ import annotations

import numbers
from typing import Any, NamedTuple

from klkit._engine import (
    Inputs,
    Kind,
    asarray,
    check_base,
    check_entries,
    check_kind,
    check_log_probs,
    check_logits,
    check_probs,
    check_validate,
    compute_dtype,
    errstate,
    finish_result,
    invalid_slices,
    log_and_prob,
    namespace,
    safe_log,
)
from klkit._relative_terms import clamp, divide_twice, kl_terms, product_twice, sum_twice
from klkit.errors import InvalidArgumentError, ShapeError
from klkit.measures import entropy

__all__ = ["conditional_entropy", "joint_entropy", "mutual_information"]


def mutual_information(
    pxy: Any,
    /,
    *,
    axes: tuple[int, int] = (-2, -1),
    base: float | None = None,
    kind: Kind = "probs",
    validate: bool = True,
) -> Any:
    r"""Mutual information :math:`I(X;Y) = \mathrm{KL}(P_{XY}\|P_X P_Y) = \sum_{x,y} p(x,y)\log\frac{p(x,y)}{p(x)p(y)}`.

    Equal to :math:`H(X) + H(Y) - H(X,Y) = H(Y) - H(Y|X)`, but computed as the KL above, term by
    term in log space (no cancellation between large entropies). Symmetric in X and Y, 0 exactly
    when they are independent, at most :math:`\min(H(X), H(Y))`. A floating-point product such as
    ``np.outer(px, py)`` is independent only up to the rounding of its cells,
    :math:`p_{xy} = p_x p_y (1 + \delta_{xy})` with :math:`|\delta_{xy}| \le u`; klkit returns that
    table's own MI (to ~1e-15 relative), which is tiny but not 0: below :math:`u^2/2`, about 6e-33
    in float64 and 2e-15 in float32. Tables whose rows are exactly proportional give 0.
    For a contingency table of counts
    ``C`` it is ``sklearn.metrics.mutual_info_score(None, None, contingency=C)`` applied to
    ``C / C.sum()`` (klkit never renormalises).

    Parameters
    ----------
    pxy : array_like or torch.Tensor
        The joint distribution: X along ``axes[0]``, Y along ``axes[1]``; other axes are a batch.
    axes : (int, int), default (-2, -1)
        The two distinct axes holding X and Y.
    base : float, optional
        None for nats (default), 2 for bits, any ``b > 1``.
    kind : {'probs', 'log_probs', 'logits'}, default 'probs'
        What ``pxy`` holds; logits are normalised over both axes together.
    validate : bool, default True
        Check that ``pxy`` is a joint distribution (entries as in :func:`klkit.entropy`, total 1
        over both axes).

    Returns
    -------
    ndarray or torch.Tensor
        Shape of ``pxy`` without ``axes``, in its dtype (torch: differentiable).

    Raises
    ------
    ValueError
        ``pxy`` not a joint distribution of its kind; ``axes`` not two distinct axes of ``pxy``;
        a bad ``base`` or ``kind``.
    TypeError
        ``pxy`` not an array.

    References
    ----------
    .. [1] T. M. Cover and J. A. Thomas, "Elements of Information Theory", 2nd ed., 2006, §2.3–2.4.

    Examples
    --------
    >>> import klkit
    >>> float(klkit.mutual_information([[0.5, 0.0], [0.0, 0.5]], base=2))  # Y = X: one bit
    1.0
    >>> float(klkit.mutual_information([[0.2, 0.3], [0.2, 0.3]]))  # independent
    0.0
    """
    base = check_base(base)
    t = _table(pxy, axes, None, kind, validate)
    xp = t.xp
    with errstate(xp):
        # Σ [p log(p/q) − p + q] with q = p(x)p(y)/T, T = Σ p (1 within the tolerance): the same sum, since
        # Σ q = T = Σ p exactly, of terms ≥ 0 (0 for every cell of an independent table, a constant X or Y
        # included); marginals, T and q carried to twice the precision, so that near independence
        # (log-ratios of the size of the rounding of a marginal) nothing is lost
        px_hi, px_lo = sum_twice(t.p, -1, xp)
        py_hi, py_lo = sum_twice(t.p, -2, xp)
        t_hi, t_lo = sum_twice(px_hi, -2, xp)
        ax_hi, ax_lo = divide_twice(px_hi, px_lo, t_hi, t_lo + xp.sum(px_lo, axis=-2, keepdims=True), xp)
        q_hi, q_lo = product_twice(ax_hi, ax_lo, py_hi, py_lo, xp)
        logq = safe_log(ax_hi, xp) + safe_log(py_hi, xp)
        terms = kl_terms(t.logp, t.p, q_hi, q_lo, logq, xp)
        value = clamp(xp.sum(xp.sum(terms, axis=-1), axis=-1), 0.0, None, xp)
    return finish_result(value, t.inputs, base)


def conditional_entropy(
    pxy: Any,
    /,
    *,
    given: int = -2,
    axes: tuple[int, int] = (-2, -1),
    base: float | None = None,
    kind: Kind = "probs",
    validate: bool = True,
) -> Any:
    r"""Conditional entropy :math:`H(Y|X) = -\sum_{x,y} p(x,y)\log p(y|x)`, X on axis ``given``.

    Equal to :math:`H(X,Y) - H(X)`, computed from its own terms,
    :math:`\log p(y|x) = \log p(x,y) - \log p(x)`. Between 0 (Y a function of X) and
    :math:`H(Y)` (independence).

    Parameters
    ----------
    pxy : array_like or torch.Tensor
        The joint distribution over ``axes``; other axes are a batch.
    given : int, default -2
        The axis of the conditioning variable X; one of ``axes`` (Y is the other one).
    axes, base, kind, validate
        As in :func:`mutual_information`.

    Returns
    -------
    ndarray or torch.Tensor
        Shape of ``pxy`` without ``axes``, in its dtype (torch: differentiable).

    Raises
    ------
    ValueError
        ``given`` not one of ``axes``; otherwise as :func:`mutual_information`.
    TypeError
        ``pxy`` not an array.

    References
    ----------
    .. [1] T. M. Cover and J. A. Thomas, "Elements of Information Theory", 2nd ed., 2006, §2.2.

    Examples
    --------
    >>> import klkit
    >>> pxy = [[0.25, 0.25], [0.5, 0.0]]  # X on rows, Y on columns
    >>> float(klkit.conditional_entropy(pxy, base=2))  # H(Y|X): a fair coin when X = 0, nothing when X = 1
    0.5
    >>> round(float(klkit.conditional_entropy(pxy, given=-1, base=2)), 6)  # H(X|Y)
    0.688722
    """
    base = check_base(base)
    t = _table(pxy, axes, given, kind, validate)
    xp = t.xp
    with errstate(xp):
        positive = t.p > 0
        logpx = safe_log(xp.sum(t.p, axis=-1, keepdims=True), xp)
        terms = -t.p * xp.where(positive, t.logp - logpx, 0.0)
        value = clamp(xp.sum(xp.sum(terms, axis=-1), axis=-1), 0.0, None, xp)
    return finish_result(value, t.inputs, base)


def joint_entropy(
    pxy: Any,
    /,
    *,
    axes: tuple[int, int] = (-2, -1),
    base: float | None = None,
    kind: Kind = "probs",
    validate: bool = True,
) -> Any:
    r"""Joint entropy :math:`H(X,Y) = -\sum_{x,y} p(x,y)\log p(x,y)` over the two ``axes``.

    The Shannon entropy of the table taken as one distribution (:func:`klkit.entropy` of the
    flattened table); :math:`\max(H(X), H(Y)) \le H(X,Y) \le H(X) + H(Y)`.

    Parameters
    ----------
    pxy : array_like or torch.Tensor
        The joint distribution over ``axes``; other axes are a batch.
    axes, base, kind, validate
        As in :func:`mutual_information`.

    Returns
    -------
    ndarray or torch.Tensor
        Shape of ``pxy`` without ``axes``, in its dtype (torch: differentiable).

    Raises
    ------
    ValueError, TypeError
        As :func:`mutual_information`.

    References
    ----------
    .. [1] T. M. Cover and J. A. Thomas, "Elements of Information Theory", 2nd ed., 2006, §2.2.

    Examples
    --------
    >>> import klkit
    >>> float(klkit.joint_entropy([[0.25, 0.25], [0.5, 0.0]], base=2))
    1.5
    """
    base = check_base(base)
    flat = _table(pxy, axes, None, kind, validate, logs=False).flat
    return entropy(flat, axis=-1, base=base, kind=kind, validate=False)


# ---------------------------------------------------------------------------
# Implementation
# ---------------------------------------------------------------------------


class _Table(NamedTuple):
    xp: Any
    logp: Any  # (..., n_x, n_y) in the compute dtype; None when not asked for
    p: Any
    flat: Any  # (..., n_x · n_y) in the input's dtype
    inputs: Inputs  # for finish_result: invalid slices and the result dtype


def _table(pxy: Any, axes: Any, given: Any, kind: Any, validate: Any, logs: bool = True) -> _Table:
    """Check the options and the table; X (``given`` when set) on axis −2, Y on axis −1."""
    kind = check_kind(kind)
    validate = check_validate(validate)
    xp = namespace(pxy, names=("pxy",))
    table = asarray(pxy, xp, "pxy")
    ax, ay = _check_axes(axes, table.shape)
    if given is not None:
        ax, ay = _check_given(given, axes, (ax, ay), table.ndim)
    if validate:
        check_entries(table, kind, "pxy", xp)  # before moving the axes: indices as in the caller's array
    table = xp.moveaxis(table, (ax, ay), (table.ndim - 2, table.ndim - 1))
    nx, ny = table.shape[-2:]
    if nx * ny == 0:
        raise ShapeError(
            f"`pxy` must have at least one outcome on each of `axes`; found {nx} × {ny} on axes {tuple(axes)!r}. "
            "Check the shape of the table and `axes`."
        )
    flat = xp.reshape(table, (*table.shape[:-2], nx * ny))
    if validate:
        _check_total(flat, kind, xp)
    invalid = None if validate else invalid_slices(((flat, kind),), xp)
    inputs = Inputs(xp, None, None, None, None, invalid, table.dtype)
    if not logs:
        return _Table(xp, None, None, flat, inputs)
    with errstate(xp):
        logp, p = log_and_prob(flat, kind, None, compute_dtype(xp, table.dtype), xp)
    shape = (*table.shape[:-2], nx, ny)
    return _Table(xp, xp.reshape(logp, shape), xp.reshape(p, shape), flat, inputs)


def _check_axes(axes: Any, shape: tuple[int, ...]) -> tuple[int, int]:
    ndim = len(shape)
    if (
        not isinstance(axes, (tuple, list))
        or len(axes) != 2
        or not all(isinstance(a, numbers.Integral) and not isinstance(a, bool) for a in axes)
    ):
        raise InvalidArgumentError(
            f"`axes` must be a pair of integers, the axes of X and Y in `pxy`; found {axes!r}. "
            "Pass e.g. axes=(-2, -1) for a table with X on rows and Y on columns."
        )
    if ndim < 2:
        raise ShapeError(
            f"`pxy` must have at least two dimensions (X and Y); found shape {tuple(shape)}. "
            "Pass the joint table, e.g. counts / counts.sum() of shape (n_x, n_y)."
        )
    if not all(-ndim <= a < ndim for a in axes):
        raise ShapeError(
            f"`axes` must name axes of `pxy`, in [{-ndim}, {ndim - 1}] for shape {tuple(shape)}; found "
            f"axes={tuple(axes)!r}. Use axes=(-2, -1) for the last two."
        )
    ax, ay = int(axes[0]) % ndim, int(axes[1]) % ndim
    if ax == ay:
        raise InvalidArgumentError(
            f"`axes` must name two distinct axes of `pxy`; found axes={tuple(axes)!r}, both axis {ax} of "
            f"{ndim}. Pass the axis of X and the axis of Y, e.g. axes=(-2, -1)."
        )
    return ax, ay


def _check_given(given: Any, axes: Any, resolved: tuple[int, int], ndim: int) -> tuple[int, int]:
    """(axis of X, axis of Y) with X = ``given``."""
    if (
        isinstance(given, bool)
        or not isinstance(given, numbers.Integral)
        or not -ndim <= given < ndim
        or int(given) % ndim not in resolved
    ):
        raise InvalidArgumentError(
            f"`given` must be one of `axes` {tuple(axes)!r}, the axis of the conditioning variable X in H(Y|X); "
            f"found given={given!r}. Pass given=axes[0] for H(Y|X) or given=axes[1] for H(X|Y)."
        )
    g = int(given) % ndim
    return (g, resolved[1]) if g == resolved[0] else (g, resolved[0])


_JOINT = "over both `axes` together, a joint distribution"
_JOINT_FIX = (
    "klkit never renormalises silently: divide a contingency table of counts by its total "
    "(counts / counts.sum()), or pass np.log(counts) with kind='logits'."
)


def _check_total(flat: Any, kind: str, xp: Any) -> None:
    """The whole table (both axes, flattened last) sums to 1, or has logsumexp 0; logits: one finite entry."""
    if kind == "probs":
        check_probs(flat, "pxy", xp, entries=False, over=_JOINT, unit="table", fix=_JOINT_FIX)
    elif kind == "log_probs":
        check_log_probs(flat, "pxy", xp, entries=False, over=_JOINT, unit="table", fix=_JOINT_FIX)
    else:
        check_logits(flat, "pxy", xp, entries=False, unit="table")
