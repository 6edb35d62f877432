"""Rényi divergence and Rényi entropy of order α on arrays, with the limits α = 0, 1, ∞ in closed form.

Both rest on :math:`L = \\log \\sum_i w_i e^{s u_i}` with :math:`s = \\alpha - 1`, evaluated two ways:
a log-sum-exp shifted by the largest :math:`u` (no overflow at any α) and, where :math:`|L| < ½`
(α near 1, or P near Q), ``log1p`` of a sum of small terms, so that the value is continuous into
α = 1, which dispatches to :func:`klkit.kl_divergence` / :func:`klkit.entropy` exactly. For the
divergence those terms are :math:`T_i = p_i^\\alpha q_i^{1-\\alpha} - \\alpha p_i - (1-\\alpha) q_i`
(per-outcome terms, ``klkit._relative_terms``), all of the sign of :math:`\\alpha(\\alpha-1)`: near
P = Q nothing cancels, and the result is ≥ 0 by construction.

Inputs are never renormalised. The ``log1p`` form uses :math:`\\sum_i p_i = \\sum_i q_i = 1` as an
identity, so it stays continuous into α = 1 on inputs that sum to 1 within the validation tolerance;
with ``validate=False``, a slice of ``p`` or ``q`` whose total is off 1 by more than that takes the
log-sum-exp form (an unspecified finite value, clamped at 0, as for every measure), and a slice with an
entry outside its kind's domain is NaN. Support rule (as KL's): outcome i is in the support of P where
``p_i > 0`` in the working dtype (a probability that underflowed to 0 is outside it).
"""

from __future__ import annotations

import math
from typing import Any

from klkit._engine import (
    Inputs,
    Kind,
    accepts_measure_objects,
    check_alpha,
    check_base,
    errstate,
    finish_result,
    is_torch,
    logsumexp,
    prepare_one,
    prepare_pair,
    sum_tolerance,
)
from klkit._relative_terms import clamp, known_all, log_ratio, renyi_terms
from klkit.measures import entropy, kl_divergence

__all__ = ["renyi_divergence", "renyi_entropy"]

_SWITCH = 0.5  # |log Σ w e^{s u}| below this takes the log1p/expm1 form (continuity at α = 1)
_SWITCH_TOTAL = math.expm1(-_SWITCH) * -1.0  # |Σ T| below 1 − e^{−½} ≈ 0.39: |log1p(Σ T)| < ½


@accepts_measure_objects("renyi_divergence", args=("alpha",))
def renyi_divergence(
    p: Any,
    q: Any,
    /,
    alpha: float,
    *,
    axis: int = -1,
    base: float | None = None,
    kind: Kind = "probs",
    q_kind: Kind | None = None,
    validate: bool = True,
    **distribution_options: Any,
) -> Any:
    r"""Rényi divergence of order α, :math:`D_\alpha(P\|Q) = \frac{1}{\alpha-1}\log\sum_i p_i^\alpha q_i^{1-\alpha}`.

    Non-decreasing in α, and the limits are exact closed forms:

    * α = 0: :math:`-\log Q(\operatorname{supp} P)`;
    * α = ½: :math:`-2\log BC(P, Q)` with the Bhattacharyya coefficient :math:`BC = \sum_i \sqrt{p_i q_i}`,
      i.e. :math:`-2\log(1 - H^2)` with the Hellinger distance of :func:`klkit.hellinger_distance`;
    * α = 1: :math:`\mathrm{KL}(P\|Q)` (the call is :func:`klkit.kl_divergence`; values of α near 1
      are continuous with it);
    * α = 2: :math:`\log(1 + \chi^2(P\|Q))`;
    * α = ∞ (``math.inf``): :math:`\log \max_i p_i / q_i`.

    Support mismatch follows KL: outcome i is in the support of P where ``p_i > 0`` as computed in
    the working dtype (logits far below the others, whose probability underflows to 0, are outside
    it, as in KL); for α > 1, ``p_i > 0`` where ``q_i = 0`` gives ``+inf``; for α < 1 only disjoint
    supports give ``+inf``. Near P = Q it is a sum of terms of one sign (no cancellation, ≥ 0);
    elsewhere computed in log space, rounding below 0 clamped (torch keeps the unclamped gradient).
    Never renormalises: with ``validate=False`` a slice holding an invalid entry gives NaN, and a slice
    of ``p`` or ``q`` whose sum is off 1 gives an unspecified finite value ≥ 0 (as every measure does).

    Parameters
    ----------
    p, q : array_like or torch.Tensor
        Distributions with outcomes along ``axis``; their shapes broadcast.
    alpha : float
        The order, ``0 <= alpha <= inf``.
    axis : int, default -1
        The outcome axis; one value per slice is returned.
    base : float, optional
        None for nats (default), 2 for bits, any ``b > 1``.
    kind, q_kind : {'probs', 'log_probs', 'logits'}
        What ``p`` and ``q`` hold; ``q_kind`` defaults to ``kind``.
    validate : bool, default True
        Check the inputs (rules of :func:`klkit.entropy`); False skips the checks (NaN on a slice with an
        invalid entry; an unspecified finite value ≥ 0 on a slice off the simplex).

    Returns
    -------
    ndarray or torch.Tensor
        The broadcast shape without ``axis``, in the inputs' dtype (torch: differentiable).

    Raises
    ------
    ValueError
        ``alpha`` negative or NaN; invalid distributions, a bad ``axis``, ``base`` or ``kind``
        (as :func:`klkit.kl_divergence`).
    TypeError
        ``alpha`` not a real number; numpy and torch inputs mixed, or a non-integer ``axis``.

    References
    ----------
    .. [1] A. Rényi, "On measures of entropy and information", 1961.
    .. [2] T. van Erven and P. Harremoës, "Rényi divergence and Kullback–Leibler divergence",
       IEEE Trans. Inf. Theory 60(7), 2014.

    Examples
    --------
    >>> import klkit
    >>> round(float(klkit.renyi_divergence([0.5, 0.5], [0.9, 0.1], 2)), 6)  # log(1 + χ²) = log(25/9)
    1.021651
    >>> round(float(klkit.renyi_divergence([0.5, 0.5], [0.9, 0.1], 1)), 6)  # = KL
    0.510826
    >>> round(float(klkit.renyi_divergence([0.5, 0.5], [1.0, 0.0], 0.5)), 6)  # finite below α = 1: log 2 ...
    0.693147
    >>> float(klkit.renyi_divergence([0.5, 0.5], [1.0, 0.0], 2))  # ... infinite from α = 1 on
    inf
    """
    alpha = check_alpha(alpha)
    base = check_base(base)
    if alpha == 1.0:
        kl = kl_divergence(p, q, axis=axis, base=base, kind=kind, q_kind=q_kind, validate=validate)
        if validate:
            return kl
        x = prepare_pair(p, q, axis, kind, q_kind, validate, logs=False)
        return finish_result(kl, x)
    x = prepare_pair(p, q, axis, kind, q_kind, validate)
    xp = x.xp
    with errstate(xp):
        value = clamp(_divergence(x, alpha, xp), 0.0, None, xp)
    return finish_result(value, x, base)


def renyi_entropy(
    p: Any, /, alpha: float, *, axis: int = -1, base: float | None = None, kind: Kind = "probs", validate: bool = True
) -> Any:
    r"""Rényi entropy of order α, :math:`H_\alpha(P) = \frac{1}{1-\alpha}\log\sum_i p_i^\alpha`.

    Non-increasing in α, between 0 and :math:`\log K`; :math:`H_\alpha(P) = \log K - D_\alpha(P\|U)`
    with U uniform on the K outcomes. Exact limits: α = 0 is the Hartley entropy
    :math:`\log|\operatorname{supp} P|`, α = 1 the Shannon entropy (the call is :func:`klkit.entropy`;
    nearby α are continuous with it), α = 2 the collision entropy :math:`-\log\sum_i p_i^2`, α = ∞
    the min-entropy :math:`-\log\max_i p_i`.

    Parameters
    ----------
    p : array_like or torch.Tensor
        The distribution, outcomes along ``axis``.
    alpha : float
        The order, ``0 <= alpha <= inf``.
    axis, base, kind, validate
        As in :func:`klkit.entropy`.

    Returns
    -------
    ndarray or torch.Tensor
        Shape of ``p`` without ``axis``, in its dtype (torch: differentiable).

    Raises
    ------
    ValueError
        ``alpha`` negative or NaN; the errors of :func:`klkit.entropy`.
    TypeError
        ``alpha`` not a real number, a non-integer ``axis``, or an input that is not an array.

    References
    ----------
    .. [1] A. Rényi, "On measures of entropy and information", 1961.

    Examples
    --------
    >>> import klkit
    >>> round(float(klkit.renyi_entropy([0.5, 0.25, 0.25], 2, base=2)), 6)  # -log2(3/8)
    1.415037
    >>> round(float(klkit.renyi_entropy([0.5, 0.25, 0.25], 0, base=2)), 6)  # log2 |supp P|
    1.584963
    >>> round(float(klkit.renyi_entropy([0.5, 0.25, 0.25], float("inf"), base=2)), 6)  # -log2 max p
    1.0
    """
    alpha = check_alpha(alpha)
    base = check_base(base)
    if alpha == 1.0:
        h = entropy(p, axis=axis, base=base, kind=kind, validate=validate)
        return h if validate else finish_result(h, prepare_one(p, axis, kind, validate))
    x = prepare_one(p, axis, kind, validate)
    xp = x.xp
    with errstate(xp):
        value = clamp(_entropy(x, alpha, xp), 0.0, None, xp)
    return finish_result(value, x, base)


# ---------------------------------------------------------------------------
# Implementation
# ---------------------------------------------------------------------------


def _divergence(x: Inputs, alpha: float, xp: Any) -> Any:
    """D_α in nats along the last axis, α ≠ 1 (the support rule of ``klkit._relative_terms``)."""
    logp, logq = x.logp, x.logq
    pos = x.p > 0  # the support of P: p > 0 in the working dtype (an underflowed p is outside it, as in KL)
    both = pos & (logq > -math.inf)
    # α > 1: p > 0 where q = 0 makes Σ p^α q^(1−α) infinite; α < 1: those terms vanish, and only
    # disjoint supports leave nothing
    infinite = xp.any(pos & ~both, axis=-1) if alpha > 1.0 else ~xp.any(both, axis=-1)
    dead = infinite[..., None]
    keep = (both & ~dead) | (dead & pos)  # infinite slices: harmless finite stand-ins, replaced below
    ratio = log_ratio(xp.where(both, logp, 0.0), x.p, xp.where(both, logq, 0.0), x.q, xp)
    u = xp.where(both & ~dead, ratio, 0.0)  # log p/q on the common support
    if alpha == 0.0:  # −log Q(supp P) = −log1p(−Q(outside supp P)): exactly 0 where the supports agree
        inside = -logsumexp(xp.where(keep, xp.where(both & ~dead, logq, 0.0), -math.inf), xp)
        outside = xp.sum(xp.where(~pos, x.q, 0.0), axis=-1)
        few = outside < 0.5
        value = _keep_graph(xp.where(few, -xp.log1p(-xp.where(few, outside, 0.0)), inside), x.p, xp)
    elif alpha == math.inf:  # log max p/q
        value = xp.max(xp.where(keep, u, -math.inf), axis=-1)
    else:
        s = alpha - 1.0
        total = xp.sum(renyi_terms(logp, x.p, xp.where(both, logq, 0.0), x.q, u, both & ~dead, pos, alpha, xp), axis=-1)
        # Σ T = e^{sD} − 1 on the simplex: the log1p form where |sD| < ~½ (|Σ T| < _SWITCH_TOTAL), decided per
        # slice from Σ T alone; the log-sum-exp form only where some slice needs it
        small = (xp.abs(total) < _SWITCH_TOTAL) & ~infinite & _on_simplex(x, xp)  # infinite: Σ T = −1
        value = xp.log1p(xp.where(small, total, 0.0)) / s + 0.0  # + 0.0: no −0
        if not known_all(small, xp):
            big = _scaled_log_moment(xp.where(pos, logp, -math.inf), u, keep, s, xp, small_form=False)
            value = xp.where(small, value, big)
    return xp.where(infinite, math.inf, value)


def _entropy(x: Inputs, alpha: float, xp: Any) -> Any:
    """H_α in nats along the last axis, α ≠ 1."""
    pos = x.p > 0  # the support rule of the divergence: an underflowed p is outside it
    if alpha == 0.0:  # log |supp P|
        count = xp.sum(xp.astype(pos, x.p.dtype), axis=-1)
        return _keep_graph(xp.log(count), x.p, xp)
    if alpha == math.inf:  # −log max p
        return -xp.max(x.logp, axis=-1)
    logp = xp.where(pos, x.logp, -math.inf)
    return -_scaled_log_moment(logp, xp.where(pos, x.logp, 0.0), pos, alpha - 1.0, xp, on_simplex=_on_simplex(x, xp))


def _on_simplex(x: Inputs, xp: Any) -> Any:
    """Per slice: the inputs sum to 1 within the validation tolerance, so that the ``log1p`` forms, which take
    Σ p = Σ q = 1 as an identity, apply. Always true for validated inputs; with ``validate=False`` a slice off the
    simplex takes the log-sum-exp form instead (a finite value of no meaning, clamped into the range: the
    documented semantics of ``validate=False``)."""
    if x.invalid is None:
        return True
    tol = sum_tolerance(x.dtype)
    ok = xp.abs(xp.sum(x.p, axis=-1) - 1.0) <= tol
    return ok if x.q is None else ok & (xp.abs(xp.sum(x.q, axis=-1) - 1.0) <= tol)


def _scaled_log_moment(
    logw: Any, u: Any, keep: Any, s: float, xp: Any, small_form: bool = True, on_simplex: Any = True
) -> Any:
    r"""(1/s) log Σ_{i ∈ keep} w_i e^{s u_i} for weights w = e^{log w} of a distribution (Σ_i w_i = 1
    within the validation tolerance; never renormalised); entries with w_i > 0 outside ``keep`` count
    as e^{s u_i} = 0. ``u`` must be finite on ``keep``; ``keep`` non-empty.

    Two evaluations, chosen per slice by the size of L = log Σ w e^{s u}:

    * |L| ≥ ½: c + lse(log w + s (u − c)) / s with c = max u, which cannot overflow at any s;
    * |L| < ½ (s near 0, or P near Q): log1p(Σ w (e^{s u} − 1)) / s, Σ w = 1 taken as an identity
      (a total of 1 + δ would otherwise add δ/s, unbounded as s → 0), each w (e^{s u} − 1) from
      ``expm1`` (or e^{log w + s u} − w where s u > 1, which has no cancellation), so the ratio
      tends to Σ w u, the KL or entropy term of the same w, without cancellation as s → 0. The
      two differ by O(δ) in L, a relative O(δ) in the result where |L| ≥ ½. Every branch a
      ``where`` leaves out is fed finite stand-ins, so the gradients stay finite.
    """
    cap = math.log(float(xp.finfo(logw.dtype).max)) - 2.0
    u = xp.where(keep, u, 0.0)
    c = xp.max(xp.where(keep, u, -math.inf), axis=-1, keepdims=True)
    c = xp.where(c > -math.inf, c, 0.0)
    lse = logsumexp(xp.where(keep, logw + s * (u - c), -math.inf), xp)
    c = c[..., 0]
    big = c + lse / s
    if not small_form:
        return big
    a = s * u
    low = a <= 1.0
    w = xp.exp(logw)
    grow = xp.exp(xp.clip(logw + xp.where(low, 1.0, a), None, cap)) - w
    term = xp.where(low, w * xp.expm1(xp.where(low, a, 0.0)), grow)
    total = xp.sum(xp.where(keep, term, -w), axis=-1)
    small = (xp.abs(s * c + lse) < _SWITCH) & on_simplex
    return xp.where(small, xp.log1p(xp.where(small, total, 0.0)) / s, big)


def _keep_graph(value: Any, p: Any, xp: Any) -> Any:
    """``value`` tied to ``p`` with a zero gradient (torch), so that a constant result still backpropagates."""
    return value + 0.0 * xp.sum(p, axis=-1) if is_torch(xp) else value
