"""The distillation loss of a causal language model batch: student and teacher forward, shift, divergence.

Shared by :mod:`klkit.integrations.transformers` and :mod:`klkit.integrations.trl`; the loss options
are :class:`~klkit.integrations.options.DistillationOptions`.
"""

from __future__ import annotations

from typing import Any

import torch

from klkit.distill import divergence_loss, fused_linear_divergence, topk_teacher
from klkit.errors import InvalidArgumentError
from klkit.integrations.options import DistillationOptions

# configuration fields that change the logits after the output layer: the fused path cannot apply them
_LOGIT_TRANSFORMS = (
    "final_logit_softcapping",
    "logit_scale",
    "output_multiplier",
    "lm_head_multiplier",
    "logits_scaling",
)


def continuous_factor(options: DistillationOptions) -> float:
    """1 / (β(1−β)) for the continuous generalized JSD inside (0, 1), else 1."""
    beta = options.beta
    if options.divergence == "jsd" and options.interpolation == "continuous" and 0.0 < beta < 1.0:
        return 1.0 / (beta * (1.0 - beta))
    return 1.0


def logits_divergence(
    student_logits: torch.Tensor,
    teacher_logits: torch.Tensor,
    labels: torch.Tensor | None,
    options: DistillationOptions,
    num_items_in_batch: Any = None,
) -> torch.Tensor:
    """The loss from already shifted logits ``(B, L, V)`` and labels ``(B, L)`` (−100: not a target)."""
    teacher: Any = teacher_logits
    if options.teacher_top_k is not None:
        teacher = topk_teacher(teacher_logits, options.teacher_top_k, temperature=options.temperature)
    loss = divergence_loss(
        student_logits, teacher, labels=labels, num_items_in_batch=num_items_in_batch, **options.loss_keywords()
    )
    factor = continuous_factor(options)
    return loss * factor if factor != 1.0 else loss


def check_fusable(model: Any, who: str) -> tuple[Any, torch.Tensor, torch.Tensor | None]:
    """``(backbone, weight, bias)`` of a causal LM whose logits are ``last_hidden_state @ weight.T + bias``."""
    backbone = getattr(model, "base_model", None)
    head = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
    if backbone is None or backbone is model or head is None or not hasattr(head, "weight"):
        raise InvalidArgumentError(
            f"`fused=True` needs a {who} model with a backbone (`model.base_model`) and an output layer "
            f"(`model.get_output_embeddings()`); found {type(model).__name__}. Use fused=False."
        )
    config = getattr(model, "config", None)
    text = config.get_text_config() if hasattr(config, "get_text_config") else config
    for name in _LOGIT_TRANSFORMS:
        value = getattr(text, name, None)
        if value is not None and value != 1:
            raise InvalidArgumentError(
                f"`fused=True` computes the logits as hidden states times the output layer, but the {who} "
                f"model's config sets `{name}={value!r}`, which changes them afterwards; use fused=False."
            )
    return backbone, head.weight, getattr(head, "bias", None)


def _forward(model: Any, inputs: dict[str, Any]) -> Any:
    return model(input_ids=inputs["input_ids"], attention_mask=inputs.get("attention_mask"))


def causal_lm_divergence(
    model: Any,
    teacher_model: Any,
    inputs: dict[str, Any],
    options: DistillationOptions,
    num_items_in_batch: Any = None,
) -> tuple[torch.Tensor, Any]:
    """``(loss, student outputs)`` of one batch: position i predicts token i + 1 where ``labels[i + 1] != -100``.

    Unfused, the outputs are the student's (with its logits); fused, its backbone's (no logits: the
    output layer is applied a chunk of tokens at a time inside the loss). The teacher runs in eval
    mode without gradients.
    """
    labels = inputs["labels"][:, 1:]
    teacher_model.eval()
    if not options.fused:
        outputs = _forward(model, inputs)
        with torch.no_grad():
            teacher_logits = _forward(teacher_model, inputs).logits
        loss = logits_divergence(outputs.logits[:, :-1], teacher_logits[:, :-1], labels, options, num_items_in_batch)
        return loss, outputs
    backbone, weight, bias = check_fusable(model, "student")
    teacher_backbone, teacher_weight, teacher_bias = check_fusable(teacher_model, "teacher")
    outputs = _forward(backbone, inputs)
    with torch.no_grad():
        teacher_hidden = _forward(teacher_backbone, inputs).last_hidden_state[:, :-1]
    loss = fused_linear_divergence(
        outputs.last_hidden_state[:, :-1],
        weight,
        teacher_hidden,
        teacher_weight.detach(),
        student_bias=bias,
        teacher_bias=None if teacher_bias is None else teacher_bias.detach(),
        labels=labels,
        num_items_in_batch=num_items_in_batch,
        **options.loss_keywords(),
    )
    factor = continuous_factor(options)
    return (loss * factor if factor != 1.0 else loss), outputs


def count_targets(batches: list[dict[str, Any]], trainer: Any, device: Any) -> torch.Tensor:
    """The number of predicted tokens (``labels[:, 1:] != -100``) in ``batches``, summed over the processes
    when the trainer averages tokens across devices: the divisor that makes the micro-batches' losses
    add up to the accumulated batch's mean."""
    count = torch.tensor(sum(int((batch["labels"][:, 1:] != -100).sum()) for batch in batches), device=device)
    if trainer.args.average_tokens_across_devices and trainer.args.world_size > 1:
        count = trainer.accelerator.gather(count).sum()
    return count


def scale_for_processes(loss: torch.Tensor, trainer: Any, num_items_in_batch: Any) -> torch.Tensor:
    """× the number of processes when ``num_items_in_batch`` counts every process's tokens (DDP averages
    the gradients over processes), as ``transformers.Trainer.compute_loss`` does."""
    processes = trainer.accelerator.num_processes
    if num_items_in_batch is not None and trainer.args.average_tokens_across_devices and processes > 1:
        return loss * processes
    return loss


def trainer_loss(
    trainer: Any, model: Any, inputs: dict[str, Any], return_outputs: bool, num_items_in_batch: Any
) -> Any:
    """A klkit trainer's ``compute_loss``: the student's divergence from ``trainer.teacher_model`` on
    ``inputs`` (:func:`causal_lm_divergence`), scaled as DDP needs (:func:`scale_for_processes`)."""
    student = trainer.accelerator.unwrap_model(model) if trainer.distillation.fused else model
    teacher = trainer.accelerator.unwrap_model(trainer.teacher_model)
    loss, outputs = causal_lm_divergence(student, teacher, inputs, trainer.distillation, num_items_in_batch)
    loss = scale_for_processes(loss, trainer, num_items_in_batch)
    return (loss, outputs) if return_outputs else loss
