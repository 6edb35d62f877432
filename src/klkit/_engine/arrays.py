"""The one array layer: which library an input belongs to, and the dtype it is computed in.

Every array function in klkit starts with ``xp = namespace(p, q)`` and then
speaks the Python array API through ``xp`` (array-api-compat's wrapper of numpy,
torch, dask, CuPy, JAX … or an array-API library's own namespace). numpy and
torch keep benchmark-proven fast paths behind this door (:func:`is_numpy`,
:func:`is_torch`); every other library takes the generic path and gets its own
array type back. There is no global backend: the inputs decide, per call.

Python lists and scalars are numpy. Inputs that are not arrays (``None``, dicts,
strings, models), complex arrays and arrays of different libraries raise a
``TypeError`` that names the argument.
"""

from __future__ import annotations

import math
import sys
from types import ModuleType
from typing import Any

import array_api_compat
import numpy as np
from array_api_compat import numpy as _np_xp

from klkit.errors import BackendMismatchError, ShapeError

__all__ = [
    "asarray",
    "clamp_keep_gradient",
    "compute_dtype",
    "errstate",
    "is_numpy",
    "is_torch",
    "logsumexp",
    "namespace",
    "to_numpy",
]

NUMPY: ModuleType = _np_xp


def is_torch_array(x: Any) -> bool:
    """True when ``x`` is a ``torch.Tensor`` (without importing torch)."""
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(x, torch.Tensor)


def is_numpy(xp: Any) -> bool:
    return xp is NUMPY


_TORCH: list[ModuleType] = []


def _torch_namespace() -> ModuleType:
    if not _TORCH:
        from array_api_compat import torch as torch_xp

        _TORCH.append(torch_xp)
    return _TORCH[0]


def is_torch(xp: Any) -> bool:
    return bool(_TORCH) and xp is _TORCH[0]


def _namespace_of(x: Any, name: str) -> Any:
    """The namespace of one input; numpy for lists, scalars and numpy arrays."""
    if type(x) is np.ndarray or isinstance(x, (list, tuple, float, int, np.generic)):
        return NUMPY
    if is_torch_array(x):
        return _torch_namespace()
    if array_api_compat.is_array_api_obj(x):
        return array_api_compat.array_namespace(x)
    raise TypeError(
        f"`{name}` must be an array (numpy, torch or another array-API library), a list of numbers or a "
        f"distribution object; found {type(x).__module__}.{type(x).__qualname__}. "
        "Pass e.g. np.asarray(values) or torch.tensor(values)."
    )


def namespace(*arrays: Any, names: tuple[str, ...] = ("p", "q")) -> Any:
    """The array namespace shared by ``arrays``; mixing libraries raises.

    Python lists and scalars count as numpy: a tensor beside a list is a mix (which
    device and dtype the list should take is the caller's decision, not klkit's).
    """
    if all(type(a) is np.ndarray for a in arrays):
        return NUMPY
    if all(map(is_torch_array, arrays)):
        return _torch_namespace()
    spaces = [_namespace_of(a, n) for a, n in zip(arrays, names, strict=False)]
    if any(s is not spaces[0] for s in spaces):
        kinds = ", ".join(f"{type(a).__module__.split('.')[0]}.{type(a).__name__}" for a in arrays)
        mix = "torch tensors with other arrays" if any(map(is_torch_array, arrays)) else "array libraries"
        raise BackendMismatchError(
            f"inputs mix {mix} (found {kinds}); convert them to one library first, e.g. torch.as_tensor(x) or x.numpy()"
        )
    return spaces[0]


def asarray(x: Any, xp: Any, name: str = "p") -> Any:
    """``x`` as an array of ``xp`` with a real floating dtype (integers and booleans become floats).

    Ragged nested lists, complex numbers, strings, dates, Python objects, sparse and nested tensors raise
    klkit's own errors, naming ``name``, what was found and the fix.

    Examples
    --------
    >>> asarray([[0.5, 0.5], [1.0]], NUMPY)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    klkit.errors.ShapeError: `p` must be a rectangular array of numbers; found a ragged nested sequence ...
    """
    if xp is NUMPY:
        try:
            arr = np.asarray(x)
        except ValueError as exc:  # numpy: "setting an array element with a sequence ... inhomogeneous shape"
            raise ShapeError(
                f"`{name}` must be a rectangular array of numbers; found a ragged nested sequence (rows of different "
                "lengths). Pad the rows to one length with zeros (probability 0 is padding) or pass them one at a time."
            ) from exc
        kind = arr.dtype.kind
        if kind == "f":
            return arr
        if kind in "biu":
            return arr.astype(np.float64)
        raise TypeError(f"`{name}` must hold real numbers; found dtype {arr.dtype}. {_NOT_REAL.get(kind, _OTHER)}")
    if is_torch(xp):
        arr = x if is_torch_array(x) else xp.asarray(x)
        _check_torch_storage(arr, name)
        if arr.is_floating_point():
            return arr
        if not arr.is_complex():
            return arr.to(sys.modules["torch"].get_default_dtype())
        raise TypeError(f"`{name}` must hold real numbers; found dtype {arr.dtype}. {_NOT_REAL['c']}")
    arr = xp.asarray(x)
    if xp.isdtype(arr.dtype, "real floating"):
        return arr
    if xp.isdtype(arr.dtype, ("integral", "bool")):
        return xp.astype(arr, _default_float(xp, arr))
    raise TypeError(f"`{name}` must hold real numbers; found dtype {arr.dtype}. {_OTHER}")


_OTHER = "Convert the values to floats first, e.g. np.asarray(values, dtype=float)."
_NOT_REAL = {
    "c": "klkit does not drop imaginary parts: pass x.real explicitly if that is what you mean.",
    "U": "Strings are not numbers: convert them first, e.g. np.asarray(values, dtype=float).",
    "S": "Bytes are not numbers: convert them first, e.g. np.asarray(values, dtype=float).",
    "O": "Python objects (None, integers beyond 64 bits, mixed types) are not numbers klkit computes with: convert "
    "them to floats first, e.g. np.asarray(values, dtype=float).",
    "M": "Dates are not probabilities: pass the numbers you mean as floats.",
    "m": "Durations are not probabilities: pass the numbers you mean as floats.",
}


def _check_torch_storage(arr: Any, name: str) -> None:
    """Tensors whose values klkit cannot read: sparse and nested (ragged) layouts. (Meta tensors, shapes without
    values, are measured with ``validate=False``, for shape propagation; validation refuses them.)"""
    torch = sys.modules["torch"]
    if getattr(arr, "is_nested", False):
        raise ShapeError(
            f"`{name}` must be a rectangular tensor; found a nested (ragged) tensor. Pad it with zeros, e.g. "
            "torch.nested.to_padded_tensor(x, 0.0), or pass its rows one at a time."
        )
    if arr.layout != torch.strided:
        raise TypeError(
            f"`{name}` must be a dense (strided) tensor; found layout {arr.layout}. Call x.to_dense() first."
        )


def _default_float(xp: Any, x: Any) -> Any:
    info = xp.__array_namespace_info__() if hasattr(xp, "__array_namespace_info__") else None
    if info is not None:
        return info.default_dtypes(device=array_api_compat.device(x))["real floating"]
    return xp.float64


_HALF = ("float16", "bfloat16")


def dtype_name(dtype: Any) -> str:
    """'float32' for numpy, torch, dask and array-API dtypes alike."""
    return str(getattr(dtype, "name", None) or dtype).rsplit(".", 1)[-1].strip("'>")


def compute_dtype(xp: Any, dtype: Any) -> Any:
    """The dtype sums are accumulated in: float64 for numpy, float32 for half precision, else ``dtype``.

    numpy float32 is accumulated in float64 (free on the CPU, and correctly rounded results);
    torch float16/bfloat16 in float32, as torch's own reductions do.
    """
    if xp is NUMPY:
        return np.float64
    if dtype_name(dtype) in _HALF:
        return xp.float32
    return dtype


def is_half(dtype: Any) -> bool:
    return dtype_name(dtype) in _HALF


def logsumexp(x: Any, xp: Any, keepdims: bool = False) -> Any:
    """``log Σ exp x`` over the last axis; a slice of only ``-inf`` gives ``-inf``."""
    if is_torch(xp):
        return sys.modules["torch"].logsumexp(x, dim=-1, keepdim=keepdims)
    top = xp.max(x, axis=-1, keepdims=True)
    top = xp.where(xp.isfinite(top), top, xp.zeros_like(top))
    with errstate(xp):  # log 0 = -inf for a slice of only -inf
        out = xp.log(xp.sum(xp.exp(x - top), axis=-1, keepdims=True)) + top
    return out if keepdims else out[..., 0]


def to_numpy(x: Any) -> np.ndarray:
    """A numpy copy for messages and host-side checks (half precision as float32)."""
    if is_torch_array(x):
        x = x.detach()
        if is_half(x.dtype):
            x = x.float()
        return x.cpu().numpy()
    if isinstance(x, np.ndarray):
        return x
    if hasattr(x, "compute"):  # dask
        return np.asarray(x.compute())
    try:
        return np.asarray(x)
    except (TypeError, ValueError, RuntimeError):
        return np.from_dlpack(x)


def errstate(xp: Any) -> Any:
    """numpy's floating-point warnings off (inf and NaN are answers here); a no-op elsewhere."""
    if xp is NUMPY or not is_torch(xp):
        return np.errstate(divide="ignore", invalid="ignore", over="ignore", under="ignore")
    import contextlib

    return contextlib.nullcontext()


def log_of_base(base: float | None) -> float:
    """``log(base)``, or 1.0 for nats; ``base`` is validated by the caller."""
    return 1.0 if base is None else math.log(base)


def clamp_keep_gradient(value: Any, lower: float, upper: float | None = None) -> Any:
    """A torch tensor's values clamped to [lower, upper] (NaN stays NaN), its gradient left as unclamped.

    For measures that rounding can push a hair outside their range (KL ≥ 0 near p = q): the value
    is clamped, but derivatives of every order are those of the unclamped expression, so a Hessian
    at p = q (TRPO's Fisher matrix) is not zeroed on the rows where rounding went negative.

    Examples
    --------
    >>> import torch
    >>> x = torch.tensor([-0.5, 0.5], requires_grad=True)
    >>> y = clamp_keep_gradient(x * x * x, 0.0)  # -0.125 clamped to 0; d(x³)/dx = 3x² = 0.75 on both
    >>> y.detach().tolist(), torch.autograd.grad(y.sum(), x)[0].tolist()
    ([0.0, 0.125], [0.75, 0.75])
    """
    torch = _torch_namespace()
    if not value.requires_grad and not _derivatives_traced(value):  # nothing to keep: one clamp (NaN stays NaN)
        return value.clamp(lower, upper)
    shift = value - value.detach()  # zero, with value's derivatives
    out = torch.where(value < lower, shift + lower, value)
    return out if upper is None else torch.where(value > upper, shift + upper, out)


def _derivatives_traced(value: Any) -> bool:
    """Derivatives that ``requires_grad`` does not show: forward-mode AD or a ``torch.func`` transform."""
    import torch.autograd.forward_ad as forward_ad

    torch = sys.modules["torch"]
    if torch.compiler.is_compiling():  # the compiler traces both forms alike; keep the traceable one
        return True
    return forward_ad._current_level >= 0 or torch._C._functorch.is_functorch_wrapped_tensor(value)
