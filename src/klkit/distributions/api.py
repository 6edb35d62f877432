"""Entropy, cross-entropy and KL of distribution objects: exact if registered, else Monte Carlo.

These are what :func:`klkit.entropy`, :func:`klkit.cross_entropy` and
:func:`klkit.kl_divergence` call when given ``torch.distributions`` or frozen
``scipy.stats`` objects.

Options (keyword-only)
----------------------
method : {'auto', 'exact', 'mc'}, default 'auto'
    'exact' uses a registered closed form or raises :class:`~klkit.errors.NotRegisteredError`;
    'mc' always samples; 'auto' uses the closed form when one is registered, else samples.
n_samples : int, default 100_000
    Samples per batch element for Monte Carlo.
seed : int, optional
    Seed for Monte Carlo; same seed, same answer (global generators are left untouched).
estimator : {'k1', 'k2', 'k3'}, default 'k1'
    Monte Carlo KL estimator (:func:`klkit.estimators.mc_kl`). k1 and k3 are
    unbiased; **k2 is biased** (it matches KL only to second order in log(q/p)).
    k1 is the default here: its variance is finite whenever Var_p[log(p/q)] is,
    while k3's needs E_p[(q/p)²] < ∞, which fails when q has heavier tails than p
    (e.g. N(0, 1) against a Student t); k3 is best when p and q are close.
base : float, optional
    None for nats, 2 for bits.

Closed forms return arrays with the parameters' batch shape (torch in → torch
out with gradients; scipy in → numpy out); Monte Carlo returns an
:class:`~klkit.estimators.Estimate`.

The total variation, Hellinger distance, Rényi divergence, f-divergences and the
Jensen–Shannon distance live in :mod:`klkit.distributions.divergence_api` and are
re-exported here.
"""

from __future__ import annotations

from typing import Any, Literal

from klkit._engine import check_base
from klkit.distributions import registry
from klkit.distributions._dispatch import (
    broadcast,
    family_note,
    find_divergence,
    finish,
    finite,
    is_estimate,
    log_densities_at,
    parse_options,
    quiet,
    same_library,
    scale,
    two_seeds,
    zeros_of_batch,
)
from klkit.distributions.adapters import to_family
from klkit.distributions.checks import check_frozen, check_pair
from klkit.distributions.divergence_api import (  # the rest of the family, re-exported
    f_divergence,
    hellinger_distance,
    js_distance,
    renyi_divergence,
    total_variation,
)
from klkit.distributions.montecarlo import draw, log_density, mc_mean, mean_of_halves, warn_if_unreliable
from klkit.errors import NotRegisteredError

__all__ = [
    "cross_entropy",
    "decompose",
    "entropy",
    "f_divergence",
    "hellinger_distance",
    "js_distance",
    "js_divergence",
    "kl_divergence",
    "renyi_divergence",
    "total_variation",
]

Method = Literal["auto", "exact", "mc"]


def kl_divergence(p: Any, q: Any, /, *, base: float | None = None, **options: Any) -> Any:
    r"""KL(p‖q) = E_p[log p(X) − log q(X)] for two distribution objects.

    Parameters
    ----------
    p, q : torch.distributions.Distribution or frozen scipy.stats distribution
        Both from the same library; parameters broadcast.
    base : float, optional
        None for nats, 2 for bits.
    **options
        ``method``, ``n_samples``, ``seed``, ``estimator`` (see the module docstring).

    Returns
    -------
    ndarray, torch.Tensor or Estimate
        The closed form (batch shape of the parameters) or a Monte Carlo :class:`~klkit.estimators.Estimate`.

    Raises
    ------
    NotRegisteredError
        ``method='exact'`` for a pair without a closed form (the message lists what is registered).
    TypeError
        An unknown option, or objects from different libraries.
    ValueError
        A bad option value.

    Examples
    --------
    >>> from scipy import stats
    >>> import klkit
    >>> float(klkit.kl_divergence(stats.norm(0, 1), stats.norm(1, 1)))  # ½ (μp − μq)²
    0.5
    >>> e = klkit.kl_divergence(stats.norm(0, 1), stats.t(5), seed=0)  # no closed form: Monte Carlo
    >>> type(e).__name__, e.n_samples
    ('Estimate', 100000)
    """
    method, n, seed, estimator = parse_options("kl_divergence", options)
    base = check_base(base)
    same_library(p, q)
    if method != "mc":
        function, fp, fq = _find_kl(p, q)
        if function is not None:
            try:
                with quiet(fp):
                    return scale(finish(function(fp, fq), p), base)
            except NotRegisteredError:
                if method == "exact":
                    raise
        elif method == "exact":
            check_pair(p, q)
            raise _not_registered_kl(p, q, fp, fq)
    from klkit.estimators import mc_kl

    check_pair(p, q)
    log_p, log_q = log_densities_at(p, q, draw(p, n, seed))
    _diagnose_kl(log_p, log_q, estimator)
    return mc_kl(log_p, log_q, estimator=estimator, base=base)


def entropy(p: Any, /, *, base: float | None = None, **options: Any) -> Any:
    r"""Entropy H(P) = −E_P[log p(X)] (differential for densities) of a distribution object.

    Monte Carlo: the mean of :math:`-\log p(x_i)` over :math:`x_i \sim p`, with its standard error.

    Examples
    --------
    >>> import math
    >>> from scipy import stats
    >>> import klkit
    >>> bool(abs(klkit.entropy(stats.norm(0, 1)) - 0.5 * math.log(2 * math.pi * math.e)) < 1e-12)
    True
    """
    method, n, seed, _ = parse_options("entropy", options)
    base = check_base(base)
    check_frozen(p, "p")
    if method != "mc":
        fp = p
        function = registry.lookup_entropy(type(p))
        if function is None:
            fp = to_family(p)
            function = registry.lookup_entropy(type(fp))
        if function is not None:
            try:
                with quiet(fp):
                    return scale(finish(function(fp), p), base)
            except NotRegisteredError:  # a formula that covers only part of its type (e.g. affine transforms)
                if method == "exact":
                    raise
        elif method == "exact":
            names = ", ".join(t.__name__ for t in registry.registered_entropies())
            raise NotRegisteredError(
                f"no closed-form entropy is registered for {type(p).__name__}"
                f"{family_note(p, fp)}; registered families: {names}. "
                "Use method='mc' for a Monte Carlo estimate, or register one with register_entropy."
            )
    x = draw(p, n, seed)
    return scale(mc_mean(-log_density(p, x), "MC −log p"), base)


def cross_entropy(p: Any, q: Any, /, *, base: float | None = None, **options: Any) -> Any:
    r"""Cross-entropy H(P, Q) = −E_P[log q(X)] = H(P) + KL(P‖Q) of two distribution objects.

    Exact when both the entropy of ``p`` and KL(p‖q) have closed forms (their
    sum; no difference of large terms is taken); else the Monte Carlo mean of
    :math:`-\log q(x_i)`, :math:`x_i \sim p`.

    Examples
    --------
    >>> from scipy import stats
    >>> import klkit
    >>> h = klkit.cross_entropy(stats.norm(0, 1), stats.norm(1, 1))
    >>> bool(abs(h - (klkit.entropy(stats.norm(0, 1)) + 0.5)) < 1e-12)
    True
    """
    method, n, seed, estimator = parse_options("cross_entropy", options)
    base = check_base(base)
    same_library(p, q)
    if method != "mc":
        sub = "exact" if method == "exact" else "auto"
        h = entropy(p, method="exact" if sub == "exact" else "auto", n_samples=n, seed=seed)
        kl = kl_divergence(p, q, method=sub, n_samples=n, seed=seed, estimator=estimator)
        if not is_estimate(h) and not is_estimate(kl):
            return scale(h + kl, base)
    check_pair(p, q)
    _, log_q = log_densities_at(p, q, draw(p, n, seed))
    warn_if_unreliable(-log_q, finite(log_q), "cross-entropy H(p, q)", _ADVICE_CE)
    return scale(mc_mean(-log_q, "MC −log q"), base)


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
    a = _js_terms(p, q, draw(p, n, seed_p))  # log p − log m at x ~ p
    b = _js_terms(q, p, draw(q, n, seed_q))  # log q − log m at y ~ q
    a, b = broadcast(a, b)
    return scale(mean_of_halves(a, b), base)


def decompose(p: Any, q: Any, /, *, base: float | None = None, **options: Any) -> Any:
    r"""``Decomposition(entropy, cross_entropy, kl_divergence)`` of two distribution objects.

    Each term is computed on its own (exact where a closed form exists, else Monte Carlo
    with the same ``seed``), never one as the difference of the others, so
    :math:`H(P, Q) = H(P) + KL(P\|Q)` is a check, not an identity by construction.

    Examples
    --------
    >>> from scipy import stats
    >>> from klkit.distributions import api
    >>> d = api.decompose(stats.norm(0, 1), stats.norm(1, 1))
    >>> float(d.kl_divergence), bool(abs(d.cross_entropy - d.entropy - 0.5) < 1e-12)
    (0.5, True)
    """
    from klkit.measures import Decomposition

    parse_options("decompose", options)
    same_library(p, q)
    check_pair(p, q)
    return Decomposition(
        entropy(p, base=base, **options),
        cross_entropy(p, q, base=base, **options),
        kl_divergence(p, q, base=base, **options),
    )


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
        function, fp, fq = _find_kl(p, q)
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


# ---------------------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------------------


def _find_kl(p: Any, q: Any) -> tuple[Any, Any, Any]:
    """(function, p', q'): raw types first (user registrations), then the adapted families."""
    function = registry.lookup_kl(type(p), type(q))
    if function is not None:
        return function, p, q
    fp, fq = to_family(p), to_family(q)
    return registry.lookup_kl(type(fp), type(fq)), fp, fq


def _not_registered_kl(p: Any, q: Any, fp: Any, fq: Any) -> NotRegisteredError:
    partners = sorted({b.__name__ for a, b in registry.registered_pairs() if issubclass(type(fp), a)})
    listed = ", ".join(partners) if partners else "nothing"
    mixture = (
        "; for Gaussian mixtures, klkit.distributions.mixture_kl also gives deterministic bounds"
        if "Mixture" in type(p).__name__ + type(q).__name__
        else ""
    )
    return NotRegisteredError(
        f"no closed-form KL is registered for the pair ({type(p).__name__}{family_note(p, fp)}, "
        f"{type(q).__name__}{family_note(q, fq)}); for p = {type(fp).__name__} the registered q types are: "
        f"{listed}. Use method='mc' (or 'auto') for a Monte Carlo estimate, or add one with register_kl{mixture}."
    )


_ADVICE_K1 = "Use estimator='k1' (finite variance whenever Var_p[log p/q] is), or "
_ADVICE_KL = (
    "a closed form (method='exact', or add one with klkit.distributions.register_kl), or check "
    "whether KL(p‖q) is infinite (q's tails lighter than p's); more samples will not fix an infinite "
    "variance."
)
_ADVICE_CE = (
    "Use a closed form (method='exact', register_kl/register_entropy), or check whether H(p, q) is "
    "infinite (q's tails lighter than p's); more samples will not fix an infinite variance."
)


def _diagnose_kl(log_p: Any, log_q: Any, estimator: str) -> None:
    """Warn when the per-sample terms of the chosen estimator are heavy-tailed or overflow."""
    import numpy as np

    from klkit.distributions.montecarlo import _host

    lp, lq = _host(log_p), _host(log_q)
    with np.errstate(over="ignore", invalid="ignore"):
        log_r = lq - lp
        terms = {"k1": -log_r, "k2": 0.5 * log_r * log_r}.get(estimator)
        if terms is None:
            terms = np.expm1(log_r) - log_r
    advice = (_ADVICE_K1 if estimator != "k1" else "Use ") + _ADVICE_KL
    warn_if_unreliable(terms, np.isfinite(log_r), f"KL(p‖q) with estimator={estimator!r}", advice)
