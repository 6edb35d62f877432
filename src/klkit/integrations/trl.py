"""TRL's GKD trainer with klkit's losses: :class:`KLKitGKDConfig` and :class:`KLKitGKDTrainer`.

What changes against ``trl.experimental.gkd.GKDTrainer`` (same constructor, same data, same on-policy
and sequence-level sampling):

- the loss is :func:`klkit.distill.divergence_loss` with the options of :class:`KLKitGKDConfig`: any
  divergence of :data:`klkit.distill.DIVERGENCES` (forward, reverse and skew KLs, TVD, α-β, TRL's JSD
  and its continuous variant), a top-k teacher, T² scaling, or the fused mode that never materialises
  the student's and the teacher's ``tokens × V`` logits;
- ``temperature`` divides the logits in the loss as well as at sampling (TRL's loss always uses
  T = 1: there the setting only changes sampling);
- ``num_items_in_batch`` counts the targets after the on-policy or teacher generations replaced the
  batch (TRL counts the dataset's completions before, so the accumulated loss is divided by a count
  of tokens that are not the ones trained on).

With ``divergence='jsd'`` and ``temperature=1`` off-policy (``lmbda=0``), its losses are TRL's.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

from trl.experimental.gkd import GKDConfig, GKDTrainer
from trl.models import unwrap_model_for_generation

from klkit.integrations._causal_lm import count_targets, trainer_loss
from klkit.integrations.options import DistillationOptions

__all__ = ["KLKitGKDConfig", "KLKitGKDTrainer"]


@dataclass
class KLKitGKDConfig(GKDConfig):
    """``GKDConfig`` plus the loss options of :class:`~klkit.integrations.options.DistillationOptions`.

    ``beta`` and ``temperature`` are GKDConfig's (β of the JSD or of 'alpha_beta'; T for sampling and,
    here, for the loss). The fields below default to TRL's loss: the generalized JSD.

    Parameters
    ----------
    divergence : str, default 'jsd'
        One of :data:`klkit.distill.DIVERGENCES`.
    interpolation : {'trl', 'continuous'}, default 'trl'
    skew : float, default 0.1
    alpha : float, optional
    temperature_scaling : bool, default False
    teacher_top_k : int, optional
    fused : bool, default False
    chunk_size : int, optional
        As in :class:`~klkit.integrations.options.DistillationOptions`.

    Examples
    --------
    >>> from klkit.integrations.trl import KLKitGKDConfig
    >>> config = KLKitGKDConfig(output_dir="out", divergence="reverse_kl", temperature=2.0, use_cpu=True, bf16=False)
    >>> config.distillation_options().temperature
    2.0
    """

    divergence: str = field(default="jsd", metadata={"help": "klkit.distill divergence of the loss."})
    interpolation: str = field(default="trl", metadata={"help": "'trl' or 'continuous' (jsd only)."})
    skew: float = field(default=0.1, metadata={"help": "λ of the skew KLs."})
    alpha: float | None = field(default=None, metadata={"help": "α of 'alpha_beta'."})
    temperature_scaling: bool = field(default=False, metadata={"help": "Multiply the loss by T²."})
    teacher_top_k: int | None = field(default=None, metadata={"help": "Distil from the teacher's top-k tokens."})
    fused: bool = field(default=False, metadata={"help": "Never materialise the tokens × V logits."})
    chunk_size: int | None = field(default=None, metadata={"help": "Tokens per chunk of the loss."})

    def __post_init__(self) -> None:
        super().__post_init__()
        self.distillation_options()  # refuse bad options when the config is built

    def distillation_options(self) -> DistillationOptions:
        """The loss options these fields describe (checked)."""
        return DistillationOptions(
            divergence=self.divergence,
            beta=self.beta,
            temperature=self.temperature,
            skew=self.skew,
            alpha=self.alpha,
            interpolation=self.interpolation,  # type: ignore[arg-type]
            temperature_scaling=self.temperature_scaling,
            teacher_top_k=self.teacher_top_k,
            fused=self.fused,
            chunk_size=self.chunk_size,
        )


def _options(args: GKDConfig) -> DistillationOptions:
    if isinstance(args, KLKitGKDConfig):
        return args.distillation_options()
    return DistillationOptions(divergence="jsd", beta=args.beta, temperature=args.temperature)


class KLKitGKDTrainer(GKDTrainer):
    """``trl.experimental.gkd.GKDTrainer`` whose loss is klkit's, at the configured temperature, divided by
    the number of tokens actually trained on.

    Takes GKDTrainer's arguments; ``args`` a :class:`KLKitGKDConfig` (a plain ``GKDConfig`` means TRL's
    generalized JSD). On-policy (probability ``lmbda``) and sequence-level (``seq_kd``) generations are made
    when the accumulated batch is drawn, before its targets are counted, with the same random draws as TRL
    (the student's weights do not change within an accumulation window, so the samples are distributed
    as TRL's). The loss of each micro-batch is its sum over targets divided by the accumulated batch's
    count, summed over processes when ``average_tokens_across_devices`` is set.

    Examples
    --------
    See the guide page "klkit with TRL and transformers" for a run on a tiny model.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.distillation = _options(self.args)
        self.loss_is_scaled_for_ga = True  # compute_loss divides by the accumulated batch's count

    def _generated(self, inputs: dict[str, Any]) -> dict[str, Any]:
        """``inputs`` with the student's (probability ``lmbda``) or, under ``seq_kd``, the teacher's
        completions in place of the dataset's, as ``GKDTrainer.training_step`` makes them."""
        if random.random() <= self.lmbda:
            model, checkpointing = self.model_wrapped, self.args.gradient_checkpointing_kwargs
        elif self.seq_kd:
            model, checkpointing = self.teacher_model, None
        else:
            return inputs
        options = {"generation_kwargs": self.generation_kwargs}
        if checkpointing is not None:
            options["gradient_checkpointing_kwargs"] = checkpointing
        with unwrap_model_for_generation(model, self.accelerator, **options) as unwrapped:
            ids, mask, labels = self.generate_on_policy_outputs(unwrapped, inputs, self.generation_config)
        return {**inputs, "input_ids": ids, "attention_mask": mask, "labels": labels}

    def get_batch_samples(self, epoch_iterator: Any, num_batches: int, device: Any) -> tuple[list, Any]:
        batches, _ = super().get_batch_samples(epoch_iterator, num_batches, device)
        batches = [self._generated(batch) for batch in batches]
        return batches, (count_targets(batches, self, device) if batches else None)

    def training_step(self, model: Any, inputs: dict[str, Any], num_items_in_batch: Any = None) -> Any:
        # the generations were made in get_batch_samples: skip GKDTrainer's own
        return super(GKDTrainer, self).training_step(model, inputs, num_items_in_batch)

    def compute_loss(
        self, model: Any, inputs: dict[str, Any], return_outputs: bool = False, num_items_in_batch: Any = None
    ) -> Any:
        return trainer_loss(self, model, inputs, return_outputs, num_items_in_batch)
