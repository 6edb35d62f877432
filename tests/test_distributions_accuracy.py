"""Near-identical pairs against 50-digit references: no H(p, q) − H(p) cancellation where families meet."""

from __future__ import annotations

import mpmath
import numpy as np
import pytest
import torch
import torch.distributions as td
from scipy import stats

import klkit


def _bernoulli_kl_mp(a: float, b: float) -> mpmath.mpf:
    with mpmath.workdps(50):
        a, b = mpmath.mpf(a), mpmath.mpf(b)  # the float64 inputs exactly
        return a * mpmath.log(a / b) + (1 - a) * mpmath.log((1 - a) / (1 - b))


def test_near_identical_geometric_and_bernoulli_binomial() -> None:
    """Was 4e-3 (Geometric) and 2.5e-3 (Bernoulli‖Binomial(1)) relative error as H(p, q) − H(p)."""
    a, b = 0.3, 0.3 + 1e-7
    truth = _bernoulli_kl_mp(a, b)
    ours = float(klkit.kl_divergence(stats.bernoulli(a), stats.binom(1, b)))
    assert ours == pytest.approx(float(truth), rel=1e-3, abs=0)
    ours = float(klkit.kl_divergence(stats.geom(a), stats.geom(b)))
    assert ours == pytest.approx(float(truth / mpmath.mpf(a)), rel=1e-3, abs=0)  # KL_Bernoulli / πp
    assert float(klkit.kl_divergence(stats.geom(a), stats.geom(a))) == 0.0
    n4 = float(klkit.kl_divergence(stats.bernoulli(a), stats.binom(4, 0.2)))
    k = np.arange(5)
    exact = (1 - a) * (np.log(1 - a) - stats.binom(4, 0.2).logpmf(0)) + a * (np.log(a) - stats.binom(4, 0.2).logpmf(1))
    assert n4 == pytest.approx(exact, rel=1e-12) and k.size == 5


# --- Bernoulli form at p ≈ q ------------------------------------------------------------------------
@pytest.mark.parametrize("a", [0.3, 0.9, 1e-3])
@pytest.mark.parametrize("delta", [1e-7, -1e-7, 1e-10, -1e-10])
def test_bernoulli_family_near_identical_to_full_precision(a: float, delta: float) -> None:
    """Was 2e-9 (δ = 1e-7) and 2e-6 (δ = 1e-10) relative error in the softplus difference form."""
    b = a + delta
    truth = _bernoulli_kl_mp(a, b)
    assert float(klkit.kl_divergence(stats.bernoulli(a), stats.bernoulli(b))) == pytest.approx(
        float(truth), rel=1e-14, abs=0
    )
    assert float(klkit.kl_divergence(stats.binom(7, a), stats.binom(7, b))) == pytest.approx(
        float(7 * truth), rel=1e-14, abs=0
    )
    assert float(klkit.kl_divergence(stats.geom(a), stats.geom(b))) == pytest.approx(
        float(truth / mpmath.mpf(a)), rel=1e-14, abs=0
    )
    assert float(klkit.kl_divergence(stats.bernoulli(a), stats.binom(1, b))) == pytest.approx(
        float(truth), rel=1e-14, abs=0
    )


def test_bernoulli_torch_near_identical_and_far() -> None:
    """The same form on torch (float64), with gradients; far pairs and the boundary cases unchanged."""
    a, b = 0.3, 0.3 + 1e-10
    p = torch.tensor(a, dtype=torch.float64, requires_grad=True)
    kl = klkit.kl_divergence(td.Bernoulli(probs=p), td.Bernoulli(probs=torch.tensor(b, dtype=torch.float64)))
    assert float(kl.detach()) == pytest.approx(float(_bernoulli_kl_mp(a, b)), rel=1e-14, abs=0)
    kl.backward()
    assert float(p.grad) == pytest.approx(float(mpmath.log(a / b) - mpmath.log((1 - a) / (1 - b))), rel=1e-5, abs=0)
    far = klkit.kl_divergence(stats.bernoulli([0.0, 0.2, 1.0, 0.5]), stats.bernoulli([0.5, 0.9, 0.5, 0.0]))
    assert far[0] == pytest.approx(np.log(2.0), rel=1e-15, abs=0) and far[2] == pytest.approx(np.log(2.0), rel=1e-15)
    assert far[1] == pytest.approx(float(_bernoulli_kl_mp(0.2, 0.9)), rel=1e-14, abs=0) and far[3] == np.inf


# --- Exponential, Gamma, Weibull: the families meet at shape 1 -------------------------------------
def _h_exp(lam):
    return 1 - mpmath.log(lam)


def _h_gamma(a, b):
    return a - mpmath.log(b) + mpmath.loggamma(a) + (1 - a) * mpmath.digamma(a)


def _h_weibull(s, k):
    return mpmath.euler * (1 - 1 / k) + mpmath.log(s / k) + 1


def _ce_gamma(mean_log, mean, a, b):  # −E_p log q for q = Gamma(a, rate b)
    return mpmath.loggamma(a) - a * mpmath.log(b) - (a - 1) * mean_log + b * mean


def _ce_weibull(mean_log, mean_pow_k, s, k):  # −E_p log q for q = Weibull(scale s, k)
    return -mpmath.log(k) + k * mpmath.log(s) - (k - 1) * mean_log + mean_pow_k / s**k


def _ce_exp(mean, lam):
    return -mpmath.log(lam) + lam * mean


def _reference(kind: str, *x: float) -> float:
    """KL = H(p, q) − H(p) from the textbook formulas at 50 digits (the float64 inputs taken exactly)."""
    with mpmath.workdps(50):
        v = [mpmath.mpf(t) for t in x]
        if kind == "exp-gamma":
            lam, a, b = v
            out = _ce_gamma(-mpmath.euler - mpmath.log(lam), 1 / lam, a, b) - _h_exp(lam)
        elif kind == "gamma-exp":
            a, b, lam = v
            out = _ce_exp(a / b, lam) - _h_gamma(a, b)
        elif kind == "exp-weibull":
            lam, s, k = v
            out = _ce_weibull(-mpmath.euler - mpmath.log(lam), mpmath.gamma(1 + k) / lam**k, s, k) - _h_exp(lam)
        elif kind == "weibull-exp":
            s, k, lam = v
            out = _ce_exp(s * mpmath.gamma(1 + 1 / k), lam) - _h_weibull(s, k)
        elif kind == "gamma-weibull":
            a, b, s, k = v
            out = _ce_weibull(
                mpmath.digamma(a) - mpmath.log(b), mpmath.gamma(a + k) / (mpmath.gamma(a) * b**k), s, k
            ) - _h_gamma(a, b)
        else:  # weibull-gamma
            s, k, a, b = v
            out = _ce_gamma(mpmath.log(s) - mpmath.euler / k, s * mpmath.gamma(1 + 1 / k), a, b) - _h_weibull(s, k)
        return float(out)


def _scipy_pair(kind: str, *x: float):
    expon = lambda lam: stats.expon(scale=1 / lam)  # noqa: E731
    gamma = lambda a, b: stats.gamma(a, scale=1 / b)  # noqa: E731
    weibull = lambda s, k: stats.weibull_min(k, scale=s)  # noqa: E731
    first, second = kind.split("-")
    make = {"exp": (expon, 1), "gamma": (gamma, 2), "weibull": (weibull, 2)}
    (f, n), (g, _) = make[first], make[second]
    return f(*x[:n]), g(*x[n:])


NEAR = [  # shape offsets 1e-6 .. 1e-9, rate·scale offsets 1e-8 (H(p, q) − H(p) had relative errors 1e-5 .. 5e2)
    ("exp-gamma", 1.0, 1 + 1e-6, 1.0),
    ("exp-gamma", 2.0, 1 - 1e-9, 2.0 * (1 + 1e-8)),
    ("gamma-exp", 1 + 1e-6, 1.0, 1.0),
    ("gamma-exp", 1 - 1e-9, 3.0, 3.0 + 1e-8),
    ("exp-weibull", 1.0, 1.0, 1 + 1e-6),
    ("exp-weibull", 2.0, 0.5, 1 - 1e-9),
    ("exp-weibull", 3.0, 1 / 3, 1.0),
    ("weibull-exp", 1.0, 1 + 1e-6, 1.0),
    ("weibull-exp", 0.5 * (1 + 1e-8), 1.0, 2.0),
    ("gamma-weibull", 1 + 1e-6, 1.0, 1.0, 1 + 2e-6),
    ("gamma-weibull", 1 - 1e-9, 3.0, 1 / 3, 1 + 1e-9),
    ("weibull-gamma", 1.0, 1 + 1e-6, 1 + 1e-6, 1.0),
    ("weibull-gamma", 2.0, 1 - 1e-9, 1.0, 0.5),
]
FAR = [
    ("exp-gamma", 1.0, 3.0, 0.5),
    ("gamma-exp", 4.0, 2.0, 0.3),
    ("exp-weibull", 1.0, 2.0, 3.0),
    ("weibull-exp", 2.0, 0.7, 1.5),
    ("gamma-weibull", 5.0, 2.0, 3.0, 2.5),
    ("gamma-weibull", 50.0, 0.1, 400.0, 8.0),
    ("weibull-gamma", 2.0, 3.0, 2.5, 0.7),
    ("weibull-gamma", 1.0, 30.0, 40.0, 30.0),
]


@pytest.mark.parametrize("case", NEAR, ids=lambda c: f"{c[0]}{c[1:]}")
def test_exponential_gamma_weibull_near_identical(case: tuple) -> None:
    truth = _reference(*case)
    assert truth > 0
    assert float(klkit.kl_divergence(*_scipy_pair(*case), method="exact")) == pytest.approx(truth, rel=1e-14, abs=0)


@pytest.mark.parametrize("case", FAR, ids=lambda c: f"{c[0]}{c[1:]}")
def test_exponential_gamma_weibull_far_apart(case: tuple) -> None:
    truth = _reference(*case)
    assert float(klkit.kl_divergence(*_scipy_pair(*case), method="exact")) == pytest.approx(truth, rel=1e-12, abs=0)


def test_exponential_gamma_weibull_torch_matches_and_differentiates() -> None:
    f64 = lambda v: torch.tensor(v, dtype=torch.float64, requires_grad=True)  # noqa: E731
    for a, b, s, k in [(1 + 1e-6, 1.0, 1.0, 1 + 2e-6), (1.3, 2.0, 0.4, 1.7)]:
        x = [f64(a), f64(b), f64(s), f64(k)]
        assert torch.autograd.gradcheck(lambda *v: klkit.kl_divergence(td.Gamma(v[0], v[1]), td.Weibull(v[2], v[3])), x)
        assert torch.autograd.gradcheck(lambda *v: klkit.kl_divergence(td.Weibull(v[2], v[3]), td.Gamma(v[0], v[1])), x)
        ours = float(klkit.kl_divergence(td.Gamma(x[0], x[1]), td.Weibull(x[2], x[3])).detach())
        assert ours == pytest.approx(_reference("gamma-weibull", a, b, s, k), rel=1e-13, abs=0)
    t64 = lambda v: torch.tensor(v, dtype=torch.float64)  # noqa: E731
    e = klkit.kl_divergence(td.Exponential(t64([1.0, 2.0])), td.Gamma(t64([1 + 1e-6, 1.0]), t64(1.0)))
    assert float(e[0]) == pytest.approx(_reference("exp-gamma", 1.0, 1 + 1e-6, 1.0), rel=1e-14, abs=0)
    assert float(e[1]) == pytest.approx(_reference("exp-gamma", 2.0, 1.0, 1.0), rel=1e-14, abs=0)


# --- Uniform(0, 1) = Beta(1, 1) = ContinuousBernoulli(½) -------------------------------------------
def _log_beta_mp(a, b):
    return mpmath.log(mpmath.beta(a, b))


def _beta_logpdf_mp(a, b, x):
    return (a - 1) * mpmath.log(x) + (b - 1) * mpmath.log(1 - x) - _log_beta_mp(a, b)


def _cb_logpdf_mp(lam, x):
    log_c = mpmath.log(2) if lam == 0.5 else mpmath.log(2 * mpmath.atanh(1 - 2 * lam) / (1 - 2 * lam))
    return log_c + x * mpmath.log(lam) + (1 - x) * mpmath.log(1 - lam)


def _unit_reference(kind: str, *x: float) -> float:
    """E_p[log p − log q] by 50-digit tanh-sinh quadrature (mpmath.quad), the float64 inputs taken exactly."""
    with mpmath.workdps(50):
        v = [mpmath.mpf(t) for t in x]
        if kind == "uniform-beta":
            lo, hi, a, b = v
            out = mpmath.quad(lambda t: -mpmath.log(hi - lo) - _beta_logpdf_mp(a, b, t), [lo, hi]) / (hi - lo)
        elif kind == "beta-uniform":
            a, b, lo, hi = v
            out = mpmath.quad(
                lambda t: mpmath.exp(_beta_logpdf_mp(a, b, t)) * (_beta_logpdf_mp(a, b, t) + mpmath.log(hi - lo)),
                [0, 0.5, 1],
            )
        elif kind == "beta-cb":
            a, b, lam = v
            out = mpmath.quad(
                lambda t: mpmath.exp(_beta_logpdf_mp(a, b, t)) * (_beta_logpdf_mp(a, b, t) - _cb_logpdf_mp(lam, t)),
                [0, 0.5, 1],
            )
        elif kind == "uniform-cb":
            lo, hi, lam = v
            out = mpmath.quad(lambda t: -mpmath.log(hi - lo) - _cb_logpdf_mp(lam, t), [lo, hi]) / (hi - lo)
        else:  # cb-uniform
            lam, lo, hi = v
            out = mpmath.quad(
                lambda t: mpmath.exp(_cb_logpdf_mp(lam, t)) * (_cb_logpdf_mp(lam, t) + mpmath.log(hi - lo)), [0, 1]
            )
        return float(out)


def _unit_pair(kind: str, *x: float):
    t = lambda v: torch.tensor(v, dtype=torch.float64)  # noqa: E731
    make = {
        "uniform": (lambda lo, hi: td.Uniform(t(lo), t(hi)), 2),
        "beta": (lambda a, b: td.Beta(t(a), t(b)), 2),
        "cb": (lambda lam: td.ContinuousBernoulli(probs=t(lam)), 1),
    }
    first, second = kind.split("-")
    (f, n), (g, _) = make[first], make[second]
    return f(*x[:n]), g(*x[n:])


UNIT = [  # (case, relative tolerance); H(p, q) − H(p) had 2e-6 .. 2.0 relative error on the near-identical ones
    (("uniform-beta", 0.0, 1.0, 1 + 1e-6, 1 - 2e-6), 1e-14),
    (("uniform-beta", 0.0, 1.0, 1 + 1e-9, 1.0), 1e-14),
    (("uniform-beta", 1e-8, 1.0, 1 + 1e-6, 1 + 1e-6), 1e-14),
    (("uniform-beta", 0.2, 0.7, 2.0, 3.0), 1e-13),
    (("beta-uniform", 1 + 1e-6, 1 - 2e-6, 0.0, 1.0), 1e-14),
    (("beta-uniform", 1 + 1e-9, 1.0, 0.0, 1.0), 1e-14),
    (("beta-uniform", 2.0, 3.0, -1.0, 2.0), 1e-13),
    (("beta-cb", 1 + 1e-6, 1 - 1e-6, 0.5 + 1e-7), 1e-13),
    (("beta-cb", 1.0, 1.0, 0.5 + 1e-9), 1e-14),
    (("beta-cb", 2.0, 5.0, 0.2), 1e-13),
    # λ = ½ + 1e-7: torch's logit of λ carries ~3e-14 relative error, which the KL (∝ logit²) inherits
    (("uniform-cb", 0.0, 1.0, 0.5 + 1e-7), 1e-13),
    (("uniform-cb", 0.0, 1.0, 0.5 - 1e-9), 1e-14),
    (("uniform-cb", 0.1, 0.6, 0.8), 1e-13),
    (("cb-uniform", 0.5 + 1e-7, 0.0, 1.0), 1e-13),
    (("cb-uniform", 0.5 - 1e-9, 0.0, 1.0), 1e-14),
    (("cb-uniform", 0.9, -0.5, 1.0), 1e-13),
]


@pytest.mark.parametrize(("case", "rel"), UNIT, ids=[f"{c[0]}{c[1:]}" for c, _ in UNIT])
def test_unit_interval_families_near_identical(case: tuple, rel: float) -> None:
    truth = _unit_reference(*case)
    assert truth > 0
    assert float(klkit.kl_divergence(*_unit_pair(*case), method="exact")) == pytest.approx(truth, rel=rel, abs=0)


def test_uniform_beta_scipy_and_outside_support() -> None:
    truth = _unit_reference("uniform-beta", 0.0, 1.0, 1 + 1e-6, 1 - 2e-6)
    assert float(klkit.kl_divergence(stats.uniform(0, 1), stats.beta(1 + 1e-6, 1 - 2e-6))) == pytest.approx(
        truth, rel=1e-14, abs=0
    )
    assert float(klkit.kl_divergence(stats.uniform(-0.5, 1), stats.beta(2, 2))) == np.inf
    assert float(klkit.kl_divergence(stats.beta(2, 2), stats.uniform(0.1, 1))) == np.inf


def test_scipy_geom_counts_trials_so_laws_with_mass_at_zero_get_inf() -> None:
    """scipy.stats.geom starts at 1 (trials): KL(Bernoulli or Poisson ‖ geom) = +inf; geom(p, loc=-1) is torch's."""
    assert float(klkit.kl_divergence(stats.bernoulli(0.3), stats.geom(0.5))) == np.inf
    assert float(klkit.kl_divergence(stats.poisson(0.3), stats.geom(0.5))) == np.inf
    failures = float(klkit.kl_divergence(stats.bernoulli(0.3), stats.geom(0.5, loc=-1)))
    ours_torch = float(
        klkit.kl_divergence(
            td.Bernoulli(torch.tensor(0.3, dtype=torch.float64)), td.Geometric(torch.tensor(0.5, dtype=torch.float64))
        )
    )
    truth = 0.7 * np.log(0.7 / 0.5) + 0.3 * np.log(0.3 / 0.25)
    assert failures == pytest.approx(truth, rel=1e-14, abs=0) and ours_torch == pytest.approx(truth, rel=1e-14, abs=0)
    same = float(klkit.kl_divergence(stats.geom(0.3), stats.geom(0.5)))
    shifted = float(klkit.kl_divergence(stats.geom(0.3, loc=-1), stats.geom(0.5, loc=-1)))
    assert same == pytest.approx(shifted, rel=1e-15, abs=0)
    with pytest.raises(klkit.errors.NotRegisteredError, match="supports starting at 1 and 0"):
        klkit.kl_divergence(stats.geom(0.3), stats.geom(0.5, loc=-1), method="exact")


# --- Bernoulli, Poisson, Geometric (failures), Binomial meet at the point mass at 0 ------------------
def _corner_reference(kind: str, eps: float, other: float, count: int = 1) -> float:
    """Σ_k p_k (log p_k − log q_k) at 50 digits (Poisson: mpmath.nsum over k ≥ 0)."""
    with mpmath.workdps(50):
        e, x = mpmath.mpf(eps), mpmath.mpf(other)
        if kind == "bernoulli-poisson":  # other = λ
            out = (1 - e) * (mpmath.log(1 - e) + x) + e * (mpmath.log(e) - mpmath.log(x) + x)
        elif kind == "bernoulli-geometric":  # other = π
            out = (1 - e) * (mpmath.log(1 - e) - mpmath.log(x)) + e * (mpmath.log(e) - mpmath.log(x * (1 - x)))
        elif kind == "bernoulli-binomial":  # other = π
            q0, q1 = (1 - x) ** count, count * x * (1 - x) ** (count - 1)
            out = (1 - e) * mpmath.log((1 - e) / q0) + e * mpmath.log(e / q1)
        else:  # poisson-geometric

            def term(k):
                log_p = k * mpmath.log(e) - e - mpmath.loggamma(k + 1)
                return mpmath.exp(log_p) * (log_p - mpmath.log(x) - k * mpmath.log(1 - x))

            out = mpmath.nsum(term, [0, mpmath.inf])
        return float(out)


@pytest.mark.parametrize("eps", [1e-3, 1e-6, 1e-9])
@pytest.mark.parametrize("ratio", [1.0, 1.3, 0.6, 3.0])
def test_laws_near_the_point_mass_at_zero(eps: float, ratio: float) -> None:
    """Was up to 1e-7 relative error (Poisson ‖ Geometric at ε = 1e-6) as H(p, q) − H(p); ratio 3 is the far branch."""
    eta = eps * ratio
    pairs = [
        ("bernoulli-poisson", stats.bernoulli(eps), stats.poisson(eta), eta, 1),
        ("bernoulli-geometric", stats.bernoulli(eps), stats.geom(1 - eta, loc=-1), 1 - eta, 1),
        ("poisson-geometric", stats.poisson(eps), stats.geom(1 - eta, loc=-1), 1 - eta, 1),
        ("bernoulli-binomial", stats.bernoulli(eps), stats.binom(4, eta / 4), eta / 4, 4),
    ]
    for kind, p, q, other, count in pairs:
        truth = _corner_reference(kind, eps, other, count)
        assert float(klkit.kl_divergence(p, q, method="exact")) == pytest.approx(truth, rel=1e-13, abs=0), kind


def test_point_mass_corner_on_torch_with_gradients() -> None:
    t = lambda v: torch.tensor(v, dtype=torch.float64, requires_grad=True)  # noqa: E731
    eps, lam = t(1e-3), t(1.2e-3)
    assert torch.autograd.gradcheck(lambda a, b: klkit.kl_divergence(td.Bernoulli(probs=a), td.Poisson(b)), [eps, lam])
    assert torch.autograd.gradcheck(
        lambda a, b: klkit.kl_divergence(td.Poisson(a), td.Geometric(probs=1 - b)), [eps, lam]
    )
    value = klkit.kl_divergence(td.Bernoulli(probs=eps), td.Geometric(probs=1 - lam)).detach()
    assert float(value) == pytest.approx(_corner_reference("bernoulli-geometric", 1e-3, 1 - 1.2e-3), rel=1e-13, abs=0)


def _weibull_reference(l1: float, k1: float, l2: float, k2: float) -> float:
    """The textbook Weibull ‖ Weibull closed form at 50 digits."""
    with mpmath.workdps(50):
        l1, k1, l2, k2 = (mpmath.mpf(v) for v in (l1, k1, l2, k2))
        mean_log = mpmath.log(l1) - mpmath.euler / k1
        return float(
            mpmath.log(k1 / l1**k1)
            - mpmath.log(k2 / l2**k2)
            + (k1 - k2) * mean_log
            + (l1 / l2) ** k2 * mpmath.gamma(k2 / k1 + 1)
            - 1
        )


@pytest.mark.parametrize(
    "case",
    [
        (1.0, 2.0, 1.0, 2.0 * (1 + 1e-7)),
        (3.0, 0.7, 3.0 * (1 + 1e-8), 0.7),
        (1.0, 1.0, 1.0, 1 + 1e-9),
        (2.0, 1.5, 1.0, 3.0),
        (1.0, 40.0, 2.0, 0.5),
    ],
)
def test_weibull_weibull_regrouped(case: tuple) -> None:
    """Same family but was H(p, q) − H(p): 1.6e-3 relative error at kq/kp − 1 = 1e-7, no digit at λq/λp − 1 = 1e-8."""
    l1, k1, l2, k2 = case
    ours = float(klkit.kl_divergence(stats.weibull_min(k1, scale=l1), stats.weibull_min(k2, scale=l2)))
    assert ours == pytest.approx(_weibull_reference(*case), rel=1e-14, abs=0)


def _gamma_reference(ap: float, bp: float, aq: float, bq: float) -> float:
    with mpmath.workdps(50):
        ap, bp, aq, bq = (mpmath.mpf(v) for v in (ap, bp, aq, bq))
        return float(
            aq * mpmath.log(bp / bq)
            + mpmath.loggamma(aq)
            - mpmath.loggamma(ap)
            + (ap - aq) * mpmath.digamma(ap)
            + (bq - bp) * ap / bp
        )


def _beta_reference(a: float, b: float, c: float, d: float) -> float:
    with mpmath.workdps(50):
        a, b, c, d = (mpmath.mpf(v) for v in (a, b, c, d))
        return float(
            _log_beta_mp(c, d)
            - _log_beta_mp(a, b)
            + (a - c) * mpmath.digamma(a)
            + (b - d) * mpmath.digamma(b)
            + (c - a + d - b) * mpmath.digamma(a + b)
        )


@pytest.mark.parametrize(
    "case",
    [
        (3.0, 1.0, 3.0 + 3e-7, 1.0),
        (3.0, 1.0, 3.0, 1.0 + 1e-8),
        (0.01, 2.0, 0.0100001, 2.0),
        (1e5, 3.0, 1e5 * (1 + 1e-9), 3.0),
        (2.0, 1.0, 7.0, 0.1),
        (0.3, 1.0, 0.31, 1.2),
    ],
)
def test_gamma_gamma_near_identical(case: tuple) -> None:
    """Was 4e-3 (shape offset 1e-7) and 0.26 (rate offset 1e-8) relative error."""
    ap, bp, aq, bq = case
    ours = float(klkit.kl_divergence(stats.gamma(ap, scale=1 / bp), stats.gamma(aq, scale=1 / bq)))
    assert ours == pytest.approx(_gamma_reference(*case), rel=1e-14, abs=0)


@pytest.mark.parametrize(
    "case",
    [
        (2.0, 3.0, 2.0 + 2e-7, 3.0),
        (2.0, 3.0, 2.0 + 2e-7, 3.0 - 1e-7),
        (0.5, 0.5, 0.5, 0.5 + 1e-9),
        (2.0, 3.0, 5.0, 1.0),
        (100.0, 200.0, 100.00001, 200.0),
    ],
)
def test_beta_beta_near_identical(case: tuple) -> None:
    """Was 0.11 relative error at Beta(2, 3) ‖ Beta(2 + 2e-7, 3)."""
    ours = float(klkit.kl_divergence(stats.beta(*case[:2]), stats.beta(*case[2:])))
    assert ours == pytest.approx(_beta_reference(*case), rel=1e-14, abs=0)


def test_gamma_and_beta_torch_gradients_near_identity() -> None:
    t = lambda v: torch.tensor(v, dtype=torch.float64, requires_grad=True)  # noqa: E731
    x = [t(3.0), t(1.0), t(3.001), t(1.002)]
    assert torch.autograd.gradcheck(lambda a, b, c, d: klkit.kl_divergence(td.Gamma(a, b), td.Gamma(c, d)), x)
    assert torch.autograd.gradcheck(lambda a, b, c, d: klkit.kl_divergence(td.Beta(a, b), td.Beta(c, d)), x)
