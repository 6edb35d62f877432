"""Distributions: closed forms for entropy, KL and the other divergences; torch and scipy adapters; Monte Carlo.

``klkit.entropy``, ``klkit.cross_entropy``, ``klkit.kl_divergence`` and the rest of the
family (total variation, Hellinger, Rényi, f-divergences, JS distance) accept
``torch.distributions`` objects and frozen ``scipy.stats`` distributions and land
here (:mod:`klkit.distributions.api`). Closed forms live in registries keyed by
the family records of :mod:`klkit.distributions.families`; add your own with
:func:`register_kl`, :func:`register_entropy` and :func:`register_divergence`.
"""

from klkit.distributions import divergence_forms as _divergence_forms  # noqa: F401  (registers the divergences)
from klkit.distributions import entropy_forms as _entropy_forms  # noqa: F401  (registers the entropies)
from klkit.distributions import hook as _hook  # noqa: F401  (registers distribution objects with klkit's measures)
from klkit.distributions import kl_forms as _kl_forms  # noqa: F401  (registers the KL pairs)
from klkit.distributions.api import (
    cross_entropy,
    entropy,
    f_divergence,
    hellinger_distance,
    js_distance,
    kl_divergence,
    renyi_divergence,
    total_variation,
)
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
    lookup_divergence,
    lookup_entropy,
    lookup_kl,
    pair_table,
    register_divergence,
    register_entropy,
    register_kl,
    registered_divergences,
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
    "f_divergence",
    "gaussian_kl_standard_normal",
    "hellinger_distance",
    "js_distance",
    "kl_divergence",
    "lookup_divergence",
    "lookup_entropy",
    "lookup_kl",
    "mixture_entropy",
    "mixture_kl",
    "pair_table",
    "register_divergence",
    "register_entropy",
    "register_kl",
    "registered_divergences",
    "registered_entropies",
    "registered_pairs",
    "renyi_divergence",
    "total_variation",
]
