"""Hypothesis properties of the measures, for every kind and both backends."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.special
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

import klkit
from conftest import MEASURE_PROPERTIES, as_kind, softmax

pytestmark = pytest.mark.usefixtures("torch_one_thread")
KINDS = ["probs", "log_probs", "logits"]


@st.composite
def logit_pairs(draw, min_k=2, max_k=8, rows=3):
    k = draw(st.integers(min_k, max_k))
    elements = st.floats(-15, 15, allow_nan=False, allow_infinity=False)
    a = draw(arrays(np.float64, (rows, k), elements=elements))
    b = draw(arrays(np.float64, (rows, k), elements=elements))
    return a, b


def _pq(backend, kind, a, b):
    return backend(as_kind(a, kind)), backend(as_kind(b, kind))


@pytest.mark.parametrize("kind", KINDS)
@MEASURE_PROPERTIES
@given(pair=logit_pairs())
def test_kl_nonnegative_and_zero_on_itself(backend, kind, pair):
    p, q = _pq(backend, kind, *pair)
    assert (backend.numpy(klkit.kl_divergence(p, q, kind=kind)) >= 0).all()
    np.testing.assert_array_equal(backend.numpy(klkit.kl_divergence(p, p, kind=kind)), 0.0)


@pytest.mark.parametrize("kind", KINDS)
@MEASURE_PROPERTIES
@given(pair=logit_pairs())
def test_cross_entropy_is_entropy_plus_kl(backend, kind, pair):
    # each of H, CE and KL against an independent float64 reference (scipy's elementwise terms of the same
    # probabilities), and CE = H + KL checked on those references' side, not on klkit's
    a, b = pair
    p, q = _pq(backend, kind, *pair)
    pr, qr = softmax(a), softmax(b)
    h_ref, kl_ref = scipy.special.entr(pr).sum(-1), scipy.special.rel_entr(pr, qr).sum(-1)
    ce_ref = -scipy.special.xlogy(pr, qr).sum(-1)
    np.testing.assert_allclose(ce_ref, h_ref + kl_ref, rtol=1e-12, atol=1e-12)  # the identity itself, from scipy
    terms = np.abs(scipy.special.rel_entr(pr, qr)).sum(-1)  # the condition of the KL sum
    h, ce, kl = (backend.numpy(x) for x in klkit.decompose(p, q, kind=kind))
    for got, ref, scale in ((h, h_ref, h_ref), (ce, ce_ref, ce_ref), (kl, kl_ref, terms)):
        np.testing.assert_array_less(np.abs(got - ref), 1e-9 * (1.0 + scale))  # logits/log-probs: exp rounding
    np.testing.assert_allclose(backend.numpy(klkit.cross_entropy(p, q, kind=kind)), ce_ref, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("kind", KINDS)
@MEASURE_PROPERTIES
@given(pair=logit_pairs(max_k=12))
def test_entropy_at_most_log_k_with_equality_at_uniform(backend, kind, pair):
    a, _ = pair
    k = a.shape[-1]
    h = backend.numpy(klkit.entropy(backend(as_kind(a, kind)), kind=kind))
    assert (h <= math.log(k) * (1 + 1e-12)).all() and (h >= 0).all()
    uniform = backend(as_kind(np.zeros_like(a), kind))
    np.testing.assert_allclose(backend.numpy(klkit.entropy(uniform, kind=kind)), math.log(k), rtol=1e-13)


@MEASURE_PROPERTIES
@given(a=st.floats(1e-150, 1.0), b=st.floats(1e-150, 1.0))  # a·b stays a normal float
def test_surprise_of_independent_events_adds(backend, a, b):
    joint = backend.numpy(klkit.surprise(backend([a * b])))[0]
    parts = backend.numpy(klkit.surprise(backend([a]))) + backend.numpy(klkit.surprise(backend([b])))
    assert joint == pytest.approx(parts[0], rel=1e-12, abs=1e-12)


@pytest.mark.parametrize("kind", KINDS)
@MEASURE_PROPERTIES
@given(pair=logit_pairs(), base=st.sampled_from([2, 10, math.e, 1.5, 3.7]))
def test_base_change_scales(backend, kind, pair, base):
    p, q = _pq(backend, kind, *pair)
    for name in ("entropy", "cross_entropy", "kl_divergence", "js_divergence"):
        f = getattr(klkit, name)
        args = (p,) if name == "entropy" else (p, q)
        nats = backend.numpy(f(*args, kind=kind))
        np.testing.assert_allclose(
            backend.numpy(f(*args, kind=kind, base=base)), nats / math.log(base), rtol=1e-13, atol=1e-15
        )


@pytest.mark.parametrize("kind", KINDS)
@MEASURE_PROPERTIES
@given(pair=logit_pairs())
def test_transposing_with_axis_gives_the_same(backend, kind, pair):
    a, b = pair
    pT, qT = backend(as_kind(a, kind).T.copy()), backend(as_kind(b, kind).T.copy())
    p, q = _pq(backend, kind, a, b)
    for name in ("entropy", "cross_entropy", "kl_divergence", "js_divergence"):
        f = getattr(klkit, name)
        along_last = f(p, kind=kind) if name == "entropy" else f(p, q, kind=kind)
        along_first = f(pT, kind=kind, axis=0) if name == "entropy" else f(pT, qT, kind=kind, axis=0)
        np.testing.assert_allclose(backend.numpy(along_first), backend.numpy(along_last), rtol=1e-14, atol=1e-15)


@MEASURE_PROPERTIES
@given(pair=logit_pairs())
def test_the_three_kinds_agree(backend, pair):
    a, b = pair
    for name in ("entropy", "cross_entropy", "kl_divergence", "js_divergence"):
        f = getattr(klkit, name)
        values = []
        for kind in KINDS:
            p, q = _pq(backend, kind, a, b)
            values.append(backend.numpy(f(p, kind=kind) if name == "entropy" else f(p, q, kind=kind)))
        np.testing.assert_allclose(values[1], values[0], rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(values[2], values[0], rtol=1e-9, atol=1e-12)
    # mixed: labels as probabilities, the model as logits
    mixed = backend.numpy(klkit.kl_divergence(backend(as_kind(a, "probs")), backend(b), q_kind="logits"))
    np.testing.assert_allclose(
        mixed, backend.numpy(klkit.kl_divergence(*_pq(backend, "probs", a, b))), rtol=1e-9, atol=1e-12
    )


@pytest.mark.parametrize("kind", KINDS)
@MEASURE_PROPERTIES
@given(pair=logit_pairs())
def test_js_symmetric_finite_and_at_most_log2(backend, kind, pair):
    p, q = _pq(backend, kind, *pair)
    js = backend.numpy(klkit.js_divergence(p, q, kind=kind))
    assert np.isfinite(js).all() and (js >= 0).all() and (js <= math.log(2)).all()
    np.testing.assert_allclose(backend.numpy(klkit.js_divergence(q, p, kind=kind)), js, rtol=1e-12, atol=1e-15)


@MEASURE_PROPERTIES
@given(x=arrays(np.float64, (4, 5), elements=st.floats(0, 1e6, allow_nan=False)).filter(lambda x: x.sum(-1).all()))
def test_normalize_gives_valid_probabilities(backend, x):
    p = klkit.normalize(backend(x))
    np.testing.assert_allclose(backend.numpy(p).sum(-1), 1.0, rtol=1e-14)
    klkit.entropy(p)  # passes validation
