"""KL's relatives at the edges, against independent truth (mpmath, scipy, closed forms).

* identical rows: every distance (and every divergence of the family) is exactly 0, on every backend;
* P ≈ Q with exact float64 inputs: ≤ 1e-12 relative to 50-digit mpmath on the stored values;
* ratios near the float64 limit: finite and right;
* gradients near P = Q in float32: nonzero where the float64 gradient is, and close to it (a plain clamp
  zeroes ~45% of rows); gradcheck / gradgradcheck in float64; the Hessian at P = Q is the Fisher form;
* the support rule (p > 0 in the working dtype): underflowing p against masked q is the divergence with
  that outcome dropped, for the whole family, and Rényi is continuous into α = 1 there.
"""

from __future__ import annotations

import math

import mpmath
import numpy as np
import pytest
import scipy.special

import klkit

torch = pytest.importorskip("torch")
pytestmark = pytest.mark.usefixtures("torch_one_thread")

DIGITS = 50
SCALE = 2**52
ORDERS = [1e-6, 0.01, 0.25, 0.5, 2.0, 3.0, 10.0, 50.0, 1 - 1e-7, 1 + 1e-7]


def exact_pair(rng: np.random.Generator, n: int, eps: float) -> tuple[np.ndarray, np.ndarray]:
    """p = k/2^52 and q = (k + d)/2^52 with integers summing to 2^52: both sum to exactly 1 as rationals;
    q_i / p_i − 1 is about ε·N(0, 1)."""
    k = rng.multinomial(SCALE - n * (SCALE // (8 * n)), np.ones(n) / n) + SCALE // (8 * n)
    d = np.round(k * eps * rng.standard_normal(n)).astype(np.int64)
    d[-1] -= d.sum()
    assert k.sum() == SCALE and (k + d).sum() == SCALE and (k + d > 0).all()
    return k / SCALE, (k + d) / SCALE  # exact: every k < 2^52


def _mp(values) -> list:
    return [mpmath.mpf(float(v)) for v in values]


def mp_reference(name: str, p, q, alpha: float | None = None) -> float:
    """The defining formula at 50 digits on the stored values (0·anything = 0)."""
    with mpmath.workdps(DIGITS):
        P, Q = _mp(p), _mp(q)
        if name == "chi2":
            return float(sum((a - b) ** 2 / b for a, b in zip(P, Q, strict=True)))
        if name == "js":
            total = 0
            for a, b in zip(P, Q, strict=True):
                m = (a + b) / 2
                total += (a * mpmath.log(a / m) if a else 0) + (b * mpmath.log(b / m) if b else 0)
            return float(total / 2)
        if name == "hellinger2":
            return float(sum((mpmath.sqrt(a) - mpmath.sqrt(b)) ** 2 for a, b in zip(P, Q, strict=True)) / 2)
        if name == "tv":
            return float(sum(abs(a - b) for a, b in zip(P, Q, strict=True)) / 2)
        if name == "kl":
            return float(sum(a * mpmath.log(a / b) for a, b in zip(P, Q, strict=True) if a))
        if name == "renyi":
            s = mpmath.mpf(alpha)
            return float(mpmath.log(sum(a**s * b ** (1 - s) for a, b in zip(P, Q, strict=True) if a)) / (s - 1))
    raise AssertionError(name)


def measures(p, q, **kw):
    """Every divergence / distance of the family on (p, q), by name."""
    out = {
        "js_distance": klkit.js_distance(p, q, **kw),
        "hellinger_distance": klkit.hellinger_distance(p, q, **kw),
        "total_variation": klkit.total_variation(p, q, **kw),
    }
    for f in ("kl", "reverse_kl", "tv", "hellinger", "chi2", "js"):
        out[f"f_{f}"] = klkit.f_divergence(p, q, f, **kw)
    for alpha in (0.0, 0.5, 1.0, 2.0, math.inf):
        out[f"renyi_{alpha}"] = klkit.renyi_divergence(p, q, alpha, **kw)
    return out


def _numpy(x, quiet: bool = False) -> np.ndarray:
    """x as float64 numpy; ``quiet``: dask's deferred numpy warnings off (KL's −inf − −inf on masked entries
    is computed lazily, outside KL's own errstate)."""
    if isinstance(x, torch.Tensor):
        return x.detach().double().cpu().numpy()
    if hasattr(x, "compute"):  # dask
        with np.errstate(invalid="ignore" if quiet else "raise"):
            x = x.compute()
    try:
        return np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError, RuntimeError):
        return np.from_dlpack(x).astype(np.float64)


def _array_api_strict(x):
    xs = pytest.importorskip("array_api_strict")
    return xs.asarray(x)


def _dask(x):
    da = pytest.importorskip("dask.array")
    return da.from_array(x, chunks=(500, x.shape[-1]))


# ---------------------------------------------------------------------------
# Identical rows
# ---------------------------------------------------------------------------

BACKENDS = {
    "np32": lambda x: x.astype(np.float32),
    "np64": lambda x: x,
    "t16": lambda x: torch.tensor(x, dtype=torch.float16),
    "t32": lambda x: torch.tensor(x, dtype=torch.float32),
    "t64": lambda x: torch.tensor(x, dtype=torch.float64),
    "array_api_strict": _array_api_strict,
    "dask": _dask,
}


def _random_rows(seed: int, rows: int = 2000, k: int = 9) -> np.ndarray:
    """Dirichlet rows of mixed concentration, a third with zeros; as logits (−inf for the zeros)."""
    rng = np.random.default_rng(seed)
    p = rng.dirichlet(np.full(k, 0.3), size=rows) + rng.dirichlet(np.full(k, 5.0), size=rows)
    p[rows // 3 :: 3, rng.integers(0, k)] = 0.0
    with np.errstate(divide="ignore"):
        return np.log(p / p.sum(-1, keepdims=True))


@pytest.mark.parametrize("kind", ["probs", "log_probs", "logits"])
@pytest.mark.parametrize("backend", list(BACKENDS))
def test_every_distance_and_divergence_is_exactly_zero_on_identical_rows(backend, kind):
    logits = _random_rows(1)
    x = {"logits": logits + 3.0, "log_probs": logits, "probs": np.exp(logits)}[kind]
    if kind == "probs":
        x = x / x.sum(-1, keepdims=True)
    p = BACKENDS[backend](x)
    q = BACKENDS[backend](x.copy())
    for name, value in measures(p, q, kind=kind).items():
        got = _numpy(value, quiet=name in ("f_kl", "f_reverse_kl", "renyi_1.0"))
        assert got.shape == (len(x),)
        assert (got == 0).all(), f"{name}: {np.count_nonzero(got)} of {len(x)} rows nonzero (max {got.max():.3g})"


def test_js_distance_keepdims_is_scipys():
    rng = np.random.default_rng(3)
    p, q = rng.dirichlet(np.ones(5), size=(4, 3)), rng.dirichlet(np.ones(5), size=(4, 3))
    for axis in (0, 1, 2, -1):
        pa, qa = np.moveaxis(p, -1, axis), np.moveaxis(q, -1, axis)
        ref = scipy.spatial.distance.jensenshannon(pa, qa, axis=axis, keepdims=True, base=2)
        got = klkit.js_distance(pa, qa, axis=axis, keepdims=True, base=2)
        assert got.shape == ref.shape
        np.testing.assert_allclose(got, ref, rtol=1e-12)
    got = klkit.js_distance(torch.tensor(p), torch.tensor(p), keepdims=True)
    assert tuple(got.shape) == (4, 3, 1) and (got == 0).all()
    assert np.shape(klkit.js_distance(p[0, 0], q[0, 0], keepdims=True)) == (1,)
    with pytest.raises(TypeError, match="keepdims"):
        klkit.js_distance(p, q, keepdims=1)


# ---------------------------------------------------------------------------
# P ≈ Q, exact inputs: against mpmath
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("library", ["numpy", "torch"])
@pytest.mark.parametrize("eps", [1e-3, 1e-6, 1e-9], ids=lambda e: f"eps{e:g}")
def test_near_equal_rows_match_mpmath_to_1e_12(eps, library):
    rng = np.random.default_rng(int(-math.log10(eps)))
    worst: dict[str, float] = {}
    for n in (2, 5, 40):
        for _ in range(4):
            p, q = exact_pair(rng, n, eps)
            tp, tq = (torch.tensor(p), torch.tensor(q)) if library == "torch" else (p, q)
            got = {
                "js": float(klkit.js_distance(tp, tq)) ** 2,
                "f_js": float(klkit.f_divergence(tp, tq, "js")),
                "chi2": float(klkit.f_divergence(tp, tq, "chi2")),
                "hellinger2": float(klkit.f_divergence(tp, tq, "hellinger")),
                "tv": float(klkit.total_variation(tp, tq)),
            }
            for alpha in ORDERS:
                got[f"renyi_{alpha}"] = float(klkit.renyi_divergence(tp, tq, alpha))
            for name, value in got.items():
                ref_name = "js" if name == "f_js" else name
                alpha = float(name.split("_")[1]) if name.startswith("renyi") else None
                ref = mp_reference("renyi" if alpha is not None else ref_name, p, q, alpha)
                assert ref > 0
                worst[name] = max(worst.get(name, 0.0), abs(value - ref) / ref)
    bad = {k: f"{v:.2e}" for k, v in worst.items() if v > 1e-12}
    assert not bad, bad
    # the JS distance squared: sqrt then square costs ≤ 2 ulp; everything else is its own evaluation


def _mp_mutual_information(table: np.ndarray) -> float:
    with mpmath.workdps(DIGITS):
        t = [[mpmath.mpf(float(v)) for v in row] for row in table]
        px = [sum(row) for row in t]
        py = [sum(row[j] for row in t) for j in range(len(t[0]))]
        return float(
            sum(v * mpmath.log(v / (px[i] * py[j])) for i, row in enumerate(t) for j, v in enumerate(row) if v)
        )


@pytest.mark.parametrize("library", ["numpy", "torch"])
@pytest.mark.parametrize("eps", [1e-1, 1e-4, 1e-7], ids=lambda e: f"eps{e:g}")
def test_mutual_information_near_independence_matches_mpmath_to_1e_12(eps, library):
    # tables p(x)p(y)(1 + εz) as integers over 2^52 (exact, summing to 1): I ~ ε², and the marginals' own
    # rounding (~1e-16) is far larger than the log-ratios for small ε; a sum of log p − log p(x) − log p(y)
    # terms is off by up to 10% at ε = 1e-7
    rng = np.random.default_rng(int(-math.log10(eps)))
    for shape in ((2, 3), (4, 5), (7, 3)):
        t = np.outer(rng.dirichlet(np.ones(shape[0])), rng.dirichlet(np.ones(shape[1])))
        t *= 1 + eps * rng.standard_normal(shape)
        k = np.floor(t / t.sum() * SCALE).astype(np.int64)
        k[0, 0] += SCALE - k.sum()
        table = k / SCALE
        got = float(klkit.mutual_information(torch.tensor(table) if library == "torch" else table))
        assert got == pytest.approx(_mp_mutual_information(table), rel=1e-12, abs=0)


@pytest.mark.parametrize("library", ["numpy", "torch"])
def test_ratios_near_the_float64_limit(library):
    tiny = 2.2250738585072014e-308
    cases = [([0.5, 0.5], [tiny, 1 - tiny]), ([1 - 4e-300, 4e-300], [1e-300, 1 - 1e-300]), ([0.7, 0.3], [0.3, 0.7])]
    for p, q in cases:
        tp, tq = (
            (torch.tensor(p, dtype=torch.float64), torch.tensor(q, dtype=torch.float64))
            if library == "torch"
            else (p, q)
        )
        for alpha in (0.5, 2.0, 3.0):
            ref = mp_reference("renyi", p, q, alpha)
            assert float(klkit.renyi_divergence(tp, tq, alpha)) == pytest.approx(ref, rel=1e-12, abs=0)
        assert float(klkit.f_divergence(tp, tq, "chi2")) == pytest.approx(mp_reference("chi2", p, q), rel=1e-12, abs=0)
        assert float(klkit.js_distance(tp, tq)) ** 2 == pytest.approx(mp_reference("js", p, q), rel=1e-12, abs=0)
        h2 = float(klkit.hellinger_distance(tp, tq)) ** 2
        assert h2 == pytest.approx(mp_reference("hellinger2", p, q), rel=1e-12, abs=0)


# ---------------------------------------------------------------------------
# Gradients near P = Q
# ---------------------------------------------------------------------------

NEAR_ROWS = 4000


def _near_logits(seed: int, rows: int = NEAR_ROWS, k: int = 8, scale: float = 1e-4):
    g = torch.Generator().manual_seed(seed)
    a = torch.randn(rows, k, generator=g, dtype=torch.float64)
    return a, a + scale * torch.randn(rows, k, generator=g, dtype=torch.float64)


def _joint(a, b):
    """A joint table near independence: p(x, y) ∝ exp(a_x + b_y + c_xy) with small c, as logits (rows, k, k)."""
    k = a.shape[-1]
    c = 1e-3 * torch.sin(torch.arange(k * k, dtype=a.dtype).reshape(k, k) + a[:, :1, None])
    return a[:, :, None] + b[:, None, :] + c


GRADIENT_MEASURES = {
    "renyi_0.5": lambda p, q, kind: klkit.renyi_divergence(p, q, 0.5, kind=kind),
    "renyi_2": lambda p, q, kind: klkit.renyi_divergence(p, q, 2.0, kind=kind),
    "renyi_0.999": lambda p, q, kind: klkit.renyi_divergence(p, q, 0.999, kind=kind),
    "chi2": lambda p, q, kind: klkit.f_divergence(p, q, "chi2", kind=kind),
    "f_js": lambda p, q, kind: klkit.f_divergence(p, q, "js", kind=kind),
    "hellinger2": lambda p, q, kind: klkit.f_divergence(p, q, "hellinger", kind=kind),
    "mutual_information": lambda table, _, kind: klkit.mutual_information(table, kind="logits"),
    "conditional_entropy": lambda table, _, kind: klkit.conditional_entropy(table, kind="logits"),
}
JOINT = ("mutual_information", "conditional_entropy")


def _gradient(name, p, q, kind):
    """d/dp of the measure summed over rows; for MI and H(Y|X), d/d(joint table logits) of the table from p, q."""
    p = (_joint(p, q) if name in JOINT else p).detach().requires_grad_(True)
    (g,) = torch.autograd.grad(GRADIENT_MEASURES[name](p, q, kind).sum(), p)
    return g.double().reshape(g.shape[0], -1)


@pytest.mark.parametrize("kind", ["logits", "probs"])
@pytest.mark.parametrize("name", list(GRADIENT_MEASURES))
def test_float32_gradient_near_equal_rows_is_never_zeroed(name, kind):
    if kind == "probs" and name in JOINT:
        pytest.skip("the joint tables are built from logits")
    a, b = _near_logits(7)
    if kind == "probs":
        a, b = torch.softmax(a, -1), torch.softmax(b, -1)
    a32, b32 = a.float(), b.float()
    a64, b64 = a32.double(), b32.double()  # float64 on the float32 values (renormalised for probs: ≤ 1e-7 moved)
    if kind == "probs":
        a32, b32 = a32 / a32.sum(-1, keepdim=True), b32 / b32.sum(-1, keepdim=True)
        a64, b64 = a64 / a64.sum(-1, keepdim=True), b64 / b64.sum(-1, keepdim=True)
    g32 = _gradient(name, a32, b32, kind)
    g64 = _gradient(name, a64, b64, kind)
    nonzero = (g64 != 0).any(-1)
    assert nonzero.sum() > 0.99 * NEAR_ROWS
    zeroed = nonzero & (g32 == 0).all(-1)
    assert int(zeroed.sum()) == 0, f"{int(zeroed.sum())} of {NEAR_ROWS} rows have a zero float32 gradient"
    # float32 tolerance: the gradient is ~1e-4 (of the size of q/p − 1); the float32 rounding of the stored
    # values (6e-8 relative) moves it by ~6e-8/1e-4 of its size, 1e-3 at most rows
    scale = g64.abs().amax(-1, keepdim=True)
    err = ((g32 - g64).abs() / scale).amax()
    assert err < 2e-2, f"max relative gradient error {float(err):.2e}"


@pytest.mark.parametrize("kind", ["logits", "probs"])
@pytest.mark.parametrize("name", list(GRADIENT_MEASURES))
def test_gradcheck_float64(name, kind):
    if kind == "probs" and name in JOINT:
        pytest.skip("the joint tables are built from logits")
    a, b = _near_logits(11, rows=3, k=5, scale=1e-2)
    far_a, far_b = _near_logits(12, rows=2, k=5, scale=1.0)
    a, b = torch.cat([a, far_a]), torch.cat([b, far_b])
    if kind == "probs":
        a, b = torch.softmax(a, -1), torch.softmax(b, -1)
    if name in JOINT:
        a = _joint(a, b)
    a.requires_grad_(True)
    b.requires_grad_(True)
    # probabilities: steps small enough to stay within the sum tolerance (1.5e-8) of validation
    eps = 3e-9 if kind == "probs" else 1e-7

    def f(x, y):
        return GRADIENT_MEASURES[name](x, y, kind)

    assert torch.autograd.gradcheck(f, (a, b), eps=eps, atol=1e-6, rtol=1e-5)
    assert torch.autograd.gradgradcheck(f, (a, b), eps=eps, atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize(("name", "factor"), [("renyi_0.5", 0.5), ("renyi_2", 2.0), ("chi2", 2.0), ("f_js", 0.25)])
def test_hessian_at_p_equal_q_is_the_fisher_form(name, factor, dtype):
    # D(P_θ‖P_θ0) = ½ c (θ − θ0)ᵀ F (θ − θ0) + O(|θ − θ0|³), F = diag(p) − p pᵀ (logits): c = α for Rényi,
    # 2 for χ², ½ for JS; a clamp that zeroed rounding-negative rows would zero this Hessian there
    g = torch.Generator().manual_seed(5)
    for _ in range(20):
        theta = torch.randn(6, generator=g, dtype=dtype)
        p = torch.softmax(theta.double(), -1)
        fisher = torch.diag(p) - torch.outer(p, p)

        def f(x, theta=theta):
            return GRADIENT_MEASURES[name](x, theta, "logits")

        hess = torch.autograd.functional.hessian(f, theta.clone()).double()
        torch.testing.assert_close(hess, factor * fisher, rtol=0, atol=1e-5 if dtype == torch.float32 else 1e-12)


# ---------------------------------------------------------------------------
# The support rule: an outcome is in P's support where p > 0 in the working dtype
# ---------------------------------------------------------------------------


def _underflow_case(rng, dtype, library, k=5):
    """Logits a (p), b (q) whose last outcome is exp(−1000) = 0.0 in p and −inf (masked) in q: the family
    must equal the divergence of the first k − 1 outcomes (computed independently, with mpmath)."""
    a, b = rng.normal(size=k).astype(dtype), rng.normal(size=k).astype(dtype)
    # exp(−1000) is 0 in float64; torch float32 works in float32, where exp(−200) is 0 already (numpy
    # float32 works in float64, where exp(−200) ≈ 1e-87 is in the support)
    a[-1], b[-1] = (-200.0 if library == "torch" and dtype == np.float32 else -1000.0), -np.inf
    pr = scipy.special.softmax(a[:-1].astype(np.float64))
    qr = scipy.special.softmax(b[:-1].astype(np.float64))
    return a, b, pr, qr


@pytest.mark.parametrize("library", ["numpy", "torch"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_underflowing_p_against_masked_q_is_outside_the_support(dtype, library):
    rng = np.random.default_rng(21)
    rtol = 1e-12 if dtype == np.float64 else 2e-5
    for _ in range(5):
        a, b, pr, qr = _underflow_case(rng, dtype, library)
        ta, tb = (torch.tensor(a), torch.tensor(b)) if library == "torch" else (a, b)
        ref = {
            "kl": mp_reference("kl", pr, qr),
            "chi2": mp_reference("chi2", pr, qr),
            "js": mp_reference("js", pr, qr),
            "hellinger": mp_reference("hellinger2", pr, qr),
            "tv": mp_reference("tv", pr, qr),
            "reverse_kl": mp_reference("kl", qr, pr),
        }
        for f, value in ref.items():
            got = float(klkit.f_divergence(ta, tb, f, kind="logits"))
            assert got == pytest.approx(value, rel=rtol, abs=1e-300), f
        got = float(klkit.f_divergence(ta, tb, lambda t: (t - 1) ** 2, kind="logits"))
        assert got == pytest.approx(ref["chi2"], rel=max(rtol, 1e-10), abs=0)
        assert float(klkit.kl_divergence(ta, tb, kind="logits")) == pytest.approx(ref["kl"], rel=rtol, abs=0)
        assert float(klkit.js_distance(ta, tb, kind="logits")) ** 2 == pytest.approx(ref["js"], rel=rtol, abs=0)
        assert float(klkit.hellinger_distance(ta, tb, kind="logits")) ** 2 == pytest.approx(
            ref["hellinger"], rel=rtol, abs=0
        )
        assert float(klkit.total_variation(ta, tb, kind="logits")) == pytest.approx(ref["tv"], rel=rtol, abs=0)
        for alpha in (0.0, 0.5, 1 - 1e-9, 1.0, 1 + 1e-9, 2.0, 5.0, math.inf):
            got = float(klkit.renyi_divergence(ta, tb, alpha, kind="logits"))
            if alpha == 0.0:
                want = 0.0  # −log Q(supp P) and supp P ⊇ supp Q
            elif alpha == math.inf:
                want = float(np.log(np.max(pr / qr)))
            elif abs(alpha - 1) < 1e-6:
                want = float(scipy.special.rel_entr(pr, qr).sum())  # continuous into α = 1 (|D_α − KL| ~ 1e-9)
            else:
                want = mp_reference("renyi", pr, qr, alpha)
            assert got == pytest.approx(want, rel=max(rtol, 1e-8), abs=1e-300), alpha
        for alpha in (0.0, 0.5, 2.0, math.inf):  # Rényi entropy: the underflowed outcome is not counted either
            got = float(klkit.renyi_entropy(ta, alpha, kind="logits"))
            want = float(klkit.renyi_entropy(pr, alpha)) if alpha else math.log(len(pr))
            assert got == pytest.approx(want, rel=max(rtol, 1e-12), abs=0), alpha


def test_the_documented_example_and_continuity_at_alpha_one():
    p, q = np.array([0.0, -1000.0]), np.array([0.0, -np.inf])
    for alpha in (0.0, 0.5, 1 - 1e-9, 1.0, 1 + 1e-9, 2.0, math.inf):
        assert float(klkit.renyi_divergence(p, q, alpha, kind="logits")) == 0.0
    assert float(klkit.f_divergence(p, q, "kl", kind="logits")) == 0.0
    assert float(klkit.f_divergence(p, q, "chi2", kind="logits")) == 0.0
    # p > 0 where q = 0 is still +inf from α = 1 on (as the math says), finite below
    p2 = np.array([0.0, -700.0])  # exp(−700) ≈ 1e-304 > 0 in float64
    assert float(klkit.renyi_divergence(p2, q, 2.0, kind="logits")) == math.inf
    assert float(klkit.renyi_divergence(p2, q, 1 + 1e-9, kind="logits")) == math.inf
    assert float(klkit.f_divergence(p2, q, "chi2", kind="logits")) == math.inf
    assert math.isfinite(float(klkit.renyi_divergence(p2, q, 0.5, kind="logits")))
