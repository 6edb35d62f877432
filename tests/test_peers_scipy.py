"""SciPy's own test cases, ported to klkit: ``scipy/stats/tests/test_entropy.py`` (``TestEntropy``: entropy,
KL through ``entropy(pk, qk)``, ``base``, ``axis``) and ``test_jensenshannon`` of
``scipy/spatial/tests/test_distance.py``, with their reference numbers.

Two documented differences (README, "klkit reduces over ``axis=-1`` by default and never renormalises"):
scipy divides unnormalised inputs by their sum and reduces over ``axis=0`` by default; klkit validates and
reduces over ``axis=-1``. Each case with unnormalised inputs is ported twice: on the inputs divided by their
sum (must match scipy's number), and as given, ``xfail(strict=True)`` (klkit raises instead).
"""

from __future__ import annotations

import math

import numpy as np
import pytest

import klkit

NEVER_RENORMALISES = "README.md: klkit reduces over axis=-1 by default and never renormalises (scipy does)"
PK = np.array([[0.1, 0.2], [0.6, 0.3], [0.3, 0.5]])
QK = np.array([[0.2, 0.1], [0.3, 0.6], [0.5, 0.3]])


def _normalised(x, axis=-1):
    x = np.asarray(x, dtype=np.float64)
    return x / x.sum(axis=axis, keepdims=True)


# ---------------------------------------------------------------------------
# scipy.stats.entropy (TestEntropy)
# ---------------------------------------------------------------------------


def test_entropy_positive():
    pk, qk = np.array([0.5, 0.2, 0.3]), np.array([0.1, 0.25, 0.65])
    assert float(klkit.kl_divergence(pk, pk)) == 0.0
    assert float(klkit.kl_divergence(pk, qk)) > 0.0


def test_entropy_base():
    pk = _normalised(np.ones(16))
    assert abs(float(klkit.entropy(pk, base=2.0)) - 4.0) < 1e-5
    qk = _normalised(np.where(np.arange(16) < 8, 2.0, 1.0))
    s, s2 = float(klkit.kl_divergence(pk, qk)), float(klkit.kl_divergence(pk, qk, base=2.0))
    assert abs(s / s2 - math.log(2.0)) < 1e-5


@pytest.mark.xfail(strict=True, raises=ValueError, reason=NEVER_RENORMALISES)
def test_entropy_base_unnormalised():
    assert abs(float(klkit.entropy(np.ones(16), base=2.0)) - 4.0) < 1e-5


def test_entropy_zero():
    np.testing.assert_allclose(klkit.entropy(_normalised([0.0, 1.0, 2.0])), 0.63651416829481278, rtol=1e-7)


@pytest.mark.xfail(strict=True, raises=ValueError, reason=NEVER_RENORMALISES)
def test_entropy_zero_unnormalised():
    np.testing.assert_allclose(klkit.entropy([0.0, 1.0, 2.0]), 0.63651416829481278, rtol=1e-7)


def test_entropy_2d():  # scipy's default axis is 0: the columns of PK are the distributions (they sum to 1)
    np.testing.assert_allclose(klkit.kl_divergence(PK, QK, axis=0), [0.1933259, 0.18609809], rtol=1e-7)


def test_entropy_2d_zero():
    qk = np.array([[0.0, 0.1], [0.3, 0.6], [0.5, 0.3]])
    qk0 = _normalised(qk, axis=0)  # column 0 sums to 0.8: scipy divides by it
    np.testing.assert_allclose(klkit.kl_divergence(PK, qk0, axis=0), [np.inf, 0.18609809], rtol=1e-7)
    pk = _normalised(np.array([[0.0, 0.2], [0.6, 0.3], [0.3, 0.5]]), axis=0)
    np.testing.assert_allclose(klkit.kl_divergence(pk, qk0, axis=0), [0.17403988, 0.18609809], rtol=1e-7)


@pytest.mark.xfail(strict=True, raises=ValueError, reason=NEVER_RENORMALISES)
def test_entropy_2d_zero_unnormalised():
    qk = np.array([[0.0, 0.1], [0.3, 0.6], [0.5, 0.3]])
    np.testing.assert_allclose(klkit.kl_divergence(PK, qk, axis=0), [np.inf, 0.18609809], rtol=1e-7)


def test_entropy_base_2d_nondefault_axis():
    got = klkit.entropy(_normalised(PK, axis=1), axis=1)
    np.testing.assert_allclose(got, [0.63651417, 0.63651417, 0.66156324], rtol=1e-7)


def test_entropy_2d_nondefault_axis():
    got = klkit.kl_divergence(_normalised(PK, axis=1), _normalised(QK, axis=1), axis=1)
    np.testing.assert_allclose(got, [0.23104906, 0.23104906, 0.12770641], rtol=1e-7)


@pytest.mark.xfail(strict=True, raises=ValueError, reason=NEVER_RENORMALISES)
def test_entropy_2d_nondefault_axis_unnormalised():
    np.testing.assert_allclose(klkit.kl_divergence(PK, QK, axis=1), [0.23104906, 0.23104906, 0.12770641], rtol=1e-7)


def test_entropy_raises_value_error():
    with pytest.raises(ValueError, match="broadcast"):
        klkit.kl_divergence(PK, PK[:2], axis=0)


@pytest.mark.xfail(strict=True, reason=NEVER_RENORMALISES)
def test_base_entropy_default_axis_is_0():
    np.testing.assert_allclose(klkit.entropy(PK), klkit.entropy(PK, axis=0))


def test_base_entropy_with_axis_0_is_the_transposed_default():
    np.testing.assert_allclose(klkit.entropy(PK, axis=0), klkit.entropy(PK.T), rtol=1e-15)
    np.testing.assert_allclose(klkit.kl_divergence(PK, QK, axis=0), klkit.kl_divergence(PK.T, QK.T), rtol=1e-15)


def test_base_entropy_transposed():
    pk = _normalised(PK, axis=1)
    np.testing.assert_allclose(klkit.entropy(pk.T, axis=0), klkit.entropy(pk, axis=1), rtol=1e-15)
    qk = _normalised(QK, axis=1)
    np.testing.assert_allclose(klkit.kl_divergence(pk.T, qk.T, axis=0), klkit.kl_divergence(pk, qk, axis=1), rtol=1e-15)


def test_entropy_broadcasting():
    rng = np.random.default_rng(74187315492831452)
    x = _normalised(rng.random(3))
    y = np.full((2, 1), 1.0 / 3.0)  # scipy's y of shape (2, 1) broadcast along the outcomes, divided by its sum
    res = klkit.kl_divergence(x, np.broadcast_to(y, (2, 3)), axis=-1)
    assert res.shape == (2,)
    assert res[0] == res[1] == float(klkit.kl_divergence(x, np.full(3, 1.0 / 3.0)))
    assert res[0] == pytest.approx(math.log(3.0) - float(klkit.entropy(x)), rel=1e-14, abs=0)


def test_entropy_shape_mismatch():
    with pytest.raises(ValueError, match="broadcast"):
        klkit.kl_divergence(np.full((10, 1, 12), 1 / 12), np.full((11, 2), 0.5))


def test_input_validation():
    with pytest.raises(ValueError, match="base"):
        klkit.entropy(np.full(10, 0.1), base=-2)


# ---------------------------------------------------------------------------
# scipy.spatial.distance.jensenshannon (test_jensenshannon)
# ---------------------------------------------------------------------------


def test_jensenshannon():
    assert float(klkit.js_distance([1.0, 0.0, 0.0], [0.0, 1.0, 0.0], base=2.0)) == pytest.approx(1.0, abs=1e-7)
    assert float(klkit.js_distance([1.0, 0.0], [0.5, 0.5])) == pytest.approx(0.46450140402245893, abs=1e-7)
    assert float(klkit.js_distance([1.0, 0.0, 0.0], [1.0, 0.0, 0.0])) == 0.0
    p, q = np.array([[1.0, 2.0]]), np.array([[0.5, 1.5]])
    p0, q0 = _normalised(p, axis=0), _normalised(q, axis=0)
    p1, q1 = _normalised(p, axis=1), _normalised(q, axis=1)
    np.testing.assert_allclose(klkit.js_distance(p0, q0, axis=0), [0.0, 0.0], atol=1e-7)
    np.testing.assert_allclose(klkit.js_distance(p1, q1, axis=1), [0.0649045], atol=1e-7)
    np.testing.assert_allclose(klkit.js_distance(p0, q0, axis=0, keepdims=True), [[0.0, 0.0]], atol=1e-7)
    np.testing.assert_allclose(klkit.js_distance(p1, q1, axis=1, keepdims=True), [[0.0649045]], atol=1e-7)
    assert klkit.js_distance(p1, q1, axis=1, keepdims=True).shape == (1, 1)
    a = np.arange(1.0, 13.0).reshape(3, 4)
    b = np.arange(13.0, 25.0).reshape(3, 4)
    np.testing.assert_allclose(
        klkit.js_distance(_normalised(a, 0), _normalised(b, 0), axis=0),
        [0.1954288, 0.1447697, 0.1138377, 0.0927636],
        atol=1e-7,
    )
    np.testing.assert_allclose(
        klkit.js_distance(_normalised(a, 1), _normalised(b, 1), axis=1), [0.1402339, 0.0399106, 0.0201815], atol=1e-7
    )


@pytest.mark.xfail(strict=True, raises=ValueError, reason=NEVER_RENORMALISES)
def test_jensenshannon_unnormalised():
    np.testing.assert_allclose(klkit.js_distance([[1.0, 2.0]], [[0.5, 1.5]], axis=1), [0.0649045], atol=1e-7)
