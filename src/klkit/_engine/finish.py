"""Finish: the base of the logarithm, the clamp to the mathematical bounds, the output dtype."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from klkit._engine.arrays import clamp_keep_gradient, is_numpy, is_torch, log_of_base

__all__ = ["LOG2", "clamp_to_bounds", "in_base", "js_bound", "to_output_dtype"]

LOG2 = math.log(2.0)


def in_base(value: Any, base: float | None) -> Any:
    """A value in nats converted to ``base`` (None: nats)."""
    return value if base is None else value / log_of_base(base)


def js_bound(weights: tuple[float, float] | None) -> float:
    """The largest Jensen–Shannon divergence (disjoint supports): the entropy of the weights."""
    if weights is None:
        return LOG2
    return float(sum(-w * math.log(w) for w in weights if w > 0))


def clamp_to_bounds(value: Any, upper: float | None, xp: Any) -> Any:
    """``value`` clamped to [0, upper]; NaN stays NaN."""
    if is_numpy(xp):  # in place: the value array is ours (the kernels' output or a reduction)
        value = np.maximum(value, 0.0, out=value if isinstance(value, np.ndarray) else None)
        return value if upper is None else np.minimum(value, upper)
    if is_torch(xp):  # gradients (and Hessians) as unclamped: rounding below 0 must not zero them
        return clamp_keep_gradient(value, 0.0, upper)
    return xp.clip(value, 0.0, upper)


def to_output_dtype(value: Any, dtype: Any, xp: Any) -> Any:
    """The result in the inputs' dtype; numpy 0-d results become numpy scalars."""
    if is_numpy(xp):
        return np.asarray(value, dtype=dtype)[()]
    return value if value.dtype == dtype else xp.astype(value, dtype)
