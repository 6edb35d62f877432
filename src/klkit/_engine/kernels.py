"""Fused numba kernels behind the numpy fast path for probabilities (logits: :mod:`klkit._engine.kernels_logits`).

Probabilities: the flat (rows × n) input is cut into chunks on a grid that
depends on its size only. numpy computes ``log`` on each chunk (its SIMD
implementation is the fastest there is) into one float64 buffer per thread, and
one numba pass per chunk applies the ``0·log 0 = 0`` and ``p > 0, q = 0 → inf``
rules, corrects the rounding of ``p / q`` exactly (Dekker's two-product) and
accumulates in float64. A row inside one chunk is written to the output by the
thread that owns the chunk; a row that crosses chunks leaves one partial sum per
chunk, added in chunk order at the end. Every row is therefore summed in the same
order whatever the number of threads, and the extra memory is the per-row value,
one buffer per thread and a few numbers per chunk.

They return the value per row, NaN for a row holding an entry outside the domain, and
summaries for the checks: the count of bad entries and the row sums farthest from 1.
"""

from __future__ import annotations

import math

import numba
import numpy as np

from klkit._engine.support import in_support_scalar as _in_support
from klkit._engine.threads import get_num_threads, parallel_map

CHUNK = 1 << 15  # elements per chunk of a large input: its float64 buffer (256 KiB) stays in L2
MIN_CHUNK = 1 << 12  # elements per chunk of a small input
SCRATCH = 0.2  # fraction of one input the buffers and outputs may use (the promise is 25%)
_INF = math.inf
_NAN = math.nan
_TINY = 2.2250738585072014e-308  # smallest normal float64
_BIG = 2.0**996  # above this, Dekker's splitting (134217729·a) of a ratio or of q would overflow
_SCALE = 2.0**-64  # exact rescaling of p and fl(p/q), or of p and q, before splitting a big operand
ENTROPY, CROSS_ENTROPY, KL = 0, 1, 2
# per-chunk statistics of probabilities: bad entries, then the row sums of p and q farthest from 1
_BAD, _WORST_P, _WORST_Q = 0, 1, 2
# per-chunk partial sums of the rows crossing chunks: [first, last segment] × [value, Σp, Σq]
_V, _SP, _SQ = 0, 1, 2


@numba.njit(cache=True)
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


@numba.njit(inline="always", cache=True)
def _is_bad(x: float) -> int:
    return 0 if 0.0 <= x < _INF else 1


@numba.njit(cache=True)
def _ratio_correction(pi: float, qi: float, ri: float) -> float:
    """``log(p/q) - log(ri)`` for ri = fl(p/q): ≈ (p - ri q)/p with p - ri q exact.

    Compiled without fast-math (LLVM keeps per-instruction flags when it inlines
    this into the reassociating caller), so Dekker's arithmetic stays exact.
    """
    return ((pi - ri * qi) - _product_error(ri, qi)) / pi


@numba.njit(inline="always", cache=True)
def _kl_term(pi: float, qi: float, ri: float, lg: float) -> float:
    """p log(p/q) given ri = fl(p/q) and lg = log(ri)."""
    return pi * (lg + _ratio_correction(pi, qi, ri))


@numba.njit(inline="always", cache=True)
def _is_plain(qi: float, ri: float) -> bool:
    """Whether ``p log(p/q)`` takes the vectorised form: fl(p/q) normal and both factors of the
    error-free product ``fl(p/q)·q`` small enough to split (p/q ≤ 2^996, q ≤ 2^996)."""
    return _TINY <= ri < _BIG and qi < _BIG


@numba.njit(inline="always", cache=True)
def _kl_term_special(pi: float, qi: float) -> float:
    """p log(p/q) for p > 0 where :func:`_is_plain` is false: q = 0, p/q above 2^996 or not a
    normal float, or q above 2^996.

    A big ratio or a big q is rescaled by 2^-64 together with p (exact: neither reaches the
    subnormals) so that the rounding of fl(p/q) is still corrected; a ratio that overflowed or
    underflowed takes log p − log q (each correctly rounded, their difference is ≥ 708 in size).
    """
    if qi == 0.0:
        return _INF
    ri = pi / qi
    if _TINY <= ri < _INF:
        if ri >= _BIG:
            return pi * (math.log(ri) + _ratio_correction(pi * _SCALE, qi, ri * _SCALE))
        return pi * (math.log(ri) + _ratio_correction(pi * _SCALE, qi * _SCALE, ri))
    return pi * (math.log(pi) - math.log(qi))


@numba.njit(inline="always", cache=True)
def _farther(s: float, worst: float) -> float:
    """Whichever of two row sums is farther from 1 (NaN sums are left to the bad count)."""
    return s if abs(s - 1.0) > abs(worst - 1.0) else worst


@numba.njit(inline="always", cache=True)
def _crosses(r: int, n: int, chunk: int) -> bool:
    """Whether row r of length n lies in more than one chunk."""
    return (r * n) // chunk != ((r + 1) * n - 1) // chunk


# reassoc lets LLVM vectorise the sums (lane-wise partial sums, no loss of accuracy);
# no other fast-math flag, so inf and NaN keep their IEEE meaning; x / 0 is ±inf or NaN, as in numpy.
@numba.njit(nogil=True, cache=True, fastmath={"reassoc"}, error_model="numpy")
def _probs_chunk(p, q, lg, k, chunk, n, mode, value, part, stats):  # pragma: no cover - compiled
    """Accumulate chunk ``k`` (flat ``p``, ``q`` and ``lg`` of that chunk) of a (rows, n) array.

    ``lg`` holds log p (entropy), log q (cross-entropy) or log(p/q) (KL) in float64.
    Rows inside the chunk go to ``value``; the (at most two) segments of rows that
    cross chunks go to ``part[k]``. ``stats[k]`` gets the bad count and the row sums
    farthest from 1 of the rows inside. A segment with a bad entry (negative, NaN or
    infinite) has value NaN. The inner loops are branch-free so that LLVM vectorises
    them; the rare entries whose ratio is not a normal float are redone one by one.
    (One function: a call per row, even inlined, costs twice the whole loop on short rows.)
    """
    start = k * chunk
    size = p.shape[0]
    nbad = 0
    worst_p = 1.0
    worst_q = 1.0
    first = start // n
    r = first
    i = 0
    while i < size:
        stop = min(size, (r + 1) * n - start)
        v = 0.0
        sp = 0.0
        sq = 0.0
        nb = 0
        # unsigned loop indices: numba adds no negative-index wraparound, so LLVM vectorises with plain
        # loads (with signed ones it emitted gathers: 3× slower on long rows, and slices cost short rows)
        lo, hi = np.uint64(i), np.uint64(stop)
        if mode == ENTROPY:
            for j in range(lo, hi):
                pi = np.float64(p[j])
                sp += pi
                nb += _is_bad(pi)
                v += -pi * lg[j] if _in_support(pi) else 0.0
        elif mode == CROSS_ENTROPY:
            for j in range(lo, hi):
                pi = np.float64(p[j])
                qi = np.float64(q[j])
                sp += pi
                sq += qi
                nb += _is_bad(pi) + _is_bad(qi)
                v += -pi * lg[j] if _in_support(pi) else 0.0
        else:
            special = 0
            for j in range(lo, hi):
                pi = np.float64(p[j])
                qi = np.float64(q[j])
                ri = pi / qi  # the ratio whose log numpy took: the same correctly rounded quotient
                sp += pi
                sq += qi
                nb += _is_bad(pi) + _is_bad(qi)
                plain = _is_plain(qi, ri)
                special += 0 if plain or not _in_support(pi) else 1
                v += _kl_term(pi, qi, ri, lg[j]) if _in_support(pi) and plain else 0.0
            if special:
                for j in range(lo, hi):
                    pi = np.float64(p[j])
                    qi = np.float64(q[j])
                    if _in_support(pi) and not _is_plain(qi, pi / qi):
                        v += _kl_term_special(pi, qi)
        nbad += nb
        v = _NAN if nb else v
        if r * n < start or (r + 1) * n > start + size:  # the row crosses into another chunk
            slot = 0 if r == first else 1
            part[k, slot, _V] = v
            part[k, slot, _SP] = sp
            part[k, slot, _SQ] = sq
        else:
            value[r] = v
            worst_p = _farther(sp, worst_p)
            worst_q = _farther(sq, worst_q)
        i = stop
        r += 1
    stats[k, _BAD] = nbad
    stats[k, _WORST_P] = worst_p
    stats[k, _WORST_Q] = worst_q


@numba.njit(cache=True)
def _join_parts(value, part, stats, size, n, chunk):  # pragma: no cover - compiled
    """Sum the partial sums of the rows crossing chunks, in chunk order, into ``value``.

    Returns ``(bad entries, Σp farthest from 1, Σq farthest from 1)`` over all rows.
    """
    nbad = 0
    worst_p = 1.0
    worst_q = 1.0
    row = -1
    acc = np.zeros(3)
    for k in range(part.shape[0]):
        nbad += np.int64(stats[k, _BAD])
        worst_p = _farther(stats[k, _WORST_P], worst_p)
        worst_q = _farther(stats[k, _WORST_Q], worst_q)
        first = (k * chunk) // n
        last = (min((k + 1) * chunk, size) - 1) // n
        for slot, r in enumerate((first, last)):
            if not _crosses(r, n, chunk) or (slot == 1 and r == first):
                continue
            if r != row:
                row = r
                acc[:] = 0.0
            acc += part[k, slot]
            if (r + 1) * n <= (k + 1) * chunk:  # the row ends in this chunk
                value[r] = acc[_V]
                worst_p = _farther(acc[_SP], worst_p)
                worst_q = _farther(acc[_SQ], worst_q)
    return nbad, worst_p, worst_q


def _chunk_size(size: int) -> int:
    """Elements per chunk: a function of the input's size only, so that results are too."""
    target = max(MIN_CHUNK, min(CHUNK, size // 64))
    return 1 << (target.bit_length() - 1)


def _probs_workers(size: int, rows: int, itemsize: int, chunk: int) -> int:
    """Threads for one call: at most one per chunk, and their buffers within the memory budget."""
    budget = int(SCRATCH * size * itemsize) - 8 * rows
    return max(1, min(get_num_threads(), -(-size // chunk), budget // (8 * chunk)))


@numba.njit(nogil=True, cache=True, error_model="numpy")  # x / 0 is ±inf or NaN, not an exception
def _widen(p, q, mode, lg):  # pragma: no cover - compiled
    """``lg`` = p, q or p/q in float64 (for float32 inputs: no casting buffers in numpy)."""
    if mode == ENTROPY:
        for j in range(lg.shape[0]):
            lg[j] = p[j]
    elif mode == CROSS_ENTROPY:
        for j in range(lg.shape[0]):
            lg[j] = q[j]
    else:
        for j in range(lg.shape[0]):
            lg[j] = np.float64(p[j]) / np.float64(q[j])


def _log_chunk(p: np.ndarray, q: np.ndarray, mode: int, lg: np.ndarray) -> None:
    """``lg`` = log p, log q or log(p/q), computed in float64."""
    if p.dtype != np.float64:
        _widen(p, q, mode, lg)
        np.log(lg, out=lg)
    elif mode == KL:
        np.divide(p, q, out=lg)
        np.log(lg, out=lg)
    else:
        np.log(p if mode == ENTROPY else q, out=lg)


def probs_rows(p: np.ndarray, q: np.ndarray | None, mode: int):
    """Per-row measure of C-contiguous (rows, n) probabilities, and the checks' summaries.

    Parameters
    ----------
    p, q : ndarray
        C-contiguous float32 or float64 arrays of one shape; ``q`` None for entropy.
    mode : int
        ``ENTROPY``, ``CROSS_ENTROPY`` or ``KL``.

    Returns
    -------
    value : ndarray
        float64, one per row; NaN for a row with a negative, NaN or infinite entry
        in p or q, ``+inf`` for a row with p > 0 where q = 0 (cross-entropy, KL).
    p_sum, q_sum : ndarray
        0-d float64: the row sum of p (of q) farthest from 1; 1.0 for ``q_sum`` of entropy.
    n_bad : ndarray
        0-d int64: the number of negative, NaN or infinite entries of p and q.
    """
    rows, n = p.shape
    flat_p = p.reshape(-1)
    flat_q = flat_p if q is None else q.reshape(-1)
    size = flat_p.size
    chunk = _chunk_size(size)
    nchunks = -(-size // chunk)
    workers = _probs_workers(size, rows, p.dtype.itemsize, chunk)
    value = np.empty(rows)
    part = np.zeros((nchunks, 2, 3))
    stats = np.empty((nchunks, 3))

    def run(first: int, last: int) -> None:
        lg = np.empty(min(chunk, size))
        with np.errstate(all="ignore"):
            for k in range(first, last):
                s, e = k * chunk, min((k + 1) * chunk, size)
                buf = lg[: e - s]
                _log_chunk(flat_p[s:e], flat_q[s:e], mode, buf)
                _probs_chunk(flat_p[s:e], flat_q[s:e], buf, k, chunk, n, mode, value, part, stats)

    bounds = [nchunks * w // workers for w in range(workers + 1)]
    parallel_map(run, bounds[:-1], bounds[1:])
    nbad, worst_p, worst_q = _join_parts(value, part, stats, size, n, chunk)
    if q is None:
        worst_q = 1.0
    return value, np.array(worst_p), np.array(worst_q), np.array(nbad, dtype=np.int64)


@numba.njit(nogil=True, cache=True, error_model="numpy")
def _log_small(p, q, mode, lg):  # pragma: no cover - compiled
    """``lg`` = log p, log q or log(p/q) in float64, element by element (no numpy call, no warnings)."""
    for j in range(lg.shape[0]):
        x = (
            np.float64(p[j])
            if mode == ENTROPY
            else np.float64(q[j])
            if mode == CROSS_ENTROPY
            else np.float64(p[j]) / np.float64(q[j])
        )
        lg[j] = math.log(x) if x > 0.0 else (-_INF if x == 0.0 else _NAN)


def probs_rows_small(p: np.ndarray, q: np.ndarray | None, mode: int):
    """:func:`probs_rows` for small inputs: one chunk, one thread, the fewest Python steps.

    The same kernel and the same summation order as a one-chunk :func:`probs_rows`, so
    the answers are the same; on a short vector the call costs a few microseconds.
    """
    rows, n = p.shape
    flat_p = p.reshape(-1)
    flat_q = flat_p if q is None else q.reshape(-1)
    size = flat_p.size
    lg = np.empty(size)
    value = np.empty(rows)
    part = np.empty((1, 2, 3))
    stats = np.empty((1, 3))
    _log_small(flat_p, flat_q, mode, lg)
    _probs_chunk(flat_p, flat_q, lg, 0, size, n, mode, value, part, stats)
    return value, stats[0, _WORST_P], 1.0 if q is None else stats[0, _WORST_Q], stats[0, _BAD]
