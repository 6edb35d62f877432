r"""Closed forms of the Rényi divergence, total variation, Hellinger distance and JS divergence, numpy and torch.

Registered with :func:`~klkit.distributions.registry.register_divergence` on the family
records, so one formula serves ``torch.distributions`` and frozen ``scipy.stats`` objects.
With :math:`p_\alpha = p^\alpha q^{1-\alpha}`:

- Rényi divergence :math:`D_\alpha(p\|q) = \frac{1}{\alpha-1}\log\int p^\alpha q^{1-\alpha}`
  [1]_ [2]_ (α ≥ 0, α ≠ 1; α = 1 is KL and is answered by the KL registry, not here): Normal,
  LogNormal, HalfNormal, (low-rank) multivariate Normal, Exponential, Gamma (and Chi2),
  InverseGamma, Exponential ↔ Gamma, Independent; Bernoulli and Categorical through
  :func:`klkit.renyi_divergence` on the log-probabilities. For α > 1 the
  integral diverges where :math:`\alpha\Sigma_q + (1-\alpha)\Sigma_p`, :math:`\alpha\lambda_p +
  (1-\alpha)\lambda_q` or the Gamma's :math:`\alpha a_p + (1-\alpha) a_q` is not positive: +inf.
- Hellinger distance :math:`H = \sqrt{1 - \int\sqrt{pq}}` follows from the Rényi divergence of
  order ½ wherever that is registered, :math:`H^2 = -\mathrm{expm1}(-D_{1/2}/2)`; Uniform has
  its own, Bernoulli and Categorical go to :func:`klkit.hellinger_distance`.
- Total variation :math:`\sup_A |P(A) - Q(A)|`: Normal (any two: through the points where the
  densities cross), LogNormal, HalfNormal, multivariate Normals of equal covariance and
  Independent Normals of equal scales (:math:`2\Phi(\Delta/2) - 1`, Δ the Mahalanobis distance [3]_),
  Exponential, Uniform; Bernoulli and Categorical through :func:`klkit.total_variation`. A
  formula that covers only part of its types (equal covariances) raises
  :class:`~klkit.errors.NotRegisteredError` elsewhere, and the caller samples.
- Jensen–Shannon: Bernoulli and Categorical, through :func:`klkit.js_divergence` on the
  log-probabilities.

Where p and q can come close, the first-order terms are cancelled analytically (``log1pmx``,
``expm1mx`` and the Bregman divergence of lgamma from :mod:`klkit.distributions._ops`), as in
the KL table; the multivariate Normal's log-determinants are not regrouped.

References
----------
.. [1] M. Gil, F. Alajaji and T. Linder, "Rényi divergence measures for commonly used univariate
       continuous distributions", Information Sciences 249, 2013.
.. [2] T. van Erven and P. Harremoës, "Rényi divergence and Kullback–Leibler divergence",
       IEEE Trans. Inf. Theory 60(7), 2014.
.. [3] L. Devroye, A. Mehrabian and T. Reddad, "The total variation distance between
       high-dimensional Gaussians", 2018 (the equal-covariance case).
"""

from __future__ import annotations

import math
from typing import Any

from klkit.distributions import families as fam
from klkit.distributions._ops import INF, lgamma_bregman, log1pmx, sum_rightmost
from klkit.distributions.entropy_forms import _eye, low_rank_as_full
from klkit.distributions.registry import lookup_divergence, register_divergence
from klkit.errors import NotRegisteredError

__all__ = ["hellinger_from_renyi", "renyi_of"]

_SQRT2 = math.sqrt(2.0)
RENYI, TV, HELLINGER, JS = "renyi_divergence", "total_variation", "hellinger_distance", "js_divergence"


def renyi_of(p: Any, q: Any, alpha: float) -> Any:
    """The registered Rényi divergence of two family records (for composites such as Independent)."""
    function = lookup_divergence(RENYI, type(p), type(q))
    if function is None:
        raise NotRegisteredError(f"no closed-form Rényi divergence is registered for ({type(p).__name__}, "
                                 f"{type(q).__name__})")
    return function(p, q, alpha)


def hellinger_from_renyi(xp: Any, renyi_half: Any) -> Any:
    r""":math:`H = \sqrt{1 - BC}` with :math:`BC = \int\sqrt{pq} = e^{-D_{1/2}/2}`, as ``sqrt(-expm1(-D/2))``."""
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


def normal_renyi(xp: Any, loc_p: Any, scale_p: Any, loc_q: Any, scale_q: Any, alpha: float) -> Any:
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
    return normal_renyi(p.xp, p.loc, p.scale, q.loc, q.scale, alpha)


@register_divergence(RENYI, fam.LogNormal, fam.LogNormal)
def _renyi_lognormal_lognormal(p: fam.LogNormal, q: fam.LogNormal, alpha: float) -> Any:
    """Invariant under the bijection log: the Normal formula on (μ, σ)."""
    return normal_renyi(p.xp, p.loc, p.scale, q.loc, q.scale, alpha)


@register_divergence(RENYI, fam.HalfNormal, fam.HalfNormal)
def _renyi_halfnormal_halfnormal(p: fam.HalfNormal, q: fam.HalfNormal, alpha: float) -> Any:
    """The Normal formula with both locations 0 (the integrand is even)."""
    return normal_renyi(p.xp, 0.0, p.scale, 0.0, q.scale, alpha)


@register_divergence(RENYI, fam.Exponential, fam.Exponential)
def _renyi_exponential_exponential(p: fam.Exponential, q: fam.Exponential, alpha: float) -> Any:
    r"""D_α = log(λp^α λq^(1−α) / λ_α) / (α − 1), λ_α = αλp + (1−α)λq, regrouped [1].

    :math:`\frac{\mathrm{log1pmx}(v)}{1-\alpha} - \mathrm{log1pmx}(u)` with u = λq/λp − 1; +inf where
    :math:`\lambda_\alpha \le 0`.
    """
    xp = p.xp
    return _scale_part(xp, (q.rate - p.rate) / p.rate, alpha)


def gamma_renyi(xp: Any, a_p: Any, b_p: Any, a_q: Any, b_q: Any, alpha: float) -> Any:
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
    log_integral = (lgamma_bregman(xp, a_p, a_safe, xp.where(ok, (1.0 - alpha) * delta, 0.0 * delta))
                    - (1.0 - alpha) * lgamma_bregman(xp, a_p, a_q, delta)
                    + alpha * (1.0 - alpha) * u * delta
                    + (1.0 - alpha) * a_q * log1pmx(xp, u) - a_safe * log1pmx(xp, v_safe))
    return xp.where(ok, log_integral / (alpha - 1.0), INF)


def _as_gamma(x: Any) -> fam.Gamma:
    return x if isinstance(x, fam.Gamma) else fam.Gamma(x.xp, 1.0 + 0.0 * x.rate, x.rate)


@register_divergence(RENYI, fam.Gamma, fam.Gamma)
@register_divergence(RENYI, fam.Exponential, fam.Gamma)
@register_divergence(RENYI, fam.Gamma, fam.Exponential)
def _renyi_gamma_gamma(p: Any, q: Any, alpha: float) -> Any:
    """Gamma (and Chi2) pairs; an Exponential is Gamma(1, rate)."""
    p, q = _as_gamma(p), _as_gamma(q)
    return gamma_renyi(p.xp, p.concentration, p.rate, q.concentration, q.rate, alpha)


@register_divergence(RENYI, fam.InverseGamma, fam.InverseGamma)
def _renyi_inversegamma_inversegamma(p: fam.InverseGamma, q: fam.InverseGamma, alpha: float) -> Any:
    """1/X maps InverseGamma(a, b) to Gamma(a, b); the divergence is invariant under that bijection."""
    return gamma_renyi(p.xp, p.concentration, p.rate, q.concentration, q.rate, alpha)


def _min_eigenvalue(xp: Any, a: Any) -> Any:
    """Smallest eigenvalue of symmetric matrices (detached: it only decides where the answer is +inf)."""
    if xp.name == "torch":
        return xp.torch.linalg.eigvalsh(a.detach())[..., 0]
    import numpy as np

    return np.linalg.eigvalsh(a)[..., 0]


def mvn_renyi(p: fam.MultivariateNormal, q: fam.MultivariateNormal, alpha: float) -> Any:
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
    return mvn_renyi(_as_full(p), _as_full(q), alpha)


def _two_point_log_probs(xp: Any, x: fam.Bernoulli) -> tuple[Any, Any]:
    """(log π, log(1 − π)) from the logits, exact near 0 and 1 and at them (torch clamps the logits there)."""
    one = xp.where(x.probs > 0, xp.where(x.probs < 1, -xp.softplus(-x.logits), 0.0 * x.probs), -INF)
    zero = xp.where(x.probs < 1, xp.where(x.probs > 0, -xp.softplus(x.logits), 0.0 * x.probs), -INF)
    return one, zero


def _log_probs_of(x: Any) -> Any:
    """Log-probabilities with the outcomes on the last axis (a Bernoulli's two: success, failure)."""
    if isinstance(x, fam.Categorical):
        return x.log_probs
    one, zero = _two_point_log_probs(x.xp, x)
    if x.xp.name == "torch":
        return x.xp.torch.stack([one, zero], dim=-1)
    import numpy as np

    return np.stack(np.broadcast_arrays(one, zero), axis=-1)


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


# ===================================================================================================
# Hellinger distance (everything with a Rényi divergence gets it from the order ½; these are the others)
# ===================================================================================================
def _overlap(p: fam.Uniform, q: fam.Uniform) -> Any:
    xp = p.xp
    length = xp.minimum(p.high, q.high) - xp.maximum(p.low, q.low)
    return xp.where(length > 0, length, 0.0 * length)


@register_divergence(HELLINGER, fam.Uniform, fam.Uniform)
def _hellinger_uniform_uniform(p: fam.Uniform, q: fam.Uniform) -> Any:
    r""":math:`\sqrt{1 - L/\sqrt{w_p w_q}}`, L the length of the overlap, w the widths."""
    xp = p.xp
    bc = _overlap(p, q) / xp.sqrt((p.high - p.low) * (q.high - q.low))
    return xp.sqrt(xp.where(bc < 1.0, 1.0 - bc, 0.0 * bc))


# ===================================================================================================
# Total variation
# ===================================================================================================
def _normal_interval(xp: Any, a: Any, b: Any) -> Any:
    """Φ(b) − Φ(a) for a ≤ b, from the tail nearer to the interval (no cancellation of values near 1)."""
    right = xp.erfc(a / _SQRT2) - xp.erfc(b / _SQRT2)  # both in the right tail
    left = xp.erfc(-b / _SQRT2) - xp.erfc(-a / _SQRT2)  # both in the left tail
    middle = xp.erf(b / _SQRT2) - xp.erf(a / _SQRT2)
    return 0.5 * xp.where(a > 0, right, xp.where(b < 0, left, middle))


def normal_total_variation(xp: Any, loc_p: Any, scale_p: Any, loc_q: Any, scale_q: Any) -> Any:
    r"""TV between two univariate Normals, from the points where the densities cross.

    In the coordinates :math:`t = (x - \mu_p)/\sigma_p`, with :math:`s = \sigma_p/\sigma_q` and
    :math:`m = (\mu_p - \mu_q)/\sigma_q`, :math:`\log p = \log q` is
    :math:`(1 - s^2)t^2 - 2smt + 2\log s - m^2 = 0`, whose discriminant :math:`4[m^2 - 2(1-s^2)\log s]`
    is never negative. Between the roots :math:`t_1 < t_2` one density is the larger, so
    :math:`TV = |[\Phi(t_2) - \Phi(t_1)] - [\Phi(st_2 + m) - \Phi(st_1 + m)]|` (roots by the stable
    quadratic formula). Equal variances: :math:`2\Phi(|m|/2) - 1 = \mathrm{erf}(|m|/(2\sqrt2))`.
    """
    s = scale_p / scale_q
    m = (loc_p - loc_q) / scale_q
    log_s = xp.log(scale_p) - xp.log(scale_q)
    equal = log_s == 0
    a = -xp.expm1(2.0 * log_s)  # 1 − s²
    a_safe = xp.where(equal, 1.0 + 0.0 * a, a)
    sign = xp.where(m < 0, -1.0 + 0.0 * m, 1.0 + 0.0 * m)
    root = xp.sqrt(xp.where(equal, 1.0 + 0.0 * m, m * m - 2.0 * a * log_s))
    qq = s * m + sign * root
    t1, t2 = qq / a_safe, (2.0 * log_s - m * m) / qq
    lo, hi = xp.minimum(t1, t2), xp.maximum(t1, t2)
    unequal = xp.abs(_normal_interval(xp, lo, hi) - _normal_interval(xp, s * lo + m, s * hi + m))
    return xp.where(equal, xp.erf(xp.abs(m) / (2.0 * _SQRT2)), unequal)


@register_divergence(TV, fam.Normal, fam.Normal)
def _tv_normal_normal(p: fam.Normal, q: fam.Normal) -> Any:
    return normal_total_variation(p.xp, p.loc, p.scale, q.loc, q.scale)


@register_divergence(TV, fam.LogNormal, fam.LogNormal)
def _tv_lognormal_lognormal(p: fam.LogNormal, q: fam.LogNormal) -> Any:
    """Invariant under the bijection log."""
    return normal_total_variation(p.xp, p.loc, p.scale, q.loc, q.scale)


@register_divergence(TV, fam.HalfNormal, fam.HalfNormal)
def _tv_halfnormal_halfnormal(p: fam.HalfNormal, q: fam.HalfNormal) -> Any:
    """Folding at 0 maps both the same way and the densities are even: the Normal formula with locations 0."""
    return normal_total_variation(p.xp, 0.0 * p.scale, p.scale, 0.0 * q.scale, q.scale)


def _not_equal_covariance(what: str) -> NotRegisteredError:
    return NotRegisteredError(
        f"the total variation between {what} has a closed form only for equal covariances; these differ. "
        "Use method='mc' (or 'auto') for a Monte Carlo estimate."
    )


@register_divergence(TV, fam.MultivariateNormal, fam.MultivariateNormal)
def _tv_mvn_mvn(p: fam.MultivariateNormal, q: fam.MultivariateNormal) -> Any:
    r"""Equal covariances: :math:`\mathrm{erf}(\Delta/(2\sqrt2))`, Δ the Mahalanobis distance of the means [3]."""
    xp = p.xp
    if not bool(xp.xp.all(p.scale_tril == q.scale_tril)):
        raise _not_equal_covariance("multivariate Normals")
    z = xp.solve_lower(q.scale_tril, (p.loc - q.loc)[..., None])
    return xp.erf(xp.sqrt(xp.sum(xp.sum(z * z))) / (2.0 * _SQRT2))


@register_divergence(TV, fam.Independent, fam.Independent)
def _tv_independent_independent(p: fam.Independent, q: fam.Independent) -> Any:
    """Independent Normals of equal scales: a multivariate Normal with equal diagonal covariances."""
    if not (isinstance(p.base, fam.Normal) and isinstance(q.base, fam.Normal) and p.ndims == q.ndims):
        raise NotRegisteredError(
            f"the total variation between Independent({type(p.base).__name__}) and Independent("
            f"{type(q.base).__name__}) has no closed form here (only Independent Normals of equal scales); "
            "use method='mc' (or 'auto') for a Monte Carlo estimate."
        )
    xp = p.xp
    if not bool(xp.xp.all(p.base.scale == q.base.scale)):
        raise _not_equal_covariance("Independent Normals")
    z = (p.base.loc - q.base.loc) / q.base.scale
    return xp.erf(xp.sqrt(sum_rightmost(xp, z * z, p.ndims)) / (2.0 * _SQRT2))


@register_divergence(TV, fam.Exponential, fam.Exponential)
def _tv_exponential_exponential(p: fam.Exponential, q: fam.Exponential) -> Any:
    r""":math:`e^{-t^*}|u|/(1+u)`, u = λq/λp − 1, the densities crossing at :math:`\lambda_p x = t^* = \log(1+u)/u`."""
    xp = p.xp
    u = (q.rate - p.rate) / p.rate
    same = u == 0
    u_safe = xp.where(same, 1.0 + 0.0 * u, u)
    t = xp.where(same, 1.0 + 0.0 * u, xp.log1p(u_safe) / u_safe)
    return xp.exp(-t) * xp.abs(u) / (1.0 + u)


@register_divergence(TV, fam.Uniform, fam.Uniform)
def _tv_uniform_uniform(p: fam.Uniform, q: fam.Uniform) -> Any:
    """1 − L / max(w_p, w_q), L the length of the overlap."""
    xp = p.xp
    return 1.0 - _overlap(p, q) / xp.maximum(p.high - p.low, q.high - q.low)


@register_divergence(TV, fam.Categorical, fam.Categorical)
@register_divergence(TV, fam.Bernoulli, fam.Bernoulli)
def _tv_discrete(p: Any, q: Any) -> Any:
    """:func:`klkit.total_variation` on the log-probabilities: ½ Σ |p_i − q_i|."""
    from klkit.divergences import total_variation

    return total_variation(_log_probs_of(p), _log_probs_of(q), kind="log_probs", validate=False)


@register_divergence(HELLINGER, fam.Categorical, fam.Categorical)
@register_divergence(HELLINGER, fam.Bernoulli, fam.Bernoulli)
def _hellinger_discrete(p: Any, q: Any) -> Any:
    """:func:`klkit.hellinger_distance` on the log-probabilities: sqrt(1 − Σ sqrt(p_i q_i))."""
    from klkit.divergences import hellinger_distance

    return hellinger_distance(_log_probs_of(p), _log_probs_of(q), kind="log_probs", validate=False)


# ===================================================================================================
# Jensen–Shannon (discrete laws: through the array function)
# ===================================================================================================
@register_divergence(JS, fam.Categorical, fam.Categorical)
@register_divergence(JS, fam.Bernoulli, fam.Bernoulli)
def _js_discrete(p: Any, q: Any) -> Any:
    """:func:`klkit.js_divergence` on the log-probabilities (the outcomes along the last axis)."""
    from klkit.measures import js_divergence

    return js_divergence(_log_probs_of(p), _log_probs_of(q), kind="log_probs", validate=False)
