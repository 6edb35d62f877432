"""The front door of the array measures: prepare once, pick one path, finish.

:func:`reduce_measure` checks the options, finds the inputs' own array library
(:func:`klkit._engine.arrays.namespace`: numpy for lists, no global backend), broadcasts and
moves the outcome axis last, then picks one path:

- numpy: the fused numba kernels (:mod:`klkit._engine.numpy_path`);
- torch logits under autograd: torch's own composition, or from 16M elements the fused
  autograd Functions (:mod:`klkit._engine.torch_autograd`);
- small CPU tensors of probabilities outside autograd: the numpy kernels on shared memory;
- other torch tensors without autograd: library kernels on row tiles (:mod:`klkit._engine.torch_tiles`);
- everything else, and whatever a fast path hands back: the generic array-API path
  (:mod:`klkit._engine.generic`);

and finishes (:mod:`klkit._engine.finish`): clamp to the bounds, base, output dtype. Whatever the
path, an unvalidated slice holding an entry outside its kind's domain gives NaN.
"""

from __future__ import annotations

import sys
from typing import Any

import array_api_compat
import numpy as np

from klkit._engine.arrays import NUMPY, asarray, errstate, is_numpy, is_torch, namespace
from klkit._engine.checks import (
    broadcast_shape,
    check_axis,
    check_base,
    check_kind,
    check_not_empty,
    check_validate,
)
from klkit._engine.finish import clamp_to_bounds, in_base, js_bound, to_output_dtype
from klkit._engine.generic import chunk_budget, generic_path
from klkit._engine.numpy_path import SMALL_TORCH, numpy_bridge_applies, numpy_kernels_path, numpy_small_path
from klkit._engine.prepare import FAST_MIN, Measure, check_has_values, check_values, under_autograd
from klkit._engine.torch_autograd import fused_pays, torch_fused_logits_path, torch_plain_logits_path
from klkit._engine.torch_tiles import torch_tiles_path
from klkit.errors import InvalidDistributionError

__all__ = ["reduce_measure"]


def reduce_measure(
    measure: Measure,
    p: Any,
    q: Any,
    axis: int,
    base: float | None,
    kind: Any,
    q_kind: Any,
    validate: Any,
    weights: tuple[float, float] | None = None,
) -> Any:
    """Validate the options and inputs, evaluate the measure, convert the result."""
    fast = _small_cpu_tensors(measure, p, q, axis, base, kind, q_kind, validate)
    if fast is not None:
        return fast
    two = measure != "entropy"
    kind = check_kind(kind)
    q_kind = kind if q_kind is None else check_kind(q_kind, "q_kind")
    base = check_base(base)
    validate = check_validate(validate)
    xp = namespace(p, q) if two else namespace(p, names=("p",))
    P = asarray(p, xp, "p")
    Q = asarray(q, xp, "q") if two else None
    shape = broadcast_shape(P.shape, Q.shape) if two and P.shape != Q.shape else tuple(P.shape)
    ax = check_axis(axis, len(shape))
    check_not_empty(shape[ax], axis)
    out_dtype = P.dtype if not two or P.dtype == Q.dtype else xp.result_type(P, Q)
    if (
        two
        and not is_numpy(xp)
        and (P.device != Q.device if is_torch(xp) else array_api_compat.device(P) != array_api_compat.device(Q))
    ):
        raise InvalidDistributionError(
            f"`p` and `q` must be on the same device; found {array_api_compat.device(P)} and "
            f"{array_api_compat.device(Q)}. Move one with .to(device)."
        )
    if validate and is_torch(xp):
        for x, name in ((P, "p"), (Q, "q"))[: 1 + two]:
            check_has_values(x, name)
    last = ax == len(shape) - 1
    if two and tuple(P.shape) != shape:
        P = xp.broadcast_to(P, shape)
    if two and tuple(Q.shape) != shape:
        Q = xp.broadcast_to(Q, shape)
    P = P if last else xp.moveaxis(P, ax, -1)
    Q = Q if not two or last else xp.moveaxis(Q, ax, -1)

    value = None
    if is_numpy(xp):
        value = (
            numpy_small_path(measure, P, Q, validate)
            if kind == q_kind == "probs" and P.size < FAST_MIN
            else numpy_kernels_path(measure, P, Q, kind, q_kind, validate)
        )
    elif is_torch(xp) and kind == q_kind == "logits" and measure != "js_divergence" and fused_pays(P, Q):
        value = torch_fused_logits_path(measure, P, Q, validate, out_dtype)
    elif is_torch(xp) and kind == q_kind == "logits" and measure != "js_divergence" and under_autograd(P, Q):
        value = torch_plain_logits_path(measure, P, Q, out_dtype)
    elif is_torch(xp) and kind == q_kind == "probs" and numpy_bridge_applies(P, Q):
        value = numpy_small_path(measure, P.numpy(), None if Q is None else Q.numpy(), validate)
        if value is not None:
            value = clamp_to_bounds(value, None, NUMPY) if measure != "cross_entropy" else value
            return to_output_dtype(xp.from_numpy(np.asarray(in_base(value, base))), out_dtype, xp)
    elif is_torch(xp):
        value, validate = torch_tiles_path(measure, P, Q, kind, q_kind, validate, xp)
    if value is None:
        if validate:
            for x, k, name in ((P, kind, "p"), (Q, q_kind, "q"))[: 1 + two]:
                check_values(x, k, name, xp)
        with errstate(xp):
            value = generic_path(
                measure, P, Q, kind, q_kind, xp, chunk_budget(P, Q, xp), guard=not validate, weights=weights
            )
    if measure != "cross_entropy":  # rounding may not cross the mathematical bounds
        value = clamp_to_bounds(value, js_bound(weights) if measure == "js_divergence" else None, xp)
    return to_output_dtype(in_base(value, base), out_dtype, xp)


def _small_cpu_tensors(
    measure: Measure, p: Any, q: Any, axis: Any, base: Any, kind: Any, q_kind: Any, validate: Any
) -> Any:
    """The common small case decided in one test: plain CPU float32/float64 tensors of probabilities,
    one shape and dtype, the last axis, nats, no autograd. Every option and input rule of the full
    door holds for them by construction (strided, CPU, floating, non-empty last axis, no broadcast),
    so the numpy kernels run on their shared memory at once; anything else returns None (the full door).
    """
    torch = sys.modules.get("torch")
    if (
        torch is None
        or type(p) is not torch.Tensor
        or kind != "probs"
        or base is not None
        or axis != -1
        or (validate is not True and validate is not False)
        or measure == "js_divergence"
    ):
        return None
    if q is not None and (type(q) is not torch.Tensor or q_kind not in (None, "probs")):
        return None
    dtype = p.dtype
    if (  # layout first: nested and sparse tensors have no plain sizes
        p.layout is not torch.strided
        or p.is_nested
        or not p.is_cpu
        or (dtype is not torch.float64 and dtype is not torch.float32)
        or (q is not None and (q.layout is not torch.strided or q.is_nested or not q.is_cpu or q.dtype is not dtype))
        or p.ndim == 0
        or p.shape[-1] == 0
        or p.numel() > SMALL_TORCH
        or (q is not None and q.shape != p.shape)
        or under_autograd(p, q)
        or torch.compiler.is_compiling()
    ):
        return None
    value = numpy_small_path(measure, p.numpy(), None if q is None else q.numpy(), validate)
    if measure != "cross_entropy":  # rounding may not cross the mathematical bounds
        value = clamp_to_bounds(value, None, NUMPY)
    out = torch.from_numpy(np.asarray(value))
    return out if dtype is torch.float64 else out.to(dtype)
