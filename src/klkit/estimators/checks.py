"""Argument checks shared by the estimators: neighbour order, sample size, metric, bootstrap, choices, counts.

Each raises a :mod:`klkit.errors` exception that names the argument, the rule, what was found and
the fix.
"""

from __future__ import annotations

import math
import numbers
from typing import Any

import numpy as np

from klkit._engine import is_torch_array
from klkit.errors import InvalidArgumentError, InvalidDistributionError, ShapeError

__all__ = ["METRICS", "check_bootstrap", "check_choice", "check_counts", "check_k", "check_metric", "check_size"]

METRICS = {"euclidean": 2.0, "chebyshev": math.inf}
"""The k-NN metrics by name, as the Minkowski p of :class:`scipy.spatial.cKDTree`."""


def check_k(k: Any, name: str) -> int:
    """``k`` as an int, or raise: a neighbour order must be an integer >= 1."""
    if isinstance(k, bool) or not isinstance(k, numbers.Integral) or k < 1:
        raise InvalidArgumentError(f"`{name}` must be an integer >= 1; found {k!r}. Typical values are 3 to 10.")
    return int(k)


def check_size(n: int, k: int, name: str, k_name: str) -> None:
    """Raise unless a sample of ``n`` points has more than ``k`` of them."""
    if n <= k:
        raise ShapeError(
            f"`{name}` must hold more than {k_name}={k} samples; found {n}. Draw more samples or lower `{k_name}`."
        )


def check_metric(metric: Any) -> float:
    """The Minkowski p of a metric name (see :data:`METRICS`), or raise."""
    if metric not in METRICS:
        raise InvalidArgumentError(
            f"`metric` must be 'euclidean' or 'chebyshev'; found {metric!r}. Chebyshev (max-norm) is faster in "
            "high dimension."
        )
    return METRICS[metric]


def check_bootstrap(bootstrap: Any, confidence: Any) -> int:
    """The number of bootstrap resamples (an integer >= 2) after checking ``confidence`` in (0, 1)."""
    if isinstance(bootstrap, bool) or not isinstance(bootstrap, numbers.Integral) or bootstrap < 2:
        raise InvalidArgumentError(
            f"`bootstrap` must be None or an integer >= 2 (number of resamples); found {bootstrap!r}. Try 1000."
        )
    if isinstance(confidence, bool) or not isinstance(confidence, numbers.Real) or not 0 < confidence < 1:
        raise InvalidArgumentError(f"`confidence` must be in (0, 1); found {confidence!r}. Use 0.95 for 95%.")
    return int(bootstrap)


def check_choice(value: Any, name: str, options: tuple[str, ...]) -> None:
    """Raise unless ``value`` is one of ``options``."""
    if value not in options:
        listed = ", ".join(repr(o) for o in options)
        raise InvalidArgumentError(f"`{name}` must be one of {listed}; found {value!r}. Pick one of those.")


def check_counts(counts: Any, name: str) -> np.ndarray:
    """A 1-D array of non-negative integer counts with a positive total, as int64, or raise."""
    c = counts.detach().cpu().numpy() if is_torch_array(counts) else np.asarray(counts)
    if c.ndim != 1 or c.size == 0:
        raise ShapeError(f"`{name}` must be a non-empty 1-D array of counts; found shape {c.shape}. Flatten it.")
    if c.dtype.kind not in "biuf" or not all(isinstance(v, numbers.Real) for v in c[:1].tolist()):
        raise InvalidDistributionError(f"`{name}` must hold numbers; found dtype {c.dtype}. Pass integer counts.")
    cf = c.astype(np.float64)
    bad = ~np.isfinite(cf) | (cf < 0) | (cf != np.round(cf))
    if bad.any():
        raise InvalidDistributionError(
            f"`{name}` must hold non-negative integer counts; found {int(bad.sum())} bad entr"
            f"{'y' if bad.sum() == 1 else 'ies'}, first {c[bad][0]!r} at index {int(np.argmax(bad))}. "
            "Pass counts (not probabilities); use klkit.entropy for probability vectors."
        )
    if cf.sum() == 0:
        raise InvalidDistributionError(f"`{name}` must have a positive total; found all zeros. Count some samples.")
    return cf.astype(np.int64)
