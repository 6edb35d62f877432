"""The :class:`Estimate` result type: a value with its standard error, that computes like its value.

A leaf module (numpy, :mod:`klkit.errors` and the array-namespace helpers only), so that every
package that returns estimates (estimators, distributions, fitting) can import it at module top.
Also importable as ``klkit.estimators.Estimate`` and ``klkit.Estimate``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from klkit._engine import is_torch_array

__all__ = ["Estimate"]


def _plain(x: Any) -> Any:
    """The value of an Estimate, anything else unchanged."""
    return x.value if isinstance(x, Estimate) else x


def _unwrap_all(obj: Any) -> Any:
    if isinstance(obj, Estimate):
        return obj.value
    if isinstance(obj, (list, tuple)):
        return type(obj)(_unwrap_all(o) for o in obj)
    if isinstance(obj, dict):
        return {k: _unwrap_all(v) for k, v in obj.items()}
    return obj


def _to_numpy(x: Any) -> np.ndarray:
    if is_torch_array(x):
        return x.detach().cpu().numpy()
    return np.asarray(x)


def _binary(name: str, reflected: bool = False) -> Any:
    def method(self: Estimate, other: Any) -> Any:
        a, b = self.value, _plain(other)
        if reflected:
            a, b = b, a
        return _OPS[name](a, b)

    method.__name__ = f"__{'r' if reflected else ''}{name}__"
    method.__doc__ = f"``{name}`` on the value (an Estimate operand counts as its value); returns a plain value."
    return method


_OPS: dict[str, Any] = {
    "add": lambda a, b: a + b,
    "sub": lambda a, b: a - b,
    "mul": lambda a, b: a * b,
    "truediv": lambda a, b: a / b,
    "floordiv": lambda a, b: a // b,
    "mod": lambda a, b: a % b,
    "pow": lambda a, b: a**b,
    "matmul": lambda a, b: a @ b,
}


@dataclass(frozen=True, eq=False, repr=False)
class Estimate:
    r"""A sampled estimate: value, standard error, sample size and the method that produced it.

    An ``Estimate`` computes like its value: ``float(e)``, ``e + 1``, ``2 * e``,
    ``e < 0.1``, ``np.asarray(e)``, ``torch.exp(e)`` and ``f"{e:.3f}"`` all use
    :attr:`value`. Arithmetic **returns the plain value, never an Estimate**,
    also between two Estimates (``e1 - e2`` is ``e1.value - e2.value``):
    propagating the error would need the covariance of the two estimates, which
    klkit does not know. Combine standard errors yourself when the estimates are
    independent, e.g. ``math.hypot(e1.standard_error, e2.standard_error)``.

    Parameters
    ----------
    value : float, ndarray or torch.Tensor
        The estimate; its type is the one the inputs came in (torch keeps dtype,
        device and autograd). An array holds one estimate per batch element.
    standard_error : float, ndarray or torch.Tensor
        Standard error of ``value`` (same shape; NaN where it is not defined).
        For torch values it is detached: it reports, it is not trained on.
    n_samples : int
        Number of samples behind each estimate.
    method : str
        What produced it, e.g. ``"MC k3"`` or ``"kNN Kozachenko-Leonenko, k=3"``.
    confidence_interval : tuple (low, high), optional
        A confidence interval (e.g. bootstrap percentile) when one was computed.
    confidence_level : float, optional
        Coverage of ``confidence_interval``, e.g. 0.95.

    Examples
    --------
    >>> from klkit.estimate import Estimate
    >>> e = Estimate(0.50312, 0.00121, 100_000, "MC k3")
    >>> print(e)
    0.5031 ± 0.0012 (MC k3, n=100000)
    >>> float(e + 1), e * 2, e > 0.5
    (1.50312, 1.00624, True)
    """

    value: Any
    standard_error: Any
    n_samples: int
    method: str
    confidence_interval: tuple[Any, Any] | None = field(default=None)
    confidence_level: float | None = field(default=None)

    # --- shape --------------------------------------------------------------
    @property
    def shape(self) -> tuple[int, ...]:
        """Batch shape of :attr:`value` (``()`` for a single estimate)."""
        return tuple(getattr(self.value, "shape", ()))

    @property
    def ndim(self) -> int:
        return len(self.shape)

    def __len__(self) -> int:
        if not self.shape:
            raise TypeError("len() of a 0-d Estimate; it holds a single value (see `Estimate.value`)")
        return self.shape[0]

    def __getitem__(self, index: Any) -> Estimate:
        """Index the batch: returns an Estimate of the selected elements."""
        if not self.shape:
            raise TypeError("a 0-d Estimate cannot be indexed; use `Estimate.value`")
        ci = self.confidence_interval
        return Estimate(
            self.value[index],
            self.standard_error[index],
            self.n_samples,
            self.method,
            None if ci is None else (ci[0][index], ci[1][index]),
            self.confidence_level,
        )

    def __iter__(self) -> Any:
        for i in range(len(self)):
            yield self[i]

    # --- conversions ----------------------------------------------------------
    def __float__(self) -> float:
        return float(self.value.detach() if is_torch_array(self.value) else self.value)

    def __int__(self) -> int:
        return int(float(self))

    def __bool__(self) -> bool:
        return bool(self.value)

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        arr = _to_numpy(self.value)
        return arr if dtype is None else arr.astype(dtype)

    @classmethod
    def __torch_function__(cls, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        """Let ``torch.*`` functions see the value: ``torch.exp(e) == torch.exp(e.value)``."""
        return func(*_unwrap_all(args), **_unwrap_all(kwargs or {}))

    def __format__(self, spec: str) -> str:
        if not spec:
            return str(self)
        value = self.value.item() if is_torch_array(self.value) else self.value
        return format(value, spec)

    def __round__(self, ndigits: int | None = None) -> Any:
        return round(float(self), ndigits)

    # --- arithmetic and comparisons act on the value -------------------------------------
    __add__ = _binary("add")
    __radd__ = _binary("add", reflected=True)
    __sub__ = _binary("sub")
    __rsub__ = _binary("sub", reflected=True)
    __mul__ = _binary("mul")
    __rmul__ = _binary("mul", reflected=True)
    __truediv__ = _binary("truediv")
    __rtruediv__ = _binary("truediv", reflected=True)
    __floordiv__ = _binary("floordiv")
    __rfloordiv__ = _binary("floordiv", reflected=True)
    __mod__ = _binary("mod")
    __rmod__ = _binary("mod", reflected=True)
    __pow__ = _binary("pow")
    __rpow__ = _binary("pow", reflected=True)
    __matmul__ = _binary("matmul")
    __rmatmul__ = _binary("matmul", reflected=True)

    def __neg__(self) -> Any:
        return -self.value

    def __pos__(self) -> Any:
        return +self.value

    def __abs__(self) -> Any:
        return abs(self.value)

    def __lt__(self, other: Any) -> Any:
        return self.value < _plain(other)

    def __le__(self, other: Any) -> Any:
        return self.value <= _plain(other)

    def __gt__(self, other: Any) -> Any:
        return self.value > _plain(other)

    def __ge__(self, other: Any) -> Any:
        return self.value >= _plain(other)

    def __eq__(self, other: object) -> Any:  # type: ignore[override]
        return self.value == _plain(other)

    def __ne__(self, other: object) -> Any:  # type: ignore[override]
        return self.value != _plain(other)

    __hash__ = None  # type: ignore[assignment]  # equality is elementwise, like arrays

    # --- printing --------------------------------------------------------------
    def _label(self) -> str:
        return f"({self.method}, n={self.n_samples})"

    def __str__(self) -> str:
        value, se = _to_numpy(self.value), _to_numpy(self.standard_error)
        if value.ndim == 0:
            text = _format_pair(float(value), float(se))
        else:
            pairs = [_format_pair(float(v), float(s)) for v, s in zip(value.ravel()[:6], se.ravel()[:6], strict=False)]
            more = ", ..." if value.size > 6 else ""
            text = f"[{', '.join(pairs)}{more}] shape {tuple(value.shape)}"
        if self.confidence_interval is not None and value.ndim == 0:
            lo, hi = (float(_to_numpy(c)) for c in self.confidence_interval)
            level = f"{100 * self.confidence_level:g}% " if self.confidence_level else ""
            text += f" [{level}CI {_format_number(lo, se)}, {_format_number(hi, se)}]"
        return f"{text} {self._label()}"

    def __repr__(self) -> str:
        return f"Estimate({self})"


def _decimals(se: float) -> int | None:
    """Decimals that show the standard error with two significant digits."""
    if not (math.isfinite(se) and se > 0):
        return None
    return min(15, max(0, 1 - math.floor(math.log10(se))))


def _format_number(x: float, se: Any) -> str:
    d = _decimals(float(np.asarray(se).ravel()[0]) if np.size(se) else math.nan)
    return f"{x:.4g}" if d is None or not math.isfinite(x) else f"{x:.{d}f}"


def _format_pair(value: float, se: float) -> str:
    d = _decimals(se)
    if not math.isfinite(value):
        return f"{value:.4g} ± {se:.2g}"
    if d is None:  # exact (se = 0) or unknown (NaN) error: four decimals
        return f"{value:.4f} ± {se:.2g}"
    return f"{value:.{d}f} ± {se:.{d}f}"
