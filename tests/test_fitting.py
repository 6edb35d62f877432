"""klkit.fitting: forward (mean-seeking) vs reverse (mode-seeking) KL fits, against independent truth.

Truth comes from numerical integration (numpy/scipy on a fine grid), torch's own closed-form KL and the
target's known parameters.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import optimize, stats
from torch.distributions import Categorical, Independent, MixtureSameFamily, MultivariateNormal, Normal

from klkit.errors import InvalidArgumentError
from klkit.estimators import Estimate
from klkit.fitting import FitResult, fit, mass_covered

GRID = np.linspace(-16.0, 16.0, 32_001)
DX = GRID[1] - GRID[0]


def _bimodal() -> MixtureSameFamily:
    return MixtureSameFamily(
        Categorical(torch.tensor([0.5, 0.5], dtype=torch.float64)),
        Normal(torch.tensor([-3.0, 3.0], dtype=torch.float64), torch.tensor(1.0).double()),
    )


def _log_bimodal(x):
    return np.logaddexp(stats.norm.logpdf(x, -3, 1), stats.norm.logpdf(x, 3, 1)) + math.log(0.5)


def _reverse_kl_quadrature(mean, std):
    lq = stats.norm.logpdf(GRID, mean, std)
    return float(np.sum(np.exp(lq) * (lq - _log_bimodal(GRID))) * DX)


@pytest.fixture(scope="module")
def forward_1d() -> FitResult:
    return fit(_bimodal(), divergence="forward", seed=0, eval_samples=50_000)


@pytest.fixture(scope="module")
def reverse_1d() -> FitResult:
    return fit(_bimodal(), divergence="reverse", restarts=3, steps=300, seed=0, eval_samples=50_000)


def test_forward_is_the_moment_match_mean_0_std_sqrt10(forward_1d):
    q = forward_1d.distribution
    assert isinstance(q, Normal)
    assert abs(float(q.mean)) <= 1e-12  # the target's exact mean, not that of samples
    assert abs(float(q.stddev) / math.sqrt(10) - 1) <= 1e-12  # variance 1 + 3² by the law of total variance
    assert "exact mean and covariance" in forward_1d.method and len(forward_1d.restarts) == 1


def test_forward_gaussian_uses_the_mixtures_exact_moments_and_cross_entropy():
    """Unequal weights and scales: mean and variance against their hand-computed values, loss by quadrature."""
    w, mu, sd = np.array([0.3, 0.7]), np.array([-2.0, 1.0]), np.array([0.5, 1.5])
    target = MixtureSameFamily(Categorical(torch.tensor(w)), Normal(torch.tensor(mu), torch.tensor(sd)))
    mean = float(w @ mu)  # 0.1
    var = float(w @ (sd**2 + mu**2)) - mean**2
    result = fit(target, seed=1, eval_samples=1000)
    q = result.distribution
    assert abs(float(q.mean) - mean) <= 1e-12 and abs(float(q.variance) - var) <= 1e-12 * var
    logp = np.log(np.exp(stats.norm.logpdf(GRID[:, None], mu, sd)) @ w)
    cross_entropy = -float(np.sum(np.exp(logp) * stats.norm.logpdf(GRID, mean, math.sqrt(var))) * DX)
    assert result.restarts[0].loss == pytest.approx(cross_entropy, rel=1e-9)
    assert result.restarts[0].steps == 0


def test_forward_gaussian_exact_moments_in_two_dimensions():
    rng = np.random.default_rng(3)
    w = np.array([0.2, 0.5, 0.3])
    mu = rng.normal(size=(3, 2)) * 3
    a = rng.normal(size=(3, 2, 2))
    cov = a @ a.transpose(0, 2, 1) + 0.5 * np.eye(2)
    target = MixtureSameFamily(
        Categorical(torch.tensor(w)), MultivariateNormal(torch.tensor(mu), covariance_matrix=torch.tensor(cov))
    )
    mean = w @ mu
    second = np.einsum("k,kij->ij", w, cov + mu[:, :, None] * mu[:, None, :])  # E[x xᵀ]
    full = fit(target, seed=0, eval_samples=1000).distribution
    assert np.abs(full.mean.numpy() - mean).max() <= 1e-12
    assert np.abs(full.covariance_matrix.numpy() - (second - np.outer(mean, mean))).max() <= 1e-12
    diag = fit(target, covariance="diag", seed=0, eval_samples=1000).distribution
    assert np.abs(diag.variance.numpy() - np.diag(second - np.outer(mean, mean))).max() <= 1e-12
    independent = Independent(Normal(torch.tensor(mu[0]), torch.tensor([0.5, 2.0], dtype=torch.float64)), 1)
    q = fit(independent, seed=0, eval_samples=1000).distribution
    assert np.abs(q.covariance_matrix.numpy() - np.diag([0.25, 4.0])).max() <= 1e-12


def test_forward_gaussian_without_exact_moments_falls_back_to_samples():
    from torch.distributions import ExpTransform, TransformedDistribution

    target = TransformedDistribution(Normal(torch.tensor(0.0).double(), torch.tensor(0.5).double()), [ExpTransform()])
    result = fit(target, seed=0, n_samples=200_000, eval_samples=1000)
    assert "200,000 target samples" in result.method
    mean, var = math.exp(0.125), (math.exp(0.25) - 1) * math.exp(0.25)  # lognormal(0, 0.5²)
    assert abs(float(result.distribution.mean) - mean) <= 4 * math.sqrt(var / 200_000)


def test_forward_kl_at_the_forward_fit_matches_quadrature(forward_1d):
    q = forward_1d.distribution
    logp = _log_bimodal(GRID)
    truth = float(np.sum(np.exp(logp) * (logp - stats.norm.logpdf(GRID, float(q.mean), float(q.stddev)))) * DX)
    est = forward_1d.forward_kl
    assert isinstance(est, Estimate)
    assert abs(est.value - truth) <= 4 * est.standard_error + 1e-3


def test_reverse_finds_one_mode_mean_3_std_1(reverse_1d):
    q = reverse_1d.distribution
    assert abs(abs(float(q.mean)) - 3) <= 0.1
    assert abs(float(q.stddev) - 1) <= 0.05
    assert len(reverse_1d.restarts) == 3
    best = reverse_1d.restarts[reverse_1d.best]
    assert best.modes == [0 if float(q.mean) < 0 else 1]  # the mode reported is the one it sits on
    assert best.loss == min(r.loss for r in reverse_1d.restarts)
    assert len(best.trace) == 300


def test_reverse_kl_at_the_reverse_fit_matches_quadrature_optimum(reverse_1d):
    opt = optimize.minimize(
        lambda t: _reverse_kl_quadrature(t[0], math.exp(t[1])),
        [2.5, 0.3],
        method="Nelder-Mead",
        options={"xatol": 1e-7, "fatol": 1e-12},
    )
    est = reverse_1d.reverse_kl
    assert abs(est.value - opt.fun) <= 4 * est.standard_error + 2e-3
    # the mean-seeking fit is far worse in the reverse direction, and vice versa
    fwd = fit(_bimodal(), divergence="forward", seed=1, eval_samples=20_000)
    assert fwd.reverse_kl.value > est.value + 0.1
    assert reverse_1d.forward_kl.value > fwd.forward_kl.value + 1.0


def test_mass_covered_forward_all_reverse_one_mode(forward_1d, reverse_1d):
    torch.manual_seed(0)
    covered_f = mass_covered(_bimodal(), forward_1d.distribution, n_samples=50_000)
    covered_r = mass_covered(_bimodal(), reverse_1d.distribution, n_samples=50_000)

    # truth by quadrature: target mass inside q's central 95% interval
    def truth(q):
        lo, hi = float(q.mean) - 1.959964 * float(q.stddev), float(q.mean) + 1.959964 * float(q.stddev)
        return 0.5 * sum(stats.norm.cdf(hi, m, 1) - stats.norm.cdf(lo, m, 1) for m in (-3, 3))

    for est, q in ((covered_f, forward_1d.distribution), (covered_r, reverse_1d.distribution)):
        assert abs(est.value - truth(q)) <= 4 * est.standard_error + 2e-3
    assert covered_f.value > 0.99 and 0.4 < covered_r.value < 0.55


def test_mass_covered_of_q_itself_is_the_level():
    torch.manual_seed(1)
    e = mass_covered(Normal(0.0, 2.0), Normal(0.0, 2.0), level=0.8, n_samples=40_000)
    assert abs(e.value - 0.8) <= 4 * e.standard_error + 2e-3


def test_gaussian_target_closed_form_kl_matches_torch():
    target = MultivariateNormal(
        torch.tensor([1.0, -2.0], dtype=torch.float64), torch.tensor([[2.0, 0.6], [0.6, 1.0]], dtype=torch.float64)
    )
    res = fit(target, divergence="forward", seed=0, n_samples=20_000)
    q = res.distribution
    assert isinstance(q, MultivariateNormal)
    assert not isinstance(res.forward_kl, Estimate)  # closed form, from klkit's registry
    torch.testing.assert_close(torch.as_tensor(res.forward_kl), torch.distributions.kl_divergence(target, q))
    torch.testing.assert_close(torch.as_tensor(res.reverse_kl), torch.distributions.kl_divergence(q, target))
    assert float(res.forward_kl) < 1e-3  # the MLE of 20,000 samples is close to the target


def test_diag_covariance_is_the_per_axis_variance():
    target = MultivariateNormal(
        torch.zeros(2, dtype=torch.float64), torch.tensor([[2.0, 0.9], [0.9, 1.0]], dtype=torch.float64)
    )
    q = fit(target, divergence="forward", covariance="diag", seed=0, n_samples=50_000).distribution
    assert isinstance(q, Independent)
    torch.testing.assert_close(q.variance, torch.tensor([2.0, 1.0], dtype=torch.float64), atol=0.06, rtol=0)


def test_reverse_on_a_gaussian_target_recovers_it_full_covariance():
    cov = torch.tensor([[1.5, -0.7], [-0.7, 1.0]], dtype=torch.float64)
    target = MultivariateNormal(torch.tensor([2.0, -1.0], dtype=torch.float64), cov)
    res = fit(target, divergence="reverse", restarts=1, steps=400, seed=0)
    q = res.distribution
    torch.testing.assert_close(q.mean, target.mean, atol=0.08, rtol=0)
    torch.testing.assert_close(q.covariance_matrix, cov, atol=0.12, rtol=0)
    assert float(res.reverse_kl) < 0.01


def _three_modes() -> MixtureSameFamily:
    locs = torch.tensor([[-4.0, -2.0], [4.0, -2.0], [0.0, 4.0]], dtype=torch.float64)
    covs = torch.eye(2, dtype=torch.float64).expand(3, 2, 2) * 0.8
    return MixtureSameFamily(
        Categorical(torch.tensor([0.3, 0.3, 0.4], dtype=torch.float64)), MultivariateNormal(locs, covs)
    )


def test_forward_mixture_by_em_recovers_the_three_modes():
    target = _three_modes()
    res = fit(
        target,
        family="gaussian_mixture",
        components=3,
        divergence="forward",
        restarts=2,
        seed=0,
        n_samples=20_000,
        eval_samples=20_000,
    )
    q = res.distribution
    assert isinstance(q, MixtureSameFamily)
    modes = res.restarts[res.best].modes
    assert sorted(modes) == [0, 1, 2]
    means = q.component_distribution.mean
    for i, m in enumerate(modes):
        assert float(torch.linalg.norm(means[i] - target.component_distribution.mean[m])) < 0.1
        assert abs(float(q.mixture_distribution.probs[i]) - [0.3, 0.3, 0.4][m]) < 0.02
    assert res.forward_kl.value < 0.01


def test_reverse_gaussian_in_2d_sits_on_one_mode_with_kl_minus_log_weight():
    target = _three_modes()
    res = fit(target, divergence="reverse", restarts=2, steps=300, seed=3, eval_samples=20_000)
    mode = res.restarts[res.best].modes[0]
    assert float(torch.linalg.norm(res.distribution.mean - target.component_distribution.mean[mode])) < 0.2
    # on a well-separated mode k, q ≈ component k and p ≈ w_k · component k there: KL(q‖p) ≈ −log w_k
    assert abs(res.reverse_kl.value + math.log([0.3, 0.3, 0.4][mode])) < 0.02


def test_reverse_mixture_covers_both_modes():
    res = fit(
        _bimodal(),
        family="gaussian_mixture",
        components=2,
        divergence="reverse",
        restarts=1,
        steps=300,
        seed=0,
        eval_samples=20_000,
    )
    means = sorted(float(m) for m in res.distribution.component_distribution.mean)
    assert abs(means[0] + 3) < 0.15 and abs(means[1] - 3) < 0.15
    assert res.reverse_kl.value < 0.01


def test_seed_reproducible_and_global_rng_untouched():
    state = torch.random.get_rng_state()
    a = fit(_bimodal(), divergence="reverse", restarts=1, steps=50, seed=5, eval_samples=1000)
    b = fit(_bimodal(), divergence="reverse", restarts=1, steps=50, seed=5, eval_samples=1000)
    assert torch.equal(torch.random.get_rng_state(), state)
    assert float(a.distribution.mean) == float(b.distribution.mean)
    assert a.trace == b.trace


@pytest.mark.parametrize(
    ("kwargs", "exc", "match"),
    [
        ({"family": "student"}, ValueError, "`family` must be one of 'gaussian', 'gaussian_mixture'"),
        ({"divergence": "both"}, ValueError, "`divergence` must be one of 'forward', 'reverse'"),
        ({"covariance": "tied"}, ValueError, "`covariance` must be one of"),
        ({"components": 2}, ValueError, "`components` must be 1 with family='gaussian'"),
        ({"components": 0, "family": "gaussian_mixture"}, ValueError, "`components` must be a positive integer"),
        ({"restarts": 0}, ValueError, "`restarts` must be a positive integer"),
        ({"learning_rate": -1.0}, ValueError, "`learning_rate` must be a positive finite number"),
    ],
)
def test_errors(kwargs, exc, match):
    with pytest.raises(exc, match=match):
        fit(_bimodal(), **kwargs)


def test_target_errors():
    with pytest.raises(TypeError, match="`target` must be a distribution with `sample` and `log_prob`"):
        fit(np.zeros(3))
    with pytest.raises(InvalidArgumentError, match="`target` must have batch_shape"):
        fit(Normal(torch.zeros(3), 1.0))
    with pytest.raises(InvalidArgumentError, match="`level` must lie in"):
        mass_covered(Normal(0.0, 1.0), Normal(0.0, 1.0), level=1.5)
