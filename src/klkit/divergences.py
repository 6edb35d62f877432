"""KL's relatives on arrays: total variation, Hellinger distance, Jensen–Shannon distance, f-divergences.

The bounds that tie them to KL (natural logarithms, :math:`H^2 = 1 - \\sum_i\\sqrt{p_i q_i}`):

* Pinsker: :math:`TV \\le \\sqrt{KL/2}`; Bretagnolle–Huber: :math:`TV \\le \\sqrt{1 - e^{-KL}}`;
* :math:`H^2 \\le TV \\le H\\sqrt{2 - H^2}`;
* :math:`2H^2 \\le D_{1/2} = -2\\log(1 - H^2) \\le KL` (Rényi divergence of order ½, :mod:`klkit.renyi`).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from klkit._engine import (
    FName,
    Inputs,
    Kind,
    check_f,
    check_f_at_one,
    errstate,
    f_values,
    finish_result,
    is_measure_object,
    measure_objects,
    namespace,
    prepare_pair,
    to_numpy,
    unknown_slope,
)
from klkit.measures import js_divergence, kl_divergence
from klkit.renyi import _divergence as _renyi

__all__ = ["f_divergence", "hellinger_distance", "js_distance", "total_variation"]


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
    if distribution_options or is_measure_object(p) or is_measure_object(q):
        return measure_objects(
            "total_variation",
            (p, q),
            None,
            distribution_options,
            array_options={"axis": axis, "kind": kind, "q_kind": q_kind, "validate": validate},
        )
    x = prepare_pair(p, q, axis, kind, q_kind, validate, logs=False)
    return finish_result(_total_variation(x), x)


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
    :math:`H^2` is computed as :math:`\tfrac12\sum_i(\sqrt{p_i} - \sqrt{q_i})^2`, never as
    :math:`1 - BC` (which cancels when P ≈ Q). Relations, KL in nats:
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
    if distribution_options or is_measure_object(p) or is_measure_object(q):
        return measure_objects(
            "hellinger_distance",
            (p, q),
            None,
            distribution_options,
            array_options={"axis": axis, "kind": kind, "q_kind": q_kind, "validate": validate},
        )
    x = prepare_pair(p, q, axis, kind, q_kind, validate)
    return finish_result(_sqrt(_hellinger_squared(x), x.xp), x)


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
    **distribution_options: Any,
) -> Any:
    r"""Jensen–Shannon distance :math:`\sqrt{JS(P, Q)}`, a metric (Endres and Schindelin, 2003).

    The square root of :func:`klkit.js_divergence` in the same ``base``: at most 1 with
    ``base=2``, :math:`\sqrt{\log 2}` in nats. Equals ``scipy.spatial.distance.jensenshannon(p, q,
    base=base, axis=axis)`` on normalised inputs (scipy renormalises its inputs; klkit
    validates them instead).

    Parameters
    ----------
    p, q : array_like or torch.Tensor
        Distributions with outcomes along ``axis``; their shapes broadcast.
    axis, base, kind, q_kind, validate
        As in :func:`klkit.js_divergence`.

    Returns
    -------
    ndarray or torch.Tensor
        The broadcast shape without ``axis``, in the inputs' dtype (torch: differentiable;
        the gradient at P = Q is 0).

    Raises
    ------
    ValueError, TypeError
        As :func:`klkit.js_divergence`.

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
    """
    if distribution_options or is_measure_object(p) or is_measure_object(q):
        return measure_objects(
            "js_distance",
            (p, q),
            base,
            distribution_options,
            array_options={"axis": axis, "kind": kind, "q_kind": q_kind, "validate": validate},
        )
    value = js_divergence(p, q, axis=axis, base=base, kind=kind, q_kind=q_kind, validate=validate)
    if isinstance(value, (np.ndarray, np.generic)):
        return np.sqrt(value)  # JS is clamped to [0, log 2]: no NaN; numpy has no gradient to guard
    return _sqrt(value, namespace(value))


def f_divergence(
    p: Any,
    q: Any,
    /,
    f: FName | Callable[[Any], Any],
    *,
    axis: int = -1,
    kind: Kind = "probs",
    q_kind: Kind | None = None,
    validate: bool = True,
    **distribution_options: Any,
) -> Any:
    r"""f-divergence :math:`D_f(P\|Q) = \sum_i q_i\, f(p_i / q_i)`, f convex with :math:`f(1) = 0`.

    Terms with :math:`q_i = 0 < p_i` are :math:`p_i f'(\infty)`, :math:`f'(\infty) = \lim_{t\to\infty}
    f(t)/t`. In nats. Named generators run the dedicated log-space code:

    ============  ===========================================================  ====================================
    ``f``         :math:`f(t)`                                                 equals
    ============  ===========================================================  ====================================
    "kl"          :math:`t \log t`                                             ``kl_divergence(p, q)``
    "reverse_kl"  :math:`-\log t`                                              ``kl_divergence(q, p)``
    "tv"          :math:`\tfrac12 |t - 1|`                                     ``total_variation(p, q)``
    "hellinger"   :math:`\tfrac12 (\sqrt t - 1)^2`                             ``hellinger_distance(p, q) ** 2``
    "chi2"        :math:`(t - 1)^2`                                            Pearson :math:`\chi^2 = e^{D_2} - 1`
    "js"          :math:`\tfrac12[t\log\tfrac{2t}{1+t} + \log\tfrac{2}{1+t}]`  ``js_divergence(p, q)``
    ============  ===========================================================  ====================================

    A callable ``f`` is applied elementwise to the ratios :math:`t = p_i/q_i` on
    :math:`q_i > 0` (an array of the inputs' library, so torch keeps autograd); it must define
    ``f(0)`` as its limit (e.g. ``scipy.special.xlogy(t, t)``, not ``t * log(t)``). Its
    :math:`f'(\infty)` is unknown to klkit, so a slice with :math:`q_i = 0 < p_i` raises.

    Parameters
    ----------
    p, q : array_like or torch.Tensor
        Distributions with outcomes along ``axis``; their shapes broadcast.
    f : str or callable
        One of "kl", "reverse_kl", "tv", "hellinger", "chi2", "js", or a function of an array.
    axis, kind, q_kind, validate
        As in :func:`total_variation`.

    Returns
    -------
    ndarray or torch.Tensor
        The broadcast shape without ``axis``, in the inputs' dtype.

    Raises
    ------
    ValueError
        An unknown name; a callable with :math:`f(1) \ne 0`, one that returns NaN or an array
        of another shape, or one met with :math:`q_i = 0 < p_i`; invalid distributions and
        options (as :func:`klkit.kl_divergence`).
    TypeError
        ``f`` neither a name nor callable; numpy and torch inputs mixed.

    References
    ----------
    .. [1] I. Csiszár, "Information-type measures of difference of probability distributions and
       indirect observations", Studia Sci. Math. Hungarica 2, 1967.
    .. [2] S. M. Ali and S. D. Silvey, "A general class of coefficients of divergence of one
       distribution from another", J. R. Stat. Soc. B 28(1), 1966.

    Examples
    --------
    >>> import klkit
    >>> round(float(klkit.f_divergence([0.5, 0.5], [0.9, 0.1], "chi2")), 6)  # 0.4²/0.9 + 0.4²/0.1
    1.777778
    >>> round(float(klkit.f_divergence([0.5, 0.5], [0.9, 0.1], lambda t: (t - 1) ** 2)), 6)
    1.777778
    """
    if distribution_options or is_measure_object(p) or is_measure_object(q):
        return measure_objects(
            "f_divergence",
            (p, q),
            None,
            distribution_options,
            args=(f,),
            array_options={"axis": axis, "kind": kind, "q_kind": q_kind, "validate": validate},
        )
    opts = {"axis": axis, "kind": kind, "q_kind": q_kind, "validate": validate}
    check_f(f)
    if isinstance(f, str):
        if f == "kl":
            return kl_divergence(p, q, **opts)
        if f == "reverse_kl":
            return kl_divergence(
                q, p, axis=axis, kind=kind if q_kind is None else q_kind, q_kind=kind, validate=validate
            )
        if f == "js":
            return js_divergence(p, q, **opts)
        x = prepare_pair(p, q, axis, kind, q_kind, validate, logs=f != "tv", sums=f == "chi2")
        if f == "tv":
            return finish_result(_total_variation(x), x)
        if f == "hellinger":
            return finish_result(_hellinger_squared(x), x)
        with errstate(x.xp):  # χ² = e^{D_2} − 1, from the Rényi divergence of order 2 (no cancellation)
            return finish_result(x.xp.expm1(x.xp.clip(_renyi(x, 2.0, x.xp), 0.0, None)), x)
    x = prepare_pair(p, q, axis, kind, q_kind, validate)
    return finish_result(_callable_f(x, f), x)


# ---------------------------------------------------------------------------
# Implementation
# ---------------------------------------------------------------------------


def _total_variation(x: Inputs) -> Any:
    xp = x.xp
    return xp.clip(0.5 * xp.sum(xp.abs(x.p - x.q), axis=-1), 0.0, 1.0)


def _hellinger_squared(x: Inputs) -> Any:
    """½ Σ (√p − √q)², with √p = exp(½ log p): a zero (not infinite) gradient at p = 0."""
    xp = x.xp
    with errstate(xp):
        root_p, root_q = xp.exp(0.5 * x.logp), xp.exp(0.5 * x.logq)
    return xp.clip(0.5 * xp.sum((root_p - root_q) ** 2, axis=-1), 0.0, 1.0)


def _sqrt(value: Any, xp: Any) -> Any:
    """√value with a zero gradient (not NaN) at 0."""
    positive = value > 0
    return xp.where(positive, xp.sqrt(xp.where(positive, value, 1.0)), 0.0 * value)


def _callable_f(x: Inputs, f: Callable[[Any], Any]) -> Any:
    """Σ_{q > 0} q f(p/q) for a user's generator f (checked: f(1) = 0, no NaN, elementwise)."""
    xp = x.xp
    check_f_at_one(f, xp, x.p)
    qpos = x.logq > -math.inf
    escape = (x.logp > -math.inf) & ~qpos
    if bool(xp.any(escape)):
        raise unknown_slope(f"{int(to_numpy(xp.sum(xp.astype(escape, xp.int64))))} outcome(s) with q_i = 0 < p_i")
    with errstate(xp):
        ratio = xp.where(qpos, xp.exp(xp.where(qpos, x.logp - x.logq, 0.0)), 1.0)
        values = f_values(f, ratio, xp)
    return xp.sum(xp.where(qpos, x.q * values, 0.0), axis=-1)
