"""klkit.entropy / cross_entropy / kl_divergence on distribution objects: options, types, registry, VAE, mixtures."""

from __future__ import annotations

import math

import mpmath
import numpy as np
import pytest
import torch
import torch.distributions as td
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats
from typer.testing import CliRunner

import klkit
import klkit.distributions as kd
from klkit.distributions import registry
from klkit.errors import BackendMismatchError, NotRegisteredError
from klkit.estimators import Estimate

T = torch.float64


@pytest.fixture()
def clean_registry():
    """Restore the registry (and clear its caches) after a test that registers pairs."""
    kl, ent = dict(registry._KL), dict(registry._ENTROPY)
    yield
    registry._KL.clear()
    registry._KL.update(kl)
    registry._ENTROPY.clear()
    registry._ENTROPY.update(ent)
    registry._KL_CACHE.clear()
    registry._ENTROPY_CACHE.clear()


# ---------------------------------------------------------------------------------------------------
# The VAE case
# ---------------------------------------------------------------------------------------------------
def _reference_vae_kl(mu: float, logvar: float) -> float:
    with mpmath.workdps(50):  # local precision: never the whole test run's
        mu_, lv = mpmath.mpf(mu), mpmath.mpf(logvar)
        return float(0.5 * (mu_**2 + mpmath.exp(lv) - 1 - lv))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_vae_kl_is_accurate_for_logvar_in_plus_minus_30(dtype: type) -> None:
    logvar = np.linspace(-30, 30, 61).astype(dtype)
    mu = np.linspace(-3, 3, 61).astype(dtype)
    ours = kd.gaussian_kl_standard_normal(mu, logvar)
    assert ours.dtype == dtype and np.all(np.isfinite(ours))
    reference = np.array([_reference_vae_kl(float(m), float(v)) for m, v in zip(mu, logvar, strict=True)])
    rtol = 1e-6 if dtype == np.float32 else 1e-13
    assert np.allclose(ours, reference, rtol=rtol, atol=0)
    tiny = kd.gaussian_kl_standard_normal(np.float64(0.0), np.float64(1e-9))  # no cancellation near 0
    assert tiny == pytest.approx(_reference_vae_kl(0.0, 1e-9), rel=1e-9)


def test_vae_kl_torch_keeps_dtype_and_gradients_and_matches_the_registry() -> None:
    mu = torch.linspace(-3, 3, 61, dtype=T).reshape(61, 1).expand(61, 4).clone().requires_grad_()
    logvar = torch.linspace(-30, 30, 61, dtype=T).reshape(61, 1).expand(61, 4).clone().requires_grad_()
    vae = kd.gaussian_kl_standard_normal(mu, logvar)
    assert vae.shape == (61, 4) and vae.dtype == T
    (g_mu, g_lv) = torch.autograd.grad(vae.sum(), (mu, logvar))
    assert torch.allclose(g_mu, mu) and torch.allclose(g_lv, 0.5 * torch.expm1(logvar))
    p = td.Independent(td.Normal(mu, torch.exp(0.5 * logvar)), 1)
    q = td.Independent(td.Normal(torch.zeros(4, dtype=T), torch.ones(4, dtype=T)), 1)
    registry_kl = klkit.kl_divergence(p, q)
    assert registry_kl.shape == (61,) and registry_kl.requires_grad
    assert torch.allclose(registry_kl, vae.sum(-1), rtol=1e-9, atol=1e-12)
    f32 = kd.gaussian_kl_standard_normal(mu.detach().float(), logvar.detach().float())
    assert f32.dtype == torch.float32 and bool(torch.isfinite(f32).all())


def test_vae_kl_numpy_matches_scipy_objects() -> None:
    mu, logvar = np.array([0.5, -1.0, 2.0]), np.array([-30.0, 0.0, 30.0])
    ours = klkit.kl_divergence(stats.norm(mu, np.exp(0.5 * logvar)), stats.norm(0, 1))
    assert isinstance(ours, np.ndarray) and ours.shape == (3,)
    assert np.allclose(ours, kd.gaussian_kl_standard_normal(mu, logvar), rtol=1e-12)


def test_vae_kl_rejects_mixed_inputs() -> None:
    with pytest.raises(TypeError, match="both be torch tensors"):
        kd.gaussian_kl_standard_normal(torch.zeros(2), np.zeros(2))


# ---------------------------------------------------------------------------------------------------
# Types, shapes, methods, options
# ---------------------------------------------------------------------------------------------------
def test_scipy_in_numpy_out_torch_in_torch_out() -> None:
    out = klkit.kl_divergence(stats.gamma(2.0), stats.expon())
    assert isinstance(out, np.floating) and out == pytest.approx(
        float(
            td.kl_divergence(
                td.Gamma(torch.tensor(2.0, dtype=T), torch.tensor(1.0, dtype=T)),
                td.Exponential(torch.tensor(1.0, dtype=T)),
            )
        )
    )
    batch = klkit.entropy(stats.norm(np.zeros((2, 3)), 1.0))
    assert isinstance(batch, np.ndarray) and batch.shape == (2, 3)
    loc = torch.zeros(2, 3, requires_grad=True)
    out_t = klkit.kl_divergence(td.Normal(loc, 1.0), td.Normal(1.0, 2.0))
    assert isinstance(out_t, torch.Tensor) and out_t.shape == (2, 3) and out_t.requires_grad


def test_method_exact_raises_naming_the_pair_and_what_is_registered() -> None:
    with pytest.raises(NotRegisteredError, match=r"\(Normal.*StudentT.*registered q types are: .*Laplace") as info:
        klkit.kl_divergence(td.Normal(0.0, 1.0), td.StudentT(5.0), method="exact")
    assert isinstance(info.value, NotImplementedError)
    mixture = td.MixtureSameFamily(td.Categorical(torch.ones(2)), td.Normal(torch.zeros(2), 1.0))
    with pytest.raises(NotRegisteredError, match=r"no closed-form entropy .*MixtureSameFamily.*registered families"):
        klkit.entropy(mixture, method="exact")
    kumaraswamy = td.Kumaraswamy(torch.tensor(2.0, dtype=T), torch.tensor(3.0, dtype=T))  # non-affine transforms
    with pytest.raises(NotRegisteredError, match="only through scalar AffineTransforms"):
        klkit.entropy(kumaraswamy, method="exact")
    h = klkit.entropy(kumaraswamy, seed=0, n_samples=20_000)  # auto: Monte Carlo
    assert isinstance(h, Estimate) and abs(float(h) - float(kumaraswamy.entropy())) < 5 * float(h.standard_error)


def test_auto_falls_back_to_monte_carlo_with_a_standard_error() -> None:
    p, q = stats.norm(0, 1), stats.t(5)
    auto = klkit.kl_divergence(p, q, seed=3, n_samples=50_000)
    assert isinstance(auto, Estimate) and auto.n_samples == 50_000 and "MC k1" in str(auto)
    mc = klkit.kl_divergence(p, q, method="mc", seed=3, n_samples=50_000)
    assert float(mc) == float(auto)  # same seed, same answer
    other = klkit.kl_divergence(p, q, method="mc", seed=4, n_samples=50_000)
    assert float(other) != float(mc)
    # truth by quadrature of p (log p − log q)
    from scipy import integrate

    truth = integrate.quad(lambda x: p.pdf(x) * (p.logpdf(x) - q.logpdf(x)), -np.inf, np.inf)[0]
    assert abs(float(mc) - truth) < 5 * float(mc.standard_error)


def test_same_seed_same_answer_for_torch_and_global_rng_untouched() -> None:
    p, q = td.Normal(torch.zeros(3), 1.0), td.StudentT(torch.tensor(4.0))
    torch.manual_seed(123)
    expected_next = torch.rand(1)
    torch.manual_seed(123)
    a = klkit.kl_divergence(p, q, seed=7, n_samples=1000)
    b = klkit.kl_divergence(p, q, seed=7, n_samples=1000)
    assert torch.equal(a.value, b.value) and a.shape == (3,)
    assert torch.equal(torch.rand(1), expected_next)


@pytest.mark.parametrize("estimator", ["k1", "k2", "k3"])
def test_mc_estimators_agree_with_the_closed_form(estimator: str) -> None:
    p, q = stats.norm(0.0, 1.0), stats.norm(0.3, 1.1)
    exact = klkit.kl_divergence(p, q)
    mc = klkit.kl_divergence(p, q, method="mc", estimator=estimator, seed=0)
    assert mc.method == f"MC {estimator}"
    tolerance = 5 * float(mc.standard_error) + (0.01 if estimator == "k2" else 0.0)  # k2 is biased
    assert abs(float(mc) - exact) < tolerance


def test_entropy_and_cross_entropy_by_monte_carlo() -> None:
    p, q = stats.gamma(2.0, scale=0.5), stats.weibull_min(1.5, scale=1.2)
    h = klkit.entropy(p, method="mc", seed=0)
    assert abs(float(h) - p.entropy()) < 5 * float(h.standard_error)
    ce_exact = klkit.cross_entropy(p, q)
    assert ce_exact == pytest.approx(klkit.entropy(p) + klkit.kl_divergence(p, q), rel=1e-12)
    ce = klkit.cross_entropy(p, q, method="mc", seed=0)
    assert abs(float(ce) - ce_exact) < 5 * float(ce.standard_error)


def test_base_converts_closed_forms_and_estimates() -> None:
    p, q = stats.bernoulli(0.5), stats.bernoulli(0.9)
    assert klkit.kl_divergence(p, q, base=2) == pytest.approx(klkit.kl_divergence(p, q) / math.log(2))
    assert klkit.entropy(p, base=2) == pytest.approx(1.0)
    e = klkit.entropy(stats.norm(0, 1), method="mc", seed=0, base=2)
    e_nats = klkit.entropy(stats.norm(0, 1), method="mc", seed=0)
    assert float(e) == pytest.approx(float(e_nats) / math.log(2))
    assert float(e.standard_error) == pytest.approx(float(e_nats.standard_error) / math.log(2))


@pytest.mark.parametrize(
    ("options", "error", "match"),
    [
        ({"samples": 10}, TypeError, "unknown (option|keyword argument).*samples"),
        ({"method": "closed"}, ValueError, "`method` must be"),
        ({"n_samples": 1}, ValueError, "`n_samples` must be an integer ≥ 2"),
        ({"n_samples": 10.0}, ValueError, "`n_samples`"),
        ({"seed": -1}, ValueError, "`seed`"),
        ({"estimator": "k4"}, ValueError, "`estimator` must be"),
    ],
)
def test_bad_options_are_rejected(options: dict, error: type, match: str) -> None:
    with pytest.raises(error, match=match):
        klkit.kl_divergence(stats.norm(0, 1), stats.norm(1, 1), **options)


def test_mixing_torch_and_scipy_raises() -> None:
    with pytest.raises(BackendMismatchError, match="different libraries"):
        klkit.kl_divergence(td.Normal(0.0, 1.0), stats.norm(0, 1))


def test_shifted_scipy_objects_have_no_closed_form_but_get_monte_carlo() -> None:
    p, q = stats.expon(loc=1.0), stats.expon(loc=1.0, scale=2.0)  # shift-invariant truth: the unshifted KL
    with pytest.raises(NotRegisteredError):
        klkit.kl_divergence(p, q, method="exact")
    mc = klkit.kl_divergence(p, q, seed=0)
    truth = klkit.kl_divergence(stats.expon(), stats.expon(scale=2.0))
    assert abs(float(mc) - truth) < 5 * float(mc.standard_error)


def test_independent_with_different_reinterpreted_dims_is_an_error() -> None:
    p = td.Independent(td.Normal(torch.zeros(2, 3), 1.0), 1)
    q = td.Independent(td.Normal(torch.zeros(2, 3), 1.0), 2)
    with pytest.raises(ValueError, match="same number of batch axes"):
        klkit.kl_divergence(p, q, method="exact")


def test_support_mismatch_is_inf_with_gradients_intact() -> None:
    rate = torch.tensor([1.0, 2.0], requires_grad=True)
    low = torch.tensor([-0.5, 0.5], requires_grad=True)
    kl = klkit.kl_divergence(td.Uniform(low, low + 1.0), td.Exponential(rate))
    assert math.isinf(float(kl[0])) and math.isfinite(float(kl[1]))
    grads = torch.autograd.grad(kl[1], (rate, low))
    assert all(bool(torch.isfinite(g).all()) for g in grads)
    assert float(klkit.kl_divergence(td.Normal(0.0, 1.0), td.Exponential(1.0))) == math.inf


# ---------------------------------------------------------------------------------------------------
# The registry
# ---------------------------------------------------------------------------------------------------
def test_duplicate_registration_raises_and_override_replaces(clean_registry: None) -> None:
    with pytest.raises(ValueError, match=r"KL\(Normal ‖ Normal\) is registered already.*override=True"):
        kd.register_kl(kd.Normal, kd.Normal)(lambda p, q: 0.0)
    with pytest.raises(ValueError, match="entropy of Normal is registered already"):
        kd.register_entropy(kd.Normal)(lambda p: 0.0)

    @kd.register_kl(kd.Normal, kd.Normal, override=True)
    def _zero(p, q):
        return 0.0 * p.loc

    assert float(klkit.kl_divergence(stats.norm(0, 1), stats.norm(5, 1))) == 0.0


def test_registration_of_user_types_and_cache_clearing(clean_registry: None) -> None:
    class Folded(td.Normal):
        """A user's subclass: inherits Normal's closed forms until it registers its own."""

    p, q = Folded(torch.tensor(0.0), torch.tensor(1.0)), Folded(torch.tensor(1.0), torch.tensor(1.0))
    assert float(klkit.kl_divergence(p, q)) == pytest.approx(0.5)  # adapted to the Normal family

    class MyFamily(kd.Normal):
        pass

    assert kd.lookup_kl(MyFamily, kd.Normal) is kd.lookup_kl(kd.Normal, kd.Normal)  # cached now

    @kd.register_kl(MyFamily, kd.Normal)
    def _mine(p, q):
        return 42.0

    assert kd.lookup_kl(MyFamily, kd.Normal) is _mine  # the cache was cleared

    @kd.register_kl(Folded, Folded)
    def _folded(p, q):
        return p.loc * 0 + 7.0

    assert float(klkit.kl_divergence(p, q)) == 7.0  # raw user types are looked up first
    assert (Folded, Folded) in kd.registered_pairs()


def test_ambiguous_registrations_raise(clean_registry: None) -> None:
    class A(kd.Normal):
        pass

    kd.register_kl(A, kd.Normal)(lambda p, q: 1.0)
    kd.register_kl(kd.Normal, A)(lambda p, q: 2.0)
    with pytest.raises(TypeError, match=r"ambiguous.*register_kl\(A, A\)"):
        kd.lookup_kl(A, A)


def test_register_rejects_non_types() -> None:
    with pytest.raises(TypeError, match="`type_p` must be a class"):
        kd.register_kl(td.Normal(0.0, 1.0), kd.Normal)  # type: ignore[arg-type]


def test_klkit_pairs_cli_prints_the_table() -> None:
    from klkit.cli.app import app

    result = CliRunner().invoke(app, ["pairs", "--json"])
    assert result.exit_code == 0
    import json

    table = json.loads(result.output)
    assert table["finite_pairs"] >= 61 and table["finite_pairs"] == sum(r["finite"] for r in table["pairs"])
    assert {"p": "Normal", "q": "Normal", "finite": True} in [
        {k: r[k] for k in ("p", "q", "finite")} for r in table["pairs"]
    ]
    assert sum(r["finite"] and r["in_torch"] is False for r in table["pairs"]) >= 10  # pairs torch lacks
    text = CliRunner().invoke(app, ["pairs"])
    assert text.exit_code == 0 and "VonMises" in text.output


# ---------------------------------------------------------------------------------------------------
# Mixtures
# ---------------------------------------------------------------------------------------------------
def _mix(w, m, s):
    return td.MixtureSameFamily(
        td.Categorical(torch.tensor(w, dtype=T)), td.Normal(torch.tensor(m, dtype=T), torch.tensor(s, dtype=T))
    )


def _mvn_mix(seed: int) -> td.MixtureSameFamily:
    g = torch.Generator().manual_seed(seed)
    L = torch.tril(torch.randn(3, 4, 2, 2, generator=g, dtype=T), -1) + torch.diag_embed(
        torch.rand(3, 4, 2, generator=g, dtype=T) + 0.5
    )
    return td.MixtureSameFamily(
        td.Categorical(logits=torch.randn(3, 4, generator=g, dtype=T)),
        td.MultivariateNormal(2 * torch.randn(3, 4, 2, generator=g, dtype=T), scale_tril=L),
    )


def test_mixture_entropy_bounds_bracket_monte_carlo() -> None:
    p = _mvn_mix(1)
    mc = kd.mixture_entropy(p, seed=0, n_samples=40_000)
    assert mc.shape == (3,)
    slack = 4 * mc.standard_error
    for method in ("huber_lower", "pairwise_lower"):
        bound = kd.mixture_entropy(p, method=method)
        assert bound.kind == "lower bound" and bound.method
        assert bool((bound.value <= mc.value + slack).all()), (method, bound, mc)
    for method in ("huber_upper", "pairwise_upper"):
        bound = kd.mixture_entropy(p, method=method)
        assert bound.kind == "upper bound"
        assert bool((bound.value >= mc.value - slack).all()), (method, bound, mc)


def test_mixture_kl_upper_bound_holds_and_methods_are_named() -> None:
    p, q = _mvn_mix(1), _mvn_mix(2)
    mc = kd.mixture_kl(p, q, method="mc", seed=0, n_samples=40_000)
    upper = kd.mixture_kl(p, q, method="upper_bound")
    approx = kd.mixture_kl(p, q, method="variational")
    assert "Hershey-Olsen" in upper.method and upper.kind == "upper bound" and approx.kind == "approximation"
    assert bool((upper.value >= mc.value - 4 * mc.standard_error).all())
    assert bool(torch.isfinite(approx.value).all())  # an approximation, not a bound: no order to check
    assert "upper bound" in str(upper)


def _f(x: float) -> torch.Tensor:
    return torch.tensor(x, dtype=T)


def test_mixtures_reduce_to_the_gaussian_closed_forms() -> None:
    one_p, one_q = _mix([1.0], [0.3], [0.8]), _mix([1.0], [-1.0], [1.7])
    exact = float(klkit.kl_divergence(td.Normal(_f(0.3), _f(0.8)), td.Normal(_f(-1.0), _f(1.7))))
    assert float(kd.mixture_kl(one_p, one_q)) == pytest.approx(exact, rel=1e-12)
    assert float(kd.mixture_kl(one_p, one_q, method="upper_bound")) == pytest.approx(exact, rel=1e-12)
    h = float(klkit.entropy(td.Normal(_f(0.3), _f(0.8))))
    for method in ("huber_upper", "pairwise_upper", "pairwise_lower"):
        assert float(kd.mixture_entropy(one_p, method=method)) == pytest.approx(h, rel=1e-12)
    p = _mix([0.4, 0.6], [-1.0, 2.0], [0.5, 1.0])
    assert float(kd.mixture_kl(p, p)) == pytest.approx(0.0, abs=1e-12)


def test_sklearn_gaussian_mixtures_give_numpy() -> None:
    from sklearn.mixture import GaussianMixture

    rng = np.random.default_rng(0)
    x = np.concatenate([rng.normal(size=(200, 2)), rng.normal(size=(200, 2)) + 3])
    a = GaussianMixture(2, random_state=0).fit(x)
    b = GaussianMixture(2, covariance_type="diag", random_state=0).fit(x[:300])
    upper = kd.mixture_kl(a, b, method="upper_bound")
    assert isinstance(upper.value, np.floating)
    mc = kd.mixture_kl(a, b, method="mc", seed=0, n_samples=20_000)
    assert float(upper) >= float(mc) - 4 * float(mc.standard_error)
    h = kd.mixture_entropy(a, method="mc", seed=0, n_samples=20_000)
    assert float(kd.mixture_entropy(a, method="pairwise_lower")) <= float(h) + 4 * float(h.standard_error)


def test_mixture_options_are_checked() -> None:
    with pytest.raises(ValueError, match="`method` must be"):
        kd.mixture_kl(_mix([1.0], [0.0], [1.0]), _mix([1.0], [0.0], [1.0]), method="exact")
    with pytest.raises(TypeError, match="Gaussian components"):
        kd.mixture_entropy(
            td.MixtureSameFamily(td.Categorical(torch.ones(2)), td.Laplace(torch.zeros(2), 1.0)), method="huber_upper"
        )


def test_auto_uses_monte_carlo_for_torch_mixtures() -> None:
    p, q = _mix([0.5, 0.5], [-1.0, 1.0], [1.0, 0.5]), _mix([0.3, 0.7], [-1.0, 2.0], [1.0, 1.5])
    e = klkit.kl_divergence(p, q, seed=0, n_samples=20_000)
    assert isinstance(e, Estimate)
    assert float(kd.mixture_kl(p, q, method="upper_bound")) >= float(e) - 4 * float(e.standard_error)


def test_fused_standard_normal_path_matches_the_general_formula_and_its_gradients() -> None:
    g = torch.Generator().manual_seed(0)
    mu = torch.randn(512, 8, generator=g, dtype=T).requires_grad_()
    logvar = (torch.rand(512, 8, generator=g, dtype=T) * 60 - 30).requires_grad_()  # logvar in [-30, 30]
    p = td.Independent(td.Normal(mu, torch.exp(0.5 * logvar)), 1)
    prior = td.Independent(td.Normal(torch.zeros(8, dtype=T), torch.ones(8, dtype=T)), 1)  # fused path
    expanded = td.Independent(td.Normal(torch.zeros(512, 8, dtype=T), torch.ones(512, 8, dtype=T)), 1)  # general
    fused, general = klkit.kl_divergence(p, prior), klkit.kl_divergence(p, expanded)
    assert torch.allclose(fused, general, rtol=1e-12, atol=1e-12)
    grads_fused = torch.autograd.grad(fused.sum(), (mu, logvar), retain_graph=True)
    grads_general = torch.autograd.grad(general.sum(), (mu, logvar))
    for a, b in zip(grads_fused, grads_general, strict=True):
        assert torch.allclose(a, b, rtol=1e-10, atol=1e-12)
    vae = kd.gaussian_kl_standard_normal(mu, logvar).sum(-1)
    assert torch.allclose(fused, vae, rtol=1e-10, atol=1e-12)


def test_public_api_is_pinned() -> None:
    assert sorted(kd.__all__) == kd.__all__
    assert {
        "register_kl",
        "register_entropy",
        "registered_pairs",
        "gaussian_kl_standard_normal",
        "mixture_kl",
        "mixture_entropy",
        "kl_divergence",
        "entropy",
        "cross_entropy",
    } <= set(kd.__all__)
    assert all(hasattr(kd, name) for name in kd.__all__)


def test_mixture_without_closed_form_points_to_mixture_kl() -> None:
    p = _mix([0.5, 0.5], [-1.0, 1.0], [1.0, 0.5])
    with pytest.raises(NotRegisteredError, match="mixture_kl also gives deterministic bounds"):
        klkit.kl_divergence(p, p, method="exact")


@settings(max_examples=40, deadline=None)
@given(
    loc=st.floats(-5, 5),
    log_scale=st.floats(-3, 3),
    loc_q=st.floats(-5, 5),
    log_scale_q=st.floats(-3, 3),
    a=st.floats(0.2, 20),
    b=st.floats(0.2, 20),
)
def test_properties_numpy_and_torch_agree_kl_nonnegative_and_zero_on_the_diagonal(
    loc: float, log_scale: float, loc_q: float, log_scale_q: float, a: float, b: float
) -> None:
    s, sq = math.exp(log_scale), math.exp(log_scale_q)
    cases = [
        (stats.norm(loc, s), stats.norm(loc_q, sq), td.Normal(_f(loc), _f(s)), td.Normal(_f(loc_q), _f(sq))),
        (stats.gamma(a, scale=s), stats.gamma(b, scale=sq), td.Gamma(_f(a), _f(1 / s)), td.Gamma(_f(b), _f(1 / sq))),
        (stats.beta(a, b), stats.beta(b, a), td.Beta(_f(a), _f(b)), td.Beta(_f(b), _f(a))),
        (stats.gumbel_r(loc, s), stats.laplace(loc_q, sq), td.Gumbel(_f(loc), _f(s)), td.Laplace(_f(loc_q), _f(sq))),
    ]
    for sp, sq_, tp, tq in cases:
        kl_np, kl_t = klkit.kl_divergence(sp, sq_, method="exact"), klkit.kl_divergence(tp, tq, method="exact")
        assert kl_np >= -1e-12
        assert float(kl_t) == pytest.approx(float(kl_np), rel=1e-9, abs=1e-12)
        assert abs(float(klkit.kl_divergence(sp, sp))) < 1e-9 * max(1.0, abs(float(klkit.entropy(sp))))


def test_monte_carlo_broadcasts_a_larger_batch_of_q() -> None:
    p = td.Normal(_f(0.0), _f(1.0))
    q = td.StudentT(torch.tensor([3.0, 10.0], dtype=T))
    e = klkit.kl_divergence(p, q, seed=0, n_samples=20_000)
    assert e.shape == (2,)
    one = klkit.kl_divergence(p, td.StudentT(_f(10.0)), seed=0, n_samples=20_000)
    assert float(e.value[1]) == pytest.approx(float(one), rel=1e-12)  # same samples of p for every q
    es = klkit.kl_divergence(stats.norm(0, 1), stats.t([3.0, 10.0]), seed=0, n_samples=20_000)
    assert np.shape(es.value) == (2,)


def test_ops_for_takes_the_library_from_the_array_layer() -> None:
    """The closed forms' special functions follow klkit._xp.namespace: numpy → scipy, torch → torch, else TypeError."""
    from klkit.distributions._ops import ops_for

    assert ops_for(np.ones(2), [1.0]).name == "numpy"
    assert ops_for(torch.ones(2)).name == "torch"
    with pytest.raises(BackendMismatchError):
        ops_for(np.ones(2), torch.ones(2), names=("loc", "scale"))
    with pytest.raises(TypeError, match="`loc` must be an array"):
        ops_for(None, names=("loc",))
    dask_array = pytest.importorskip("dask.array")
    with pytest.raises(TypeError, match=r"`rate` must be a numpy array or a torch tensor.*found dask"):
        ops_for(dask_array.ones(2), names=("rate",))
