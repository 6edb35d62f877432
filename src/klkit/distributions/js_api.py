"""Jensen–Shannon divergence of distribution objects: exact where known, else Monte Carlo over both laws."""

from __future__ import annotations

from typing import Any

from klkit._engine import check_base
from klkit.distributions._dispatch import (
    find_divergence,
    find_kl,
    finish,
    log_densities_at,
    parse_options,
    quiet,
    same_library,
    scale,
    two_seeds,
    zeros_of_batch,
)
from klkit.distributions.checks import check_pair
from klkit.distributions.mc_stream import half_sum, mean_of
from klkit.errors import NotRegisteredError

__all__ = ["js_divergence"]


def js_divergence(p: Any, q: Any, /, *, base: float | None = None, **options: Any) -> Any:
    r"""Jensen–Shannon divergence ½ KL(P‖M) + ½ KL(Q‖M), M = ½(P + Q), of two distribution objects.

    There is no closed form for a mixture's log-density, so the value is a Monte Carlo
    estimate unless it is known exactly: a registered closed form (Bernoulli and Categorical,
    through :func:`klkit.js_divergence` on their log-probabilities), or 0 when p and q are the
    same law (a registered closed-form KL(p‖q) is 0). With :math:`x_i \sim P`, :math:`y_i \sim Q` (``n_samples``
    of each, independent) and :math:`\log m = \mathrm{logaddexp}(\log p, \log q) - \log 2`,

    .. math::

        \widehat{JS} = \tfrac12 \overline{\log p(x) - \log m(x)} + \tfrac12 \overline{\log q(y) - \log m(y)},

    with standard error :math:`\tfrac12\sqrt{s_x^2/n + s_y^2/n}`. Each term is at most
    log 2, so the estimate is in [0, log 2] up to its noise and its variance is finite.

    Parameters
    ----------
    p, q : torch.distributions.Distribution or frozen scipy.stats distribution
        Both from the same library, on the same space; parameters broadcast.
    base : float, optional
        None for nats, 2 for bits.
    **options
        ``method`` ('auto', 'exact' or 'mc'), ``n_samples`` (per distribution; the
        :class:`~klkit.estimators.Estimate` reports ``2 * n_samples``) and ``seed``.

    Returns
    -------
    ndarray, torch.Tensor or Estimate
        Exact zeros for identical laws, else a Monte Carlo :class:`~klkit.estimators.Estimate`.

    Raises
    ------
    NotRegisteredError
        ``method='exact'`` when the value is not known exactly.
    IncompatibleDistributionsError
        ``p`` and ``q`` on different spaces (event shapes, discrete against continuous).

    Examples
    --------
    >>> from scipy import stats
    >>> from klkit.distributions import api
    >>> float(api.js_divergence(stats.norm(0, 1), stats.norm(0, 1)))
    0.0
    >>> e = api.js_divergence(stats.norm(0, 1), stats.norm(0, 1e-9), seed=0, base=2)  # nearly disjoint: 1 bit
    >>> bool(abs(e.value - 1.0) < 1e-3)
    True
    """
    method, n, seed, _ = parse_options("js_divergence", options)
    if "estimator" in options:
        raise TypeError(
            "`js_divergence` takes no `estimator` option: it always averages log p − log m over "
            "samples of p and of q. Drop estimator=."
        )
    base = check_base(base)
    same_library(p, q)
    check_pair(p, q)
    if method != "mc":
        exact = _js_exact(p, q)
        if exact is not None:
            return scale(exact, base)
        if method == "exact":
            raise NotRegisteredError(
                "the Jensen–Shannon divergence has no closed form here (only identical laws, JS = 0, are exact); "
                "use method='mc' (or 'auto') for a Monte Carlo estimate."
            )
    seed_p, seed_q = two_seeds(seed)
    a = mean_of(p, n, seed_p, lambda x: _js_terms(p, q, x))  # log p − log m at x ~ p
    b = mean_of(q, n, seed_q, lambda y: _js_terms(q, p, y))  # log q − log m at y ~ q
    return scale(half_sum(a, b, "MC Jensen–Shannon (mixture)"), base)


def _js_exact(p: Any, q: Any) -> Any:
    """A registered closed form (Bernoulli, Categorical), or zeros of the batch shape when a closed-form
    KL(p‖q) says p = q everywhere; else None."""
    import numpy as np

    if p is q:
        return zeros_of_batch(p, q)
    function, a, b = find_divergence("js_divergence", p, q, symmetric=True)
    if function is not None:
        try:
            with quiet(a):
                return finish(function(a, b), p)
        except NotRegisteredError:
            pass
    try:
        function, fp, fq = find_kl(p, q)
        if function is None:
            return None
        with quiet(fp):
            kl = finish(function(fp, fq), p)
    except (NotRegisteredError, ValueError, TypeError):
        return None
    host = kl.detach().cpu().numpy() if type(kl).__module__.startswith("torch") else np.asarray(kl)
    return 0.0 * kl if np.all(host == 0) else None


_LOG2 = 0.6931471805599453


def _js_terms(a: Any, b: Any, x: Any) -> Any:
    """log a(x) − log m(x) = log 2 − log(1 + b(x)/a(x)) for samples x of ``a``: at most log 2, no overflow."""
    log_a, log_b = log_densities_at(a, b, x)
    if type(log_a).__module__.startswith("torch"):
        import torch

        return _LOG2 - torch.nn.functional.softplus(log_b - log_a)
    import numpy as np

    with np.errstate(invalid="ignore", over="ignore"):
        return _LOG2 - np.logaddexp(0.0, log_b - log_a)
