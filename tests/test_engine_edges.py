"""The engine at the edges of float64, on every path, against mpmath and float64 references.

- KL with p/q near the float64 limit (q subnormal or near the smallest normal): every path of the
  front door (numpy small and kernels, float32, small CPU tensors, torch tiles, autograd, logits
  with a gap of ~700, array-API) against mpmath on the exact stored values.
- Logits whose probability underflows to 0 beside a masked (−inf) logit of the other distribution:
  outside the support (p = 0 in the working dtype), so values and gradients are finite and equal
  the float64 reference with the masked entries removed (KL, cross-entropy, entropy, JS; float32,
  bfloat16, float16; the plain, generic and fused torch paths and the numba kernels).
- :func:`klkit.normalize` of weights whose plain sum overflows, every backend and dtype.
- Gradients of clamped values near p = q are those of the unclamped expression.
"""

from __future__ import annotations

import math

import mpmath
import numpy as np
import pytest

import klkit

torch = pytest.importorskip("torch")

TINY = 2.2250738585072014e-308
# q's first entry: subnormal, smallest normal, and around 2^996 (the splitting limit) below 1/2
Q0 = (5e-324, 1e-320, TINY, 2.3e-308, 1e-305, 7.4e-301, 7.5e-301, 1e-300, 3e-299)
ROWS_LARGE = 40_000  # (rows, 2) ≥ 65536 elements: the numba kernels


def _mp_kl(p: np.ndarray, q: np.ndarray) -> float:
    """Σ p log(p/q) over the exact stored values, 0 where p = 0, in 60 digits."""
    with mpmath.workdps(60):
        total = mpmath.mpf(0)
        for pi, qi in zip(p.tolist(), q.tolist(), strict=True):
            if pi > 0:
                total += mpmath.mpf(pi) * mpmath.log(mpmath.mpf(pi) / mpmath.mpf(qi))
        return float(total)


def _pair(q0: float) -> tuple[np.ndarray, np.ndarray]:
    return np.array([0.5, 0.5]), np.array([q0, 1.0 - q0])


@pytest.mark.parametrize("q0", Q0)
def test_kl_near_the_float64_limit_every_numpy_path(q0: float) -> None:
    p, q = _pair(q0)
    ref = _mp_kl(p, q)
    small = klkit.kl_divergence(p, q)
    large = klkit.kl_divergence(np.tile(p, (ROWS_LARGE, 1)), np.tile(q, (ROWS_LARGE, 1)))
    assert small == pytest.approx(ref, rel=1e-14)
    np.testing.assert_allclose(large, ref, rtol=1e-14)
    assert float(klkit.renyi_divergence(p, q, alpha=1)) == pytest.approx(ref, rel=1e-14)
    assert float(klkit.f_divergence(p, q, "kl")) == pytest.approx(ref, rel=1e-14)


@pytest.mark.parametrize("q0", Q0)
def test_kl_near_the_float64_limit_every_torch_path(q0: float) -> None:
    p, q = _pair(q0)
    ref = _mp_kl(p, q)
    tp, tq = torch.tensor(p), torch.tensor(q)
    assert float(klkit.kl_divergence(tp, tq)) == pytest.approx(ref, rel=1e-14)  # small: numpy kernels
    tiles = klkit.kl_divergence(tp.repeat(4096, 1), tq.repeat(4096, 1))  # torch tiles
    np.testing.assert_allclose(tiles.numpy(), ref, rtol=1e-14)
    leaf = tp.clone().requires_grad_(True)
    value = klkit.kl_divergence(leaf, tq)  # autograd: the generic path
    assert float(value.detach()) == pytest.approx(ref, rel=1e-14)
    (grad,) = torch.autograd.grad(value, leaf)
    with mpmath.workdps(40):  # ∂/∂p_i Σ p log(p/q) = log(p_i/q_i) + 1
        want = [float(mpmath.log(mpmath.mpf(a) / mpmath.mpf(b)) + 1) for a, b in zip(p, q, strict=True)]
    np.testing.assert_allclose(grad.numpy(), want, rtol=1e-14)


def test_kl_ratio_overflowing_float64_and_unvalidated_big_q() -> None:
    # p/q above the largest float: 1 / 5e-324 overflows to inf
    p, q = np.array([1.0, 0.0]), np.array([5e-324, 1.0])
    assert klkit.kl_divergence(p, q) == pytest.approx(_mp_kl(p, q), rel=1e-14)
    # q (and p) above 2^996 with validate=False: the literal sum, finite (no NaN from the splitting)
    p, q = np.array([3e299, 1e300]), np.array([1e300, 3e299])
    for P, Q in ((p, q), (np.tile(p, (ROWS_LARGE, 1)), np.tile(q, (ROWS_LARGE, 1)))):
        got = klkit.kl_divergence(P, Q, validate=False)
        np.testing.assert_allclose(got, _mp_kl(p, q), rtol=1e-14)


def test_kl_near_the_float32_limit() -> None:
    p = np.array([0.5, 0.5], dtype=np.float32)
    q = np.array([1e-45, 1.0], dtype=np.float32)  # subnormal float32 (stored as 1.4e-45)
    ref = _mp_kl(p.astype(np.float64), q.astype(np.float64))
    for P, Q in ((p, q), (np.tile(p, (ROWS_LARGE, 1)), np.tile(q, (ROWS_LARGE, 1)))):
        got = klkit.kl_divergence(P, Q)
        assert got.dtype == np.float32
        np.testing.assert_allclose(got, ref, rtol=1e-6)


def test_softmax_with_a_logit_gap_of_700_as_probs_and_as_logits() -> None:
    lp, lq = np.array([0.0, 0.0]), np.array([-700.0, 0.0])
    with mpmath.workdps(60):
        zq = mpmath.log(mpmath.exp(-700) + 1)
        ref = float(mpmath.mpf(0.5) * (mpmath.log(0.5) - (-700 - zq)) + mpmath.mpf(0.5) * (mpmath.log(0.5) + zq))
    q = np.exp(lq - np.logaddexp.reduce(lq))  # float64 softmax: q[0] ≈ 9.9e-305
    assert klkit.kl_divergence([0.5, 0.5], q) == pytest.approx(_mp_kl(np.array([0.5, 0.5]), q), rel=1e-14)
    assert klkit.kl_divergence(lp, lq, kind="logits") == pytest.approx(ref, rel=1e-14)
    big = klkit.kl_divergence(np.tile(lp, (ROWS_LARGE, 1)), np.tile(lq, (ROWS_LARGE, 1)), kind="logits")
    np.testing.assert_allclose(big, ref, rtol=1e-14)
    for a in (torch.tensor(lp), torch.tensor(lp).repeat(4096, 1), torch.tensor(lp).requires_grad_(True)):
        b = torch.tensor(lq).expand_as(a)
        np.testing.assert_allclose(klkit.kl_divergence(a, b, kind="logits").detach().numpy(), ref, rtol=1e-14)


# ---------------------------------------------------------------------------------------------
# Logits that underflow beside masked logits: the support rule
# ---------------------------------------------------------------------------------------------

MEASURES = ("kl_divergence", "cross_entropy", "entropy", "js_divergence")
HALF_TOL = {torch.float32: 2e-6, torch.bfloat16: 2e-2, torch.float16: 2e-3}


def _masked_logits(dtype: torch.dtype, rows: int = 6, n: int = 9) -> tuple[torch.Tensor, torch.Tensor, np.ndarray]:
    g = torch.Generator().manual_seed(3)
    policy = torch.randn(rows, n, generator=g, dtype=torch.float64) * 3
    ref = torch.randn(rows, n, generator=g, dtype=torch.float64) * 3
    masked = torch.rand(rows, n, generator=g) < 0.3
    masked[:, 0] = False  # at least one outcome left in each row
    policy = policy.masked_fill(masked, -1e9).to(dtype)  # float16: -1e9 is -inf
    ref = ref.masked_fill(masked, -math.inf).to(dtype)
    return policy, ref, masked.numpy()


def _reference(measure: str, a: np.ndarray, b: np.ndarray, keep: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
    """(value, ∂/∂a, ∂/∂b) of one row in float64 torch on the kept outcomes only (masked: gradient 0)."""
    za = torch.tensor(a[keep], dtype=torch.float64, requires_grad=True)
    zb = torch.tensor(b[keep], dtype=torch.float64, requires_grad=True)
    lp, lq = torch.log_softmax(za, -1), torch.log_softmax(zb, -1)
    p, q = lp.exp(), lq.exp()
    if measure == "kl_divergence":
        v = (p * (lp - lq)).sum()
    elif measure == "cross_entropy":
        v = -(p * lq).sum()
    elif measure == "entropy":
        v = -(p * lp).sum() + 0.0 * zb.sum()
    else:
        lm = torch.logaddexp(lp, lq) - math.log(2.0)
        v = 0.5 * (p * (lp - lm)).sum() + 0.5 * (q * (lq - lm)).sum()
    ga, gb = torch.autograd.grad(v, (za, zb))
    full_a, full_b = np.zeros(a.shape), np.zeros(b.shape)
    full_a[keep], full_b[keep] = ga.numpy(), gb.numpy()
    return float(v), full_a, full_b


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float16], ids=str)
@pytest.mark.parametrize("measure", MEASURES)
def test_masked_logits_under_autograd_are_finite_and_exact(measure: str, dtype: torch.dtype) -> None:
    policy, ref, masked = _masked_logits(dtype)
    a, b = policy.clone().requires_grad_(True), ref.clone().requires_grad_(True)
    fn = getattr(klkit, measure)
    value = fn(a, kind="logits") if measure == "entropy" else fn(a, b, kind="logits")
    with torch.no_grad():
        plain = fn(policy, kind="logits") if measure == "entropy" else fn(policy, ref, kind="logits")
    grads = torch.autograd.grad(value.sum(), (a, b), allow_unused=True)
    tol = HALF_TOL[dtype]
    for r in range(policy.shape[0]):
        want, want_a, want_b = _reference(measure, policy[r].double().numpy(), ref[r].double().numpy(), ~masked[r])
        assert float(value[r]) == pytest.approx(want, rel=tol, abs=tol)
        assert float(plain[r]) == pytest.approx(want, rel=tol, abs=tol)
        np.testing.assert_allclose(grads[0][r].double().numpy(), want_a, rtol=tol, atol=tol)
        if measure != "entropy":
            np.testing.assert_allclose(grads[1][r].double().numpy(), want_b, rtol=tol, atol=tol)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float16], ids=str)
def test_masked_logits_fused_functions(dtype: torch.dtype) -> None:
    """The fused autograd Functions (large inputs under autograd) keep the same rule."""
    from klkit._engine import logits_cross_entropy_soft, logits_entropy, logits_kl

    policy, ref, masked = _masked_logits(dtype)
    tol = HALF_TOL[dtype]
    for measure, fn in (("kl_divergence", logits_kl), ("cross_entropy", logits_cross_entropy_soft)):
        a, b = policy.clone().requires_grad_(True), ref.clone().requires_grad_(True)
        value = fn(a, b)
        ga, gb = torch.autograd.grad(value.sum(), (a, b))
        for r in range(policy.shape[0]):
            want, want_a, want_b = _reference(measure, policy[r].double().numpy(), ref[r].double().numpy(), ~masked[r])
            assert float(value[r]) == pytest.approx(want, rel=tol, abs=tol)
            np.testing.assert_allclose(ga[r].double().numpy(), want_a, rtol=tol, atol=tol)
            np.testing.assert_allclose(gb[r].double().numpy(), want_b, rtol=tol, atol=tol)
    a = policy.clone().requires_grad_(True)
    value = logits_entropy(a)
    (ga,) = torch.autograd.grad(value.sum(), (a,))
    for r in range(policy.shape[0]):
        want, want_a, _ = _reference("entropy", policy[r].double().numpy(), ref[r].double().numpy(), ~masked[r])
        assert float(value[r]) == pytest.approx(want, rel=tol, abs=tol)
        np.testing.assert_allclose(ga[r].double().numpy(), want_a, rtol=tol, atol=tol)


@pytest.mark.parametrize("measure", ["kl_divergence", "cross_entropy"])
def test_underflowing_logits_beside_masked_ones_every_path(measure: str) -> None:
    """Logits [0, -1000] against [0, -inf]: p underflows to 0 where q is masked, so the answer is
    that of [1] against [1] (KL 0, cross-entropy 0), never +inf, on every path."""
    a, b = np.array([0.0, -1000.0]), np.array([0.0, -math.inf])
    fn = getattr(klkit, measure)
    cases = {
        "numpy small": (a, b),
        "numpy kernels": (np.tile(a, (ROWS_LARGE, 1)), np.tile(b, (ROWS_LARGE, 1))),
        "torch tiles": (torch.tensor(a).repeat(4096, 1), torch.tensor(b).repeat(4096, 1)),
        "torch small": (torch.tensor(a), torch.tensor(b)),
        "torch autograd": (torch.tensor(a).requires_grad_(True), torch.tensor(b)),
        "torch float32": (torch.tensor(a, dtype=torch.float32), torch.tensor(b, dtype=torch.float32)),
    }
    for name, (p, q) in cases.items():
        got = np.asarray(fn(p, q, kind="logits").detach() if isinstance(p, torch.Tensor) else fn(p, q, kind="logits"))
        np.testing.assert_array_equal(got, 0.0, err_msg=name)


# ---------------------------------------------------------------------------------------------
# normalize
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("make", "big"),
    [
        (lambda v: torch.tensor(v, dtype=torch.float16), 40000.0),
        (lambda v: torch.tensor(v, dtype=torch.bfloat16), 3e38),
        (lambda v: torch.tensor(v, dtype=torch.float32), 3e38),
        (lambda v: torch.tensor(v, dtype=torch.float64), 1e308),
        (lambda v: np.array(v, dtype=np.float32), 3e38),
        (lambda v: np.array(v, dtype=np.float64), 1e308),
    ],
    ids=["torch-f16", "torch-bf16", "torch-f32", "torch-f64", "numpy-f32", "numpy-f64"],
)
def test_normalize_weights_whose_sum_overflows(make, big: float) -> None:
    x = make([[big, big], [big, big / 4]])
    out = klkit.normalize(x)
    got = np.asarray(out.float() if isinstance(out, torch.Tensor) else out, dtype=np.float64)
    np.testing.assert_allclose(got, [[0.5, 0.5], [0.8, 0.2]], rtol=1e-2 if "16" in str(out.dtype) else 1e-6)
    assert out.dtype == x.dtype


def test_normalize_array_api_strict_near_the_float64_limit() -> None:
    xs = pytest.importorskip("array_api_strict")
    out = klkit.normalize(xs.asarray([1e308, 1e308, 1e308]))
    np.testing.assert_allclose(np.asarray(out), [1 / 3] * 3, rtol=1e-15)


# ---------------------------------------------------------------------------------------------
# Clamps keep the gradient of the unclamped expression
# ---------------------------------------------------------------------------------------------


def test_clamped_kl_near_p_equal_q_keeps_its_gradient_on_every_torch_path() -> None:
    """Near p = q rounding pushes KL below 0 on some rows; klkit returns 0 there, but the gradient
    must be the unclamped one, p (log p − log q − KL) ≈ p (log p − log q) (mpmath), not 0."""
    from klkit._engine import logits_kl

    g = torch.Generator().manual_seed(5)
    za = torch.randn(64, 12, generator=g, dtype=torch.float64)
    zb = za + 1e-9 * torch.randn(64, 12, generator=g, dtype=torch.float64)
    p, q = torch.softmax(za, -1), torch.softmax(zb, -1)
    unclamped = (p * (p.log() - q.log())).sum(-1)  # the plain float64 sum, before any clamp
    assert int((unclamped < 0).sum()) >= 10, "the case needs rows that rounding pushes below 0"
    want = np.empty(za.shape)
    with mpmath.workdps(50):
        for r in range(za.shape[0]):
            a = [mpmath.mpf(x) for x in za[r].tolist()]
            b = [mpmath.mpf(x) for x in zb[r].tolist()]
            la, lb = mpmath.log(sum(mpmath.exp(x) for x in a)), mpmath.log(sum(mpmath.exp(x) for x in b))
            lp = [x - la for x in a]
            lq = [x - lb for x in b]
            kl = sum(mpmath.exp(x) * (x - y) for x, y in zip(lp, lq, strict=True))
            want[r] = [float(mpmath.exp(x) * (x - y - kl)) for x, y in zip(lp, lq, strict=True)]
    paths = {
        "logits (torch's composition)": lambda a: klkit.kl_divergence(a, zb, kind="logits"),
        "probs (generic)": lambda a: klkit.kl_divergence(torch.softmax(a, -1), torch.softmax(zb, -1)),
        "fused Function": lambda a: logits_kl(a, zb),
    }
    for name, f in paths.items():
        a = za.clone().requires_grad_(True)
        value = f(a)
        assert bool((value >= 0).all()), name
        (grad,) = torch.autograd.grad(value.sum(), a)
        # rounding of log p − log q: ~1e-16 absolute; a zeroed gradient (values ~1e-10) fails
        np.testing.assert_allclose(grad.numpy(), want, rtol=1e-5, atol=2e-16, err_msg=name)


# ---------------------------------------------------------------------------------------------
# Jensen–Shannon near p = q
# ---------------------------------------------------------------------------------------------


def _mp_js(p: np.ndarray, q: np.ndarray) -> float:
    with mpmath.workdps(60):
        total = mpmath.mpf(0)
        for a, b in zip(map(mpmath.mpf, p.tolist()), map(mpmath.mpf, q.tolist()), strict=True):
            total += (a * mpmath.log(2 * a / (a + b)) if a > 0 else 0) + (
                b * mpmath.log(2 * b / (a + b)) if b > 0 else 0
            )
        return float(total / 2)


@pytest.mark.parametrize("eps", [1e-3, 1e-6, 1e-9])
def test_js_near_p_equal_q_against_mpmath(eps: float) -> None:
    rng = np.random.default_rng(11)
    p = rng.dirichlet(np.ones(16), size=40)
    q = p * (1 + eps * rng.normal(size=p.shape))
    q /= q.sum(-1, keepdims=True)
    want = np.array([_mp_js(a, b) for a, b in zip(p, q, strict=True)])
    for got in (klkit.js_divergence(p, q), klkit.js_divergence(torch.tensor(p), torch.tensor(q)).numpy()):
        np.testing.assert_allclose(got, want, rtol=1e-12)


def test_js_of_identical_rows_is_exactly_zero() -> None:
    rng = np.random.default_rng(12)
    p = rng.dirichlet(np.ones(20), size=200)
    assert np.all(klkit.js_divergence(p, p) == 0.0)
    assert np.all(klkit.js_distance(p, p) == 0.0)
    t = torch.tensor(p, requires_grad=True)
    value = klkit.js_divergence(t, t.detach())
    assert bool((value == 0).all())
    (grad,) = torch.autograd.grad(value.sum(), t)
    assert bool(grad.isfinite().all())


# ---------------------------------------------------------------------------------------------
# KL near p = q: every path keeps the accuracy of the log ratio
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("eps", [1e-4, 1e-6])
def test_kl_near_p_equal_q_every_path_against_mpmath(eps: float) -> None:
    """Terms are O(ε) and the sum O(ε²): a log ratio off by one rounding of log p (as log p − log q)
    would leave ~1e-16/ε² relative error; each path keeps it to the summation's ~1e-16/ε."""
    rng = np.random.default_rng(13)
    p = rng.dirichlet(np.ones(12), size=30)
    q = p * (1 + eps * rng.normal(size=p.shape))
    q /= q.sum(-1, keepdims=True)
    want = np.array([_mp_kl(a, b) for a, b in zip(p, q, strict=True)])
    tp, tq = torch.tensor(p), torch.tensor(q)
    paths = {
        "numpy small": klkit.kl_divergence(p, q),
        "numpy kernels": klkit.kl_divergence(np.tile(p, (3000, 1)), np.tile(q, (3000, 1)))[:30],
        "torch small": klkit.kl_divergence(tp, tq).numpy(),
        "torch tiles": klkit.kl_divergence(tp.repeat(200, 1), tq.repeat(200, 1)).numpy()[:30],
        "torch autograd": klkit.kl_divergence(tp.clone().requires_grad_(True), tq).detach().numpy(),
    }
    for name, got in paths.items():
        np.testing.assert_allclose(got, want, rtol=2e-14 / eps, err_msg=name)
