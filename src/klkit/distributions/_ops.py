"""What the array API lacks, for numpy (scipy) and torch: the closed forms' special functions.

The backend is never decided here: :func:`ops_for` asks :func:`klkit._engine.namespace`
which library the parameter arrays belong to and returns that library's
special-function object (``lgamma``, ``digamma``, ``trigamma``, ``erf``, ``erfc``, ``i0e``,
``i1e``, ``xlogy``, ``betainc``, ``exp1``, ``softplus``, ``log_softmax``,
``solve_lower``, ``cholesky`` …). Family records keep it as ``p.xp``; its
element-wise array-API functions (``log``, ``exp``, ``expm1`` …) are the
namespace's own, and ``p.xp.xp`` is the namespace itself. Distribution objects
come only from torch or scipy, so other array libraries raise a ``TypeError``.
"""

from __future__ import annotations

import math
from types import ModuleType
from typing import Any

import numpy as np
from scipy import linalg, special

from klkit._engine import is_numpy, is_torch, namespace

__all__ = ["EULER_GAMMA", "INF", "NumpyOps", "TorchOps", "log_beta", "ops_for", "sum_rightmost"]

INF = math.inf
EULER_GAMMA = 0.57721566490153286061

# Element-wise functions every array-API namespace has (the closed forms' spelling: arctanh for atanh).
_ARRAY_API = ("log", "log1p", "exp", "expm1", "sqrt", "abs", "square", "tanh", "cos")


class _ArrayApiOps:
    """The element-wise array-API functions of ``namespace``, bound once."""

    name = "array-api"

    def __init__(self, namespace: ModuleType) -> None:
        self.xp = namespace
        for name in _ARRAY_API:
            setattr(self, name, getattr(namespace, name))
        self.arctanh = namespace.atanh


class NumpyOps(_ArrayApiOps):
    """scipy's special functions for numpy parameters (float64 arrays); errors are silenced (inf/nan are answers)."""

    name = "numpy"
    lgamma = staticmethod(special.gammaln)
    digamma = staticmethod(special.digamma)
    erf = staticmethod(special.erf)
    erfc = staticmethod(special.erfc)
    i0e = staticmethod(special.i0e)
    i1e = staticmethod(special.i1e)
    xlogy = staticmethod(special.xlogy)
    where = staticmethod(np.where)
    maximum = staticmethod(np.maximum)
    minimum = staticmethod(np.minimum)

    @staticmethod
    def asarray(x: Any) -> np.ndarray:
        return np.asarray(x, dtype=np.float64)

    @staticmethod
    def trigamma(x: Any) -> Any:
        return special.polygamma(1, x)

    @staticmethod
    def polygamma(n: int, x: Any) -> Any:
        return special.polygamma(n, x)

    @staticmethod
    def exp1(x: Any) -> Any:
        return special.exp1(x)

    @staticmethod
    def betainc(a: Any, b: Any, x: Any) -> Any:
        return special.betainc(a, b, x)

    @staticmethod
    def softplus(x: Any) -> Any:
        return np.logaddexp(0.0, x)

    @staticmethod
    def full_like(x: Any, value: float) -> Any:
        return np.full_like(np.asarray(x, dtype=np.float64), value)

    @staticmethod
    def sum(x: Any, axis: int | tuple[int, ...] = -1) -> Any:
        return np.sum(x, axis=axis)

    @staticmethod
    def logsumexp(x: Any, axis: int = -1) -> Any:
        return special.logsumexp(x, axis=axis)

    @staticmethod
    def log_softmax(x: Any) -> Any:
        return special.log_softmax(x, axis=-1)

    @staticmethod
    def arange(n: int, like: Any) -> Any:
        return np.arange(n, dtype=np.float64)

    @staticmethod
    def diagonal(x: Any) -> Any:
        return np.diagonal(x, axis1=-2, axis2=-1)

    @staticmethod
    def transpose(x: Any) -> Any:
        return np.swapaxes(x, -1, -2)

    @staticmethod
    def solve_lower(L: Any, B: Any) -> Any:
        """``L⁻¹ B`` for lower-triangular ``L`` (batched)."""
        if L.ndim == 2 and B.ndim == 2:
            return linalg.solve_triangular(L, B, lower=True)
        out = np.empty(np.broadcast_shapes(L.shape[:-2], B.shape[:-2]) + B.shape[-2:])
        Lb = np.broadcast_to(L, out.shape[:-2] + L.shape[-2:])
        Bb = np.broadcast_to(B, out.shape)
        for idx in np.ndindex(out.shape[:-2]):
            out[idx] = linalg.solve_triangular(Lb[idx], Bb[idx], lower=True)
        return out

    @staticmethod
    def cholesky(x: Any) -> Any:
        return np.linalg.cholesky(x)

    @staticmethod
    def errstate() -> Any:
        return np.errstate(divide="ignore", invalid="ignore", over="ignore", under="ignore")


class TorchOps(_ArrayApiOps):
    """torch's special functions for torch parameters; dtype, device and autograd are kept."""

    name = "torch"

    def __init__(self, namespace: ModuleType) -> None:
        super().__init__(namespace)
        import torch

        self.torch = torch
        for name in ("lgamma", "digamma", "erf", "xlogy", "where"):
            setattr(self, name, getattr(torch, name))
        self.erfc = torch.special.erfc
        self.i0e = torch.special.i0e
        self.i1e = torch.special.i1e
        self.softplus = torch.nn.functional.softplus

    def asarray(self, x: Any) -> Any:
        x = self.torch.as_tensor(x)
        return x if x.is_floating_point() else x.to(self.torch.get_default_dtype())

    def trigamma(self, x: Any) -> Any:
        return self.torch.polygamma(1, x)

    def polygamma(self, n: int, x: Any) -> Any:
        return self.torch.polygamma(n, x)

    def exp1(self, x: Any) -> Any:
        r"""Exponential integral :math:`E_1(x) = \int_x^\infty e^{-t}/t\,dt` (torch has none).

        Power series for x ≤ 1 (25 terms), the continued fraction
        :math:`e^{-x}/(x+1-1^2/(x+3-2^2/(x+5-\dots)))` evaluated backwards (60 levels) above:
        both accurate to float64 rounding in their ranges; differentiable.
        """
        torch = self.torch
        small = x <= 1.0
        xs = torch.where(small, x, torch.ones_like(x))
        term = torch.ones_like(xs)
        series = torch.zeros_like(xs)
        for k in range(1, 26):
            term = term * (-xs) / k
            series = series - term / k
        below = -EULER_GAMMA - torch.log(xs) + series
        xl = torch.where(small, torch.full_like(x, 2.0), x)
        t = torch.zeros_like(xl)
        for k in range(60, 0, -1):
            t = k * k / (xl + 2 * k + 1 - t)
        above = torch.exp(-xl) / (xl + 1 - t)
        return torch.where(small, below, above)

    def betainc(self, a: Any, b: Any, x: Any) -> Any:
        """Regularised incomplete beta :math:`I_x(a, b)` by its continued fraction (torch has none)."""
        torch = self.torch
        a, b, x = torch.broadcast_tensors(a, b, x)
        x = x.clamp(1e-300 if x.dtype == torch.float64 else 1e-30, 1.0 - torch.finfo(x.dtype).eps)
        swap = x > (a + 1.0) / (a + b + 2.0)
        a2, b2, x2 = torch.where(swap, b, a), torch.where(swap, a, b), torch.where(swap, 1.0 - x, x)
        log_front = (
            a2 * torch.log(x2) + b2 * torch.log1p(-x2) - (torch.lgamma(a2) + torch.lgamma(b2) - torch.lgamma(a2 + b2))
        )
        value = torch.exp(log_front) * _beta_continued_fraction(torch, a2, b2, x2) / a2
        return torch.where(swap, 1.0 - value, value)

    def maximum(self, a: Any, b: Any) -> Any:
        a, b = self._pair(a, b)
        return self.torch.maximum(a, b)

    def minimum(self, a: Any, b: Any) -> Any:
        a, b = self._pair(a, b)
        return self.torch.minimum(a, b)

    def _pair(self, a: Any, b: Any) -> tuple[Any, Any]:
        if not self.torch.is_tensor(a):
            a = self.torch.as_tensor(a, dtype=b.dtype, device=b.device)
        if not self.torch.is_tensor(b):
            b = self.torch.as_tensor(b, dtype=a.dtype, device=a.device)
        return a, b

    def full_like(self, x: Any, value: float) -> Any:
        return self.torch.full_like(x, value)

    def sum(self, x: Any, axis: int | tuple[int, ...] = -1) -> Any:
        return x.sum(dim=axis)

    def logsumexp(self, x: Any, axis: int = -1) -> Any:
        return self.torch.logsumexp(x, dim=axis)

    def log_softmax(self, x: Any) -> Any:
        return self.torch.log_softmax(x, dim=-1)

    def arange(self, n: int, like: Any) -> Any:
        return self.torch.arange(n, dtype=like.dtype, device=like.device)

    def diagonal(self, x: Any) -> Any:
        return x.diagonal(dim1=-2, dim2=-1)

    def transpose(self, x: Any) -> Any:
        return x.mT

    def solve_lower(self, L: Any, B: Any) -> Any:
        shape = self.torch.broadcast_shapes(L.shape[:-2], B.shape[:-2])
        L = L.expand(shape + L.shape[-2:])
        B = B.expand(shape + B.shape[-2:])
        return self.torch.linalg.solve_triangular(L, B, upper=False)

    def cholesky(self, x: Any) -> Any:
        return self.torch.linalg.cholesky(x)

    def errstate(self) -> Any:
        import contextlib

        return contextlib.nullcontext()


def _beta_continued_fraction(torch: Any, a: Any, b: Any, x: Any, iterations: int = 200) -> Any:
    """Lentz's evaluation of the continued fraction of I_x(a, b) (converges for x < (a + 1)/(a + b + 2))."""
    tiny = 1e-300 if x.dtype == torch.float64 else 1e-30

    def guard(v: Any) -> Any:
        return torch.where(v.abs() < tiny, torch.full_like(v, tiny), v)

    c = torch.ones_like(x)
    d = 1.0 / guard(1.0 - (a + b) * x / (a + 1.0))
    h = d
    for m in range(1, iterations + 1):
        for aa in (
            m * (b - m) * x / ((a + 2 * m - 1.0) * (a + 2 * m)),
            -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1.0)),
        ):
            d = 1.0 / guard(1.0 + aa * d)
            c = guard(1.0 + aa / c)
            h = h * d * c
    return h


_NUMPY: list[NumpyOps] = []
_TORCH: list[TorchOps] = []


def ops_for(*arrays: Any, names: tuple[str, ...] | None = None) -> NumpyOps | TorchOps:
    """The special-function object of the library ``arrays`` belong to (numpy/scipy or torch).

    Parameters
    ----------
    *arrays : ndarray or torch.Tensor
        Parameter arrays of one distribution (lists and scalars count as numpy).
    names : tuple of str, optional
        Their names, for messages; ``arrays[0]``, ``arrays[1]`` … by default.

    Raises
    ------
    TypeError
        An array of another library (distribution objects come only from torch or scipy), or a
        non-array; :class:`~klkit.errors.BackendMismatchError` when the arrays mix libraries.
    """
    names = names or tuple(f"arrays[{i}]" for i in range(len(arrays)))
    xp = namespace(*arrays, names=names)
    if is_numpy(xp):
        if not _NUMPY:
            _NUMPY.append(NumpyOps(xp))
        return _NUMPY[0]
    if is_torch(xp):
        if not _TORCH:
            _TORCH.append(TorchOps(xp))
        return _TORCH[0]
    found = type(arrays[0])
    raise TypeError(
        f"`{names[0]}` must be a numpy array or a torch tensor: the closed forms of distribution objects "
        f"(torch.distributions, frozen scipy.stats) know only these; found {found.__module__}.{found.__qualname__}. "
        "Convert with np.asarray(x) or torch.as_tensor(x)."
    )


def sum_rightmost(xp: Any, x: Any, n: int) -> Any:
    """Sum over the ``n`` rightmost axes (no-op for ``n = 0``)."""
    return xp.sum(x, axis=tuple(range(-n, 0))) if n > 0 else x


def log_beta(xp: Any, a: Any, b: Any) -> Any:
    """``log B(a, b) = lgamma(a) + lgamma(b) - lgamma(a + b)``."""
    return xp.lgamma(a) + xp.lgamma(b) - xp.lgamma(a + b)
