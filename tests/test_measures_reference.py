"""Reference values and agreement with scipy and torch (independent implementations)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.special
import scipy.stats

import klkit
from conftest import as_kind, log_softmax, random_logits, softmax
from klkit._engine import CHUNK_MIN, FAST_MIN, TORCH_TILES

pytestmark = pytest.mark.usefixtures("torch_one_thread")

# small: the generic path; large: the numpy fused kernels (>= _FAST_MIN elements) and the
# torch tiles (> _CHUNK_MIN elements); "pieces": rows longer than one torch tile
SHAPES = {"small": (7, 13), "large": (300, 1000), "pieces": (3, 120_000)}


def test_shapes_reach_each_path():
    assert math.prod(SHAPES["small"]) < FAST_MIN
    assert math.prod(SHAPES["large"]) > CHUNK_MIN
    size = math.prod(SHAPES["pieces"])
    assert size > CHUNK_MIN and SHAPES["pieces"][1] > size // TORCH_TILES


def test_fair_coin_is_ln2_nats_and_one_bit(backend):
    p = backend([0.5, 0.5])
    assert float(klkit.entropy(p)) == pytest.approx(math.log(2), rel=1e-15)
    assert float(klkit.entropy(p, base=2)) == pytest.approx(1.0, rel=1e-15)


def test_biased_coin(backend):
    assert float(klkit.entropy(backend([0.9, 0.1]))) == pytest.approx(0.325083, abs=5e-7)
    exact = -(0.9 * math.log(0.9) + 0.1 * math.log(0.1))
    assert float(klkit.entropy(backend([0.9, 0.1]))) == pytest.approx(exact, rel=1e-15)


@pytest.mark.parametrize("k", [1, 2, 10, 1000, 100_000])
def test_uniform_is_log_k(backend, k):
    assert float(klkit.entropy(backend(np.full(k, 1.0 / k)))) == pytest.approx(math.log(k), rel=1e-12, abs=1e-15)
    assert float(klkit.entropy(backend(np.zeros(k)), kind="logits")) == pytest.approx(math.log(k), rel=1e-12, abs=1e-15)


def test_point_mass_is_zero(backend):
    assert float(klkit.entropy(backend([0.0, 1.0, 0.0]))) == 0.0
    assert float(klkit.entropy(backend([-np.inf, 3.0, -np.inf]), kind="logits")) == 0.0
    assert float(klkit.kl_divergence(backend([0.0, 1.0]), backend([0.0, 1.0]))) == 0.0


def test_disjoint_support_gives_inf_never_nan(backend):
    kl = klkit.kl_divergence(backend([0.5, 0.5]), backend([1.0, 0.0]))
    ce = klkit.cross_entropy(backend([0.5, 0.5]), backend([1.0, 0.0]))
    assert float(kl) == math.inf and float(ce) == math.inf
    logits = klkit.kl_divergence(backend([0.0, 0.0]), backend([0.0, -np.inf]), kind="logits")
    assert float(logits) == math.inf
    # and p = 0 where q = 0 is a zero term, not NaN
    assert float(klkit.kl_divergence(backend([1.0, 0.0]), backend([1.0, 0.0]))) == 0.0


@pytest.mark.parametrize("path", list(SHAPES))
def test_agrees_with_scipy(backend, rng, path):
    P = softmax(random_logits(rng, SHAPES[path]))
    Q = softmax(random_logits(rng, SHAPES[path]))
    h = backend.numpy(klkit.entropy(backend(P)))
    kl = backend.numpy(klkit.kl_divergence(backend(P), backend(Q)))
    ce = backend.numpy(klkit.cross_entropy(backend(P), backend(Q)))
    np.testing.assert_allclose(h, scipy.stats.entropy(P, axis=-1), rtol=1e-12)
    np.testing.assert_allclose(kl, scipy.stats.entropy(P, Q, axis=-1), rtol=1e-12)
    np.testing.assert_allclose(kl, scipy.special.rel_entr(P, Q).sum(-1), rtol=1e-12)
    np.testing.assert_allclose(ce, -scipy.special.xlogy(P, Q).sum(-1), rtol=1e-12)


@pytest.mark.parametrize("path", list(SHAPES))
@pytest.mark.parametrize("kind", ["probs", "log_probs", "logits"])
def test_agrees_with_torch(backend, rng, path, kind):
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    a, b = random_logits(rng, SHAPES[path]), random_logits(rng, SHAPES[path])
    A, B = torch.from_numpy(a), torch.from_numpy(b)
    p_ref = torch.distributions.Categorical(logits=A)
    h_ref = p_ref.entropy().numpy()
    # F.kl_div(input, target) is KL(target ‖ input) with input as log-probabilities
    kl_ref = F.kl_div(F.log_softmax(B, -1), F.log_softmax(A, -1), log_target=True, reduction="none").sum(-1).numpy()
    kl_ref2 = torch.distributions.kl_divergence(p_ref, torch.distributions.Categorical(logits=B)).numpy()
    ce_ref = -(F.softmax(A, -1) * F.log_softmax(B, -1)).sum(-1).numpy()
    p, q = backend(as_kind(a, kind)), backend(as_kind(b, kind))
    np.testing.assert_allclose(backend.numpy(klkit.entropy(p, kind=kind)), h_ref, rtol=1e-12)
    np.testing.assert_allclose(backend.numpy(klkit.kl_divergence(p, q, kind=kind)), kl_ref, rtol=1e-11)
    np.testing.assert_allclose(backend.numpy(klkit.kl_divergence(p, q, kind=kind)), kl_ref2, rtol=1e-11)
    np.testing.assert_allclose(backend.numpy(klkit.cross_entropy(p, q, kind=kind)), ce_ref, rtol=1e-12)


@pytest.mark.parametrize("path", list(SHAPES))
def test_float32_stays_float32_and_is_accurate(backend, rng, path):
    P = softmax(random_logits(rng, SHAPES[path])).astype(np.float32)
    Q = softmax(random_logits(rng, SHAPES[path])).astype(np.float32)
    P, Q = P / P.sum(-1, keepdims=True, dtype=np.float64), Q / Q.sum(-1, keepdims=True, dtype=np.float64)
    P, Q = P.astype(np.float32), Q.astype(np.float32)
    kl = klkit.kl_divergence(backend(P, np.float32), backend(Q, np.float32))
    h = klkit.entropy(backend(P, np.float32))
    assert str(kl.dtype).endswith("float32") and str(h.dtype).endswith("float32")
    P64, Q64 = P.astype(np.float64), Q.astype(np.float64)
    np.testing.assert_allclose(backend.numpy(kl), scipy.special.rel_entr(P64, Q64).sum(-1), rtol=2e-5)
    np.testing.assert_allclose(backend.numpy(h), scipy.stats.entropy(P64, axis=-1), rtol=2e-5)


def test_one_dimensional_gives_zero_d_and_lists_work():
    h = klkit.entropy([0.25, 0.75])
    assert isinstance(h, np.floating | np.ndarray) and np.ndim(h) == 0
    assert np.asarray(h).dtype == np.float64
    kl = klkit.kl_divergence([0.25, 0.75], [0.5, 0.5])
    assert np.ndim(kl) == 0
    assert float(kl) == pytest.approx(scipy.stats.entropy([0.25, 0.75], [0.5, 0.5]), rel=1e-14)
    assert float(klkit.entropy([1, 1], kind="logits")) == pytest.approx(math.log(2))  # integers become float64


def test_torch_zero_d_and_dtype():
    torch = pytest.importorskip("torch")
    x = torch.tensor([0.25, 0.75], dtype=torch.float32)
    h = klkit.entropy(x)
    assert isinstance(h, torch.Tensor) and h.dim() == 0 and h.dtype == torch.float32


def test_decompose_matches_parts(backend, rng):
    P, Q = softmax(random_logits(rng, (5, 9))), softmax(random_logits(rng, (5, 9)))
    d = klkit.decompose(backend(P), backend(Q), base=2)
    np.testing.assert_allclose(backend.numpy(d.entropy), scipy.stats.entropy(P, axis=-1, base=2), rtol=1e-13)
    np.testing.assert_allclose(backend.numpy(d.kl_divergence), scipy.stats.entropy(P, Q, axis=-1, base=2), rtol=1e-13)
    np.testing.assert_allclose(backend.numpy(d.cross_entropy), backend.numpy(d.entropy + d.kl_divergence), rtol=1e-13)


def test_js_divergence_reference(backend, rng):
    P, Q = softmax(random_logits(rng, (6, 11))), softmax(random_logits(rng, (6, 11)))
    M = (P + Q) / 2
    ref = 0.5 * scipy.special.rel_entr(P, M).sum(-1) + 0.5 * scipy.special.rel_entr(Q, M).sum(-1)
    np.testing.assert_allclose(backend.numpy(klkit.js_divergence(backend(P), backend(Q))), ref, rtol=1e-12)
    np.testing.assert_allclose(scipy.spatial.distance.jensenshannon(P, Q, axis=-1) ** 2, ref, rtol=1e-10)
    disjoint = klkit.js_divergence(backend([1.0, 0.0]), backend([0.0, 1.0]))
    assert float(disjoint) == pytest.approx(math.log(2), rel=1e-15)
    assert float(klkit.js_divergence(backend([0.0, -np.inf]), backend([-np.inf, 0.0]), kind="logits")) <= math.log(2)


def test_surprise_reference(backend):
    s = backend.numpy(klkit.surprise(backend([1.0, 0.5, 0.25, 0.0]), base=2))
    np.testing.assert_array_equal(s, [0.0, 1.0, 2.0, np.inf])


def test_kl_kernel_exact_when_p_close_to_q(rng):
    """The numpy kernel's ratio correction: KL of nearly equal p, q against 50-digit mpmath."""
    mpmath = pytest.importorskip("mpmath")
    n = FAST_MIN
    p = softmax(random_logits(rng, n))
    q = p * (1 + 1e-5 * rng.standard_normal(n))
    q /= q.sum()
    with mpmath.workdps(50):
        exact = float(mpmath.fsum(mpmath.mpf(a) * mpmath.log(mpmath.mpf(a) / mpmath.mpf(b)) for a, b in zip(p, q)))
    assert 1e-12 < exact < 1e-9  # the regime where a plain log(p/q) loses most digits
    got = float(klkit.kl_divergence(p, q))
    assert got == pytest.approx(exact, rel=1e-9)


def test_large_numpy_float32_logits_in_float64_accumulation(rng):
    a = random_logits(rng, (4, 50_000)).astype(np.float32)
    b = random_logits(rng, (4, 50_000)).astype(np.float32)
    ref = scipy.special.rel_entr(softmax(a.astype(np.float64)), softmax(b.astype(np.float64))).sum(-1)
    kl = klkit.kl_divergence(a, b, kind="logits")
    assert kl.dtype == np.float32
    np.testing.assert_allclose(kl, ref, rtol=1e-6)
    h = klkit.entropy(a, kind="logits")
    a64 = a.astype(np.float64)
    np.testing.assert_allclose(h, -(softmax(a64) * log_softmax(a64)).sum(-1), rtol=1e-6)
