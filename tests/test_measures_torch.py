"""torch: gradients (gradcheck, no NaN at zeros), extreme inputs, and the fast no-grad path."""

from __future__ import annotations

import math
import zlib

import numpy as np
import pytest
import scipy.special

import klkit
from conftest import as_kind, log_softmax, softmax

torch = pytest.importorskip("torch")
F = torch.nn.functional
pytestmark = pytest.mark.usefixtures("torch_one_thread")

KINDS = ["probs", "log_probs", "logits"]
MEASURES = ["entropy", "cross_entropy", "kl_divergence", "js_divergence"]


def _call(measure, p, q, **kw):
    f = getattr(klkit, measure)
    return f(p, **kw) if measure == "entropy" else f(p, q, **kw)


@pytest.mark.parametrize("measure", MEASURES)
@pytest.mark.parametrize("kind", KINDS)
def test_gradcheck(measure, kind):
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(3, 5, generator=g, dtype=torch.float64), torch.randn(3, 5, generator=g, dtype=torch.float64)
    if kind == "logits":
        x, y = a, b
        fn = lambda x, y: _call(measure, x, y, kind="logits", validate=False)  # noqa: E731
    else:
        # probabilities and log-probabilities are constrained: differentiate through a softmax
        to = torch.softmax if kind == "probs" else torch.log_softmax
        x, y = a, b
        fn = lambda x, y: _call(measure, to(x, -1), to(y, -1), kind=kind)  # noqa: E731
    x.requires_grad_(True)
    y.requires_grad_(True)
    assert torch.autograd.gradcheck(fn, (x, y), eps=1e-6, atol=1e-8)


@pytest.mark.parametrize("measure", MEASURES)
def test_gradcheck_base_and_axis(measure):
    g = torch.Generator().manual_seed(1)
    x = torch.randn(4, 3, generator=g, dtype=torch.float64, requires_grad=True)
    y = torch.randn(4, 3, generator=g, dtype=torch.float64, requires_grad=True)
    fn = lambda x, y: _call(measure, x, y, kind="logits", axis=0, base=2)  # noqa: E731
    assert torch.autograd.gradcheck(fn, (x, y), eps=1e-6, atol=1e-8)


def _grads(measure, p, q, kind):
    p = p.clone().requires_grad_(True)
    q = q.clone().requires_grad_(True)
    value = _call(measure, p, q, kind=kind)
    value.sum().backward()
    return value, p.grad, (q.grad if measure != "entropy" else torch.zeros(1))


@pytest.mark.parametrize("measure", MEASURES)
def test_no_nan_gradient_at_zero_probabilities(measure):
    p = torch.tensor([[0.0, 0.3, 0.7], [0.5, 0.5, 0.0]], dtype=torch.float64)
    q = torch.tensor([[0.0, 0.5, 0.5], [0.2, 0.8, 0.0]], dtype=torch.float64)  # q = 0 only where p = 0
    value, gp, gq = _grads(measure, p, q, "probs")
    assert torch.isfinite(value).all() and torch.isfinite(gp).all() and torch.isfinite(gq).all()


@pytest.mark.parametrize("measure", MEASURES)
def test_no_nan_gradient_with_masked_logits(measure):
    a = torch.tensor([[-math.inf, 1.0, 2.0], [0.5, -math.inf, -math.inf]], dtype=torch.float64)
    b = torch.tensor([[-math.inf, 0.0, 1.0], [1.0, 2.0, -math.inf]], dtype=torch.float64)
    value, ga, gb = _grads(measure, a, b, "logits")
    assert torch.isfinite(value).all() and torch.isfinite(ga).all() and torch.isfinite(gb).all()
    lp_a, lp_b = torch.log_softmax(a, -1), torch.log_softmax(b, -1)
    value, ga, gb = _grads(measure, lp_a.detach(), lp_b.detach(), "log_probs")
    assert torch.isfinite(value).all() and torch.isfinite(ga).all() and torch.isfinite(gb).all()


def test_gradient_of_kl_from_logits_is_softmax_difference():
    """d KL(softmax(a) ‖ softmax(b)) / d b = softmax(b) - softmax(a): an independent closed form."""
    g = torch.Generator().manual_seed(0)
    a = torch.randn(4, 6, dtype=torch.float64, generator=g)
    b = torch.randn(4, 6, dtype=torch.float64, generator=g, requires_grad=True)
    klkit.kl_divergence(a, b, kind="logits").sum().backward()
    torch.testing.assert_close(b.grad, torch.softmax(b, -1).detach() - torch.softmax(a, -1), rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("grad", [False, True])
def test_large_logits_are_finite_and_correct(grad):
    rng = np.random.default_rng(3)
    a = rng.uniform(-1e4, 1e4, (4, 50))
    b = rng.uniform(-1e4, 1e4, (4, 50))
    lp, lq = log_softmax(a), log_softmax(b)  # in log space: most probabilities underflow
    ref_kl = (np.exp(lp) * (lp - lq)).sum(-1)
    ref_h = -(np.exp(lp) * lp).sum(-1)
    A = torch.tensor(a, requires_grad=grad)
    B = torch.tensor(b, requires_grad=grad)
    for got, ref in (
        (klkit.kl_divergence(A, B, kind="logits"), ref_kl),
        (klkit.entropy(A, kind="logits"), ref_h),
        (klkit.kl_divergence(a, b, kind="logits"), ref_kl),
    ):
        got = np.asarray(got.detach() if isinstance(got, torch.Tensor) else got)
        assert np.isfinite(got).all()
        np.testing.assert_allclose(got, ref, rtol=1e-9, atol=1e-9)
    a32 = torch.tensor(a, dtype=torch.float32, requires_grad=grad)
    got = klkit.kl_divergence(a32, torch.tensor(b, dtype=torch.float32), kind="logits")
    assert got.dtype == torch.float32 and torch.isfinite(got).all()
    np.testing.assert_allclose(got.detach().numpy(), ref_kl, rtol=1e-3, atol=2e-3)  # logits stored to ~1e-3


@pytest.mark.parametrize("backend_name", ["numpy", "torch"])
def test_float32_probabilities_that_underflow(backend_name):
    # most entries of these float32 probabilities are subnormal or exactly 0
    logits = np.concatenate([[0.0], np.linspace(-80, -110, 63)])
    p = softmax(logits).astype(np.float32)
    q = softmax(0.97 * logits).astype(np.float32)  # wider: q > 0 wherever p > 0
    assert (p == 0).any() and (p[p > 0] < np.finfo(np.float32).tiny).any()
    P, Q = (torch.from_numpy(p), torch.from_numpy(q)) if backend_name == "torch" else (p, q)
    p64, q64 = p.astype(np.float64), q.astype(np.float64)
    kl = float(klkit.kl_divergence(P, Q))
    h = float(klkit.entropy(P))
    ce = float(klkit.cross_entropy(P, Q))
    assert math.isfinite(kl) and math.isfinite(h) and math.isfinite(ce)
    assert kl == pytest.approx(scipy.special.rel_entr(p64, q64).sum(), rel=1e-5)
    assert h == pytest.approx(-scipy.special.xlogy(p64, p64).sum(), rel=1e-5, abs=1e-30)
    assert ce == pytest.approx(-scipy.special.xlogy(p64, q64).sum(), rel=1e-5)


def test_positive_p_where_q_is_zero_is_inf_in_every_path():
    n = 200_000  # large enough for the tiles
    for size in (5, n):
        p = torch.full((2, size), 1.0 / size, dtype=torch.float64)
        q = p.clone()
        q[:, 0] = 0.0
        q[:, 1] += 1.0 / size
        with torch.no_grad():
            assert torch.isinf(klkit.kl_divergence(p, q)).all()
            assert torch.isinf(klkit.cross_entropy(p, q)).all()
            masked = torch.zeros(2, size, dtype=torch.float64)
            masked[:, 0] = -math.inf
            zeros = torch.zeros(2, size, dtype=torch.float64)
            assert torch.isinf(klkit.kl_divergence(zeros, masked, kind="logits")).all()
            assert not torch.isnan(klkit.kl_divergence(masked, masked, kind="logits")).any()
            js = klkit.js_divergence(p, q)
            assert torch.isfinite(js).all() and (js <= math.log(2)).all()


SHAPES = [(6, 40), (300, 1000), (3, 120_000), (3, 100_003)]  # generic; row tiles; pieces; column slices (prime)


@pytest.mark.parametrize("shape", SHAPES, ids=["small", "tiles", "pieces", "columns"])
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("q_kind", KINDS)
def test_fast_path_matches_autograd_path(shape, kind, q_kind):
    """No-grad (fused tiles) and autograd (generic) evaluation agree, masks and zeros included."""
    rng = np.random.default_rng(zlib.crc32(repr((shape, kind, q_kind)).encode()))  # same seed every run
    a, b = rng.standard_normal(shape) * 3, rng.standard_normal(shape) * 3
    a[0, ::7] = -np.inf  # masked entries in one row of each (zeros for probabilities)
    b[0, ::5] = -np.inf
    b[1, ::7] = -np.inf
    P, Q = torch.tensor(as_kind(a, kind)), torch.tensor(as_kind(b, q_kind))
    for measure in ("entropy", "cross_entropy", "kl_divergence"):
        if measure == "entropy" and q_kind != kind:
            continue
        options = {"kind": kind} if measure == "entropy" else {"kind": kind, "q_kind": q_kind}
        with torch.no_grad():
            fast = _call(measure, P, Q, **options)
        slow = _call(measure, P.clone().requires_grad_(True), Q.clone().requires_grad_(True), **options).detach()
        assert not torch.isnan(fast).any()
        torch.testing.assert_close(fast, slow, rtol=1e-11, atol=1e-12, equal_nan=False)
        f32 = P.float(), Q.float()
        with torch.no_grad():
            got = _call(measure, *f32, **options)
        assert got.dtype == torch.float32
        torch.testing.assert_close(got.double(), slow, rtol=2e-4, atol=2e-4)


def test_dtype_device_and_autograd_kept():
    p = torch.tensor([[0.2, 0.8]], dtype=torch.float32, requires_grad=True)
    q = torch.tensor([[0.5, 0.5]], dtype=torch.float64)
    kl = klkit.kl_divergence(p, q)
    assert kl.dtype == torch.float64 and kl.device == p.device and kl.requires_grad
    h = klkit.entropy(p, base=2)
    assert h.dtype == torch.float32 and h.shape == (1,)
    h.sum().backward()
    expected = -(torch.log2(p.detach()) + 1 / math.log(2))
    torch.testing.assert_close(p.grad, expected)


def test_broadcasting_and_non_contiguous_layouts():
    rng = np.random.default_rng(5)
    a = rng.standard_normal((4, 70_000))
    b = rng.standard_normal(70_000)
    ref = scipy.special.rel_entr(softmax(a), softmax(b)[None, :]).sum(-1)
    A, B = torch.tensor(a), torch.tensor(b)
    with torch.no_grad():
        torch.testing.assert_close(klkit.kl_divergence(A, B, kind="logits").numpy(), ref, rtol=1e-11, atol=0)
        transposed = klkit.kl_divergence(A.T, B[:, None], kind="logits", axis=0)
        torch.testing.assert_close(transposed.numpy(), ref, rtol=1e-11, atol=0)
        three = A.reshape(4, 7, 10_000).permute(2, 1, 0)  # outcomes in the middle of a permuted view
        got = klkit.entropy(three, kind="logits", axis=1).numpy()
        lp = log_softmax(a.reshape(4, 7, 10_000), axis=1)
        np.testing.assert_allclose(got, (-(np.exp(lp) * lp).sum(1)).T, rtol=1e-11)
