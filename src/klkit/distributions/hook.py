"""The public measures' hook for distribution objects: ``klkit.kl_divergence(Normal(...), Normal(...))``.

Importing :mod:`klkit.distributions` registers :func:`is_distribution` and :func:`measure_distributions`
with the array measures (:func:`klkit._engine.register_object_measures`), so that the array layer
never imports this package.
"""

from __future__ import annotations

import sys
from typing import Any

from klkit._engine import register_object_measures
from klkit.distributions import api

__all__ = ["DISTRIBUTION_OPTIONS", "is_distribution", "measure_distributions"]

DISTRIBUTION_OPTIONS = ("method", "n_samples", "seed", "estimator")


def is_distribution(x: Any) -> bool:
    """A ``torch.distributions.Distribution`` or a frozen ``scipy.stats`` distribution.

    Examples
    --------
    >>> from scipy import stats
    >>> is_distribution(stats.norm(0, 1)), is_distribution([0.5, 0.5])
    (True, False)
    """
    td = sys.modules.get("torch.distributions")
    if td is not None and isinstance(x, td.Distribution):
        return True
    if hasattr(x, "dist") and hasattr(x, "args") and hasattr(x, "rvs"):
        return True
    return type(x).__module__.startswith("scipy.stats") and hasattr(x, "rvs")  # multivariate or unfrozen


def measure_distributions(
    measure: str, dists: tuple[Any, ...], args: tuple[Any, ...], base: float | None, options: dict[str, Any]
) -> Any:
    """The function named ``measure`` of :mod:`klkit.distributions.api` on ``dists`` (then ``args``)."""
    return getattr(api, measure)(*dists, *args, base=base, **options)


register_object_measures(is_distribution, measure_distributions, options=DISTRIBUTION_OPTIONS)
