"""klkit's distillation losses inside a Hugging Face ``transformers.Trainer``.

- :class:`DistillationOptions` (from :mod:`klkit.integrations.options`): which divergence, at which
  temperature, from a full or top-k teacher, fused or not; checked when built.
- :func:`distillation_loss`: the loss of one causal-LM batch, for a ``compute_loss`` of your own.
- :class:`KLKitDistillationTrainer`: a ``Trainer`` that distils ``model`` from ``teacher_model`` on the
  dataset's labelled tokens.

Position i predicts token i + 1; tokens whose label is −100 (prompt, padding) are not targets. With
``num_items_in_batch`` (what the Trainer passes under gradient accumulation) the loss is the sum over
the micro-batch divided by the accumulated batch's number of targets, so that the micro-batches add up
to the accumulated batch's mean.
"""

from __future__ import annotations

from typing import Any

import transformers

from klkit.errors import InvalidArgumentError
from klkit.integrations._causal_lm import causal_lm_divergence, count_targets, trainer_loss
from klkit.integrations.options import DistillationOptions

__all__ = ["DistillationOptions", "KLKitDistillationTrainer", "distillation_loss"]


def distillation_loss(
    model: Any,
    teacher_model: Any,
    inputs: dict[str, Any],
    options: DistillationOptions | None = None,
    *,
    num_items_in_batch: Any = None,
    return_outputs: bool = False,
) -> Any:
    r"""The distillation loss of one causal-LM batch, for a ``Trainer.compute_loss`` of your own.

    .. math:: \mathcal L = \frac{1}{N} \sum_{b,\,i:\ y_{b,i+1} \ne -100}
       D\big(t(\cdot \mid x_{b,\le i}),\ s(\cdot \mid x_{b,\le i})\big)

    with D, T and the teacher's form from ``options`` and N the number of targets in the batch (or
    ``num_items_in_batch``).

    Parameters
    ----------
    model, teacher_model : transformers.PreTrainedModel
        Causal LMs over the same vocabulary; the teacher runs in eval mode without gradients.
    inputs : dict
        ``input_ids``, ``labels`` (−100 where a token is not a target) and optionally ``attention_mask``.
    options : DistillationOptions, optional
        Default: forward KL at T = 1.
    num_items_in_batch : int or torch.Tensor, optional
        The number of targets in the accumulated batch (what ``Trainer.compute_loss`` receives).
    return_outputs : bool, default False
        Also return the student's outputs (its backbone's, without logits, when ``options.fused``).

    Returns
    -------
    torch.Tensor or tuple
        The scalar loss, or ``(loss, outputs)``.

    Examples
    --------
    >>> import torch
    >>> from transformers import GPT2Config, GPT2LMHeadModel
    >>> from klkit.integrations.transformers import DistillationOptions, distillation_loss
    >>> _ = torch.manual_seed(0)
    >>> config = GPT2Config(n_layer=1, n_embd=8, n_head=2, vocab_size=50, bos_token_id=0, eos_token_id=0)
    >>> student, teacher = GPT2LMHeadModel(config).eval(), GPT2LMHeadModel(config)
    >>> ids = torch.randint(0, 50, (2, 6))
    >>> batch = {"input_ids": ids, "labels": ids.masked_fill(torch.arange(6) < 2, -100)}
    >>> loss = distillation_loss(student, teacher, batch, DistillationOptions(divergence="reverse_kl"))
    >>> fused = distillation_loss(student, teacher, batch, DistillationOptions(divergence="reverse_kl", fused=True))
    >>> bool(torch.allclose(loss, fused, rtol=1e-5)), loss.shape
    (True, torch.Size([]))
    """
    loss, outputs = causal_lm_divergence(
        model, teacher_model, inputs, options or DistillationOptions(), num_items_in_batch
    )
    return (loss, outputs) if return_outputs else loss


class KLKitDistillationTrainer(transformers.Trainer):
    """A ``transformers.Trainer`` that distils ``model`` from ``teacher_model`` with :func:`distillation_loss`.

    Takes the Trainer's arguments plus ``teacher_model`` and ``distillation`` (a :class:`DistillationOptions`).
    The dataset's batches need ``input_ids``, ``labels`` (−100 where not a target) and optionally
    ``attention_mask``. Under gradient accumulation the loss of each micro-batch is its sum divided by
    the accumulated batch's number of targets (counted by this trainer, so any model works), which gives
    the accumulated batch's per-token mean; across processes the count is summed when
    ``average_tokens_across_devices`` is set, as the Trainer does.

    Examples
    --------
    See the guide page "klkit with TRL and transformers" for a run on a tiny model.
    """

    def __init__(
        self,
        model: Any = None,
        teacher_model: Any = None,
        args: Any = None,
        *,
        distillation: DistillationOptions | None = None,
        **kwargs: Any,
    ) -> None:
        if teacher_model is None:
            raise InvalidArgumentError("`teacher_model` is required: the model whose distribution the student learns.")
        super().__init__(model=model, args=args, **kwargs)
        self.distillation = distillation or DistillationOptions()
        self.teacher_model = self.accelerator.prepare_model(teacher_model, evaluation_mode=True)
        self.loss_is_scaled_for_ga = True  # compute_loss divides by the accumulated batch's count

    def get_batch_samples(self, epoch_iterator: Any, num_batches: int, device: Any) -> tuple[list, Any]:
        batches, _ = super().get_batch_samples(epoch_iterator, num_batches, device)
        return batches, (count_targets(batches, self, device) if batches else None)

    def compute_loss(
        self, model: Any, inputs: dict[str, Any], return_outputs: bool = False, num_items_in_batch: Any = None
    ) -> Any:
        return trainer_loss(self, model, inputs, return_outputs, num_items_in_batch)
