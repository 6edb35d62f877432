r"""Per-sample KL estimators k1, k2, k3 of a log-ratio, the one home of their arithmetic.

For samples :math:`x \sim p` and the log-ratio :math:`d = \log r = \log q(x) - \log p(x)`
(Schulman, 2020):

.. math::

    k_1(d) = -d, \qquad k_2(d) = \tfrac12 d^2, \qquad k_3(d) = (e^d - 1) - d .

:math:`E_p[k_1] = E_p[k_3] = \mathrm{KL}(p\,\|\,q)` (k3 adds the zero-mean control variate
:math:`r - 1`), :math:`E_p[k_2]` equals it to second order in :math:`d`. In RLHF, with
:math:`p = \pi` and :math:`q = \pi_{\mathrm{ref}}`, :math:`d = \log\pi_{\mathrm{ref}} - \log\pi`.

k3 is computed to a few units in the last place in every floating dtype: near :math:`d = 0` both
``expm1(d) - d`` and ``(exp(d) - 1) - d`` cancel (the value, :math:`d^2/2`, is much smaller than
:math:`d`), so below :math:`|d| = 1/2` it is the series
:math:`d^2 \sum_{n \ge 2} d^{n-2}/n!` (Horner; 16 terms in float64, 8 in float32, 5 in 16-bit
floats: truncation below one ulp), and ``expm1(d) - d`` from :math:`|d| = 1/2` on, where the
subtraction loses at most 2 bits. ``expm1(d)`` overflows to ``inf`` for large d: that is the value
there. Its derivative, :math:`e^d - 1`, is computed as ``expm1(d)`` (for torch tensors, an autograd
function: no gradient flows through the series or through an unused ``inf``).

These functions are used by :func:`klkit.estimators.mc_kl` and :func:`klkit.rlhf.kl_penalty`.

Examples
--------
>>> import numpy as np
>>> from klkit.estimators.sampled_kl import k1, k2, k3
>>> d = np.array([-1.0, 1e-9, 2.0])
>>> k1(d).tolist(), k2(d).tolist()
([1.0, -1e-09, -2.0], [0.5, 5e-19, 2.0])
>>> d = np.float32(1e-4)  # exact k3 of this float32: 5.00016642e-09
>>> print(k3(d), np.expm1(d) - d)  # the series, and the cancelling form (3e-4 off)
5.0001665e-09 4.998583e-09
"""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import cache
from typing import Any

import numpy as np

from klkit._engine import is_torch_array

__all__ = ["SAMPLED_KL", "k1", "k2", "k3"]

SERIES_RADIUS = 0.5  # the series is used where |d| < SERIES_RADIUS
_SERIES_TERMS = {8: 16, 4: 8, 2: 5}  # bytes per element → terms of the series


def k1(log_ratio: Any, /) -> Any:
    r"""k1 = :math:`-d` with :math:`d = \log q(x) - \log p(x)`, :math:`x \sim p`: unbiased, high variance.

    Parameters
    ----------
    log_ratio : array_like or torch.Tensor
        :math:`d` at each sample.

    Returns
    -------
    ndarray or torch.Tensor
        Same shape; numpy in (float64 for integers), numpy out; torch in, torch out.

    Examples
    --------
    >>> from klkit.estimators.sampled_kl import k1
    >>> float(k1(-0.25))
    0.25
    """
    return -_array(log_ratio)


def k2(log_ratio: Any, /) -> Any:
    r"""k2 = :math:`\tfrac12 d^2`: low variance, biased (equal to KL to second order in d).

    Parameters
    ----------
    log_ratio : array_like or torch.Tensor
        :math:`d = \log q(x) - \log p(x)` at each sample :math:`x \sim p`.

    Returns
    -------
    ndarray or torch.Tensor
        Same shape and kind as the input.

    Examples
    --------
    >>> from klkit.estimators.sampled_kl import k2
    >>> float(k2(-0.5))
    0.125
    """
    d = _array(log_ratio)
    return 0.5 * (d * d)


def k3(log_ratio: Any, /) -> Any:
    r"""k3 = :math:`(e^d - 1) - d \ge 0`: unbiased, low variance when p ≈ q, accurate to a few ulps.

    Below :math:`|d| = 1/2` the series :math:`d^2 \sum_{n\ge2} d^{n-2}/n!`, elsewhere
    ``expm1(d) - d`` (see the module's notes). Torch tensors keep autograd, with the derivative
    ``expm1(d)``.

    Parameters
    ----------
    log_ratio : array_like or torch.Tensor
        :math:`d = \log q(x) - \log p(x)` at each sample :math:`x \sim p`.

    Returns
    -------
    ndarray or torch.Tensor
        Same shape and dtype (float64 for integers and Python numbers); ``inf`` where
        :math:`e^d` overflows.

    Examples
    --------
    >>> from klkit.estimators.sampled_kl import k3
    >>> float(k3(1e-9))  # d²/2 + d³/6 to the last digit, where expm1(d) - d gives noise
    5.000000001666667e-19
    >>> round(float(k3(-30.0)), 12)  # e^-30 - 1 + 30
    29.0
    """
    d = _array(log_ratio)
    if is_torch_array(d):
        return _torch_k3().apply(d)
    return _k3_numpy(d)


SAMPLED_KL: dict[str, Callable[[Any], Any]] = {"k1": k1, "k2": k2, "k3": k3}
"""The per-sample estimators by name: ``SAMPLED_KL["k3"](d)``."""


def _array(x: Any) -> Any:
    if is_torch_array(x):
        return x
    a = np.asarray(x)
    return a if a.dtype.kind == "f" else a.astype(np.float64)


def _k3_numpy(d: np.ndarray) -> Any:
    terms = _SERIES_TERMS.get(d.dtype.itemsize, 16)
    one = d.dtype.type
    x = np.clip(d, -SERIES_RADIUS, SERIES_RADIUS)
    series = np.full_like(x, one(1.0 / math.factorial(terms + 1)))
    for n in range(terms, 1, -1):
        series *= x
        series += one(1.0 / math.factorial(n))
    series *= x * x
    with np.errstate(over="ignore"):
        far = np.expm1(d) - d
    return np.where(np.abs(d) < SERIES_RADIUS, series, far)[()]


def _k3_torch_value(d: Any) -> Any:
    terms = _SERIES_TERMS.get(d.element_size(), 16)
    x = d.clamp(-SERIES_RADIUS, SERIES_RADIUS)
    series = x.new_full(x.shape, 1.0 / math.factorial(terms + 1))
    for n in range(terms, 1, -1):
        series.mul_(x).add_(1.0 / math.factorial(n))  # in place: no temporaries
    series.mul_(x).mul_(x)
    return series.where(d.abs() < SERIES_RADIUS, d.expm1().sub_(d))


@cache
def _torch_k3() -> Any:
    """The autograd function of k3 (built on first use, so that numpy users never import torch)."""
    import torch

    class K3(torch.autograd.Function):
        """k3(d) with its derivative expm1(d), both accurate (no autograd through the series)."""

        @staticmethod
        def forward(ctx: Any, d: torch.Tensor) -> torch.Tensor:
            ctx.save_for_backward(d)
            return _k3_torch_value(d.detach())

        @staticmethod
        def backward(ctx: Any, grad: torch.Tensor) -> torch.Tensor:
            (d,) = ctx.saved_tensors
            return grad * d.expm1()  # differentiable: double backward gives e^d

    return K3
