"""KL near P = Q: relative accuracy of every path against 50-digit mpmath on the numbers as stored.

Rows with q = p·(1 + εz) (probabilities) or b = a + εz (logits), ε = 1e-3 … 1e-12, n = 8, plus a
row whose p has a zero where q holds mass ε. The truth is Σ p (log p − log q) at 50 digits on the
float values actually passed (float32 inputs: their float32 values), so it includes the inputs'
own normalisation error. Paths: numpy small, numpy numba kernels (≥ FAST_MIN elements), torch
small (the numpy bridge), torch tiles (≥ CHUNK_MIN elements), torch under autograd, and
array_api_strict (the generic path of any other library); float64 must
be within 1e-12 relative, float32 within 2^-23 relative (the output's own rounding, twice).
Log-probabilities are held to the plain sum's bound (see klkit._engine.near_equal).
"""

from __future__ import annotations

import functools

import mpmath
import numpy as np
import pytest

import klkit
from klkit._engine import CHUNK_MIN

torch = pytest.importorskip("torch")

EPS = (1e-3, 1e-6, 1e-9, 1e-12)
N = 8
PATHS = ("np_small", "np_kernel", "t_small", "t_tiles", "t_grad", "array_api_strict")
TOL = {"float64": 1e-12, "float32": 2.0**-23}


def _rows(kind: str, eps: float, dtype: str) -> np.ndarray:
    """(2, 2, N): [p; q] for a dense row and a row with a zero in p, rounded to ``dtype``."""
    rng = np.random.default_rng(int(-np.log10(eps)))
    a = rng.standard_normal((2, N))
    z = rng.standard_normal((2, N))
    if kind == "logits":
        p, q = a, a + eps * z
        p[1, 0] = -np.inf
        q[1, 0] = np.log(eps)
    else:
        p = np.exp(a) / np.exp(a).sum(-1, keepdims=True)
        p[1, 0] = 0.0
        p /= p.sum(-1, keepdims=True)
        q = np.abs(p * (1 + eps * z))
        q[1, 0] = eps
        q /= q.sum(-1, keepdims=True)
    return np.stack([p, q], axis=1).astype(dtype)


def _truth(p: np.ndarray, q: np.ndarray, kind: str) -> float:
    with mpmath.workdps(50):
        P = [mpmath.mpf(float(x)) for x in p]
        Q = [mpmath.mpf(float(x)) for x in q]
        if kind == "probs":
            return float(sum(a * (mpmath.log(a) - mpmath.log(b)) for a, b in zip(P, Q) if a > 0))
        if kind == "log_probs":
            return float(sum(mpmath.exp(a) * (a - b) for a, b in zip(P, Q) if a > -mpmath.inf))
        la = mpmath.log(sum(mpmath.exp(a) for a in P if a > -mpmath.inf))
        lb = mpmath.log(sum(mpmath.exp(b) for b in Q if b > -mpmath.inf))
        return float(sum(mpmath.exp(a - la) * (a - la - b + lb) for a, b in zip(P, Q) if a > -mpmath.inf))


@functools.cache
def _case(kind: str, eps: float, dtype: str) -> tuple[np.ndarray, np.ndarray, list[float]]:
    pq = _rows(kind, eps, dtype)
    return pq[:, 0], pq[:, 1], [_truth(pq[r, 0], pq[r, 1], kind) for r in range(pq.shape[0])]


def _run(path: str, p: np.ndarray, q: np.ndarray, kind: str) -> np.ndarray:
    big = -(-CHUNK_MIN // p.size) * 2  # copies of the rows: past the numba and tile thresholds
    if path in ("np_kernel", "t_tiles"):
        p, q = np.tile(p, (big, 1)), np.tile(q, (big, 1))
    if path.startswith("np"):
        return np.asarray(klkit.kl_divergence(p, q, kind=kind), dtype=np.float64)
    if path == "array_api_strict":
        xs = pytest.importorskip("array_api_strict")
        out = klkit.kl_divergence(xs.asarray(p), xs.asarray(q), kind=kind)
        return np.from_dlpack(out).astype(np.float64)
    P, Q = torch.from_numpy(p.copy()), torch.from_numpy(q.copy())
    if path == "t_grad":
        P.requires_grad_(True)
        Q.requires_grad_(True)
    return klkit.kl_divergence(P, Q, kind=kind).detach().double().numpy()


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("kind", ["probs", "logits"])
@pytest.mark.parametrize("eps", EPS, ids=lambda e: f"eps{e:g}")
def test_near_equal_rows_against_mpmath(eps, kind, path, dtype):
    p, q, truth = _case(kind, eps, dtype)
    got = _run(path, p, q, kind)
    reps = got.size // len(truth)
    for r, t in enumerate(truth):
        rows = got.reshape(reps, len(truth))[:, r]
        assert np.all(rows == rows[0]), "copies of one row must give one answer"
        if t <= 0:  # float32 rounded p and q to the same numbers (or the literal sum is below 0): KL is 0
            assert rows[0] == 0.0, (r, float(rows[0]), t)
            continue
        assert abs(rows[0] - t) <= TOL[dtype] * t, (r, float(rows[0]), t, abs(rows[0] - t) / t)


@pytest.mark.parametrize("path", ["np_small", "t_small", "t_grad"])
@pytest.mark.parametrize("eps", EPS, ids=lambda e: f"eps{e:g}")
def test_log_probs_within_the_plain_sum_bound(eps, path):
    """log-probabilities: |error| ≤ 1e-12·|KL| + 4u·Σ p|log p − log q| (exp's rounding of p)."""
    with np.errstate(divide="ignore"):
        p, q = (np.log(x) for x in _case("probs", eps, "float64")[:2])
    got = _run(path, p, q, "log_probs")
    for r in range(p.shape[0]):
        t = _truth(p[r], q[r], "log_probs")
        w = np.exp(p[r])
        with np.errstate(invalid="ignore"):
            spread = np.where(w > 0, np.abs(p[r] - q[r]), 0.0)
        bound = 1e-12 * abs(t) + 4 * 2.0**-53 * float(np.sum(w * spread))
        assert abs(got[r] - max(t, 0.0)) <= bound, (got[r], t, bound)


def _mp_gradients(a: np.ndarray, b: np.ndarray, kind: str) -> tuple[np.ndarray, np.ndarray]:
    """∂KL/∂p, ∂KL/∂q at 50 digits: probs log(p/q) + 1 and −p/q; logits p(log p − log q − KL) and q − p."""
    with mpmath.workdps(50):
        A = [mpmath.mpf(float(x)) for x in a]
        B = [mpmath.mpf(float(x)) for x in b]
        if kind == "probs":
            ga = [mpmath.log(x / y) + 1 if x > 0 else 0 for x, y in zip(A, B)]
            gb = [-x / y for x, y in zip(A, B)]
        else:
            la = mpmath.log(sum(mpmath.exp(x) for x in A))
            lb = mpmath.log(sum(mpmath.exp(y) for y in B))
            P = [mpmath.exp(x - la) for x in A]
            Qv = [mpmath.exp(y - lb) for y in B]
            kl = sum(w * (x - la - y + lb) for w, x, y in zip(P, A, B))
            ga = [w * (x - la - y + lb - kl) for w, x, y in zip(P, A, B)]
            gb = [v - w for w, v in zip(P, Qv)]
        return np.array([float(g) for g in ga]), np.array([float(g) for g in gb])


@pytest.mark.parametrize("kind", ["probs", "logits"])
@pytest.mark.parametrize("eps", EPS, ids=lambda e: f"eps{e:g}")
def test_gradients_of_near_equal_rows_against_mpmath(eps, kind):
    """float64 autograd through the near-equal rows: within 1e-12 of the gradient's largest entry."""
    p, q, _ = _case(kind, eps, "float64")
    p, q = p[:1], q[:1]  # the dense row
    P = torch.from_numpy(p.copy()).requires_grad_(True)
    Q = torch.from_numpy(q.copy()).requires_grad_(True)
    klkit.kl_divergence(P, Q, kind=kind).sum().backward()
    ga, gb = _mp_gradients(p[0], q[0], kind)
    for got, want in ((P.grad[0].numpy(), ga), (Q.grad[0].numpy(), gb)):
        assert np.max(np.abs(got - want)) <= 1e-12 * np.max(np.abs(want)), (got, want)
