"""Input handling shared by the distillation losses: types, shapes, labels, and the reduction's divisor."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from klkit.errors import BackendMismatchError, ShapeError


def numpy_bridge(names: tuple[str, ...]) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """numpy in → numpy out: numpy arrays among the positional/keyword arrays ``names`` (and the arrays of a
    TopKTeacher among them) are computed as
    float64 CPU tensors without autograd, and the result comes back as numpy in the students' dtype
    (0-d arrays for reductions). Mixing numpy and torch among ``names`` raises; labels may be either."""

    def wrap(fn: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(fn)
        def inner(*args: Any, **kwargs: Any) -> Any:
            arrays = [(n, a) for n, a in zip(names, args, strict=False)] + [
                (n, kwargs[n]) for n in names[len(args) :] if kwargs.get(n) is not None
            ]
            as_numpy = [n for n, a in arrays if any(isinstance(x, np.ndarray | np.generic) for x in _parts(a))]
            if not as_numpy:
                return fn(*args, **kwargs)
            as_torch = [n for n, a in arrays if any(isinstance(x, torch.Tensor) for x in _parts(a))]
            if as_torch:
                raise BackendMismatchError(
                    f"inputs mix numpy ({', '.join(f'`{n}`' for n in as_numpy)}) and torch "
                    f"({', '.join(f'`{n}`' for n in as_torch)}); convert them to one library first, "
                    "e.g. torch.as_tensor(x) or x.numpy()."
                )
            dtype = np.asarray(args[0]).dtype

            def convert(a: Any) -> Any:
                if _is_record(a):  # a TopKTeacher: convert its arrays, keep its temperature
                    return type(a)(*(convert(x) for x in a))
                if not isinstance(a, np.ndarray | np.generic):
                    return a
                a = np.asarray(a)
                if a.dtype.kind == "f":
                    a = a.astype(np.float64)
                return torch.from_numpy(np.ascontiguousarray(a))

            args = tuple(convert(a) for a in args)
            kwargs = {k: convert(v) for k, v in kwargs.items()}
            with torch.no_grad():
                out = fn(*args, **kwargs)
            if isinstance(out, tuple):  # a TopKTeacher
                return type(out)(*(x.numpy() if isinstance(x, torch.Tensor) else x for x in out))
            return out.numpy().astype(dtype if dtype.kind == "f" else np.float64)

        return inner

    return wrap


def _is_record(a: Any) -> bool:
    """A NamedTuple of arrays (a TopKTeacher), whose fields the numpy bridge converts one by one."""
    return isinstance(a, tuple) and hasattr(a, "_fields")


def _parts(a: Any) -> tuple[Any, ...]:
    return tuple(a) if _is_record(a) else (a,)


def check_logits_tensor(x: Any, name: str) -> torch.Tensor:
    if not isinstance(x, torch.Tensor):
        raise TypeError(
            f"`{name}` must be a torch.Tensor or a numpy array; found {type(x).__module__}."
            f"{type(x).__qualname__}. Pass e.g. torch.as_tensor(x)."
        )
    if not x.is_floating_point():
        raise TypeError(f"`{name}` must have a floating dtype; found {x.dtype}. Cast with .float().")
    if x.ndim == 0 or x.shape[-1] == 0:
        raise ShapeError(
            f"`{name}` must have a non-empty vocabulary axis (the last); found shape {tuple(x.shape)}. "
            "Pass the model's logits over its vocabulary, of shape (..., V) with V >= 1."
        )
    return x


def check_same_device(**tensors: Any) -> None:
    present = {n: t for n, t in tensors.items() if isinstance(t, torch.Tensor)}
    devices = {t.device for t in present.values()}
    if len(devices) > 1:
        found = ", ".join(f"`{n}` on {t.device}" for n, t in present.items())
        raise BackendMismatchError(f"the inputs must be on one device; found {found}. Move them with .to(device).")


def check_pair(
    student: torch.Tensor, teacher: torch.Tensor, student_name: str = "student", teacher_name: str = "teacher"
) -> None:
    if teacher.shape[-1] != student.shape[-1]:
        raise ShapeError(
            f"`{teacher_name}` and `{student_name}` must have the same vocabulary size (last axis); found "
            f"{teacher.shape[-1]} and {student.shape[-1]}. If one model pads its vocabulary, slice both to the "
            f"shared tokens, e.g. {teacher_name}[..., :{min(teacher.shape[-1], student.shape[-1])}]."
        )
    if teacher.shape != student.shape:
        raise ShapeError(
            f"`{teacher_name}` must have the shape of `{student_name}` {tuple(student.shape)}; found "
            f"{tuple(teacher.shape)}. Pass one teacher row per student token, in the same order: run both models "
            "on the same batch, and shift or slice both logits alike."
        )


def valid_rows(
    labels: Any, positions: tuple[int, ...], ignore_index: int, device: torch.device, name: str = "labels"
) -> torch.Tensor | None:
    """Indices of the rows whose label is not ``ignore_index`` (None: every row), one host sync."""
    if labels is None:
        return None
    if not isinstance(labels, torch.Tensor):
        labels = torch.as_tensor(np.asarray(labels))
    if labels.is_floating_point() or labels.is_complex() or labels.dtype == torch.bool:
        raise TypeError(
            f"`{name}` must hold integer token ids (or {ignore_index} to ignore a position); found "
            f"dtype {labels.dtype}."
        )
    if tuple(labels.shape) != positions:
        raise ShapeError(
            f"`{name}` must have the shape of the logits without the vocabulary axis, {positions}; "
            f"found {tuple(labels.shape)}. Shift the labels the way the logits were shifted."
        )
    keep = (labels.reshape(-1) != ignore_index).to(device)
    if bool(keep.all()):
        return None
    return keep.nonzero().reshape(-1)


def kept(rows: torch.Tensor | None, n: int) -> int:
    return n if rows is None else int(rows.shape[0])
