"""An :class:`Estimate` from per-point terms: their mean plus a constant, standard error and bootstrap."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from klkit._engine import log_of_base
from klkit.estimate import Estimate
from klkit.estimators.checks import check_bootstrap

__all__ = ["as_like", "estimate_from_terms"]


def estimate_from_terms(
    terms: np.ndarray,
    const: float,
    n: int,
    base: float | None,
    label: str,
    bootstrap: int | None,
    confidence: float,
    rng: np.random.Generator,
    like: Any,
) -> Estimate:
    r"""``const + mean(terms)`` in the unit of ``base``, with standard error :math:`\mathrm{sd}(terms)/\sqrt n`.

    With ``bootstrap`` the terms are resampled (``rng``) for a percentile interval of level
    ``confidence``. ``like``: a torch tensor whose device and floating dtype the numbers take, or None
    for numpy float64.

    Examples
    --------
    >>> import numpy as np
    >>> print(estimate_from_terms(np.array([1.0, 3.0]), 0.5, 2, None, "demo", None, 0.95, None, None))
    2.5 ± 1.0 (demo, n=2)
    """
    scale = log_of_base(base)
    value = (const + float(terms.mean())) / scale
    se = float(terms.std(ddof=1)) / math.sqrt(n) / scale
    interval = None
    level = None
    if bootstrap is not None:
        b = check_bootstrap(bootstrap, confidence)
        means = np.empty(b)
        for j in range(b):
            means[j] = terms[rng.integers(0, n, n)].mean()
        alpha = (1.0 - confidence) / 2.0
        lo, hi = np.quantile(means, [alpha, 1.0 - alpha])
        interval = (as_like((const + lo) / scale, like), as_like((const + hi) / scale, like))
        level = float(confidence)
    return Estimate(as_like(value, like), as_like(se, like), n, label, interval, level)


def as_like(v: float, like: Any) -> Any:
    """``v`` as numpy float64, or as a 0-d tensor on ``like``'s device (its dtype if floating, else float64)."""
    if like is None:
        return np.float64(v)
    import torch

    return torch.tensor(v, dtype=like.dtype if like.is_floating_point() else torch.float64, device=like.device)
