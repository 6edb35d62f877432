"""Total variation, Hellinger, Rényi, f-divergences and JS distance of distribution objects, against independent truth.

Closed forms against numerical quadrature (scipy.integrate.quad / dblquad) and exact sums;
every registered pair against Monte Carlo (|MC − exact| ≤ 4 SE), driven by the registry itself
(a registered family without a factory below fails, so tests and registry cannot drift); torch
and scipy objects agree; gradients are finite and pass fp64 gradcheck on a sample; every error
message is checked.
"""

from __future__ import annotations

import itertools
import math
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
import torch
import torch.distributions as td
from scipy import integrate, stats
from scipy.optimize import brentq
from scipy.spatial.distance import jensenshannon

import klkit.distributions as kd
from klkit.distributions import api, registry
from klkit.errors import (
    BackendMismatchError,
    IncompatibleDistributionsError,
    InvalidArgumentError,
    MonteCarloWarning,
    NotRegisteredError,
)

T = torch.float64


@pytest.fixture(autouse=True)
def _one_thread(torch_one_thread: None) -> None:
    """Small torch ops on a shared machine: one intra-op thread (see conftest)."""


def _t(*values: float) -> torch.Tensor:
    return torch.tensor(values, dtype=T)


# ---------------------------------------------------------------------------------------------------
# Factories: family -> role ('p' or 'q') -> torch object (batch of 2, float64), chosen so that every
# measure below is finite for α ≤ 1.5 (the +inf cases have tests of their own).
# ---------------------------------------------------------------------------------------------------
def _mvn(role: str, equal_covariance: bool = False) -> td.Distribution:
    g = torch.Generator().manual_seed(3 if role == "p" or equal_covariance else 4)
    L = torch.tril(0.3 * torch.randn(2, 3, 3, generator=g, dtype=T), -1) + torch.diag_embed(
        torch.rand(2, 3, generator=g, dtype=T) * 0.4 + 0.8
    )
    loc = torch.randn(2, 3, generator=torch.Generator().manual_seed(5 if role == "p" else 6), dtype=T)
    return td.MultivariateNormal(loc, scale_tril=L)


def _lowrank(role: str) -> td.Distribution:
    g = torch.Generator().manual_seed(1 if role == "p" else 2)
    W = 0.5 * torch.randn(2, 3, 1, generator=g, dtype=T)
    return td.LowRankMultivariateNormal(torch.randn(2, 3, generator=g, dtype=T), W, _t(0.8, 1.0, 1.2).expand(2, 3))


def _categorical(role: str) -> td.Distribution:
    probs = [[0.25] * 4, [0.5, 0.3, 0.2, 0.0]] if role == "p" else [[0.1, 0.2, 0.3, 0.4], [0.25, 0.25, 0.5, 0.0]]
    return td.Categorical(probs=torch.tensor(probs, dtype=T))


TORCH: dict[type, Callable[[str], td.Distribution]] = {
    kd.Normal: lambda r: td.Normal(_t(0.3, -1.0), _t(0.8, 1.5)) if r == "p" else td.Normal(_t(0.0, 0.5), _t(1.0, 1.4)),
    kd.LogNormal: lambda r: (
        td.LogNormal(_t(0.0, 0.5), _t(0.5, 1.0)) if r == "p" else td.LogNormal(_t(0.2, -0.3), _t(0.6, 0.9))
    ),
    kd.HalfNormal: lambda r: td.HalfNormal(_t(1.0, 2.0)) if r == "p" else td.HalfNormal(_t(1.2, 1.7)),
    kd.Exponential: lambda r: td.Exponential(_t(0.8, 2.0)) if r == "p" else td.Exponential(_t(1.0, 1.5)),
    kd.Gamma: lambda r: td.Gamma(_t(2.0, 3.0), _t(1.5, 0.5)) if r == "p" else td.Gamma(_t(2.5, 2.6), _t(1.7, 0.6)),
    kd.InverseGamma: lambda r: (
        td.InverseGamma(_t(3.0, 2.5), _t(1.0, 2.0)) if r == "p" else td.InverseGamma(_t(3.5, 3.0), _t(1.2, 2.2))
    ),
    kd.Uniform: lambda r: (
        td.Uniform(_t(0.2, 1.5), _t(0.8, 2.5)) if r == "p" else td.Uniform(_t(0.0, 1.0), _t(1.5, 3.0))
    ),
    kd.MultivariateNormal: _mvn,
    kd.LowRankMultivariateNormal: _lowrank,
    kd.Bernoulli: lambda r: td.Bernoulli(_t(0.3, 0.8) if r == "p" else _t(0.6, 0.5)),
    kd.Categorical: _categorical,
    kd.Independent: lambda r: td.Independent(TORCH[kd.Normal](r).expand((3, 2)), 1),
}
# Total variation has closed forms for Gaussians of equal covariance only.
TV_TORCH: dict[type, Callable[[str], td.Distribution]] = {
    **TORCH,
    kd.MultivariateNormal: lambda r: _mvn(r, equal_covariance=True),
    kd.Independent: lambda r: td.Independent(
        td.Normal(_t(0.3, -1.0) if r == "p" else _t(0.0, 0.5), _t(0.8, 1.5)).expand((3, 2)), 1
    ),
}


def _pair_id(pair: tuple[type, type]) -> str:
    return f"{pair[0].__name__}-{pair[1].__name__}"


RENYI = registry.registered_divergences("renyi_divergence")
TV = registry.registered_divergences("total_variation")
# The Hellinger distance: its own forms and every Rényi pair (through the order ½).
HELLINGER = sorted(
    set(registry.registered_divergences("hellinger_distance")) | set(RENYI),
    key=lambda m: (m[0].__name__, m[1].__name__),
)
JS = registry.registered_divergences("js_divergence")


def test_every_registered_family_has_a_factory() -> None:
    families = {
        t for measure in registry.DIVERGENCES for pair in registry.registered_divergences(measure) for t in pair
    }
    missing = sorted(t.__name__ for t in families if t not in TORCH)
    assert not missing, f"registered families without a parameter factory in this test: {missing}"


def test_every_registered_measure_has_a_monte_carlo_test() -> None:
    """The Monte Carlo tests below are parametrised by the registry; a new measure needs its own test here."""
    tested = {"renyi_divergence": RENYI, "total_variation": TV, "hellinger_distance": HELLINGER, "js_divergence": JS}
    assert set(registry.DIVERGENCES) == set(tested)


def test_coverage_bar() -> None:
    must = {
        (kd.Normal, kd.Normal),
        (kd.MultivariateNormal, kd.MultivariateNormal),
        (kd.Exponential, kd.Exponential),
        (kd.Gamma, kd.Gamma),
        (kd.Bernoulli, kd.Bernoulli),
        (kd.Categorical, kd.Categorical),
    }
    assert must <= set(RENYI) and must <= set(HELLINGER)
    assert {(kd.Normal, kd.Normal), (kd.Categorical, kd.Categorical), (kd.Bernoulli, kd.Bernoulli)} <= set(TV)


# ---------------------------------------------------------------------------------------------------
# Every registered pair against Monte Carlo (the registry drives the parametrisation)
# ---------------------------------------------------------------------------------------------------
def _within(exact: Any, mc: Any, k: float = 4.0) -> None:
    e = np.asarray(torch.as_tensor(exact).detach())
    v = np.asarray(torch.as_tensor(mc.value).detach())
    se = np.asarray(torch.as_tensor(mc.standard_error))
    assert e.shape == v.shape, (e.shape, v.shape)
    assert np.all(np.isfinite(e)), f"the factories should give finite values: {e}"
    assert np.all(np.abs(e - v) <= k * se + 1e-9), f"exact {e}, MC {mc}"


@pytest.mark.parametrize("alpha", [0.3, 0.7, 1.2])
@pytest.mark.parametrize("pair", RENYI, ids=_pair_id)
def test_renyi_against_monte_carlo(pair: tuple[type, type], alpha: float) -> None:
    p, q = TORCH[pair[0]]("p"), TORCH[pair[1]]("q")
    exact = api.renyi_divergence(p, q, alpha, method="exact")
    with warnings.catch_warnings():
        warnings.simplefilter("error", MonteCarloWarning)
        mc = api.renyi_divergence(p, q, alpha, method="mc", n_samples=20_000, seed=0)
    _within(exact, mc)


@pytest.mark.parametrize("pair", TV, ids=_pair_id)
def test_total_variation_against_monte_carlo(pair: tuple[type, type]) -> None:
    p, q = TV_TORCH[pair[0]]("p"), TV_TORCH[pair[1]]("q")
    _within(api.total_variation(p, q, method="exact"), api.total_variation(p, q, method="mc", n_samples=10_000, seed=0))


@pytest.mark.parametrize("pair", HELLINGER, ids=_pair_id)
def test_hellinger_against_monte_carlo(pair: tuple[type, type]) -> None:
    p, q = TORCH[pair[0]]("p"), TORCH[pair[1]]("q")
    _within(
        api.hellinger_distance(p, q, method="exact"),
        api.hellinger_distance(p, q, method="mc", n_samples=10_000, seed=0),
    )


@pytest.mark.parametrize("pair", JS, ids=_pair_id)
def test_js_against_monte_carlo(pair: tuple[type, type]) -> None:
    p, q = TORCH[pair[0]]("p"), TORCH[pair[1]]("q")
    _within(api.js_divergence(p, q, method="exact"), api.js_divergence(p, q, method="mc", n_samples=10_000, seed=0))


# ---------------------------------------------------------------------------------------------------
# Closed forms against quadrature (scipy objects; definitions written out here)
# ---------------------------------------------------------------------------------------------------
UNIVARIATE = [
    pytest.param(stats.norm(0.3, 0.8), stats.norm(-0.5, 1.3), -np.inf, np.inf, id="norm-wider-q"),
    pytest.param(stats.norm(0.3, 1.3), stats.norm(-0.5, 0.8), -np.inf, np.inf, id="norm-narrower-q"),
    pytest.param(stats.norm(0.3, 1.0), stats.norm(-0.5, 1.0), -np.inf, np.inf, id="norm-equal-variance"),
    pytest.param(stats.expon(scale=2.0), stats.expon(scale=0.5), 0, np.inf, id="expon"),
    pytest.param(stats.gamma(2.0, scale=1 / 1.5), stats.gamma(3.5, scale=1 / 0.7), 0, np.inf, id="gamma"),
    pytest.param(stats.chi2(3.0), stats.gamma(2.0, scale=1.5), 0, np.inf, id="chi2-gamma"),
    pytest.param(stats.expon(scale=1 / 1.5), stats.gamma(1.7, scale=1 / 0.7), 0, np.inf, id="expon-gamma"),
    pytest.param(stats.invgamma(3.0, scale=1.0), stats.invgamma(2.0, scale=1.5), 0, np.inf, id="invgamma"),
    pytest.param(stats.lognorm(0.5, scale=1.0), stats.lognorm(1.0, scale=np.exp(0.2)), 0, np.inf, id="lognorm"),
    pytest.param(stats.halfnorm(scale=1.0), stats.halfnorm(scale=1.5), 0, np.inf, id="halfnorm"),
]


def _quad(f: Callable[[float], float], lo: float, hi: float) -> float:
    return integrate.quad(f, lo, hi, epsabs=1e-14, epsrel=1e-12, limit=500)[0]


def _renyi_integral(p: Any, q: Any, alpha: float, lo: float, hi: float) -> float:
    return _quad(lambda x: math.exp(alpha * p.logpdf(x) + (1 - alpha) * q.logpdf(x)), lo, hi)


def _log_mass(p: Any, q: Any, alpha: float, x: float) -> float:
    with np.errstate(all="ignore"):
        return float(alpha * p.logpdf(x) + (1 - alpha) * q.logpdf(x) + math.log(abs(x)))


def _towards_the_ends(lo: float, hi: float) -> list[tuple[float, float]]:
    """(nearer, farther) points approaching each end of the support (0 from above, ±∞)."""
    ends = [(1e-3, 1e-9)] if lo == 0 else [(-10.0, -40.0)]
    return [*ends, (10.0, 40.0) if hi == np.inf else (hi - 1e-3, hi - 1e-9)]


@pytest.mark.parametrize("alpha", [0.3, 0.5, 0.8, 1.5, 2.5])
@pytest.mark.parametrize(("p", "q", "lo", "hi"), UNIVARIATE)
def test_renyi_against_quadrature(p: Any, q: Any, lo: float, hi: float, alpha: float) -> None:
    ours = api.renyi_divergence(p, q, alpha)
    assert isinstance(ours, np.floating)
    if math.isinf(ours):  # the integral diverges: the mass x·f(x) per unit of log x does not fall off at an end
        assert alpha > 1
        assert any(
            _log_mass(p, q, alpha, far) >= _log_mass(p, q, alpha, near) - 1.0 for near, far in _towards_the_ends(lo, hi)
        ), "+inf, but the integrand decays at both ends"
        return
    truth = math.log(_renyi_integral(p, q, alpha, lo, hi)) / (alpha - 1)
    assert ours == pytest.approx(truth, rel=1e-10, abs=1e-13)


@pytest.mark.parametrize(("p", "q", "lo", "hi"), UNIVARIATE)
def test_hellinger_against_quadrature(p: Any, q: Any, lo: float, hi: float) -> None:
    bc = _quad(lambda x: math.sqrt(p.pdf(x) * q.pdf(x)), lo, hi)
    assert api.hellinger_distance(p, q) == pytest.approx(math.sqrt(1 - bc), rel=1e-9)
    # the Bhattacharyya distance −log BC is half the Rényi divergence of order ½
    assert api.renyi_divergence(p, q, 0.5) == pytest.approx(-2 * math.log(bc), rel=1e-9)


TV_CASES = [
    pytest.param(stats.norm(0.3, 0.8), stats.norm(-0.5, 1.3), id="norm"),
    pytest.param(stats.norm(0.3, 1.3), stats.norm(2.5, 0.4), id="norm-narrow-q"),
    pytest.param(stats.norm(0.3, 1.0), stats.norm(-0.5, 1.0), id="norm-equal-variance"),
    pytest.param(stats.norm(0.0, 1.0), stats.norm(0.0, 1.001), id="norm-near"),
    pytest.param(stats.norm(0.0, 1.0), stats.norm(0.0, 3.0), id="norm-same-mean"),
    pytest.param(stats.expon(scale=2.0), stats.expon(scale=0.5), id="expon"),
    pytest.param(stats.uniform(0, 2), stats.uniform(1, 3), id="uniform"),
    pytest.param(stats.uniform(0, 1), stats.uniform(2, 1), id="uniform-disjoint"),
    pytest.param(stats.lognorm(0.5), stats.lognorm(1.0, scale=2.0), id="lognorm"),
    pytest.param(stats.halfnorm(scale=1.0), stats.halfnorm(scale=2.0), id="halfnorm"),
]


def _crossings(p: Any, q: Any, lo: float, hi: float) -> list[float]:
    """Where the densities cross: sign changes of log p − log q on a grid, refined by brentq."""
    a, b = max(lo, -60.0), min(hi, 60.0)
    grid = np.linspace(a, b, 24_001)[1:-1]
    with np.errstate(all="ignore"):
        g = p.logpdf(grid) - q.logpdf(grid)
    keep = np.isfinite(g)
    grid, g = grid[keep], g[keep]
    change = np.nonzero(np.sign(g[:-1]) != np.sign(g[1:]))[0]
    return [brentq(lambda x: p.logpdf(x) - q.logpdf(x), grid[i], grid[i + 1], xtol=1e-15) for i in change]


@pytest.mark.parametrize(("p", "q"), TV_CASES)
def test_total_variation_against_quadrature(p: Any, q: Any) -> None:
    lo, hi = min(p.support()[0], q.support()[0]), max(p.support()[1], q.support()[1])
    cuts = {float(x) for x in (*p.support(), *q.support()) if math.isfinite(x)} | set(_crossings(p, q, lo, hi))
    edges = [lo, *sorted(c for c in cuts if lo < c < hi), hi]  # |p − q| is smooth between the crossings
    truth = 0.5 * sum(_quad(lambda x: abs(p.pdf(x) - q.pdf(x)), a, b) for a, b in itertools.pairwise(edges))
    assert api.total_variation(p, q) == pytest.approx(truth, rel=1e-9, abs=1e-14)


def test_total_variation_of_equal_variance_normals_is_the_textbook_formula() -> None:
    for delta, sigma in ((0.5, 1.0), (3.0, 2.0), (1e-6, 1.0)):
        expected = 2 * stats.norm.cdf(delta / (2 * sigma)) - 1
        assert api.total_variation(stats.norm(0, sigma), stats.norm(delta, sigma)) == pytest.approx(expected, rel=1e-9)


def _mvn_scipy(loc: list[float], cov: list[list[float]]) -> Any:
    return stats.multivariate_normal(np.array(loc), np.array(cov))


MVN_P = _mvn_scipy([0.2, -0.3], [[1.0, 0.3], [0.3, 0.8]])
MVN_Q = _mvn_scipy([-0.4, 0.5], [[1.5, -0.2], [-0.2, 1.1]])


def _log_density_2d(d: Any) -> Callable[[float, float], float]:
    """log N(x; μ, Σ) in 2-D written out with floats (scipy's per-point logpdf is slow inside dblquad)."""
    (m0, m1), ((a, b), (_, c)) = d.mean, d.cov
    det = a * c - b * b
    const = -math.log(2 * math.pi) - 0.5 * math.log(det)
    return lambda x, y: const - 0.5 * (c * (x - m0) ** 2 - 2 * b * (x - m0) * (y - m1) + a * (y - m1) ** 2) / det


def _dblquad(f: Callable[[float, float], float]) -> float:
    return integrate.dblquad(f, -9, 9, -9, 9, epsabs=1e-11, epsrel=1e-9)[0]


@pytest.mark.parametrize("alpha", [0.5, 1.7])
def test_mvn_renyi_against_dblquad(alpha: float) -> None:
    lp, lq = _log_density_2d(MVN_P), _log_density_2d(MVN_Q)
    truth = math.log(_dblquad(lambda y, x: math.exp(alpha * lp(x, y) + (1 - alpha) * lq(x, y))))
    assert api.renyi_divergence(MVN_P, MVN_Q, alpha) == pytest.approx(truth / (alpha - 1), rel=1e-7)


def test_mvn_total_variation_with_equal_covariance_against_dblquad() -> None:
    q = _mvn_scipy([-0.4, 0.5], [[1.0, 0.3], [0.3, 0.8]])
    # equal covariances: log p − log q = wᵀx − c is linear, so p > q on the half-plane y > (c − w₀x)/w₁
    precision = np.linalg.inv(MVN_P.cov)
    w = precision @ (MVN_P.mean - q.mean)
    c = 0.5 * (MVN_P.mean @ precision @ MVN_P.mean - q.mean @ precision @ q.mean)
    boundary = lambda x: (c - w[0] * x) / w[1]  # noqa: E731
    inner = (boundary, lambda x: 12.0) if w[1] > 0 else (lambda x: -12.0, boundary)
    lp, lq = _log_density_2d(MVN_P), _log_density_2d(q)
    truth = integrate.dblquad(
        lambda y, x: math.exp(lp(x, y)) - math.exp(lq(x, y)), -10, 10, *inner, epsabs=1e-11, epsrel=1e-9
    )[0]
    assert api.total_variation(MVN_P, q) == pytest.approx(truth, rel=1e-7)


def test_mvn_renyi_is_inf_where_the_mixed_covariance_is_not_positive_definite() -> None:
    # α Σq + (1 − α) Σp with α = 3, Σp = diag(1, 4), Σq = diag(1, 1): diag(1, −5), not positive definite
    p, q = _mvn_scipy([0, 0], [[1, 0], [0, 4]]), _mvn_scipy([0, 0], [[1, 0], [0, 1]])
    assert api.renyi_divergence(p, q, 3.0) == math.inf
    # diag(1, 0.4): positive definite; diagonal covariances factorise, and the first coordinates agree
    assert api.renyi_divergence(p, q, 1.2) == pytest.approx(_normal_renyi_by_quadrature(2.0, 1.2), rel=1e-10)
    batch = td.MultivariateNormal(torch.zeros(2, 2, dtype=T), torch.diag_embed(_t(1.0, 4.0, 1.0, 1.2).reshape(2, 2)))
    value = api.renyi_divergence(batch, td.MultivariateNormal(torch.zeros(2, dtype=T), torch.eye(2, dtype=T)), 3.0)
    assert math.isinf(value[0])  # covariance diag(1, 4): 3·1 − 2·4 < 0
    assert float(value[1]) == pytest.approx(_normal_renyi_by_quadrature(math.sqrt(1.2), 3.0), rel=1e-10)  # 3 − 2.4


def _normal_renyi_by_quadrature(scale_p: float, alpha: float) -> float:
    """D_α(N(0, scale_p²) ‖ N(0, 1)) from the integral of p^α q^(1−α)."""
    return math.log(_renyi_integral(stats.norm(0, scale_p), stats.norm(0, 1), alpha, -np.inf, np.inf)) / (alpha - 1)


def test_univariate_renyi_infinities_follow_the_mixed_parameter() -> None:
    # Normal: α σq² + (1 − α) σp² = 3 − 2·4 < 0; Exponential: α λp + (1 − α) λq = 2·1 − 3 < 0
    assert api.renyi_divergence(stats.norm(0, 2), stats.norm(0, 1), 3.0) == math.inf
    assert api.renyi_divergence(stats.expon(scale=1.0), stats.expon(scale=1 / 3), 2.0) == math.inf
    p, q = stats.expon(scale=1.0), stats.expon(scale=1 / 3)  # 1.4·1 − 0.4·3 > 0: finite
    truth = math.log(_renyi_integral(p, q, 1.4, 0, np.inf)) / 0.4
    assert api.renyi_divergence(p, q, 1.4) == pytest.approx(truth, rel=1e-10)
    # Gamma: α a_p + (1 − α) a_q = 2·1 − 3 < 0
    assert api.renyi_divergence(stats.gamma(1.0), stats.gamma(3.0), 2.0) == math.inf


# ---------------------------------------------------------------------------------------------------
# Discrete laws: exact sums written out here
# ---------------------------------------------------------------------------------------------------
P4, Q4 = np.array([0.1, 0.2, 0.3, 0.4]), np.array([0.4, 0.3, 0.2, 0.1])


@pytest.mark.parametrize("alpha", [0.2, 0.5, 2.0, 7.0])
def test_categorical_and_bernoulli_renyi_are_the_sums(alpha: float) -> None:
    truth = math.log(np.sum(P4**alpha * Q4 ** (1 - alpha))) / (alpha - 1)
    p, q = td.Categorical(torch.tensor(P4)), td.Categorical(torch.tensor(Q4))
    assert float(api.renyi_divergence(p, q, alpha)) == pytest.approx(truth, rel=1e-13)
    b = math.log(0.3**alpha * 0.6 ** (1 - alpha) + 0.7**alpha * 0.4 ** (1 - alpha)) / (alpha - 1)
    assert api.renyi_divergence(stats.bernoulli(0.3), stats.bernoulli(0.6), alpha) == pytest.approx(b, rel=1e-13)


def test_categorical_with_impossible_outcomes() -> None:
    p = td.Categorical(probs=torch.tensor([0.5, 0.5, 0.0], dtype=T))
    q = td.Categorical(probs=torch.tensor([0.5, 0.0, 0.5], dtype=T))
    assert float(api.renyi_divergence(p, q, 2.0)) == math.inf  # p has mass where q has none
    assert float(api.renyi_divergence(p, q, 0.5)) == pytest.approx(-2 * math.log(0.5))
    assert float(api.total_variation(p, q)) == pytest.approx(0.5)
    assert float(api.hellinger_distance(p, q)) == pytest.approx(math.sqrt(0.5))
    disjoint = td.Categorical(probs=torch.tensor([0.0, 0.0, 1.0], dtype=T))
    assert float(api.renyi_divergence(p, disjoint, 0.5)) == math.inf
    assert float(api.hellinger_distance(p, disjoint)) == 1.0


def test_discrete_total_variation_hellinger_and_js_distance() -> None:
    p, q = td.Categorical(torch.tensor(P4)), td.Categorical(torch.tensor(Q4))
    assert float(api.total_variation(p, q)) == pytest.approx(0.5 * np.abs(P4 - Q4).sum(), rel=1e-14)
    assert float(api.hellinger_distance(p, q)) == pytest.approx(math.sqrt(1 - np.sqrt(P4 * Q4).sum()), rel=1e-13)
    assert float(api.js_distance(p, q, base=2)) == pytest.approx(jensenshannon(P4, Q4, base=2), rel=1e-12)
    assert api.total_variation(stats.bernoulli(0.3), stats.bernoulli(0.65)) == pytest.approx(0.35)
    js = api.js_distance(stats.bernoulli(0.3), stats.bernoulli(0.65))
    assert isinstance(js, np.floating)
    assert js == pytest.approx(jensenshannon([0.3, 0.7], [0.65, 0.35]), rel=1e-12)


# ---------------------------------------------------------------------------------------------------
# Identities and the f-divergence dispatch
# ---------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("pair", RENYI, ids=_pair_id)
def test_renyi_of_order_one_is_the_registered_kl_and_continuous_there(pair: tuple[type, type]) -> None:
    p, q = TORCH[pair[0]]("p"), TORCH[pair[1]]("q")
    kl = api.kl_divergence(p, q, method="exact")
    assert torch.equal(api.renyi_divergence(p, q, 1.0, method="exact"), kl)
    for alpha in (1 - 1e-5, 1 + 1e-5):
        assert torch.allclose(api.renyi_divergence(p, q, alpha), kl, rtol=1e-4, atol=1e-9)


def test_renyi_of_order_zero_is_minus_log_q_of_the_support_of_p() -> None:
    p = td.Categorical(probs=torch.tensor([0.5, 0.5, 0.0], dtype=T))
    q = td.Categorical(probs=torch.tensor([0.2, 0.3, 0.5], dtype=T))
    assert float(api.renyi_divergence(p, q, 0.0)) == pytest.approx(-math.log(0.5), rel=1e-14)
    mc = api.renyi_divergence(p, q, 0.0, method="mc", n_samples=20_000, seed=0)
    assert abs(float(mc) + math.log(0.5)) <= 4 * float(mc.standard_error)
    assert api.renyi_divergence(stats.norm(0, 1), stats.norm(3, 2), 0.0) == 0.0  # full supports
    assert api.renyi_divergence(stats.gamma(2.0), stats.gamma(3.0, scale=2.0), 0.0) == pytest.approx(0.0, abs=1e-15)


def test_renyi_is_non_decreasing_in_alpha() -> None:
    p, q = td.Gamma(_t(2.0), _t(1.5)), td.Gamma(_t(3.5), _t(0.7))
    values = [float(api.renyi_divergence(p, q, a)) for a in (0.1, 0.3, 0.5, 0.9, 1.0, 1.2, 1.5, 1.9)]
    assert values == sorted(values)


def test_renyi_of_near_identical_laws_keeps_its_digits() -> None:
    # second order: D_α ≈ α/2 · Fisher distance²; relative error at ε = 1e-7 would be ~1e-2 without regrouping
    eps = 1e-7
    normal = api.renyi_divergence(stats.norm(0, 1), stats.norm(0, 1 + eps), 0.7)
    assert normal == pytest.approx(0.7 * eps**2, rel=1e-6)  # α · 2ε²/2 (Fisher information of σ is 2/σ²)
    expon = api.renyi_divergence(stats.expon(), stats.expon(scale=1 / (1 + eps)), 0.7)
    assert expon == pytest.approx(0.7 * eps**2 / 2, rel=1e-6)
    gamma = api.renyi_divergence(stats.gamma(3.0), stats.gamma(3.0 + eps), 0.7)
    from scipy.special import polygamma

    assert gamma == pytest.approx(0.7 * float(polygamma(1, 3.0)) * eps**2 / 2, rel=1e-6)


def test_f_divergence_names_dispatch_to_their_measures() -> None:
    p, q = stats.norm(0.3, 0.8), stats.norm(-0.5, 1.3)
    assert api.f_divergence(p, q, "kl") == api.kl_divergence(p, q)
    assert api.f_divergence(p, q, "reverse_kl", base=2) == api.kl_divergence(q, p, base=2)
    assert api.f_divergence(p, q, "tv") == api.total_variation(p, q)
    assert api.f_divergence(p, q, "hellinger") == pytest.approx(api.hellinger_distance(p, q) ** 2, rel=1e-14)
    js = api.f_divergence(p, q, "js", seed=0, n_samples=1000)
    assert float(js) == float(api.js_divergence(p, q, seed=0, n_samples=1000))
    chi2 = _quad(lambda x: q.pdf(x) * math.expm1(p.logpdf(x) - q.logpdf(x)) ** 2, -np.inf, np.inf)
    assert api.f_divergence(p, q, "chi2") == pytest.approx(chi2, rel=1e-9)


def test_f_divergence_with_a_callable_against_the_closed_forms() -> None:
    p, q = td.Normal(_t(0.3), _t(0.8)), td.Normal(_t(-0.5), _t(1.3))
    cases = [
        (lambda t: t * torch.log(t), api.kl_divergence(p, q)),
        (lambda t: (t - 1) ** 2, api.f_divergence(p, q, "chi2")),
        (lambda t: 0.5 * (t - 1).abs(), api.total_variation(p, q)),
    ]
    for f, exact in cases:
        mc = api.f_divergence(p, q, f, n_samples=20_000, seed=1)
        assert abs(float(mc) - float(exact)) <= 4 * float(mc.standard_error), (mc, exact)


def _uniform(low: float, high: float, library: str) -> Any:
    return stats.uniform(low, high - low) if library == "scipy" else td.Uniform(_t(low), _t(high))


@pytest.mark.parametrize("library", ["scipy", "torch"])
def test_callable_f_where_p_has_mass_outside_q_raises_and_chi2_is_inf(library: str) -> None:
    # p = U(0, 2), q = U(0, 1): p puts ½ where q = 0, so D_f = ∫q f(p/q) + f'(∞)·½, +inf for χ², unknown for a callable
    p, q = _uniform(0.0, 2.0, library), _uniform(0.0, 1.0, library)
    with pytest.raises(
        InvalidArgumentError,
        match=(
            r"`f` is a callable, so the term p_i·lim f\(t\)/t where q_i = 0 < p_i \(.*\) is unknown to klkit; found "
            r"q\(x\) = 0 < p\(x\) at \d+ of 2000 points x sampled from p \(so p has mass outside q's support\)\. Use a "
            r"named f .*'kl' and 'chi2' are \+inf there\), or give q full support on p's\."
        ),
    ):
        api.f_divergence(p, q, lambda t: (t - 1) ** 2, n_samples=2_000, seed=0)
    assert float(api.f_divergence(p, q, "chi2", n_samples=2_000, seed=0)) == math.inf
    # the other way round q covers p: D_f = ∫ q f(p/q) with p/q = 2 on [0, 1) and 0 on [1, 2): ½ f(2) + ½ f(0)
    xlogy = torch.xlogy if library == "torch" else __import__("scipy.special").special.xlogy
    e = api.f_divergence(q, p, lambda t: xlogy(t, t), n_samples=20_000, seed=0)
    assert abs(float(e) - math.log(2)) <= 4 * float(e.standard_error)  # ½ · 2 log 2
    e = api.f_divergence(q, p, lambda t: (t - 1) ** 2, n_samples=20_000, seed=0)
    assert float(e) == pytest.approx(1.0, abs=1e-12)  # ½ (2 − 1)² + ½ (0 − 1)², every term exactly 1


@pytest.mark.parametrize("library", ["scipy", "torch"])
def test_callable_f_gets_the_checks_of_the_array_path(library: str) -> None:
    p = stats.norm(0.0, 1.0) if library == "scipy" else td.Normal(_t(0.0), _t(1.0))
    with pytest.raises(
        InvalidArgumentError,
        match=(
            r"`f` must satisfy f\(1\) = 0 \(an f-divergence of P from itself is 0\); found f\(1\) = 1\.0\. Subtract"
        ),
    ):
        api.f_divergence(p, p, lambda t: t**2, n_samples=100, seed=0)
    with pytest.raises(
        InvalidArgumentError,
        match=(
            r"`f` must act elementwise and return an array of the ratios' shape \(100,( 1)?\); found \(\)\. Write f"
        ),
    ):
        api.f_divergence(p, p, lambda t: ((t - 1) ** 2).sum(), n_samples=100, seed=0)
    log = torch.log if library == "torch" else np.log
    with pytest.raises(InvalidArgumentError, match=r"`f` returned NaN at t = 0\.0 \(\d+ ratio\(s\) in all\)\. Define"):
        api.f_divergence(
            _uniform(0.0, 1.0, library), _uniform(0.0, 2.0, library), lambda t: t * log(t), n_samples=100, seed=0
        )


CATEGORIES = {  # p = [1] against q = [½, ¼, ¼] padded to [1, 0, 0]: sums written out
    "kl": (lambda p, q: api.kl_divergence(p, q), math.log(2.0)),
    "total_variation": (lambda p, q: api.total_variation(p, q), 0.5),
    "renyi_divergence": (lambda p, q: api.renyi_divergence(p, q, 2.0), math.log(2.0)),  # log Σ p²/q
    "hellinger_distance": (lambda p, q: api.hellinger_distance(p, q), math.sqrt(1 - math.sqrt(0.5))),
    "js_divergence": (
        lambda p, q: api.js_divergence(p, q),  # m = [¾, ⅛, ⅛]: ½ log(1/¾) + ½ [½ log(½/¾) + 2·¼ log 2]
        0.5 * math.log(4 / 3) + 0.25 * math.log(2 / 3) + 0.25 * math.log(2.0),
    ),
    "chi2": (lambda p, q: api.f_divergence(p, q, "chi2"), 1.0),  # Σ p²/q − 1
    "cross_entropy": (lambda p, q: api.cross_entropy(p, q), math.log(2.0)),
}


@pytest.mark.parametrize("name", list(CATEGORIES))
def test_categoricals_of_different_sizes_raise_and_padded_ones_are_exact(name: str) -> None:
    measure, truth = CATEGORIES[name]
    short, long = td.Categorical(probs=_t(1.0)), td.Categorical(probs=_t(0.5, 0.25, 0.25))
    for a, b, ka, kb, pad in ((short, long, 1, 3, "p"), (long, short, 3, 1, "q")):
        with pytest.raises(
            IncompatibleDistributionsError,
            match=(
                rf"`p` and `q` must be Categorical laws over the same categories; found {ka} categories in p and "
                rf"{kb} in q \(their probabilities would broadcast, not compare\)\. Pad `{pad}` with zero-probability "
                r"categories up to 3: Categorical\(probs=torch\.nn\.functional\.pad\(probs, \(0, 2\)\)\)"
            ),
        ):
            measure(a, b)
    padded = td.Categorical(probs=torch.nn.functional.pad(_t(1.0), (0, 2)))
    assert float(measure(padded, long)) == pytest.approx(truth, rel=1e-13)


def test_top_level_functions_reject_categoricals_of_different_sizes() -> None:
    import klkit

    short, long = td.Categorical(probs=_t(1.0)), td.Categorical(probs=_t(0.5, 0.25, 0.25))
    for measure in (klkit.kl_divergence, klkit.total_variation, klkit.js_distance):
        with pytest.raises(IncompatibleDistributionsError, match="found 1 categories in p and 3 in q"):
            measure(short, long)


def test_chi2_monte_carlo_and_exact_agree() -> None:
    p, q = td.Gamma(_t(2.0, 3.0), _t(1.5, 0.5)), td.Gamma(_t(2.5, 2.6), _t(1.7, 0.6))
    _within(
        api.f_divergence(p, q, "chi2", method="exact"),
        api.f_divergence(p, q, "chi2", method="mc", n_samples=20_000, seed=0),
    )


def test_js_distance_is_the_root_of_the_estimate() -> None:
    p, q = stats.norm(0, 1), stats.norm(1, 2)
    d = api.js_divergence(p, q, seed=3, n_samples=20_000)
    e = api.js_distance(p, q, seed=3, n_samples=20_000)
    assert float(e) == pytest.approx(math.sqrt(float(d)), rel=1e-14)
    assert float(e.standard_error) == pytest.approx(float(d.standard_error) / (2 * math.sqrt(float(d))), rel=1e-12)
    assert float(api.js_distance(p, p)) == 0.0


def test_hellinger_estimate_near_zero_is_clipped_not_nan() -> None:
    p, q = td.Normal(_t(0.0), _t(1.0)), td.Normal(_t(1e-3), _t(1.0))
    exact_squared = -math.expm1(-1e-6 / 8)  # H² = 1 − exp(−Δμ²/8)
    squared = api.f_divergence(p, q, "hellinger", method="mc", n_samples=2_000, seed=0)
    assert abs(float(squared) - exact_squared) <= 4 * float(squared.standard_error)
    e = api.hellinger_distance(p, q, method="mc", n_samples=2_000, seed=0)
    assert float(e) == pytest.approx(math.sqrt(max(float(squared), 0.0)), rel=1e-12)  # the root of the same estimate
    assert float(e.standard_error) > 0 and math.isfinite(float(e.standard_error))
    # the root is within the delta method's 4 SE of √H² (H ≈ 3.5e-4), or at the clip the interval reaches it
    assert abs(float(e) - math.sqrt(exact_squared)) <= 4 * float(e.standard_error)


def test_heavy_tailed_renyi_weights_warn() -> None:
    # Laplace ‖ Normal at α = 2: ∫ p²/q diverges, so the weights p/q have no finite variance
    with pytest.warns(MonteCarloWarning, match="Rényi divergence"):
        api.renyi_divergence(stats.laplace(0, 1), stats.norm(0, 1), 2.0, n_samples=40_000, seed=0)


# ---------------------------------------------------------------------------------------------------
# torch and scipy agree; results have the input's type
# ---------------------------------------------------------------------------------------------------
SCIPY_PAIRS = [
    (
        lambda: (td.Normal(_t(0.3), _t(0.8)), td.Normal(_t(-0.5), _t(1.3))),
        lambda: (stats.norm(0.3, 0.8), stats.norm(-0.5, 1.3)),
    ),
    (
        lambda: (td.Exponential(_t(0.5)), td.Exponential(_t(2.0))),
        lambda: (stats.expon(scale=2.0), stats.expon(scale=0.5)),
    ),
    (
        lambda: (td.Gamma(_t(2.0), _t(1.5)), td.Gamma(_t(3.5), _t(0.7))),
        lambda: (stats.gamma(2.0, scale=1 / 1.5), stats.gamma(3.5, scale=1 / 0.7)),
    ),
    (lambda: (td.Bernoulli(_t(0.3)), td.Bernoulli(_t(0.6))), lambda: (stats.bernoulli(0.3), stats.bernoulli(0.6))),
    (
        lambda: (
            td.MultivariateNormal(torch.tensor(MVN_P.mean), torch.tensor(MVN_P.cov)),
            td.MultivariateNormal(torch.tensor(MVN_Q.mean), torch.tensor(MVN_Q.cov)),
        ),
        lambda: (MVN_P, MVN_Q),
    ),
]


@pytest.mark.parametrize("index", range(len(SCIPY_PAIRS)))
def test_torch_and_scipy_objects_agree(index: int) -> None:
    (tp, tq), (sp, sq) = SCIPY_PAIRS[index][0](), SCIPY_PAIRS[index][1]()
    checks = [
        lambda p, q: api.renyi_divergence(p, q, 0.6),
        lambda p, q: api.renyi_divergence(p, q, 1.8, base=2),
        api.hellinger_distance,
        lambda p, q: api.f_divergence(p, q, "chi2"),
    ]
    if index in (0, 1, 3):
        checks.append(api.total_variation)
    for measure in checks:
        ours_torch, ours_scipy = measure(tp, tq), measure(sp, sq)
        assert isinstance(ours_torch, torch.Tensor) and isinstance(ours_scipy, np.floating)
        assert float(ours_torch) == pytest.approx(float(ours_scipy), rel=1e-12)


# ---------------------------------------------------------------------------------------------------
# Gradients
# ---------------------------------------------------------------------------------------------------
def _measures(pair: tuple[type, type]) -> list[tuple[str, Callable[[Any, Any], Any]]]:
    out: list[tuple[str, Callable[[Any, Any], Any]]] = []
    if pair in RENYI:
        out += [
            ("renyi 0.7", lambda p, q: api.renyi_divergence(p, q, 0.7, method="exact")),
            ("renyi 1.5", lambda p, q: api.renyi_divergence(p, q, 1.5, method="exact")),
            ("hellinger", lambda p, q: api.hellinger_distance(p, q, method="exact")),
        ]
    if pair in TV:
        out.append(("tv", lambda p, q: api.total_variation(p, q, method="exact")))
    return out


def _leaves(d: td.Distribution) -> tuple[td.Distribution, list[torch.Tensor]]:
    """The same law rebuilt from leaf parameters that require gradients."""
    if isinstance(d, td.Independent):
        base, leaves = _leaves(d.base_dist)
        return td.Independent(base, d.reinterpreted_batch_ndims), leaves
    names = {
        td.Normal: ("loc", "scale"),
        td.LogNormal: ("loc", "scale"),
        td.HalfNormal: ("scale",),
        td.Exponential: ("rate",),
        td.Gamma: ("concentration", "rate"),
        td.InverseGamma: ("concentration", "rate"),
        td.Uniform: ("low", "high"),
        td.MultivariateNormal: ("loc", "scale_tril"),
        td.LowRankMultivariateNormal: ("loc", "cov_factor", "cov_diag"),
        td.Bernoulli: ("logits",),
        td.Categorical: ("logits",),
    }[type(d)]
    if isinstance(d, td.InverseGamma):
        values = [d.base_dist.concentration, d.base_dist.rate]
    else:
        values = [getattr(d, n) for n in names]
    leaves = [v.detach().clone().requires_grad_() for v in values]
    return type(d)(**dict(zip(names, leaves, strict=True))), leaves


GRADIENT_PAIRS = sorted(set(RENYI) | set(TV), key=lambda m: (m[0].__name__, m[1].__name__))


@pytest.mark.parametrize("pair", GRADIENT_PAIRS, ids=_pair_id)
def test_gradients_are_finite(pair: tuple[type, type]) -> None:
    factory = TV_TORCH if pair in TV and pair not in RENYI else TORCH
    for name, measure in _measures(pair):
        if name == "tv":
            factory = TV_TORCH
        (p, lp), (q, lq) = _leaves(factory[pair[0]]("p")), _leaves(factory[pair[1]]("q"))
        value = measure(p, q)
        grads = torch.autograd.grad(value.sum(), lp + lq, allow_unused=True)
        assert any(g is not None for g in grads), name
        assert all(g is None or bool(torch.isfinite(g).all()) for g in grads), (name, grads)


GRADCHECK = [
    ("renyi", lambda a, b, c, d: api.renyi_divergence(td.Normal(a, b), td.Normal(c, d), 0.7)),
    ("renyi", lambda a, b, c, d: api.renyi_divergence(td.Normal(a, b), td.Normal(c, b + d), 1.8)),
    ("renyi", lambda a, b, c, d: api.renyi_divergence(td.Gamma(b, d), td.Gamma(d, b), 1.3)),
    ("renyi", lambda a, b, c, d: api.renyi_divergence(td.Exponential(b), td.Exponential(d), 0.4)),
    ("hellinger", lambda a, b, c, d: api.hellinger_distance(td.Gamma(b, d), td.Gamma(d + 1, b))),
    ("tv", lambda a, b, c, d: api.total_variation(td.Normal(a, b), td.Normal(c, d))),
    ("tv", lambda a, b, c, d: api.total_variation(td.Exponential(b), td.Exponential(d))),
    (
        "renyi",
        lambda a, b, c, d: api.renyi_divergence(
            td.Categorical(logits=torch.stack([a, b, c], -1)), td.Categorical(logits=torch.stack([c, d, a], -1)), 2.5
        ),
    ),
    (
        "mvn",
        lambda a, b, c, d: api.renyi_divergence(
            td.MultivariateNormal(torch.stack([a, c], -1), scale_tril=torch.diag_embed(torch.stack([b, d], -1))),
            td.MultivariateNormal(torch.stack([c, a], -1), scale_tril=torch.diag_embed(torch.stack([d, b], -1))),
            0.6,
        ),
    ),
]


@pytest.mark.parametrize("index", range(len(GRADCHECK)), ids=[f"{n}-{i}" for i, (n, _) in enumerate(GRADCHECK)])
def test_gradcheck(index: int) -> None:
    inputs = (_t(0.3, -0.2), _t(0.8, 1.4), _t(-0.5, 0.4), _t(1.3, 0.9))
    inputs = tuple(x.requires_grad_() for x in inputs)
    assert torch.autograd.gradcheck(GRADCHECK[index][1], inputs, eps=1e-6, atol=1e-6, rtol=1e-5)


def test_monte_carlo_keeps_gradients() -> None:
    # the samples are reparameterised (loc + σ·ε with ε fixed by the seed), so the gradient of the estimate is
    # the derivative of the same estimate at the same seed: a central finite difference
    def estimate(loc: torch.Tensor) -> torch.Tensor:
        return api.total_variation(td.Normal(loc, _t(1.0)), td.Laplace(_t(0.0), _t(1.0)), n_samples=5_000, seed=0).value

    loc = _t(0.3).requires_grad_()
    (grad,) = torch.autograd.grad(estimate(loc), loc)
    h = 1e-6
    with torch.no_grad():
        difference = (estimate(_t(0.3 + h)) - estimate(_t(0.3 - h))) / (2 * h)
    assert float(grad) == pytest.approx(float(difference), rel=1e-6, abs=1e-9)


# ---------------------------------------------------------------------------------------------------
# Errors
# ---------------------------------------------------------------------------------------------------
def test_unsupported_pair_names_the_pair_and_the_fix() -> None:
    p, q = stats.laplace(0, 1), stats.norm(0, 1)
    with pytest.raises(
        NotRegisteredError,
        match=r"total variation is registered for the pair \(rv_continuous_frozen "
        r"\(klkit family Laplace\).*Normal\).*method='mc'.*register_divergence"
        r"\('total_variation', Laplace, Normal\)",
    ):
        api.total_variation(p, q, method="exact")
    with pytest.raises(
        NotRegisteredError,
        match=r"Rényi divergence is registered for the pair .*Laplace.*"
        r"\(Normal, Normal\)",
    ):
        api.renyi_divergence(p, q, 0.5, method="exact")
    with pytest.raises(NotRegisteredError, match=r"Hellinger distance .*\(Normal, Normal\).*method='mc'"):
        api.hellinger_distance(p, q, method="exact")
    with pytest.raises(NotRegisteredError, match=r"callable f has no closed form; found method='exact'\. Use method="):
        api.f_divergence(p, q, lambda t: t, method="exact")


def test_total_variation_of_unequal_covariances_is_monte_carlo_or_an_error() -> None:
    with pytest.raises(NotRegisteredError, match=r"only for equal covariances.*method='mc'"):
        api.total_variation(MVN_P, MVN_Q, method="exact")
    e = api.total_variation(MVN_P, MVN_Q, n_samples=2_000, seed=0)
    assert type(e).__name__ == "Estimate"
    lp, lq = _log_density_2d(MVN_P), _log_density_2d(MVN_Q)
    # ½∫|p − q| = ∫(p − q)₊; the kink along p = q limits dblquad to a few digits, far below 4 SE (≈ 0.04)
    truth = integrate.dblquad(
        lambda y, x: max(math.exp(lp(x, y)) - math.exp(lq(x, y)), 0.0), -9, 9, -9, 9, epsabs=1e-6, epsrel=1e-5
    )[0]
    assert abs(float(e) - truth) <= 4 * float(e.standard_error)


def test_base_applies_only_to_logarithms() -> None:
    p, q = stats.norm(0, 1), stats.norm(1, 1)
    with pytest.raises(TypeError, match=r"`total_variation` takes no `base` \(found base=2\).*Drop base="):
        api.total_variation(p, q, base=2)
    with pytest.raises(TypeError, match="`hellinger_distance` takes no `base`"):
        api.hellinger_distance(p, q, base=2)
    with pytest.raises(TypeError, match="f_divergence with f='chi2'` takes no `base`"):
        api.f_divergence(p, q, "chi2", base=2)
    assert api.renyi_divergence(p, q, 2.0, base=2) == pytest.approx(1 / math.log(2))
    with pytest.raises(ValueError, match="base"):
        api.renyi_divergence(p, q, 2.0, base=1)


def test_bad_options_and_arguments() -> None:
    p, q = stats.norm(0, 1), stats.norm(1, 1)
    for alpha in (-1.0, math.nan):
        with pytest.raises(
            InvalidArgumentError,
            match=(r"`alpha` must be >= 0 and finite; found (-1\.0|nan)\. Rényi measures .* Pass e\.g\. alpha=0\.5"),
        ):
            api.renyi_divergence(p, q, alpha)
    with pytest.raises(
        InvalidArgumentError,
        match=(
            r"`alpha` must be >= 0 and finite; found inf\. α = ∞ .* no closed form or Monte Carlo estimate for "
            r"distribution objects here: take a large finite alpha \(e\.g\. alpha=100\), or pass arrays"
        ),
    ):
        api.renyi_divergence(p, q, math.inf)
    for alpha in (True, "2", None):
        with pytest.raises(
            TypeError,
            match=r"`alpha` must be a real number >= 0 and finite; found .* of type "
            r"\w+\. Pass e\.g\. alpha=2",
        ):
            api.renyi_divergence(p, q, alpha)
    with pytest.raises(InvalidArgumentError, match=r"`f` must be one of 'kl', .*found 'kll'\. Pass e\.g\. f='chi2'"):
        api.f_divergence(p, q, "kll")
    with pytest.raises(TypeError, match=r"`f` must be a name \('kl', .*\) or a callable; found int\. Pass e\.g\."):
        api.f_divergence(p, q, 3)
    with pytest.raises(
        InvalidArgumentError,
        match=(r"`method` must be 'auto', 'exact' or 'mc'; found 'fast'\. Use method='auto' \(a closed form where"),
    ):
        api.total_variation(p, q, method="fast")
    with pytest.raises(
        InvalidArgumentError,
        match=(r"`seed` must be None or a non-negative integer; found -1\. Pass e\.g\. seed=0 for reproducible"),
    ):
        api.total_variation(p, q, seed=-1)
    with pytest.raises(TypeError, match="`total_variation` takes no `estimator`"):
        api.total_variation(p, q, estimator="k3")
    with pytest.raises(TypeError, match=r"unknown option.*'samples'"):
        api.hellinger_distance(p, q, samples=10)
    with pytest.raises(BackendMismatchError, match="different libraries"):
        api.total_variation(td.Normal(0.0, 1.0), q)
    with pytest.raises(IncompatibleDistributionsError, match="mutually singular"):
        api.renyi_divergence(stats.poisson(3), q, 0.5)


def test_register_divergence_rules() -> None:
    with pytest.raises(ValueError, match=r"`measure` must be one of 'renyi_divergence'.*found 'kl'"):
        kd.register_divergence("kl", kd.Normal, kd.Normal)
    with pytest.raises(ValueError, match=r"total_variation\(Normal, Normal\) is registered already.*override=True"):
        kd.register_divergence("total_variation", kd.Normal, kd.Normal)(lambda p, q: 0.0)
    with pytest.raises(TypeError, match="`type_q` must be a class"):
        kd.register_divergence("total_variation", kd.Normal, "Normal")  # type: ignore[arg-type]


def test_user_registration_and_ambiguity() -> None:
    saved = {m: dict(t) for m, t in registry._DIVERGENCE.items()}
    try:

        class A(kd.Normal):
            pass

        kd.register_divergence("total_variation", A, kd.Normal)(lambda p, q: 1.0)
        kd.register_divergence("total_variation", kd.Normal, A)(lambda p, q: 2.0)
        with pytest.raises(TypeError, match=r"ambiguous.*register_divergence\('total_variation', A, A\)"):
            kd.lookup_divergence("total_variation", A, A)

        class Folded(td.Normal):
            pass

        kd.register_divergence("renyi_divergence", Folded, Folded)(lambda p, q, alpha: 0.0 * p.loc + alpha)
        f = Folded(_t(0.0), _t(1.0))
        assert float(api.renyi_divergence(f, f, 0.25)) == 0.25  # raw user types are looked up first
        assert float(api.renyi_divergence(td.Normal(_t(0.0), _t(1.0)), f, 2.0)) == 0.0  # else the Normal form
    finally:
        for m, t in saved.items():
            registry._DIVERGENCE[m].clear()
            registry._DIVERGENCE[m].update(t)
        registry._DIVERGENCE_CACHE.clear()
