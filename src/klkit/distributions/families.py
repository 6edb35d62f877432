"""Parameter records of the distribution families the closed forms know.

A family object holds the parameter arrays of one backend (``xp``) in one
canonical parameterisation; adapters (:mod:`klkit.distributions.adapters`) build
them from ``torch.distributions`` and frozen ``scipy.stats`` objects. The
closed forms are registered on these classes, so one formula serves both
libraries. Subclassing means "is a special case of": :class:`Chi2` is a
:class:`Gamma` and takes every Gamma formula.
"""

from __future__ import annotations

from typing import Any, ClassVar

__all__ = [
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
    "Pareto",
    "Poisson",
    "StudentT",
    "TorchExponentialFamily",
    "Transformed",
    "Uniform",
    "VonMises",
    "Weibull",
]


class Family:
    """Parameters of one family as arrays of one backend.

    Parameters
    ----------
    xp : object
        The parameters' special-function object, :func:`klkit.distributions._ops.ops_for` of them.
    *values : array_like or torch.Tensor
        The parameters, in the order of ``params``.
    """

    params: ClassVar[tuple[str, ...]] = ()
    event_ndims: ClassVar[int] = 0

    def __init__(self, xp: Any, *values: Any, **extra: Any) -> None:
        if len(values) != len(self.params):
            raise TypeError(
                f"{type(self).__name__} takes {len(self.params)} parameters {self.params}; found {len(values)}."
            )
        self.xp = xp
        for name, value in zip(self.params, values, strict=True):
            setattr(self, name, value)
        for name, value in extra.items():
            setattr(self, name, value)

    def zero(self) -> Any:
        """Zeros of the batch shape (for answers that do not depend on the parameters)."""
        return sum(0.0 * getattr(self, name) for name in self.params)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({', '.join(self.params)}; {self.xp.name})"


# --- continuous, real line --------------------------------------------------------------------------
class Normal(Family):
    """``N(loc, scale²)``."""

    params = ("loc", "scale")


class Laplace(Family):
    """Laplace: density ``exp(-|x - loc| / scale) / (2 scale)``."""

    params = ("loc", "scale")


class Cauchy(Family):
    """Cauchy with location ``loc`` and half-width ``scale``."""

    params = ("loc", "scale")


class Gumbel(Family):
    """Gumbel (maximum): density ``exp(-(z + e^{-z})) / scale``, ``z = (x - loc) / scale``."""

    params = ("loc", "scale")


class StudentT(Family):
    """Student's t with ``df`` degrees of freedom, location ``loc`` and scale ``scale``."""

    params = ("df", "loc", "scale")


# --- continuous, half line ---------------------------------------------------------------------------
class Exponential(Family):
    """Exponential with ``rate`` (mean ``1 / rate``)."""

    params = ("rate",)


class Gamma(Family):
    """Gamma with shape ``concentration`` and ``rate`` (mean ``concentration / rate``)."""

    params = ("concentration", "rate")


class Chi2(Gamma):
    """Chi-squared with ``df``: a Gamma with ``concentration = df / 2``, ``rate = 1 / 2``."""


class InverseGamma(Family):
    """Inverse gamma: ``1 / X`` for ``X ~ Gamma(concentration, rate)``."""

    params = ("concentration", "rate")


class HalfNormal(Family):
    """``|X|`` for ``X ~ N(0, scale²)``."""

    params = ("scale",)


class LogNormal(Family):
    """``exp(X)`` for ``X ~ N(loc, scale²)``."""

    params = ("loc", "scale")


class Weibull(Family):
    """Weibull: ``P(X > x) = exp(-(x / scale)^concentration)``."""

    params = ("scale", "concentration")


class Pareto(Family):
    """Pareto (type I): density ``alpha scale^alpha / x^(alpha + 1)`` on ``x >= scale``."""

    params = ("scale", "alpha")


# --- continuous, bounded -----------------------------------------------------------------------------
class Uniform(Family):
    """Uniform on ``[low, high)``."""

    params = ("low", "high")


class Beta(Family):
    """Beta on [0, 1]: density ``x^(c1 - 1) (1 - x)^(c0 - 1) / B(c1, c0)``."""

    params = ("concentration1", "concentration0")


class ContinuousBernoulli(Family):
    """Continuous Bernoulli on [0, 1] (Loaiza-Ganem & Cunningham 2019): density ``C(λ) λ^x (1 - λ)^(1 - x)``."""

    params = ("probs", "logits")


class VonMises(Family):
    """von Mises on a circle of circumference 2π·``scale``: density ``exp(κ cos((x − loc)/s)) / (2π s I0(κ))``.

    ``scale`` (an extra attribute, 1 unless given; torch's VonMises has none) is scipy's ``scale``.
    """

    params = ("loc", "concentration")
    scale: Any = 1.0


# --- multivariate ------------------------------------------------------------------------------------
class MultivariateNormal(Family):
    """``N(loc, L Lᵀ)`` with lower-triangular ``scale_tril = L``."""

    params = ("loc", "scale_tril")
    event_ndims = 1

    def zero(self) -> Any:
        return 0.0 * self.loc[..., 0]


class LowRankMultivariateNormal(Family):
    """``N(loc, W Wᵀ + diag(D))`` with ``cov_factor = W`` (d × r) and ``cov_diag = D``."""

    params = ("loc", "cov_factor", "cov_diag")
    event_ndims = 1

    def zero(self) -> Any:
        return 0.0 * self.loc[..., 0]


class Dirichlet(Family):
    """Dirichlet with ``concentration`` (last axis = categories)."""

    params = ("concentration",)
    event_ndims = 1

    def zero(self) -> Any:
        return 0.0 * self.concentration[..., 0]


# --- discrete ----------------------------------------------------------------------------------------
class Bernoulli(Family):
    """Bernoulli with success probability ``probs`` (``logits = log(probs / (1 - probs))``)."""

    params = ("probs", "logits")


class Binomial(Family):
    """Binomial with ``total_count`` trials of success probability ``probs``."""

    params = ("total_count", "probs", "logits")


class Geometric(Family):
    """Failures before the first success (support from ``support_start = 0``), success probability ``probs``.

    scipy's ``geom`` counts trials (support from 1: ``support_start = 1``). KL and entropy between two
    Geometrics are shift-invariant, so the same formulas serve both; against a law with mass at 0
    (Bernoulli, Poisson) scipy's ``geom`` gives KL = +inf.
    """

    params = ("probs", "logits")
    support_start: float = 0.0


class Poisson(Family):
    """Poisson with mean ``rate``."""

    params = ("rate",)


class Categorical(Family):
    """Categorical with normalised ``log_probs`` (last axis = categories; ``-inf`` for impossible ones)."""

    params = ("log_probs",)

    def zero(self) -> Any:
        return 0.0 * self.log_probs[..., 0]


class OneHotCategorical(Categorical):
    """One-hot encoded categorical; the KL and entropy are the categorical ones."""

    event_ndims = 1


# --- composites (torch) ------------------------------------------------------------------------------
class Independent(Family):
    """``base`` with its ``ndims`` rightmost batch axes reinterpreted as event axes."""

    params = ("base", "ndims")

    @property
    def event_ndims(self) -> int:  # type: ignore[override]
        return self.ndims + self.base.event_ndims

    def zero(self) -> Any:
        z = self.base.zero()
        return z.sum(tuple(range(-self.ndims, 0))) if self.ndims else z


class Transformed(Family):
    """A torch ``TransformedDistribution`` of a known ``base`` family through ``transforms``."""

    params = ("base", "transforms", "event_ndims_")

    @property
    def event_ndims(self) -> int:  # type: ignore[override]
        return self.event_ndims_

    def zero(self) -> Any:
        return self.base.zero()


class TorchExponentialFamily(Family):
    """A torch ``ExponentialFamily`` of no closed-form family here; KL as a Bregman divergence (autograd)."""

    params = ("dist",)
