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
from klkit.distributions._dispatch import finite, is_estimate, log_densities_at, two_seeds
from klkit.distributions.mc_stream import LogMeanExp, TermStream, half_sum, mean_of, to_host
from klkit.distributions.montecarlo import batches
from klkit.estimate import Estimate

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
    stream = TermStream(n)
    for x in batches(p, n, seed):
        log_p, log_q = log_densities_at(p, q, x)
        xp = namespace(log_p)
        with errstate(xp):
            stream.add(xp.expm1(log_p - log_q), finite(log_q))
    stream.warn_if_unreliable("χ²(p‖q) = E_p[p/q] − 1", ADVICE)
    return stream.estimate("MC χ² E_p[p/q] − 1")


def callable_f_mc(p: Any, q: Any, f: Callable[[Any], Any], n: int, seed: int | None) -> Any:
    """E_q[f(p/q)] for a user's generator, after the checks of the array path and a support check on samples of p."""
    seed_p, seed_q = two_seeds(seed)
    escapes, shape = 0, None
    for x in batches(p, n, seed_p):
        log_p, log_q = log_densities_at(p, q, x)
        xp = namespace(log_q)
        if shape is None:
            check_f_at_one(f, xp, log_q)
        shape = tuple(log_q.shape[1:])
        escape = (log_q == -math.inf) & (log_p > -math.inf)
        escapes += int(to_numpy(xp.sum(xp.astype(escape, xp.int64))))
    if escapes:
        raise unknown_slope(
            f"q(x) = 0 < p(x) at {escapes} of {n * math.prod(shape or ())} points x sampled from p "
            "(so p has mass outside q's support)"
        )
    stream = TermStream(n)
    for y in batches(q, n, seed_q):
        log_q, log_p = log_densities_at(q, p, y)
        xp = namespace(log_q)
        with errstate(xp):
            stream.add(f_values(f, xp.exp(log_p - log_q), xp), finite(log_p))
    stream.warn_if_unreliable("f-divergence E_q[f(p/q)]", ADVICE)
    return stream.estimate("MC f-divergence E_q[f(p/q)]")


def renyi_mc(p: Any, q: Any, alpha: float, n: int, seed: int | None) -> Any:
    """log(mean of w) / (α − 1), w = (q/p)^(1−α) at samples of p (α ≥ ½) or (p/q)^α at samples of q (α < ½)."""
    mean = LogMeanExp(n)
    if alpha >= 0.5:
        where = "E_p[(q/p)^(1−α)]"
        for x in batches(p, n, seed):
            log_a, log_b = log_densities_at(p, q, x)
            mean.add((1.0 - alpha) * (log_b - log_a), finite(log_a) & finite(log_b))
    else:
        where = "E_q[(p/q)^α]"
        for y in batches(q, n, seed):
            log_b, log_a = log_densities_at(q, p, y)
            xp = namespace(log_a)
            with errstate(xp):  # outside p's support: weight 0, also at α = 0
                log_w = xp.where(log_a == -math.inf, log_a, alpha * (log_a - log_b))
            mean.add(log_w, finite(log_a) & finite(log_b))
    mean.stream.warn_if_unreliable(f"Rényi divergence (α = {alpha:g}) through {where}", ADVICE)
    log_mean, relative_se = mean.result()
    value = log_mean / (alpha - 1.0)
    return Estimate(value, relative_se / abs(alpha - 1.0), n, f"MC Rényi divergence (α = {alpha:g}) {where}")


def square_root(value: Any, label: str) -> Any:
    """√x of an exact value or of an Estimate (clipped at 0; delta-method standard error)."""
    if not is_estimate(value):
        xp = namespace(value)
        return xp.sqrt(xp.clip(value, 0.0, None))
    xp = namespace(value.value)
    root = xp.sqrt(xp.clip(value.value, 0.0, None))
    host_root, host_se = to_host(root), to_host(value.standard_error)
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
    a = mean_of(p, n, seed_p, lambda x: terms(*log_densities_at(p, q, x)))
    b = mean_of(q, n, seed_q, lambda y: terms(*log_densities_at(q, p, y)))
    return half_sum(a, b, label)
