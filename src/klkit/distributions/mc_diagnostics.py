r"""Is a Monte Carlo mean to be trusted? The Pareto-k̂ diagnostic on the right tail of its terms.

A mean of i.i.d. terms :math:`h(X_i)` converges at the rate its standard error promises only when
:math:`\operatorname{Var} h(X)` is finite. Following Vehtari et al. [1]_, the right tail of the terms
is fitted with a generalised Pareto law, :math:`P(h > y) \sim y^{-1/k}`: for :math:`k < ½` the
variance is finite; for :math:`½ \le k < 1` it is infinite but the mean exists and the error still
shrinks (as :math:`n^{-(1-k)}`); for :math:`k \ge 1` the mean itself may not exist. The published
rule deems the estimate unreliable when

.. math::

    \hat k > \min(1 - 1/\log_{10} S,\ 0.7)

for S samples (:func:`khat_threshold`). The fit uses the :math:`M = \min(S/5, 3\sqrt S)` largest
terms less the next one, by the method of Zhang & Stephens (2009) with the weak prior of PSIS
(10 pseudo-observations at k = ½).

Only the right tail is fitted: the terms klkit averages are bounded below or light on the left
(log-density ratios, k2 and k3 terms, importance weights, −log q), and an infinite quantity
(KL = +inf when q's tails are lighter than p's) shows as a heavy right tail. Fitting both tails
of ``|h − median|`` fired on finite, well-estimated KLs whose log-ratio is bounded above.

The top ``M + 1`` terms are kept while the terms stream past in batches (:class:`TailTracker`),
so the diagnostic needs no more memory than the batches.

References
----------
.. [1] A. Vehtari, D. Simpson, A. Gelman, Y. Yao and J. Gabry, "Pareto smoothed importance
   sampling", Journal of Machine Learning Research 25 (72), 2024.
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np

from klkit.errors import MonteCarloWarning

__all__ = ["MIN_DIAGNOSED", "TailTracker", "khat_threshold", "pareto_khat", "tail_size"]

# Below this many samples the diagnostic stays silent: k̂ of light tails is too noisy there
# (x²/2 for x ~ Student t(5), true k = 0.4, reads k̂ = 0.83 in 2 of 8 seeds at S = 2,000; at S = 10,000
# the largest of 8 was 0.67).
MIN_DIAGNOSED = 10_000


def khat_threshold(n_samples: int) -> float:
    """The published threshold :math:`\\min(1 - 1/\\log_{10} S, 0.7)` for ``S = n_samples``.

    Examples
    --------
    >>> khat_threshold(100_000), round(khat_threshold(1_000), 4)
    (0.7, 0.6667)
    """
    return min(1.0 - 1.0 / math.log10(n_samples), 0.7) if n_samples > 10 else -math.inf


def tail_size(n_samples: int) -> int:
    """M = min(S/5, 3√S): how many of the largest terms the fit uses."""
    return int(min(0.2 * n_samples, 3.0 * math.sqrt(n_samples)))


def pareto_khat(terms: Any) -> np.ndarray:
    r"""k̂ of the right tail of ``terms`` along axis 0, per batch element (−inf when the tail is flat).

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> bool(0.55 < pareto_khat(rng.pareto(1.5, 100_000)) < 0.8)  # P(Y > y) ~ y^-1.5: k = 2/3
    True
    >>> bool(pareto_khat(rng.normal(size=100_000)) < 0.2)  # light tail: k = 0
    True
    """
    t = np.asarray(terms, dtype=np.float64)
    tracker = TailTracker(t.shape[0], t.shape[1:])
    tracker.update(t)
    return tracker.khat()


class TailTracker:
    """The ``M + 1`` largest terms per batch element, overflow counts and finiteness, batch by batch."""

    def __init__(self, n_samples: int, shape: tuple[int, ...], *, exponentiate: bool = False) -> None:
        self.n = n_samples
        self.m = tail_size(n_samples)
        self.shape = tuple(shape)
        self.exponentiate = exponentiate  # terms are logs of the quantity averaged (Rényi weights)
        self.top = np.full((0, math.prod(self.shape)), -np.inf)
        self.overflow = 0
        self.all_finite = np.ones(math.prod(self.shape), dtype=bool)

    def update(self, terms: np.ndarray, finite_inputs: np.ndarray | None = None) -> None:
        """Add a batch of terms (float64, samples first); ``finite_inputs`` marks where the inputs were finite."""
        t = np.broadcast_to(terms, (terms.shape[0], *self.shape)).reshape(terms.shape[0], -1)
        finite = np.isfinite(t)
        if finite_inputs is not None:
            inputs = np.broadcast_to(finite_inputs, (terms.shape[0], *self.shape)).reshape(terms.shape[0], -1)
            self.overflow += int(np.sum(~finite & inputs))
        self.all_finite &= finite.all(axis=0)
        if self.m < 5:
            return
        pool = np.concatenate([self.top, np.where(finite, t, -np.inf)], axis=0)
        keep = min(self.m + 1, pool.shape[0])
        self.top = -np.partition(-pool, keep - 1, axis=0)[:keep]

    def khat(self) -> np.ndarray:
        """k̂ per batch element (−inf where the tail is flat, or not enough samples to fit)."""
        out = np.full(self.top.shape[1], -np.inf)
        if self.m < 5 or self.top.shape[0] < self.m + 1:
            return out.reshape(self.shape)[()]
        top = np.sort(self.top, axis=0)  # ascending: the threshold first
        with np.errstate(all="ignore"):
            if self.exponentiate:
                top = np.exp(top - top[-1:])
            for j in range(top.shape[1]):
                out[j] = _stable_shape(top[:, j])
        return out.reshape(self.shape)[()]

    def warn_if_unreliable(self, what: str, advice: str, stacklevel: int = 4) -> None:
        """Warn (:class:`~klkit.errors.MonteCarloWarning`) on overflowed terms or k̂ above :func:`khat_threshold`."""
        if self.overflow:
            warnings.warn(
                f"Monte Carlo {what}: {self.overflow} per-sample term(s) overflowed to inf from finite "
                f"log-densities, so the estimate is not finite although the quantity may be. {advice}",
                MonteCarloWarning,
                stacklevel=stacklevel,
            )
            return
        if self.n < MIN_DIAGNOSED:
            return
        k = np.where(self.all_finite.reshape(self.shape), self.khat(), -np.inf)  # +inf terms: an exact +inf
        threshold = khat_threshold(self.n)
        worst = float(np.max(k)) if np.size(k) else -math.inf
        if worst <= threshold:
            return
        where = "" if np.ndim(k) == 0 else f" in {int(np.sum(k > threshold))} of {np.size(k)} batch element(s)"
        if worst >= 1.0:
            diagnosis = (
                "the mean itself may not exist: the quantity may be +inf (q's tails lighter than p's) "
                "and the estimate will keep growing with n_samples"
            )
        else:
            diagnosis = (
                "the variance is infinite, so the estimate converges slowly (error ~ n^-(1-k)) and the "
                "standard error understates it"
            )
        warnings.warn(
            f"Monte Carlo {what} is unreliable: the per-sample terms have a heavy right tail (Pareto "
            f"k̂ ≈ {worst:.2f} > {threshold:.2f}, fitted to the largest {self.m} of {self.n} terms{where}); "
            f"{diagnosis}. {advice}",
            MonteCarloWarning,
            stacklevel=stacklevel,
        )


def _stable_shape(top: np.ndarray) -> float:
    """k̂ of the sorted largest terms ``top`` (threshold first), from the M exceedances and again from the largest
    quarter of them; the smaller of the two. A heavy tail reads heavy at both thresholds (the shape of a Pareto
    tail does not depend on where it is cut), while a pile-up of terms just above the threshold — a local maximum
    of the log-ratio, as where a one-mode fit meets a bimodal target — fools the fit at the lower cut only
    (k̂ ≈ 1.9 there, ≤ 0 above it: a light tail)."""
    shapes = []
    for start in (0, (3 * (top.size - 1)) // 4):
        excess = top[start + 1 :] - top[start]
        if excess.size < 50 and start > 0:
            continue
        if np.all(np.isfinite(excess)) and excess[-1] > 0:
            shapes.append(_gpd_shape(excess))
    return min(shapes) if shapes else -np.inf


def _gpd_shape(x: np.ndarray) -> float:
    """Shape k of a generalised Pareto fit to sorted exceedances ``x`` (Zhang & Stephens 2009, PSIS prior)."""
    n = x.size
    m_est = 30 + int(math.sqrt(n))
    b = 1.0 - np.sqrt(m_est / (np.arange(1, m_est + 1) - 0.5))
    b = b / (3.0 * x[max(int(n / 4 + 0.5) - 1, 0)]) + 1.0 / x[-1]
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        k = np.array([np.mean(np.log1p(-bj * x)) for bj in b])  # one candidate at a time: O(M) memory
        log_lik = n * (np.log(-b / k) - k - 1.0)
        weights = 1.0 / np.sum(np.exp(log_lik[None, :] - log_lik[:, None]), axis=1)
    keep = np.isfinite(weights) & (weights >= 10 * np.finfo(float).eps)
    if not keep.any():
        return 0.0
    b_post = float(np.sum(b[keep] * weights[keep]) / np.sum(weights[keep]))
    xi = float(np.mean(np.log1p(-b_post * x)))
    return (n * xi + 10 * 0.5) / (n + 10)  # the weak prior of PSIS: 10 pseudo-observations at k = ½
