r"""Total variation, Hellinger, Rényi, f-divergences and the JS distance of distribution objects.

What :func:`klkit.total_variation`, :func:`klkit.hellinger_distance`,
:func:`klkit.renyi_divergence`, :func:`klkit.f_divergence` and :func:`klkit.js_distance` call
when given ``torch.distributions`` or frozen ``scipy.stats`` objects; re-exported by
:mod:`klkit.distributions.api`. Exact where a closed form is registered
(:mod:`klkit.distributions.divergence_forms`, :func:`~klkit.distributions.register_divergence`),
else Monte Carlo with a standard error (an :class:`~klkit.estimators.Estimate`), with a
:class:`~klkit.errors.MonteCarloWarning` when the per-sample terms are too heavy-tailed to trust.

Options are those of :mod:`klkit.distributions.api` (``method``, ``n_samples``, ``seed``);
``estimator`` applies only where a KL is computed (``f="kl"``, ``"reverse_kl"``).

Units: the Rényi divergence, KL and Jensen–Shannon are logarithms and take ``base`` (None: nats,
2: bits). Total variation, the Hellinger distance, χ² and an f-divergence of your own are not
measured in nats: they reject a ``base`` other than None (a ``TypeError`` that says so) rather
than divide by a logarithm that means nothing there.

Monte Carlo forms (each has finite variance where noted):

===============  ===============================================================  ================
measure          estimator                                                        variance
===============  ===============================================================  ================
total variation  ½ E_p[(1 − q/p)₊] + ½ E_q[(1 − p/q)₊] (n samples of each)        terms in [0, 1]
Hellinger H²     1 − ½ E_p[√(q/p)] − ½ E_q[√(p/q)]                                always finite
Rényi, α ≥ ½     log E_p[(q/p)^(1−α)] / (α − 1)                                   finite for α ≤ 1
Rényi, α < ½     log E_q[(p/q)^α] / (α − 1)                                       finite
χ²               E_p[p/q] − 1                                                     E_q[(p/q)³] < ∞
f (callable)     E_q[f(p/q)] (misses f′(∞)·P(q = 0) where p's support is larger)  depends on f
===============  ===============================================================  ================

The Rényi estimate is the log of a mean, biased by about −Var/(2n·mean²)/(α − 1); its standard
error is the delta method's. The Hellinger distance and the JS distance are square roots of an
estimate: a negative estimate of H² (possible when p ≈ q) gives 0, and the standard error is
``se(H²) / (2H)`` (``sqrt(se(H²))`` at H = 0).
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable
from typing import Any, Literal

import numpy as np

from klkit._validation import check_base
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
)
from klkit.distributions.checks import check_pair
from klkit.distributions.montecarlo import _host, draw, mc_mean, warn_if_unreliable
from klkit.errors import InvalidArgumentError, NotRegisteredError

__all__ = ["f_divergence", "hellinger_distance", "js_distance", "renyi_divergence", "total_variation"]

FName = Literal["kl", "reverse_kl", "tv", "hellinger", "chi2", "js"]
F_NAMES = ("kl", "reverse_kl", "tv", "hellinger", "chi2", "js")
_ADVICE = ("Use a closed form (method='exact'; add one with klkit.distributions.register_divergence), or check "
           "whether the quantity is infinite (q's tails lighter than p's); more samples will not fix an infinite "
           "variance.")


def total_variation(p: Any, q: Any, /, *, base: None = None, **options: Any) -> Any:
    r"""Total variation :math:`TV(P, Q) = \sup_A |P(A) - Q(A)| = \tfrac12\int|p - q|` of two distribution objects.

    In [0, 1]; symmetric. Exact for the pairs in :mod:`~klkit.distributions.divergence_forms`
    (any two univariate Normals, multivariate Normals of equal covariance, Exponentials,
    Uniforms, Bernoulli, Categorical …); otherwise the Monte Carlo mean of
    :math:`\tfrac12(1 - q/p)_+` over samples of p plus that of :math:`\tfrac12(1 - p/q)_+` over
    samples of q, terms in [0, 1] (``n_samples`` of each; the Estimate reports ``2 * n_samples``).

    Parameters
    ----------
    p, q : torch.distributions.Distribution or frozen scipy.stats distribution
        Both from the same library, on the same space; parameters broadcast.
    base : None
        Not a logarithm: only None is accepted.
    **options
        ``method`` ('auto', 'exact', 'mc'), ``n_samples`` and ``seed``.

    Returns
    -------
    ndarray, torch.Tensor or Estimate
        The closed form with the parameters' batch shape, or a Monte Carlo
        :class:`~klkit.estimators.Estimate`.

    Raises
    ------
    NotRegisteredError
        ``method='exact'`` for a pair without a closed form (the message names the pair and the fix).
    TypeError
        A ``base`` other than None, the ``estimator`` option, or objects from different libraries.
    IncompatibleDistributionsError
        ``p`` and ``q`` on different spaces.

    References
    ----------
    .. [1] L. Devroye, A. Mehrabian and T. Reddad, "The total variation distance between high-dimensional
           Gaussians", 2018.

    Examples
    --------
    >>> from scipy import stats
    >>> from klkit.distributions import api
    >>> round(float(api.total_variation(stats.norm(0, 1), stats.norm(1, 1))), 6)  # 2Φ(½) − 1
    0.382925
    """
    method, n, seed = _options("total_variation", options, base)
    same_library(p, q)
    check_pair(p, q)
    exact = _closed_form("total_variation", p, q, method)
    if exact is not None:
        return exact
    return _symmetric_mc(p, q, n, seed, _tv_terms, "MC total variation")


def hellinger_distance(p: Any, q: Any, /, *, base: None = None, **options: Any) -> Any:
    r"""Hellinger distance :math:`H(P, Q) = \sqrt{1 - \int\sqrt{p\,q}}` of two distribution objects, in [0, 1].

    :math:`\int\sqrt{pq}` is the Bhattacharyya coefficient BC, so :math:`H^2 = 1 - BC =
    \tfrac12\int(\sqrt p - \sqrt q)^2` and the Bhattacharyya distance is :math:`-\log(1 - H^2)`.
    Exact wherever a Rényi divergence of order ½ is registered (:math:`BC = e^{-D_{1/2}/2}`:
    Normals, multivariate Normals, Exponentials, Gammas, Bernoulli, Categorical …) or a
    Hellinger form is (Uniform); otherwise Monte Carlo of
    :math:`1 - \tfrac12 E_p[\sqrt{q/p}] - \tfrac12 E_q[\sqrt{p/q}]`, then the square root.
    Like :math:`|x|` at 0, H has no derivative where p = q (autograd gives NaN there); differentiate
    :math:`H^2` instead, ``f_divergence(p, q, "hellinger")``, which is smooth.

    Parameters
    ----------
    p, q : torch.distributions.Distribution or frozen scipy.stats distribution
        Both from the same library, on the same space.
    base : None
        Not a logarithm: only None is accepted.
    **options
        ``method``, ``n_samples`` (of each law) and ``seed``.

    Returns
    -------
    ndarray, torch.Tensor or Estimate
        H with the parameters' batch shape, or a Monte Carlo :class:`~klkit.estimators.Estimate`
        (the square root of the estimate of H², clipped at 0; see the module docstring).

    Raises
    ------
    NotRegisteredError, TypeError, IncompatibleDistributionsError
        As in :func:`total_variation`.

    References
    ----------
    .. [1] A. Bhattacharyya, "On a measure of divergence between two statistical populations", 1943.

    Examples
    --------
    >>> import math
    >>> from scipy import stats
    >>> from klkit.distributions import api
    >>> h = api.hellinger_distance(stats.norm(0, 1), stats.norm(1, 1))  # H² = 1 − exp(−Δμ²/8)
    >>> bool(abs(h - math.sqrt(1 - math.exp(-1 / 8))) < 1e-15)
    True
    """
    method, n, seed = _options("hellinger_distance", options, base)
    return _square_root(_hellinger_squared(p, q, method, n, seed), "MC Hellinger distance")


def renyi_divergence(p: Any, q: Any, /, alpha: float, *, base: float | None = None, **options: Any) -> Any:
    r"""Rényi divergence of order α, :math:`D_\alpha(P\|Q) = \frac{1}{\alpha-1}\log\int p^\alpha q^{1-\alpha}`.

    Non-negative, non-decreasing in α; :math:`D_1` is KL(p‖q) (answered by
    :func:`~klkit.distributions.api.kl_divergence`, exactly the registered KL), :math:`D_{1/2} =
    -2\log BC` is symmetric, :math:`D_2 = \log(1 + \chi^2(P\|Q))`. For α > 1 it is +inf where the
    integral diverges, e.g. between Normals when :math:`\alpha\Sigma_q + (1-\alpha)\Sigma_p` is not
    positive definite. Exact for the pairs in :mod:`~klkit.distributions.divergence_forms`
    ((multivariate) Normals, Exponentials, Gammas, Bernoulli, Categorical …); otherwise Monte Carlo
    (samples of p for α ≥ ½, of q below; see the module docstring).

    Parameters
    ----------
    p, q : torch.distributions.Distribution or frozen scipy.stats distribution
        Both from the same library, on the same space.
    alpha : float
        The order, a finite real number ≥ 0 (:math:`D_0 = -\log Q(p > 0)`).
    base : float, optional
        None for nats, 2 for bits.
    **options
        ``method``, ``n_samples`` and ``seed``.

    Returns
    -------
    ndarray, torch.Tensor or Estimate
        The closed form with the parameters' batch shape, or a Monte Carlo :class:`~klkit.estimators.Estimate`.

    Raises
    ------
    ValueError
        ``alpha`` not a finite number ≥ 0.
    NotRegisteredError, TypeError, IncompatibleDistributionsError
        As in :func:`total_variation` (``base`` is allowed here).

    References
    ----------
    .. [1] A. Rényi, "On measures of entropy and information", 1961.
    .. [2] M. Gil, F. Alajaji and T. Linder, "Rényi divergence measures for commonly used univariate continuous
           distributions", Information Sciences 249, 2013.

    Examples
    --------
    >>> from scipy import stats
    >>> from klkit.distributions import api
    >>> float(api.renyi_divergence(stats.norm(0, 1), stats.norm(1, 1), 2.0))  # α Δμ² / 2
    1.0
    """
    alpha = _check_alpha(alpha)
    if alpha == 1.0:
        from klkit.distributions.api import kl_divergence

        _options("renyi_divergence", options, base, log_units=True)
        return kl_divergence(p, q, base=base, **options)
    method, n, seed = _options("renyi_divergence", options, base, log_units=True)
    same_library(p, q)
    check_pair(p, q)
    exact = _closed_form("renyi_divergence", p, q, method, alpha)
    if exact is None:
        exact = _renyi_mc(p, q, alpha, n, seed)
    return scale(exact, base)


def f_divergence(p: Any, q: Any, /, f: FName | Callable[[Any], Any], *, base: float | None = None,
                 **options: Any) -> Any:
    r"""f-divergence :math:`D_f(P\|Q) = \int q\, f(p/q)` for convex f with f(1) = 0, of two distribution objects.

    Named f's, each computed by its own function (exact where that one is):

    =============  ============================================  =================================
    ``f``          f(t)                                          value
    =============  ============================================  =================================
    'kl'           t log t                                       KL(p‖q)
    'reverse_kl'   −log t                                        KL(q‖p)
    'tv'           ½|t − 1|                                      total variation
    'hellinger'    ½(√t − 1)²                                    H² = 1 − ∫√(pq) (squared distance)
    'chi2'         (t − 1)²                                      Pearson χ²(p‖q) = e^{D_2} − 1
    'js'           ½[t log(2t/(1+t)) + log(2/(1+t))]              Jensen–Shannon divergence
    =============  ============================================  =================================

    A callable ``f`` receives the density ratios t = p(x)/q(x) as an array of the objects' library
    (numpy, or torch with gradients) and returns f(t) element-wise; the value is the Monte Carlo
    mean of f(t) over samples x of q. That misses the :math:`f'(\infty)\,P(q = 0)` term where p has
    mass outside q's support.

    Parameters
    ----------
    p, q : torch.distributions.Distribution or frozen scipy.stats distribution
        Both from the same library, on the same space.
    f : {'kl', 'reverse_kl', 'tv', 'hellinger', 'chi2', 'js'} or callable
    base : float, optional
        For 'kl', 'reverse_kl' and 'js' only (None for nats, 2 for bits).
    **options
        ``method``, ``n_samples``, ``seed``; ``estimator`` for 'kl' and 'reverse_kl'.

    Returns
    -------
    ndarray, torch.Tensor or Estimate

    Raises
    ------
    ValueError
        An unknown name for ``f``.
    TypeError
        ``f`` neither a name nor callable; ``base`` or ``estimator`` where they do not apply.
    NotRegisteredError, IncompatibleDistributionsError
        As in :func:`total_variation`.

    References
    ----------
    .. [1] I. Csiszár, "Information-type measures of difference of probability distributions", 1967.

    Examples
    --------
    >>> from scipy import stats
    >>> from klkit.distributions import api
    >>> round(float(api.f_divergence(stats.norm(0, 1), stats.norm(1, 1), "chi2")), 6)  # e^{Δμ²} − 1
    1.718282
    """
    if isinstance(f, str):
        if f not in F_NAMES:
            raise InvalidArgumentError(f"`f` must be one of {', '.join(map(repr, F_NAMES))} or a callable f(t); "
                                       f"found {f!r}. Pass a function of the density ratio t = p/q for your own.")
    elif not callable(f):
        raise TypeError(f"`f` must be the name of an f-divergence or a callable f(t); found {type(f).__name__}. "
                        f"Names: {', '.join(F_NAMES)}.")
    from klkit.distributions import api

    if f in ("kl", "reverse_kl"):
        a, b = (p, q) if f == "kl" else (q, p)
        return api.kl_divergence(a, b, base=base, **options)
    if f == "js":
        return api.js_divergence(p, q, base=base, **options)
    if f == "tv":
        return total_variation(p, q, base=base, **options)
    label = f"f_divergence with f={f!r}" if isinstance(f, str) else "f_divergence with a callable f"
    method, n, seed = _options(label, options, base)
    if f == "hellinger":
        return _hellinger_squared(p, q, method, n, seed)
    same_library(p, q)
    check_pair(p, q)
    if f == "chi2":
        return _chi2(p, q, method, n, seed)
    if method == "exact":
        raise NotRegisteredError("an f-divergence of a callable f has no closed form; use method='mc' (or 'auto') "
                                 "for a Monte Carlo estimate, or a named f.")
    log_q, log_p = log_densities_at(q, p, draw(q, n, seed))
    terms = f(_exp(log_p - log_q))
    warn_if_unreliable(terms, finite(log_p), "f-divergence E_q[f(p/q)]", _ADVICE)
    return mc_mean(terms, "MC f-divergence E_q[f(p/q)]")


def js_distance(p: Any, q: Any, /, *, base: float | None = None, **options: Any) -> Any:
    r"""Jensen–Shannon distance :math:`\sqrt{JS(P, Q)}` (a metric), as :func:`scipy.spatial.distance.jensenshannon`.

    The square root of :func:`~klkit.distributions.api.js_divergence` in the given ``base`` (so at
    most 1 in bits). Exact for identical laws and for Bernoulli and Categorical pairs; otherwise the
    square root of the Monte Carlo estimate (clipped at 0; standard error by the delta method).

    Parameters
    ----------
    p, q : torch.distributions.Distribution or frozen scipy.stats distribution
    base : float, optional
        None for nats, 2 for bits: the base of the divergence under the root.
    **options
        ``method``, ``n_samples`` (of each law) and ``seed``.

    Returns
    -------
    ndarray, torch.Tensor or Estimate

    Raises
    ------
    NotRegisteredError, TypeError, IncompatibleDistributionsError
        As in :func:`~klkit.distributions.api.js_divergence`.

    References
    ----------
    .. [1] D. M. Endres and J. E. Schindelin, "A new metric for probability distributions", 2003.

    Examples
    --------
    >>> import torch
    >>> from klkit.distributions import api
    >>> p, q = torch.distributions.Bernoulli(torch.tensor(1.0)), torch.distributions.Bernoulli(torch.tensor(0.0))
    >>> float(api.js_distance(p, q, base=2))  # disjoint supports: 1 bit, distance 1
    1.0
    """
    from klkit.distributions.api import js_divergence

    return _square_root(js_divergence(p, q, base=base, **options), "MC Jensen–Shannon distance")


# ---------------------------------------------------------------------------------------------------
# closed forms
# ---------------------------------------------------------------------------------------------------
_SYMMETRIC = {"total_variation", "hellinger_distance", "js_divergence"}
_WORDS = {"total_variation": "total variation", "hellinger_distance": "Hellinger distance",
          "renyi_divergence": "Rényi divergence", "js_divergence": "Jensen–Shannon divergence"}


def _closed_form(measure: str, p: Any, q: Any, method: str, *args: Any) -> Any:
    """The registered closed form (None when there is none, or it does not cover these parameters)."""
    if method == "mc":
        return None
    function, a, b = find_divergence(measure, p, q, symmetric=measure in _SYMMETRIC)
    if function is None:
        if method == "exact":
            raise _not_registered(measure, p, q, a, b)
        return None
    try:
        with quiet(a):
            return finish(function(a, b, *args), p)
    except NotRegisteredError:
        if method == "exact":
            raise
        return None


def _not_registered(measure: str, p: Any, q: Any, fp: Any, fq: Any) -> NotRegisteredError:
    pairs = registry.registered_divergences(measure)
    if measure == "hellinger_distance":
        pairs = sorted(set(pairs) | set(registry.registered_divergences("renyi_divergence")),
                       key=lambda m: (m[0].__name__, m[1].__name__))
    listed = ", ".join(f"({a.__name__}, {b.__name__})" for a, b in pairs)
    return NotRegisteredError(
        f"no closed-form {_WORDS[measure]} is registered for the pair ({type(p).__name__}{family_note(p, fp)}, "
        f"{type(q).__name__}{family_note(q, fq)}); closed forms exist for: {listed}. Use method='mc' (or 'auto') "
        f"for a Monte Carlo estimate, or add one with register_divergence({measure!r}, "
        f"{type(fp).__name__}, {type(fq).__name__})."
    )


def _hellinger_squared(p: Any, q: Any, method: str, n: int, seed: int | None) -> Any:
    """H² exactly (a Hellinger form, else the Rényi divergence of order ½), else Monte Carlo."""
    same_library(p, q)
    check_pair(p, q)
    if method != "mc":
        h = _closed_form("hellinger_distance", p, q, "auto")
        if h is not None:
            return h * h
        d = _closed_form("renyi_divergence", p, q, "auto", 0.5)
        if d is not None:
            return -_expm1(-0.5 * d)
        if method == "exact":
            fp, fq = find_divergence("hellinger_distance", p, q, symmetric=True)[1:]
            raise _not_registered("hellinger_distance", p, q, fp, fq)
    return _symmetric_mc(p, q, n, seed, _hellinger_terms, "MC squared Hellinger distance")


def _chi2(p: Any, q: Any, method: str, n: int, seed: int | None) -> Any:
    """Pearson χ²(p‖q) = e^{D_2} − 1 exactly, else the mean of p/q − 1 over samples of p."""
    d = _closed_form("renyi_divergence", p, q, "auto" if method != "mc" else "mc", 2.0)
    if d is not None:
        return _expm1(d)
    if method == "exact":
        fp, fq = find_divergence("renyi_divergence", p, q, symmetric=False)[1:]
        raise _not_registered("renyi_divergence", p, q, fp, fq)
    log_p, log_q = log_densities_at(p, q, draw(p, n, seed))
    terms = _expm1(log_p - log_q)
    warn_if_unreliable(terms, finite(log_q), "χ²(p‖q) = E_p[p/q] − 1", _ADVICE)
    return mc_mean(terms, "MC χ² E_p[p/q] − 1")


# ---------------------------------------------------------------------------------------------------
# Monte Carlo
# ---------------------------------------------------------------------------------------------------
def _tv_terms(log_a: Any, log_b: Any) -> Any:
    """(1 − b/a)₊ at samples of a, in [0, 1]."""
    r = log_b - log_a
    return -_expm1(_minimum(r, 0.0))


def _hellinger_terms(log_a: Any, log_b: Any) -> Any:
    """1 − √(b/a) at samples of a (mean: H²; variance ≤ 1)."""
    return -_expm1(0.5 * (log_b - log_a))


def _symmetric_mc(p: Any, q: Any, n: int, seed: int | None, terms: Callable[[Any, Any], Any], label: str) -> Any:
    """½ mean over samples of p + ½ mean over samples of q of ``terms(log a, log b)``, with its standard error."""
    from klkit.distributions.api import _mean_of_halves

    seed_p, seed_q = two_seeds(seed)
    lp, lq = log_densities_at(p, q, draw(p, n, seed_p))
    a = terms(lp, lq)
    lq2, lp2 = log_densities_at(q, p, draw(q, n, seed_q))
    b = terms(lq2, lp2)
    a, b = broadcast(a, b)
    half = _mean_of_halves(a, b)
    return type(half)(half.value, half.standard_error, half.n_samples, label)


def _renyi_mc(p: Any, q: Any, alpha: float, n: int, seed: int | None) -> Any:
    """log(mean of w) / (α − 1), w = (q/p)^(1−α) at samples of p (α ≥ ½) or (p/q)^α at samples of q (α < ½)."""
    from klkit.estimators import Estimate

    if alpha >= 0.5:
        log_a, log_b = log_densities_at(p, q, draw(p, n, seed))
        log_w = (1.0 - alpha) * (log_b - log_a)
        where = "E_p[(q/p)^(1−α)]"
    else:
        log_b, log_a = log_densities_at(q, p, draw(q, n, seed))
        log_w = alpha * (log_a - log_b)
        log_w = _where(_is_neg_inf(log_a), log_a, log_w)  # outside p's support: weight 0, also at α = 0
        where = "E_q[(p/q)^α]"
    log_mean, relative_se = _log_mean_exp(log_w)
    with np.errstate(invalid="ignore", over="ignore"):
        weights = np.exp(_host(log_w) - _host(log_mean)[None])  # at most n: no overflow
    warn_if_unreliable(weights, finite(log_a) & finite(log_b),
                       f"Rényi divergence (α = {alpha:g}) through {where}", _ADVICE)
    value = log_mean / (alpha - 1.0)
    return Estimate(value, relative_se / abs(alpha - 1.0), n, f"MC Rényi divergence (α = {alpha:g}) {where}")


def _log_mean_exp(log_w: Any) -> tuple[Any, Any]:
    """(log mean exp(log w) over axis 0, the standard error of the mean relative to the mean), overflow-free."""
    n = log_w.shape[0]
    if type(log_w).__module__.startswith("torch"):
        import torch

        log_mean = torch.logsumexp(log_w, dim=0) - math.log(n)
        with torch.no_grad():
            w = torch.exp(log_w - log_mean)  # mean 1
            rel = w.std(0, correction=1) / math.sqrt(n)
        return log_mean, rel
    from scipy.special import logsumexp

    with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
        log_mean = logsumexp(log_w, axis=0) - math.log(n)
        w = np.exp(log_w - log_mean)
        rel = w.std(0, ddof=1) / math.sqrt(n)
    return np.asarray(log_mean)[()], np.asarray(rel)[()]


def _square_root(value: Any, label: str) -> Any:
    """√x of an exact value or of an Estimate (clipped at 0; delta-method standard error)."""
    if not is_estimate(value):
        return _sqrt(_maximum(value, 0.0))
    from klkit.estimators import Estimate

    root = _sqrt(_maximum(value.value, 0.0))
    host_root, host_se = _host(root), _host(value.standard_error)
    with np.errstate(divide="ignore", invalid="ignore"):
        se = np.where(host_root > 0, host_se / (2.0 * host_root), np.sqrt(host_se))
    if type(root).__module__.startswith("torch"):
        import torch

        se = torch.as_tensor(se, dtype=root.dtype, device=root.device)
    else:
        se = np.asarray(se)[()]
    return Estimate(root, se, value.n_samples, label)


def _check_alpha(alpha: Any) -> float:
    if isinstance(alpha, bool) or not isinstance(alpha, numbers.Real) or not (math.isfinite(alpha) and alpha >= 0):
        raise InvalidArgumentError(
            f"`alpha` must be a finite real number >= 0 (the order of the Rényi divergence; 1 gives KL); found "
            f"{alpha!r}. Use e.g. alpha=0.5 (symmetric, −2 log of the Bhattacharyya coefficient) or alpha=2; "
            "α = ∞ (log of the largest density ratio) has no sampled estimate here: take a large finite α."
        )
    return float(alpha)


def _options(measure: str, options: dict[str, Any], base: Any, *, log_units: bool = False) -> tuple[str, int, Any]:
    """(method, n_samples, seed); ``estimator`` is rejected, and ``base`` unless the measure is a logarithm."""
    method, n, seed, _ = parse_options(measure, options)
    if "estimator" in options:
        raise TypeError(f"`{measure}` takes no `estimator` option (it names a Monte Carlo KL estimator: k1, k2, k3); "
                        "drop estimator=.")
    if log_units:
        check_base(base)
    elif base is not None:
        raise TypeError(f"`{measure}` takes no `base` (found base={base!r}): it is not measured in nats or bits "
                        "(total variation, Hellinger and χ² are the same number in any base). Drop base=.")
    return method, n, seed


# element-wise helpers for numpy and torch values (exact results and Monte Carlo terms)
def _is_torch(x: Any) -> bool:
    return type(x).__module__.startswith("torch")


def _expm1(x: Any) -> Any:
    return x.expm1() if _is_torch(x) else np.expm1(x)


def _exp(x: Any) -> Any:
    return x.exp() if _is_torch(x) else np.exp(x)


def _sqrt(x: Any) -> Any:
    return x.sqrt() if _is_torch(x) else np.sqrt(x)


def _maximum(x: Any, bound: float) -> Any:
    return x.clamp(min=bound) if _is_torch(x) else np.maximum(x, bound)


def _is_neg_inf(x: Any) -> Any:
    return x == -math.inf


def _where(condition: Any, a: Any, b: Any) -> Any:
    if _is_torch(condition):
        import torch

        return torch.where(condition, a, b)
    return np.where(condition, a, b)


def _minimum(x: Any, bound: float) -> Any:
    return x.clamp(max=bound) if _is_torch(x) else np.minimum(x, bound)
