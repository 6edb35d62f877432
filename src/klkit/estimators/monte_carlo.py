r"""Monte Carlo KL from log-densities of samples: Schulman's k1, k2 and k3 estimators."""

from __future__ import annotations

import math
from typing import Any, Literal

import numpy as np

from klkit._engine import asarray, check_base, is_torch_array, log_of_base, namespace, to_numpy
from klkit.errors import InvalidArgumentError, InvalidDistributionError, ShapeError
from klkit.estimate import Estimate
from klkit.estimators.sampled_kl import SAMPLED_KL

__all__ = ["mc_kl"]

MCEstimator = Literal["k1", "k2", "k3"]
ESTIMATORS: tuple[str, ...] = ("k1", "k2", "k3")


def mc_kl(
    log_p: Any, log_q: Any, /, *, estimator: MCEstimator = "k3", axis: int = 0, base: float | None = None
) -> Estimate:
    r"""KL(p‖q) = E_p[log p(x) − log q(x)] estimated from samples x ~ p, with its standard error.

    With :math:`\log r = \log q(x) - \log p(x)` for each sample :math:`x \sim p`
    (Schulman, 2020):

    .. math::

        k_1 = -\log r, \qquad
        k_2 = \tfrac12 (\log r)^2, \qquad
        k_3 = (r - 1) - \log r,

    and the estimate is the mean over the sample ``axis``, with standard error
    :math:`s / \sqrt{n}` (:math:`s` the sample standard deviation, ``ddof=1``).

    - ``k1`` is unbiased but has high variance and single samples can be negative.
    - ``k2`` is **biased**: :math:`E_p[k_2]` equals KL(p‖q) only to second order
      in :math:`\log r` (it is an f-divergence that matches KL locally); its
      bias grows as p and q move apart.
    - ``k3`` is unbiased (:math:`E_p[r] = 1` makes the control variate
      :math:`r - 1` zero-mean) **and** non-negative for every sample, with
      usually much lower variance than ``k1`` when p and q are close. It is the
      ``approx_kl = ((ratio - 1) - logratio).mean()`` of PPO implementations.
      Computed to a few ulps also near :math:`r = 1`, where ``expm1(log r) − log r``
      cancels (:mod:`klkit.estimators.sampled_kl`).

    Parameters
    ----------
    log_p : array_like or torch.Tensor
        :math:`\log p(x_i)` for samples :math:`x_i \sim p`, samples along ``axis``,
        any batch shape on the other axes.
    log_q : array_like or torch.Tensor
        :math:`\log q(x_i)` at the same samples; same shape as ``log_p``.
    estimator : {'k1', 'k2', 'k3'}, default 'k3'
        Which per-sample estimator to average.
    axis : int, default 0
        The sample axis (reduced); other axes are batch axes.
    base : float, optional
        None for nats (default), 2 for bits.

    Returns
    -------
    Estimate
        ``value`` and ``standard_error`` with the batch shape (the input shape
        without ``axis``); numpy in, numpy out (dtype of the input, float64 for
        integers), torch in, torch out (dtype, device and autograd kept for
        ``value``; ``standard_error`` is detached). ``+inf`` where some sample
        has ``log_q = -inf`` (p puts mass where q has none); its standard
        error is then NaN.

    Raises
    ------
    ValueError
        NaN in the inputs, ``log_p`` that is ±inf or ``log_q`` that is +inf,
        different shapes, fewer than 2 samples along ``axis``, an unknown
        ``estimator``, a bad ``axis`` or ``base``.
    TypeError
        numpy and torch inputs mixed.

    References
    ----------
    J. Schulman, "Approximating KL Divergence", 2020. http://joschu.net/blog/kl-approx.html

    Examples
    --------
    >>> import numpy as np
    >>> from scipy import stats
    >>> from klkit.estimators import mc_kl
    >>> x = np.random.default_rng(0).normal(0.0, 1.0, 100_000)  # x ~ p = N(0, 1)
    >>> e = mc_kl(stats.norm(0, 1).logpdf(x), stats.norm(1, 1).logpdf(x))  # true KL(p‖q) = 0.5
    >>> bool(abs(e.value - 0.5) < 4 * e.standard_error)
    True
    >>> print(e)
    0.5006 ± 0.0028 (MC k3, n=100000)
    """
    if estimator not in ESTIMATORS:
        raise InvalidArgumentError(
            f"`estimator` must be one of 'k1', 'k2' or 'k3'; found {estimator!r}. "
            "Use 'k3' (unbiased, non-negative, low variance) unless you need another."
        )
    base = check_base(base)
    xp = namespace(log_p, log_q, names=("log_p", "log_q"))
    lp, lq = asarray(log_p, xp, "log_p"), asarray(log_q, xp, "log_q")
    if tuple(lp.shape) != tuple(lq.shape):
        raise ShapeError(
            f"`log_p` and `log_q` must have the same shape (one value per sample); found "
            f"{tuple(lp.shape)} and {tuple(lq.shape)}. Evaluate both densities at the same samples."
        )
    ndim = len(lp.shape)
    if ndim == 0:
        raise ShapeError(
            "`log_p` must have at least one dimension (the samples); found a 0-d scalar. "
            "Pass one log-density per sample."
        )
    if isinstance(axis, bool) or not isinstance(axis, (int, np.integer)):
        raise InvalidArgumentError(f"`axis` must be an integer; found {axis!r}. Use axis=0 for samples first.")
    if not -ndim <= axis < ndim:
        raise ShapeError(
            f"`axis` must be in [{-ndim}, {ndim - 1}] for inputs with {ndim} dimension(s); found axis={axis}. "
            "Use axis=0 when samples come first."
        )
    n = int(lp.shape[axis])
    if n < 2:
        raise ShapeError(
            f"`log_p` must hold at least 2 samples along axis {axis} for a standard error; found {n}. "
            "Draw more samples."
        )
    _check_log_density(lp, "log_p", xp, allow_minus_inf=False)
    _check_log_density(lq, "log_q", xp, allow_minus_inf=True)

    if is_torch_array(lp):
        import torch

        logr = lq - lp
        per_sample = SAMPLED_KL[estimator](logr)
        value = per_sample.mean(dim=axis)
        with torch.no_grad():
            se = per_sample.detach().std(dim=axis, correction=1) / math.sqrt(n)
            se = torch.where(torch.isinf(value.detach()), torch.full_like(se, math.nan), se)
    else:
        out_dtype = lp.dtype if lp.dtype.kind == "f" else np.float64
        with np.errstate(over="ignore", invalid="ignore"):
            logr = lq.astype(np.float64) - lp.astype(np.float64)
            per_sample = SAMPLED_KL[estimator](logr)
            value = per_sample.mean(axis=axis)
            se = per_sample.std(axis=axis, ddof=1) / math.sqrt(n)
        se = np.where(np.isinf(value), np.nan, se)
        value = np.asarray(value, dtype=out_dtype)[()]
        se = np.asarray(se, dtype=out_dtype)[()]
    scale = log_of_base(base)
    if scale != 1.0:
        value, se = value / scale, se / scale
    return Estimate(value, se, n, f"MC {estimator}")


def _check_log_density(x: Any, name: str, xp: Any, *, allow_minus_inf: bool) -> None:
    bad = xp.isnan(x) | (x == math.inf)
    if not allow_minus_inf:
        bad = bad | (x == -math.inf)
    if bool(xp.any(bad)):
        xn, bn = to_numpy(x), to_numpy(bad)
        first = xn[bn].ravel()[0]
        idx = tuple(int(i[0]) for i in np.nonzero(bn))
        rule = "real numbers (not NaN or +inf)" if allow_minus_inf else "finite real numbers"
        why = (
            ""
            if allow_minus_inf
            else " -inf means the sample has zero density under p, so it cannot have been drawn from p."
        )
        raise InvalidDistributionError(
            f"`{name}` must hold log-densities, {rule}; found {int(bn.sum())} bad entr"
            f"{'y' if bn.sum() == 1 else 'ies'}, first {first!r} at index {idx}.{why} "
            "Check the model's log_prob for overflow and that the samples come from p."
        )
