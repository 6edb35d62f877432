r"""Closed forms of the Rényi divergence, numpy and torch.

Registered with :func:`~klkit.distributions.registry.register_divergence` on the family
records, so one formula serves ``torch.distributions`` and frozen ``scipy.stats`` objects.
Rényi divergence :math:`D_\alpha(p\|q) = \frac{1}{\alpha-1}\log\int p^\alpha q^{1-\alpha}`
[1]_ [2]_ (α ≥ 0, α ≠ 1; α = 1 is KL and is answered by the KL registry, not here): Normal,
LogNormal, HalfNormal, (low-rank) multivariate Normal, Exponential, Gamma (and Chi2),
InverseGamma, Exponential ↔ Gamma, Independent; Bernoulli and Categorical through
:func:`klkit.renyi_divergence` on the log-probabilities. For α > 1 the
integral diverges where :math:`\alpha\Sigma_q + (1-\alpha)\Sigma_p`, :math:`\alpha\lambda_p +
(1-\alpha)\lambda_q` or the Gamma's :math:`\alpha a_p + (1-\alpha) a_q` is not positive: +inf.
The Hellinger distance follows from the order ½ (:func:`hellinger_from_renyi`); the total
variation, the other Hellinger forms and Jensen–Shannon are in
:mod:`klkit.distributions.distance_forms`, registered by the import below.

Where p and q can come close, the first-order terms are cancelled analytically (``log1pmx``,
``expm1mx`` and the Bregman divergence of lgamma from :mod:`klkit.distributions._ops`), as in
the KL table; the multivariate Normal's log-determinants are not regrouped.

References
----------
.. [1] M. Gil, F. Alajaji and T. Linder, "Rényi divergence measures for commonly used univariate
       continuous distributions", Information Sciences 249, 2013.
.. [2] T. van Erven and P. Harremoës, "Rényi divergence and Kullback–Leibler divergence",
       IEEE Trans. Inf. Theory 60(7), 2014.
"""

from __future__ import annotations

from typing import Any

from klkit.distributions import families as fam
from klkit.distributions._ops import INF, sum_rightmost
from klkit.distributions._precise import lgamma_bregman, log1pmx
from klkit.distributions.distance_forms import _log_probs_of  # also registers the TV, Hellinger and JS forms
from klkit.distributions.entropy_forms import _eye, low_rank_as_full
from klkit.distributions.registry import lookup_divergence, register_divergence
from klkit.errors import NotRegisteredError

__all__ = ["hellinger_from_renyi", "renyi_of"]

RENYI = "renyi_divergence"


def renyi_of(p: Any, q: Any, alpha: float) -> Any:
    r"""The registered Rényi divergence :math:`D_\alpha(p\|q) = \frac{1}{\alpha-1}\log\int p^\alpha q^{1-\alpha}` of
    two family records, for composite forms (such as Independent) built on their parts' forms.

    Parameters
    ----------
    p, q : klkit.distributions.families.Family
        Family records (:func:`klkit.distributions.adapters.to_family` of a distribution object).
    alpha : float
        The order, ≥ 0 and ≠ 1 (order 1 is KL, in the KL registry).

    Returns
    -------
    ndarray or torch.Tensor
        The divergence with the records' batch shape.

    Raises
    ------
    NotRegisteredError
        No Rényi divergence is registered for the pair of record types (the message names the fix).

    References
    ----------
    .. [1] M. Gil, F. Alajaji and T. Linder, "Rényi divergence measures for commonly used univariate continuous
           distributions", Information Sciences 249, 2013.

    Examples
    --------
    >>> from scipy import stats
    >>> from klkit.distributions.adapters import to_family
    >>> float(renyi_of(to_family(stats.norm(0, 1)), to_family(stats.norm(1, 1)), 2.0))  # α Δμ² / 2
    1.0
    """
    function = lookup_divergence(RENYI, type(p), type(q))
    if function is None:
        raise NotRegisteredError(
            f"no closed-form Rényi divergence is registered for ({type(p).__name__}, {type(q).__name__}); add one "
            f"with register_divergence('renyi_divergence', {type(p).__name__}, {type(q).__name__}), or use "
            "method='mc' for a Monte Carlo estimate."
        )
    return function(p, q, alpha)


def hellinger_from_renyi(xp: Any, renyi_half: Any) -> Any:
    r"""Hellinger distance :math:`H = \sqrt{1 - BC}` from the Rényi divergence of order ½, :math:`BC = \int\sqrt{pq}
    = e^{-D_{1/2}/2}`, computed as ``sqrt(-expm1(-D/2))`` (no cancellation when D is small).

    Parameters
    ----------
    xp : array namespace
        The namespace of ``renyi_half`` (:func:`klkit._engine.arrays.namespace`).
    renyi_half : array
        :math:`D_{1/2}(p\|q) \ge 0` in nats (+inf gives H = 1).

    Returns
    -------
    array
        H in [0, 1], element-wise.

    References
    ----------
    .. [1] T. van Erven and P. Harremoës, "Rényi divergence and Kullback–Leibler divergence", 2014.

    Examples
    --------
    >>> import math
    >>> from klkit._engine import NUMPY
    >>> round(float(hellinger_from_renyi(NUMPY, 2 * math.log(2))), 6)  # BC = ½: H = √½
    0.707107
    """
    return xp.sqrt(-xp.expm1(-0.5 * renyi_half))


# ===================================================================================================
# Rényi divergence
# ===================================================================================================
def _scale_part(xp: Any, u: Any, alpha: float) -> Any:
    r"""The shape of the Normal variance and Exponential rate terms, u the relative change, v = (1 − α)u.

    :math:`\frac{\mathrm{log1pmx}(v)}{1-\alpha} - \mathrm{log1pmx}(u)` where :math:`1 + v > 0`, +inf
    elsewhere (the integral diverges); O(u²), no first-order cancellation.
    """
    v = (1.0 - alpha) * u
    ok = v > -1.0
    v_safe = xp.where(ok, v, 0.0 * v)
    return xp.where(ok, log1pmx(xp, v_safe) / (1.0 - alpha) - log1pmx(xp, u), INF)


def _normal_renyi(xp: Any, loc_p: Any, scale_p: Any, loc_q: Any, scale_q: Any, alpha: float) -> Any:
    r"""D_α(N(μp, σp²) ‖ N(μq, σq²)) [1].

    With :math:`\sigma_\alpha^2 = \alpha\sigma_q^2 + (1-\alpha)\sigma_p^2 = \sigma_q^2(1 + v)`,
    :math:`u = \sigma_p^2/\sigma_q^2 - 1`, :math:`v = (1-\alpha)u`:

    .. math:: D_\alpha = \frac{\alpha(\mu_p-\mu_q)^2}{2\sigma_\alpha^2}
              + \tfrac12\Big[\frac{\mathrm{log1pmx}(v)}{1-\alpha} - \mathrm{log1pmx}(u)\Big],

    the textbook :math:`\log\frac{\sigma_q}{\sigma_p} + \frac{1}{2(\alpha-1)}\log\frac{\sigma_q^2}{\sigma_\alpha^2}
    + \dots` with its first-order terms cancelled; +inf where :math:`\sigma_\alpha^2 \le 0` (α > 1).
    """
    u = xp.expm1(2.0 * (xp.log(scale_p) - xp.log(scale_q)))
    v = (1.0 - alpha) * u
    one_plus_v = xp.where(v > -1.0, 1.0 + v, 1.0 + 0.0 * v)
    z = (loc_p - loc_q) / scale_q
    return 0.5 * alpha * z * z / one_plus_v + 0.5 * _scale_part(xp, u, alpha)


@register_divergence(RENYI, fam.Normal, fam.Normal)
def _renyi_normal_normal(p: fam.Normal, q: fam.Normal, alpha: float) -> Any:
    return _normal_renyi(p.xp, p.loc, p.scale, q.loc, q.scale, alpha)


@register_divergence(RENYI, fam.LogNormal, fam.LogNormal)
def _renyi_lognormal_lognormal(p: fam.LogNormal, q: fam.LogNormal, alpha: float) -> Any:
    """Invariant under the bijection log: the Normal formula on (μ, σ)."""
    return _normal_renyi(p.xp, p.loc, p.scale, q.loc, q.scale, alpha)


@register_divergence(RENYI, fam.HalfNormal, fam.HalfNormal)
def _renyi_halfnormal_halfnormal(p: fam.HalfNormal, q: fam.HalfNormal, alpha: float) -> Any:
    """The Normal formula with both locations 0 (the integrand is even)."""
    return _normal_renyi(p.xp, 0.0, p.scale, 0.0, q.scale, alpha)


@register_divergence(RENYI, fam.Exponential, fam.Exponential)
def _renyi_exponential_exponential(p: fam.Exponential, q: fam.Exponential, alpha: float) -> Any:
    r"""D_α = log(λp^α λq^(1−α) / λ_α) / (α − 1), λ_α = αλp + (1−α)λq, regrouped [1].

    :math:`\frac{\mathrm{log1pmx}(v)}{1-\alpha} - \mathrm{log1pmx}(u)` with u = λq/λp − 1; +inf where
    :math:`\lambda_\alpha \le 0`.
    """
    xp = p.xp
    return _scale_part(xp, (q.rate - p.rate) / p.rate, alpha)


def _gamma_renyi(xp: Any, a_p: Any, b_p: Any, a_q: Any, b_q: Any, alpha: float) -> Any:
    r"""D_α(Gamma(a_p, b_p) ‖ Gamma(a_q, b_q)) (shape, rate) [1].

    :math:`\log\int p^\alpha q^{1-\alpha} = \alpha a_p\log b_p + (1-\alpha)a_q\log b_q - a_\alpha\log b_\alpha
    + \log\Gamma(a_\alpha) - \alpha\log\Gamma(a_p) - (1-\alpha)\log\Gamma(a_q)` with
    :math:`a_\alpha = \alpha a_p + (1-\alpha)a_q`, :math:`b_\alpha = \alpha b_p + (1-\alpha)b_q`, regrouped as
    :math:`B(a_p, a_\alpha) - (1-\alpha)B(a_p, a_q) + \alpha(1-\alpha)u\delta + (1-\alpha)a_q\,\mathrm{log1pmx}(u)
    - a_\alpha\,\mathrm{log1pmx}(v)` (B the Bregman divergence of lgamma, δ = a_q − a_p, u = b_q/b_p − 1,
    v = (1 − α)u): every term O(distance²). +inf where :math:`a_\alpha \le 0` or :math:`b_\alpha \le 0`.
    """
    delta = a_q - a_p
    u = (b_q - b_p) / b_p
    v = (1.0 - alpha) * u
    a_alpha = a_p + (1.0 - alpha) * delta
    ok = (a_alpha > 0) & (v > -1.0)
    a_safe = xp.where(ok, a_alpha, a_p)
    v_safe = xp.where(ok, v, 0.0 * v)
    log_integral = (
        lgamma_bregman(xp, a_p, a_safe, xp.where(ok, (1.0 - alpha) * delta, 0.0 * delta))
        - (1.0 - alpha) * lgamma_bregman(xp, a_p, a_q, delta)
        + alpha * (1.0 - alpha) * u * delta
        + (1.0 - alpha) * a_q * log1pmx(xp, u)
        - a_safe * log1pmx(xp, v_safe)
    )
    return xp.where(ok, log_integral / (alpha - 1.0), INF)


def _as_gamma(x: Any) -> fam.Gamma:
    return x if isinstance(x, fam.Gamma) else fam.Gamma(x.xp, 1.0 + 0.0 * x.rate, x.rate)


@register_divergence(RENYI, fam.Gamma, fam.Gamma)
@register_divergence(RENYI, fam.Exponential, fam.Gamma)
@register_divergence(RENYI, fam.Gamma, fam.Exponential)
def _renyi_gamma_gamma(p: Any, q: Any, alpha: float) -> Any:
    """Gamma (and Chi2) pairs; an Exponential is Gamma(1, rate)."""
    p, q = _as_gamma(p), _as_gamma(q)
    return _gamma_renyi(p.xp, p.concentration, p.rate, q.concentration, q.rate, alpha)


@register_divergence(RENYI, fam.InverseGamma, fam.InverseGamma)
def _renyi_inversegamma_inversegamma(p: fam.InverseGamma, q: fam.InverseGamma, alpha: float) -> Any:
    """1/X maps InverseGamma(a, b) to Gamma(a, b); the divergence is invariant under that bijection."""
    return _gamma_renyi(p.xp, p.concentration, p.rate, q.concentration, q.rate, alpha)


def _min_eigenvalue(xp: Any, a: Any) -> Any:
    """Smallest eigenvalue of symmetric matrices (detached: it only decides where the answer is +inf)."""
    if xp.name == "torch":
        return xp.torch.linalg.eigvalsh(a.detach())[..., 0]
    import numpy as np

    return np.linalg.eigvalsh(a)[..., 0]


def _mvn_renyi(p: fam.MultivariateNormal, q: fam.MultivariateNormal, alpha: float) -> Any:
    r"""D_α between multivariate Normals [1], in the coordinates where q's covariance is the identity.

    With :math:`B = L_q^{-1}L_p` (so :math:`M = BB^\top` is p's whitened covariance),
    :math:`A = \alpha I + (1-\alpha)M` (the whitened :math:`\Sigma_\alpha = \alpha\Sigma_q + (1-\alpha)\Sigma_p`)
    and :math:`z = L_q^{-1}(\mu_p - \mu_q)`:

    .. math:: D_\alpha = \tfrac{\alpha}{2} z^\top A^{-1} z - \frac{\log|A| - (1-\alpha)\log|M|}{2(\alpha-1)},

    +inf where :math:`\Sigma_\alpha` is not positive definite (possible only for α > 1).
    """
    xp = p.xp
    d = p.loc.shape[-1]
    if q.loc.shape[-1] != d:
        raise ValueError(f"`p` and `q` must have the same dimension; found {d} and {q.loc.shape[-1]}.")
    b = xp.solve_lower(q.scale_tril, p.scale_tril)
    eye = xp.asarray(_eye(d, b))
    a = alpha * eye + (1.0 - alpha) * (b @ xp.transpose(b))
    ok = _min_eigenvalue(xp, a) > 0
    a_safe = xp.where(ok[..., None, None], a, eye + 0.0 * a)
    chol = xp.cholesky(a_safe)
    z = xp.solve_lower(q.scale_tril, (p.loc - q.loc)[..., None])
    maha = xp.sum(xp.sum(xp.solve_lower(chol, z) ** 2))
    log_det_a = 2.0 * xp.sum(xp.log(xp.diagonal(chol)))
    log_det_m = 2.0 * xp.sum(xp.log(xp.abs(xp.diagonal(b))))
    value = 0.5 * alpha * maha - (log_det_a - (1.0 - alpha) * log_det_m) / (2.0 * (alpha - 1.0))
    return xp.where(ok, value, INF)


def _as_full(x: Any) -> fam.MultivariateNormal:
    return low_rank_as_full(x) if isinstance(x, fam.LowRankMultivariateNormal) else x


@register_divergence(RENYI, fam.MultivariateNormal, fam.MultivariateNormal)
@register_divergence(RENYI, fam.MultivariateNormal, fam.LowRankMultivariateNormal)
@register_divergence(RENYI, fam.LowRankMultivariateNormal, fam.MultivariateNormal)
@register_divergence(RENYI, fam.LowRankMultivariateNormal, fam.LowRankMultivariateNormal)
def _renyi_mvn_mvn(p: Any, q: Any, alpha: float) -> Any:
    """Full or low-rank-plus-diagonal covariances (the latter factorised exactly)."""
    return _mvn_renyi(_as_full(p), _as_full(q), alpha)


@register_divergence(RENYI, fam.Categorical, fam.Categorical)
@register_divergence(RENYI, fam.Bernoulli, fam.Bernoulli)
def _renyi_discrete(p: Any, q: Any, alpha: float) -> Any:
    r""":func:`klkit.renyi_divergence` on the log-probabilities (a Bernoulli's two outcomes):
    :math:`\frac{1}{\alpha-1}\log\sum_i p_i^\alpha q_i^{1-\alpha}`."""
    from klkit.renyi import renyi_divergence

    return renyi_divergence(_log_probs_of(p), _log_probs_of(q), alpha, kind="log_probs", validate=False)


@register_divergence(RENYI, fam.Independent, fam.Independent)
def _renyi_independent_independent(p: fam.Independent, q: fam.Independent, alpha: float) -> Any:
    """The integral of a product factorises: the sum over the reinterpreted axes of the base divergence."""
    if p.ndims != q.ndims:
        raise ValueError(
            f"`p` and `q` must reinterpret the same number of batch axes as event axes; found "
            f"{p.ndims} and {q.ndims}. Build both with the same reinterpreted_batch_ndims."
        )
    return sum_rightmost(p.xp, renyi_of(p.base, q.base, alpha), p.ndims)
