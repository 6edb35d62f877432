"""k-NN entropy (Kozachenko–Leonenko) and KL (Wang–Kulkarni–Verdú) against closed-form truth.

Tolerance for one estimate: ``4 * standard_error + allowance``. The allowance is the
documented finite-sample bias of the method for that case (measured over seeds, see
the comments): zero where the estimator is unbiased in practice, larger near the
boundary of a bounded support (uniform, exponential) and for KL in higher dimension.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import stats

from klkit.errors import BackendMismatchError
from klkit.estimators import Estimate, knn_entropy, knn_kl_divergence
from klkit.estimators.samples import grid_steps, jittered


def gauss_kl(mu: float, s: float, d: int) -> float:
    """KL(N(0, I_d) ‖ N(mu·1, s² I_d)), closed form."""
    return d * (math.log(s) + (1 + mu**2) / (2 * s**2) - 0.5)


def close(e: Estimate, truth: float, allowance: float) -> bool:
    return abs(float(e) - truth) < 4 * float(e.standard_error) + allowance


# --- entropy -----------------------------------------------------------------------------------


# (d, n, allowance): measured errors over 5 seeds were within 3 SE for d = 1, 3 and
# at most 0.08 nats for d = 10 (SE 0.055 at n=1e3, 0.019 at n=1e4).
@pytest.mark.parametrize(
    ("d", "n", "allowance"),
    [(1, 1_000, 0.0), (1, 10_000, 0.0), (3, 1_000, 0.0), (3, 10_000, 0.01), (10, 1_000, 0.05), (10, 10_000, 0.05)],
)
def test_gaussian_entropy(d, n, allowance):
    rng = np.random.default_rng(d * n)
    cov = stats.wishart(df=d + 2, scale=np.eye(d), seed=d).rvs() if d > 1 else np.array([[2.0]])
    x = rng.multivariate_normal(np.zeros(d), np.atleast_2d(cov), size=n)
    truth = stats.multivariate_normal(np.zeros(d), cov).entropy()
    assert close(knn_entropy(x), truth, allowance)


# Bounded supports: k-NN balls cross the boundary and the estimate is biased upward;
# measured at d=3: +0.06 to +0.15 at n=1e3, +0.05 to +0.08 at n=1e4 (uniform, exponential).
@pytest.mark.parametrize(
    ("d", "n", "allowance"), [(1, 1_000, 0.01), (1, 10_000, 0.01), (3, 1_000, 0.2), (3, 10_000, 0.1)]
)
def test_uniform_and_exponential_entropy(d, n, allowance):
    rng = np.random.default_rng(n + d)
    widths = np.linspace(1.0, 3.0, d)
    uniform = rng.uniform(0, widths, (n, d))
    assert close(knn_entropy(uniform), float(np.sum(np.log(widths))), allowance)
    scales = np.linspace(0.5, 2.0, d)
    exponential = rng.exponential(scales, (n, d))
    assert close(knn_entropy(exponential), float(np.sum(stats.expon(scale=scales).entropy())), allowance + 0.05)


def test_entropy_shifts_by_log_scale_and_both_metrics_agree():
    x = np.random.default_rng(0).normal(size=(3000, 2))
    truth = math.log(2 * math.pi * math.e)
    for metric in ("euclidean", "chebyshev"):
        e = knn_entropy(x, metric=metric, standardize=False)
        assert close(e, truth, 0.0)
        scaled = knn_entropy(3.0 * x + 1.0, metric=metric, standardize=False)
        assert float(scaled) == pytest.approx(float(e) + 2 * math.log(3.0), abs=1e-9)
    assert float(knn_entropy(x, base=2)) == pytest.approx(float(knn_entropy(x)) / math.log(2))


def test_standardize_makes_entropy_affine_invariant():
    x = np.random.default_rng(1).normal(size=(2000, 3))
    a = np.array([[2.0, 0.3, 0.0], [0.0, 0.5, 0.1], [0.0, 0.0, 1.5]])
    h, h_mapped = knn_entropy(x), knn_entropy(x @ a.T + 5.0)
    assert float(h_mapped) == pytest.approx(float(h) + math.log(abs(np.linalg.det(a))), abs=1e-8)


def test_standard_error_and_bootstrap_interval_are_calibrated():
    estimates, errors = [], []
    for seed in range(40):
        x = np.random.default_rng(seed).normal(size=(500, 2))
        e = knn_entropy(x)
        estimates.append(float(e))
        errors.append(float(e.standard_error))
    assert np.mean(errors) == pytest.approx(np.std(estimates, ddof=1), rel=0.35)
    x = np.random.default_rng(99).normal(size=(2000, 2))
    e = knn_entropy(x, bootstrap=300, seed=0)
    lo, hi = e.confidence_interval
    assert lo < float(e) < hi and e.confidence_level == 0.95
    assert (hi - lo) == pytest.approx(2 * 1.96 * float(e.standard_error), rel=0.3)
    again = knn_entropy(x, bootstrap=300, seed=0)
    assert again.confidence_interval == e.confidence_interval
    assert "95% CI" in str(e)


def test_rounded_data_are_dequantised_by_default_and_duplicates_raise_without_jitter():
    x = np.round(np.random.default_rng(2).normal(size=(3000, 1)), 2)  # rounded to 0.01: many ties
    with pytest.raises(ValueError, match=r"`x` must hold distinct points.*duplicate.*`jitter` at its default"):
        knn_entropy(x, jitter=0)
    truth = 0.5 * math.log(2 * math.pi * math.e)
    for e in (knn_entropy(x), knn_entropy(x, jitter=0.01, seed=3)):
        assert close(e, truth, 0.01)
    assert knn_entropy(x).method.endswith("ties jittered") and float(knn_entropy(x)) == float(knn_entropy(x))


@pytest.mark.parametrize("decimals", [1, 2])
def test_rounded_two_dimensional_entropy_and_kl_match_the_closed_forms(decimals):
    """Ties within a coordinate (few exact duplicates in 2-D) bias the k-NN distances; de-quantised, they do not."""
    rng = np.random.default_rng(10 + decimals)
    x, y = rng.normal(0, 1, (4000, 2)), rng.normal([1.0, 0.0], [1.0, 2.0], (4000, 2))
    xr, yr = np.round(x, decimals), np.round(y, decimals)
    assert close(knn_entropy(xr), math.log(2 * math.pi * math.e), 0.01)
    kl = 0.5 * ((1 + 1 / 4) + 1 - 2 + math.log(4.0))  # KL(N(0, I) ‖ N((1, 0), diag(1, 4))): ½(tr + μ'Σ⁻¹μ − d + log|Σ|)
    assert close(knn_kl_divergence(xr, yr), kl, 0.02)


def test_samples_rounded_to_different_grids_are_each_dequantised():
    rng = np.random.default_rng(12)
    x, y = rng.normal(0, 1, 5000), np.round(rng.normal(1, 1, 5000), 1)  # only Q's sample is rounded, to 0.1
    assert close(knn_kl_divergence(x, y), 0.5, 0.02)  # KL(N(0, 1) ‖ N(1, 1)) = ½
    (_, moved), tied = jittered([x[:, None], y[:, None]], None, np.random.default_rng(0))
    assert tied and np.abs(moved[:, 0] - y).max() > 0.04  # y gets its own step, 0.1, not x's tiny gaps


def test_only_tied_coordinates_get_noise():
    rng = np.random.default_rng(4)
    x = np.c_[rng.normal(size=500), np.round(rng.normal(size=500), 1)]
    steps = grid_steps([x])
    assert steps[0] == 0.0 and steps[1] == pytest.approx(0.1)
    (same,), tied = jittered([x[:, :1]], None, np.random.default_rng(0))
    assert not tied and np.array_equal(same, x[:, :1])  # continuous data are never changed
    (moved,), tied = jittered([x], None, np.random.default_rng(0))
    assert tied and np.array_equal(moved[:, 0], x[:, 0])
    assert 0 < np.abs(moved[:, 1] - x[:, 1]).max() <= 0.05 + 1e-12 and len(np.unique(moved[:, 1])) == 500


def test_torch_input_gives_torch_output():
    x = torch.randn(1000, 2, dtype=torch.float32, generator=torch.Generator().manual_seed(0))
    e = knn_entropy(x)
    assert isinstance(e.value, torch.Tensor) and e.value.dtype == torch.float32
    assert float(e) == pytest.approx(float(knn_entropy(x.double().numpy())), rel=1e-6)


# --- KL -------------------------------------------------------------------------------------------------


# d = 1, N(0,1) ‖ N(1,1): all methods within 4 SE + 0.02 at n = 1e3 and 1e4.
@pytest.mark.parametrize("n", [1_000, 10_000])
@pytest.mark.parametrize("method", ["fixed", "adaptive", "gaussian_guided"])
def test_kl_one_dimensional_gaussians(n, method):
    rng = np.random.default_rng(n)
    x, y = rng.normal(0, 1, n), rng.normal(1, 1, n)
    e = knn_kl_divergence(x, y, method=method)
    assert close(e, 0.5, 0.02) and e.n_samples == n


# d = 3, q = N(0.57·1, I), KL = 0.487: measured bias at n=1e4 is −0.06 (fixed), −0.04
# (adaptive), −0.02 (guided); at n = 1e3 about twice that.
@pytest.mark.parametrize(("n", "allowance"), [(1_000, 0.15), (10_000, 0.08)])
def test_kl_three_dimensional_gaussians(n, allowance):
    rng = np.random.default_rng(n + 3)
    x, y = rng.normal(0, 1, (n, 3)), rng.normal(0.57, 1, (n, 3))
    truth = gauss_kl(0.57, 1.0, 3)
    for method in ("fixed", "adaptive", "gaussian_guided"):
        assert close(knn_kl_divergence(x, y, method=method), truth, allowance), method


def test_gaussian_guided_removes_most_of_the_high_dimensional_bias():
    # d = 10, n = 1e4, KL = 1.62: the flat-ball estimator is biased by about -0.35.
    rng = np.random.default_rng(10)
    x, y = rng.normal(0, 1, (10_000, 10)), rng.normal(0.57, 1, (10_000, 10))
    truth = gauss_kl(0.57, 1.0, 10)
    fixed = knn_kl_divergence(x, y, metric="chebyshev")
    guided = knn_kl_divergence(x, y, metric="chebyshev", method="gaussian_guided")
    assert float(fixed) - truth < -0.2
    assert close(guided, truth, 0.1)


def test_kl_non_gaussian_exponential():
    # KL(Exp(rate 1) ‖ Exp(rate 2)) = log(1/2) + 2 - 1
    rng = np.random.default_rng(5)
    x, y = rng.exponential(1.0, 10_000), rng.exponential(0.5, 10_000)
    assert close(knn_kl_divergence(x, y), math.log(0.5) + 1.0, 0.02)


def test_kl_of_same_distribution_is_near_zero_and_invariant_to_rigid_motion():
    rng = np.random.default_rng(6)
    x, y = rng.normal(size=(3000, 2)), rng.normal(size=(3000, 2))
    e = knn_kl_divergence(x, y)
    assert close(e, 0.0, 0.0)
    theta = 0.7
    rot = np.array([[math.cos(theta), -math.sin(theta)], [math.sin(theta), math.cos(theta)]])
    moved = knn_kl_divergence(x @ rot.T + 3.0, y @ rot.T + 3.0)
    assert float(moved) == pytest.approx(float(e), abs=1e-9)


def test_kl_bootstrap_and_torch():
    rng = np.random.default_rng(7)
    x, y = rng.normal(0, 1, (2000, 1)), rng.normal(1, 1, (2000, 1))
    e = knn_kl_divergence(torch.as_tensor(x), torch.as_tensor(y), bootstrap=200, seed=1)
    assert isinstance(e.value, torch.Tensor)
    lo, hi = e.confidence_interval
    assert float(lo) < float(e) < float(hi)


# --- errors -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"k": 0}, r"`k` must be an integer >= 1; found 0"),
        ({"k": 2.5}, r"`k` must be an integer"),
        ({"k": 50}, r"`x` must hold more than k=50 samples; found 10"),
        ({"metric": "manhattan"}, r"`metric` must be 'euclidean' or 'chebyshev'; found 'manhattan'"),
        ({"bootstrap": 1}, r"`bootstrap` must be None or an integer >= 2"),
        ({"bootstrap": 10, "confidence": 1.5}, r"`confidence` must be in \(0, 1\)"),
        ({"jitter": -1.0}, r"`jitter` must be None \(de-quantise tied coordinates\), 0 \(no noise\) or a finite width"),
        ({"base": -2}, r"`base`"),
    ],
)
def test_entropy_argument_errors(kwargs, match):
    x = np.random.default_rng(0).normal(size=(10, 2))
    with pytest.raises(ValueError, match=match):
        knn_entropy(x, **kwargs)


def test_sample_errors():
    with pytest.raises(ValueError, match=r"`x` must hold finite numbers.*row 1"):
        knn_entropy(np.array([[0.0], [np.nan], [1.0], [2.0], [3.0]]))
    with pytest.raises(ValueError, match=r"shape \(n,\) or \(n, d\)"):
        knn_entropy(np.zeros((4, 2, 2)))
    with pytest.raises(ValueError, match="must hold real numbers"):
        knn_entropy(np.array(["a", "b", "c", "d", "e"]))
    with pytest.raises(ValueError, match=r"positive-definite sample covariance.*standardize=False"):
        knn_entropy(np.c_[np.arange(10.0), 2 * np.arange(10.0)])
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(20, 2)), rng.normal(size=(20, 3))
    with pytest.raises(ValueError, match=r"same dimension.*found 2 and 3"):
        knn_kl_divergence(x, y)
    with pytest.raises(ValueError, match=r"`method` must be one of 'fixed', 'adaptive' or 'gaussian_guided'"):
        knn_kl_divergence(x, x, method="wkv")
    with pytest.raises(ValueError, match=r"`y` must hold at least k=3 samples; found 2"):
        knn_kl_divergence(x, y[:2, :2])
    triple = np.repeat(x, 3, axis=0)  # every x has 3 copies among the y's: its 3rd y-neighbour is at distance 0
    with pytest.raises(ValueError, match=r"`x` and `y` share points.*method='adaptive'"):
        knn_kl_divergence(x, triple, jitter=0)
    assert math.isfinite(float(knn_kl_divergence(x, triple, method="adaptive", jitter=0)))
    with pytest.raises(BackendMismatchError, match="mix torch"):
        knn_kl_divergence(torch.as_tensor(x), x)


@pytest.mark.parametrize("metric", ["euclidean", "chebyshev"])
def test_brute_force_kernel_matches_the_kd_tree(metric):
    from scipy.spatial import cKDTree

    from klkit.estimators.neighbours import _brute

    p_norm = 2.0 if metric == "euclidean" else math.inf
    rng = np.random.default_rng(8)
    x, y = rng.normal(size=(1500, 9)) + 100.0, rng.normal(size=(1200, 9)) + 100.5  # offset: float32 centring
    np.testing.assert_allclose(_brute(x, x, 3, p_norm, True), cKDTree(x).query(x, k=[2, 4], p=p_norm)[0], rtol=1e-12)
    np.testing.assert_allclose(_brute(x, y, 3, p_norm, False), cKDTree(y).query(x, k=[1, 3], p=p_norm)[0], rtol=1e-12)


def test_thread_count_changes_nothing_but_speed():
    """The neighbour searches use klkit.get_num_threads() threads; the estimates do not depend on it."""
    import klkit
    from klkit.estimators import mutual_information

    rng = np.random.default_rng(9)
    x, y = rng.normal(size=(3000, 3)), rng.normal(size=(3000, 3))
    high = rng.normal(size=(2000, 9))  # d >= 8: the fused brute-force kernel
    a = rng.normal(size=3000)
    calls = [
        lambda: knn_entropy(x),
        lambda: knn_kl_divergence(x, y, method="adaptive"),
        lambda: knn_entropy(high),
        lambda: mutual_information(a, np.sin(a) + 0.3 * x[:, 0], method="ksg"),
        lambda: mutual_information(x, y[:, :2], method="ksg"),
    ]
    default = [float(f()) for f in calls]
    try:
        klkit.set_num_threads(1)
        single = [float(f()) for f in calls]
    finally:
        klkit.set_num_threads(None)
    assert single == default


def test_tiny_tie_breaking_noise_would_not_do_for_entropy():
    """Why the default noise is a grid step wide: noise of 1e-10 (sklearn's) keeps duplicates 1e-10 apart."""
    x = np.round(np.random.default_rng(2).normal(size=(3000, 1)), 2)
    tiny = x + 1e-10 * x.std() * np.random.default_rng(0).standard_normal(x.shape)
    truth = 0.5 * math.log(2 * math.pi * math.e)
    assert float(knn_entropy(tiny, jitter=0)) < truth - 10
    assert close(knn_entropy(x), truth, 0.01)
