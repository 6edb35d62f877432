r"""Monte Carlo estimates of total variation, Hellinger, Rényi, χ² and f-divergences of distribution objects.

What :mod:`klkit.distributions.divergence_api` falls back on where no closed form is
registered (its docstring tabulates the estimators and their variance). Each estimate is an
:class:`~klkit.estimators.Estimate` with its standard error, with a
:class:`~klkit.errors.MonteCarloWarning` when the per-sample terms are too heavy-tailed to trust.

The Rényi estimate is the log of a mean, biased by about −Var/(2n·mean²)/(α − 1); its standard
error is the delta method's. A callable f is checked as on arrays (:func:`klkit.f_divergence`):
f(1) = 0, element-wise, no NaN; and since its :math:`f'(\infty)` is unknown, a sample of p where
q(x) = 0 raises rather than drop the term :math:`f'(\infty)\,P(q = 0)`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from klkit._engine import check_f_at_one, errstate, f_values, namespace, to_numpy, unknown_slope
from klkit.distributions._dispatch import broadcast, finite, is_estimate, log_densities_at, two_seeds
from klkit.distributions.montecarlo import _host, draw, mc_mean, mean_of_halves, warn_if_unreliable

__all__ = [
    "ADVICE",
    "callable_f_mc",
    "chi2_mc",
    "hellinger_squared_mc",
    "renyi_mc",
    "square_root",
    "total_variation_mc",
]

ADVICE = (
    "Use a closed form (method='exact'; add one with klkit.distributions.register_divergence), or check "
    "whether the quantity is infinite (q's tails lighter than p's); more samples will not fix an infinite "
    "variance."
)


def total_variation_mc(p: Any, q: Any, n: int, seed: int | None) -> Any:
    """½ E_p[(1 − q/p)₊] + ½ E_q[(1 − p/q)₊], ``n`` samples of each."""
    return _symmetric_mc(p, q, n, seed, _tv_terms, "MC total variation")


def hellinger_squared_mc(p: Any, q: Any, n: int, seed: int | None) -> Any:
    """H² = 1 − ½ E_p[√(q/p)] − ½ E_q[√(p/q)], ``n`` samples of each."""
    return _symmetric_mc(p, q, n, seed, _hellinger_terms, "MC squared Hellinger distance")


def chi2_mc(p: Any, q: Any, n: int, seed: int | None) -> Any:
    """Pearson χ²(p‖q): the mean of p/q − 1 over samples of p (+inf where q = 0 at one of them)."""
    log_p, log_q = log_densities_at(p, q, draw(p, n, seed))
    xp = namespace(log_p)
    with errstate(xp):
        terms = xp.expm1(log_p - log_q)
    warn_if_unreliable(terms, finite(log_q), "χ²(p‖q) = E_p[p/q] − 1", ADVICE)
    return mc_mean(terms, "MC χ² E_p[p/q] − 1")


def callable_f_mc(p: Any, q: Any, f: Callable[[Any], Any], n: int, seed: int | None) -> Any:
    """E_q[f(p/q)] for a user's generator, after the checks of the array path and a support check on samples of p."""
    seed_p, seed_q = two_seeds(seed)
    log_p, log_q = log_densities_at(p, q, draw(p, n, seed_p))
    xp = namespace(log_q)
    check_f_at_one(f, xp, log_q)
    escape = (log_q == -math.inf) & (log_p > -math.inf)
    if bool(xp.any(escape)):
        count = int(to_numpy(xp.sum(xp.astype(escape, xp.int64))))
        raise unknown_slope(
            f"q(x) = 0 < p(x) at {count} of {math.prod(escape.shape)} points x sampled from p "
            "(so p has mass outside q's support)"
        )
    log_q, log_p = log_densities_at(q, p, draw(q, n, seed_q))
    with errstate(xp):
        terms = f_values(f, xp.exp(log_p - log_q), xp)
    warn_if_unreliable(terms, finite(log_p), "f-divergence E_q[f(p/q)]", ADVICE)
    return mc_mean(terms, "MC f-divergence E_q[f(p/q)]")


def renyi_mc(p: Any, q: Any, alpha: float, n: int, seed: int | None) -> Any:
    """log(mean of w) / (α − 1), w = (q/p)^(1−α) at samples of p (α ≥ ½) or (p/q)^α at samples of q (α < ½)."""
    from klkit.estimators import Estimate

    if alpha >= 0.5:
        log_a, log_b = log_densities_at(p, q, draw(p, n, seed))
        log_w = (1.0 - alpha) * (log_b - log_a)
        where = "E_p[(q/p)^(1−α)]"
    else:
        log_b, log_a = log_densities_at(q, p, draw(q, n, seed))
        xp = namespace(log_a)
        with errstate(xp):  # outside p's support: weight 0, also at α = 0
            log_w = xp.where(log_a == -math.inf, log_a, alpha * (log_a - log_b))
        where = "E_q[(p/q)^α]"
    log_mean, relative_se = _log_mean_exp(log_w)
    with np.errstate(invalid="ignore", over="ignore"):
        weights = np.exp(_host(log_w) - _host(log_mean)[None])  # at most n: no overflow
    warn_if_unreliable(
        weights, finite(log_a) & finite(log_b), f"Rényi divergence (α = {alpha:g}) through {where}", ADVICE
    )
    value = log_mean / (alpha - 1.0)
    return Estimate(value, relative_se / abs(alpha - 1.0), n, f"MC Rényi divergence (α = {alpha:g}) {where}")


def square_root(value: Any, label: str) -> Any:
    """√x of an exact value or of an Estimate (clipped at 0; delta-method standard error)."""
    if not is_estimate(value):
        xp = namespace(value)
        return xp.sqrt(xp.clip(value, 0.0, None))
    from klkit.estimators import Estimate

    xp = namespace(value.value)
    root = xp.sqrt(xp.clip(value.value, 0.0, None))
    host_root, host_se = _host(root), _host(value.standard_error)
    with np.errstate(divide="ignore", invalid="ignore"):
        se = np.where(host_root > 0, host_se / (2.0 * host_root), np.sqrt(host_se))
    if type(root).__module__.startswith("torch"):
        import torch

        se = torch.as_tensor(se, dtype=root.dtype, device=root.device)
    else:
        se = np.asarray(se)[()]
    return Estimate(root, se, value.n_samples, label)


# ---------------------------------------------------------------------------------------------------
# terms and means
# ---------------------------------------------------------------------------------------------------
def _tv_terms(log_a: Any, log_b: Any) -> Any:
    """(1 − b/a)₊ at samples of a, in [0, 1]."""
    xp = namespace(log_a)
    with errstate(xp):
        return -xp.expm1(xp.clip(log_b - log_a, None, 0.0))


def _hellinger_terms(log_a: Any, log_b: Any) -> Any:
    """1 − √(b/a) at samples of a (mean: H²; variance ≤ 1)."""
    xp = namespace(log_a)
    with errstate(xp):
        return -xp.expm1(0.5 * (log_b - log_a))


def _symmetric_mc(p: Any, q: Any, n: int, seed: int | None, terms: Callable[[Any, Any], Any], label: str) -> Any:
    """½ mean over samples of p + ½ mean over samples of q of ``terms(log a, log b)``, with its standard error."""
    seed_p, seed_q = two_seeds(seed)
    lp, lq = log_densities_at(p, q, draw(p, n, seed_p))
    a = terms(lp, lq)
    lq2, lp2 = log_densities_at(q, p, draw(q, n, seed_q))
    b = terms(lq2, lp2)
    a, b = broadcast(a, b)
    half = mean_of_halves(a, b)
    return type(half)(half.value, half.standard_error, half.n_samples, label)


def _log_mean_exp(log_w: Any) -> tuple[Any, Any]:
    """(log mean exp(log w) over axis 0, the standard error of the mean relative to the mean), overflow-free."""
    n = log_w.shape[0]
    if type(log_w).__module__.startswith("torch"):
        import torch

        log_mean = torch.logsumexp(log_w, dim=0) - math.log(n)
        with torch.no_grad():
            w = torch.exp(log_w - log_mean)  # mean 1
            rel = w.std(0, correction=1) / math.sqrt(n)
        return log_mean, rel
    from scipy.special import logsumexp

    with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
        log_mean = logsumexp(log_w, axis=0) - math.log(n)
        w = np.exp(log_w - log_mean)
        rel = w.std(0, ddof=1) / math.sqrt(n)
    return np.asarray(log_mean)[()], np.asarray(rel)[()]
