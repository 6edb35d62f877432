"""The options of :func:`klkit.fitting.fit`, checked, and the single-thread setting it runs under."""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator
from typing import Any

from klkit.errors import InvalidArgumentError

__all__ = ["check_options", "positive_int", "single_thread"]


@contextlib.contextmanager
def single_thread() -> Iterator[None]:
    """Run with one intra-op torch thread, restoring the setting after.

    The tensors here are tiny (a few hundred samples): threads only add synchronisation, which costs
    10x or more on a busy machine.
    """
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def positive_int(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InvalidArgumentError(f"`{name}` must be a positive integer; found {value!r}.")
    return value


def check_options(
    target: Any,
    family: Any,
    divergence: Any,
    components: Any,
    covariance: Any,
    restarts: Any,
    n_samples: Any,
    steps: Any,
    batch_size: Any,
    learning_rate: Any,
    eval_samples: Any,
) -> dict[str, Any]:
    if not (hasattr(target, "sample") and hasattr(target, "log_prob")):
        raise TypeError(
            f"`target` must be a distribution with `sample` and `log_prob` (e.g. a "
            f"torch.distributions.MixtureSameFamily); found {type(target).__name__}."
        )
    for name, value, allowed in (
        ("family", family, ("gaussian", "gaussian_mixture")),
        ("divergence", divergence, ("forward", "reverse")),
        ("covariance", covariance, ("full", "diag")),
    ):
        if value not in allowed:
            raise InvalidArgumentError(f"`{name}` must be one of {', '.join(map(repr, allowed))}; found {value!r}.")
    positive_int(components, "components")
    if family == "gaussian" and components != 1:
        raise InvalidArgumentError(
            f"`components` must be 1 with family='gaussian'; found {components}. "
            "Use family='gaussian_mixture' for several components."
        )
    for name, value in (
        ("n_samples", n_samples),
        ("steps", steps),
        ("batch_size", batch_size),
        ("eval_samples", eval_samples),
    ):
        positive_int(value, name)
    if not (isinstance(learning_rate, (int, float)) and learning_rate > 0 and math.isfinite(learning_rate)):
        raise InvalidArgumentError(f"`learning_rate` must be a positive finite number; found {learning_rate!r}.")
    if restarts is None:
        restarts = 1 if (divergence == "forward" and family == "gaussian") else (5 if divergence == "forward" else 8)
    positive_int(restarts, "restarts")
    return {"restarts": restarts}
