r"""KL near P = Q without cancellation: the form every path uses for its small-KL rows.

The plain sum :math:`\sum_i p_i(\log p_i - \log q_i)` has terms of both signs of size
:math:`|p_i - q_i|` whose first orders cancel, so its relative error near P = Q grows like
:math:`u/\varepsilon`. Here KL is rewritten as a sum of terms of one sign plus a remainder
summed exactly:

- probabilities, :math:`d_i = p_i - q_i` (exact where :math:`|d_i| \le q_i/2`), :math:`t_i = \log(p_i/q_i)`:

  .. math:: \mathrm{KL} = \sum_i \big[p_i t_i - d_i\big] + \sum_i d_i,\qquad
            p_i t_i - d_i = d_i t_i - q_i\,k_3(t_i) \ge 0;

- logits (normalised, so shift-invariant), :math:`\delta_i = b_i - a_i` (error-free: a two-sum),
  :math:`\delta'_i = \delta_i - c` with :math:`c = E_p[\delta]`, :math:`S = \sum_i p_i\,\mathrm{expm1}(\delta'_i)`
  (sums over p's support) and :math:`m` the mass of Q outside it:

  .. math:: \mathrm{KL} = \sum_i p_i\,k_3(\delta'_i) - \big(S - \log(1 + S)\big) - \log(1 - m);

with :math:`k_3(t) = e^t - 1 - t` (:func:`expm1_minus`, a series below :math:`|t| = 1/2`) and
:math:`S - \log(1 + S) = k_3(\log(1 + S))`. The remainders (:math:`\sum d_i`) are summed exactly by
Rump's extraction (:func:`exact_row_sum`). Only the support :math:`p > 0` counts (terms with p = 0
are 0). Log-probabilities are left to the plain sum: their value on the given (not exactly
normalised) numbers contains :math:`\sum_i (p_i - q_i)` with :math:`p_i = e^{a_i}`, which float64's
``exp`` cannot give to better than :math:`u\sum_i p_i|a_i - b_i|`, the plain sum's own bound.
Gradients are those of the same mathematical function (shifts and splitting points are detached;
they leave the value unchanged).
"""

from __future__ import annotations

import math
from typing import Any

from klkit._engine.arrays import errstate, is_numpy, is_torch, logsumexp
from klkit._engine.support import in_support
from klkit._engine.threads import get_num_threads, parallel_map

__all__ = ["NEAR_KL", "exact_row_sum", "expm1_minus", "near_kl_rows", "refine_near_kl"]

NEAR_KL = 2.0**-6  # rows whose KL is below this are recomputed with the near-equal form
_SERIES = 0.5  # |t| below which k3 takes its series
_TERMS = tuple(1.0 / math.factorial(n) for n in range(2, 18))  # 1/n!, n = 2..17: < 1 ulp at |t| = 1/2


def _detach(x: Any) -> Any:
    return x.detach() if hasattr(x, "detach") else x


def expm1_minus(t: Any, xp: Any) -> Any:
    r""":math:`k_3(t) = e^t - 1 - t \ge 0` to a few ulps: :math:`t^2\sum_{n=2}^{17} t^{n-2}/n!` below
    :math:`|t| = 1/2`, ``expm1(t) - t`` elsewhere.

    Examples
    --------
    >>> import numpy as np
    >>> float(expm1_minus(np.array(1e-9), np))
    5.000000001666667e-19
    """
    small = xp.abs(t) <= _SERIES
    s = xp.where(small, t, 0.0)
    acc = _TERMS[-1] + 0.0 * s
    for c in _TERMS[-2::-1]:
        acc = acc * s + c
    big = xp.where(small, 0.0, t)
    return xp.where(small, s * s * acc, xp.expm1(big) - big)


def exact_row_sum(d: Any, xp: Any) -> Any:
    r""":math:`\sum_i d_i` over the last axis, exact to :math:`O(n^3 u^3 \max|d|)`: two levels of Rump's
    extraction (:math:`h = (\sigma + d) - \sigma` with :math:`\sigma` a power of two above
    :math:`(n + 2)\max|d|`, so every :math:`h` and every partial sum of them is exact), then a plain
    sum of the residuals. Finite entries only.

    Examples
    --------
    >>> import numpy as np
    >>> float(exact_row_sum(np.array([1e16, 1.0, -1e16, 3e-16]), np))  # np.sum gives 3e-16
    1.0000000000000002
    """
    n = d.shape[-1]
    margin = math.ceil(math.log2(n + 2)) + 1
    total = None
    rest = d
    for _ in range(2):
        top = xp.max(xp.abs(_detach(rest)), axis=-1, keepdims=True)
        top = xp.where(top > 0, top, 1.0)
        sigma = 2.0 ** (xp.ceil(xp.log2(top)) + margin)
        hi = (sigma + rest) - sigma
        rest = rest - hi
        part = xp.sum(hi, axis=-1)
        total = part if total is None else total + part
    return total + xp.sum(rest, axis=-1)


def _kl_probs(p: Any, q: Any, xp: Any) -> Any:
    pos = in_support(p)
    d = xp.where(pos, p - q, 0.0)
    near = pos & (xp.abs(d) <= 0.5 * q)
    t = xp.log1p(xp.where(near, d, 0.0) / xp.where(near, q, 1.0))
    term_near = d * t - xp.where(near, q, 0.0) * expm1_minus(t, xp)
    far = pos & ~near
    p1, q1 = xp.where(far, p, 1.0), xp.where(far, q, 1.0)
    ratio = p1 / q1
    normal = (ratio >= 2.2250738585072014e-308) & (ratio < math.inf)
    t_far = xp.where(normal, xp.log(xp.where(normal, ratio, 1.0)), xp.log(p1) - xp.log(q1))
    term = xp.where(near, term_near, xp.where(far, p1 * t_far - d, 0.0))
    return xp.sum(term, axis=-1) + exact_row_sum(d, xp)


def _kl_logits(a: Any, b: Any, xp: Any) -> Any:
    lp = a - logsumexp(a, xp, keepdims=True)
    p = xp.exp(lp)
    pos = in_support(p)
    # q's mass m outside p's support: KL = KL(p‖q restricted to it, renormalised) − log(1 − m)
    mass = xp.sum(xp.where(pos, 0.0, xp.exp(b - logsumexp(b, xp, keepdims=True))), axis=-1)
    a0, b0, lp0, p0 = (xp.where(pos, x, 0.0) for x in (a, b, lp, p))
    hi = b0 - a0  # two-sum: hi + lo = b0 - a0 exactly
    bv = hi - b0
    lo = (b0 - (hi - bv)) + (-a0 - bv)
    weight = xp.sum(p0, axis=-1, keepdims=True)
    hi = hi - _detach(xp.sum(p0 * hi, axis=-1, keepdims=True) / weight)
    delta = hi + lo
    small = xp.abs(delta) <= _SERIES
    ds = xp.where(small, delta, 0.0)
    k3s = expm1_minus(ds, xp)
    dl = xp.where(small, 0.0, delta)
    pe = xp.exp(lp0 + dl)  # p e^δ away from δ = 0
    pk3 = xp.where(pos, xp.where(small, p0 * k3s, pe - p0 - p0 * dl), 0.0)
    pem = xp.where(pos, xp.where(small, p0 * (ds + k3s), pe - p0), 0.0)
    weight = weight[..., 0]
    s = xp.sum(pem, axis=-1) / weight
    return xp.sum(pk3, axis=-1) / weight - expm1_minus(xp.log1p(s), xp) - xp.log1p(-mass)


def near_kl_rows(P: Any, Q: Any, kind: str, xp: Any) -> Any:
    r"""KL(P‖Q) along the last axis by the near-equal forms above; ``kind`` 'probs' or 'logits' (both).

    Examples
    --------
    >>> import numpy as np
    >>> float(near_kl_rows(np.array([[0.0, 0.0]]), np.array([[0.0, 1e-9]]), "logits", np)[0])  # δ²/8 − δ⁴/192
    1.25e-19
    """
    return _kl_probs(P, Q, xp) if kind == "probs" else _kl_logits(P, Q, xp)


def refine_near_kl(value: Any, P: Any, Q: Any, kind: str, xp: Any) -> Any:
    """``value`` (KL per slice, any path) with the slices below :data:`NEAR_KL` recomputed by
    :func:`near_kl_rows` in float64 (numpy: its numba twins in :mod:`klkit._engine.kernels_near`,
    rows shared between klkit's threads; torch: float32 where the device has no float64).
    ``kind`` is that of both inputs (other kinds keep ``value``).

    Only those slices are gathered, so far-apart inputs cost one comparison per slice; under
    autograd the recomputed slices carry their own gradients. Other array libraries evaluate the
    form on every slice and keep it where ``value`` is small; meta tensors and torch while compiling
    keep ``value``.
    """
    if kind not in ("probs", "logits"):
        return value
    if not (is_numpy(xp) or is_torch(xp)):  # no gathering: the form on every slice, kept where small
        with errstate(xp):
            wide = [xp.astype(x, xp.float64) for x in (P, Q)]
            return xp.where(value < NEAR_KL, xp.astype(near_kl_rows(*wide, kind, xp), value.dtype), value)
    if is_torch(xp):
        import torch

        if torch.compiler.is_compiling() or value.device.type == "meta":  # no values to look at
            return value
        flag = value < NEAR_KL
        if not bool(flag.any()):
            return value
        wide = torch.float32 if P.device.type == "mps" else torch.float64
        if value.ndim == 0:
            return near_kl_rows(P[None].to(wide), Q[None].to(wide), kind, xp)[0].to(value.dtype)
        idx = torch.nonzero(flag, as_tuple=True)
        rows = near_kl_rows(P[idx].to(wide), Q[idx].to(wide), kind, xp)
        return value.index_put(idx, rows.to(value.dtype))
    import numpy as np

    from klkit._engine.kernels_near import near_logits_rows, near_probs_rows

    flag = value < NEAR_KL
    if not flag.any():
        return value
    kernel = near_probs_rows if kind == "probs" else near_logits_rows
    if value.ndim == 0:
        out = np.empty(1)
        kernel(np.ascontiguousarray(P[None]), np.ascontiguousarray(Q[None]), out)
        return out[0].astype(value.dtype)
    idx = np.nonzero(flag)
    A, B = np.ascontiguousarray(P[idx]), np.ascontiguousarray(Q[idx])
    rows = np.empty(A.shape[0])
    workers = min(get_num_threads(), A.shape[0]) if A.size >= 1 << 17 else 1
    bounds = [A.shape[0] * w // workers for w in range(workers + 1)]
    parallel_map(lambda lo, hi: kernel(A[lo:hi], B[lo:hi], rows[lo:hi]), bounds[:-1], bounds[1:])
    out = value.copy()
    out[idx] = rows
    return out
