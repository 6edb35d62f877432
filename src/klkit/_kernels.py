"""Fused numba kernels behind the numpy fast path.

Probabilities: numpy computes ``log`` (its SIMD implementation is the fastest
there is) on cache-sized chunks, and one numba pass per chunk validates the
inputs, applies the ``0·log 0 = 0`` and ``p > 0, q = 0 → inf`` rules, corrects
the rounding of ``p / q`` exactly (Dekker's two-product) and accumulates in
float64. Chunks are shared between threads; numpy and the kernels release the GIL.

Logits: one numba pass per row with an online log-sum-exp, then one pass for
the measure; no temporary arrays at all.
"""

from __future__ import annotations

import math
import os
from concurrent.futures import ThreadPoolExecutor
from functools import cache

import numba
import numpy as np

CHUNK = 1 << 15  # elements per chunk: two float64 buffers stay in L2
_INF = math.inf
_TINY = 2.2250738585072014e-308  # smallest normal float64
ENTROPY, CROSS_ENTROPY, KL = 0, 1, 2


@numba.njit
def _product_error(a: float, b: float) -> float:
    """The rounding error of ``a * b``: ``a*b - fl(a*b)`` exactly (Dekker, 1971)."""
    c = 134217729.0 * a
    ah = c - (c - a)
    al = a - ah
    c = 134217729.0 * b
    bh = c - (c - b)
    bl = b - bh
    h = a * b
    return ((ah * bh - h) + ah * bl + al * bh) + al * bl


@numba.njit(inline="always")
def _is_bad(x: float) -> int:
    return 0 if 0.0 <= x < _INF else 1


@numba.njit
def _ratio_correction(pi: float, qi: float, ri: float) -> float:
    """``log(p/q) - log(ri)`` for ri = fl(p/q): ≈ (p - ri q)/p with p - ri q exact.

    Compiled without fast-math (LLVM keeps per-instruction flags when it inlines
    this into the reassociating caller), so Dekker's arithmetic stays exact.
    """
    return ((pi - ri * qi) - _product_error(ri, qi)) / pi


@numba.njit(inline="always")
def _kl_term(pi: float, qi: float, ri: float, lg: float) -> float:
    """p log(p/q) given ri = fl(p/q) and lg = log(ri)."""
    return pi * (lg + _ratio_correction(pi, qi, ri))


@numba.njit(inline="always")
def _kl_term_special(pi: float, qi: float) -> float:
    """p log(p/q) where p/q overflowed, underflowed or q = 0."""
    if qi == 0.0:
        return _INF
    return pi * (math.log(pi) - math.log(qi))


# reassoc lets LLVM vectorise the sums (lane-wise partial sums, no loss of accuracy);
# no other fast-math flag, so inf and NaN keep their IEEE meaning.
@numba.njit(nogil=True, cache=True, fastmath={"reassoc"})
def _finish_probs(p, q, ratio, lg, start, n, mode, value, psum, qsum, bad):  # pragma: no cover - compiled
    """Accumulate one flat chunk, which begins at flat index ``start`` of a C-contiguous
    (rows, n) array, into the per-row ``value``/``psum``/``qsum``/``bad``.

    ``lg`` holds log p (entropy), log q (cross-entropy) or log(p/q) (KL) in float64.
    The inner loops are branch-free so that LLVM vectorises them; the rare entries
    whose ratio is not a normal float are redone one by one.
    """
    size = p.shape[0]
    i = 0
    while i < size:
        r = (start + i) // n
        stop = min(size, (r + 1) * n - start)
        v = 0.0
        sp = 0.0
        sq = 0.0
        nb = 0
        special = 0
        if mode == ENTROPY:
            for j in range(i, stop):
                pi = p[j]
                sp += pi
                nb += _is_bad(pi)
                v += -pi * lg[j] if pi > 0.0 else 0.0
        elif mode == CROSS_ENTROPY:
            for j in range(i, stop):
                pi = p[j]
                qi = q[j]
                sp += pi
                sq += qi
                nb += _is_bad(pi) + _is_bad(qi)
                v += -pi * lg[j] if pi > 0.0 else 0.0
        else:
            for j in range(i, stop):
                pi = p[j]
                qi = q[j]
                ri = ratio[j]
                sp += pi
                sq += qi
                nb += _is_bad(pi) + _is_bad(qi)
                normal = _TINY <= ri < _INF
                special += 0 if normal or not pi > 0.0 else 1
                v += _kl_term(pi, qi, ri, lg[j]) if pi > 0.0 and normal else 0.0
            if special:
                for j in range(i, stop):
                    pi = p[j]
                    if pi > 0.0 and not _TINY <= ratio[j] < _INF:
                        v += _kl_term_special(pi, q[j])
        value[r] += v
        psum[r] += sp
        qsum[r] += sq
        bad[r] += nb
        i = stop


def _as_float64(x: np.ndarray, buffer: np.ndarray) -> np.ndarray:
    """``x`` itself when already float64, else upcast into ``buffer``."""
    if x.dtype == np.float64:
        return x
    np.copyto(buffer, x)
    return buffer


@cache
def _pool(workers: int) -> ThreadPoolExecutor:
    return ThreadPoolExecutor(workers, thread_name_prefix="klkit")


def _workers() -> int:
    return max(1, min(os.cpu_count() or 1, numba.config.NUMBA_NUM_THREADS))


def probs_rows(p: np.ndarray, q: np.ndarray | None, mode: int):
    """Per-row ``(value, p_sum, q_sum, n_bad)`` for C-contiguous (rows, n) probability arrays.

    ``n_bad`` counts negative, NaN and infinite entries of p and q. The arrays are
    streamed flat in chunks of ``CHUNK`` elements, one contiguous share per thread.
    """
    rows, n = p.shape
    flat_p = p.reshape(-1)
    flat_q = None if q is None else q.reshape(-1)
    size = flat_p.size
    workers = _workers() if size >= 4 * CHUNK else 1
    bounds = [size * k // workers for k in range(workers + 1)]

    def run(lo: int, hi: int):
        out = np.zeros((3, rows))
        bad = np.zeros(rows, dtype=np.int64)
        buf = np.empty((4, CHUNK))
        with np.errstate(all="ignore"):
            for s in range(lo, hi, CHUNK):
                e = min(s + CHUNK, hi)
                m = e - s
                ratio, lg = buf[2, :m], buf[3, :m]
                pb = _as_float64(flat_p[s:e], buf[0, :m])
                qb = ratio if flat_q is None else _as_float64(flat_q[s:e], buf[1, :m])
                if mode == ENTROPY:
                    np.log(pb, out=lg)
                elif mode == CROSS_ENTROPY:
                    np.log(qb, out=lg)
                else:
                    np.divide(pb, qb, out=ratio)
                    np.log(ratio, out=lg)
                _finish_probs(pb, qb, ratio, lg, s, n, mode, out[0], out[1], out[2], bad)
        return out, bad

    results = [run(0, size)] if workers == 1 else list(_pool(workers).map(run, bounds[:-1], bounds[1:]))
    out = np.sum([o for o, _ in results], axis=0)
    bad = np.sum([b for _, b in results], axis=0)
    return out[0], out[1], out[2], bad


@numba.njit(inline="always")
def _add(s: float, c: float, x: float):
    """Neumaier's compensated sum: (s, c) + x, with c collecting the lost low-order bits."""
    t = s + x
    if abs(s) >= abs(x):
        c += (s - t) + x
    else:
        c += (x - t) + s
    return t, c


@numba.njit(inline="always")
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


@numba.njit(nogil=True, cache=True)
def _logits_rows(a, b, mode, value, lse_a, lse_b, bad):  # pragma: no cover - compiled
    """Fill the per-row outputs for (rows, n) logits; ``b`` unused for entropy.

    Sums are compensated (Neumaier), so a row of 10^5 equal terms keeps ~1e-15 relative.
    """
    rows, n = a.shape
    for r in range(rows):
        la, nba = _row_lse(a, r)
        lb, nbb = 0.0, 0
        if mode != ENTROPY:
            lb, nbb = _row_lse(b, r)
        lse_a[r] = la
        lse_b[r] = lb
        bad[r] = nba + nbb
        if nba + nbb > 0 or la == -_INF or lb == -_INF:
            continue
        v = 0.0
        c = 0.0
        for i in range(n):
            lp = np.float64(a[r, i]) - la
            if lp == -_INF:
                continue
            pi = math.exp(lp)
            if mode == ENTROPY:
                v, c = _add(v, c, -pi * lp)
            else:
                lq = np.float64(b[r, i]) - lb
                v, c = _add(v, c, pi * (lp - lq) if mode == KL else -pi * lq)
        value[r] = v + c


def logits_rows(a: np.ndarray, b: np.ndarray, mode: int):
    """Per-row ``(value, lse_a, lse_b, n_bad)`` for C-contiguous (rows, n) logits.

    Rows are shared between klkit's thread pool (the kernel releases the GIL), not
    numba's parallel backend, whose spinning OpenMP threads would compete with torch's.
    """
    rows = a.shape[0]
    value, lse_a, lse_b = np.zeros(rows), np.zeros(rows), np.zeros(rows)
    bad = np.zeros(rows, dtype=np.int64)
    workers = min(_workers(), rows) if a.size >= 4 * CHUNK else 1
    bounds = [rows * k // workers for k in range(workers + 1)]

    def run(lo: int, hi: int) -> None:
        _logits_rows(a[lo:hi], b[lo:hi], mode, value[lo:hi], lse_a[lo:hi], lse_b[lo:hi], bad[lo:hi])

    if workers == 1:
        run(0, rows)
    else:
        list(_pool(workers).map(run, bounds[:-1], bounds[1:]))
    return value, lse_a, lse_b, bad
