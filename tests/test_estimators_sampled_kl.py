"""The per-sample KL estimators k1/k2/k3 and their users, against mpmath at 60 digits."""

from __future__ import annotations

import mpmath
import numpy as np
import pytest
import torch

from klkit.distributions import gaussian_kl_standard_normal
from klkit.estimators import mc_kl
from klkit.estimators.sampled_kl import SAMPLED_KL, k1, k2, k3
from klkit.rlhf import kl_penalty

MAGNITUDES = np.concatenate([np.logspace(-12, np.log10(30.0), 300), [0.4999999, 0.5, 0.5000001]])
LOG_RATIOS = np.concatenate([-MAGNITUDES, MAGNITUDES])  # d ∈ [−30, 30], |d| down to 1e-12
DTYPES = [(np.float32, torch.float32), (np.float64, torch.float64)]


def exact_k3(d: np.ndarray) -> np.ndarray:
    """e^d − 1 − d of the values as the inputs hold them, at 60 digits."""
    with mpmath.workdps(60):
        return np.array([float(mpmath.expm1(mpmath.mpf(float(v))) - mpmath.mpf(float(v))) for v in d])


def ulps(got: np.ndarray, want: np.ndarray, dtype: type) -> np.ndarray:
    return np.abs(np.asarray(got, dtype=np.float64) - want) / (np.abs(want) * np.finfo(dtype).eps)


@pytest.mark.parametrize(("np_dtype", "torch_dtype"), DTYPES)
def test_k3_is_accurate_to_two_ulps_over_minus_30_to_30(np_dtype, torch_dtype):
    d = LOG_RATIOS.astype(np_dtype)
    want = exact_k3(d)
    assert np.all(want > 0)
    assert ulps(k3(d), want, np_dtype).max() <= 2.0
    assert ulps(k3(torch.from_numpy(d)).numpy(), want, np_dtype).max() <= 2.0
    assert k3(d).dtype == np_dtype and k3(torch.from_numpy(d)).dtype == torch_dtype


def test_k3_where_the_expm1_form_fails_below_1e_8():
    d = np.array([1e-9, -3e-9, 1e-12], dtype=np.float32)
    naive = np.expm1(d) - d  # what ``expm1(d) - d`` gives: 0 or noise, not d²/2
    assert np.all(ulps(naive, exact_k3(d), np.float32) > 1e5)
    assert np.allclose(k3(d), np.float64(d) ** 2 / 2 * (1 + np.float64(d) / 3), rtol=2e-7, atol=0)


@pytest.mark.parametrize("torch_dtype", [torch.float32, torch.float64])
def test_k3_gradient_is_expm1_without_nan_where_exp_overflows(torch_dtype):
    d = torch.tensor([-30.0, -1e-9, 0.0, 0.3, 5.0, 1000.0], dtype=torch_dtype, requires_grad=True)
    (grad,) = torch.autograd.grad(k3(d).sum(), d)
    with mpmath.workdps(40):
        want = [float(mpmath.expm1(mpmath.mpf(float(v)))) for v in d.detach()]
    assert torch.allclose(grad[:-1].double(), torch.tensor(want[:-1], dtype=torch.float64), rtol=4e-7, atol=0)
    assert bool(torch.isinf(k3(d.detach())[-1])) and not bool(torch.isnan(grad).any())


def test_k1_and_k2_are_their_definitions():
    d = np.array([-2.5, -1e-9, 0.0, 3.0])
    assert k1(d).tolist() == [2.5, 1e-9, 0.0, -3.0]
    assert k2(d).tolist() == [3.125, 5e-19, 0.0, 4.5]
    assert SAMPLED_KL["k1"] is k1 and SAMPLED_KL["k2"] is k2 and SAMPLED_KL["k3"] is k3
    assert k3(7).dtype == np.float64  # integers and Python numbers compute in float64


@pytest.mark.parametrize("np_dtype", [np.float32, np.float64])
def test_mc_kl_and_kl_penalty_use_the_accurate_k3(np_dtype):
    """mc_kl's k3 (numpy and torch) and kl_penalty's k3 agree with mpmath where expm1(d) - d cancels."""
    d = np.array([1e-9, -2e-8, 3e-7, -1e-4, 0.2], dtype=np_dtype)
    want = exact_k3(d)
    log_p = np.zeros((2, d.size), dtype=np_dtype)  # two identical rows: the mean is the per-sample value
    log_q = np.broadcast_to(d, (2, d.size)).copy()
    for est in (mc_kl(log_p, log_q, estimator="k3"), mc_kl(torch.from_numpy(log_p), torch.from_numpy(log_q))):
        got = est.value.numpy() if isinstance(est.value, torch.Tensor) else est.value
        assert ulps(got, want, np_dtype).max() <= 2.0
    logp = np.minimum(-d, 0).astype(np_dtype)  # log-probabilities (≤ 0) with ref − logp = d exactly
    penalty = kl_penalty(torch.from_numpy(logp), torch.from_numpy(logp + d), estimator="k3")
    assert ulps(penalty.value.numpy(), want, np_dtype).max() <= 2.0


@pytest.mark.parametrize(("np_dtype", "torch_dtype"), DTYPES)
def test_gaussian_kl_standard_normal_is_accurate_near_logvar_zero(np_dtype, torch_dtype):
    """½(μ² + e^v − 1 − v) at μ = 0 and logvar v in ±[1e-10, 10], and with μ ≠ 0, against mpmath."""
    logvar = np.concatenate([-np.logspace(-10, 1, 150), np.logspace(-10, 1, 150)]).astype(np_dtype)
    mu = np.zeros_like(logvar)
    want = exact_k3(logvar) / 2
    assert ulps(gaussian_kl_standard_normal(mu, logvar), want, np_dtype).max() <= 2.0
    got_torch = gaussian_kl_standard_normal(torch.from_numpy(mu), torch.from_numpy(logvar))
    assert got_torch.dtype == torch_dtype and ulps(got_torch.numpy(), want, np_dtype).max() <= 2.0
    mu = np.full_like(logvar, 1e-3)
    with mpmath.workdps(60):
        want = np.array(
            [float((mpmath.mpf(1e-3) ** 2 + mpmath.expm1(mpmath.mpf(float(v))) - float(v)) / 2) for v in logvar]
        )
    got = gaussian_kl_standard_normal(mu, logvar)
    # μ is rounded to the dtype before squaring: allow that rounding (2 ulps) and the sum's
    assert np.all(np.abs(got - want) <= 4 * np.finfo(np_dtype).eps * want)
