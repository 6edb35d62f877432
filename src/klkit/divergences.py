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

from klkit._engine import (
    FName,
    Inputs,
    Kind,
    check_base,
    check_f,
    check_f_at_one,
    errstate,
    f_values,
    finish_result,
    is_measure_object,
    log_of_base,
    measure_objects,
    prepare_pair,
    to_numpy,
    unknown_slope,
)
from klkit._relative_terms import chi2_terms, clamp, hellinger_differences, js_terms
from klkit.measures import kl_divergence

__all__ = ["f_divergence", "hellinger_distance", "js_distance", "total_variation"]

_LOG2 = math.log(2.0)


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
    if distribution_options or is_measure_object(p) or is_measure_object(q):
        return measure_objects(
            "hellinger_distance",
            (p, q),
            None,
            distribution_options,
            array_options={"axis": axis, "kind": kind, "q_kind": q_kind, "validate": validate},
        )
    x = prepare_pair(p, q, axis, kind, q_kind, validate, logs=False)  # the terms need only p and q
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
    if distribution_options or is_measure_object(p) or is_measure_object(q):
        if keepdims:
            raise TypeError(
                "`keepdims` applies to arrays only; found distribution objects "
                f"({type(p).__name__}, {type(q).__name__}). Drop `keepdims`, or evaluate both on a grid as arrays."
            )
        return measure_objects(
            "js_distance",
            (p, q),
            base,
            distribution_options,
            array_options={"axis": axis, "kind": kind, "q_kind": q_kind, "validate": validate},
        )
    if not isinstance(keepdims, bool):
        raise TypeError(f"`keepdims` must be True or False; found {keepdims!r}. Pass keepdims=True to keep `axis`.")
    base = check_base(base)
    x = prepare_pair(p, q, axis, kind, q_kind, validate, logs=False)  # the terms need only p and q
    value = finish_result(_sqrt(_js(x) / log_of_base(base), x.xp), x)
    if not keepdims:
        return value
    return x.xp.expand_dims(x.xp.asarray(value), axis=_out_axis(axis, x.p.ndim))


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
    f(t)/t`. In nats. Support rule (KL's): :math:`p_i > 0` means positive in the working dtype, so a
    probability that underflowed to 0 (logits far below the others) contributes :math:`q_i f(0)`.
    Named generators run dedicated code: "chi2", "js" and "hellinger" as sums of per-outcome terms of
    one sign that do not cancel near P = Q (exactly 0 where P = Q), "kl" and "reverse_kl" as KL:

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
        x = prepare_pair(p, q, axis, kind, q_kind, validate, logs=f == "chi2")  # only χ² reads the logs
        with errstate(x.xp):
            value = {"tv": _total_variation, "hellinger": _hellinger_squared, "js": _js, "chi2": _chi2}[f](x)
        return finish_result(value, x)
    x = prepare_pair(p, q, axis, kind, q_kind, validate)
    return finish_result(_callable_f(x, f), x)


# ---------------------------------------------------------------------------
# Implementation
# ---------------------------------------------------------------------------


def _total_variation(x: Inputs) -> Any:
    xp = x.xp
    return clamp(0.5 * xp.sum(xp.abs(x.p - x.q), axis=-1), 0.0, 1.0, xp)


def _hellinger_squared(x: Inputs) -> Any:
    """½ Σ (√p − √q)², each difference as (p − q)/(√p + √q): no cancellation near P = Q."""
    xp = x.xp
    with errstate(xp):
        d = hellinger_differences(x.p, x.q, xp)
    return clamp(0.5 * xp.sum(d * d, axis=-1), 0.0, 1.0, xp)


def _js(x: Inputs) -> Any:
    """JS in nats, from terms that are ≥ 0 and exactly 0 where p = q."""
    xp = x.xp
    with errstate(xp):
        value = xp.sum(js_terms(x.logp, x.p, x.logq, x.q, xp), axis=-1)
    return clamp(value, 0.0, _LOG2, xp)


def _chi2(x: Inputs) -> Any:
    """Pearson χ² = Σ (p − q)²/q, a sum of terms ≥ 0 (+inf where p > 0 = q)."""
    xp = x.xp
    with errstate(xp):
        return xp.sum(chi2_terms(x.logp, x.p, x.logq, x.q, xp), axis=-1)


def _sqrt(value: Any, xp: Any) -> Any:
    """√value with a zero gradient (not NaN) at 0."""
    positive = value > 0
    return xp.where(positive, xp.sqrt(xp.where(positive, value, 1.0)), 0.0 * value)


def _out_axis(axis: int, ndim: int) -> int:
    """Where ``keepdims`` puts the outcome axis back (``axis`` was checked against ``ndim``)."""
    return int(axis) % ndim


def _callable_f(x: Inputs, f: Callable[[Any], Any]) -> Any:
    """Σ_{q > 0} q f(p/q) for a user's generator f (checked: f(1) = 0, no NaN, elementwise)."""
    xp = x.xp
    check_f_at_one(f, xp, x.p)
    qpos = x.logq > -math.inf
    ppos = x.p > 0  # the support rule: an underflowed p is outside P's support (ratio 0)
    escape = ppos & ~qpos
    if bool(xp.any(escape)):
        raise unknown_slope(f"{int(to_numpy(xp.sum(xp.astype(escape, xp.int64))))} outcome(s) with q_i = 0 < p_i")
    with errstate(xp):
        ratio = xp.where(
            qpos & ppos,
            xp.exp(xp.where(qpos & ppos, x.logp - x.logq, 0.0)),
            xp.where(qpos, xp.zeros_like(x.p), xp.ones_like(x.p)),
        )
        values = f_values(f, ratio, xp)
    return xp.sum(xp.where(qpos, x.q * values, 0.0), axis=-1)
