"""The front door of the array measures beyond :mod:`klkit.measures`: options, inputs, dtype, result.

:func:`prepare_one` and :func:`prepare_pair` do what :func:`klkit._engine.door.reduce_measure` does before it evaluates:
check the options, find the inputs' library (:func:`klkit._engine.arrays.namespace`), broadcast, move the
outcome axis last, validate, and hand back ``log p`` and ``p`` in the compute dtype (float64 for
numpy, float32 for half precision). :func:`finish_result` applies the base, puts NaN on the slices of an
unvalidated input that lie outside their kind's domain (with ``sums=True`` also those whose total
is off 1, or whose log-sum-exp is off 0, by more than :func:`klkit._engine.checks.sum_tolerance`),
and converts to the inputs' dtype. These measures take the generic array-API path only (no fused
kernels).
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable
from typing import Any, Literal, NamedTuple, get_args

import array_api_compat

from klkit._engine.arrays import asarray, compute_dtype, errstate, is_numpy, is_torch, logsumexp, namespace, to_numpy
from klkit._engine.checks import (
    broadcast_shape,
    check_axis,
    check_kind,
    check_not_empty,
    check_validate,
    sum_tolerance,
)
from klkit._engine.finish import in_base, to_output_dtype
from klkit._engine.prepare import check_values, invalid_logits, log_and_prob, out_of_domain
from klkit.errors import InvalidArgumentError, InvalidDistributionError

__all__ = [
    "F_NAMES",
    "FName",
    "Inputs",
    "check_alpha",
    "check_f",
    "check_f_at_one",
    "f_values",
    "finish_result",
    "invalid_slices",
    "prepare_one",
    "prepare_pair",
    "unknown_slope",
]

FName = Literal["kl", "reverse_kl", "tv", "hellinger", "chi2", "js"]  # the named generators of f_divergence
F_NAMES: tuple[str, ...] = get_args(FName)


class Inputs(NamedTuple):
    """Log-probabilities and probabilities in the compute dtype, outcomes on the last axis."""

    xp: Any
    logp: Any
    p: Any
    logq: Any  # None for one input
    q: Any
    invalid: Any  # per slice: outside the kind's domain (unvalidated inputs only); None when validated
    dtype: Any  # the result's dtype (the inputs')


def prepare_one(p: Any, axis: Any, kind: Any, validate: Any, sums: bool = False) -> Inputs:
    """One distribution with outcomes along ``axis``; ``sums``: an unvalidated slice whose total is
    off 1 (probs) or 0 (log-sum-exp of log_probs) beyond the tolerance is invalid too."""
    kind = check_kind(kind)
    validate = check_validate(validate)
    xp = namespace(p, names=("p",))
    P = asarray(p, xp, "p")
    ax = check_axis(axis, P.ndim)
    check_not_empty(P.shape[ax], axis)
    P = P if ax == P.ndim - 1 else xp.moveaxis(P, ax, -1)
    if validate:
        check_values(P, kind, "p", xp)
    dtype = compute_dtype(xp, P.dtype)
    with errstate(xp):
        logp, prob = log_and_prob(P, kind, None, dtype, xp)
    invalid = None if validate else invalid_slices(((P, kind),), xp, sums)
    return Inputs(xp, logp, prob, None, None, invalid, P.dtype)


def prepare_pair(
    p: Any, q: Any, axis: Any, kind: Any, q_kind: Any, validate: Any, logs: bool = True, sums: bool = False
) -> Inputs:
    """Two distributions whose shapes broadcast, outcomes along ``axis``; ``logs=False``: probabilities
    given as such are not logged (``logp``/``logq`` None); ``sums`` as in :func:`prepare_one`, for both."""
    kind = check_kind(kind)
    q_kind = kind if q_kind is None else check_kind(q_kind, "q_kind")
    validate = check_validate(validate)
    xp = namespace(p, q)
    P, Q = asarray(p, xp, "p"), asarray(q, xp, "q")
    shape = broadcast_shape(P.shape, Q.shape) if P.shape != Q.shape else tuple(P.shape)
    ax = check_axis(axis, len(shape))
    check_not_empty(shape[ax], axis)
    if not is_numpy(xp) and (
        P.device != Q.device if is_torch(xp) else array_api_compat.device(P) != array_api_compat.device(Q)
    ):
        raise InvalidDistributionError(
            f"`p` and `q` must be on the same device; found {array_api_compat.device(P)} and "
            f"{array_api_compat.device(Q)}. Move one with .to(device)."
        )
    out_dtype = P.dtype if P.dtype == Q.dtype else xp.result_type(P, Q)
    P = P if tuple(P.shape) == shape else xp.broadcast_to(P, shape)
    Q = Q if tuple(Q.shape) == shape else xp.broadcast_to(Q, shape)
    if ax != len(shape) - 1:
        P, Q = xp.moveaxis(P, ax, -1), xp.moveaxis(Q, ax, -1)
    if validate:
        check_values(P, kind, "p", xp)
        check_values(Q, q_kind, "q", xp)
    dtype = compute_dtype(xp, out_dtype)
    with errstate(xp):
        logp, prob_p = log_and_prob(P, kind, None, dtype, xp) if logs or kind != "probs" else (None, P)
        logq, prob_q = log_and_prob(Q, q_kind, None, dtype, xp) if logs or q_kind != "probs" else (None, Q)
    if not logs:
        prob_p, prob_q = xp.astype(prob_p, dtype, copy=False), xp.astype(prob_q, dtype, copy=False)
    invalid = None if validate else invalid_slices(((P, kind), (Q, q_kind)), xp, sums)
    return Inputs(xp, logp, prob_p, logq, prob_q, invalid, out_dtype)


def finish_result(value: Any, inputs: Inputs, base: float | None = None) -> Any:
    """``value`` in ``base``, NaN on invalid slices, in the inputs' dtype (numpy 0-d → scalar)."""
    xp = inputs.xp
    if inputs.invalid is not None:
        value = xp.where(inputs.invalid, math.nan, value)
    return to_output_dtype(in_base(value, base), inputs.dtype, xp)


def check_alpha(alpha: Any, *, infinite: bool = True) -> float:
    """The order α of a Rényi measure: a real number in [0, ∞], or in [0, ∞) with ``infinite=False``.

    A non-number (or a bool) is a ``TypeError``; a number outside the range an
    :class:`~klkit.errors.InvalidArgumentError`. ``infinite=False`` is for callers that have no
    α = ∞ (distribution objects: neither a closed form nor a Monte Carlo estimate), and says so.
    """
    bound = " (or math.inf)" if infinite else " and finite"
    if isinstance(alpha, bool) or not isinstance(alpha, numbers.Real):
        raise TypeError(
            f"`alpha` must be a real number >= 0{bound}; found {alpha!r} of type {type(alpha).__name__}. "
            "Pass e.g. alpha=2 (collision), alpha=0.5 (Bhattacharyya) or alpha=1 (Shannon / KL)."
        )
    a = float(alpha)
    if not a >= 0:  # NaN fails too
        raise InvalidArgumentError(
            f"`alpha` must be >= 0{bound}; found {alpha!r}. Rényi measures are defined for "
            "0 <= alpha <= inf; alpha = 1 is Shannon entropy / KL divergence. Pass e.g. alpha=0.5 or alpha=2."
        )
    if a == math.inf and not infinite:
        raise InvalidArgumentError(
            f"`alpha` must be >= 0{bound}; found {alpha!r}. α = ∞ (the log of the largest density ratio) has no "
            "closed form or Monte Carlo estimate for distribution objects here: take a large finite alpha "
            "(e.g. alpha=100), or pass arrays of probabilities."
        )
    return a


def check_f(f: Any) -> None:
    """``f`` of an f-divergence: one of :data:`F_NAMES` or a callable (arrays and distribution objects alike)."""
    names = ", ".join(map(repr, F_NAMES))
    if isinstance(f, str):
        if f not in F_NAMES:
            raise InvalidArgumentError(
                f"`f` must be one of {names} or a callable; found {f!r}. "
                "Pass e.g. f='chi2', or f=lambda t: (t - 1) ** 2 for your own generator."
            )
    elif not callable(f):
        raise TypeError(
            f"`f` must be a name ({names}) or a callable; found {type(f).__name__}. Pass e.g. f=lambda t: (t - 1) ** 2."
        )


def check_f_at_one(f: Callable[[Any], Any], xp: Any, like: Any) -> None:
    """A callable generator must give f(1) = 0 (within the sum tolerance of ``like``'s dtype)."""
    one = f(xp.ones((1,), dtype=like.dtype, device=array_api_compat.device(like)))
    one = float(to_numpy(asarray(one, xp, "f")).reshape(-1)[0]) if _shape(one) in ((), (1,)) else math.nan
    if not abs(one) <= sum_tolerance(like.dtype):
        raise InvalidArgumentError(
            f"`f` must satisfy f(1) = 0 (an f-divergence of P from itself is 0); found f(1) = {one!r}. "
            "Subtract the constant: lambda t: g(t) - g(1)."
        )


def f_values(f: Callable[[Any], Any], ratio: Any, xp: Any) -> Any:
    """f(ratio) of a callable generator, checked: an array of ratio's shape, without NaN."""
    values = f(ratio)
    if _shape(values) != tuple(ratio.shape):
        raise InvalidArgumentError(
            f"`f` must act elementwise and return an array of the ratios' shape {tuple(ratio.shape)}; found "
            f"{_shape(values)}. Write f with array operations (e.g. lambda t: (t - 1) ** 2)."
        )
    values = asarray(values, xp, "f")
    nan = xp.isnan(values)
    if bool(xp.any(nan)):
        t = to_numpy(ratio)[to_numpy(nan)]
        raise InvalidArgumentError(
            f"`f` returned NaN at t = {t.reshape(-1)[0].item()!r} ({t.size} ratio(s) in all). Define f at 0 by its "
            "limit (e.g. scipy.special.xlogy(t, t) or torch.xlogy(t, t) for t log t)."
        )
    return values


def unknown_slope(found: str) -> InvalidArgumentError:
    """The error for a callable ``f`` where p has mass outside q's support (its f'(∞) is unknown)."""
    return InvalidArgumentError(
        "`f` is a callable, so the term p_i·lim f(t)/t where q_i = 0 < p_i (the mass of p outside q's support "
        f"times f'(∞)) is unknown to klkit; found {found}. Use a named f ('kl', 'reverse_kl', 'tv', 'hellinger', "
        "'chi2', 'js'; 'kl' and 'chi2' are +inf there), or give q full support on p's."
    )


def _shape(x: Any) -> tuple[int, ...] | None:
    shape = getattr(x, "shape", None)
    return None if shape is None else tuple(shape)


def invalid_slices(arrays: tuple[tuple[Any, str], ...], xp: Any, sums: bool = False) -> Any:
    """Per slice: an entry outside its kind's domain (as the generic path of measures judges it);
    with ``sums``, also a total off 1 (probs) or a log-sum-exp off 0 (log_probs) beyond the tolerance."""
    out = None
    for x, kind in arrays:
        for bad in (out_of_domain(x, kind, xp), invalid_logits(x, kind, xp), _off_sum(x, kind, xp, sums)):
            if bad is not None:
                out = bad if out is None else out | bad
    return out


def _off_sum(x: Any, kind: str, xp: Any, sums: bool) -> Any:
    """Per slice: not normalised within :func:`~klkit._engine.checks.sum_tolerance` (NaN counts as off)."""
    if not sums or kind == "logits":
        return None
    y = xp.astype(x, compute_dtype(xp, x.dtype))
    with errstate(xp):
        total, target = (xp.sum(y, axis=-1), 1.0) if kind == "probs" else (logsumexp(y, xp), 0.0)
        return ~(xp.abs(total - target) <= sum_tolerance(x.dtype))
