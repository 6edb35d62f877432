r"""k-nearest-neighbour estimates of differential entropy and KL divergence from continuous samples.

Neighbours come from :class:`scipy.spatial.cKDTree`, or from a fused brute-force kernel
(numba) in dimension >= 8 for up to 3e9 pairs, where k-d trees barely prune
(:mod:`klkit.estimators.neighbours`); both use :func:`klkit.get_num_threads` threads.
"""

from __future__ import annotations

import math
from typing import Any, Literal

import numpy as np
from scipy import special
from scipy.spatial import cKDTree

from klkit._engine import check_base
from klkit.errors import InvalidArgumentError, InvalidDistributionError, ShapeError
from klkit.estimate import Estimate
from klkit.estimators.checks import check_bootstrap, check_k, check_metric, check_size
from klkit.estimators.neighbours import kth_distances, self_and_cross_distances, workers
from klkit.estimators.samples import jittered, real_samples, whiten, whiten_by
from klkit.estimators.terms import estimate_from_terms

__all__ = ["knn_entropy", "knn_kl_divergence"]

Metric = Literal["euclidean", "chebyshev"]
KLMethod = Literal["fixed", "adaptive", "gaussian_guided"]
_KL_METHODS = ("fixed", "adaptive", "gaussian_guided")


# ---------------------------------------------------------------------------
# Public API
# ---------------------------------------------------------------------------


def knn_entropy(
    x: Any,
    /,
    *,
    k: int = 3,
    metric: Metric = "euclidean",
    base: float | None = None,
    bootstrap: int | None = None,
    confidence: float = 0.95,
    seed: int | None = None,
    jitter: float | None = None,
    standardize: bool = True,
) -> Estimate:
    r"""Differential entropy :math:`h(P) = -E_P[\log p(X)]` from samples of P (Kozachenko–Leonenko).

    With :math:`\varepsilon_i` the distance from :math:`x_i` to its k-th nearest
    neighbour among the other :math:`n - 1` points, :math:`d` the dimension and
    :math:`V_d` the volume of the unit ball of the metric
    (:math:`\pi^{d/2}/\Gamma(d/2 + 1)` Euclidean, :math:`2^d` Chebyshev):

    .. math::

        \hat h = \psi(n) - \psi(k) + \log V_d + \frac{d}{n} \sum_{i=1}^n \log \varepsilon_i .

    The standard error is :math:`d \cdot \mathrm{sd}(\log \varepsilon_i)/\sqrt n`, treating
    the per-point terms as independent (they are, asymptotically).

    With ``standardize=True`` (default) the samples are first whitened,
    :math:`z = L^{-1}(x - \bar x)` with :math:`LL^\top` the sample covariance, and
    :math:`\hat h(x) = \hat h(z) + \log|\det L|`. This makes the estimate affine
    invariant and removes the large bias of k-NN balls on anisotropic data
    (d = 10, n = 10 000, axis scales 0.5 to 2: error +0.17 nats raw, −0.02 whitened).

    **Ties** (rounded data) are de-quantised by default: in every coordinate where two
    samples share a value, uniform noise :math:`U(-w/2, w/2)` is added, ``w`` that
    coordinate's grid step (its smallest positive gap between distinct values: 0.01
    for data rounded to 2 decimals), so each value becomes a point drawn from its
    rounding cell and the estimate is the entropy of the de-quantised data (for a
    fine grid, that of the data before rounding). Coordinates without ties are not
    touched; the noise is seeded (``seed``, 0 when None), and the method of the
    result then ends in "ties jittered". ``jitter=w`` sets the width for every
    coordinate instead; ``jitter=0`` adds no noise, and then duplicate points
    (a zero :math:`\varepsilon_i`, an estimate of :math:`-\infty`) raise.

    Parameters
    ----------
    x : array_like or torch.Tensor, shape (n,) or (n, d)
        Samples of P, one per row.
    k : int, default 3
        Neighbour order, ``1 <= k < n``. Larger k: lower variance, more bias in high d.
    metric : {'euclidean', 'chebyshev'}, default 'euclidean'
        Distance; Chebyshev (max-norm) is faster in high dimension.
    base : float, optional
        None for nats (default), 2 for bits.
    bootstrap : int, optional
        Number of bootstrap resamples of the per-point terms for a percentile
        confidence interval (neighbour distances are computed once, on the full
        sample, so resampling creates no duplicates). None: no interval.
    confidence : float, default 0.95
        Coverage of the interval.
    seed : int, optional
        Seed for the bootstrap and the jitter; None: 0 (one input, one answer).
    jitter : float, optional
        None (default): de-quantise tied coordinates (see ties above); a width ``w > 0``:
        uniform noise of that width on every coordinate; 0: no noise.
    standardize : bool, default True
        Whiten the samples first (see above); needs a non-singular sample covariance.

    Returns
    -------
    Estimate
        numpy float64 (a 0-d torch tensor on the input's device for torch input);
        ``confidence_interval`` set when ``bootstrap`` is given.

    Raises
    ------
    ValueError
        Non-finite samples, ``n <= k``, duplicate points with ``jitter=0``, a bad ``k``, ``metric``,
        ``bootstrap``, ``confidence``, ``jitter`` or ``base``.

    References
    ----------
    L. F. Kozachenko and N. N. Leonenko, "Sample estimate of the entropy of a random vector",
    Probl. Inf. Transm. 23, 1987. A. Kraskov, H. Stögbauer and P. Grassberger, "Estimating
    mutual information", Phys. Rev. E 69, 2004 (eq. 20).

    Examples
    --------
    >>> import numpy as np
    >>> from klkit.estimators import knn_entropy
    >>> x = np.random.default_rng(0).normal(size=(10_000, 2))
    >>> e = knn_entropy(x)  # truth: log(2 pi e) = 2.8379 nats
    >>> bool(abs(e.value - np.log(2 * np.pi * np.e)) < 4 * e.standard_error)
    True
    """
    base = check_base(base)
    k = check_k(k, "k")
    p_norm = check_metric(metric)
    if bootstrap is not None:
        check_bootstrap(bootstrap, confidence)
    rng = np.random.default_rng(0 if seed is None else seed)
    xs, like = real_samples(x, "x")
    (xs,), tied = jittered([xs], jitter, rng)
    n, d = xs.shape
    check_size(n, k, "x", "k")
    log_det = 0.0
    if standardize:
        xs, log_det = whiten(xs, "x")
    rho = _self_distances(xs, k, p_norm, "x")
    terms = d * np.log(rho)
    const = special.digamma(n) - special.digamma(k) + _log_unit_ball(d, metric) + log_det
    return estimate_from_terms(
        terms,
        const,
        n,
        base,
        _label(f"kNN Kozachenko-Leonenko entropy, k={k}, {metric}", tied, jitter),
        bootstrap,
        confidence,
        rng,
        like,
    )


def knn_kl_divergence(
    x: Any,
    y: Any,
    /,
    *,
    k: int = 3,
    metric: Metric = "euclidean",
    method: KLMethod = "fixed",
    base: float | None = None,
    bootstrap: int | None = None,
    confidence: float = 0.95,
    seed: int | None = None,
    jitter: float | None = None,
) -> Estimate:
    r"""KL(P‖Q) = :math:`E_P[\log p(X) - \log q(X)]` from samples x ~ P and y ~ Q (Wang–Kulkarni–Verdú).

    For each :math:`x_i` let :math:`\rho_k(i)` be the distance to its k-th nearest
    neighbour among the other x's and :math:`\nu_k(i)` the distance to its k-th
    nearest neighbour among the y's; n and m are the sample sizes.

    - ``method="fixed"`` (default), WKV eq. (5):
      :math:`\hat D = \frac{d}{n}\sum_i \log\frac{\nu_k(i)}{\rho_k(i)} + \log\frac{m}{n-1}`.
    - ``method="adaptive"``, WKV's form with point-dependent neighbour orders
      :math:`k_i, l_i`,
      :math:`\hat D = \frac1n \sum_i \big[\psi(k_i) - \psi(l_i) + d \log\frac{\nu_{l_i}(i)}{\rho_{k_i}(i)}\big]
      + \log\frac{m}{n-1}`, with both balls of the same radius
      :math:`\varepsilon_i = \max(\rho_k(i), \nu_k(i))`: the sample that sets
      :math:`\varepsilon_i` has exactly k points inside and the other :math:`c_i \ge k`.
      The counted side's last distance is replaced by its expectation for
      :math:`c_i` points uniform in the ball, :math:`d\,E\log r_{(c)} = d\log\varepsilon - 1/c`,
      which gives :math:`\hat D_i = \psi(k) - \psi(c_i + 1)` when the x-ball is larger
      and :math:`\psi(c_i + 1) - \psi(k)` otherwise, plus :math:`\log\frac{m}{n-1}`.
    - ``method="gaussian_guided"``: a semi-parametric bias reduction. Both samples
      are first mapped by the affine map that sends the Gaussian fit of y to
      :math:`\tilde q = N(0, I)` (KL is invariant), then q's k-NN density at
      :math:`x_i` is estimated as :math:`\tilde q(x_i)\,(k/m)/\tilde Q(B(x_i, \nu_k))`
      (with :math:`\psi(k)` for :math:`\log k`), i.e. the ball's Lebesgue volume is
      replaced by its :math:`\tilde q`-mass relative to its centre (non-central
      :math:`\chi^2` CDF for Euclidean balls, a product of normal CDFs for
      Chebyshev boxes). It is exact in the limit of small balls like the others,
      and removes most of the bias when q is close to Gaussian, where the flat-ball
      estimators are badly biased in high dimension (x falls in q's tail, where q
      varies across the large ball). It can be worse when q is far from Gaussian
      (heavier tails).

    Measured bias at n = m = 10 000, k = 3, Euclidean (one draw; p = N(0, I);
    truth in parentheses), fixed / adaptive / gaussian_guided:

    ===========================  =========================  ==========================
    case                         d = 3                      d = 10
    ===========================  =========================  ==========================
    q = N(0.57·1, I)             −0.059 / −0.037 / −0.019    −0.35 / −0.41 / +0.07
    q = N(0, 0.7² I)             −0.199 / −0.169 / −0.016    −1.74 / −1.73 / +0.02
    p, q Laplace, q scale 0.7    −0.054 / −0.046 / +0.208    −0.83 /   —   / +1.16
    ===========================  =========================  ==========================

    Ties are de-quantised as in :func:`knn_entropy`, each sample with its own grid
    step (x and y may be rounded differently), or the pooled one in a coordinate where
    only values of x equal values of y. With ``jitter=0``,
    duplicates among the x's raise, and an x equal to a y is allowed only for
    ``method="adaptive"`` (the other forms would take the log of 0 and raise). The
    standard error treats the per-point terms as independent.

    Parameters
    ----------
    x : array_like or torch.Tensor, shape (n,) or (n, d)
        Samples of P.
    y : array_like or torch.Tensor, shape (m,) or (m, d)
        Samples of Q, same dimension.
    k : int, default 3
        Neighbour order, ``k < n`` and ``k <= m``.
    metric : {'euclidean', 'chebyshev'}, default 'euclidean'
    method : {'fixed', 'adaptive', 'gaussian_guided'}, default 'fixed'
    base, bootstrap, confidence, seed, jitter
        As in :func:`knn_entropy` (the jitter is applied to both samples).

    Returns
    -------
    Estimate
        ``n_samples`` is n.

    Raises
    ------
    ValueError
        As in :func:`knn_entropy`, plus different dimensions, ``m < k`` or an
        unknown ``method``.

    References
    ----------
    Q. Wang, S. R. Kulkarni and S. Verdú, "Divergence estimation for multidimensional densities
    via k-nearest-neighbor distances", IEEE Trans. Inf. Theory 55(5), 2009 (eq. 5 and the
    adaptive estimator of Sec. III-B).

    Examples
    --------
    >>> import numpy as np
    >>> from klkit.estimators import knn_kl_divergence
    >>> rng = np.random.default_rng(0)
    >>> x, y = rng.normal(0, 1, (5000, 1)), rng.normal(1, 1, (5000, 1))
    >>> e = knn_kl_divergence(x, y)  # truth: 0.5
    >>> bool(abs(e.value - 0.5) < 4 * e.standard_error)
    True
    """
    base = check_base(base)
    k = check_k(k, "k")
    p_norm = check_metric(metric)
    if method not in _KL_METHODS:
        raise InvalidArgumentError(
            f"`method` must be one of 'fixed', 'adaptive' or 'gaussian_guided'; found {method!r}. "
            "'fixed' is the classic WKV estimator."
        )
    if bootstrap is not None:
        check_bootstrap(bootstrap, confidence)
    rng = np.random.default_rng(0 if seed is None else seed)
    xs, like = real_samples(x, "x")
    ys, like_y = real_samples(y, "y")
    if (like is None) != (like_y is None):
        from klkit.errors import BackendMismatchError

        raise BackendMismatchError("`x` and `y` mix torch tensors with other arrays; convert one of them first.")
    if xs.shape[1] != ys.shape[1]:
        raise ShapeError(
            f"`x` and `y` must have the same dimension (columns); found {xs.shape[1]} and {ys.shape[1]}. "
            "Both samples must live in the same space."
        )
    (xs, ys), tied = jittered([xs, ys], jitter, rng)
    n, d = xs.shape
    m = ys.shape[0]
    check_size(n, k, "x", "k")
    if m < k:
        raise ShapeError(f"`y` must hold at least k={k} samples; found {m}. Draw more samples of Q or lower `k`.")
    if method == "gaussian_guided":
        xs, ys = whiten_by(ys, xs, "y")
    within, across = self_and_cross_distances(xs, ys, k, p_norm)
    rho, nu = _distinct(within, "x"), across[:, 1]
    const = math.log(m / (n - 1))
    if method != "adaptive" and np.any(nu == 0):
        raise InvalidDistributionError(
            f"`x` and `y` share points: {int(np.sum(nu == 0))} x's have their k-th y-neighbour at distance 0, "
            "so log(nu/rho) = -inf. Use method='adaptive', remove the shared points, or leave `jitter` at its default."
        )
    if method == "fixed":
        terms = d * (np.log(nu) - np.log(rho))
        label = f"kNN WKV KL, k={k}, {metric}"
    elif method == "adaptive":
        terms = _adaptive_terms(xs, ys, rho, nu, k, p_norm)
        label = f"kNN WKV adaptive KL, k={k}, {metric}"
    else:
        terms = _guided_terms(xs, rho, nu, metric)
        label = f"kNN Gaussian-guided KL, k={k}, {metric}"
    return estimate_from_terms(terms, const, n, base, _label(label, tied, jitter), bootstrap, confidence, rng, like)


# ---------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------


def _label(method: str, tied: bool, jitter: float | None) -> str:
    """The method's name, marked when ties were de-quantised by default."""
    return f"{method}, ties jittered" if tied and jitter is None else method


def _adaptive_terms(
    xs: np.ndarray, ys: np.ndarray, rho: np.ndarray, nu: np.ndarray, k: int, p_norm: float
) -> np.ndarray:
    """Per-point ψ(k_i) − ψ(l_i) terms of the adaptive WKV estimator (see knn_kl_divergence)."""
    tree_x, tree_y = cKDTree(xs), cKDTree(ys)
    terms = np.empty_like(rho)
    x_sets = rho >= nu  # the x-ball (radius rho_k) is the larger: count y's inside it
    if np.any(x_sets):
        c = tree_y.query_ball_point(xs[x_sets], r=rho[x_sets], p=p_norm, return_length=True, workers=workers())
        terms[x_sets] = special.digamma(k) - special.digamma(np.maximum(c, k) + 1)
    y_sets = ~x_sets
    if np.any(y_sets):
        c = tree_x.query_ball_point(xs[y_sets], r=nu[y_sets], p=p_norm, return_length=True, workers=workers()) - 1
        terms[y_sets] = special.digamma(np.maximum(c, k) + 1) - special.digamma(k)
    return terms


def _guided_terms(zx: np.ndarray, rho: np.ndarray, nu: np.ndarray, metric: str) -> np.ndarray:
    """Per-point log p̂ − log q̂ (without log(m/(n−1))) with q's k-NN density guided by q̃ = N(0, I).

    log q̂(z) = log φ(z) + ψ(k) − log m − log Q̃(B(z, ν)) replaces the flat-ball
    ψ(k) − log m − log(V ν^d); where Q̃(B) underflows the flat ball is used.
    """
    d = zx.shape[1]
    log_v = _log_unit_ball(d, metric)
    sq = np.einsum("ij,ij->i", zx, zx)
    with np.errstate(divide="ignore"):
        if metric == "euclidean":
            log_ball = np.log(special.chndtr(nu * nu, d, sq))
        else:
            mass = special.ndtr(zx + nu[:, None]) - special.ndtr(zx - nu[:, None])
            log_ball = np.log(mass).sum(axis=1)
    log_phi = -0.5 * sq - 0.5 * d * math.log(2 * math.pi)
    flat = log_v + d * np.log(nu)
    guided = np.isfinite(log_ball) & (log_ball < 0)
    log_q_volume = np.where(guided, log_ball - log_phi, flat)  # "volume" of the ball relative to its centre
    return log_q_volume - (log_v + d * np.log(rho))


def _self_distances(xs: np.ndarray, k: int, p_norm: float, name: str) -> np.ndarray:
    """Distance from each point to its k-th nearest other point; raises on duplicates."""
    return _distinct(kth_distances(xs, xs, k, p_norm, self_query=True), name)


def _distinct(found: np.ndarray, name: str) -> np.ndarray:
    """The k-th distances (second column) after checking that no nearest distance (first column) is 0."""
    if np.any(found[:, 0] == 0):
        dup = int(np.sum(found[:, 0] == 0))
        raise InvalidDistributionError(
            f"`{name}` must hold distinct points for a k-NN estimate; found {dup} point(s) with an exact duplicate "
            "(a zero neighbour distance would make the estimate -inf). Duplicates mean the data are (partly) "
            "discrete: use discrete_entropy, or if they come from rounding leave `jitter` at its default (None)."
        )
    return np.ascontiguousarray(found[:, 1])


def _log_unit_ball(d: int, metric: str) -> float:
    if metric == "chebyshev":
        return d * math.log(2.0)
    return 0.5 * d * math.log(math.pi) - math.lgamma(0.5 * d + 1.0)
