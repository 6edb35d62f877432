"""Rényi divergence and entropy: mpmath closed forms, the exact limits α = 0, ½, 1, 2, ∞, monotonicity,
continuity at α = 1, support mismatch, kinds, torch gradients and every error message."""

from __future__ import annotations

import math

import mpmath
import numpy as np
import pytest
import scipy.special
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from scipy.stats import entropy as scipy_entropy

import klkit
from conftest import MEASURE_PROPERTIES, as_kind, softmax

pytestmark = pytest.mark.usefixtures("torch_one_thread")
KINDS = ["probs", "log_probs", "logits"]
ALPHAS = [0.0, 1e-3, 0.25, 0.5, 1 - 1e-6, 1 - 1e-10, 1 + 1e-10, 1 + 1e-6, 1.5, 2.0, 7.0, 100.0, math.inf]
DIGITS = 60


def _mp_renyi(p, q, alpha) -> float:
    """D_α(P‖Q) in 60-digit arithmetic from the defining sum (or its closed-form limits).

    The float64 inputs are normalised exactly first: a sum of 1 + 1e-16 would otherwise add
    log(Σp)/(α − 1) to the reference, which is not the divergence of any distribution near α = 1.
    """
    with mpmath.workdps(DIGITS):
        return _mp_renyi_sum(p, q, alpha)


def _mp_renyi_sum(p, q, alpha) -> float:
    p = _mp_normalised(p)
    q = _mp_normalised(q)
    support = [(a, b) for a, b in zip(p, q, strict=True) if a > 0]
    if alpha == 0:
        return float(-mpmath.log(sum(b for _, b in support)))
    if alpha == 1:
        return float(sum(a * mpmath.log(a / b) for a, b in support))
    if alpha == math.inf:
        return float(max(mpmath.log(a / b) if b > 0 else mpmath.inf for a, b in support))
    s = mpmath.mpf(alpha) - 1
    total = sum(a ** mpmath.mpf(alpha) * b ** (-s) if b > 0 else (0 if s < 0 else mpmath.inf) for a, b in support)
    return float(mpmath.log(total) / s)


def _mp_normalised(p) -> list:
    p = [mpmath.mpf(float(x)) for x in p]
    total = sum(p)
    return [x / total for x in p]


def _mp_renyi_entropy(p, alpha) -> float:
    with mpmath.workdps(DIGITS):
        return _mp_renyi_entropy_sum(p, alpha)


def _mp_renyi_entropy_sum(p, alpha) -> float:
    p = [x for x in _mp_normalised(p) if x > 0]
    if alpha == 0:
        return float(mpmath.log(len(p)))
    if alpha == 1:
        return float(-sum(a * mpmath.log(a) for a in p))
    if alpha == math.inf:
        return float(-mpmath.log(max(p)))
    return float(mpmath.log(sum(a ** mpmath.mpf(alpha) for a in p)) / (1 - mpmath.mpf(alpha)))


# ---------------------------------------------------------------------------
# Reference values
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("alpha", ALPHAS)
@pytest.mark.parametrize(("a", "b"), [(0.5, 0.9), (0.1, 0.2), (0.999, 0.001), (0.25, 0.25 + 2.0**-30)])
def test_bernoulli_against_mpmath(alpha, a, b):
    p, q = np.array([a, 1 - a]), np.array([b, 1 - b])
    expected = _mp_renyi(p, q, alpha)
    got = float(klkit.renyi_divergence(p, q, alpha))
    if alpha == 0:  # full supports: −log Σq = 0 up to the rounding of q's sum (klkit clamps it to 0)
        assert got == pytest.approx(expected, abs=1e-15)
    elif b - a < 1e-8:  # D ≈ 2e-18 from terms log(p/q) ≈ 4e-9 that cancel to first order: ε·4e-9 of rounding
        assert got == pytest.approx(expected, rel=1e-5), alpha
    else:
        assert got == pytest.approx(expected, rel=1e-12), (alpha, a, b)


@pytest.mark.parametrize("alpha", ALPHAS)
@pytest.mark.parametrize("seed", range(4))
def test_categorical_against_mpmath(alpha, seed):
    rng = np.random.default_rng(seed)
    k = [3, 10, 50, 7][seed]
    p, q = rng.dirichlet(np.full(k, 0.5)), rng.dirichlet(np.full(k, 0.5))
    if seed == 3:
        p[2], p[0] = 0.0, p[0] + p[2]  # an outcome off P's support
    assert float(klkit.renyi_divergence(p, q, alpha)) == pytest.approx(_mp_renyi(p, q, alpha), rel=1e-11)
    assert float(klkit.renyi_entropy(p, alpha)) == pytest.approx(_mp_renyi_entropy(p, alpha), rel=1e-11)


def test_closed_forms_of_the_named_orders():
    p, q = np.array([0.2, 0.5, 0.3]), np.array([0.6, 0.1, 0.3])
    chi2 = np.sum((p - q) ** 2 / q)
    bc = np.sum(np.sqrt(p * q))
    assert float(klkit.renyi_divergence(p, q, 2)) == pytest.approx(math.log1p(chi2), rel=1e-14)
    assert float(klkit.renyi_divergence(p, q, 0.5)) == pytest.approx(-2 * math.log(bc), rel=1e-14)
    h = float(klkit.hellinger_distance(p, q))
    assert float(klkit.renyi_divergence(p, q, 0.5)) == pytest.approx(-2 * math.log1p(-h * h), rel=1e-14)
    assert float(klkit.renyi_divergence(p, q, math.inf)) == pytest.approx(math.log(5.0), rel=1e-15)
    # α = 1 against independent references (scipy's elementwise terms), not klkit's own KL / entropy
    assert float(klkit.renyi_divergence(p, q, 1)) == pytest.approx(scipy.special.rel_entr(p, q).sum(), rel=1e-14)
    assert float(klkit.renyi_entropy(p, 1)) == pytest.approx(scipy.special.entr(p).sum(), rel=1e-14)
    assert float(klkit.renyi_entropy(p, 2)) == pytest.approx(-math.log(np.sum(p**2)), rel=1e-15)
    assert float(klkit.renyi_entropy(p, math.inf)) == pytest.approx(-math.log(0.5), rel=1e-15)
    assert float(klkit.renyi_entropy([0.5, 0.5, 0.0], 0)) == pytest.approx(math.log(2), rel=1e-15)


@pytest.mark.parametrize("alpha", [0.0, 0.5, 2.0, 5.0, math.inf])
def test_entropy_is_log_k_minus_divergence_from_uniform(alpha):
    rng = np.random.default_rng(11)
    p = rng.dirichlet(np.ones(6), size=4)
    u = np.full(6, 1 / 6)
    np.testing.assert_allclose(
        klkit.renyi_entropy(p, alpha), math.log(6) - klkit.renyi_divergence(p, u, alpha), rtol=1e-13, atol=1e-15
    )


# ---------------------------------------------------------------------------
# Properties
# ---------------------------------------------------------------------------


@st.composite
def logit_pairs(draw, max_k=8):
    k = draw(st.integers(2, max_k))
    elements = st.floats(-12, 12, allow_nan=False, allow_infinity=False)
    return draw(arrays(np.float64, (3, k), elements=elements)), draw(arrays(np.float64, (3, k), elements=elements))


@MEASURE_PROPERTIES
@given(pair=logit_pairs())
def test_divergence_non_decreasing_and_entropy_non_increasing_in_alpha(pair):
    p, q = softmax(pair[0]), softmax(pair[1])
    orders = [0.0, 0.1, 0.5, 0.9, 1.0, 1.1, 2.0, 5.0, 50.0, math.inf]
    d = np.stack([klkit.renyi_divergence(p, q, a) for a in orders])
    h = np.stack([klkit.renyi_entropy(p, a) for a in orders])
    assert (np.diff(d, axis=0) >= -1e-12 * (1 + np.abs(d[1:]))).all()
    assert (np.diff(h, axis=0) <= 1e-12 * (1 + np.abs(h[1:]))).all()
    assert (d >= 0).all() and (h >= 0).all() and (h <= math.log(p.shape[-1]) + 1e-12).all()


@MEASURE_PROPERTIES
@given(pair=logit_pairs(), exponent=st.integers(4, 14), side=st.sampled_from([-1, 1]))
def test_continuous_at_alpha_one(pair, exponent, side):
    p, q = softmax(pair[0]), softmax(pair[1])
    delta = side * 10.0**-exponent
    kl, h = scipy.special.rel_entr(p, q).sum(-1), scipy.special.entr(p).sum(-1)  # independent of klkit
    # |D_α − KL| = O(|α − 1|) (the slope is ½ Var_p(log p/q)), plus rounding of the order of ε·KL
    slope = 0.5 * np.sum(p * (np.log(p / q) - kl[:, None]) ** 2, axis=-1)
    near = klkit.renyi_divergence(p, q, 1 + delta)
    assert (np.abs(near - kl) <= 2 * slope * abs(delta) + 1e-13 * (1 + kl)).all()
    near_h = klkit.renyi_entropy(p, 1 + delta)
    var = np.sum(p * (np.log(p) + h[:, None]) ** 2, axis=-1)
    assert (np.abs(near_h - h) <= var * abs(delta) + 1e-13 * (1 + h)).all()


@pytest.mark.parametrize("kind", KINDS)
@MEASURE_PROPERTIES
@given(pair=logit_pairs(), alpha=st.sampled_from([0.0, 0.3, 0.5, 2.0, 3.5, math.inf]))
def test_kinds_agree(backend, kind, pair, alpha):
    a, b = pair
    expected = klkit.renyi_divergence(softmax(a), softmax(b), alpha)
    got = backend.numpy(klkit.renyi_divergence(backend(as_kind(a, kind)), backend(as_kind(b, kind)), alpha, kind=kind))
    np.testing.assert_allclose(got, expected, rtol=1e-9, atol=1e-12)
    got_h = backend.numpy(klkit.renyi_entropy(backend(as_kind(a, kind)), alpha, kind=kind))
    np.testing.assert_allclose(got_h, klkit.renyi_entropy(softmax(a), alpha), rtol=1e-9, atol=1e-12)


def test_axis_base_and_broadcasting(backend):
    rng = np.random.default_rng(5)
    p, q = rng.dirichlet(np.ones(4), size=3), rng.dirichlet(np.ones(4))
    expected = klkit.renyi_divergence(p, np.broadcast_to(q, p.shape), 2.0) / math.log(2)
    got = klkit.renyi_divergence(backend(p.T), backend(q[:, None]), 2.0, axis=0, base=2)
    np.testing.assert_allclose(backend.numpy(got), expected, rtol=1e-14)
    np.testing.assert_allclose(
        backend.numpy(klkit.renyi_entropy(backend(p.T), 3, axis=0, base=10)),
        klkit.renyi_entropy(p, 3) / math.log(10),
        rtol=1e-14,
    )


# ---------------------------------------------------------------------------
# Support mismatch: +inf where it must be, never NaN
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("alpha", [0.0, 0.2, 0.5, 0.999, 1.0, 1.001, 2.0, math.inf])
def test_support_mismatch_follows_kl(backend, alpha):
    p = backend([0.5, 0.5, 0.0])
    q_missing = backend([1.0, 0.0, 0.0])  # q = 0 where p > 0
    q_wider = backend([0.25, 0.25, 0.5])  # q > 0 where p = 0
    disjoint = backend([0.0, 0.0, 1.0])
    missing = float(backend.numpy(klkit.renyi_divergence(p, q_missing, alpha)))
    if alpha >= 1:
        assert missing == math.inf
    else:
        assert missing == pytest.approx(_mp_renyi([0.5, 0.5, 0.0], [1.0, 0.0, 0.0], alpha), rel=1e-12)
    wider = float(backend.numpy(klkit.renyi_divergence(p, q_wider, alpha)))
    assert wider == pytest.approx(_mp_renyi([0.5, 0.5, 0.0], [0.25, 0.25, 0.5], alpha), rel=1e-12)
    assert float(backend.numpy(klkit.renyi_divergence(p, disjoint, alpha))) == math.inf


@pytest.mark.parametrize("alpha", [0.0, 0.5, 2.0, math.inf])
def test_masked_logits_are_zero_probabilities(alpha):
    p = np.array([[0.0, 1.0, -np.inf], [2.0, -np.inf, 0.0]])
    q = np.array([[-np.inf, 0.0, 0.0], [0.0, 0.0, 0.0]])
    got = klkit.renyi_divergence(p, q, alpha, kind="logits")
    probs = softmax(np.where(np.isinf(p), -1e300, p)), softmax(np.where(np.isinf(q), -1e300, q))
    expected = [
        _mp_renyi(a, b, alpha) if not (alpha >= 1 and i == 0) else math.inf
        for i, (a, b) in enumerate(zip(*probs, strict=True))
    ]
    assert not np.isnan(got).any()
    np.testing.assert_allclose(got, expected, rtol=1e-12)


# ---------------------------------------------------------------------------
# torch: gradients, dtype
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("alpha", [0.0, 0.3, 0.5, 1 - 1e-5, 1.0, 1 + 1e-5, 2.0, 6.0, math.inf])
@pytest.mark.parametrize("kind", KINDS)
def test_gradcheck(kind, alpha):
    torch = pytest.importorskip("torch")
    g = torch.Generator().manual_seed(3)
    x = torch.randn(3, 5, generator=g, dtype=torch.float64, requires_grad=True)
    y = torch.randn(3, 5, generator=g, dtype=torch.float64, requires_grad=True)
    to = {
        "logits": lambda t: t,
        "probs": lambda t: torch.softmax(t, -1),
        "log_probs": lambda t: torch.log_softmax(t, -1),
    }[kind]
    assert torch.autograd.gradcheck(
        lambda x, y: klkit.renyi_divergence(to(x), to(y), alpha, kind=kind, base=2), (x, y), eps=1e-6, atol=1e-8
    )
    assert torch.autograd.gradcheck(
        lambda x: klkit.renyi_entropy(to(x).T, alpha, kind=kind, axis=0), (x,), eps=1e-6, atol=1e-8
    )


@pytest.mark.parametrize("alpha", [0.0, 0.5, 2.0, math.inf])
def test_gradients_are_finite_on_mismatched_supports(alpha):
    torch = pytest.importorskip("torch")
    p = torch.tensor([[0.5, 0.5, 0.0], [0.5, 0.5, 0.0], [0.2, 0.8, 0.0]], dtype=torch.float64, requires_grad=True)
    q = torch.tensor([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.3, 0.3, 0.4]], dtype=torch.float64, requires_grad=True)
    value = klkit.renyi_divergence(p, q, alpha)
    assert not value.isnan().any()
    # the infinite rows must not poison the gradient of the finite ones (nor give NaN of their own)
    (value * torch.tensor([0.0, 0.0, 1.0], dtype=torch.float64)).nan_to_num(posinf=0.0).sum().backward()
    assert torch.isfinite(p.grad).all() and torch.isfinite(q.grad).all()
    assert (p.grad[:2] == 0).all() and (q.grad[:2] == 0).all() and (q.grad[2] != 0).any()
    p.grad = None
    klkit.renyi_entropy(p, alpha).sum().backward()
    assert torch.isfinite(p.grad).all()


@pytest.mark.parametrize("dtype_name", ["float16", "bfloat16", "float32"])
def test_half_precision_comes_back_in_its_dtype(dtype_name):
    torch = pytest.importorskip("torch")
    dtype = getattr(torch, dtype_name)
    p, q = np.array([0.2, 0.5, 0.3]), np.array([0.6, 0.1, 0.3])
    tp, tq = torch.tensor(p, dtype=dtype), torch.tensor(q, dtype=dtype)
    for alpha in (0.5, 2.0, math.inf):
        d = klkit.renyi_divergence(tp, tq, alpha)
        assert d.dtype == dtype
        ref = _mp_renyi(tp.double().numpy(), tq.double().numpy(), alpha)
        assert float(d) == pytest.approx(ref, rel=2 * torch.finfo(dtype).eps)
        h = klkit.renyi_entropy(tp, alpha)
        assert h.dtype == dtype
        assert float(h) == pytest.approx(_mp_renyi_entropy(tp.double().numpy(), alpha), rel=2 * torch.finfo(dtype).eps)
    assert klkit.renyi_divergence(p.astype(np.float32), q.astype(np.float32), 2).dtype == np.float32


def test_array_api_strict_matches_numpy():
    xs = pytest.importorskip("array_api_strict")
    rng = np.random.default_rng(9)
    p, q = rng.dirichlet(np.ones(5), size=3), rng.dirichlet(np.ones(5), size=3)
    for alpha in (0.0, 0.5, 2.0, math.inf):
        got = klkit.renyi_divergence(xs.asarray(p), xs.asarray(q), alpha)
        assert isinstance(got, type(xs.asarray(p)))
        np.testing.assert_allclose(np.asarray(got), klkit.renyi_divergence(p, q, alpha), rtol=1e-15)
        np.testing.assert_allclose(
            np.asarray(klkit.renyi_entropy(xs.asarray(p), alpha)), klkit.renyi_entropy(p, alpha), rtol=1e-15
        )


def test_scipy_entropy_at_alpha_one_and_validate_false_gives_nan():
    p, q = np.array([0.2, 0.5, 0.3]), np.array([0.6, 0.1, 0.3])
    assert float(klkit.renyi_divergence(p, q, 1.0)) == pytest.approx(scipy_entropy(p, q), rel=1e-14)
    bad = np.array([[0.2, 0.5, 0.3], [0.2, -0.5, 1.3]])
    got = klkit.renyi_divergence(bad, q, 2.0, validate=False)
    assert got[0] == pytest.approx(_mp_renyi(p, q, 2.0), rel=1e-13) and np.isnan(got[1])
    assert np.isnan(klkit.renyi_entropy(bad, 2.0, validate=False)[1])


# ---------------------------------------------------------------------------
# Errors
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("alpha", "pattern"),
    [
        (-0.5, r"`alpha` must be >= 0 \(or math\.inf\); found -0\.5\. Rényi measures are defined for 0 <= alpha"),
        (math.nan, r"`alpha` must be >= 0 \(or math\.inf\); found nan\."),
        (-math.inf, r"`alpha` must be >= 0 \(or math\.inf\); found -inf\."),
    ],
)
def test_bad_alpha(alpha, pattern):
    with pytest.raises(klkit.errors.InvalidArgumentError, match=pattern):
        klkit.renyi_divergence([0.5, 0.5], [0.9, 0.1], alpha)
    with pytest.raises(ValueError, match=pattern):
        klkit.renyi_entropy([0.5, 0.5], alpha)


@pytest.mark.parametrize(
    ("alpha", "pattern"),
    [
        ("2", r"`alpha` must be a real number >= 0 \(or math\.inf\); found '2' of type str\. Pass e\.g\. alpha=2"),
        (True, r"`alpha` must be a real number >= 0 \(or math\.inf\); found True of type bool\."),
        (None, r"`alpha` must be a real number.*found None of type NoneType\. Pass e\.g\. alpha=2"),
    ],
)
def test_alpha_that_is_not_a_number_is_a_type_error(alpha, pattern):
    with pytest.raises(TypeError, match=pattern):
        klkit.renyi_divergence([0.5, 0.5], [0.9, 0.1], alpha)
    with pytest.raises(TypeError, match=pattern):
        klkit.renyi_entropy([0.5, 0.5], alpha)


def test_inputs_are_validated_with_the_measures_messages():
    with pytest.raises(ValueError, match=r"`q` must sum to 1 along `axis`"):
        klkit.renyi_divergence([0.5, 0.5], [0.9, 0.2], 2)
    with pytest.raises(ValueError, match=r"`p` must hold probabilities: finite and >= 0; found 1 entry, first -0\.5"):
        klkit.renyi_entropy([1.5, -0.5], 0.5)
    with pytest.raises(ValueError, match=r"`base` must be None \(nats\) or a finite number > 1; found 1"):
        klkit.renyi_divergence([0.5, 0.5], [0.9, 0.1], 2, base=1)
    with pytest.raises(ValueError, match=r"`q_kind` must be one of 'probs', 'log_probs' or 'logits'; found 'prob'"):
        klkit.renyi_divergence([0.5, 0.5], [0.9, 0.1], 2, q_kind="prob")
    with pytest.raises(ValueError, match=r"`p` and `q` must have shapes that broadcast; found \(2,\) and \(3,\)"):
        klkit.renyi_divergence([0.5, 0.5], [0.2, 0.3, 0.5], 0.5)
    with pytest.raises(ValueError, match=r"`axis` must be in \[-1, 0\]"):
        klkit.renyi_entropy([0.5, 0.5], 2, axis=1)


# ---------------------------------------------------------------------------
# Never renormalised: off-sum slices give an unspecified finite value ≥ 0 without validation (the semantics of
# validate=False for every measure, docs/guide/kinds.md), at every α; sums within the tolerance are the same law
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["probs", "log_probs"])
@pytest.mark.parametrize("alpha", [0.0, 0.5, 1 - 1e-6, 1.0, 1 + 1e-6, 2.0, math.inf])
def test_validate_false_gives_a_finite_value_where_a_sum_is_off_for_p_and_for_q(backend, kind, alpha):
    good = np.array([0.2, 0.5, 0.3])
    q = np.array([0.6, 0.1, 0.3])
    rows = np.array([good, 2.0 * good, [0.2 + 1e-6, 0.5, 0.3], [0.2 + 1e-9, 0.5, 0.3]])  # off, off, within 1.5e-8
    to = (lambda x: x) if kind == "probs" else np.log
    d_p = backend.numpy(klkit.renyi_divergence(backend(to(rows)), backend(to(q)), alpha, kind=kind, validate=False))
    d_q = backend.numpy(klkit.renyi_divergence(backend(to(q)), backend(to(rows)), alpha, kind=kind, validate=False))
    h = backend.numpy(klkit.renyi_entropy(backend(to(rows)), alpha, kind=kind, validate=False))
    for got, expected in (
        (d_p, _mp_renyi(good, q, alpha)),
        (d_q, _mp_renyi(q, good, alpha)),
        (h, _mp_renyi_entropy(good, alpha)),
    ):
        assert np.isfinite(got[1:3]).all() and (got[1:3] >= 0).all(), (got, alpha)
        assert got[0] == pytest.approx(expected, rel=1e-13)
        assert got[3] == pytest.approx(expected, rel=1e-7)  # a sum within the tolerance: nearly the same law


def test_an_off_sum_pair_is_finite_at_every_alpha_and_refused_when_validated():
    p, q = np.array([2.0, 2.0]), np.array([0.5, 0.5])
    for alpha in (0.5, 0.999999, 1.0, 1.000001, 2.0):
        value = float(klkit.renyi_divergence(p, q, alpha, validate=False))
        assert math.isfinite(value) and value >= 0, alpha
    with pytest.raises(ValueError, match=r"`p` must sum to 1 along `axis` \(tolerance 1\.5e-08.*sums from 4 to 4"):
        klkit.renyi_divergence(p, q, 0.999999)


@pytest.mark.parametrize("alpha", [1 - 1e-6, 1 + 1e-6, 1 - 1e-10, 1 + 1e-10, 1 - 1e-13, 1 + 1e-13])
def test_near_alpha_one_is_accurate_to_a_few_ulp(alpha):
    # float64 inputs sum to 1 ± 1e-16, not 1: the reference divides by the exact sum (see _mp_renyi), and
    # klkit's log1p form uses Σp = 1 as an identity instead of renormalising, so the sum's rounding is not
    # amplified by 1/(α − 1)
    worst = 0.0
    for seed in range(12):
        rng = np.random.default_rng(100 + seed)
        k = int(rng.integers(2, 40))
        p, q = rng.dirichlet(np.ones(k)), rng.dirichlet(np.ones(k))
        expected = _mp_renyi(p, q, alpha)
        worst = max(worst, abs(float(klkit.renyi_divergence(p, q, alpha)) - expected) / expected)
        h = _mp_renyi_entropy(p, alpha)
        worst = max(worst, abs(float(klkit.renyi_entropy(p, alpha)) - h) / h)
    assert worst < 5e-15
