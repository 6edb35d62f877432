"""Rescaling non-negative weights to probabilities: the one renormalisation klkit does, and only on request.

Re-exported as :func:`klkit.measures.normalize` and :func:`klkit.normalize`.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from klkit._engine import asarray, check_axis, compute_dtype, namespace, to_numpy
from klkit.errors import InvalidDistributionError

__all__ = ["normalize"]


def normalize(x: Any, /, *, axis: int = -1) -> Any:
    r"""Rescale non-negative weights to probabilities: :math:`x_i / \sum_j x_j` along ``axis``.

    The explicit renormalisation klkit never does on its own. Computed as
    :math:`(x_i / m) / \sum_j (x_j / m)` with :math:`m = \max_j x_j`, so weights near the largest
    float of their dtype (whose plain sum overflows) still give the right probabilities.

    Raises
    ------
    ValueError
        Negative, NaN or infinite entries, or a slice summing to 0.

    Examples
    --------
    >>> import klkit
    >>> klkit.normalize([1.0, 3.0]).tolist()
    [0.25, 0.75]
    >>> klkit.normalize([1e308, 1e308]).tolist()  # the plain sum would overflow to inf
    [0.5, 0.5]
    """
    xp = namespace(x, names=("x",))
    arr = asarray(x, xp, "x")
    ax = check_axis(axis, arr.ndim)
    moved = xp.moveaxis(arr, ax, -1)
    bad = ~xp.isfinite(moved) | (moved < 0)
    if bool(xp.any(bad)):
        raise InvalidDistributionError(
            "`x` must hold finite, non-negative weights to be normalised; found "
            f"{int(np.sum(to_numpy(bad)))} negative, NaN or infinite entries. "
            "Use kind='logits' for scores of any sign."
        )
    top = xp.max(moved, axis=-1, keepdims=True)
    if bool(xp.any(top == 0)):
        raise InvalidDistributionError(
            "`x` must have a positive sum along `axis` to be normalised; found a slice of zeros. "
            "Drop empty slices or add a prior count (e.g. x + 1)."
        )
    # scaled by the largest entry first (each slice then sums to at most its length, never past the
    # dtype's range), summed in the compute dtype (float32 for half precision)
    scaled = xp.astype(moved, compute_dtype(xp, moved.dtype)) / top
    out = scaled / xp.sum(scaled, axis=-1, keepdims=True)
    return xp.moveaxis(out if out.dtype == moved.dtype else xp.astype(out, moved.dtype), -1, ax)
