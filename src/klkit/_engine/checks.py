"""Argument checks. Every message names the argument, the rule, what was found and the fix."""

from __future__ import annotations

import math
import numbers
from typing import Any, Literal

import numpy as np

from klkit._engine.arrays import compute_dtype, dtype_name, logsumexp, to_numpy
from klkit.errors import InvalidArgumentError, InvalidDistributionError, ShapeError

Kind = Literal["probs", "log_probs", "logits"]
KINDS: tuple[str, ...] = ("probs", "log_probs", "logits")


def sum_tolerance(dtype: Any) -> float:
    """Tolerance on ``|Σp − 1|`` (and ``|logsumexp − 0|``): √ε of the storage dtype.

    That is 1.5e-8 for float64, 3.5e-4 for float32 and 3.1e-2 for float16.
    """
    name = dtype_name(dtype)
    eps = float(np.finfo(np.dtype(name) if name != "bfloat16" else np.float32).eps)
    if name == "bfloat16":
        eps = 2.0**-7
    return math.sqrt(eps)


def check_kind(kind: Any, name: str = "kind") -> Kind:
    if kind not in KINDS:
        raise InvalidArgumentError(
            f"`{name}` must be one of 'probs', 'log_probs' or 'logits'; found {kind!r}. "
            "Use 'probs' for probabilities, 'log_probs' for normalised log-probabilities "
            "and 'logits' for unnormalised scores."
        )
    return kind


def check_base(base: Any) -> float | None:
    if base is None:
        return None
    if isinstance(base, bool) or not isinstance(base, numbers.Real):
        raise InvalidArgumentError(
            f"`base` must be None (nats) or a real number > 1; found {base!r} "
            f"of type {type(base).__name__}. Use base=2 for bits, base=None for nats."
        )
    b = float(base)
    if not (b > 1 and math.isfinite(b)):
        raise InvalidArgumentError(
            f"`base` must be None (nats) or a finite number > 1; found {base!r}"
            + (" (a base below 1 turns every entropy and divergence negative)" if 0 < b < 1 else "")
            + ". Use base=2 for bits, base=math.e or None for nats, base=10 for hartleys."
        )
    return b


def check_validate(validate: Any) -> bool:
    if not isinstance(validate, (bool, np.bool_)):
        raise InvalidArgumentError(
            f"`validate` must be True or False; found {validate!r} of type {type(validate).__name__}. "
            "Use validate=False to skip the input checks."
        )
    return bool(validate)


def check_axis(axis: Any, ndim: int) -> int:
    if isinstance(axis, bool) or not isinstance(axis, numbers.Integral):
        raise InvalidArgumentError(
            f"`axis` must be an integer; found {axis!r} of type {type(axis).__name__}. "
            "klkit reduces over exactly one axis (default -1)."
        )
    if ndim == 0:
        raise ShapeError(
            "`p` must have at least one dimension (the outcomes); found a 0-d scalar. "
            "Pass the whole distribution, e.g. [p, 1 - p] for a coin."
        )
    if not -ndim <= axis < ndim:
        raise ShapeError(
            f"`axis` must be in [{-ndim}, {ndim - 1}] for inputs with {ndim} dimension(s); "
            f"found axis={axis}. Use axis=-1 for the last axis."
        )
    return int(axis) % ndim


def broadcast_shape(p_shape: tuple[int, ...], q_shape: tuple[int, ...]) -> tuple[int, ...]:
    try:
        return tuple(np.broadcast_shapes(tuple(p_shape), tuple(q_shape)))
    except ValueError:
        raise ShapeError(
            f"`p` and `q` must have shapes that broadcast; found {tuple(p_shape)} and "
            f"{tuple(q_shape)}. Add axes of size 1 (e.g. q[None, :]) or transpose one of them."
        ) from None


def check_not_empty(n: int, axis: int) -> None:
    if n == 0:
        raise ShapeError(
            f"the reduction axis ({axis}) is empty: a distribution needs at least one outcome. "
            "Check the shape of the inputs and `axis`."
        )


def describe_entries(x: Any, mask: Any) -> str:
    """'3 entries, first -0.1 at index (0, 2)' for a boolean mask over numpy array x."""
    x = np.asarray(x)
    mask = np.asarray(mask)
    idx = tuple(int(i[0]) for i in np.nonzero(mask))
    where = idx[0] if len(idx) == 1 else idx
    return f"{int(mask.sum())} entr{'y' if mask.sum() == 1 else 'ies'}, first {x[idx].item()!r} at index {where}"


def _fail(name: str, rule: str, found: str, fix: str) -> None:
    raise InvalidDistributionError(f"`{name}` {rule}; found {found}. {fix}")


def _any(x: Any, xp: Any) -> bool:
    return bool(xp.any(x))


_ENTRY_RULES = {
    "probs": (
        "must hold probabilities: finite and >= 0",
        "Pass kind='log_probs' or kind='logits' if these are not probabilities.",
    ),
    "log_probs": (
        "must hold log-probabilities: <= 0 and not NaN",
        "Pass kind='logits' for unnormalised scores or kind='probs' for probabilities.",
    ),
    "logits": (
        "must hold logits: real numbers or -inf (masked), never NaN or +inf",
        "Check the model output for overflow; mask with -inf, not +inf.",
    ),
}


def check_entries(x: Any, kind: str, name: str, xp: Any) -> None:
    """Each entry of ``x`` in the domain of ``kind`` (any shape; indices in the message are ``x``'s own)."""
    if kind == "probs":
        bad = ~xp.isfinite(x) | (x < 0)
    elif kind == "log_probs":
        bad = xp.isnan(x) | (x > sum_tolerance(x.dtype))
    else:
        bad = xp.isnan(x) | (x == math.inf)
    if _any(bad, xp):
        rule, fix = _ENTRY_RULES[kind]
        _fail(name, rule, describe_entries(to_numpy(x), to_numpy(bad)), fix)


def check_probs(
    x: Any,
    name: str,
    xp: Any,
    *,
    entries: bool = True,
    over: str = "along `axis`",
    unit: str = "slice",
    fix: str | None = None,
) -> None:
    """``x`` (reduction axis last) must be finite, ≥ 0 and sum to 1 within :func:`sum_tolerance`.

    ``entries=False`` skips the per-entry check (done by the caller); ``over``, ``unit`` and ``fix``
    word the sum's message as in :func:`check_sums`.
    """
    if entries:
        check_entries(x, "probs", name, xp)
    check_sums(
        xp.sum(xp.astype(x, compute_dtype(xp, x.dtype)), axis=-1),
        x.dtype,
        name,
        "sum to 1",
        over=over,
        unit=unit,
        fix=fix,
    )


def check_sums(
    total: Any,
    dtype: Any,
    name: str,
    rule: str,
    offset: float = 1.0,
    *,
    over: str = "along `axis`",
    unit: str = "slice",
    fix: str | None = None,
) -> None:
    """Every ``total`` within :func:`sum_tolerance` of ``offset`` (1: sums; 0: log-sum-exps).

    The message reads "`name` must <rule> <over> (tolerance …); found … in k of n <unit>(s). <fix>",
    ``fix`` defaulting to the advice for probabilities or log-probabilities.
    """
    tol = sum_tolerance(dtype)
    t = np.atleast_1d(to_numpy(total)).astype(np.float64)
    off = np.abs(t - offset) > tol
    if off.any():
        label = "sums" if offset == 1.0 else "logsumexp"
        if fix is None:
            fix = (
                "klkit never renormalises silently: for counts or weights call klkit.normalize(x) first "
                "(or pass np.log(counts) with kind='logits')."
                if offset == 1.0
                else "klkit never renormalises silently: pass kind='logits' for unnormalised log-scores."
            )
        _fail(
            name,
            f"must {rule} {over} (tolerance {tol:.1e} for {dtype})",
            f"{label} from {t[off].min():.10g} to {t[off].max():.10g} in {int(off.sum())} of {t.size} {unit}(s)",
            fix,
        )


def check_log_probs(
    x: Any,
    name: str,
    xp: Any,
    *,
    entries: bool = True,
    over: str = "along `axis`",
    unit: str = "slice",
    fix: str | None = None,
) -> None:
    """``x`` must be ≤ 0 (NaN and +inf rejected) with logsumexp 0 within tolerance (options as :func:`check_probs`)."""
    if entries:
        check_entries(x, "log_probs", name, xp)
    check_sums(
        logsumexp(xp.astype(x, compute_dtype(xp, x.dtype)), xp),
        x.dtype,
        name,
        "be normalised, logsumexp = 0,",
        offset=0.0,
        over=over,
        unit=unit,
        fix=fix,
    )


def check_logits(x: Any, name: str, xp: Any, *, entries: bool = True, unit: str = "slice") -> None:
    """``x`` must have no NaN or +inf, and not be all -inf along the axis (per ``unit``)."""
    if entries:
        check_entries(x, "logits", name, xp)
    top = xp.max(x, axis=-1)
    if _any(top == -math.inf, xp):
        n = int(np.sum(np.atleast_1d(to_numpy(top)) == -np.inf))
        _fail(
            name,
            f"must have at least one finite logit per {unit}",
            f"{n} {unit}(s) with every logit -inf",
            "Leave at least one outcome unmasked.",
        )


def check_streaming(x: Any, kind: str, name: str, xp: Any, width: int) -> None:
    """The checks of ``kind`` on a large ``x`` with chunk-sized temporaries only.

    Per-row reductions over column chunks of ``width``: the max (NaN and +inf
    propagate into it), the min and the sum (probs) or the log-sum-exp
    (log_probs). Only a failure runs the full check, which builds the message.
    """
    n = x.shape[-1]
    top = xp.max(x, axis=-1)  # reductions allocate one value per row, never a full-size temporary
    tol = sum_tolerance(x.dtype)
    dtype = compute_dtype(xp, x.dtype)
    if kind == "logits":
        ok = xp.isfinite(top)
    elif kind == "probs":
        total = xp.sum(x, axis=-1, dtype=dtype)
        ok = (xp.min(x, axis=-1) >= 0) & (xp.abs(total - 1) <= tol)  # NaN and inf make the sum fail
    else:
        top = xp.astype(top, dtype)
        total = 0.0
        for c in range(0, n, width):
            total = total + xp.sum(xp.exp(xp.astype(x[..., c : c + width], dtype) - top[..., None]), axis=-1)
        ok = (top <= tol) & (xp.abs(xp.log(total) + top) <= tol)
    if _any(~ok, xp):
        CHECKS[kind](x, name, xp)  # raises with the details


CHECKS = {"probs": check_probs, "log_probs": check_log_probs, "logits": check_logits}
