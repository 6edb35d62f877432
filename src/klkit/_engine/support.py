r"""The support rule of every measure, on every path.

An outcome is in the support of P where p, as computed in the working dtype, is > 0. A term
:math:`p_i \, x_i` (``x`` = log p, log q, log(p/q), ...) with :math:`p_i = 0` contributes nothing, also
where :math:`x_i` is infinite (q = 0, a masked logit): :math:`0 \cdot \infty = 0`. Logits that
underflow to p = 0 in the working dtype (a policy logit of −1e9 beside a reference logit of −inf)
are outside the support, so the value and its gradient stay finite.

:func:`in_support` is the one test: the array paths call it on arrays, the numba kernels call its
compiled twin :func:`in_support_scalar` (the same function, compiled), so no path has its own rule.
"""

from __future__ import annotations

from typing import Any

import numba

__all__ = ["in_support", "in_support_scalar", "support_term"]


def in_support(p: Any) -> Any:
    """Whether ``p`` (an array or a float) is in the support: ``p > 0`` (NaN is not).

    Examples
    --------
    >>> import numpy as np
    >>> in_support(np.array([0.5, 0.0, 5e-324])).tolist()
    [True, False, True]
    """
    return p > 0.0


in_support_scalar = numba.njit(inline="always", cache=True)(in_support)


def support_term(p: Any, x: Any, xp: Any) -> Any:
    r"""``p·x`` where p is in the support, 0 elsewhere, with a finite gradient everywhere.

    The mask is applied to ``x`` before the product (:math:`p \cdot \mathrm{where}(p > 0, x, 0)`),
    so an infinite ``x`` beside p = 0 neither reaches the value (0·inf) nor the gradient
    (autograd's ∂(p·x)/∂p = x would be inf, times a zero upstream gradient: NaN).

    Examples
    --------
    >>> import numpy as np
    >>> support_term(np.array([0.5, 0.0]), np.array([-1.0, -np.inf]), np).tolist()
    [-0.5, 0.0]
    """
    return p * xp.where(in_support(p), x, 0.0)
