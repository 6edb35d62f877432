"""Fused numba kernels behind the numpy fast path for logits.

One numba pass per row with an online log-sum-exp (float64, compensated), then one pass for the
measure; no temporary arrays at all. Rows are shared between threads. Each row's value is NaN when
the row holds NaN or ``+inf``; the summaries are the count of bad entries and the smallest row
log-sum-exp (``-inf`` when a row is all ``-inf``).
"""

from __future__ import annotations

import math

import numba
import numpy as np

from klkit._engine.kernels import CHUNK, ENTROPY, KL
from klkit._engine.support import in_support_scalar as _in_support
from klkit._engine.threads import get_num_threads, parallel_map

__all__ = ["logits_rows"]

_INF = math.inf
_NAN = math.nan


@numba.njit(inline="always", cache=True)
def _add(s: float, c: float, x: float):
    """Neumaier's compensated sum: (s, c) + x, with c collecting the lost low-order bits (x finite)."""
    t = s + x
    if abs(s) >= abs(x):
        c += (s - t) + x
    else:
        c += (x - t) + s
    return t, c


@numba.njit(inline="always", cache=True)
def _row_lse(x, r):
    """Online log-sum-exp of row r, in float64 with a compensated sum; NaN and +inf are counted."""
    m = -_INF
    s = 0.0
    c = 0.0
    nbad = 0
    for i in range(x.shape[1]):
        xi = np.float64(x[r, i])
        if not xi < _INF:
            nbad += 1
        elif xi > m:
            scale = math.exp(m - xi)
            s, c = _add(s * scale, c * scale, 1.0)
            m = xi
        elif xi > -_INF:
            s, c = _add(s, c, math.exp(xi - m))
    if m == -_INF:
        return -_INF, nbad
    return m + math.log(s + c), nbad


@numba.njit(inline="always", cache=True)
def _row_value(a, b, r, la, lb, mode) -> float:
    """The measure of row r given its log-sum-exps, compensated (Neumaier).

    A term with p > 0 in float64 where q = 0 (a logit of p that does not underflow beside a
    ``-inf`` logit of q) is ``+inf``; p = 0 contributes nothing (:mod:`klkit._engine.support`).
    Infinite terms are counted, never summed, so no ``inf - inf`` can reach the compensation.
    """
    v = 0.0
    c = 0.0
    infinite = 0
    for i in range(a.shape[1]):
        lp = np.float64(a[r, i]) - la
        pi = math.exp(lp)
        if not _in_support(pi):  # p = 0 in float64 (a -inf logit, or one that underflows): no term
            continue
        if mode == ENTROPY:
            term = -pi * lp
        else:
            bi = np.float64(b[r, i])
            if bi == -_INF:
                infinite += 1
                continue
            lq = bi - lb
            term = pi * (lp - lq) if mode == KL else -pi * lq
        v, c = _add(v, c, term)
    return _INF if infinite else v + c


@numba.njit(nogil=True, cache=True)
def _logits_rows(a, b, mode, value, stats):  # pragma: no cover - compiled
    """Fill ``value`` for (rows, n) logits (``b`` unused for entropy); ``stats`` gets
    ``[bad entries, smallest log-sum-exp of a, of b]``.

    A row with a NaN or ``+inf`` logit, or whose logits (of a, or of b unless
    entropy) are all ``-inf``, has value NaN. Sums are compensated (Neumaier), so a
    row of 10^5 equal terms keeps ~1e-15 relative.
    """
    nbad = 0
    low_a = _INF
    low_b = _INF
    for r in range(a.shape[0]):
        la, nba = _row_lse(a, r)
        lb, nbb = 0.0, 0
        if mode != ENTROPY:
            lb, nbb = _row_lse(b, r)
        nbad += nba + nbb
        low_a = min(low_a, la)
        low_b = min(low_b, lb)
        if nba + nbb > 0 or la == -_INF or lb == -_INF:
            value[r] = _NAN
        else:
            value[r] = _row_value(a, b, r, la, lb, mode)
    stats[0] = nbad
    stats[1] = low_a
    stats[2] = low_b


def logits_rows(a: np.ndarray, b: np.ndarray, mode: int):
    """Per-row measure of C-contiguous (rows, n) logits, and the checks' summaries.

    Rows are shared between klkit's thread pool (the kernel releases the GIL), not
    numba's parallel backend, whose spinning OpenMP threads would compete with torch's.

    Parameters
    ----------
    a, b : ndarray
        C-contiguous float32 or float64 logits of one shape; ``b`` is ignored for entropy.
    mode : int
        ``ENTROPY``, ``CROSS_ENTROPY`` or ``KL``.

    Returns
    -------
    value : ndarray
        float64, one per row; NaN for a row with a NaN or ``+inf`` logit or whose
        logits are all ``-inf``; ``+inf`` where a finite logit of a meets a ``-inf``
        logit of b (cross-entropy, KL).
    lse_a, lse_b : ndarray
        0-d float64: the smallest row log-sum-exp of a (of b; 0.0 for entropy),
        ``-inf`` when some row is all ``-inf``.
    n_bad : ndarray
        0-d int64: the number of NaN and ``+inf`` logits.
    """
    rows = a.shape[0]
    value = np.empty(rows)
    workers = min(get_num_threads(), rows) if a.size >= 4 * CHUNK else 1
    bounds = [rows * w // workers for w in range(workers + 1)]
    stats = np.empty((workers, 3))

    def run(w: int) -> None:
        lo, hi = bounds[w], bounds[w + 1]
        _logits_rows(a[lo:hi], b[lo:hi], mode, value[lo:hi], stats[w])

    parallel_map(run, range(workers))
    return (
        value,
        np.array(stats[:, 1].min()),
        np.array(stats[:, 2].min()),
        np.array(stats[:, 0].sum(), dtype=np.int64),
    )
