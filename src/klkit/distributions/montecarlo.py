"""Sampling and log-densities of torch and scipy distribution objects, for the Monte Carlo paths.

Monte Carlo draws ``n`` samples as :func:`batches` of at most :data:`BATCH_ELEMENTS` elements
(:mod:`klkit.distributions.mc_stream` combines their means), from one generator seeded once, so the
answer depends on ``n`` and ``seed`` only. Seeds are local: a torch seed runs inside ``torch.random.fork_rng`` on the
distribution's device (the global CPU and CUDA generators are left as they were),
a scipy seed makes a fresh ``numpy.random.Generator``. Same seed, same samples,
same answer. Only an unseeded draw (``seed=None``) uses the global generator.
"""

from __future__ import annotations

import contextlib
import math
from typing import Any

import numpy as np

from klkit.distributions.adapters import is_torch_distribution
from klkit.errors import NotRegisteredError

__all__ = ["BATCH_ELEMENTS", "batch_shape", "batch_sizes", "batches", "check_sampler", "log_density"]

# At most this many array elements (samples × batch × event) per drawn batch: 2 MB of float64.
BATCH_ELEMENTS = 1 << 18


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


def _elements_per_sample(d: Any) -> int | None:
    """Array elements of one sample (batch × event), when known without drawing."""
    if is_torch_distribution(d):
        return max(1, math.prod(d.batch_shape) * math.prod(d.event_shape))
    if _is_multivariate_scipy(d):
        return None
    return max(1, math.prod(batch_shape(d)))


def batch_sizes(n: int, per_sample: int) -> list[int]:
    """``n`` split into batches of at most ``BATCH_ELEMENTS // per_sample`` samples, each of at least 2."""
    size = max(2, BATCH_ELEMENTS // max(per_sample, 1))
    if n <= size:
        return [n]
    sizes = [size] * (n // size)
    rest = n - size * len(sizes)
    if rest == 1:  # a batch of one has no standard error: take one from the batch before
        sizes[-1] -= 1
        rest = 2
    return sizes + ([rest] if rest else [])


def batches(d: Any, n: int, seed: int | None) -> Any:
    """Yield ``n`` samples of ``d`` in batches (sample axis first) from one generator seeded once with ``seed``.

    A torch seed holds a forked generator for the whole loop, so the batches are one stream;
    consume them before drawing from another distribution.
    """
    per_sample = _elements_per_sample(d)
    if is_torch_distribution(d):
        with _torch_seed(seed, d):
            for size in batch_sizes(n, per_sample or 1):
                yield d.rsample((size,)) if d.has_rsample else d.sample((size,))
        return
    rng = np.random.default_rng(seed)
    done = 0
    sizes = batch_sizes(n, per_sample) if per_sample is not None else None
    while done < n:
        if sizes is None:  # a multivariate scipy law: learn the sample size from a first small batch
            first = min(n, 64) if n - min(n, 64) != 1 else n
            x = _draw_scipy(d, first, rng)
            sizes = batch_sizes(n - first, max(1, x[0].size)) if n > first else []
            done += first
            yield x
            continue
        for size in sizes:
            done += size
            yield _draw_scipy(d, size, rng)


# scipy's circular laws draw their samples in one fixed period ([−π, π] for vonmises and vonmises_line,
# [0, 2π] for wrapcauchy) whatever loc and scale, while their densities move and stretch with them.
_CIRCULAR = {"vonmises": "[−π, π]", "vonmises_line": "[−π, π]", "wrapcauchy": "[0, 2π]"}


def check_sampler(d: Any) -> None:
    """Refuse to sample a scipy law whose samples do not follow its density (scipy's circular laws with loc/scale).

    Raises
    ------
    NotRegisteredError
        For ``vonmises`` with ``scale ≠ 1``, and ``vonmises_line`` or ``wrapcauchy`` with ``loc ≠ 0``
        or ``scale ≠ 1``: a Monte Carlo estimate from their samples would be confidently wrong.
    """
    name = getattr(getattr(d, "dist", None), "name", None)
    if name not in _CIRCULAR or not hasattr(d, "args"):
        return
    _, loc, scale = d.dist._parse_args(*d.args, **d.kwds)
    periodic = name == "vonmises"  # its density has period 2π·scale: any loc is one period away
    if np.all(np.asarray(scale) == 1) and (periodic or np.all(np.asarray(loc) == 0)):
        return
    raise NotRegisteredError(
        f"scipy.stats.{name} with loc={np.asarray(loc).tolist()}, scale={np.asarray(scale).tolist()} draws "
        f"its samples in {_CIRCULAR[name]} while its density is moved and stretched by loc and scale, so a "
        "Monte Carlo estimate from them would be wrong; klkit refuses to sample it. Closed forms: the entropy "
        "and the KL (same scale) of vonmises for any loc and scale. Otherwise express the angle in the "
        f"standard parameterisation ({name}(…, loc=0, scale=1)) and transform the result (entropy: + log scale)."
    )


def _draw_scipy(d: Any, n: int, rng: np.random.Generator) -> Any:
    check_sampler(d)
    if _is_multivariate_scipy(d):
        return np.asarray(d.rvs(size=n, random_state=rng), dtype=np.float64).reshape(n, -1)
    return np.asarray(d.rvs(size=(n, *batch_shape(d)), random_state=rng))
