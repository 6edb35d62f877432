"""Distribution pairs that cannot be compared raise; Monte Carlo that cannot work warns; JS and decompose."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import torch
import torch.distributions as td
from scipy import integrate, stats

import klkit
from klkit.distributions import api
from klkit.errors import IncompatibleDistributionsError, MonteCarloWarning, NotRegisteredError
from klkit.estimators import Estimate

T = torch.float64


# ---------------------------------------------------------------------------------------------------
# 1. pairs on different spaces
# ---------------------------------------------------------------------------------------------------
def test_different_event_shapes_raise_and_name_the_fix() -> None:
    p = td.MultivariateNormal(torch.zeros(3), torch.eye(3))
    q = td.Normal(torch.zeros(3), 1.0)
    with pytest.raises(ValueError, match=r"event shape \(3,\).*event shape \(\).*Independent\(q, 1\)"):
        klkit.kl_divergence(p, q, n_samples=1000, seed=0)
    with pytest.raises(ValueError, match=r"Independent\(p, 1\)"):
        klkit.kl_divergence(q, p, n_samples=1000, seed=0)
    # the fix works, and agrees with the closed form KL(N(0, I) ‖ N(0, I)) = 0
    fixed = klkit.kl_divergence(p, td.Independent(q, 1), n_samples=1000, seed=0)
    assert float(fixed) == pytest.approx(0.0, abs=1e-6)


def test_categoricals_of_different_sizes_raise_from_check_pair_and_batches_are_fine() -> None:
    from klkit.distributions.checks import categories, check_pair

    p = td.Categorical(probs=torch.tensor([[0.5, 0.5], [0.1, 0.9]], dtype=T))
    q = td.Categorical(logits=torch.zeros(5, dtype=T))
    assert (categories(p), categories(q), categories(td.Normal(0.0, 1.0))) == (2, 5, None)
    with pytest.raises(
        IncompatibleDistributionsError,
        match=(
            r"found 2 categories in p and 5 in q \(their probabilities would broadcast, not compare\)\. Pad `p` with "
            r"zero-probability categories up to 5: .*pad\(probs, \(0, 3\)\)\), or logits padded with -inf\."
        ),
    ):
        check_pair(p, q)
    check_pair(p, td.Categorical(probs=torch.tensor([0.3, 0.7], dtype=T)))  # a batch against one law: same categories
    # the padded law is the same law: KL([½, ½, 0, 0, 0] ‖ uniform on 5) = log 5 − log 2, by hand
    padded = td.Categorical(probs=torch.nn.functional.pad(p.probs[0], (0, 3)))
    assert float(api.kl_divergence(padded, q)) == pytest.approx(math.log(5 / 2), rel=1e-14)


def test_scipy_multivariate_against_univariate_raises() -> None:
    with pytest.raises(IncompatibleDistributionsError, match="event shape"):
        klkit.kl_divergence(stats.multivariate_normal(np.zeros(2)), stats.norm(0, 1), n_samples=100, seed=0)


@pytest.mark.parametrize(
    "pair",
    [
        (td.Poisson(torch.tensor(3.0)), td.Normal(3.0, 1.0)),
        (td.Normal(3.0, 1.0), td.Poisson(torch.tensor(3.0))),
        (stats.poisson(3), stats.norm(3, 1)),
        (stats.norm(3, 1), stats.poisson(3)),
        (td.Normal(0.0, 1.0), td.Categorical(logits=torch.zeros(3))),
        (td.Categorical(logits=torch.zeros(3)), td.Normal(0.0, 1.0)),
    ],
    ids=[
        "torch-poisson-normal",
        "torch-normal-poisson",
        "scipy-poisson-normal",
        "scipy-normal-poisson",
        "normal-categorical",
        "categorical-normal",
    ],
)
def test_discrete_against_continuous_raises_and_says_why(pair: tuple) -> None:
    p, q = pair
    for measure in (klkit.kl_divergence, klkit.cross_entropy, api.js_divergence):
        with pytest.raises(IncompatibleDistributionsError, match=r"mutually singular.*\+inf in both directions"):
            measure(p, q, n_samples=100, seed=0)
    with pytest.raises(ValueError, match="discrete"):  # a ValueError for callers who catch the builtin
        klkit.kl_divergence(p, q, method="exact")


def test_unfrozen_scipy_raises_type_error_saying_freeze_it() -> None:
    with pytest.raises(TypeError, match=r"`p` must be a frozen.*stats\.norm\(loc, scale\)"):
        klkit.kl_divergence(stats.norm, stats.norm(0, 1))
    with pytest.raises(TypeError, match=r"`q` must be a frozen"):
        klkit.kl_divergence(stats.norm(0, 1), stats.norm)
    with pytest.raises(TypeError, match="frozen"):
        klkit.entropy(stats.norm)
    with pytest.raises(TypeError, match="frozen"):
        klkit.kl_divergence(stats.multivariate_normal, stats.multivariate_normal(np.zeros(2)))


def test_discrete_pair_outside_categorical_support_is_inf() -> None:
    """Poisson samples beyond the categories have q = 0: KL = +inf exactly (no index error)."""
    e = klkit.kl_divergence(td.Poisson(torch.tensor(5.0)), td.Categorical(logits=torch.zeros(3)), n_samples=200, seed=0)
    assert math.isinf(float(e))


# ---------------------------------------------------------------------------------------------------
# 3. Monte Carlo that cannot work warns
# ---------------------------------------------------------------------------------------------------
def test_readme_k3_example_warns_infinite_variance() -> None:
    exact = float(klkit.kl_divergence(td.Normal(0.0, 1.0), td.Normal(1.0, 2.0), method="exact"))
    assert exact == pytest.approx(math.log(2) + (1 + 1) / 8 - 0.5)  # log σq/σp + (σp² + Δμ²)/2σq² − ½
    with pytest.warns(MonteCarloWarning, match=r"heavy right tail.*variance is infinite.*estimator='k1'"):
        klkit.kl_divergence(td.Normal(0.0, 1.0), td.Normal(1.0, 2.0), method="mc", estimator="k3", seed=0)


def test_infinite_kl_by_monte_carlo_warns() -> None:
    """KL(t₃ ‖ Gumbel) = +inf: E_p[e^{-X}] diverges for Student t tails."""
    with pytest.warns(MonteCarloWarning, match=r"may be \+inf"):
        klkit.kl_divergence(td.StudentT(torch.tensor(3.0, dtype=T)), td.Gumbel(0.0, 1.0), seed=0)
    with pytest.warns(MonteCarloWarning, match=r"may be \+inf"):
        klkit.kl_divergence(stats.t(3), stats.gumbel_r(), seed=0)


@pytest.mark.parametrize(
    ("p", "q", "estimator"),
    [
        (td.Normal(0.0, 1.0), td.Normal(1.0, 2.0), "k1"),
        (td.Gamma(torch.tensor(2.0, dtype=T), 1.0), td.Gamma(torch.tensor(3.0, dtype=T), 2.0), "k1"),
        (td.Gamma(torch.tensor(2.0, dtype=T), 1.0), td.Gamma(torch.tensor(3.0, dtype=T), 2.0), "k3"),
        (stats.norm(0, 1), stats.t(5), "k1"),
    ],
)
def test_well_behaved_pairs_do_not_warn(p, q, estimator: str) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error", MonteCarloWarning)
        e = klkit.kl_divergence(p, q, method="mc", estimator=estimator, seed=0)
    exact_fn = getattr(td, "kl_divergence") if isinstance(p, td.Distribution) else None
    if exact_fn is None:
        exact = integrate.quad(lambda x: p.pdf(x) * (p.logpdf(x) - q.logpdf(x)), -np.inf, np.inf)[0]
    else:
        exact = float(exact_fn(p, q))
    assert abs(float(e) - exact) < 5 * float(e.standard_error)


# ---------------------------------------------------------------------------------------------------
# 2. Jensen–Shannon and decompose on distribution objects
# ---------------------------------------------------------------------------------------------------
def _js_quad(p, q) -> float:
    def integrand(x: float) -> float:
        lp, lq = p.logpdf(x), q.logpdf(x)
        lm = np.logaddexp(lp, lq) - math.log(2)
        return 0.5 * (math.exp(lp) * (lp - lm) if lp > -np.inf else 0.0) + 0.5 * (
            math.exp(lq) * (lq - lm) if lq > -np.inf else 0.0
        )

    return integrate.quad(integrand, -np.inf, np.inf, limit=200)[0]


@pytest.mark.parametrize(
    ("p", "q"),
    [
        (stats.norm(0, 1), stats.norm(1, 2)),
        (stats.norm(0, 1), stats.laplace(0.5, 1)),
        (stats.t(3), stats.cauchy(1, 0.5)),
    ],
)
def test_js_scipy_matches_quadrature(p, q) -> None:
    e = api.js_divergence(p, q, n_samples=50_000, seed=1)
    assert isinstance(e, Estimate) and e.n_samples == 100_000
    truth = _js_quad(p, q)
    assert abs(float(e) - truth) < 5 * float(e.standard_error)
    bits = api.js_divergence(p, q, n_samples=50_000, seed=1, base=2)
    assert float(bits) == pytest.approx(float(e) / math.log(2))


def test_js_torch_batch_matches_quadrature_and_keeps_gradients() -> None:
    loc = torch.tensor([0.0, 2.0], dtype=T, requires_grad=True)
    p, q = td.Normal(loc, 1.0), td.Normal(torch.zeros(2, dtype=T), 1.5)
    e = api.js_divergence(p, q, n_samples=40_000, seed=0)
    assert e.value.shape == (2,) and e.value.requires_grad
    for i, m in enumerate((0.0, 2.0)):
        truth = _js_quad(stats.norm(m, 1), stats.norm(0, 1.5))
        assert abs(float(e.value[i].detach()) - truth) < 5 * float(e.standard_error[i])
    e.value.sum().backward()
    assert torch.isfinite(loc.grad).all()


def test_js_is_exact_zero_for_identical_laws_and_log2_bound() -> None:
    assert float(api.js_divergence(stats.norm(0, 1), stats.norm(0, 1))) == 0.0
    same = api.js_divergence(
        td.Gamma(torch.tensor([2.0, 3.0]), 1.0), td.Gamma(torch.tensor([2.0, 3.0]), 1.0), method="exact"
    )
    assert torch.equal(same, torch.zeros(2))
    with pytest.raises(NotRegisteredError, match="method='mc'"):
        api.js_divergence(stats.norm(0, 1), stats.norm(1, 1), method="exact")
    # disjoint supports: JS = log 2 exactly, and every sample term equals log 2
    e = api.js_divergence(stats.uniform(0, 1), stats.uniform(2, 1), n_samples=1000, seed=0)
    assert float(e) == pytest.approx(math.log(2), abs=1e-15) and float(e.standard_error) < 1e-12
    with pytest.raises(TypeError, match="estimator"):
        api.js_divergence(stats.norm(0, 1), stats.norm(1, 1), estimator="k3")


def test_js_seed_reproducible() -> None:
    a = api.js_divergence(stats.norm(0, 1), stats.norm(1, 1), n_samples=1000, seed=7)
    b = api.js_divergence(stats.norm(0, 1), stats.norm(1, 1), n_samples=1000, seed=7)
    assert float(a) == float(b)


def test_decompose_distributions_exact_terms() -> None:
    from klkit.measures import Decomposition

    d = api.decompose(stats.norm(0, 1), stats.norm(1, 2))
    assert isinstance(d, Decomposition)
    h = 0.5 * math.log(2 * math.pi * math.e)
    kl = math.log(2) + 2 / 8 - 0.5
    ce = 0.5 * math.log(2 * math.pi * 4) + (1 + 1) / 8  # ½ log(2πσq²) + (σp² + Δμ²)/(2σq²)
    assert float(d.entropy) == pytest.approx(h, rel=1e-14)
    assert float(d.kl_divergence) == pytest.approx(kl, rel=1e-14)
    assert float(d.cross_entropy) == pytest.approx(ce, rel=1e-14)
    bits = api.decompose(stats.norm(0, 1), stats.norm(1, 2), base=2)
    assert float(bits.kl_divergence) == pytest.approx(kl / math.log(2), rel=1e-14)


def test_decompose_distributions_monte_carlo_against_quadrature() -> None:
    p, q = stats.norm(0, 1), stats.t(4)
    d = api.decompose(p, q, seed=0, n_samples=50_000)
    ce = integrate.quad(lambda x: -p.pdf(x) * q.logpdf(x), -np.inf, np.inf)[0]
    kl = integrate.quad(lambda x: p.pdf(x) * (p.logpdf(x) - q.logpdf(x)), -np.inf, np.inf)[0]
    assert float(d.entropy) == pytest.approx(0.5 * math.log(2 * math.pi * math.e), rel=1e-14)  # closed form
    assert abs(float(d.cross_entropy) - ce) < 5 * float(d.cross_entropy.standard_error)
    assert abs(float(d.kl_divergence) - kl) < 5 * float(d.kl_divergence.standard_error)
    with pytest.raises(IncompatibleDistributionsError):
        api.decompose(stats.poisson(2), stats.norm(2, 1))


def test_top_level_measures_take_distribution_objects() -> None:
    e = klkit.js_divergence(stats.norm(0, 1), stats.norm(1, 2), n_samples=20_000, seed=0)
    assert abs(float(e) - _js_quad(stats.norm(0, 1), stats.norm(1, 2))) < 5 * float(e.standard_error)
    d = klkit.decompose(td.Normal(0.0, 1.0), td.Normal(1.0, 2.0))
    kl = math.log(2.0) + (1.0 + 1.0) / (2 * 4.0) - 0.5  # log(σq/σp) + (σp² + Δμ²)/(2σq²) − ½
    assert float(d.kl_divergence) == pytest.approx(kl, rel=1e-6)
    assert float(d.cross_entropy) == pytest.approx(float(d.entropy) + kl, rel=1e-6)


# ---------------------------------------------------------------------------------------------------
# 5. the categorical fast path (no softmax, no generic tiling) keeps torch's values and gradients
# ---------------------------------------------------------------------------------------------------
def test_categorical_kl_fast_path_matches_torch_and_zero_probabilities() -> None:
    g = torch.Generator().manual_seed(0)
    a = torch.randn(256, 50, generator=g, dtype=T, requires_grad=True)
    b = torch.randn(256, 50, generator=g, dtype=T)
    ours = klkit.kl_divergence(td.Categorical(logits=a), td.Categorical(logits=b))
    ref = td.kl_divergence(td.Categorical(logits=a), td.Categorical(logits=b))
    assert torch.allclose(ours, ref, rtol=1e-12, atol=1e-15)
    (ga,) = torch.autograd.grad(ours.sum(), a)
    (gr,) = torch.autograd.grad(ref.sum(), a)
    assert torch.allclose(ga, gr, rtol=1e-10, atol=1e-14)
    p = torch.tensor([[0.5, 0.5, 0.0], [0.2, 0.3, 0.5]], dtype=T)
    q = torch.tensor([[0.4, 0.6, 0.0], [0.2, 0.0, 0.8]], dtype=T)
    kl = klkit.kl_divergence(td.Categorical(probs=p), td.Categorical(probs=q))
    assert float(kl[0]) == pytest.approx(0.5 * math.log(0.5 / 0.4) + 0.5 * math.log(0.5 / 0.6), rel=1e-14)
    assert math.isinf(float(kl[1]))
    logits = torch.tensor([0.0, -math.inf, 1.0], dtype=T, requires_grad=True)  # p_1 = q_1 = 0
    kl = klkit.kl_divergence(
        td.Categorical(logits=logits), td.Categorical(logits=torch.tensor([1.0, -math.inf, 0.0], dtype=T))
    )
    (g1,) = torch.autograd.grad(kl, logits)
    assert torch.isfinite(kl) and bool(torch.isfinite(g1[[0, 2]]).all())


def test_categorical_kl_with_impossible_categories_matches_torch_and_keeps_gradients_finite() -> None:
    probs_p = torch.tensor([[0.5, 0.5, 0.0], [0.2, 0.3, 0.5], [0.0, 1.0, 0.0]], dtype=T)
    probs_q = torch.tensor([[0.5, 0.0, 0.5], [0.2, 0.3, 0.5], [0.1, 0.9, 0.0]], dtype=T)
    logits = probs_p.log().requires_grad_()
    ours = klkit.kl_divergence(td.Categorical(logits=logits), td.Categorical(probs=probs_q))
    ref = td.kl_divergence(td.Categorical(probs=probs_p), td.Categorical(probs=probs_q))
    assert ours.tolist()[0] == math.inf and ref.tolist()[0] == math.inf  # p > 0 = q in the first row
    assert ours[1].item() == 0.0
    assert ours[2].item() == pytest.approx(math.log(1 / 0.9), rel=1e-14)  # p = 0 where q = 0 adds nothing
    ours[1:].sum().backward()  # the finite rows only
    assert bool(torch.isfinite(logits.grad).all())


def test_categorical_kl_is_never_negative_in_float32():
    import torch

    g = torch.Generator().manual_seed(0)
    logits = torch.randn(20_000, 50, generator=g)
    p = torch.distributions.Categorical(logits=logits)
    q = torch.distributions.Categorical(logits=logits + 1e-6 * torch.randn(20_000, 50, generator=g))
    kl = klkit.kl_divergence(p, q)
    assert kl.dtype == torch.float32 and bool((kl >= 0).all())
    # p ≈ q: the KL is ~1e-12; what is left is float32 rounding of log-probabilities of size ~4 (ε·4 ≈ 5e-7)
    assert float(kl.max()) < 50 * 4 * torch.finfo(torch.float32).eps


@pytest.mark.parametrize("path", ["distribution", "array"])
def test_the_kl_hessian_at_p_equal_q_is_the_fisher_matrix_on_every_row(path):
    """TRPO's Fisher-vector product: ∇²_θ KL(π_θ0 ‖ π_θ) at θ = θ0 is diag(p) − ppᵀ (on logits), even on
    rows where float32 rounding puts the KL itself a hair below 0 (a clamp must keep the derivatives)."""
    g = torch.Generator().manual_seed(1)
    logits0 = torch.randn(4000, 12, generator=g)
    v = torch.randn(4000, 12, generator=g)
    # θ a rounding away from θ0, as a policy re-evaluated on the rollout's states is: KL ≈ 1e-13, and
    # rounding leaves some rows below 0
    theta = (logits0 + 1e-6 * torch.randn(4000, 12, generator=g)).requires_grad_(True)
    if path == "distribution":
        kl = klkit.kl_divergence(
            torch.distributions.Categorical(logits=logits0), torch.distributions.Categorical(logits=theta)
        )
    else:
        kl = klkit.kl_divergence(logits0, theta, kind="logits")
    assert int((kl.detach() == 0).sum()) > 0  # the clamped rows this test is about
    (grad,) = torch.autograd.grad(kl.sum(), theta, create_graph=True)
    (hvp,) = torch.autograd.grad((grad * v).sum(), theta)
    p = torch.softmax(logits0.double(), -1)
    fisher_v = p * v.double() - p * (p * v.double()).sum(-1, keepdim=True)  # (diag(p) − ppᵀ) v per row
    assert torch.allclose(hvp.double(), fisher_v, rtol=1e-4, atol=1e-6)
