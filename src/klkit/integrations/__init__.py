"""Adapters for the trainers language models are distilled with: Hugging Face transformers and TRL.

Import the submodule you need; ``import klkit`` (and this package) never imports torch, transformers
or TRL, each submodule imports them itself (``pip install 'klkit[hf]'``):

- :mod:`klkit.integrations.options`: :class:`~klkit.integrations.options.DistillationOptions`, the
  loss's options (divergence, temperature, top-k teacher, fused mode), checked when built;
- :mod:`klkit.integrations.transformers`: :func:`~klkit.integrations.transformers.distillation_loss`
  for a ``Trainer.compute_loss`` of your own,
  and :class:`~klkit.integrations.transformers.KLKitDistillationTrainer`, a ``transformers.Trainer``
  that distils from a teacher model;
- :mod:`klkit.integrations.trl`: :class:`~klkit.integrations.trl.KLKitGKDConfig` and
  :class:`~klkit.integrations.trl.KLKitGKDTrainer`, TRL's GKD trainer with every divergence of
  :data:`klkit.distill.DIVERGENCES`, a top-k teacher, the temperature applied to the loss, the
  token count taken after on-policy generation, and a fused mode that never materialises the
  ``tokens × V`` logits.

The losses themselves are :mod:`klkit.distill`'s; these modules only feed them a model's outputs.
"""

__all__: list[str] = []
