"""Distributions: closed forms for entropy and KL, adapters for torch and scipy, Monte Carlo otherwise.

``klkit.entropy``, ``klkit.cross_entropy`` and ``klkit.kl_divergence`` accept
``torch.distributions`` objects and frozen ``scipy.stats`` distributions and land
here (:mod:`klkit.distributions.api`). Closed forms live in a registry keyed by
the family records of :mod:`klkit.distributions.families`; add your own with
:func:`register_kl` and :func:`register_entropy`.
"""

from klkit.distributions import entropy_forms as _entropy_forms  # noqa: F401  (registers the entropies)
from klkit.distributions import kl_forms as _kl_forms  # noqa: F401  (registers the KL pairs)
from klkit.distributions.api import cross_entropy, entropy, kl_divergence
from klkit.distributions.families import (
    Bernoulli,
    Beta,
    Binomial,
    Categorical,
    Cauchy,
    Chi2,
    ContinuousBernoulli,
    Dirichlet,
    Exponential,
    Family,
    Gamma,
    Geometric,
    Gumbel,
    HalfNormal,
    Independent,
    InverseGamma,
    Laplace,
    LogNormal,
    LowRankMultivariateNormal,
    MultivariateNormal,
    Normal,
    OneHotCategorical,
    Pareto,
    Poisson,
    StudentT,
    TorchExponentialFamily,
    Transformed,
    Uniform,
    VonMises,
    Weibull,
)
from klkit.distributions.gaussian import gaussian_kl_standard_normal
from klkit.distributions.mixtures import Approximation, GaussianMixtureParams, mixture_entropy, mixture_kl
from klkit.distributions.registry import (
    PairInfo,
    lookup_entropy,
    lookup_kl,
    pair_table,
    register_entropy,
    register_kl,
    registered_entropies,
    registered_pairs,
)

__all__ = [
    "Approximation",
    "Bernoulli",
    "Beta",
    "Binomial",
    "Categorical",
    "Cauchy",
    "Chi2",
    "ContinuousBernoulli",
    "Dirichlet",
    "Exponential",
    "Family",
    "Gamma",
    "GaussianMixtureParams",
    "Geometric",
    "Gumbel",
    "HalfNormal",
    "Independent",
    "InverseGamma",
    "Laplace",
    "LogNormal",
    "LowRankMultivariateNormal",
    "MultivariateNormal",
    "Normal",
    "OneHotCategorical",
    "PairInfo",
    "Pareto",
    "Poisson",
    "StudentT",
    "TorchExponentialFamily",
    "Transformed",
    "Uniform",
    "VonMises",
    "Weibull",
    "cross_entropy",
    "entropy",
    "gaussian_kl_standard_normal",
    "kl_divergence",
    "lookup_entropy",
    "lookup_kl",
    "mixture_entropy",
    "mixture_kl",
    "pair_table",
    "register_entropy",
    "register_kl",
    "registered_entropies",
    "registered_pairs",
]
