"""Estimates from samples: Monte Carlo KL (k1/k2/k3), plug-in with bias corrections, k-nearest neighbours.

Every estimator returns an :class:`Estimate` (value, standard error, sample size,
method) that computes like its value.
"""

from klkit.estimators._estimate import Estimate
from klkit.estimators.monte_carlo import mc_kl

__all__ = [
    "Estimate",
    "mc_kl",
]
