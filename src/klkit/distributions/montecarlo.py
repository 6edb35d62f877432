"""Sampling and log-densities of torch and scipy distribution objects, for the Monte Carlo paths.

Seeds are local: a torch seed runs inside ``torch.random.fork_rng`` (the
global generator is left as it was), a scipy seed makes a fresh
``numpy.random.Generator``. Same seed, same samples, same answer.
"""

from __future__ import annotations

import contextlib
import math
from typing import Any

import numpy as np

from klkit.distributions.adapters import is_torch_distribution

__all__ = ["batch_shape", "draw", "log_density", "mc_mean"]


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


@contextlib.contextmanager
def _torch_seed(seed: int | None) -> Any:
    import torch

    if seed is None:
        yield
        return
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield


def draw(d: Any, n: int, seed: int | None) -> Any:
    """``n`` samples of ``d`` along a new leading axis (reparameterised for torch when possible)."""
    if is_torch_distribution(d):
        with _torch_seed(seed):
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
        point = d.sample()  # a value in the support, to evaluate where x is outside
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
    index = x.long().unsqueeze(-1)
    return torch.gather(log_probs.expand(*x.shape, log_probs.shape[-1]), -1, index).squeeze(-1)


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
    from klkit._backend import is_torch

    return is_torch(x)
