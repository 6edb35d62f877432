"""mc_kl (Schulman k1/k2/k3) and the Estimate type, against closed-form Gaussian KL."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

import klkit
from klkit.errors import BackendMismatchError
from klkit.estimators import Estimate, mc_kl


def gauss_kl(m1: float, s1: float, m2: float, s2: float) -> float:
    """KL(N(m1, s1²) ‖ N(m2, s2²)), the textbook closed form."""
    return math.log(s2 / s1) + (s1**2 + (m1 - m2) ** 2) / (2 * s2**2) - 0.5


def gauss_logs(n: int, p=(0.0, 1.0), q=(0.7, 1.3), seed=0, shape=()):
    x = np.random.default_rng(seed).normal(p[0], p[1], (n, *shape))
    return stats.norm(*p).logpdf(x), stats.norm(*q).logpdf(x)


# --- accuracy against the closed form ----------------------------------------------------------


@pytest.mark.parametrize("estimator", ["k1", "k3"])
@pytest.mark.parametrize(("p", "q"), [((0.0, 1.0), (0.7, 1.3)), ((0.0, 1.0), (1.0, 1.0)), ((1.0, 0.5), (0.0, 1.0))])
def test_unbiased_estimators_match_closed_form_within_standard_error(estimator, p, q):
    log_p, log_q = gauss_logs(100_000, p, q)
    e = mc_kl(log_p, log_q, estimator=estimator)
    truth = gauss_kl(*p, *q)
    # 5 standard errors: a false failure has probability ~6e-7 per case.
    assert abs(e.value - truth) < 5 * e.standard_error
    assert e.n_samples == 100_000 and e.method == f"MC {estimator}"


def test_k2_is_biased_by_the_documented_amount():
    # p = N(0,1), q = N(2,1): log r = 2x - 2, so E[k2] = ½ E[(2x-2)²] = 4 while KL = 2.
    log_p, log_q = gauss_logs(100_000, (0.0, 1.0), (2.0, 1.0))
    e = mc_kl(log_p, log_q, estimator="k2")
    assert abs(e.value - 4.0) < 5 * e.standard_error
    assert e.value - gauss_kl(0, 1, 2, 1) > 1.5


def test_k2_agrees_with_kl_to_second_order_for_close_distributions():
    log_p, log_q = gauss_logs(100_000, (0.0, 1.0), (0.05, 1.0))
    e = mc_kl(log_p, log_q, estimator="k2")
    assert abs(e.value - gauss_kl(0, 1, 0.05, 1)) < 5 * e.standard_error


@pytest.mark.parametrize("estimator", ["k1", "k3"])
def test_unbiased_with_tiny_samples_over_many_repeats(estimator):
    # 20_000 independent estimates from n = 5 samples each: the batch axis holds the repeats.
    log_p, log_q = gauss_logs(5, (0.0, 1.0), (0.5, 0.8), seed=1, shape=(20_000,))
    e = mc_kl(log_p, log_q, estimator=estimator)
    assert e.shape == (20_000,)
    estimates = np.asarray(e.value)
    mean, se_of_mean = estimates.mean(), estimates.std(ddof=1) / math.sqrt(estimates.size)
    assert abs(mean - gauss_kl(0, 1, 0.5, 0.8)) < 5 * se_of_mean


def test_standard_error_matches_spread_of_repeated_estimates():
    log_p, log_q = gauss_logs(50, (0.0, 1.0), (0.5, 1.0), seed=2, shape=(4000,))
    e = mc_kl(log_p, log_q)
    spread = np.std(e.value, ddof=1)
    assert np.median(e.standard_error) == pytest.approx(spread, rel=0.15)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.floats(-700, 700, allow_nan=False), min_size=1, max_size=50))
def test_k3_is_non_negative_per_sample(logr):
    logr = np.array(logr)
    # Two identical rows: the mean over axis 0 is the per-sample value itself.
    log_q = np.stack([logr, logr])
    e = mc_kl(np.zeros_like(log_q), log_q, estimator="k3")
    assert np.all(np.asarray(e.value) >= 0)
    tq = torch.tensor(log_q)
    assert torch.all(mc_kl(torch.zeros_like(tq), tq).value >= 0)


def test_k3_is_accurate_for_tiny_log_ratios():
    logr = np.full((2, 3), 1e-6)
    e = mc_kl(np.zeros_like(logr), logr)
    # (e^r - 1) - r = r²/2 + r³/6 + ...
    assert np.allclose(e.value, 0.5e-12 + 1e-18 / 6, rtol=1e-6)


# --- backends ------------------------------------------------------------------------------------


@pytest.mark.parametrize("estimator", ["k1", "k2", "k3"])
def test_torch_and_numpy_agree(estimator):
    log_p, log_q = gauss_logs(1000, shape=(3,))
    e_np = mc_kl(log_p, log_q, estimator=estimator, base=2)
    e_t = mc_kl(torch.tensor(log_p), torch.tensor(log_q), estimator=estimator, base=2)
    assert isinstance(e_t.value, torch.Tensor) and e_t.value.dtype == torch.float64
    assert isinstance(e_np.value, np.ndarray)
    np.testing.assert_allclose(e_t.value.numpy(), e_np.value, rtol=1e-12)
    np.testing.assert_allclose(e_t.standard_error.numpy(), e_np.standard_error, rtol=1e-10)


def test_dtype_kept_and_scalar_results():
    log_p, log_q = gauss_logs(100)
    e32 = mc_kl(log_p.astype(np.float32), log_q.astype(np.float32))
    assert e32.value.dtype == np.float32 and np.ndim(e32.value) == 0
    et = mc_kl(torch.tensor(log_p, dtype=torch.float32), torch.tensor(log_q, dtype=torch.float32))
    assert et.value.dtype == torch.float32 and et.value.shape == ()


def test_base_2_divides_by_log_2():
    log_p, log_q = gauss_logs(1000)
    nats, bits = mc_kl(log_p, log_q), mc_kl(log_p, log_q, base=2)
    assert bits.value == pytest.approx(nats.value / math.log(2))
    assert bits.standard_error == pytest.approx(nats.standard_error / math.log(2))


def test_axis_selects_the_sample_axis():
    log_p, log_q = gauss_logs(200, shape=(4,))
    a = mc_kl(log_p, log_q, axis=0)
    b = mc_kl(log_p.T, log_q.T, axis=-1)
    np.testing.assert_allclose(a.value, b.value)


def test_autograd_gradient_of_k1_and_k3_matches_analytic_gradient():
    # KL(N(0,1) ‖ N(mu,1)) = mu²/2, d/dmu = mu. Reparameterisation is not needed: samples come from p.
    mu = torch.tensor(0.8, dtype=torch.float64, requires_grad=True)
    x = torch.randn(200_000, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    log_p = torch.distributions.Normal(0.0, 1.0).log_prob(x)
    for estimator in ("k1", "k3"):
        log_q = torch.distributions.Normal(mu, 1.0).log_prob(x)
        e = mc_kl(log_p, log_q, estimator=estimator)
        (grad,) = torch.autograd.grad(e.value, mu)
        assert abs(grad.item() - 0.8) < 0.02
        assert not e.standard_error.requires_grad


def test_autograd_gradcheck():
    g = torch.Generator().manual_seed(0)
    log_p = torch.randn(6, 2, dtype=torch.float64, generator=g)
    log_q = torch.randn(6, 2, dtype=torch.float64, generator=g, requires_grad=True)
    for estimator in ("k1", "k2", "k3"):
        assert torch.autograd.gradcheck(lambda lq, est=estimator: mc_kl(log_p, lq, estimator=est).value, (log_q,))


def test_log_q_minus_inf_gives_infinite_kl_with_nan_error():
    e = mc_kl(np.zeros(3), np.array([0.0, -np.inf, 0.0]))
    assert e.value == np.inf and np.isnan(e.standard_error)
    et = mc_kl(torch.zeros(3), torch.tensor([0.0, -math.inf, 0.0]))
    assert et.value.item() == math.inf and math.isnan(et.standard_error.item())


# --- errors -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("log_p", "log_q", "kwargs", "error", "match"),
    [
        ([0.0, np.nan], [0.0, 0.0], {}, ValueError, r"`log_p` must hold log-densities.*nan"),
        ([0.0, 0.0], [np.nan, 0.0], {}, ValueError, r"`log_q` must hold log-densities.*NaN"),
        ([0.0, -np.inf], [0.0, 0.0], {}, ValueError, r"`log_p`.*zero density under p"),
        ([0.0, 0.0], [np.inf, 0.0], {}, ValueError, r"`log_q`.*\+inf"),
        ([0.0, 0.0], [0.0, 0.0, 0.0], {}, ValueError, r"same shape.*\(2,\) and \(3,\)"),
        ([0.0], [0.0], {}, ValueError, r"at least 2 samples.*found 1"),
        (0.0, 0.0, {}, ValueError, r"at least one dimension"),
        ([0.0, 0.0], [0.0, 0.0], {"estimator": "k4"}, ValueError, r"`estimator`.*'k4'"),
        ([0.0, 0.0], [0.0, 0.0], {"axis": 1}, ValueError, r"`axis` must be in \[-1, 0\]"),
        ([0.0, 0.0], [0.0, 0.0], {"axis": 0.5}, ValueError, r"`axis` must be an integer"),
        ([0.0, 0.0], [0.0, 0.0], {"base": 1}, ValueError, r"`base`"),
    ],
)
def test_errors_name_argument_rule_and_finding(log_p, log_q, kwargs, error, match):
    with pytest.raises(error, match=match):
        mc_kl(np.asarray(log_p), np.asarray(log_q), **kwargs)


def test_mixing_numpy_and_torch_raises():
    with pytest.raises(BackendMismatchError, match="mix torch"):
        mc_kl(np.zeros(3), torch.zeros(3))


# --- Estimate -----------------------------------------------------------------------------------


def test_estimate_prints_value_error_method_and_n():
    assert str(Estimate(0.50312, 0.00121, 100_000, "MC k3")) == "0.5031 ± 0.0012 (MC k3, n=100000)"
    assert str(Estimate(12.3456, 0.25, 50, "x")) == "12.35 ± 0.25 (x, n=50)"
    assert "inf ± nan" in str(Estimate(math.inf, math.nan, 3, "MC k3"))
    batch = Estimate(np.array([0.1, 0.2]), np.array([0.01, 0.02]), 10, "MC k1")
    assert str(batch) == "[0.100 ± 0.010, 0.200 ± 0.020] shape (2,) (MC k1, n=10)"
    assert repr(batch).startswith("Estimate([")


def test_estimate_behaves_like_its_value():
    e = Estimate(0.5, 0.01, 100, "MC k3")
    assert float(e) == 0.5 and e + 1 == 1.5 and 1 + e == 1.5 and e * 2 == 1.0 and 2 / e == 4.0
    assert e - 0.5 == 0 and 1 - e == 0.5 and e**2 == 0.25 and -e == -0.5 and abs(-e) == 0.5
    assert e > 0.4 and e >= 0.5 and e < 0.6 and e <= 0.5 and e == 0.5 and e != 0.4
    assert np.asarray(e) == 0.5 and np.exp(e) == pytest.approx(math.exp(0.5))
    assert f"{e:.2f}" == "0.50" and round(e, 1) == 0.5


def test_arithmetic_between_estimates_returns_plain_values():
    a, b = Estimate(0.5, 0.01, 100, "MC k3"), Estimate(0.25, 0.01, 100, "MC k3")
    for result in (a - b, a + b, a * b, a / b):
        assert not isinstance(result, Estimate)
    assert a - b == 0.25 and a > b


def test_estimate_with_torch_value_stays_torch():
    v = torch.tensor([0.5, 1.0], requires_grad=True)
    e = Estimate(v, torch.tensor([0.1, 0.1]), 10, "MC k3")
    out = e * 2
    assert isinstance(out, torch.Tensor) and out.requires_grad
    assert torch.equal(torch.exp(e), torch.exp(v))
    np.testing.assert_allclose(np.asarray(e), [0.5, 1.0])
    assert isinstance(e[1], Estimate) and float(e[1]) == 1.0 and len(e) == 2
    assert [float(x) for x in e] == [0.5, 1.0]


def test_estimate_is_immutable_and_scalar_not_indexable():
    e = Estimate(0.5, 0.01, 100, "MC k3")
    with pytest.raises(dataclasses.FrozenInstanceError):
        e.value = 1.0
    with pytest.raises(TypeError, match="0-d Estimate"):
        e[0]
    with pytest.raises(TypeError, match="0-d Estimate"):
        len(e)


def test_public_exports():
    assert klkit.Estimate is Estimate and klkit.mc_kl is mc_kl
    assert "Estimate" in klkit.__all__ and "mc_kl" in klkit.__all__
