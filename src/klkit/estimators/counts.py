"""Counting symbols, and the entropy formulas on counts that the discrete estimators share."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from klkit._engine import is_torch_array
from klkit.errors import InvalidArgumentError, InvalidDistributionError, ShapeError
from klkit.estimators.checks import check_counts

__all__ = ["METHOD_LABELS", "chao_shen_entropy", "symbol_counts"]

METHOD_LABELS = {"plugin": "plug-in", "miller_madow": "Miller-Madow", "chao_shen": "Chao-Shen"}
"""How an :class:`~klkit.estimators.Estimate`'s method names each discrete estimator."""


def chao_shen_entropy(seen: np.ndarray, n: int) -> float:
    r"""Chao–Shen entropy (nats) of the counts ``seen`` (all > 0) of ``n`` samples.

    Coverage :math:`C = 1 - f_1/n` (:math:`f_1` singletons; :math:`f_1 = n - 1` when every sample
    is one), :math:`\tilde p_i = C n_i/n`,
    :math:`\hat H = -\sum_i \tilde p_i \log \tilde p_i / (1 - (1 - \tilde p_i)^n)`.

    Examples
    --------
    >>> import numpy as np
    >>> round(chao_shen_entropy(np.array([50.0, 50.0]), 100), 6)  # no singletons: the plug-in log 2
    0.693147
    """
    f1 = int(np.sum(seen == 1))
    if f1 == n:
        f1 = n - 1  # every sample a singleton: coverage would be 0
    coverage = 1.0 - f1 / n
    pa = coverage * seen / n
    inclusion = -np.expm1(n * np.log1p(-pa))  # 1 - (1 - pa)^n, accurate for small pa
    return float(-(pa * np.log(pa) / inclusion).sum())


def symbol_counts(samples: Any, counts: Any, s_name: str, c_name: str) -> tuple[np.ndarray | None, np.ndarray]:
    """``(symbols, or None for counts aligned by position; integer counts)`` from samples or counts."""
    if (samples is None) == (counts is None):
        raise InvalidArgumentError(
            f"pass exactly one of `{s_name}` and `{c_name}`; found "
            f"{'both' if samples is not None else 'neither'}. Give raw samples, or counts if you counted elsewhere."
        )
    if samples is not None:
        x = samples.detach().cpu().numpy() if is_torch_array(samples) else np.asarray(samples)
        if x.ndim == 0 or x.ndim > 2 or x.shape[0] == 0:
            raise ShapeError(
                f"`{s_name}` must be a non-empty 1-D array of symbols (or 2-D with one symbol per row); "
                f"found shape {x.shape}. Flatten it, or pass counts."
            )
        if x.dtype.kind == "f" and np.isnan(x).any():
            raise InvalidDistributionError(
                f"`{s_name}` must not contain NaN (NaN is not a symbol: NaN != NaN); found "
                f"{int(np.isnan(x).sum())}. Drop missing values or map them to an explicit symbol."
            )
        if x.ndim == 2:
            symbols, c = np.unique(x, axis=0, return_counts=True)
        else:
            symbols, c = np.unique(x, return_counts=True)
        return symbols, c.astype(np.int64)
    if isinstance(counts, Mapping):
        symbols = np.array(list(counts.keys()))
        c = check_counts(list(counts.values()), c_name)
        return symbols, c
    return None, check_counts(counts, c_name)
