"""Total variation, Hellinger, Jensen–Shannon distance, f-divergences and the weighted JS divergence:
scipy and mpmath references, the inequalities that tie them to KL, limits, gradients, every error."""

from __future__ import annotations

import math

import mpmath
import numpy as np
import pytest
import scipy.special
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from scipy.spatial.distance import jensenshannon
from scipy.stats import entropy as scipy_entropy

import klkit
from conftest import MEASURE_PROPERTIES, as_kind, softmax
from klkit.errors import InvalidArgumentError

pytestmark = pytest.mark.usefixtures("torch_one_thread")
KINDS = ["probs", "log_probs", "logits"]
DIGITS = 50  # mpmath's working precision, set locally with mpmath.workdps


def _pairs(seed: int, k: int = 6, n: int = 4, concentration: float = 1.0):
    rng = np.random.default_rng(seed)
    return rng.dirichlet(np.full(k, concentration), size=n), rng.dirichlet(np.full(k, concentration), size=n)


@st.composite
def logit_pairs(draw, max_k=8):
    k = draw(st.integers(2, max_k))
    elements = st.floats(-12, 12, allow_nan=False, allow_infinity=False)
    return draw(arrays(np.float64, (3, k), elements=elements)), draw(arrays(np.float64, (3, k), elements=elements))


# ---------------------------------------------------------------------------
# Reference values
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("base", [None, 2, 10])
@pytest.mark.parametrize("axis", [0, 1])
def test_js_distance_is_scipy_jensenshannon(backend, base, axis):
    p, q = _pairs(1, concentration=0.3)
    p, q = (p, q) if axis == 1 else (p.T, q.T)
    expected = jensenshannon(p, q, base=base, axis=axis)
    got = backend.numpy(klkit.js_distance(backend(p), backend(q), axis=axis, base=base))
    np.testing.assert_allclose(got, expected, rtol=1e-13)
    assert float(klkit.js_distance([1.0, 0.0], [0.0, 1.0], base=2)) == 1.0
    assert float(klkit.js_distance([0.3, 0.7], [0.3, 0.7])) == 0.0


def test_total_variation_and_hellinger_by_hand(backend):
    p, q = _pairs(2)
    tv = 0.5 * np.abs(p - q).sum(-1)
    hellinger = np.sqrt(1 - np.sqrt(p * q).sum(-1))
    np.testing.assert_allclose(backend.numpy(klkit.total_variation(backend(p), backend(q))), tv, rtol=1e-14)
    np.testing.assert_allclose(backend.numpy(klkit.hellinger_distance(backend(p), backend(q))), hellinger, rtol=1e-12)
    # TV = max over events |P(A) − Q(A)|, attained at A = {p > q}
    event = p > q
    np.testing.assert_allclose(tv, (p * event).sum(-1) - (q * event).sum(-1), rtol=1e-14)


def test_hellinger_has_no_cancellation_when_p_is_near_q():
    """H² = 1 − BC loses every digit when BC ≈ 1; ½Σ(√p − √q)² keeps them (checked with mpmath)."""
    p = np.array([0.25, 0.75])
    for step in (2.0**-20, 2.0**-30, 2.0**-40):
        q = np.array([0.25 + step, 0.75 - step])
        with mpmath.workdps(DIGITS):
            exact = 1 - sum(mpmath.sqrt(mpmath.mpf(a) * mpmath.mpf(b)) for a, b in zip(p, q, strict=True))
            h_squared, h = float(exact), float(mpmath.sqrt(exact))
        assert float(klkit.hellinger_distance(p, q)) == pytest.approx(h, rel=1e-9), step
        assert float(klkit.f_divergence(p, q, "hellinger")) == pytest.approx(h_squared, rel=1e-9)


def test_disjoint_supports_reach_the_maxima():
    p, q = [0.5, 0.5, 0.0, 0.0], [0.0, 0.0, 0.2, 0.8]
    assert float(klkit.total_variation(p, q)) == 1.0
    assert float(klkit.hellinger_distance(p, q)) == 1.0
    assert float(klkit.js_distance(p, q)) == pytest.approx(math.sqrt(math.log(2)), rel=1e-15)
    assert float(klkit.f_divergence(p, q, "chi2")) == math.inf
    assert float(klkit.f_divergence(p, q, "kl")) == math.inf
    assert float(klkit.f_divergence(p, q, "reverse_kl")) == math.inf


# ---------------------------------------------------------------------------
# Inequalities (natural logs; H² = 1 − BC)
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
@MEASURE_PROPERTIES
@given(pair=logit_pairs())
def test_kl_bounds_its_relatives(backend, kind, pair):
    a, b = pair
    p, q = backend(as_kind(a, kind)), backend(as_kind(b, kind))
    kl = backend.numpy(klkit.kl_divergence(p, q, kind=kind))
    tv = backend.numpy(klkit.total_variation(p, q, kind=kind))
    h = backend.numpy(klkit.hellinger_distance(p, q, kind=kind))
    d_half = backend.numpy(klkit.renyi_divergence(p, q, 0.5, kind=kind))
    slack = 1e-12
    # Pinsker and Bretagnolle–Huber squared: the inputs' own rounding (~1e-16 in log_probs) moves KL by ~1e-16
    # absolute, which a square root would blow up to ~1e-8 where KL is ~1e-19 (p and q 1e-9 apart)
    assert (tv**2 <= kl / 2 + 1e-15).all()  # Pinsker
    assert (tv**2 <= -np.expm1(-kl) + 1e-15).all()  # Bretagnolle–Huber
    assert (h**2 <= tv + slack).all() and (tv <= h * np.sqrt(2 - h**2) + slack).all()
    assert (2 * h**2 <= d_half + slack).all() and (d_half <= kl + slack * (1 + kl)).all()
    assert (h**2 <= kl + slack).all()
    np.testing.assert_allclose(d_half, -2 * np.log1p(-(h**2)), rtol=1e-10, atol=1e-14)
    # JS against scipy's (an independent evaluation, with absolute rounding ~1e-16 per term): compared squared
    P, Q = softmax(a), softmax(b)  # scipy's elementwise KL terms (jensenshannon's sqrt warns on identical rows)
    M = 0.5 * (P + Q)
    js = 0.5 * scipy.special.rel_entr(P, M).sum(axis=-1) + 0.5 * scipy.special.rel_entr(Q, M).sum(axis=-1)
    np.testing.assert_allclose(backend.numpy(klkit.js_distance(p, q, kind=kind)) ** 2, js, rtol=1e-9, atol=1e-14)
    assert (tv >= 0).all() and (tv <= 1).all() and (h >= 0).all() and (h <= 1).all()


@MEASURE_PROPERTIES
@given(pair=logit_pairs(), third=arrays(np.float64, (3, 8), elements=st.floats(-12, 12)))
def test_distances_satisfy_the_triangle_inequality(pair, third):
    a, b = pair
    k = a.shape[-1]
    p, q, r = softmax(a), softmax(b), softmax(third[:, :k])
    for distance in (klkit.total_variation, klkit.hellinger_distance, klkit.js_distance):
        assert (distance(p, r) <= distance(p, q) + distance(q, r) + 1e-12).all(), distance.__name__
        np.testing.assert_allclose(distance(p, q), distance(q, p), rtol=1e-13, atol=1e-15)


# ---------------------------------------------------------------------------
# f-divergences
# ---------------------------------------------------------------------------


GENERATORS = {
    "kl": lambda t: scipy.special.xlogy(t, t),
    "reverse_kl": lambda t: -np.log(t),
    "tv": lambda t: 0.5 * np.abs(t - 1),
    "hellinger": lambda t: 0.5 * (np.sqrt(t) - 1) ** 2,
    "chi2": lambda t: (t - 1) ** 2,
    "js": lambda t: 0.5 * (scipy.special.xlogy(t, 2 * t / (1 + t)) + np.log(2 / (1 + t))),
}


@pytest.mark.parametrize("name", sorted(GENERATORS))
def test_each_named_f_is_its_dedicated_function_and_its_generator(backend, name):
    p, q = _pairs(3, concentration=0.5)
    dedicated = {
        "kl": klkit.kl_divergence(p, q),
        "reverse_kl": klkit.kl_divergence(q, p),
        "tv": klkit.total_variation(p, q),
        "hellinger": klkit.hellinger_distance(p, q) ** 2,
        "chi2": np.sum((p - q) ** 2 / q, axis=-1),  # Pearson's χ² by hand
        "js": klkit.js_divergence(p, q),
    }[name]
    got = backend.numpy(klkit.f_divergence(backend(p), backend(q), name))
    np.testing.assert_allclose(got, dedicated, rtol=1e-12)
    by_callable = klkit.f_divergence(p, q, GENERATORS[name])
    np.testing.assert_allclose(by_callable, dedicated, rtol=1e-10)
    np.testing.assert_allclose(np.sum(q * GENERATORS[name](p / q), axis=-1), dedicated, rtol=1e-10)


def _mp_chi2(p, q) -> float:
    """Pearson χ² = Σ (p − q)² / q in DIGITS-digit arithmetic."""
    with mpmath.workdps(DIGITS):
        return float(
            sum(
                (mpmath.mpf(float(a)) - mpmath.mpf(float(b))) ** 2 / mpmath.mpf(float(b))
                for a, b in zip(p, q, strict=True)
            )
        )


def test_chi2_is_the_sum_of_squares_without_cancellation():
    p = np.array([0.25, 0.75])
    q = np.array([0.25 + 2.0**-30, 0.75 - 2.0**-30])
    assert float(klkit.f_divergence(p, q, "chi2")) == pytest.approx(_mp_chi2(p, q), rel=1e-6)
    p, q = np.array([0.2, 0.5, 0.3]), np.array([0.6, 0.1, 0.3])
    assert float(klkit.f_divergence(p, q, "chi2")) == pytest.approx(_mp_chi2(p, q), rel=1e-14)
    p, q = _pairs(12, k=9, concentration=0.5)
    np.testing.assert_allclose(
        klkit.f_divergence(p, q, "chi2"), [_mp_chi2(a, b) for a, b in zip(p, q, strict=True)], rtol=1e-13
    )


def test_callable_f_sees_arrays_of_the_inputs_library_and_keeps_autograd():
    torch = pytest.importorskip("torch")
    g = torch.Generator().manual_seed(0)
    x = torch.randn(3, 4, generator=g, dtype=torch.float64, requires_grad=True)
    y = torch.randn(3, 4, generator=g, dtype=torch.float64, requires_grad=True)
    seen = []

    def f(t):
        seen.append(type(t))
        return (t - 1) ** 2

    assert torch.autograd.gradcheck(
        lambda x, y: klkit.f_divergence(x, y, f, kind="logits"), (x, y), eps=1e-6, atol=1e-8
    )
    assert set(seen) == {torch.Tensor}
    np.testing.assert_allclose(
        klkit.f_divergence(x, y, f, kind="logits").detach().numpy(),
        klkit.f_divergence(x, y, "chi2", kind="logits").detach().numpy(),
        rtol=1e-12,
    )


def test_callable_f_on_q_wider_than_p():
    p, q = np.array([0.5, 0.5, 0.0]), np.array([0.25, 0.25, 0.5])
    got = klkit.f_divergence(p, q, GENERATORS["kl"])
    assert float(got) == pytest.approx(scipy_entropy(p, q), rel=1e-14)


# ---------------------------------------------------------------------------
# Weighted Jensen–Shannon divergence
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("w", [0.0, 0.1, 0.3, 0.5, 0.9, 1.0])
def test_weighted_js_against_scipy(backend, w):
    p, q = _pairs(4, concentration=0.5)
    m = w * p + (1 - w) * q
    entropies = scipy_entropy(m, axis=-1) - w * scipy_entropy(p, axis=-1) - (1 - w) * scipy_entropy(q, axis=-1)
    kls = w * scipy_entropy(p, m, axis=-1) + (1 - w) * scipy_entropy(q, m, axis=-1)
    got = backend.numpy(klkit.js_divergence(backend(p), backend(q), weights=(w, 1 - w), base=2))
    np.testing.assert_allclose(got, kls / math.log(2), rtol=1e-12, atol=1e-16)
    np.testing.assert_allclose(got, entropies / math.log(2), rtol=1e-10, atol=1e-15)
    swapped = klkit.js_divergence(q, p, weights=(1 - w, w), base=2)
    np.testing.assert_allclose(swapped, got, rtol=1e-13, atol=1e-16)


def test_weighted_js_default_and_bound():
    p, q = _pairs(5)
    np.testing.assert_array_equal(klkit.js_divergence(p, q, weights=(0.5, 0.5)), klkit.js_divergence(p, q))
    for w in (0.1, 0.3, 0.7):  # disjoint supports reach h(w), the entropy of the weights
        bound = -(w * math.log(w) + (1 - w) * math.log(1 - w))
        assert float(klkit.js_divergence([1.0, 0.0], [0.0, 1.0], weights=(w, 1 - w))) == pytest.approx(bound, rel=1e-15)
        assert (klkit.js_divergence(p, q, weights=(w, 1 - w)) <= bound).all()


def test_weighted_js_gradcheck():
    torch = pytest.importorskip("torch")
    g = torch.Generator().manual_seed(4)
    x = torch.randn(3, 5, generator=g, dtype=torch.float64, requires_grad=True)
    y = torch.randn(3, 5, generator=g, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(
        lambda x, y: klkit.js_divergence(x, y, weights=(0.2, 0.8), kind="logits"), (x, y), eps=1e-6, atol=1e-8
    )


# ---------------------------------------------------------------------------
# torch: gradients and dtypes; array API
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("name", ["total_variation", "hellinger_distance", "js_distance", "chi2", "hellinger2"])
def test_gradcheck(kind, name):
    torch = pytest.importorskip("torch")
    named = {"chi2": "chi2", "hellinger2": "hellinger"}
    fn = (lambda p, q, **kw: klkit.f_divergence(p, q, named[name], **kw)) if name in named else getattr(klkit, name)
    g = torch.Generator().manual_seed(6)
    x = torch.randn(3, 5, generator=g, dtype=torch.float64, requires_grad=True)
    y = torch.randn(3, 5, generator=g, dtype=torch.float64, requires_grad=True)
    to = {
        "logits": lambda t: t,
        "probs": lambda t: torch.softmax(t, -1),
        "log_probs": lambda t: torch.log_softmax(t, -1),
    }[kind]
    assert torch.autograd.gradcheck(lambda x, y: fn(to(x), to(y), kind=kind), (x, y), eps=1e-6, atol=1e-8)


def test_distances_have_zero_not_nan_gradients_at_p_equal_q():
    torch = pytest.importorskip("torch")
    p = torch.tensor([0.2, 0.3, 0.5, 0.0], dtype=torch.float64, requires_grad=True)
    for fn in (klkit.hellinger_distance, klkit.js_distance, klkit.total_variation):
        p.grad = None
        value = fn(p, p.detach())
        value.backward()
        assert value.detach().item() == 0.0 and torch.isfinite(p.grad).all(), fn.__name__


@pytest.mark.parametrize("dtype_name", ["float16", "bfloat16", "float32"])
def test_half_precision_comes_back_in_its_dtype(dtype_name):
    torch = pytest.importorskip("torch")
    dtype = getattr(torch, dtype_name)
    p, q = torch.tensor([0.2, 0.5, 0.3], dtype=dtype), torch.tensor([0.6, 0.1, 0.3], dtype=dtype)
    pd, qd = p.double().numpy(), q.double().numpy()
    cases = {
        klkit.total_variation: 0.5 * np.abs(pd - qd).sum(),
        klkit.hellinger_distance: math.sqrt(0.5 * ((np.sqrt(pd) - np.sqrt(qd)) ** 2).sum()),
        klkit.js_distance: jensenshannon(pd, qd),
        lambda a, b: klkit.f_divergence(a, b, "chi2"): ((pd - qd) ** 2 / qd).sum(),
    }
    for fn, expected in cases.items():
        got = fn(p, q)
        assert got.dtype == dtype
        assert float(got) == pytest.approx(expected, rel=2 * torch.finfo(dtype).eps)


def test_array_api_strict_matches_numpy():
    xs = pytest.importorskip("array_api_strict")
    p, q = _pairs(7)
    for fn in (
        klkit.total_variation,
        klkit.hellinger_distance,
        klkit.js_distance,
        lambda a, b: klkit.f_divergence(a, b, "chi2"),
        lambda a, b: klkit.f_divergence(a, b, lambda t: (t - 1) ** 2),
        lambda a, b: klkit.js_divergence(a, b, weights=(0.3, 0.7)),
    ):
        got = fn(xs.asarray(p), xs.asarray(q))
        np.testing.assert_allclose(np.asarray(got), fn(p, q), rtol=1e-14)


def test_validate_false_gives_nan_on_invalid_slices_only():
    p = np.array([[0.2, 0.8], [np.nan, 1.0]])
    q = np.array([0.5, 0.5])
    expected = {"tv": 0.3, "hellinger": math.sqrt(1 - math.sqrt(0.1) - math.sqrt(0.4)), "chi2": 0.36}  # by hand
    for name, fn in (
        ("tv", klkit.total_variation),
        ("hellinger", klkit.hellinger_distance),
        ("chi2", lambda a, b, **kw: klkit.f_divergence(a, b, "chi2", **kw)),
    ):
        got = fn(p, q, validate=False)
        assert got[0] == pytest.approx(expected[name], rel=1e-14) and np.isnan(got[1]), name


def test_chi2_without_validation_is_its_defining_sum_never_renormalised():
    # p = [2, 2] is not a distribution: renormalised, its χ² against [½, ½] would be 0; the defining sum
    # Σ (p − q)²/q (no identity Σ p = 1 is used) gives 9, as f_divergence("kl") gives Σ p log(p/q)
    good, q = np.array([0.2, 0.8]), np.array([0.5, 0.5])
    rows = np.array([good, [2.0, 2.0], [0.2 + 1e-6, 0.8]])
    got = klkit.f_divergence(rows, q, "chi2", validate=False)
    np.testing.assert_allclose(got, [_mp_chi2(r, q) for r in rows], rtol=1e-14)
    assert got[1] == 9.0
    got = klkit.f_divergence(q, rows, "chi2", validate=False)
    np.testing.assert_allclose(got, [_mp_chi2(q, r) for r in rows], rtol=1e-14)
    assert np.isnan(klkit.f_divergence([0.5, np.nan], q, "chi2", validate=False))


# ---------------------------------------------------------------------------
# Distribution objects go to klkit.distributions.api under the same name
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "args", "base"),
    [
        ("total_variation", (), None),
        ("hellinger_distance", (), None),
        ("js_distance", (), 2),
        ("renyi_divergence", (2.0,), 2),
        ("f_divergence", ("chi2",), None),
    ],
)
def test_distribution_objects_are_handed_to_the_distributions_api(monkeypatch, name, args, base):
    import scipy.stats

    from klkit.distributions import api

    calls = []

    def fake(*a, **kw):
        calls.append((a, kw))
        return "handed over"

    monkeypatch.setattr(api, name, fake, raising=False)
    p, q = scipy.stats.norm(0, 1), scipy.stats.norm(1, 2)
    kwargs = {"base": base} if base is not None else {}
    assert getattr(klkit, name)(p, q, *args, n_samples=100, seed=0, **kwargs) == "handed over"
    assert calls == [((p, q, *args), {"base": base, "n_samples": 100, "seed": 0})]
    with pytest.raises(TypeError, match=rf"`{name}` got an unknown keyword argument `dim`"):
        getattr(klkit, name)(p, q, *args, dim=0)
    with pytest.raises(TypeError, match=r"got `method`: options for distribution objects \(torch\.distributions"):
        getattr(klkit, name)([0.5, 0.5], [0.5, 0.5], *args, method="exact")


# ---------------------------------------------------------------------------
# Errors
# ---------------------------------------------------------------------------


def test_f_errors():
    p, q = [0.5, 0.5], [0.9, 0.1]
    with pytest.raises(
        InvalidArgumentError,
        match=(
            r"`f` must be one of 'kl', 'reverse_kl', 'tv', 'hellinger', 'chi2', 'js' or a callable; found 'KL'\. "
            r"Pass e\.g\. f='chi2'"
        ),
    ):
        klkit.f_divergence(p, q, "KL")
    with pytest.raises(TypeError, match=r"`f` must be a name \('kl', .*\) or a callable; found int\."):
        klkit.f_divergence(p, q, 2)
    with pytest.raises(InvalidArgumentError, match=r"`f` must satisfy f\(1\) = 0 .*; found f\(1\) = 1\.0\. Subtract"):
        klkit.f_divergence(p, q, lambda t: t**2)
    with pytest.raises(InvalidArgumentError, match=r"`f` returned NaN at t = 0\.0 \(1 ratio\(s\) in all\)\. Define f"):
        klkit.f_divergence([1.0, 0.0], q, lambda t: t * np.log(t))
    with pytest.raises(InvalidArgumentError, match=r"`f` must act elementwise .* shape \(2,\); found \(\)"):
        klkit.f_divergence(p, q, lambda t: np.sum((t - 1) ** 2))
    with pytest.raises(
        InvalidArgumentError,
        match=(
            r"`f` is a callable, so the term p_i·lim f\(t\)/t where q_i = 0 < p_i \(.*\) is unknown to klkit; found 1 "
            r"outcome\(s\) with q_i = 0 < p_i\. Use a named f \(.*'kl' and 'chi2' are \+inf there\), or give q full"
        ),
    ):
        klkit.f_divergence(p, [1.0, 0.0], lambda t: (t - 1) ** 2)


@pytest.mark.parametrize("weights", [(0.3, 0.8), (0.5,), (-0.1, 1.1), (math.nan, 0.5), "ab", 0.5, (0.2, 0.3, 0.5)])
def test_weights_errors(weights):
    with pytest.raises(
        InvalidArgumentError,
        match=(
            r"`weights` must be two numbers in \[0, 1\] that sum to 1, \(w, 1 - w\); found .*\. "
            r"Pass e\.g\. weights=\(0\.3, 0\.7\)"
        ),
    ):
        klkit.js_divergence([0.5, 0.5], [0.9, 0.1], weights=weights)


def test_weights_with_distribution_objects_is_a_type_error():
    import scipy.stats

    expected = r"`js_divergence` got weights=\(0\.3, 0\.7\), for arrays only; found `p` a frozen scipy\.stats\.norm"
    with pytest.raises(TypeError, match=expected + r".*Drop `weights`"):
        klkit.js_divergence(scipy.stats.norm(), scipy.stats.norm(1), weights=(0.3, 0.7))


def test_inputs_are_validated_with_the_measures_messages(backend):
    good = backend([0.5, 0.5])
    for fn in (
        klkit.total_variation,
        klkit.hellinger_distance,
        klkit.js_distance,
        lambda a, b, **kw: klkit.f_divergence(a, b, "chi2", **kw),
    ):
        with pytest.raises(ValueError, match=r"`q` must sum to 1 along `axis` \(tolerance 1\.5e-08"):
            fn(good, backend([0.5, 0.6]))
        with pytest.raises(ValueError, match=r"`p` must hold logits: real numbers or -inf \(masked\), never NaN"):
            fn(backend([np.inf, 0.0]), good, kind="logits")
        with pytest.raises(ValueError, match=r"`kind` must be one of 'probs', 'log_probs' or 'logits'; found 'p'"):
            fn(good, good, kind="p")
        with pytest.raises(ValueError, match=r"`validate` must be True or False; found 1 of type int"):
            fn(good, good, validate=1)
        with pytest.raises(ValueError, match=r"the reduction axis \(0\) is empty"):
            fn(backend(np.zeros((0, 2))), backend(np.zeros((0, 2))), axis=0)
    with pytest.raises(TypeError, match=r"inputs mix"):
        klkit.total_variation(np.array([0.5, 0.5]), pytest.importorskip("torch").tensor([0.5, 0.5]))


# ---------------------------------------------------------------------------
# README: the "Coming from scipy / sklearn" table says what it does
# ---------------------------------------------------------------------------


def test_readme_scipy_sklearn_table_holds():
    import re
    from pathlib import Path

    import scipy.spatial.distance
    import scipy.stats
    import sklearn.metrics

    text = (Path(__file__).parents[1] / "README.md").read_text(encoding="utf-8")
    section = text[text.index("## Coming from scipy / sklearn") :]
    section = section[: section.index("\n## ", 3)]
    rows = re.findall(r"^\| `([^`]+)` \| `([^`]+)` \|$", section, flags=re.MULTILINE)
    assert len(rows) == 4, rows
    rng = np.random.default_rng(8)
    names = {
        "scipy": scipy,
        "sklearn": sklearn,
        "klkit": klkit,
        "b": 2.0,
        "k": True,  # keepdims
        "p": rng.dirichlet(np.ones(7)),
        "q": rng.dirichlet(np.ones(7)),
        "C": rng.integers(0, 30, size=(4, 6)),
        "pk": rng.dirichlet(np.ones(5), size=3).T,
    }
    for theirs, ours in rows:
        np.testing.assert_allclose(eval(ours, names), eval(theirs, names), rtol=1e-12, err_msg=ours)
