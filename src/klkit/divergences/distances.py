"""Distances between distributions on arrays: total variation, Hellinger, Jensen–Shannon."""

from __future__ import annotations

from typing import Any

from klkit._engine import (
    Kind,
    accepts_measure_objects,
    check_base,
    finish_result,
    log_of_base,
    prepare_pair,
)
from klkit.divergences._terms import (
    hellinger_squared_sum,
    js_sum,
    out_axis,
    sqrt_zero_gradient,
    total_variation_sum,
)

__all__ = ["hellinger_distance", "js_distance", "total_variation"]


@accepts_measure_objects("total_variation")
def total_variation(
    p: Any,
    q: Any,
    /,
    *,
    axis: int = -1,
    kind: Kind = "probs",
    q_kind: Kind | None = None,
    validate: bool = True,
    **distribution_options: Any,
) -> Any:
    r"""Total variation distance :math:`TV(P, Q) = \tfrac12 \sum_i |p_i - q_i| = \max_A |P(A) - Q(A)|`.

    A metric with values in [0, 1] (1 for disjoint supports), without a unit (no ``base``).
    Bounded by KL: :math:`TV \le \sqrt{KL/2}` (Pinsker) and :math:`TV \le \sqrt{1 - e^{-KL}}`
    (Bretagnolle–Huber), KL in nats.

    Parameters
    ----------
    p, q : array_like or torch.Tensor
        Distributions with outcomes along ``axis``; their shapes broadcast.
    axis : int, default -1
        The outcome axis; one value per slice is returned.
    kind, q_kind : {'probs', 'log_probs', 'logits'}
        What ``p`` and ``q`` hold; ``q_kind`` defaults to ``kind``.
    validate : bool, default True
        Check the inputs (rules of :func:`klkit.entropy`).

    Returns
    -------
    ndarray or torch.Tensor
        The broadcast shape without ``axis``, in the inputs' dtype (torch: differentiable).

    Raises
    ------
    ValueError
        Invalid distributions, a bad ``axis`` or ``kind`` (as :func:`klkit.kl_divergence`).
    TypeError
        numpy and torch inputs mixed, or a non-integer ``axis``.

    References
    ----------
    .. [1] A. B. Tsybakov, "Introduction to Nonparametric Estimation", Springer, 2009, §2.4.

    Examples
    --------
    >>> import klkit
    >>> round(float(klkit.total_variation([0.5, 0.5], [0.9, 0.1])), 6)
    0.4
    >>> float(klkit.total_variation([1.0, 0.0], [0.0, 1.0]))  # disjoint supports
    1.0
    """
    x = prepare_pair(p, q, axis, kind, q_kind, validate, logs=False)
    return finish_result(total_variation_sum(x), x)


@accepts_measure_objects("hellinger_distance")
def hellinger_distance(
    p: Any,
    q: Any,
    /,
    *,
    axis: int = -1,
    kind: Kind = "probs",
    q_kind: Kind | None = None,
    validate: bool = True,
    **distribution_options: Any,
) -> Any:
    r"""Hellinger distance :math:`H(P, Q) = \sqrt{1 - \sum_i \sqrt{p_i q_i}} = \|\sqrt p - \sqrt q\|_2 / \sqrt2`.

    Convention: normalised so that :math:`H \in [0, 1]` (1 for disjoint supports);
    :math:`\sum_i\sqrt{p_i q_i}` is the Bhattacharyya coefficient BC. Some texts drop the
    :math:`1/\sqrt2` (then :math:`H \in [0, \sqrt2]`): multiply by :math:`\sqrt2` to convert.
    :math:`H^2` is computed as :math:`\tfrac12\sum_i(\sqrt{p_i} - \sqrt{q_i})^2`, each difference as
    :math:`(p_i - q_i)/(\sqrt{p_i} + \sqrt{q_i})`, never as :math:`1 - BC` (both cancel when P ≈ Q);
    exactly 0 where P = Q. Relations, KL in nats:
    :math:`H^2 \le TV \le H\sqrt{2 - H^2}` and :math:`2H^2 \le -2\log(1 - H^2) = D_{1/2} \le KL`.
    ``f_divergence(p, q, "hellinger")`` is :math:`H^2`.

    Parameters
    ----------
    p, q : array_like or torch.Tensor
        Distributions with outcomes along ``axis``; their shapes broadcast.
    axis, kind, q_kind, validate
        As in :func:`total_variation`.

    Returns
    -------
    ndarray or torch.Tensor
        The broadcast shape without ``axis``, in the inputs' dtype (torch: differentiable;
        the gradient at P = Q is 0).

    Raises
    ------
    ValueError
        Invalid distributions, a bad ``axis`` or ``kind`` (as :func:`klkit.kl_divergence`).
    TypeError
        numpy and torch inputs mixed, or a non-integer ``axis``.

    References
    ----------
    .. [1] E. Hellinger, "Neue Begründung der Theorie quadratischer Formen von unendlichvielen
       Veränderlichen", 1909.
    .. [2] A. B. Tsybakov, "Introduction to Nonparametric Estimation", Springer, 2009, §2.4.

    Examples
    --------
    >>> import klkit
    >>> round(float(klkit.hellinger_distance([0.5, 0.5], [0.9, 0.1])), 6)  # sqrt(1 - BC), BC = 0.894427
    0.32492
    >>> float(klkit.hellinger_distance([1.0, 0.0], [0.0, 1.0]))
    1.0
    """
    x = prepare_pair(p, q, axis, kind, q_kind, validate, logs=False)  # the terms need only p and q
    return finish_result(sqrt_zero_gradient(hellinger_squared_sum(x), x.xp), x)


@accepts_measure_objects("js_distance")
def js_distance(
    p: Any,
    q: Any,
    /,
    *,
    axis: int = -1,
    base: float | None = None,
    kind: Kind = "probs",
    q_kind: Kind | None = None,
    validate: bool = True,
    keepdims: bool = False,
    **distribution_options: Any,
) -> Any:
    r"""Jensen–Shannon distance :math:`\sqrt{JS(P, Q)}`, a metric (Endres and Schindelin, 2003).

    The square root of :func:`klkit.js_divergence` in the same ``base``: at most 1 with
    ``base=2``, :math:`\sqrt{\log 2}` in nats; exactly 0 where P = Q. Equals
    ``scipy.spatial.distance.jensenshannon(p, q, base=base, axis=axis, keepdims=keepdims)`` on
    normalised inputs (scipy renormalises its inputs, klkit validates them instead; scipy's default
    axis is 0, klkit's −1). Each term is :math:`\tfrac14(p_i+q_i)\,g(x_i)` with
    :math:`x_i = (p_i-q_i)/(p_i+q_i)` and :math:`g(x) = 2x\,\mathrm{artanh}\,x + \log(1-x^2) \ge 0`
    where :math:`|x_i| \le \tfrac12`, the log form elsewhere: no cancellation near P = Q.

    Parameters
    ----------
    p, q : array_like or torch.Tensor
        Distributions with outcomes along ``axis``; their shapes broadcast.
    axis, base, kind, q_kind, validate
        As in :func:`klkit.js_divergence`.
    keepdims : bool, default False
        Keep ``axis`` in the result, with length 1 (as scipy's ``keepdims``).

    Returns
    -------
    ndarray or torch.Tensor
        The broadcast shape without ``axis`` (with it, length 1, when ``keepdims``), in the inputs'
        dtype (torch: differentiable; the gradient at P = Q is 0).

    Raises
    ------
    ValueError, TypeError
        As :func:`klkit.js_divergence`; ``keepdims`` with distribution objects is a ``TypeError``.

    References
    ----------
    .. [1] D. M. Endres and J. E. Schindelin, "A new metric for probability distributions",
       IEEE Trans. Inf. Theory 49(7), 2003.

    Examples
    --------
    >>> import klkit
    >>> float(klkit.js_distance([1.0, 0.0], [0.0, 1.0], base=2))
    1.0
    >>> round(float(klkit.js_distance([0.5, 0.5], [0.9, 0.1], base=2)), 6)
    0.383136
    >>> klkit.js_distance([[0.5, 0.5], [0.2, 0.8]], [[0.5, 0.5], [0.2, 0.8]], keepdims=True).tolist()
    [[0.0], [0.0]]
    """
    if not isinstance(keepdims, bool):
        raise TypeError(f"`keepdims` must be True or False; found {keepdims!r}. Pass keepdims=True to keep `axis`.")
    base = check_base(base)
    x = prepare_pair(p, q, axis, kind, q_kind, validate, logs=False)  # the terms need only p and q
    value = finish_result(sqrt_zero_gradient(js_sum(x) / log_of_base(base), x.xp), x)
    if not keepdims:
        return value
    return x.xp.expand_dims(x.xp.asarray(value), axis=out_axis(axis, x.p.ndim))
