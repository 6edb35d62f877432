"""Sampling and log-densities of torch and scipy distribution objects, for the Monte Carlo paths.

Seeds are local: a torch seed runs inside ``torch.random.fork_rng`` on the
distribution's device (the global CPU and CUDA generators are left as they were),
a scipy seed makes a fresh ``numpy.random.Generator``. Same seed, same samples,
same answer. Only an unseeded draw (``seed=None``) uses the global generator.
"""

from __future__ import annotations

import contextlib
import math
import warnings
from typing import Any

import numpy as np

from klkit._engine import is_torch_array
from klkit.distributions.adapters import is_torch_distribution
from klkit.errors import MonteCarloWarning

__all__ = ["batch_shape", "draw", "log_density", "mc_mean", "mean_of_halves", "tail_index", "warn_if_unreliable"]


def batch_shape(d: Any) -> tuple[int, ...]:
    """The batch shape of a torch or scipy distribution object."""
    if is_torch_distribution(d):
        return tuple(d.batch_shape)
    if hasattr(d, "dist") and hasattr(d, "args"):
        shapes, loc, scale = d.dist._parse_args(*d.args, **d.kwds)
        return tuple(np.broadcast_shapes(*(np.shape(a) for a in (*shapes, loc, scale))))
    return ()


def _is_multivariate_scipy(d: Any) -> bool:
    return not (hasattr(d, "dist") and hasattr(d, "args"))


def _device_of(d: Any) -> Any:
    """The device of a torch distribution's parameters (the first tensor found; CPU if none)."""
    import torch

    seen: list[Any] = [d]
    while seen:
        obj = seen.pop()
        for value in vars(obj).values():
            if isinstance(value, torch.Tensor):
                return value.device
            if isinstance(value, torch.distributions.Distribution):
                seen.append(value)
            elif isinstance(value, list | tuple):
                seen.extend(v for v in value if isinstance(v, torch.distributions.Distribution))
    return torch.device("cpu")


@contextlib.contextmanager
def _torch_seed(seed: int | None, d: Any = None) -> Any:
    """Seed torch for the block on forked generators (CPU, and ``d``'s CUDA device), restored after."""
    import torch

    if seed is None:
        yield
        return
    device = torch.device("cpu") if d is None else _device_of(d)
    cuda = [device.index if device.index is not None else torch.cuda.current_device()] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=cuda):
        torch.random.default_generator.manual_seed(seed)
        for index in cuda:
            torch.cuda.default_generators[index].manual_seed(seed)
        yield


def draw(d: Any, n: int, seed: int | None) -> Any:
    """``n`` samples of ``d`` along a new leading axis (reparameterised for torch when possible)."""
    if is_torch_distribution(d):
        with _torch_seed(seed, d):
            return d.rsample((n,)) if d.has_rsample else d.sample((n,))
    rng = np.random.default_rng(seed)
    if _is_multivariate_scipy(d):
        x = np.asarray(d.rvs(size=n, random_state=rng), dtype=np.float64)
        return x.reshape(n, -1)
    return np.asarray(d.rvs(size=(n, *batch_shape(d)), random_state=rng))


def log_density(d: Any, x: Any) -> Any:
    """``log d(x)`` (density or mass); ``-inf`` outside the support, never an exception."""
    if is_torch_distribution(d):
        import torch

        if isinstance(d, (torch.distributions.Categorical, torch.distributions.OneHotCategorical)):
            return _categorical_log_prob(torch, d, x)
        try:
            inside = d.support.check(x)
        except (NotImplementedError, AttributeError):  # supports that cannot be checked
            return d.log_prob(x)
        if bool(inside.all()):
            return d.log_prob(x)
        event = len(d.event_shape)
        with _torch_seed(0, d):  # a value in the support, to evaluate where x is outside (caller's RNG untouched)
            point = d.sample()
        mask = inside.reshape(inside.shape + (1,) * (x.dim() - inside.dim())) if event else inside
        safe = torch.where(mask, x, point.expand_as(x))
        return torch.where(inside, d.log_prob(safe), -math.inf)
    with np.errstate(divide="ignore", invalid="ignore"):
        if type(d).__name__ == "dirichlet_frozen":
            return np.asarray(d.logpdf(x.T), dtype=np.float64)
        method = d.logpmf if hasattr(d, "logpmf") else d.logpdf
        return np.asarray(method(x), dtype=np.float64)


def _categorical_log_prob(torch: Any, d: Any, x: Any) -> Any:
    """torch clamps log 0 to log(eps) for categories of probability 0; klkit keeps -inf (KL = +inf)."""
    cat = d._categorical if isinstance(d, torch.distributions.OneHotCategorical) else d
    log_probs = torch.where(cat.probs > 0, cat.logits, -math.inf)
    if isinstance(d, torch.distributions.OneHotCategorical):
        return torch.where(x > 0, log_probs.expand_as(x), 0.0).sum(-1)
    k = log_probs.shape[-1]
    inside = (x >= 0) & (x < k) & (x == torch.floor(x))  # values of another law (e.g. Poisson) may fall outside
    index = torch.where(inside, x, 0).long().unsqueeze(-1)
    value = torch.gather(log_probs.expand(*x.shape, k), -1, index).squeeze(-1)
    return torch.where(inside, value, -math.inf)


def mc_mean(values: Any, label: str) -> Any:
    """Mean over axis 0 with its standard error, as an :class:`~klkit.estimators.Estimate`."""
    from klkit.estimators import Estimate

    n = int(values.shape[0])
    if is_torch_tensor(values):
        value = values.mean(0)
        se = values.detach().std(0, correction=1) / math.sqrt(n)
    else:
        value = values.mean(0)
        with np.errstate(invalid="ignore"):
            se = values.std(0, ddof=1) / math.sqrt(n)
        value, se = np.asarray(value)[()], np.asarray(se)[()]
    return Estimate(value, se, n, label)


def is_torch_tensor(x: Any) -> bool:
    return is_torch_array(x)


# ---------------------------------------------------------------------------------------------------
# diagnostics: is the standard error of a Monte Carlo mean to be trusted?
# ---------------------------------------------------------------------------------------------------
MIN_DIAGNOSED = 20_000  # below this, stretched-exponential tails (e.g. x² of an exponential x) can fit ξ > 0.7
# Warn below this tail index: k̂ = 1/α > 0.7 is where Pareto-smoothed importance sampling deems an
# importance-sampling mean unreliable (Vehtari et al., "Pareto smoothed importance sampling", JMLR 2024);
# α < 2 is an infinite variance in theory, but light tails read as α ≈ 2 from 10⁴ samples.
ALPHA_CUT = 1.0 / 0.7


def _host(x: Any) -> np.ndarray:
    """float64 numpy copy of samples (detached); shape (n, batch…)."""
    if is_torch_tensor(x):
        x = x.detach().cpu().double().numpy()
    return np.asarray(x, dtype=np.float64)


def tail_index(terms: Any) -> np.ndarray:
    r"""Tail index α of ``|terms − median|`` along axis 0, per batch element (``inf`` when degenerate).

    The :math:`M = \min(n/5, 3\sqrt n)` largest deviations, less the next one, are fitted
    with a generalised Pareto law by the method of Zhang & Stephens (2009), as Pareto-smoothed
    importance sampling does (Vehtari et al., 2024); α = 1/ξ for the fitted shape ξ. Unlike
    Hill's estimator this is location-invariant. A power-law tail :math:`P(Y > y) \sim y^{-α}`
    has a finite variance only for α > 2 and a finite mean only for α > 1.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> bool(1.3 < tail_index(rng.pareto(1.5, 100_000)) < 1.7)  # P(Y > y) ~ y^-1.5
    True
    >>> bool(tail_index(rng.normal(size=100_000)) > 4)
    True
    """
    t = _host(terms)
    n = t.shape[0]
    t = t.reshape(n, -1)
    m = int(min(0.2 * n, 3.0 * math.sqrt(n)))
    out = np.full(t.shape[1], np.inf)
    if m < 5:
        return out.reshape(np.shape(terms)[1:])
    y = np.abs(t - np.median(t, axis=0))
    top = np.sort(-np.partition(-y, m, axis=0)[: m + 1], axis=0)  # the m + 1 largest, ascending
    for j in range(t.shape[1]):
        excess = top[1:, j] - top[0, j]
        if excess[-1] > 0 and np.all(np.isfinite(excess)):
            xi = _gpd_shape(excess)
            out[j] = 1.0 / xi if xi > 0 else np.inf
    return out.reshape(np.shape(terms)[1:])


def _gpd_shape(x: np.ndarray) -> float:
    """Shape ξ of a generalised Pareto fit to sorted exceedances ``x`` (Zhang & Stephens 2009, weakly regularised)."""
    n = x.size
    m_est = 30 + int(math.sqrt(n))
    b = 1.0 - np.sqrt(m_est / (np.arange(1, m_est + 1) - 0.5))
    b = b / (3.0 * x[max(int(n / 4 + 0.5) - 1, 0)]) + 1.0 / x[-1]
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        k = np.mean(np.log1p(-b[:, None] * x), axis=1)
        log_lik = n * (np.log(-b / k) - k - 1.0)
        weights = 1.0 / np.sum(np.exp(log_lik[None, :] - log_lik[:, None]), axis=1)
    keep = np.isfinite(weights) & (weights >= 10 * np.finfo(float).eps)
    if not keep.any():
        return 0.0
    b_post = float(np.sum(b[keep] * weights[keep]) / np.sum(weights[keep]))
    xi = float(np.mean(np.log1p(-b_post * x)))
    return (n * xi + 10 * 0.5) / (n + 10)  # the prior of PSIS pulls ξ towards ½ by 10 pseudo-observations


def warn_if_unreliable(terms: Any, finite_inputs: Any, what: str, advice: str, stacklevel: int = 4) -> None:
    """Warn (:class:`~klkit.errors.MonteCarloWarning`) when a Monte Carlo mean of ``terms`` cannot be trusted.

    Two symptoms: terms that overflowed to ±inf although their inputs were finite (the
    estimate is inf or NaN for a finite quantity), and a heavy right tail (fitted tail index
    α̂ < 1.43: the variance is infinite, so the standard error understates the error; α̂ ≤ 1: the
    mean itself may be infinite). The cut is α̂ < 1/0.7 ≈ 1.43 (see :data:`ALPHA_CUT`), checked
    from :data:`MIN_DIAGNOSED` samples on; below that the index is too noisy to act on.
    """
    t = _host(terms)
    overflow = ~np.isfinite(t) & _host(finite_inputs).astype(bool)
    if overflow.any():
        warnings.warn(
            f"Monte Carlo {what}: {int(overflow.sum())} per-sample term(s) overflowed to inf from finite "
            f"log-densities, so the estimate is not finite although the quantity may be. {advice}",
            MonteCarloWarning,
            stacklevel=stacklevel,
        )
        return
    n = t.shape[0]
    if n < MIN_DIAGNOSED:
        return
    ok = np.all(np.isfinite(t), axis=0)  # +inf terms from log q = -inf are an exact answer (KL = +inf)
    alpha = np.where(ok, tail_index(np.where(np.isfinite(t), t, 0.0)), np.inf)
    worst = float(np.min(alpha)) if alpha.size else math.inf
    if worst >= ALPHA_CUT:
        return
    where = "" if alpha.ndim == 0 else f" in {int(np.sum(alpha < ALPHA_CUT))} of {alpha.size} batch element(s)"
    if worst <= 1.0:
        diagnosis = (
            "the mean itself may not exist: the quantity may be +inf (q's tails lighter than p's) "
            "and the estimate will keep growing with n_samples"
        )
    else:
        diagnosis = (
            "the variance is infinite (α < 2), so the estimate converges slowly and the standard error "
            "understates its error"
        )
    warnings.warn(
        f"Monte Carlo {what} is unreliable: the per-sample terms are heavy-tailed (tail index "
        f"α ≈ {worst:.2g} < {ALPHA_CUT:.3g}, a generalised Pareto fit to the largest of {n} terms{where}); "
        f"{diagnosis}. {advice}",
        MonteCarloWarning,
        stacklevel=stacklevel,
    )


def mean_of_halves(a: Any, b: Any) -> Any:
    """½ mean(a) + ½ mean(b) over axis 0, with the standard error of independent halves."""
    from klkit.estimators import Estimate

    n = int(a.shape[0])
    ea, eb = mc_mean(a, "a"), mc_mean(b, "b")
    value = 0.5 * (ea.value + eb.value)
    se = 0.5 * (ea.standard_error**2 + eb.standard_error**2) ** 0.5
    return Estimate(value, se, 2 * n, "MC Jensen–Shannon (mixture)")
