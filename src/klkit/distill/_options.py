"""Option checks for the distillation losses, and the resolved :class:`Spec` the engine runs on.

Every message names the argument in backticks, the rule, what was found and the fix.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from typing import Any, Literal

from klkit._engine import js_bound  # h(β) = −β log β − (1−β) log(1−β), the largest generalized JSD
from klkit.errors import InvalidArgumentError, ShapeError

Divergence = Literal["forward_kl", "reverse_kl", "jsd", "skew_forward_kl", "skew_reverse_kl", "tvd", "alpha_beta"]
Reduction = Literal["batchmean", "sum", "mean", "none"]
TeacherKind = Literal["logits", "log_probs", "probs"]

DIVERGENCES: tuple[str, ...] = (
    "forward_kl",
    "reverse_kl",
    "jsd",
    "skew_forward_kl",
    "skew_reverse_kl",
    "tvd",
    "alpha_beta",
)
REDUCTIONS: tuple[str, ...] = ("batchmean", "sum", "mean", "none")
TEACHER_KINDS: tuple[str, ...] = ("logits", "log_probs", "probs")
INTERPOLATIONS: tuple[str, ...] = ("trl", "continuous")


@dataclass(frozen=True)
class Spec:
    """What the engine computes per token: ``scale · clamp(D(teacher, student), 0, bound)``.

    ``divergence`` is one of the per-pair formulas of :mod:`klkit.distill._formulas` (``jsd`` only for
    ``0 < beta < 1``; the ends are ``forward_kl`` / ``reverse_kl``). ``scale`` holds the T² of
    ``temperature_scaling`` and the ``1 / (β(1−β))`` of the continuous interpolation.
    """

    divergence: str
    temperature: float
    beta: float = 0.5
    skew: float = 0.1
    alpha: float = 0.0
    scale: float = 1.0
    bound: float = math.inf


def _real(value: Any, name: str, fix: str) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(float(value)):
        raise InvalidArgumentError(f"`{name}` must be a finite real number; found {value!r}. {fix}")
    return float(value)


def check_beta(beta: Any) -> float:
    b = _real(beta, "beta", "Use 0 for forward KL(teacher‖student), 1 for reverse KL, 0.5 for the symmetric JSD.")
    if not 0.0 <= b <= 1.0:
        raise InvalidArgumentError(
            f"`beta` must lie in [0, 1] (the teacher's weight in the mixture (1−β)·student + β·teacher); "
            f"found {beta!r}. Use 0 for forward KL(teacher‖student), 1 for reverse KL, 0.5 for the symmetric JSD."
        )
    return b


def check_temperature(temperature: Any) -> float:
    t = _real(temperature, "temperature", "Use 1.0 for the models' own distributions.")
    if t <= 0:
        raise InvalidArgumentError(
            f"`temperature` must be > 0 (logits are divided by it); found {temperature!r}. "
            "Use 1.0 for the models' own distributions, values above 1 to soften them."
        )
    return t


def check_skew(skew: Any) -> float:
    s = _real(skew, "skew", "DistiLLM uses 0.1.")
    if not 0.0 <= s <= 1.0:
        raise InvalidArgumentError(
            f"`skew` must lie in [0, 1] (the weight of the first distribution in the skewed mixture); found "
            f"{skew!r}. DistiLLM uses 0.1; 0 gives the plain KL."
        )
    return s


def check_reduction(reduction: Any) -> str:
    if reduction not in REDUCTIONS:
        raise InvalidArgumentError(
            f"`reduction` must be one of 'batchmean', 'sum', 'mean' or 'none'; found {reduction!r}. "
            "'batchmean' is the mean per token, the usual choice."
        )
    return reduction


def check_divergence(divergence: Any) -> str:
    if divergence not in DIVERGENCES:
        raise InvalidArgumentError(
            f"`divergence` must be one of {', '.join(repr(d) for d in DIVERGENCES)}; found {divergence!r}. "
            "'forward_kl' is KL(teacher‖student), the classic distillation loss."
        )
    return divergence


def check_kind(kind: Any) -> str:
    if kind not in TEACHER_KINDS:
        raise InvalidArgumentError(
            f"`kind` (of the teacher) must be 'logits', 'log_probs' or 'probs'; found {kind!r}. "
            "The student is always given as logits."
        )
    return kind


def check_interpolation(interpolation: Any) -> str:
    if interpolation not in INTERPOLATIONS:
        raise InvalidArgumentError(
            f"`interpolation` must be 'trl' or 'continuous'; found {interpolation!r}. 'trl' reproduces TRL's "
            "generalized_jsd_loss; 'continuous' divides by β(1−β) so that β → 0 and β → 1 meet the two KLs."
        )
    return interpolation


def check_ignore_index(ignore_index: Any) -> int:
    if isinstance(ignore_index, bool) or not isinstance(ignore_index, numbers.Integral):
        raise TypeError(
            f"`ignore_index` must be an integer (the label of positions to skip); found {ignore_index!r}. "
            "Pass the integer your labels use for padding, e.g. ignore_index=-100 (the default)."
        )
    return int(ignore_index)


def check_chunk_size(chunk_size: Any) -> int | None:
    if chunk_size is None:
        return None
    if isinstance(chunk_size, bool) or not isinstance(chunk_size, numbers.Integral) or chunk_size < 1:
        raise InvalidArgumentError(
            f"`chunk_size` must be None (automatic) or an integer >= 1 (tokens per chunk); found {chunk_size!r}. "
            "Pass e.g. chunk_size=1024, or None to size the chunks automatically."
        )
    return int(chunk_size)


def check_num_items(num_items_in_batch: Any, reduction: str | None) -> Any:
    """An int/float > 0 or a tensor with one element (kept on its device, never read back); None passes.

    ``reduction`` None: any reduction goes (TRL's rule: the summed loss divided by the count).
    """
    if num_items_in_batch is None:
        return None
    if reduction is not None and reduction not in ("batchmean", "mean"):
        raise InvalidArgumentError(
            f"`num_items_in_batch` divides the summed loss, so it needs reduction='batchmean' or 'mean'; found "
            f"reduction={reduction!r} (a sum is already additive over micro-batches, per-token values are not "
            "divided). Pass reduction='batchmean', or drop num_items_in_batch."
        )
    if hasattr(num_items_in_batch, "numel") and hasattr(num_items_in_batch, "dtype"):
        if num_items_in_batch.numel() != 1:
            raise ShapeError(
                f"`num_items_in_batch` must be one number (the global token count); found a tensor "
                f"of shape {tuple(num_items_in_batch.shape)}. Pass the total, e.g. counts.sum()."
            )
        if num_items_in_batch.device.type == "cpu" and not float(num_items_in_batch) > 0:
            raise InvalidArgumentError(
                f"`num_items_in_batch` must be > 0 (a count of tokens); found {float(num_items_in_batch)!r}. "
                "Pass the number of kept tokens in the whole batch, or None when no token is kept."
            )
        return num_items_in_batch.reshape(())
    if (
        isinstance(num_items_in_batch, bool)
        or not isinstance(num_items_in_batch, numbers.Real)
        or not math.isfinite(float(num_items_in_batch))
        or num_items_in_batch <= 0
    ):
        raise InvalidArgumentError(
            f"`num_items_in_batch` must be a number > 0 (the token count of the whole accumulated batch, on all "
            f"ranks); found {num_items_in_batch!r}. Pass that count, e.g. (labels != -100).sum(), or None to "
            "divide by this call's own count."
        )
    return float(num_items_in_batch)


def divergence_spec(
    divergence: str,
    *,
    beta: Any,
    skew: Any,
    alpha: Any,
    temperature: Any,
    temperature_scaling: Any,
    interpolation: str = "trl",
) -> Spec:
    """Validate the options of ``divergence`` and resolve them into a :class:`Spec`."""
    divergence = check_divergence(divergence)
    t = check_temperature(temperature)
    if not isinstance(temperature_scaling, bool):
        raise InvalidArgumentError(
            f"`temperature_scaling` must be True or False (multiply the loss by T²); found {temperature_scaling!r}. "
            "Pass a bool, e.g. temperature_scaling=True."
        )
    scale = t * t if temperature_scaling else 1.0
    if divergence != "alpha_beta" and alpha is not None:
        raise InvalidArgumentError(
            f"`alpha` is an option of divergence='alpha_beta' only; found alpha={alpha!r} with divergence="
            f"{divergence!r}. Drop `alpha`, or pass divergence='alpha_beta'."
        )
    if divergence == "jsd":
        b = check_beta(beta)
        if b == 0.0:
            return Spec("forward_kl", t, scale=scale)
        if b == 1.0:
            return Spec("reverse_kl", t, scale=scale)
        if interpolation == "continuous":
            scale /= b * (1.0 - b)
        return Spec("jsd", t, beta=b, scale=scale, bound=js_bound((b, 1.0 - b)))
    if divergence in ("skew_forward_kl", "skew_reverse_kl"):
        s = check_skew(skew)
        return Spec(divergence, t, skew=s, scale=scale, bound=-math.log(s) if s > 0 else math.inf)
    if divergence == "tvd":
        return Spec("tvd", t, scale=scale, bound=1.0)
    if divergence == "alpha_beta":
        if alpha is None:
            raise InvalidArgumentError(
                "divergence='alpha_beta' needs `alpha` (and uses `beta`); found alpha=None. ABKD's α-β divergence "
                "D(teacher‖student): alpha=1, beta=0 is forward KL, alpha=0, beta=1 reverse KL."
            )
        a = _real(alpha, "alpha", "alpha=1, beta=0 gives forward KL.")
        b = _real(beta, "beta", "alpha=0, beta=1 gives reverse KL.")
        return Spec("alpha_beta", t, beta=b, alpha=a, scale=scale)
    return Spec(divergence, t, scale=scale)
