"""Every registered closed form, checked against independent truth — driven by the registry itself.

For each registered KL pair and entropy: Monte Carlo (within 5 standard errors),
torch.distributions where torch has the pair, numerical integration
(scipy.integrate.quad) for 1-D continuous families and exact summation for
discrete ones, scipy objects against the torch answer, scipy's own ``entropy()``,
and gradients. A registered family without a parameter factory below fails
``test_every_registered_family_has_a_factory``, so tests and registry cannot drift.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
import torch
import torch.distributions as td
from scipy import integrate, stats

import klkit
import klkit.distributions as kd
from klkit.distributions.adapters import to_family

T = torch.float64


def _t(*values: Any) -> torch.Tensor:
    return torch.tensor(values, dtype=T)


# ---------------------------------------------------------------------------------------------------
# Parameter factories: family -> role ('p' or 'q') -> torch object (batch of 2, float64).
# The 'q' parameters are chosen so that the cross-family pairs mix finite and +inf entries.
# ---------------------------------------------------------------------------------------------------
def _lowrank(role: str) -> td.Distribution:
    g = torch.Generator().manual_seed(1 if role == "p" else 2)
    W = torch.randn(2, 3, 1, generator=g, dtype=T)
    return td.LowRankMultivariateNormal(torch.randn(2, 3, generator=g, dtype=T), W, _t(0.5, 1.0, 1.5).expand(2, 3))


def _mvn(role: str) -> td.Distribution:
    g = torch.Generator().manual_seed(3 if role == "p" else 4)
    L = torch.tril(torch.randn(2, 3, 3, generator=g, dtype=T), -1) + torch.diag_embed(
        torch.rand(2, 3, generator=g, dtype=T) + 0.5
    )
    return td.MultivariateNormal(torch.randn(2, 3, generator=g, dtype=T), scale_tril=L)


_AFFINE = [td.transforms.AffineTransform(0.5, 2.0)]

TORCH: dict[type, Callable[[str], td.Distribution]] = {
    kd.Normal: lambda r: td.Normal(_t(0.3, -1.0), _t(0.8, 1.5)) if r == "p" else td.Normal(_t(0.0, 0.5), _t(1.2, 2.0)),
    kd.Laplace: lambda r: (
        td.Laplace(_t(0.3, -1.0), _t(0.8, 1.5)) if r == "p" else td.Laplace(_t(0.5, 1.0), _t(1.2, 2.0))
    ),
    kd.Cauchy: lambda r: td.Cauchy(_t(0.3, -1.0), _t(0.8, 1.5)) if r == "p" else td.Cauchy(_t(0.0, 0.5), _t(1.2, 2.0)),
    kd.Gumbel: lambda r: td.Gumbel(_t(0.3, -1.0), _t(0.8, 1.5)) if r == "p" else td.Gumbel(_t(0.0, 0.5), _t(1.2, 2.0)),
    kd.StudentT: lambda r: td.StudentT(_t(3.0, 7.5), _t(0.3, -1.0), _t(0.8, 1.5)),
    kd.Exponential: lambda r: td.Exponential(_t(0.5, 2.0)) if r == "p" else td.Exponential(_t(1.0, 0.3)),
    kd.Gamma: lambda r: td.Gamma(_t(2.0, 0.7), _t(1.5, 0.5)) if r == "p" else td.Gamma(_t(1.5, 3.0), _t(1.0, 2.0)),
    kd.InverseGamma: lambda r: (
        td.InverseGamma(_t(3.0, 2.5), _t(1.0, 2.0)) if r == "p" else td.InverseGamma(_t(2.0, 4.0), _t(1.5, 1.0))
    ),
    kd.HalfNormal: lambda r: td.HalfNormal(_t(1.0, 2.0)) if r == "p" else td.HalfNormal(_t(1.5, 0.7)),
    kd.LogNormal: lambda r: (
        td.LogNormal(_t(0.0, 0.5), _t(0.5, 1.0)) if r == "p" else td.LogNormal(_t(0.2, -0.3), _t(1.0, 0.6))
    ),
    kd.Weibull: lambda r: (
        td.Weibull(_t(1.0, 2.0), _t(1.5, 0.8)) if r == "p" else td.Weibull(_t(1.5, 1.0), _t(2.0, 1.2))
    ),
    kd.Pareto: lambda r: td.Pareto(_t(1.0, 2.0), _t(5.0, 6.0)) if r == "p" else td.Pareto(_t(0.5, 1.0), _t(2.0, 1.5)),
    kd.Uniform: lambda r: (
        td.Uniform(_t(0.2, 1.5), _t(0.8, 2.5)) if r == "p" else td.Uniform(_t(-0.5, -1.0), _t(1.5, 3.0))
    ),
    kd.Beta: lambda r: td.Beta(_t(2.0, 1.3), _t(3.0, 1.5)) if r == "p" else td.Beta(_t(1.5, 2.0), _t(1.2, 3.0)),
    kd.ContinuousBernoulli: lambda r: td.ContinuousBernoulli(_t(0.3, 0.5004) if r == "p" else _t(0.7, 0.2)),
    kd.VonMises: lambda r: (
        td.VonMises(_t(0.0, 1.0), _t(1.0, 5.0)) if r == "p" else td.VonMises(_t(0.5, -1.0), _t(2.0, 0.5))
    ),
    kd.Dirichlet: lambda r: td.Dirichlet(
        _t(1.0, 2.0, 3.0).expand(2, 3) * _t(1.0, 0.5)[:, None]
        if r == "p"
        else torch.tensor([[2.0, 2.0, 2.0], [1.0, 3.0, 1.0]], dtype=T)
    ),
    kd.MultivariateNormal: _mvn,
    kd.LowRankMultivariateNormal: _lowrank,
    kd.Bernoulli: lambda r: td.Bernoulli(_t(0.3, 0.8) if r == "p" else _t(0.6, 0.1)),
    kd.Binomial: lambda r: (
        td.Binomial(_t(5.0, 5.0), _t(0.3, 0.6)) if r == "p" else td.Binomial(_t(5.0, 8.0), _t(0.5, 0.4))
    ),
    kd.Geometric: lambda r: td.Geometric(_t(0.3, 0.6) if r == "p" else _t(0.5, 0.2)),
    kd.Poisson: lambda r: td.Poisson(_t(1.5, 4.0) if r == "p" else _t(2.0, 3.0)),
    kd.Categorical: lambda r: td.Categorical(
        probs=torch.tensor([[0.25] * 4, [0.5, 0.3, 0.2, 0.0]], dtype=T)
        if r == "p"
        else torch.tensor([[0.1, 0.2, 0.3, 0.4], [0.25, 0.25, 0.5, 0.0]], dtype=T)
    ),
    kd.OneHotCategorical: lambda r: td.OneHotCategorical(
        probs=torch.tensor([[0.25] * 4, [0.5, 0.3, 0.2, 0.0]], dtype=T)
        if r == "p"
        else torch.tensor([[0.1, 0.2, 0.3, 0.4], [0.0, 0.25, 0.5, 0.25]], dtype=T)
    ),
    kd.Independent: lambda r: td.Independent(TORCH[kd.Normal](r).expand((3, 2)), 1),
    kd.Transformed: lambda r: td.TransformedDistribution(TORCH[kd.Gamma](r), _AFFINE),
    kd.TorchExponentialFamily: lambda r: td.Wishart(
        _t(4.0, 5.0) if r == "p" else _t(3.5, 6.0),
        torch.tensor([[2.0, 0.3], [0.3, 1.0]], dtype=T) if r == "p" else torch.eye(2, dtype=T) * 1.5,
    ),
}


def _scipy(d: td.Distribution) -> list[Any] | None:
    """The scipy counterparts of the torch object's batch elements, or None (no scipy family)."""
    f = to_family(d)
    n = lambda x: x.detach().numpy()  # noqa: E731
    maker: dict[type, Callable[[Any], Any]] = {
        kd.Normal: lambda f: stats.norm(n(f.loc), n(f.scale)),
        kd.Laplace: lambda f: stats.laplace(n(f.loc), n(f.scale)),
        kd.Cauchy: lambda f: stats.cauchy(n(f.loc), n(f.scale)),
        kd.Gumbel: lambda f: stats.gumbel_r(n(f.loc), n(f.scale)),
        kd.StudentT: lambda f: stats.t(n(f.df), n(f.loc), n(f.scale)),
        kd.Exponential: lambda f: stats.expon(scale=1 / n(f.rate)),
        kd.Gamma: lambda f: stats.gamma(n(f.concentration), scale=1 / n(f.rate)),
        kd.InverseGamma: lambda f: stats.invgamma(n(f.concentration), scale=n(f.rate)),
        kd.HalfNormal: lambda f: stats.halfnorm(scale=n(f.scale)),
        kd.LogNormal: lambda f: stats.lognorm(n(f.scale), scale=np.exp(n(f.loc))),
        kd.Weibull: lambda f: stats.weibull_min(n(f.concentration), scale=n(f.scale)),
        kd.Pareto: lambda f: stats.pareto(n(f.alpha), scale=n(f.scale)),
        kd.Uniform: lambda f: stats.uniform(n(f.low), n(f.high) - n(f.low)),
        kd.Beta: lambda f: stats.beta(n(f.concentration1), n(f.concentration0)),
        kd.VonMises: lambda f: stats.vonmises(n(f.concentration), n(f.loc)),
        kd.Bernoulli: lambda f: stats.bernoulli(n(f.probs)),
        kd.Binomial: lambda f: stats.binom(n(f.total_count), n(f.probs)),
        kd.Geometric: lambda f: stats.geom(n(f.probs), loc=-1),  # torch counts failures (from 0)
        kd.Poisson: lambda f: stats.poisson(n(f.rate)),
    }
    if type(f) in maker:
        return [maker[type(f)](f)]
    if type(f) is kd.MultivariateNormal:
        cov = f.scale_tril @ f.scale_tril.mT
        return [stats.multivariate_normal(n(f.loc[i]), n(cov[i])) for i in range(2)]
    if type(f) is kd.Dirichlet:
        return [stats.dirichlet(n(f.concentration[i])) for i in range(2)]
    return None


def _pair_id(pair: tuple[type, type]) -> str:
    return f"{pair[0].__name__}-{pair[1].__name__}"


PAIRS = kd.registered_pairs()
FINITE = [(row.p, row.q) for row in kd.pair_table() if row.finite]
ENTROPIES = kd.registered_entropies()


def _kl(p: Any, q: Any, **options: Any) -> Any:
    return klkit.kl_divergence(p, q, **options)


# ---------------------------------------------------------------------------------------------------
# The registry and the factories agree
# ---------------------------------------------------------------------------------------------------
def test_every_registered_family_has_a_factory() -> None:
    families = {t for pair in PAIRS for t in pair} | set(ENTROPIES)
    missing = sorted(t.__name__ for t in families if t not in TORCH)
    assert not missing, f"registered families without a parameter factory in this test: {missing}"


def test_registry_coverage_bar() -> None:
    assert len(FINITE) >= 61
    torch_pairs = {(p.__name__, q.__name__) for p, q in td.kl._KL_REGISTRY}
    ours = {(_torch_name(p), _torch_name(q)) for p, q in PAIRS}
    assert torch_pairs <= ours, f"torch pairs not registered: {sorted(torch_pairs - ours)}"


def _torch_name(t: type) -> str:
    return {"Transformed": "TransformedDistribution", "TorchExponentialFamily": "ExponentialFamily"}.get(
        t.__name__, t.__name__
    )


# ---------------------------------------------------------------------------------------------------
# KL pairs
# ---------------------------------------------------------------------------------------------------
def _close_or_both_inf(a: np.ndarray, b: np.ndarray, rtol: float, atol: float = 0.0) -> bool:
    same_inf = np.isinf(a) & np.isinf(b)
    return bool(np.all(same_inf | np.isclose(a, b, rtol=rtol, atol=atol)))


@pytest.mark.parametrize("pair", PAIRS, ids=_pair_id)
def test_kl_against_monte_carlo(pair: tuple[type, type]) -> None:
    p, q = TORCH[pair[0]]("p"), TORCH[pair[1]]("q")
    exact = _kl(p, q, method="exact").detach().numpy()
    mc = _kl(p, q, method="mc", n_samples=10_000, seed=0, estimator="k1")
    value, se = np.asarray(mc.value.detach()), np.asarray(mc.standard_error)
    assert exact.shape == tuple(p.batch_shape)
    finite = np.isfinite(exact)
    assert np.array_equal(finite, np.isfinite(value)), f"inf pattern: exact {exact}, MC {value}"
    assert np.all(exact[finite] >= -1e-12)
    error = np.abs(exact[finite] - value[finite])
    assert np.all(error <= 5 * se[finite] + 1e-9), f"exact {exact}, MC {mc}"


def _torch_has_kl(pair: tuple[type, type]) -> bool:
    try:
        td.kl_divergence(TORCH[pair[0]]("p"), TORCH[pair[1]]("q"))
    except NotImplementedError:
        return False
    return True


# Only the pairs torch has a formula for (the others are covered by MC, integration and summation).
# torch's ExponentialFamily (Bregman) KL returns negative values for Wishart (e.g. -0.958 for
# df 4 vs 3.5), so for that pair the Monte Carlo check is the reference.
TORCH_PAIRS = [m for m in PAIRS if kd.TorchExponentialFamily not in m and _torch_has_kl(m)]


@pytest.mark.parametrize("pair", TORCH_PAIRS, ids=_pair_id)
def test_kl_against_torch(pair: tuple[type, type]) -> None:
    p, q = TORCH[pair[0]]("p"), TORCH[pair[1]]("q")
    reference = td.kl_divergence(p, q).numpy()
    ours = _kl(p, q, method="exact").detach().numpy()
    assert _close_or_both_inf(ours, reference, rtol=1e-6, atol=1e-12), f"ours {ours}, torch {reference}"


def _support(d: td.Distribution) -> tuple[float, float]:
    if isinstance(d, td.VonMises):
        return -math.pi, math.pi  # one period of a periodic density
    s = d.support
    while hasattr(s, "base_constraint"):
        s = s.base_constraint
    lo = getattr(s, "lower_bound", -math.inf)
    hi = getattr(s, "upper_bound", math.inf)
    return lo, hi


@pytest.fixture()
def no_validation() -> Any:
    """Build torch distributions without argument validation (quad probes points outside other elements' supports)."""
    before = td.Distribution._validate_args
    td.Distribution.set_default_validate_args(False)
    yield
    td.Distribution.set_default_validate_args(before)


def _fast_log_prob(d: td.Distribution) -> Callable[[torch.Tensor], torch.Tensor]:
    """``d.log_prob``; for the continuous Bernoulli (5 ms a call in torch) the density
    x log λ + (1 − x) log(1 − λ) + log C(λ) with torch's own log C computed once."""
    if isinstance(d, td.ContinuousBernoulli):
        log_norm, log_p1, log_p0 = d._cont_bern_log_norm(), torch.log(d.probs), torch.log1p(-d.probs)
        return lambda x: x * log_p1 + (1 - x) * log_p0 + log_norm
    return d.log_prob


def _integral_kl(p: td.Distribution, q: td.Distribution, i: int) -> float:
    lo, hi = _support(p)
    lo = float(lo[i]) if torch.is_tensor(lo) else lo
    hi = float(hi[i]) if torch.is_tensor(hi) else hi

    log_p, log_q = _fast_log_prob(p), _fast_log_prob(q)

    def integrand(x: float) -> float:
        t = torch.full(tuple(p.batch_shape), x, dtype=T)
        lp = float(log_p(t)[i])
        lq = float(log_q(t)[i])
        density = math.exp(lp)
        return density * (lp - lq) if density > 0 else 0.0

    value, _ = integrate.quad(integrand, lo, hi, limit=200, epsabs=1e-10, epsrel=1e-9)
    return value


_DISCRETE = {kd.Bernoulli, kd.Binomial, kd.Geometric, kd.Poisson}
_ONE_D = {
    t
    for t in TORCH
    if not issubclass(
        t,
        (
            kd.MultivariateNormal,
            kd.LowRankMultivariateNormal,
            kd.Dirichlet,
            kd.Categorical,
            kd.OneHotCategorical,
            kd.Independent,
            kd.TorchExponentialFamily,
        ),
    )
} - _DISCRETE


@pytest.mark.parametrize("pair", [m for m in FINITE if set(m) <= _ONE_D], ids=_pair_id)
def test_kl_against_numerical_integration(pair: tuple[type, type], no_validation: None) -> None:
    p, q = TORCH[pair[0]]("p"), TORCH[pair[1]]("q")
    exact = _kl(p, q, method="exact").detach().numpy()
    for i in np.flatnonzero(np.isfinite(exact)):
        assert _integral_kl(p, q, i) == pytest.approx(exact[i], rel=1e-6, abs=1e-8)


@pytest.mark.parametrize("pair", [m for m in FINITE if set(m) <= _DISCRETE], ids=_pair_id)
def test_kl_against_exact_summation(pair: tuple[type, type]) -> None:
    p, q = TORCH[pair[0]]("p"), TORCH[pair[1]]("q")
    exact = _kl(p, q, method="exact").detach().numpy()
    k = torch.arange(400, dtype=T)[:, None].expand(400, 2)
    inside_p = p.support.check(k)
    lp = torch.where(inside_p, p.log_prob(torch.where(inside_p, k, 0.0)), -math.inf)
    inside_q = q.support.check(k)
    lq = torch.where(inside_q, q.log_prob(torch.where(inside_q, k, 0.0)), -math.inf)
    terms = torch.where(lp > -math.inf, lp.exp() * (lp - lq), 0.0)
    assert _close_or_both_inf(exact, terms.sum(0).numpy(), rtol=1e-9, atol=1e-12)


_SCIPY_FAMILIES = {
    kd.Normal,
    kd.Laplace,
    kd.Cauchy,
    kd.Gumbel,
    kd.StudentT,
    kd.Exponential,
    kd.Gamma,
    kd.InverseGamma,
    kd.HalfNormal,
    kd.LogNormal,
    kd.Weibull,
    kd.Pareto,
    kd.Uniform,
    kd.Beta,
    kd.VonMises,
    kd.Bernoulli,
    kd.Binomial,
    kd.Geometric,
    kd.Poisson,
    kd.MultivariateNormal,
    kd.Dirichlet,
}


def test_scipy_counterparts_exist_exactly_for_the_scipy_families() -> None:
    with_scipy = {t for t in TORCH if _scipy(TORCH[t]("p")) is not None and _scipy(TORCH[t]("q")) is not None}
    assert with_scipy == _SCIPY_FAMILIES


@pytest.mark.parametrize("pair", [m for m in PAIRS if set(m) <= _SCIPY_FAMILIES], ids=_pair_id)
def test_kl_of_scipy_objects_matches_torch(pair: tuple[type, type]) -> None:
    p, q = TORCH[pair[0]]("p"), TORCH[pair[1]]("q")
    sp, sq = _scipy(p), _scipy(q)
    assert sp is not None and sq is not None
    reference = _kl(p, q, method="exact").detach().numpy()
    if len(sp) == 1 and len(sq) == 1:
        ours = np.asarray(_kl(sp[0], sq[0], method="exact"))
        assert isinstance(ours, np.ndarray) and ours.shape == reference.shape
    else:
        ours = np.array([float(_kl(a, b, method="exact")) for a, b in zip(sp, sq, strict=True)])
    assert _close_or_both_inf(ours, reference, rtol=1e-8, atol=1e-12)


# ---------------------------------------------------------------------------------------------------
# Gradients with respect to the distribution parameters
# ---------------------------------------------------------------------------------------------------
Build = Callable[[dict[str, torch.Tensor]], td.Distribution]


def _sym(c: torch.Tensor) -> torch.Tensor:
    return (c + c.mT) / 2


# exact torch class -> (differentiable float parameters, integer parameters held fixed, constructor)
_PARAMETERS: dict[type, tuple[tuple[str, ...], tuple[str, ...], Callable[..., td.Distribution]]] = {
    td.Normal: (("loc", "scale"), (), td.Normal),
    td.Laplace: (("loc", "scale"), (), td.Laplace),
    td.Cauchy: (("loc", "scale"), (), td.Cauchy),
    td.Gumbel: (("loc", "scale"), (), td.Gumbel),
    td.StudentT: (("df", "loc", "scale"), (), td.StudentT),
    td.Exponential: (("rate",), (), td.Exponential),
    td.Gamma: (("concentration", "rate"), (), td.Gamma),
    td.InverseGamma: (("concentration", "rate"), (), td.InverseGamma),
    td.HalfNormal: (("scale",), (), td.HalfNormal),
    td.LogNormal: (("loc", "scale"), (), td.LogNormal),
    td.Weibull: (("scale", "concentration"), (), td.Weibull),
    td.Pareto: (("scale", "alpha"), (), td.Pareto),
    td.Uniform: (("low", "high"), (), td.Uniform),
    td.Beta: (("concentration1", "concentration0"), (), td.Beta),
    td.ContinuousBernoulli: (("probs",), (), lambda probs: td.ContinuousBernoulli(probs=probs)),
    td.VonMises: (("loc", "concentration"), (), td.VonMises),
    td.Dirichlet: (("concentration",), (), td.Dirichlet),
    td.MultivariateNormal: (
        ("loc", "scale_tril"),
        (),
        lambda loc, scale_tril: td.MultivariateNormal(loc, scale_tril=torch.tril(scale_tril)),
    ),
    td.LowRankMultivariateNormal: (("loc", "cov_factor", "cov_diag"), (), td.LowRankMultivariateNormal),
    td.Bernoulli: (("probs",), (), lambda probs: td.Bernoulli(probs=probs)),
    td.Binomial: (("probs",), ("total_count",), lambda probs, total_count: td.Binomial(total_count, probs=probs)),
    td.Geometric: (("probs",), (), lambda probs: td.Geometric(probs=probs)),
    td.Poisson: (("rate",), (), td.Poisson),
    td.Categorical: (("probs",), (), lambda probs: td.Categorical(probs=probs)),
    td.OneHotCategorical: (("probs",), (), lambda probs: td.OneHotCategorical(probs=probs)),
    td.Wishart: (
        ("df", "covariance_matrix"),
        (),
        lambda df, covariance_matrix: td.Wishart(df, covariance_matrix=_sym(covariance_matrix)),
    ),
}


def _parameters(d: td.Distribution) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor], Build]:
    """``d``'s float parameters, its integer ones, and ``build(all parameters) -> distribution``.

    Every tensor is broadcast to the full batch shape (leading axes), so slicing them along axis 0
    slices the distribution's batch. Symmetric or triangular parameters are projected inside ``build``
    (a perturbation of an entry the family ignores then changes nothing, numerically and analytically).
    """
    if type(d) in (td.Independent, td.TransformedDistribution):
        floats, ints, build_base = _parameters(d.base_dist)
        if type(d) is td.Independent:
            n = d.reinterpreted_batch_ndims
            return floats, ints, lambda params: td.Independent(build_base(params), n)
        transforms = d.transforms
        return floats, ints, lambda params: td.TransformedDistribution(build_base(params), transforms)
    float_names, int_names, make = _PARAMETERS[type(d)]
    batch = tuple(d.batch_shape)

    def full(name: str) -> torch.Tensor:
        value = getattr(d, name)  # torch broadcasts parameters to the batch shape
        assert tuple(value.shape[: len(batch)]) == batch, (name, value.shape, batch)
        return value.detach().clone()

    return (
        {n: full(n) for n in float_names},
        {n: full(n) for n in int_names},
        lambda params: make(**{n: params[n] for n in (*float_names, *int_names)}),
    )


# p's parameters left out of the gradient checks. Gamma‖Laplace: torch.special.gammainc has no derivative in its
# first argument.
_NO_GRAD = {(kd.Gamma, kd.Laplace): {"concentration"}}


@pytest.mark.parametrize("pair", FINITE, ids=_pair_id)
def test_kl_gradients_flow(pair: tuple[type, type], no_validation: None) -> None:
    """Backward through the finite entries of a batch (which has +inf ones) leaves finite gradients."""
    p, q = TORCH[pair[0]]("p"), TORCH[pair[1]]("q")
    floats, ints, build = _parameters(p)
    leaves = {n: v.requires_grad_() for n, v in floats.items() if n not in _NO_GRAD.get(pair, set())}
    assert leaves, f"{pair[0].__name__} has no float parameter to differentiate"
    kl = _kl(build({**floats, **ints}), q, method="exact")
    finite = torch.isfinite(kl)
    assert bool(finite.any()), f"the factories give no finite KL for {_pair_id(pair)}: {kl}"
    grads = torch.autograd.grad(kl[finite].sum(), list(leaves.values()), allow_unused=True)
    assert any(g is not None for g in grads)
    for g in grads:
        if g is not None:
            assert bool(torch.isfinite(g).all()), f"non-finite gradient {g}"


def _interior(floats: dict[str, torch.Tensor], i: int) -> bool:
    """Batch element ``i`` has finite parameters and probabilities strictly inside (0, 1)."""
    for name, value in floats.items():
        v = value[i]
        if not bool(torch.isfinite(v).all()):
            return False
        if name == "probs" and not bool(((v > 0) & (v < 1)).all()):
            return False
    return True


# One pair in three of the registry's finite pairs, in the registry's own order, plus every pair whose
# families appear in no other sampled pair: each family is differentiated at least once, as p and as q.
def _gradcheck_sample() -> list[tuple[type, type]]:
    sample = FINITE[::3]
    as_p, as_q = {m[0] for m in sample}, {m[1] for m in sample}
    for m in FINITE:
        if m not in sample and (m[0] not in as_p or m[1] not in as_q):
            sample.append(m)
            as_p.add(m[0])
            as_q.add(m[1])
    return sample


GRADCHECK = _gradcheck_sample()


@pytest.mark.parametrize("pair", GRADCHECK, ids=_pair_id)
def test_kl_gradcheck(pair: tuple[type, type], no_validation: None) -> None:
    """fp64 finite differences against autograd, with respect to every float parameter of p and of q,
    on the batch elements where the KL is finite and the parameters are interior."""
    p, q = TORCH[pair[0]]("p"), TORCH[pair[1]]("q")
    (fp, ip, build_p), (fq, iq, build_q) = _parameters(p), _parameters(q)
    kl = _kl(p, q, method="exact").detach()
    rows = [i for i in range(kl.shape[0]) if bool(torch.isfinite(kl[i])) and _interior(fp, i) and _interior(fq, i)]
    assert rows, f"no batch element of {_pair_id(pair)} is finite and interior: KL {kl}"
    index = torch.tensor(rows)
    fixed = _NO_GRAD.get(pair, set())  # excluded on p's side
    fp, ip = {n: v[index] for n, v in fp.items()}, {n: v[index] for n, v in ip.items()}
    fq, iq = {n: v[index] for n, v in fq.items()}, {n: v[index] for n, v in iq.items()}
    names = [("p", n) for n in fp if n not in fixed] + [("q", n) for n in fq]
    inputs = tuple((fp if side == "p" else fq)[n].requires_grad_() for side, n in names)

    def kl_of(*values: torch.Tensor) -> torch.Tensor:
        params = {"p": {**fp, **ip}, "q": {**fq, **iq}}
        for (side, n), v in zip(names, values, strict=True):
            params[side][n] = v
        return _kl(build_p(params["p"]), build_q(params["q"]), method="exact")

    assert torch.autograd.gradcheck(kl_of, inputs, eps=1e-6, atol=1e-6, rtol=1e-5)


# ---------------------------------------------------------------------------------------------------
# Entropies
# ---------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("family", ENTROPIES, ids=lambda t: t.__name__)
def test_entropy_against_monte_carlo(family: type) -> None:
    p = TORCH[family]("p")
    exact = klkit.entropy(p, method="exact").detach().numpy()
    assert exact.shape == tuple(p.batch_shape)
    mc = klkit.entropy(p, method="mc", n_samples=10_000, seed=1)
    value, se = np.asarray(mc.value.detach()), np.asarray(mc.standard_error)
    assert np.all(np.abs(exact - value) <= 5 * se + 1e-9), f"exact {exact}, MC {mc}"


def _torch_has_entropy(family: type) -> bool:
    try:
        TORCH[family]("p").entropy()
    except NotImplementedError:
        return False
    return True


@pytest.mark.parametrize("family", [t for t in ENTROPIES if _torch_has_entropy(t)], ids=lambda t: t.__name__)
def test_entropy_against_torch(family: type) -> None:
    p = TORCH[family]("p")
    exact = klkit.entropy(p, method="exact").detach().numpy()
    reference = p.entropy().numpy()
    assert np.allclose(exact, reference, rtol=1e-6, atol=1e-10), f"ours {exact}, torch {reference}"


@pytest.mark.parametrize("family", [t for t in ENTROPIES if t in _SCIPY_FAMILIES], ids=lambda t: t.__name__)
def test_entropy_of_scipy_objects_matches_scipy(family: type) -> None:
    p = TORCH[family]("p")
    objects = _scipy(p)
    assert objects is not None
    ours = np.concatenate([np.atleast_1d(klkit.entropy(s, method="exact")) for s in objects])
    reference = np.concatenate([np.atleast_1d(s.entropy()) for s in objects])
    assert np.allclose(ours, reference, rtol=1e-7, atol=1e-10), f"ours {ours}, scipy {reference}"
    torch_answer = klkit.entropy(p, method="exact").detach().numpy()
    assert np.allclose(ours, torch_answer, rtol=1e-9, atol=1e-12)


def test_chi2_takes_the_gamma_formulas() -> None:
    p, q = td.Chi2(_t(3.0, 5.0)), td.Gamma(_t(2.0, 1.0), _t(0.7, 0.4))
    assert np.allclose(_kl(p, q, method="exact").numpy(), td.kl_divergence(p, q).numpy(), rtol=1e-9)
    assert np.allclose(klkit.entropy(stats.chi2([3.0, 5.0]), method="exact"), stats.chi2([3.0, 5.0]).entropy())


@pytest.mark.parametrize("pair", [m for m in FINITE if m[0] is m[1]], ids=_pair_id)
def test_kl_of_a_distribution_with_itself_is_zero(pair: tuple[type, type]) -> None:
    p = TORCH[pair[0]]("p")
    value = _kl(p, p, method="exact").detach().numpy()
    assert np.allclose(value, 0.0, atol=1e-12), value
