"""What a trainer passes to klkit's distillation losses: :class:`DistillationOptions`.

Shared by :mod:`klkit.integrations.transformers` and :mod:`klkit.integrations.trl`; imports torch
and klkit only.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal

import torch

from klkit.distill import DIVERGENCES, divergence_loss
from klkit.errors import InvalidArgumentError

__all__ = ["DistillationOptions"]


@dataclass(frozen=True)
class DistillationOptions:
    r"""How a student is distilled: the arguments of :func:`klkit.distill.divergence_loss` a trainer passes.

    .. math:: \mathcal L = \frac{c}{N} \sum_{n\ \mathrm{target}} D\big(\mathrm{softmax}(z^t_n / T),\
       \mathrm{softmax}(z^s_n / T)\big)

    Parameters
    ----------
    divergence : str, default 'forward_kl'
        One of :data:`klkit.distill.DIVERGENCES`: 'forward_kl' (KL(t‖s)), 'reverse_kl' (KL(s‖t)), 'jsd'
        (TRL's generalized JSD), 'skew_forward_kl', 'skew_reverse_kl', 'tvd', 'alpha_beta'.
    beta : float, default 0.5
        The teacher's weight in the 'jsd' mixture (0: forward KL, 1: reverse KL), or the β of 'alpha_beta'.
    temperature : float, default 1.0
        T > 0 divides both models' logits.
    skew : float, default 0.1
        λ of the skew KLs.
    alpha : float, optional
        The α of 'alpha_beta' (required there).
    interpolation : {'trl', 'continuous'}, default 'trl'
        'continuous' (with 'jsd' only) divides the JSD by β(1−β) inside (0, 1), so the loss tends to the
        forward and reverse KL at the ends instead of jumping to them.
    temperature_scaling : bool, default False
        Multiply the loss by T² (c above).
    teacher_top_k : int, optional
        Distil from the teacher's k most probable tokens and a tail bucket (:func:`klkit.distill.topk_teacher`)
        instead of its full distribution.
    fused : bool, default False
        Compute the loss from the last hidden states and the output layers
        (:func:`klkit.distill.fused_linear_divergence`), a chunk of tokens at a time, so that the student's
        and the teacher's ``tokens × V`` logits never exist. Not with ``teacher_top_k``, nor for models whose
        config rescales or soft-caps the logits after the output layer.
    chunk_size : int, optional
        Tokens per chunk of the loss (default: :func:`klkit.distill.divergence_loss`'s, or
        :func:`klkit.distill.fused_linear_divergence`'s when fused): smaller chunks, less extra memory.

    Raises
    ------
    klkit.errors.InvalidArgumentError
        An unknown divergence or interpolation, 'continuous' with another divergence, a top-k teacher with
        ``fused``, k < 1, and every error :func:`klkit.distill.divergence_loss` raises for these values.

    Examples
    --------
    >>> from klkit.integrations.options import DistillationOptions
    >>> DistillationOptions(divergence="reverse_kl", temperature=2.0).divergence
    'reverse_kl'
    >>> DistillationOptions(divergence="tvd", interpolation="continuous")
    Traceback (most recent call last):
    ...
    klkit.errors.InvalidArgumentError: `interpolation='continuous'` applies to divergence='jsd' only; ...
    """

    divergence: str = "forward_kl"
    beta: float = 0.5
    temperature: float = 1.0
    skew: float = 0.1
    alpha: float | None = None
    interpolation: Literal["trl", "continuous"] = "trl"
    temperature_scaling: bool = False
    teacher_top_k: int | None = None
    fused: bool = False
    chunk_size: int | None = None

    def __post_init__(self) -> None:
        if self.divergence not in DIVERGENCES:
            raise InvalidArgumentError(
                f"`divergence` must be one of {', '.join(map(repr, DIVERGENCES))}; found {self.divergence!r}."
            )
        if self.interpolation not in ("trl", "continuous"):
            raise InvalidArgumentError(f"`interpolation` must be 'trl' or 'continuous'; found {self.interpolation!r}.")
        if self.interpolation == "continuous" and self.divergence != "jsd":
            raise InvalidArgumentError(
                f"`interpolation='continuous'` applies to divergence='jsd' only; found divergence={self.divergence!r}. "
                "Use interpolation='trl'."
            )
        if self.teacher_top_k is not None:
            if (
                isinstance(self.teacher_top_k, bool)
                or not isinstance(self.teacher_top_k, int)
                or self.teacher_top_k < 1
            ):
                raise InvalidArgumentError(
                    f"`teacher_top_k` must be a positive int or None; found {self.teacher_top_k!r}."
                )
            if self.fused:
                raise InvalidArgumentError(
                    "`teacher_top_k` and `fused=True` cannot be combined: a top-k teacher is compared with the "
                    "student's full logits. Use one of them."
                )
        # the loss's own checks (β range, T > 0, α for 'alpha_beta', ...) on a one-token example
        divergence_loss(torch.zeros(1, 2), torch.zeros(1, 2), **self.loss_keywords())

    def loss_keywords(self) -> dict[str, Any]:
        """The keyword arguments of :func:`klkit.distill.divergence_loss` (and of
        :func:`klkit.distill.fused_linear_divergence`) these options stand for, the teacher's form aside."""
        keywords: dict[str, Any] = {
            "divergence": self.divergence,
            "beta": self.beta,
            "skew": self.skew,
            "temperature": self.temperature,
            "temperature_scaling": self.temperature_scaling,
            "chunk_size": self.chunk_size,
        }
        if self.alpha is not None:
            keywords["alpha"] = self.alpha
        return keywords

    def as_dict(self) -> dict[str, Any]:
        """The options as a plain dict (for logging and configs)."""
        return asdict(self)
