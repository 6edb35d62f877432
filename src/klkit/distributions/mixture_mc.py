"""Monte Carlo KL and entropy of Gaussian mixtures (torch ``MixtureSameFamily`` or scikit-learn ``GaussianMixture``).

The ``method="mc"`` of :func:`~klkit.distributions.mixture_kl` and
:func:`~klkit.distributions.mixture_entropy`: samples drawn in batches, means merged exactly
(:mod:`klkit.distributions.mc_stream`).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from klkit.distributions.adapters import is_torch_distribution
from klkit.distributions.information_api import entropy, kl_divergence
from klkit.distributions.mc_stream import TermStream
from klkit.distributions.montecarlo import batch_sizes
from klkit.estimators import mc_kl

__all__ = ["mixture_mc_entropy", "mixture_mc_kl"]

_HALF_LOG_2PI = 0.5 * math.log(2 * math.pi)


def mixture_mc_kl(p: Any, q: Any, P: Any, Q: Any, n: int, seed: int | None) -> Any:
    """Monte Carlo KL(p‖q) (k1) of two mixtures.

    ``P`` and ``Q`` are their parameters (:class:`~klkit.distributions.mixtures.GaussianMixtureParams`;
    None for torch mixtures, which torch samples).
    """
    if is_torch_distribution(p):
        return kl_divergence(p, q, method="mc", n_samples=n, seed=seed, estimator="k1")
    stream = TermStream(n)
    for x in _sample_numpy(P, n, seed):
        batch = mc_kl(_log_density_numpy(P, x), _log_density_numpy(Q, x), estimator="k1")
        stream.add_summary(x.shape[0], batch.value, batch.standard_error)
    return stream.estimate("MC k1")


def mixture_mc_entropy(p: Any, P: Any, n: int, seed: int | None) -> Any:
    """Monte Carlo entropy of a mixture.

    ``P`` are its parameters (:class:`~klkit.distributions.mixtures.GaussianMixtureParams`; None for torch).
    """
    if is_torch_distribution(p):
        return entropy(p, method="mc", n_samples=n, seed=seed)
    stream = TermStream(n)
    for x in _sample_numpy(P, n, seed):
        stream.add(-_log_density_numpy(P, x))
    return stream.estimate("MC −log p")


def _sample_numpy(P: Any, n: int, seed: int | None) -> Any:
    """``n`` samples of the mixture in batches from one generator (as ``montecarlo.batches``)."""
    rng = np.random.default_rng(seed)
    for size in batch_sizes(n, P.loc.shape[-1] * max(1, P.loc.shape[0])):
        k = rng.choice(P.log_weights.shape[-1], size=size, p=np.exp(P.log_weights))
        z = rng.standard_normal((size, P.loc.shape[-1]))
        yield P.loc[k] + np.einsum("nij,nj->ni", P.scale_tril[k], z)


def _log_density_numpy(P: Any, x: np.ndarray) -> np.ndarray:
    from scipy import linalg, special

    d = x.shape[-1]
    parts = []
    for k in range(P.loc.shape[0]):
        z = linalg.solve_triangular(P.scale_tril[k], (x - P.loc[k]).T, lower=True)
        parts.append(
            P.log_weights[k]
            - d * _HALF_LOG_2PI
            - np.sum(np.log(np.diag(P.scale_tril[k])))
            - 0.5 * np.sum(z * z, axis=0)
        )
    return special.logsumexp(np.stack(parts, axis=-1), axis=-1)
