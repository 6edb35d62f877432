"""Argument checks. Every message names the argument, the rule, what was found and the fix."""

from __future__ import annotations

import math
import numbers
from typing import Any, Literal

import numpy as np

from klkit.errors import InvalidArgumentError, InvalidDistributionError, ShapeError

Kind = Literal["probs", "log_probs", "logits"]
KINDS: tuple[str, ...] = ("probs", "log_probs", "logits")


def sum_tolerance(dtype: Any) -> float:
    """Tolerance on ``|Σp − 1|`` (and ``|logsumexp − 0|``): √ε of the storage dtype.

    That is 1.5e-8 for float64, 3.5e-4 for float32 and 3.1e-2 for float16.
    """
    name = str(dtype).removeprefix("torch.")
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
            f"`base` must be None (nats) or a real number > 0 and != 1; found {base!r} "
            f"of type {type(base).__name__}. Use base=2 for bits, base=None for nats."
        )
    b = float(base)
    if not (b > 0 and math.isfinite(b)) or b == 1:
        raise InvalidArgumentError(
            f"`base` must be None (nats) or a finite number > 0 and != 1; found {base!r}. "
            "Use base=2 for bits, base=math.e or None for nats, base=10 for hartleys."
        )
    return b


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


def _describe(x: Any, mask: Any) -> str:
    """'3 entries, first -0.1 at index (0, 2)' for a boolean mask over numpy array x."""
    x = np.asarray(x)
    mask = np.asarray(mask)
    idx = tuple(int(i[0]) for i in np.nonzero(mask))
    where = idx[0] if len(idx) == 1 else idx
    return f"{int(mask.sum())} entr{'y' if mask.sum() == 1 else 'ies'}, first {x[idx].item()!r} at index {where}"


def _fail(name: str, rule: str, found: str, fix: str) -> None:
    raise InvalidDistributionError(f"`{name}` {rule}; found {found}. {fix}")


def check_probs(x: Any, name: str, ops: Any) -> None:
    """``x`` (reduction axis last) must be finite, ≥ 0 and sum to 1 within :func:`sum_tolerance`."""
    bad = ~ops.isfinite(x) | (x < 0)
    if ops.any(bad):
        xn, bn = ops.to_numpy(x), ops.to_numpy(bad)
        _fail(name, "must hold probabilities: finite and >= 0", _describe(xn, bn),
              "Pass kind='log_probs' or kind='logits' if these are not probabilities.")
    check_sums(ops.sum(ops.cast(x, ops.compute_dtype(x))), x.dtype, name, ops, "sum to 1")


def check_sums(total: Any, dtype: Any, name: str, ops: Any, rule: str, offset: float = 1.0) -> None:
    tol = sum_tolerance(dtype)
    t = np.atleast_1d(ops.to_numpy(total)).astype(np.float64)
    off = np.abs(t - offset) > tol
    if off.any():
        label = "sums" if offset == 1.0 else "logsumexp"
        _fail(name, f"must {rule} along `axis` (tolerance {tol:.1e} for {dtype})",
              f"{label} from {t[off].min():.10g} to {t[off].max():.10g} in {int(off.sum())} of {t.size} "
              "slice(s)", "klkit never renormalises silently: call klkit.normalize first, "
              "or pass kind='logits' for unnormalised scores.")


def check_log_probs(x: Any, name: str, ops: Any) -> None:
    """``x`` must be ≤ 0 (NaN and +inf rejected) with logsumexp 0 within tolerance."""
    tol = sum_tolerance(x.dtype)
    bad = ops.isnan(x) | (x > tol)
    if ops.any(bad):
        _fail(name, "must hold log-probabilities: <= 0 and not NaN", _describe(ops.to_numpy(x), ops.to_numpy(bad)),
              "Pass kind='logits' for unnormalised scores or kind='probs' for probabilities.")
    check_sums(ops.logsumexp(ops.cast(x, ops.compute_dtype(x))), x.dtype, name, ops,
               "be normalised, logsumexp = 0,", offset=0.0)


def check_logits(x: Any, name: str, ops: Any) -> None:
    """``x`` must have no NaN or +inf, and not be all -inf along the axis."""
    bad = ops.isnan(x) | (x == math.inf)
    if ops.any(bad):
        _fail(name, "must hold logits: real numbers or -inf (masked), never NaN or +inf",
              _describe(ops.to_numpy(x), ops.to_numpy(bad)),
              "Check the model output for overflow; mask with -inf, not +inf.")
    top = ops.amax(x)
    if ops.any(top == -math.inf):
        n = int(np.sum(np.atleast_1d(ops.to_numpy(top)) == -np.inf))
        _fail(name, "must have at least one finite logit per slice", f"{n} slice(s) with every logit -inf",
              "Leave at least one outcome unmasked.")


def check_streaming(x: Any, kind: str, name: str, ops: Any, width: int) -> None:
    """The checks of ``kind`` on a large ``x`` with chunk-sized temporaries only.

    Per-row reductions over column chunks of ``width``: the max (NaN and +inf
    propagate into it), the min and the sum (probs) or the log-sum-exp
    (log_probs). Only a failure runs the full check, which builds the message.
    """
    n = x.shape[-1]
    top = ops.amax(x)  # reductions allocate one value per row, never a full-size temporary
    tol = sum_tolerance(x.dtype)
    if kind == "logits":
        ok = ops.isfinite(top)
    elif kind == "probs":
        total = ops.sum(x, dtype=ops.compute_dtype(x))
        ok = (ops.amin(x) >= 0) & (abs(total - 1) <= tol)  # NaN and inf make the sum fail
    else:
        dtype = ops.compute_dtype(x)
        total = 0.0
        for c in range(0, n, width):
            total = total + ops.sum(ops.exp(ops.cast(x[..., c:c + width], dtype) - ops.cast(top, dtype)[..., None]))
        ok = (top <= tol) & (abs(ops.log(total) + top) <= tol)
    if not ops.any(~ok):
        return
    CHECKS[kind](x, name, ops)  # raises with the details


CHECKS = {"probs": check_probs, "log_probs": check_log_probs, "logits": check_logits}
