"""Array backends: numpy (and anything array-like) or torch, chosen by input type.

There is no global backend. :func:`namespace` looks at the inputs and returns
the matching :class:`Ops`, a handful of functions with one spelling for both
libraries, so that each measure is written once.
"""

from __future__ import annotations

import math
import sys
from typing import Any

import numpy as np
from scipy import special

from klkit.errors import BackendMismatchError


def is_torch(x: Any) -> bool:
    """True when ``x`` is a ``torch.Tensor`` (without importing torch)."""
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(x, torch.Tensor)


class NumpyOps:
    """numpy implementation; inputs are converted with :func:`numpy.asarray`."""

    name = "numpy"
    log = staticmethod(np.log)
    exp = staticmethod(np.exp)
    log1p = staticmethod(np.log1p)
    where = staticmethod(np.where)
    isnan = staticmethod(np.isnan)
    isfinite = staticmethod(np.isfinite)
    logaddexp = staticmethod(np.logaddexp)
    moveaxis = staticmethod(np.moveaxis)

    @staticmethod
    def asarray(x: Any) -> np.ndarray:
        arr = np.asarray(x)
        if arr.dtype.kind in "biu":
            arr = arr.astype(np.float64)
        return arr

    @staticmethod
    def compute_dtype(x: np.ndarray) -> Any:
        # Accumulate in float64 whatever the storage dtype: float32 results
        # are then correctly rounded and never underflow midway.
        return np.float64

    @staticmethod
    def cast(x: np.ndarray, dtype: Any) -> np.ndarray:
        return x.astype(dtype, copy=False)

    @staticmethod
    def sum(x: np.ndarray, axis: int = -1, dtype: Any = None) -> np.ndarray:
        return np.sum(x, axis=axis, dtype=dtype)

    @staticmethod
    def amax(x: np.ndarray, axis: int = -1, keepdims: bool = False) -> np.ndarray:
        return np.max(x, axis=axis, keepdims=keepdims)

    @staticmethod
    def amin(x: np.ndarray, axis: int = -1) -> np.ndarray:
        return np.min(x, axis=axis)

    @staticmethod
    def logsumexp(x: np.ndarray, axis: int = -1, keepdims: bool = False) -> np.ndarray:
        with np.errstate(divide="ignore"):
            return special.logsumexp(x, axis=axis, keepdims=keepdims)

    @staticmethod
    def clamp(x: np.ndarray, lower: float, upper: float | None) -> np.ndarray:
        return np.clip(x, lower, upper)

    @staticmethod
    def log_softmax(x: np.ndarray) -> np.ndarray:
        return special.log_softmax(x, axis=-1)

    @staticmethod
    def broadcast_to(x: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
        return np.broadcast_to(x, shape)

    @staticmethod
    def any(x: np.ndarray) -> bool:
        return bool(np.any(x))

    @staticmethod
    def concat(xs: list[np.ndarray]) -> np.ndarray:
        return np.concatenate(xs)

    @staticmethod
    def finish(x: np.ndarray, dtype: Any) -> Any:
        """Cast a result back to the input dtype; 0-d results become numpy scalars."""
        return np.asarray(x, dtype=dtype)[()]

    @staticmethod
    def to_numpy(x: np.ndarray) -> np.ndarray:
        return np.asarray(x)

    @staticmethod
    def errstate() -> Any:
        return np.errstate(divide="ignore", invalid="ignore", over="ignore", under="ignore")


class TorchOps:
    """torch implementation; dtype, device and autograd are kept."""

    name = "torch"

    def __init__(self) -> None:
        import torch

        self.torch = torch
        self.log = torch.log
        self.exp = torch.exp
        self.log1p = torch.log1p
        self.where = torch.where
        self.isnan = torch.isnan
        self.isfinite = torch.isfinite
        self.logaddexp = torch.logaddexp
        self.moveaxis = torch.movedim

    def asarray(self, x: Any) -> Any:
        if not x.is_floating_point():
            x = x.to(self.torch.get_default_dtype())
        return x

    def compute_dtype(self, x: Any) -> Any:
        return x.dtype

    def cast(self, x: Any, dtype: Any) -> Any:
        return x.to(dtype)

    def sum(self, x: Any, axis: int = -1, dtype: Any = None) -> Any:
        return x.sum(dim=axis, dtype=dtype)

    def amax(self, x: Any, axis: int = -1, keepdims: bool = False) -> Any:
        return x.amax(dim=axis, keepdim=keepdims)

    def amin(self, x: Any, axis: int = -1) -> Any:
        return x.amin(dim=axis)

    def logsumexp(self, x: Any, axis: int = -1, keepdims: bool = False) -> Any:
        return self.torch.logsumexp(x, dim=axis, keepdim=keepdims)

    def clamp(self, x: Any, lower: float, upper: float | None) -> Any:
        return x.clamp(min=lower, max=upper)

    def log_softmax(self, x: Any) -> Any:
        return self.torch.log_softmax(x, dim=-1)

    def broadcast_to(self, x: Any, shape: tuple[int, ...]) -> Any:
        return x.expand(shape)

    def any(self, x: Any) -> bool:
        return bool(x.any())

    def concat(self, xs: list[Any]) -> Any:
        return self.torch.cat(xs)

    def finish(self, x: Any, dtype: Any) -> Any:
        return x.to(dtype)

    def to_numpy(self, x: Any) -> np.ndarray:
        return x.detach().cpu().numpy()

    def errstate(self) -> Any:
        import contextlib

        return contextlib.nullcontext()


_NUMPY = NumpyOps()


def namespace(*arrays: Any) -> NumpyOps | TorchOps:
    """The backend of the inputs; mixing torch tensors with other arrays raises.

    Python scalars and lists follow the other inputs (numpy when all are).
    """
    n_torch = sum(is_torch(a) for a in arrays)
    if n_torch == 0:
        return _NUMPY
    if n_torch == len(arrays):
        return TorchOps()
    kinds = ", ".join(type(a).__module__.split(".")[0] + "." + type(a).__name__ for a in arrays)
    raise BackendMismatchError(
        f"inputs mix torch tensors with other arrays (found {kinds}); "
        "convert them to one library first, e.g. torch.as_tensor(x) or x.numpy()"
    )


def log_of_base(base: float | None) -> float:
    """``log(base)``, or 1.0 for nats; ``base`` is validated by the caller."""
    return 1.0 if base is None else math.log(base)
