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
χ²               E_p[p/q] − 1 (+inf where q = 0 at a sample of p)                 E_q[(p/q)³] < ∞
f (callable)     E_q[f(p/q)]; samples of p check that q > 0 wherever p > 0        depends on f
===============  ===============================================================  ================

The Rényi estimate is the log of a mean, biased by about −Var/(2n·mean²)/(α − 1); its standard
error is the delta method's. The Hellinger distance and the JS distance are square roots of an
estimate: a negative estimate of H² (possible when p ≈ q) gives 0, and the standard error is
``se(H²) / (2H)`` (``sqrt(se(H²))`` at H = 0).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from klkit._engine import FName, check_alpha, check_base, check_f, namespace
from klkit.distributions import _divergence_mc as mc
from klkit.distributions._dispatch import (
    closed_form,
    find_divergence,
    not_registered,
    parse_options,
    same_library,
    scale,
)
from klkit.distributions.checks import check_pair
from klkit.distributions.information_api import kl_divergence
from klkit.distributions.js_api import js_divergence
from klkit.errors import NotRegisteredError

__all__ = ["f_divergence", "hellinger_distance", "js_distance", "renyi_divergence", "total_variation"]


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
    exact = closed_form("total_variation", p, q, method)
    if exact is not None:
        return exact
    return mc.total_variation_mc(p, q, n, seed)


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
    return mc.square_root(_hellinger_squared(p, q, method, n, seed), "MC Hellinger distance")


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
        ``alpha`` negative, NaN or infinite (α = ∞ has no estimate for distribution objects).
    TypeError
        ``alpha`` not a real number.
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
    alpha = check_alpha(alpha, infinite=False)
    if alpha == 1.0:
        _options("renyi_divergence", options, base, log_units=True)
        return kl_divergence(p, q, base=base, **options)
    method, n, seed = _options("renyi_divergence", options, base, log_units=True)
    same_library(p, q)
    check_pair(p, q)
    exact = closed_form("renyi_divergence", p, q, method, alpha)
    if exact is None:
        exact = mc.renyi_mc(p, q, alpha, n, seed)
    return scale(exact, base)


def f_divergence(
    p: Any, q: Any, /, f: FName | Callable[[Any], Any], *, base: float | None = None, **options: Any
) -> Any:
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
    mean of f(t) over samples x of q. It is checked as :func:`klkit.f_divergence` checks it on
    arrays: f(1) = 0, an array of t's shape, no NaN. Its :math:`f'(\infty)` is unknown, so where p
    has mass outside q's support (q(x) = 0 at a sample of p, drawn for that check) it raises
    rather than drop the term :math:`f'(\infty)\,P(q = 0)`; 'chi2' and 'kl' are +inf there.

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
        An unknown name for ``f``; a callable with f(1) ≠ 0, one that returns NaN or an array of
        another shape, or one met with q(x) = 0 at a sample of p.
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
    check_f(f)
    if f in ("kl", "reverse_kl"):
        a, b = (p, q) if f == "kl" else (q, p)
        return kl_divergence(a, b, base=base, **options)
    if f == "js":
        return js_divergence(p, q, base=base, **options)
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
        raise NotRegisteredError(
            "an f-divergence of a callable f has no closed form; found method='exact'. Use "
            "method='mc' (or 'auto') for a Monte Carlo estimate, or a named f "
            "('kl', 'reverse_kl', 'tv', 'hellinger', 'chi2', 'js') for an exact value."
        )
    return mc.callable_f_mc(p, q, f, n, seed)


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

    return mc.square_root(js_divergence(p, q, base=base, **options), "MC Jensen–Shannon distance")


def _hellinger_squared(p: Any, q: Any, method: str, n: int, seed: int | None) -> Any:
    """H² exactly (a Hellinger form, else the Rényi divergence of order ½), else Monte Carlo."""
    same_library(p, q)
    check_pair(p, q)
    if method != "mc":
        h = closed_form("hellinger_distance", p, q, "auto")
        if h is not None:
            return h * h
        d = closed_form("renyi_divergence", p, q, "auto", 0.5)
        if d is not None:
            return -namespace(d).expm1(-0.5 * d)
        if method == "exact":
            fp, fq = find_divergence("hellinger_distance", p, q, symmetric=True)[1:]
            raise not_registered("hellinger_distance", p, q, fp, fq)
    return mc.hellinger_squared_mc(p, q, n, seed)


def _chi2(p: Any, q: Any, method: str, n: int, seed: int | None) -> Any:
    """Pearson χ²(p‖q) = e^{D_2} − 1 exactly, else the mean of p/q − 1 over samples of p."""
    d = closed_form("renyi_divergence", p, q, "auto" if method != "mc" else "mc", 2.0)
    if d is not None:
        return namespace(d).expm1(d)
    if method == "exact":
        fp, fq = find_divergence("renyi_divergence", p, q, symmetric=False)[1:]
        raise not_registered("renyi_divergence", p, q, fp, fq)
    return mc.chi2_mc(p, q, n, seed)


def _options(measure: str, options: dict[str, Any], base: Any, *, log_units: bool = False) -> tuple[str, int, Any]:
    """(method, n_samples, seed); ``estimator`` is rejected, and ``base`` unless the measure is a logarithm."""
    method, n, seed, _ = parse_options(measure, options)
    if "estimator" in options:
        raise TypeError(
            f"`{measure}` takes no `estimator` option (it names a Monte Carlo KL estimator: k1, k2, k3); "
            "drop estimator=."
        )
    if log_units:
        check_base(base)
    elif base is not None:
        raise TypeError(
            f"`{measure}` takes no `base` (found base={base!r}): it is not measured in nats or bits "
            "(total variation, Hellinger and χ² are the same number in any base). Drop base=."
        )
    return method, n, seed
