r"""Monte Carlo means in bounded memory: terms arrive in batches, their mean and standard error are combined exactly.

Every Monte Carlo estimate of a distribution object (entropy, cross-entropy, KL, Jensen–Shannon,
total variation, Hellinger, Rényi, χ², f-divergences, Gaussian-mixture KL and entropy) draws its
``n_samples`` in batches of at most :data:`~klkit.distributions.montecarlo.BATCH_ELEMENTS` array
elements, so memory does not grow with ``n_samples`` (with torch autograd on, the graph that
gradients need still does). Per batch b of :math:`n_b` terms, the count, mean :math:`\bar x_b` and
sum of squared deviations :math:`M_{2,b}` are merged by Chan, Golub & LeVeque's pairwise rule

.. math::

    n = n_a + n_b,\quad \delta = \bar x_b - \bar x_a,\quad
    \bar x = \bar x_a + \delta\, n_b / n,\quad M_2 = M_{2,a} + M_{2,b} + \delta^2 n_a n_b / n,

which gives the mean and standard error :math:`\sqrt{M_2/(n-1)}/\sqrt n` of all the terms at once
(up to rounding). The value itself is the sum of the batch sums over n, in the terms' own array type
(torch keeps dtype, device and autograd); the statistics for the standard error are float64.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from klkit._engine import is_torch_array
from klkit.distributions.mc_diagnostics import TailTracker
from klkit.distributions.montecarlo import batches
from klkit.estimate import Estimate

__all__ = ["LogMeanExp", "Moments", "TermStream", "half_sum", "like", "mean_of", "to_host"]


def to_host(x: Any) -> np.ndarray:
    """float64 numpy copy of an array (detached for torch)."""
    if is_torch_array(x):
        x = x.detach().cpu().double().numpy()
    return np.asarray(x, dtype=np.float64)


class Moments:
    """Running (count, mean, M2) of batches of terms along axis 0 (Chan et al.'s pairwise update, float64)."""

    def __init__(self) -> None:
        self.count = 0
        self.mean: Any = 0.0
        self.m2: Any = 0.0

    def add(self, count: int, mean: Any, m2: Any) -> None:
        """Merge a batch summarised by its count, mean and sum of squared deviations."""
        if count == 0:
            return
        if self.count == 0:
            self.count, self.mean, self.m2 = count, np.asarray(mean, float), np.asarray(m2, float)
            return
        total = self.count + count
        with np.errstate(all="ignore"):
            delta = mean - self.mean
            self.mean = self.mean + delta * (count / total)
            self.m2 = self.m2 + m2 + delta * delta * (self.count * count / total)
        self.count = total

    def add_terms(self, terms: np.ndarray) -> None:
        """Merge a batch of float64 terms (samples along axis 0)."""
        with np.errstate(all="ignore"):
            mean = terms.mean(axis=0)
            m2 = np.sum((terms - mean) ** 2, axis=0)
        self.add(terms.shape[0], mean, m2)

    def standard_error(self) -> Any:
        """√(M2 / (n − 1)) / √n (NaN for fewer than 2 terms)."""
        if self.count < 2:
            return np.full(np.shape(self.mean), math.nan)[()]
        with np.errstate(all="ignore"):
            return np.sqrt(self.m2 / (self.count - 1) / self.count)


class TermStream:
    """Mean and standard error of terms that arrive in batches, with the tail diagnostic of their right tail."""

    def __init__(self, n_samples: int, *, exponentiate_tail: bool = False) -> None:
        self.n = n_samples
        self.moments = Moments()
        self.total: Any = None
        self.tail: TailTracker | None = None
        self.exponentiate_tail = exponentiate_tail

    def add(self, terms: Any, finite_inputs: Any = None) -> None:
        """A batch of terms (samples along axis 0); ``finite_inputs`` marks the terms whose inputs were finite."""
        host = to_host(terms)
        batch_sum = terms.sum(0)
        self.total = batch_sum if self.total is None else self.total + batch_sum
        self.moments.add_terms(host)
        self.track(host, finite_inputs)

    def add_summary(self, count: int, value: Any, standard_error: Any) -> None:
        """A batch summarised by its mean ``value`` (any array type) and standard error (the terms tracked apart)."""
        mean, se = to_host(value), to_host(standard_error)
        with np.errstate(all="ignore"):
            m2 = se * se * count * (count - 1)
        self.moments.add(count, mean, m2)
        self.total = value * count if self.total is None else self.total + value * count

    def track(self, host_terms: np.ndarray, finite_inputs: Any = None) -> None:
        if self.tail is None:
            self.tail = TailTracker(self.n, host_terms.shape[1:], exponentiate=self.exponentiate_tail)
        self.tail.update(host_terms, None if finite_inputs is None else to_host(finite_inputs).astype(bool))

    def warn_if_unreliable(self, what: str, advice: str, stacklevel: int = 5) -> None:
        if self.tail is not None:
            self.tail.warn_if_unreliable(what, advice, stacklevel=stacklevel)

    def value(self) -> Any:
        value = self.total / self.n
        return value if is_torch_array(value) else np.asarray(value, dtype=np.float64)[()]

    def estimate(self, label: str) -> Estimate:
        """The mean of all terms with its standard error (NaN where the mean is infinite)."""
        value = self.value()
        se = self.moments.standard_error()
        se = np.where(np.isfinite(to_host(value)), se, math.nan)
        return Estimate(value, like(se, value), self.n, label)


class LogMeanExp:
    r"""log mean exp(ℓ) of terms ℓ arriving in batches, with the standard error of the mean relative to the mean.

    A running shift c (the largest ℓ so far) keeps exp(ℓ − c) ≤ 1; when c grows, the running mean
    and M2 are rescaled by exp(c_old − c) and exp(2(c_old − c)) before the batch is merged.
    """

    def __init__(self, n_samples: int) -> None:
        self.n = n_samples
        self.shift: Any = None
        self.moments = Moments()
        self.log_sum: Any = None
        self.stream = TermStream(n_samples, exponentiate_tail=True)

    def add(self, log_w: Any, finite_inputs: Any = None) -> None:
        host = to_host(log_w)
        with np.errstate(all="ignore"):
            batch_max = np.max(np.where(np.isnan(host), -np.inf, host), axis=0)
        shift = batch_max if self.shift is None else np.maximum(self.shift, batch_max)
        shift = np.where(np.isfinite(shift), shift, 0.0)
        if self.shift is not None:
            with np.errstate(all="ignore"):
                factor = np.exp(self.shift - shift)
            self.moments.mean = self.moments.mean * factor
            self.moments.m2 = self.moments.m2 * factor * factor
        self.shift = shift
        with np.errstate(all="ignore"):
            self.moments.add_terms(np.exp(host - shift))
        log_sum = _logsumexp(log_w)
        self.log_sum = log_sum if self.log_sum is None else _logaddexp(self.log_sum, log_sum)
        self.stream.track(host, finite_inputs)

    def result(self) -> tuple[Any, Any]:
        """(log mean exp ℓ, relative standard error of mean exp ℓ)."""
        log_mean = self.log_sum - math.log(self.n)
        with np.errstate(all="ignore"):
            relative = self.moments.standard_error() / self.moments.mean
        log_mean = log_mean if is_torch_array(log_mean) else np.asarray(log_mean)[()]
        return log_mean, like(relative, log_mean)


def mean_of(d: Any, n: int, seed: int | None, terms: Callable[[Any], Any], label: str = "MC mean") -> Estimate:
    """The mean of ``terms(x)`` over ``n`` samples x of ``d`` drawn in batches, with its standard error."""
    stream = TermStream(n)
    for x in batches(d, n, seed):
        stream.add(terms(x))
    return stream.estimate(label)


def half_sum(a: Estimate, b: Estimate, label: str) -> Estimate:
    """½ a + ½ b of two independent estimates (standard error ½√(s_a² + s_b²)); reports both sample sizes."""
    value = 0.5 * (a.value + b.value)
    se = 0.5 * (a.standard_error**2 + b.standard_error**2) ** 0.5
    return Estimate(value, se, a.n_samples + b.n_samples, label)


def like(host: Any, value: Any) -> Any:
    """A float64 numpy result as the array type of ``value`` (torch: its dtype and device, detached)."""
    if is_torch_array(value):
        import torch

        return torch.as_tensor(np.asarray(host), dtype=value.dtype, device=value.device)
    return np.asarray(host, dtype=np.float64)[()]


def _logsumexp(x: Any) -> Any:
    if is_torch_array(x):
        import torch

        return torch.logsumexp(x, dim=0)
    from scipy.special import logsumexp

    with np.errstate(all="ignore"):
        return logsumexp(x, axis=0)


def _logaddexp(a: Any, b: Any) -> Any:
    if is_torch_array(a):
        import torch

        return torch.logaddexp(a, b)
    return np.logaddexp(a, b)
