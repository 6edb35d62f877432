"""``js_divergence`` near P = Q, on every path: identical rows give exactly 0, near-equal rows match the
defining formula at 50 digits (mpmath, on the stored values) to 1e-12 relative, weighted JS included,
and torch gradients match the defining formula's.

Sizes straddle the engine's thresholds (numpy kernels from 2^16 elements, chunks above 2^18, small CPU
tensors up to 2^12 through numpy): JS takes one term function on all of them, so one input has one answer.
Large rows are a short block tiled ``k`` times and divided by ``k`` (stored exactly: ``k`` is a power of 2);
the terms are homogeneous, so the reference is ``k`` times the block's terms on the stored values.
"""

from __future__ import annotations

import math

import mpmath
import numpy as np
import pytest

import klkit

torch = pytest.importorskip("torch")

DIGITS = 50
BLOCK = 48
# (rows, tiles): sizes 2·48 (small), 8·48·256 (> 2^16: the numpy kernels' size), 6·48·1024 (> 2^18: chunks)
SIZES = [(2, 1), (8, 256), (6, 1024)]
WEIGHTS = [None, (0.5, 0.5), (0.3, 0.7), (0.9, 0.1), (1e-3, 1 - 1e-3)]


def _reference(p_block: np.ndarray, q_block: np.ndarray, tiles: int, weights) -> float:
    """Σ w p log(p/m) + (1 − w) q log(q/m), m = w p + (1 − w) q, at 50 digits on the stored values."""
    with mpmath.workdps(DIGITS):
        wp = mpmath.mpf(0.5 if weights is None else weights[0])
        wq = 1 - wp  # the weights are (w, 1 − w)
        total = mpmath.mpf(0)
        for a, b in zip(p_block.tolist(), q_block.tolist(), strict=True):
            a, b = mpmath.mpf(a), mpmath.mpf(b)
            m = wp * a + wq * b
            if a > 0:
                total += wp * a * mpmath.log(a / m)
            if b > 0:
                total += wq * b * mpmath.log(b / m)
        return float(total * tiles)


def _near_pair(rng: np.random.Generator, eps: float, dtype) -> tuple[np.ndarray, np.ndarray]:
    p = rng.dirichlet(np.ones(BLOCK)).astype(dtype)
    q = p * np.exp(eps * rng.standard_normal(BLOCK))
    return p, (q / q.sum()).astype(dtype)


def _rows(blocks: list[np.ndarray], tiles: int) -> np.ndarray:
    return np.stack([np.tile(b, tiles) / tiles for b in blocks])  # /2^k: exact


@pytest.mark.parametrize("backend", ["numpy", "torch"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize(("rows", "tiles"), SIZES)
@pytest.mark.parametrize("weights", WEIGHTS)
def test_near_equal_rows_match_mpmath(backend, dtype, rows, tiles, weights):
    rng = np.random.default_rng(rows * 1000 + tiles)
    eps = [1e-2, 1e-4, 1e-6, 1e-8, 1e-10, 1e-12] if dtype == np.float64 else [1e-2, 1e-3, 1e-4, 1e-5]
    blocks = [_near_pair(rng, eps[i % len(eps)], dtype) for i in range(rows)]
    P, Q = _rows([b[0] for b in blocks], tiles), _rows([b[1] for b in blocks], tiles)
    if backend == "torch":
        got = klkit.js_divergence(torch.from_numpy(P), torch.from_numpy(Q), weights=weights).numpy()
    else:
        got = np.asarray(klkit.js_divergence(P, Q, weights=weights))
    assert got.dtype == dtype
    # reference on the values as stored (the /tiles division is exact in either dtype)
    ref = np.array(
        [
            _reference(P[i, :BLOCK].astype(np.float64), Q[i, :BLOCK].astype(np.float64), tiles, weights)
            for i in range(rows)
        ]
    )
    assert np.all(ref > 0)
    tol = 1e-12 if dtype == np.float64 else 4e-6  # float32: a few ulps of the float32 result
    np.testing.assert_allclose(got.astype(np.float64), ref, rtol=tol, atol=0)


@pytest.mark.parametrize("backend", ["numpy", "torch"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize(("rows", "tiles"), SIZES)
@pytest.mark.parametrize("kind", ["probs", "log_probs", "logits"])
@pytest.mark.parametrize("weights", [None, (0.3, 0.7)])
def test_identical_rows_are_exactly_zero(backend, dtype, rows, tiles, kind, weights):
    rng = np.random.default_rng(7)
    blocks = [rng.dirichlet(np.full(BLOCK, 0.3)).astype(dtype) for _ in range(rows)]
    for b in blocks[::2]:
        b[:5] = 0  # zeros too (renormalised below)
    P = _rows([b / b.sum(dtype=dtype) for b in blocks], tiles).astype(dtype)
    if kind != "probs":
        with np.errstate(divide="ignore"):
            P = np.log(P)
    X = torch.from_numpy(P) if backend == "torch" else P
    got = klkit.js_divergence(X, X.clone() if backend == "torch" else X.copy(), kind=kind, weights=weights)
    got = got.numpy() if backend == "torch" else np.asarray(got)
    assert got.shape == (rows,)
    assert np.all(got == 0.0), got


@pytest.mark.parametrize("kind", ["probs", "logits"])
def test_near_equal_logits_match_mpmath(kind):
    """From logits the softmax's own rounding (relative 1e-16 of p − q ≈ 1e-3 p) bounds what any method gets."""
    rng = np.random.default_rng(3)
    a = rng.standard_normal((4, BLOCK))
    b = a + 1e-3 * rng.standard_normal((4, BLOCK))
    got = np.asarray(klkit.js_divergence(a, b, kind="logits"))
    with mpmath.workdps(DIGITS):
        refs = []
        for x, y in zip(a, b, strict=True):
            ex = [mpmath.exp(mpmath.mpf(v)) for v in x]
            ey = [mpmath.exp(mpmath.mpf(v)) for v in y]
            sx, sy = mpmath.fsum(ex), mpmath.fsum(ey)
            ps, qs = [e / sx for e in ex], [e / sy for e in ey]
            refs.append(
                float(
                    mpmath.fsum(
                        u * mpmath.log(2 * u / (u + v)) / 2 + v * mpmath.log(2 * v / (u + v)) / 2
                        for u, v in zip(ps, qs)
                    )
                )
            )
    np.testing.assert_allclose(got, refs, rtol=1e-11, atol=0)


@pytest.mark.parametrize("weights", [None, (0.3, 0.7), (0.999, 0.001)])
def test_disjoint_supports_reach_the_entropy_of_the_weights(weights):
    w = (0.5, 0.5) if weights is None else weights
    got = float(klkit.js_divergence([0.25, 0.75, 0.0, 0.0], [0.0, 0.0, 0.6, 0.4], weights=weights))
    bound = -sum(x * math.log(x) for x in w)
    assert abs(got - bound) <= 4e-16 * bound


@pytest.mark.parametrize("weights", [None, (0.3, 0.7)])
@pytest.mark.parametrize("eps", [1e-1, 1e-4, 1e-7])
@pytest.mark.parametrize("kind", ["probs", "logits"])
def test_gradient_matches_the_defining_formula(weights, eps, kind):
    """Autograd through klkit against autograd through the textbook formula (float64, full support),
    on the tangent space of the simplex for probabilities; and gradcheck."""
    rng = np.random.default_rng(11)
    p0 = rng.dirichlet(np.ones(10), size=3)
    q0 = p0 * np.exp(eps * rng.standard_normal((3, 10)))
    q0 /= q0.sum(-1, keepdims=True)
    if kind == "logits":
        p0, q0 = np.log(p0), np.log(q0)
    wp, wq = (0.5, 0.5) if weights is None else weights

    def textbook(a, b):
        pa, pb = (a.softmax(-1), b.softmax(-1)) if kind == "logits" else (a, b)
        m = wp * pa + wq * pb
        return (wp * pa * (pa / m).log() + wq * pb * (pb / m).log()).sum(-1)

    grads = []
    for fn in (lambda a, b: klkit.js_divergence(a, b, kind=kind, weights=weights), textbook):
        a = torch.tensor(p0, requires_grad=True)
        b = torch.tensor(q0, requires_grad=True)
        fn(a, b).sum().backward()
        grads.append((a.grad, b.grad))  # the terms are the textbook ones off the simplex too: no projection
    scale = max(float(grads[1][0].abs().max()), 1e-300)
    for got, want in zip(grads[0], grads[1], strict=True):
        torch.testing.assert_close(got, want, rtol=1e-6, atol=1e-7 * scale)
    a = torch.tensor(p0, requires_grad=True)
    b = torch.tensor(q0, requires_grad=True)
    assert torch.autograd.gradcheck(
        lambda x, y: klkit.js_divergence(x, y, kind=kind, weights=weights, validate=False), (a, b)
    )


def test_float32_gradient_is_not_zeroed_near_equal_rows():
    """Rounding can make a row's sum land a hair off; the clamp must keep the unclamped gradient."""
    rng = np.random.default_rng(5)
    p = rng.dirichlet(np.ones(20), size=2000)
    q = p * np.exp(1e-4 * rng.standard_normal(p.shape))
    q /= q.sum(-1, keepdims=True)
    a = torch.tensor(p, dtype=torch.float32, requires_grad=True)
    b = torch.tensor(q, dtype=torch.float32)
    klkit.js_divergence(a, b).sum().backward()
    g = a.grad - a.grad.mean(-1, keepdim=True)
    assert int((g.abs().amax(-1) == 0).sum()) == 0


@pytest.mark.parametrize("weights", [None, (0.3, 0.7)])
def test_one_answer_across_buffer_reuse_autograd_and_array_api(weights):
    """numpy and torch outside autograd reuse buffers; autograd and other libraries do not: same values,
    inputs untouched. Rows mix near-equal, far (|p − q| > ½(p + q)), one-sided zeros and p = q = 0."""
    strict = pytest.importorskip("array_api_strict")
    rng = np.random.default_rng(9)
    p = rng.dirichlet(np.full(30, 0.5), size=8)
    q = p * np.exp(np.array([1e-8, 1e-3, 0.3, 1.0, 2.0, 3.0, 0.1, 5.0])[:, None] * rng.standard_normal((8, 30)))
    p[::3, :4] = 0.0
    q[::2, 2:6] = 0.0
    p, q = p / p.sum(-1, keepdims=True), q / q.sum(-1, keepdims=True)
    p0, q0 = p.copy(), q.copy()
    got = np.asarray(klkit.js_divergence(p, q, weights=weights))
    assert np.array_equal(p, p0) and np.array_equal(q, q0)
    tp, tq = torch.tensor(p), torch.tensor(q)
    no_grad = klkit.js_divergence(tp, tq, weights=weights).numpy()
    assert np.array_equal(tp.numpy(), p0) and np.array_equal(tq.numpy(), q0)
    a = torch.tensor(p, requires_grad=True)
    with_grad = klkit.js_divergence(a, torch.tensor(q), weights=weights).detach().numpy()
    other = np.asarray(klkit.js_divergence(strict.asarray(p), strict.asarray(q), weights=weights))
    ref = np.array([_reference(x, y, 1, weights) for x, y in zip(p, q, strict=True)])
    np.testing.assert_allclose(got, ref, rtol=1e-14, atol=0)
    for value in (no_grad, with_grad, other):
        np.testing.assert_allclose(value, got, rtol=1e-15, atol=0)
