"""Estimates from samples: Monte Carlo KL (k1/k2/k3), plug-in with bias corrections, k-nearest neighbours, MI.

Every estimator returns an :class:`Estimate` (value, standard error, sample size,
method) that computes like its value.
"""

from klkit.estimate import Estimate
from klkit.estimators.discrete import discrete_cross_entropy, discrete_entropy, discrete_kl_divergence
from klkit.estimators.knn import knn_entropy, knn_kl_divergence
from klkit.estimators.monte_carlo import mc_kl
from klkit.estimators.mutual_information import mutual_information

__all__ = [
    "Estimate",
    "discrete_cross_entropy",
    "discrete_entropy",
    "discrete_kl_divergence",
    "knn_entropy",
    "knn_kl_divergence",
    "mc_kl",
    "mutual_information",
]
