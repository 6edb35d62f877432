"""From ``torch.distributions`` objects and frozen ``scipy.stats`` distributions to family records.

:func:`to_family` maps a distribution object to the :mod:`~klkit.distributions.families`
record the closed forms use, in the object's own backend (torch tensors, or
float64 numpy arrays for scipy). Objects klkit does not know are returned
unchanged, so formulas registered on user types receive the user's objects.

scipy parameterisations are mapped explicitly; a scipy object whose
``loc``/``scale`` takes it outside the family (e.g. a shifted ``expon``) is not
adapted, so it has no closed form and gets Monte Carlo.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

import numpy as np

from klkit._engine import is_torch_array
from klkit.distributions import _ops
from klkit.distributions import families as fam

__all__ = ["backend_of", "is_scipy", "is_torch_distribution", "to_family"]


def is_torch_distribution(x: Any) -> bool:
    """True for a ``torch.distributions.Distribution`` (without importing torch)."""
    td = sys.modules.get("torch.distributions")
    return td is not None and isinstance(x, td.Distribution)


def is_scipy(x: Any) -> bool:
    """True for a frozen ``scipy.stats`` distribution, univariate or multivariate."""
    if hasattr(x, "dist") and hasattr(x, "args") and hasattr(x, "rvs"):
        return True
    return type(x).__module__.startswith("scipy.stats") and hasattr(x, "rvs")


def backend_of(x: Any) -> str:
    """'torch', 'scipy' or 'other'."""
    if is_torch_distribution(x):
        return "torch"
    if is_scipy(x):
        return "scipy"
    if isinstance(x, fam.Family):
        return x.xp.name
    return "other"


def to_family(x: Any) -> Any:
    """The family record of ``x``, or ``x`` itself when klkit has no adapter for it."""
    if isinstance(x, fam.Family):
        return x
    if is_torch_distribution(x):
        return _from_torch(x)
    if is_scipy(x):
        return _from_scipy(x)
    return x


# ---------------------------------------------------------------------------------------------------
# torch
# ---------------------------------------------------------------------------------------------------
def _torch_table() -> dict[type, Callable[[Any, Any], Any]]:
    import torch.distributions as td

    def bern(cls: type) -> Callable[[Any, Any], Any]:
        return lambda d, xp: cls(xp, d.probs, d.logits)

    table: dict[type, Callable[[Any, Any], Any]] = {
        td.Normal: lambda d, xp: fam.Normal(xp, d.loc, d.scale),
        td.Laplace: lambda d, xp: fam.Laplace(xp, d.loc, d.scale),
        td.Cauchy: lambda d, xp: fam.Cauchy(xp, d.loc, d.scale),
        td.Gumbel: lambda d, xp: fam.Gumbel(xp, d.loc, d.scale),
        td.StudentT: lambda d, xp: fam.StudentT(xp, d.df, d.loc, d.scale),
        td.Exponential: lambda d, xp: fam.Exponential(xp, d.rate),
        td.Gamma: lambda d, xp: fam.Gamma(xp, d.concentration, d.rate),
        td.Chi2: lambda d, xp: fam.Chi2(xp, d.concentration, d.rate),
        td.HalfNormal: lambda d, xp: fam.HalfNormal(xp, d.scale),
        td.LogNormal: lambda d, xp: fam.LogNormal(xp, d.loc, d.scale),
        td.Weibull: lambda d, xp: fam.Weibull(xp, d.scale, d.concentration),
        td.Pareto: lambda d, xp: fam.Pareto(xp, d.scale, d.alpha),
        td.Uniform: lambda d, xp: fam.Uniform(xp, d.low, d.high),
        td.Beta: lambda d, xp: fam.Beta(xp, d.concentration1, d.concentration0),
        td.ContinuousBernoulli: bern(fam.ContinuousBernoulli),
        td.VonMises: lambda d, xp: fam.VonMises(xp, d.loc, d.concentration),
        td.Dirichlet: lambda d, xp: fam.Dirichlet(xp, d.concentration),
        td.MultivariateNormal: lambda d, xp: fam.MultivariateNormal(xp, d.loc, d.scale_tril),
        td.LowRankMultivariateNormal: lambda d, xp: fam.LowRankMultivariateNormal(xp, d.loc, d.cov_factor, d.cov_diag),
        td.Bernoulli: bern(fam.Bernoulli),
        td.Binomial: lambda d, xp: fam.Binomial(xp, d.total_count + 0.0 * d.probs, d.probs, d.logits),
        td.Geometric: bern(fam.Geometric),
        td.Poisson: lambda d, xp: fam.Poisson(xp, d.rate),
        td.Categorical: lambda d, xp: fam.Categorical(xp, _log_probs(d)),
        td.OneHotCategorical: lambda d, xp: fam.OneHotCategorical(xp, _log_probs(d._categorical)),
        td.Independent: lambda d, xp: fam.Independent(xp, to_family(d.base_dist), d.reinterpreted_batch_ndims),
    }
    if hasattr(td, "InverseGamma"):
        table[td.InverseGamma] = lambda d, xp: fam.InverseGamma(xp, d.concentration, d.rate)
    return table


def _log_probs(d: Any) -> Any:
    """Normalised log-probabilities; torch clamps log(0) to log(eps) when built from probs: make it -inf.

    Built from logits, torch's normalised logits are exact already (``-inf`` stays ``-inf``), so the
    softmax behind ``d.probs`` is not computed at all.
    """
    import torch

    logits = d.__dict__.get("logits")
    if logits is not None and d._param is logits:
        return logits
    return torch.where(d.probs > 0, d.logits, -torch.inf)


_TORCH_TABLE: list[dict[type, Callable[[Any, Any], Any]]] = []


def _from_torch(d: Any) -> Any:
    import torch.distributions as td

    if not _TORCH_TABLE:
        _TORCH_TABLE.append(_torch_table())
    table = _TORCH_TABLE[0]
    tensor, name = _a_tensor_of(d)
    xp = _ops.ops_for(tensor, names=name)
    for cls in type(d).__mro__:
        if cls in table:
            return table[cls](d, xp)
    if isinstance(d, td.TransformedDistribution):
        base = to_family(d.base_dist)
        if isinstance(base, fam.Family):
            return fam.Transformed(xp, base, d.transforms, len(d.event_shape))
    if isinstance(d, td.ExponentialFamily):
        return fam.TorchExponentialFamily(xp, d)
    return d


def _a_tensor_of(d: Any) -> tuple[Any, tuple[str]]:
    """A parameter tensor of the torch distribution ``d`` and its name (for :func:`_ops.ops_for`)."""
    for name, value in vars(d).items():
        if is_torch_array(value):
            return value, (name,)
    inner = vars(d).get("base_dist") or vars(d).get("_categorical")
    if inner is not None:
        return _a_tensor_of(inner)
    return d.mean, ("mean",)


# ---------------------------------------------------------------------------------------------------
# scipy
# ---------------------------------------------------------------------------------------------------
def _a(x: Any) -> np.ndarray:
    return np.asarray(x, dtype=np.float64)


def _np(cls: type, *params: Any, **extra: Any) -> Any:
    """``cls`` built from float64 numpy parameters (scipy's special functions: :func:`_ops.ops_for`)."""
    return cls(_ops.ops_for(*params, names=cls.params), *params, **extra)


def _probs_logits(p: Any) -> tuple[np.ndarray, np.ndarray]:
    p = _a(p)
    with np.errstate(divide="ignore"):
        return p, np.log(p) - np.log1p(-p)


def _standard(loc: Any, scale: Any) -> bool:
    return bool(np.all(_a(loc) == 0) and np.all(_a(scale) == 1))


# name -> (builder(shape params, loc, scale) -> Family | None)
_SCIPY_CONTINUOUS: dict[str, Callable[..., Any]] = {
    "norm": lambda loc, scale: _np(fam.Normal, _a(loc), _a(scale)),
    "laplace": lambda loc, scale: _np(fam.Laplace, _a(loc), _a(scale)),
    "cauchy": lambda loc, scale: _np(fam.Cauchy, _a(loc), _a(scale)),
    "gumbel_r": lambda loc, scale: _np(fam.Gumbel, _a(loc), _a(scale)),
    "t": lambda df, loc, scale: _np(fam.StudentT, _a(df), _a(loc), _a(scale)),
    "expon": lambda loc, scale: _np(fam.Exponential, 1.0 / _a(scale)) if np.all(_a(loc) == 0) else None,
    "gamma": lambda a, loc, scale: _np(fam.Gamma, _a(a), 1.0 / _a(scale)) if np.all(_a(loc) == 0) else None,
    "chi2": lambda df, loc, scale: _np(fam.Chi2, 0.5 * _a(df), 0.5 + 0.0 * _a(df)) if _standard(loc, scale) else None,
    "invgamma": lambda a, loc, scale: _np(fam.InverseGamma, _a(a), _a(scale)) if np.all(_a(loc) == 0) else None,
    "halfnorm": lambda loc, scale: _np(fam.HalfNormal, _a(scale)) if np.all(_a(loc) == 0) else None,
    "lognorm": lambda s, loc, scale: _np(fam.LogNormal, np.log(_a(scale)), _a(s)) if np.all(_a(loc) == 0) else None,
    "weibull_min": lambda c, loc, scale: _np(fam.Weibull, _a(scale), _a(c)) if np.all(_a(loc) == 0) else None,
    "pareto": lambda b, loc, scale: _np(fam.Pareto, _a(scale), _a(b)) if np.all(_a(loc) == 0) else None,
    "uniform": lambda loc, scale: _np(fam.Uniform, _a(loc), _a(loc) + _a(scale)),
    "beta": lambda a, b, loc, scale: _np(fam.Beta, _a(a), _a(b)) if _standard(loc, scale) else None,
    "vonmises": lambda kappa, loc, scale: _np(fam.VonMises, _a(loc), _a(kappa), scale=_a(scale)),
}
_SCIPY_DISCRETE: dict[str, Callable[..., Any]] = {
    "bernoulli": lambda p, loc: _np(fam.Bernoulli, *_probs_logits(p)),
    "binom": lambda n, p, loc: _np(fam.Binomial, _a(n), *_probs_logits(p)),
    "geom": lambda p, loc: _np(fam.Geometric, *_probs_logits(p), support_start=1.0 + float(loc)),  # trials: from 1
    "poisson": lambda mu, loc: _np(fam.Poisson, _a(mu)),
}


def _unshifted(name: str, loc: Any) -> bool:
    """loc = 0, or geom with loc = −1 (failures before the first success, torch's Geometric)."""
    loc = _a(loc)
    if name == "geom" and loc.ndim == 0 and float(loc) == -1.0:
        return True
    return bool(np.all(loc == 0))


def _from_scipy(d: Any) -> Any:
    if hasattr(d, "dist") and hasattr(d, "args"):
        name = getattr(d.dist, "name", "")
        shapes, loc, scale = d.dist._parse_args(*d.args, **d.kwds)
        if name in _SCIPY_CONTINUOUS:
            return _SCIPY_CONTINUOUS[name](*shapes, loc, scale) or d
        if name in _SCIPY_DISCRETE:
            if not _unshifted(name, loc):  # a shifted discrete law: the support moved, no closed form here
                return d
            return _SCIPY_DISCRETE[name](*shapes, loc)
        return d
    kind = type(d).__name__
    if kind == "multivariate_normal_frozen":
        cov = d.cov_object.covariance
        return _np(fam.MultivariateNormal, _a(d.mean), np.linalg.cholesky(_a(cov)))
    if kind == "dirichlet_frozen":
        return _np(fam.Dirichlet, _a(d.alpha))
    return d
