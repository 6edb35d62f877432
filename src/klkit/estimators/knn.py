r"""k-nearest-neighbour estimates of differential entropy and KL divergence from continuous samples.

Neighbours come from :class:`scipy.spatial.cKDTree` with all cores
(``workers=-1``), or from a fused brute-force kernel (numba, all cores) in
dimension >= 8 for up to 3e9 pairs, where k-d trees barely prune
(:mod:`klkit.estimators._neighbours`).
"""

from __future__ import annotations

import math
import numbers
from typing import Any, Literal

import numpy as np
from scipy import special
from scipy.spatial import cKDTree

from klkit._validation import check_base
from klkit._xp import is_torch_array, log_of_base
from klkit.errors import InvalidArgumentError, InvalidDistributionError, ShapeError
from klkit.estimate import Estimate
from klkit.estimators._neighbours import kth_distances, self_and_cross_distances

__all__ = ["knn_entropy", "knn_kl_divergence"]

Metric = Literal["euclidean", "chebyshev"]
KLMethod = Literal["fixed", "adaptive", "gaussian_guided"]
_KL_METHODS = ("fixed", "adaptive", "gaussian_guided")
_METRICS = {"euclidean": 2.0, "chebyshev": math.inf}


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

    **Duplicate points** make some :math:`\varepsilon_i` zero and the estimate
    :math:`-\infty`: the data are then (partly) discrete and have no differential
    entropy. klkit raises instead of returning ``-inf`` or a huge negative number.
    If the duplicates come from rounding, pass ``jitter=w`` to add uniform noise
    :math:`U(-w/2, w/2)` to every coordinate (``w`` the rounding step); the result is
    then the entropy of the de-quantised data.

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
        Seed for the bootstrap and the jitter.
    jitter : float, optional
        Width of uniform noise added before the search (see duplicates above).
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
        Non-finite samples, ``n <= k``, duplicate points, a bad ``k``, ``metric``,
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
    k = _check_k(k, "k")
    p_norm = _check_metric(metric)
    if bootstrap is not None:
        _check_bootstrap(bootstrap, confidence)
    rng = np.random.default_rng(seed) if (bootstrap is not None or jitter is not None) else None
    xs, like = _samples(x, "x")
    xs = _jittered(xs, jitter, rng)
    n, d = xs.shape
    _check_size(n, k, "x", "k")
    log_det = 0.0
    if standardize:
        xs, log_det = _whiten(xs, "x")
    rho = _self_distances(xs, k, p_norm, "x")
    terms = d * np.log(rho)
    const = special.digamma(n) - special.digamma(k) + _log_unit_ball(d, metric) + log_det
    return _result(
        terms, const, n, base, f"kNN Kozachenko-Leonenko entropy, k={k}, {metric}", bootstrap, confidence, rng, like
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

    Duplicates among the x's raise (see :func:`knn_entropy`); an x equal to a y
    is allowed only for ``method="adaptive"`` (the other forms would take the log
    of 0 and raise). The standard error treats the per-point terms as independent.

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
        As in :func:`knn_entropy` (``jitter`` is applied to both samples).

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
    k = _check_k(k, "k")
    p_norm = _check_metric(metric)
    if method not in _KL_METHODS:
        raise InvalidArgumentError(
            f"`method` must be one of 'fixed', 'adaptive' or 'gaussian_guided'; found {method!r}. "
            "'fixed' is the classic WKV estimator."
        )
    if bootstrap is not None:
        _check_bootstrap(bootstrap, confidence)
    rng = np.random.default_rng(seed) if (bootstrap is not None or jitter is not None) else None
    xs, like = _samples(x, "x")
    ys, like_y = _samples(y, "y")
    if (like is None) != (like_y is None):
        from klkit.errors import BackendMismatchError

        raise BackendMismatchError("`x` and `y` mix torch tensors with other arrays; convert one of them first.")
    if xs.shape[1] != ys.shape[1]:
        raise ShapeError(
            f"`x` and `y` must have the same dimension (columns); found {xs.shape[1]} and {ys.shape[1]}. "
            "Both samples must live in the same space."
        )
    xs, ys = _jittered(xs, jitter, rng), _jittered(ys, jitter, rng)
    n, d = xs.shape
    m = ys.shape[0]
    _check_size(n, k, "x", "k")
    if m < k:
        raise ShapeError(f"`y` must hold at least k={k} samples; found {m}. Draw more samples of Q or lower `k`.")
    if method == "gaussian_guided":
        xs, ys = _whiten_by(ys, xs, "y")
    within, across = self_and_cross_distances(xs, ys, k, p_norm)
    rho, nu = _distinct(within, "x"), across[:, 1]
    const = math.log(m / (n - 1))
    if method != "adaptive" and np.any(nu == 0):
        raise InvalidDistributionError(
            f"`x` and `y` share points: {int(np.sum(nu == 0))} x's have their k-th y-neighbour at distance 0, "
            "so log(nu/rho) = -inf. Use method='adaptive', remove the shared points, or pass jitter=w."
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
    return _result(terms, const, n, base, label, bootstrap, confidence, rng, like)


# ---------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------


def _adaptive_terms(
    xs: np.ndarray, ys: np.ndarray, rho: np.ndarray, nu: np.ndarray, k: int, p_norm: float
) -> np.ndarray:
    """Per-point ψ(k_i) − ψ(l_i) terms of the adaptive WKV estimator (see knn_kl_divergence)."""
    tree_x, tree_y = cKDTree(xs), cKDTree(ys)
    terms = np.empty_like(rho)
    x_sets = rho >= nu  # the x-ball (radius rho_k) is the larger: count y's inside it
    if np.any(x_sets):
        c = tree_y.query_ball_point(xs[x_sets], r=rho[x_sets], p=p_norm, return_length=True, workers=-1)
        terms[x_sets] = special.digamma(k) - special.digamma(np.maximum(c, k) + 1)
    y_sets = ~x_sets
    if np.any(y_sets):
        c = tree_x.query_ball_point(xs[y_sets], r=nu[y_sets], p=p_norm, return_length=True, workers=-1) - 1
        terms[y_sets] = special.digamma(np.maximum(c, k) + 1) - special.digamma(k)
    return terms


def _whitening(ys: np.ndarray, name: str, fix: str) -> tuple[np.ndarray, np.ndarray, float]:
    """Mean, the matrix W with (y − mean) @ W white, and log|det L| (L the covariance's Cholesky factor)."""
    m, d = ys.shape
    mean = ys.mean(axis=0)
    cov = np.atleast_2d(np.cov(ys, rowvar=False))
    try:
        chol = np.linalg.cholesky(cov)
    except np.linalg.LinAlgError:
        chol = None
    if chol is None or not np.all(np.isfinite(chol)) or np.min(np.diag(chol)) <= 1e-6 * np.max(np.diag(chol)):
        raise InvalidDistributionError(
            f"`{name}` must have a positive-definite sample covariance to be whitened; found a singular one "
            f"({m} samples in d={d}: constant or collinear columns). Drop those columns, draw more samples, or {fix}."
        )
    return mean, np.linalg.inv(chol).T, float(np.sum(np.log(np.diag(chol))))


def _affine(xs: np.ndarray, mean: np.ndarray, w: np.ndarray) -> np.ndarray:
    """``(xs − mean) @ w`` without BLAS for small d: an (n, d) × (d, d) product is d² vector passes, and a
    threaded GEMM on a busy machine took 10× longer (0.11 s against 0.012 s for n = 1e5, d = 3)."""
    centred = xs - mean
    return np.einsum("ij,jk->ik", centred, w) if w.shape[0] <= 16 else centred @ w


def _whiten(xs: np.ndarray, name: str) -> tuple[np.ndarray, float]:
    mean, w, log_det = _whitening(xs, name, "pass standardize=False")
    return _affine(xs, mean, w), log_det


def _whiten_by(ys: np.ndarray, xs: np.ndarray, name: str) -> tuple[np.ndarray, np.ndarray]:
    """Both samples in the coordinates where the Gaussian fit of ``ys`` is N(0, I) (KL is invariant)."""
    mean, w, _ = _whitening(ys, name, "use method='fixed'")
    return _affine(xs, mean, w), _affine(ys, mean, w)


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


def _result(
    terms: np.ndarray,
    const: float,
    n: int,
    base: float | None,
    label: str,
    bootstrap: int | None,
    confidence: float,
    rng: np.random.Generator | None,
    like: Any,
) -> Estimate:
    scale = log_of_base(base)
    value = (const + float(terms.mean())) / scale
    se = float(terms.std(ddof=1)) / math.sqrt(n) / scale
    interval = None
    level = None
    if bootstrap is not None:
        b = _check_bootstrap(bootstrap, confidence)
        assert rng is not None
        means = np.empty(b)
        for j in range(b):
            means[j] = terms[rng.integers(0, n, n)].mean()
        alpha = (1.0 - confidence) / 2.0
        lo, hi = np.quantile(means, [alpha, 1.0 - alpha])
        interval = (_out((const + lo) / scale, like), _out((const + hi) / scale, like))
        level = float(confidence)
    return Estimate(_out(value, like), _out(se, like), n, label, interval, level)


def _out(v: float, like: Any) -> Any:
    if like is None:
        return np.float64(v)
    import torch

    return torch.tensor(v, dtype=like.dtype if like.is_floating_point() else torch.float64, device=like.device)


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
            "discrete: use discrete_entropy, or if they come from rounding pass jitter=<rounding step>."
        )
    return np.ascontiguousarray(found[:, 1])


def _samples(x: Any, name: str) -> tuple[np.ndarray, Any]:
    like = None
    if is_torch_array(x):
        like = x
        x = x.detach().cpu().numpy()
    arr = np.asarray(x)
    if arr.dtype.kind not in "biuf":
        raise InvalidDistributionError(
            f"`{name}` must hold real numbers; found dtype {arr.dtype}. Pass a numeric (n, d) array."
        )
    arr = arr.astype(np.float64, copy=False)
    if arr.ndim == 1:
        arr = arr[:, None]
    if arr.ndim != 2:
        raise ShapeError(
            f"`{name}` must have shape (n,) or (n, d), one sample per row; found {arr.shape}. Reshape to (n, -1)."
        )
    bad = ~np.isfinite(arr)
    if bad.any():
        row = int(np.nonzero(bad.any(axis=1))[0][0])
        raise InvalidDistributionError(
            f"`{name}` must hold finite numbers; found {int(bad.sum())} non-finite entr"
            f"{'y' if bad.sum() == 1 else 'ies'}, first in row {row}. Drop or impute those samples."
        )
    return arr, like


def _jittered(xs: np.ndarray, jitter: float | None, rng: np.random.Generator | None) -> np.ndarray:
    if jitter is None:
        return xs
    if isinstance(jitter, bool) or not isinstance(jitter, numbers.Real) or not (math.isfinite(jitter) and jitter > 0):
        raise InvalidArgumentError(
            f"`jitter` must be None or a finite width > 0; found {jitter!r}. Use the rounding step of the data."
        )
    assert rng is not None
    return xs + rng.uniform(-jitter / 2, jitter / 2, xs.shape)


def _check_k(k: Any, name: str) -> int:
    if isinstance(k, bool) or not isinstance(k, numbers.Integral) or k < 1:
        raise InvalidArgumentError(f"`{name}` must be an integer >= 1; found {k!r}. Typical values are 3 to 10.")
    return int(k)


def _check_size(n: int, k: int, name: str, k_name: str) -> None:
    if n <= k:
        raise ShapeError(
            f"`{name}` must hold more than {k_name}={k} samples; found {n}. Draw more samples or lower `{k_name}`."
        )


def _check_metric(metric: Any) -> float:
    if metric not in _METRICS:
        raise InvalidArgumentError(
            f"`metric` must be 'euclidean' or 'chebyshev'; found {metric!r}. Chebyshev (max-norm) is faster in "
            "high dimension."
        )
    return _METRICS[metric]


def _check_bootstrap(bootstrap: Any, confidence: Any) -> int:
    if isinstance(bootstrap, bool) or not isinstance(bootstrap, numbers.Integral) or bootstrap < 2:
        raise InvalidArgumentError(
            f"`bootstrap` must be None or an integer >= 2 (number of resamples); found {bootstrap!r}. Try 1000."
        )
    if isinstance(confidence, bool) or not isinstance(confidence, numbers.Real) or not 0 < confidence < 1:
        raise InvalidArgumentError(f"`confidence` must be in (0, 1); found {confidence!r}. Use 0.95 for 95%.")
    return int(bootstrap)


def _log_unit_ball(d: int, metric: str) -> float:
    if metric == "chebyshev":
        return d * math.log(2.0)
    return 0.5 * d * math.log(math.pi) - math.lgamma(0.5 * d + 1.0)
