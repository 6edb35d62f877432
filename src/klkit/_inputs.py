"""The front door of the array measures beyond :mod:`klkit.measures`: options, inputs, dtype, result.

:func:`one` and :func:`pair` do what :func:`klkit.measures._reduce` does before it evaluates:
check the options, find the inputs' library (:func:`klkit._xp.namespace`), broadcast, move the
outcome axis last, validate, and hand back ``log p`` and ``p`` in the compute dtype (float64 for
numpy, float32 for half precision). :func:`result` applies the base, puts NaN on the slices of an
unvalidated input that lie outside their kind's domain, and converts to the inputs' dtype.
These measures take the generic array-API path only (no fused kernels).
"""

from __future__ import annotations

import math
import numbers
from typing import Any, NamedTuple

import array_api_compat

from klkit._validation import (
    broadcast_shape,
    check_axis,
    check_kind,
    check_not_empty,
    check_validate,
)
from klkit._xp import asarray, compute_dtype, errstate, is_numpy, is_torch, namespace
from klkit.errors import InvalidArgumentError, InvalidDistributionError
from klkit.measures import (
    _finish,
    _in_base,
    _invalid_logits,
    _is_distribution,
    _log_and_prob,
    _out_of_domain,
    _validate,
)

__all__ = ["Inputs", "check_alpha", "is_distribution", "one", "pair", "result"]

is_distribution = _is_distribution


class Inputs(NamedTuple):
    """Log-probabilities and probabilities in the compute dtype, outcomes on the last axis."""

    xp: Any
    logp: Any
    p: Any
    logq: Any  # None for one input
    q: Any
    invalid: Any  # per slice: outside the kind's domain (unvalidated inputs only); None when validated
    dtype: Any  # the result's dtype (the inputs')


def one(p: Any, axis: Any, kind: Any, validate: Any) -> Inputs:
    """One distribution with outcomes along ``axis``."""
    kind = check_kind(kind)
    validate = check_validate(validate)
    xp = namespace(p, names=("p",))
    P = asarray(p, xp, "p")
    ax = check_axis(axis, P.ndim)
    check_not_empty(P.shape[ax], axis)
    P = P if ax == P.ndim - 1 else xp.moveaxis(P, ax, -1)
    if validate:
        _validate(P, kind, "p", xp)
    dtype = compute_dtype(xp, P.dtype)
    with errstate(xp):
        logp, prob = _log_and_prob(P, kind, None, dtype, xp)
    invalid = None if validate else _invalid(((P, kind),), xp)
    return Inputs(xp, logp, prob, None, None, invalid, P.dtype)


def pair(p: Any, q: Any, axis: Any, kind: Any, q_kind: Any, validate: Any, logs: bool = True) -> Inputs:
    """Two distributions whose shapes broadcast, outcomes along ``axis``; ``logs=False``: probabilities
    given as such are not logged (``logp``/``logq`` None)."""
    kind = check_kind(kind)
    q_kind = kind if q_kind is None else check_kind(q_kind, "q_kind")
    validate = check_validate(validate)
    xp = namespace(p, q)
    P, Q = asarray(p, xp, "p"), asarray(q, xp, "q")
    shape = broadcast_shape(P.shape, Q.shape) if P.shape != Q.shape else tuple(P.shape)
    ax = check_axis(axis, len(shape))
    check_not_empty(shape[ax], axis)
    if not is_numpy(xp) and (P.device != Q.device if is_torch(xp)
                             else array_api_compat.device(P) != array_api_compat.device(Q)):
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
        _validate(P, kind, "p", xp)
        _validate(Q, q_kind, "q", xp)
    dtype = compute_dtype(xp, out_dtype)
    with errstate(xp):
        logp, prob_p = _log_and_prob(P, kind, None, dtype, xp) if logs or kind != "probs" else (None, P)
        logq, prob_q = _log_and_prob(Q, q_kind, None, dtype, xp) if logs or q_kind != "probs" else (None, Q)
    if not logs:
        prob_p, prob_q = xp.astype(prob_p, dtype, copy=False), xp.astype(prob_q, dtype, copy=False)
    invalid = None if validate else _invalid(((P, kind), (Q, q_kind)), xp)
    return Inputs(xp, logp, prob_p, logq, prob_q, invalid, out_dtype)


def result(value: Any, inputs: Inputs, base: float | None = None) -> Any:
    """``value`` in ``base``, NaN on invalid slices, in the inputs' dtype (numpy 0-d → scalar)."""
    xp = inputs.xp
    if inputs.invalid is not None:
        value = xp.where(inputs.invalid, math.nan, value)
    return _finish(_in_base(value, base), inputs.dtype, xp)


def check_alpha(alpha: Any) -> float:
    """The order α of a Rényi measure: a real number in [0, ∞] (``math.inf`` allowed)."""
    if isinstance(alpha, bool) or not isinstance(alpha, numbers.Real):
        raise InvalidArgumentError(
            f"`alpha` must be a real number >= 0 (or math.inf); found {alpha!r} of type {type(alpha).__name__}. "
            "Pass e.g. alpha=2 (collision), alpha=0.5 (Bhattacharyya) or alpha=1 (Shannon / KL)."
        )
    a = float(alpha)
    if not a >= 0:  # NaN fails too
        raise InvalidArgumentError(
            f"`alpha` must be >= 0 (or math.inf); found {alpha!r}. Rényi measures are defined for "
            "0 <= alpha <= inf; alpha = 1 is Shannon entropy / KL divergence."
        )
    return a


def _invalid(arrays: tuple[tuple[Any, str], ...], xp: Any) -> Any:
    """Per slice: an entry outside its kind's domain (as the generic path of measures judges it)."""
    out = None
    for x, kind in arrays:
        for bad in (_out_of_domain(x, kind, xp), _invalid_logits(x, kind, xp)):
            if bad is not None:
                out = bad if out is None else out | bad
    return out
