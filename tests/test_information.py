"""Mutual information, joint and conditional entropy: sklearn and scipy references, closed forms,
the chain-rule identities, data processing, no cancellation, kinds, axes, torch, every error."""

from __future__ import annotations

import math

import mpmath
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from scipy.stats import entropy as scipy_entropy
from sklearn.metrics import mutual_info_score

import klkit
from conftest import MEASURE_PROPERTIES
from klkit.errors import InvalidArgumentError, InvalidDistributionError, ShapeError

pytestmark = pytest.mark.usefixtures("torch_one_thread")
KINDS = ["probs", "log_probs", "logits"]


def _as_kind(table: np.ndarray, kind: str, shift: float = 1.7) -> np.ndarray:
    """The same joint table as probabilities, log-probabilities, or logits (log-probs + a constant)."""
    if kind == "probs":
        return table
    with np.errstate(divide="ignore"):
        log = np.log(table)
    return log if kind == "log_probs" else log + shift


@st.composite
def tables(draw, max_side=6):
    nx, ny = draw(st.integers(1, max_side)), draw(st.integers(1, max_side))
    weights = draw(arrays(np.float64, (2, nx, ny), elements=st.floats(0, 10)))
    zeros = draw(arrays(np.bool_, (2, nx, ny)))
    zeros[:, 0, 0] = False
    weights[:, 0, 0] += 1e-3  # never an all-zero table
    weights = np.where(zeros, 0.0, weights)  # impossible cells
    return weights / weights.sum(axis=(1, 2), keepdims=True)


def _h(p, axis=-1):
    return scipy_entropy(p, axis=axis)


# ---------------------------------------------------------------------------
# Reference values
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(6))
def test_mutual_information_is_sklearns_on_the_normalised_contingency_table(seed):
    rng = np.random.default_rng(seed)
    shape = [(2, 2), (3, 5), (8, 4), (1, 6), (10, 10), (4, 7)][seed]
    counts = rng.poisson(3.0, size=shape)
    counts[0, 0] += 1
    if seed >= 4:
        counts[1, :] = 0  # a value of X never seen
    expected = mutual_info_score(None, None, contingency=counts)
    assert float(klkit.mutual_information(counts / counts.sum())) == pytest.approx(expected, rel=1e-12, abs=1e-15)
    labels_x = rng.integers(0, 4, size=500)
    labels_y = (labels_x + rng.integers(0, 2, size=500)) % 5
    table = np.zeros((4, 5))
    np.add.at(table, (labels_x, labels_y), 1.0)
    assert float(klkit.mutual_information(table / 500)) == pytest.approx(
        mutual_info_score(labels_x, labels_y), rel=1e-12
    )


def test_closed_forms():
    # Y = X uniform on k outcomes: I = H(X) = log k, H(Y|X) = 0, H(X, Y) = log k
    for k in (2, 3, 10):
        diagonal = np.eye(k) / k
        assert float(klkit.mutual_information(diagonal)) == pytest.approx(math.log(k), rel=1e-15)
        assert float(klkit.conditional_entropy(diagonal)) == 0.0
        assert float(klkit.joint_entropy(diagonal)) == pytest.approx(math.log(k), rel=1e-15)
    # binary symmetric channel with a fair input: I = 1 − h₂(ε) bits, H(Y|X) = h₂(ε)
    for eps in (1e-9, 0.01, 0.11, 0.5):
        table = 0.5 * np.array([[1 - eps, eps], [eps, 1 - eps]])
        h2 = float(-(mpmath.mpf(eps) * mpmath.log(eps, 2) + mpmath.mpf(1 - eps) * mpmath.log(1 - eps, 2)))
        assert float(klkit.mutual_information(table, base=2)) == pytest.approx(1 - h2, rel=1e-12, abs=1e-16)
        assert float(klkit.conditional_entropy(table, base=2)) == pytest.approx(h2, rel=1e-12)


def test_independence_gives_zero_without_cancellation():
    """I of a product table is 0 to rounding; H(X) + H(Y) − H(X,Y) would carry ε·H(X,Y) ≈ 3e-15 here."""
    rng = np.random.default_rng(1)
    px, py = rng.dirichlet(np.ones(300)), rng.dirichlet(np.ones(400))
    table = np.outer(px, py)
    assert float(klkit.mutual_information(table)) <= 1e-15
    # nearly independent: a perturbation of size δ gives I ≈ δ² · const; checked against mpmath
    delta = 1e-6
    table = np.array([[0.25 + delta, 0.25 - delta], [0.25 - delta, 0.25 + delta]])
    cells = [mpmath.mpf(x) for x in table.ravel()]
    exact = sum(c * mpmath.log(c / mpmath.mpf("0.25")) for c in cells)  # both marginals are exactly ½
    assert float(klkit.mutual_information(table)) == pytest.approx(float(exact), rel=1e-6)


# ---------------------------------------------------------------------------
# Identities and inequalities
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
@MEASURE_PROPERTIES
@given(table=tables())
def test_chain_rule_identities(backend, kind, table):
    hx, hy, hxy = _h(table.sum(-1)), _h(table.sum(-2)), _h(table.reshape(2, -1))
    x = backend(_as_kind(table, kind))
    mi = backend.numpy(klkit.mutual_information(x, kind=kind))
    h_y_given_x = backend.numpy(klkit.conditional_entropy(x, kind=kind))
    h_x_given_y = backend.numpy(klkit.conditional_entropy(x, given=-1, kind=kind))
    joint = backend.numpy(klkit.joint_entropy(x, kind=kind))
    tol = {"rtol": 1e-10, "atol": 1e-12}
    np.testing.assert_allclose(joint, hxy, **tol)
    np.testing.assert_allclose(mi, hx + hy - hxy, **tol)
    np.testing.assert_allclose(mi, hy - h_y_given_x, **tol)
    np.testing.assert_allclose(mi, hx - h_x_given_y, **tol)
    np.testing.assert_allclose(h_y_given_x, hxy - hx, **tol)
    assert (mi >= 0).all() and (mi <= np.minimum(hx, hy) + 1e-12).all()
    assert (h_y_given_x >= 0).all() and (h_y_given_x <= hy + 1e-12).all()
    # symmetric in X and Y
    swapped = backend.numpy(klkit.mutual_information(x, axes=(-1, -2), kind=kind))
    np.testing.assert_allclose(swapped, mi, rtol=1e-13, atol=1e-15)


@MEASURE_PROPERTIES
@given(table=tables(), channel=arrays(np.float64, (6, 5), elements=st.floats(0.01, 10)))
def test_data_processing_inequality(table, channel):
    """X → Y → Z with Z drawn from a channel K(z | y): I(X; Z) ≤ I(X; Y)."""
    ny = table.shape[-1]
    kernel = channel[:ny] / channel[:ny].sum(-1, keepdims=True)  # rows: p(z | y)
    pxz = table @ kernel
    assert (klkit.mutual_information(pxz) <= klkit.mutual_information(table) + 1e-12).all()
    np.testing.assert_allclose(pxz.sum(axis=(1, 2)), 1.0, rtol=1e-13)


def test_mi_is_kl_from_the_product_of_marginals():
    rng = np.random.default_rng(2)
    table = rng.dirichlet(np.ones(12), size=3).reshape(3, 3, 4)
    product = table.sum(-1)[..., :, None] * table.sum(-2)[..., None, :]
    np.testing.assert_allclose(
        klkit.mutual_information(table), klkit.kl_divergence(table.reshape(3, -1), product.reshape(3, -1)), rtol=1e-13
    )


def test_axes_batch_and_base(backend):
    rng = np.random.default_rng(3)
    table = rng.dirichlet(np.ones(12), size=5).reshape(5, 3, 4)
    expected = klkit.mutual_information(table)
    moved = np.transpose(table, (1, 0, 2))  # (X, batch, Y)
    got = backend.numpy(klkit.mutual_information(backend(moved), axes=(0, 2), base=2))
    np.testing.assert_allclose(got, expected / math.log(2), rtol=1e-14)
    cond = backend.numpy(klkit.conditional_entropy(backend(moved), given=2, axes=(0, -1), base=10))
    np.testing.assert_allclose(cond, klkit.conditional_entropy(table, given=-1) / math.log(10), rtol=1e-14)
    joint = backend.numpy(klkit.joint_entropy(backend(moved), axes=(2, 0)))
    np.testing.assert_allclose(joint, _h(table.reshape(5, -1)), rtol=1e-14)


def test_masked_logits_are_impossible_cells():
    table = np.array([[0.5, 0.0], [0.25, 0.25]])
    logits = np.where(table > 0, np.log(np.where(table > 0, table, 1.0)) + 3.0, -np.inf)
    for fn in (klkit.mutual_information, klkit.conditional_entropy, klkit.joint_entropy):
        assert float(fn(logits, kind="logits")) == pytest.approx(float(fn(table)), rel=1e-14), fn.__name__


# ---------------------------------------------------------------------------
# torch
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("name", ["mutual_information", "conditional_entropy", "joint_entropy"])
def test_gradcheck(kind, name):
    torch = pytest.importorskip("torch")
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 3, 4, generator=g, dtype=torch.float64, requires_grad=True)  # (batch, X, Y)

    def to(t):
        flat = t.reshape(2, 12)
        out = {"logits": flat, "probs": torch.softmax(flat, -1), "log_probs": torch.log_softmax(flat, -1)}[kind]
        return out.reshape(2, 3, 4).permute(1, 0, 2)  # X first, batch in the middle

    fn = getattr(klkit, name)
    options = {"axes": (0, 2), "kind": kind, "base": 2} | ({"given": 0} if name == "conditional_entropy" else {})
    assert torch.autograd.gradcheck(lambda t: fn(to(t), **options), (x,), eps=1e-6, atol=1e-8)


def test_gradients_are_finite_with_empty_rows():
    torch = pytest.importorskip("torch")
    table = torch.tensor([[0.5, 0.0, 0.0], [0.0, 0.0, 0.0], [0.25, 0.0, 0.25]], dtype=torch.float64, requires_grad=True)
    for fn in (klkit.mutual_information, klkit.conditional_entropy, klkit.joint_entropy):
        table.grad = None
        fn(table).backward()
        assert torch.isfinite(table.grad).all(), fn.__name__


@pytest.mark.parametrize("dtype_name", ["float16", "bfloat16", "float32"])
def test_half_precision_comes_back_in_its_dtype(dtype_name):
    torch = pytest.importorskip("torch")
    dtype = getattr(torch, dtype_name)
    table = torch.tensor([[0.25, 0.125], [0.125, 0.5]], dtype=dtype)
    exact = table.double().numpy()
    hx, hy, hxy = _h(exact.sum(-1)), _h(exact.sum(-2)), _h(exact.ravel())
    for fn, expected in (
        (klkit.mutual_information, hx + hy - hxy),
        (klkit.conditional_entropy, hxy - hx),
        (klkit.joint_entropy, hxy),
    ):
        got = fn(table)
        assert got.dtype == dtype
        assert float(got) == pytest.approx(expected, rel=4 * torch.finfo(dtype).eps), fn.__name__


def test_array_api_strict_matches_numpy():
    xs = pytest.importorskip("array_api_strict")
    rng = np.random.default_rng(4)
    table = rng.dirichlet(np.ones(12), size=2).reshape(2, 3, 4)
    for fn in (klkit.mutual_information, klkit.conditional_entropy, klkit.joint_entropy):
        np.testing.assert_allclose(np.asarray(fn(xs.asarray(table))), fn(table), rtol=1e-14)


# the uniform 2 × 2 table: X and Y independent fair coins, I = 0, H(Y|X) = log 2, H(X, Y) = log 4
UNIFORM_2X2 = {"mutual_information": 0.0, "conditional_entropy": math.log(2), "joint_entropy": math.log(4)}


def test_validate_false_gives_nan_on_invalid_tables_only():
    table = np.array([[[0.25, 0.25], [0.25, 0.25]], [[0.5, np.nan], [0.25, 0.25]]])
    for fn in (klkit.mutual_information, klkit.conditional_entropy, klkit.joint_entropy):
        got = fn(table, validate=False)
        assert got[0] == pytest.approx(UNIFORM_2X2[fn.__name__], abs=1e-15) and np.isnan(got[1]), fn.__name__


# ---------------------------------------------------------------------------
# Errors
# ---------------------------------------------------------------------------


FUNCTIONS = [klkit.mutual_information, klkit.conditional_entropy, klkit.joint_entropy]


@pytest.mark.parametrize("fn", FUNCTIONS)
def test_a_table_that_is_not_a_distribution(backend, fn):
    good = np.full((2, 2), 0.25)
    with pytest.raises(
        InvalidDistributionError,
        match=(
            r"`pxy` must sum to 1 over both `axes` together, a joint distribution \(tolerance 1\.5e-08 for "
            r".*float64\); found sums from 2 to 2 in 1 of 1 table\(s\)\. klkit never renormalises silently: divide "
            r"a contingency table of counts by its total"
        ),
    ):
        fn(backend(good * 2))
    with pytest.raises(
        InvalidDistributionError,
        match=(
            r"`pxy` must hold probabilities: finite and >= 0; found 1 entry, first -0\.25 at index \(1, 0\)\. "
            r"Pass kind='log_probs'"
        ),
    ):
        fn(backend(np.array([[0.5, 0.5], [-0.25, 0.25]])))
    with pytest.raises(InvalidDistributionError, match=r"`pxy` must hold probabilities.*first nan at index \(0, 1\)"):
        fn(backend(np.array([[0.5, np.nan], [0.25, 0.25]])))
    with pytest.raises(InvalidDistributionError, match=r"`pxy` must be normalised, logsumexp = 0, over both `axes`"):
        fn(backend(np.log(good) + 1), kind="log_probs")
    with pytest.raises(InvalidDistributionError, match=r"`pxy` must hold log-probabilities: <= 0 and not NaN; found 1"):
        fn(backend(np.log(good) + np.array([[0, 0], [0, 2.0]])), kind="log_probs")
    with pytest.raises(
        InvalidDistributionError,
        match=(
            r"`pxy` must hold logits: real numbers or -inf \(masked\), never NaN or \+inf; found 1 entry, first inf"
        ),
    ):
        fn(backend(np.array([[0.0, np.inf], [0.0, 0.0]])), kind="logits")
    with pytest.raises(
        InvalidDistributionError,
        match=(r"`pxy` must have at least one finite logit per table; found 1 table\(s\) with every logit -inf"),
    ):
        fn(backend(np.array([[[0.0, 1.0], [0.0, 0.0]], [[-np.inf, -np.inf], [-np.inf, -np.inf]]])), kind="logits")
    # a joint table's rows need not sum to 1: only the whole table does
    assert float(backend.numpy(fn(backend(good)))) == pytest.approx(UNIFORM_2X2[fn.__name__], abs=1e-15)


@pytest.mark.parametrize("fn", FUNCTIONS)
def test_axes_errors(fn):
    table = np.full((2, 3), 1 / 6)
    with pytest.raises(
        InvalidArgumentError,
        match=(
            r"`axes` must be a pair of integers, the axes of X and Y in `pxy`; found -1\. "
            r"Pass e\.g\. axes=\(-2, -1\)"
        ),
    ):
        fn(table, axes=-1)
    with pytest.raises(InvalidArgumentError, match=r"`axes` must be a pair of integers.*found \(0, 1, 2\)"):
        fn(table, axes=(0, 1, 2))
    with pytest.raises(InvalidArgumentError, match=r"`axes` must be a pair of integers.*found \(0\.0, 1\)"):
        fn(table, axes=(0.0, 1))
    with pytest.raises(
        InvalidArgumentError,
        match=(r"`axes` must name two distinct axes of `pxy`; found axes=\(1, -1\), both axis 1 of 2\."),
    ):
        fn(table, axes=(1, -1))
    with pytest.raises(
        ShapeError, match=(r"`axes` must name axes of `pxy`, in \[-2, 1\] for shape \(2, 3\); found axes=\(0, 2\)\.")
    ):
        fn(table, axes=(0, 2))
    with pytest.raises(ShapeError, match=r"`pxy` must have at least two dimensions \(X and Y\); found shape \(6,\)"):
        fn(table.ravel())
    with pytest.raises(ShapeError, match=r"`pxy` must have at least one outcome on each of `axes`; found 0 × 3"):
        fn(np.zeros((0, 3)))


def test_given_must_be_one_of_axes():
    table = np.full((2, 2, 3), 1 / 6)
    for given_axis in (0, 3, 1.0, True):
        with pytest.raises(
            InvalidArgumentError,
            match=(
                rf"`given` must be one of `axes` \(1, 2\), the axis of the conditioning variable X in H\(Y\|X\); "
                rf"found given={given_axis!r}\. Pass given=axes\[0\] for H\(Y\|X\)"
            ),
        ):
            klkit.conditional_entropy(table, given=given_axis, axes=(1, 2))
    np.testing.assert_allclose(klkit.conditional_entropy(table, given=-2, axes=(1, 2)), math.log(3), rtol=1e-15)
    np.testing.assert_allclose(klkit.conditional_entropy(table, given=1, axes=(1, 2)), math.log(3), rtol=1e-15)
    np.testing.assert_allclose(klkit.conditional_entropy(table, given=2, axes=(1, 2)), math.log(2), rtol=1e-15)


def test_option_errors():
    table = np.full((2, 2), 0.25)
    with pytest.raises(InvalidArgumentError, match=r"`base` must be None \(nats\) or a finite number > 1; found 0\.5"):
        klkit.mutual_information(table, base=0.5)
    with pytest.raises(InvalidArgumentError, match=r"`kind` must be one of 'probs', 'log_probs' or 'logits'"):
        klkit.joint_entropy(table, kind="counts")
    with pytest.raises(InvalidArgumentError, match=r"`validate` must be True or False; found 'no'"):
        klkit.conditional_entropy(table, validate="no")
    with pytest.raises(TypeError, match=r"`pxy` must be an array .*; found builtins\.dict"):
        klkit.mutual_information({"a": 1})
    with pytest.raises(TypeError, match=r"`pxy` must hold real numbers; found dtype complex128"):
        klkit.mutual_information(table.astype(complex))
