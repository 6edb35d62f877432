"""Distillation losses: forward, reverse and generalized-JSD KL (and kin) between teacher and student.

- :func:`generalized_jsd_loss`: TRL's function, same signature and numbers, safe in half precision,
  chunked, with ``interpolation="continuous"`` that removes the jumps at β = 0 and β = 1;
- :func:`divergence_loss`: any of :data:`DIVERGENCES` on logits, with labels, reductions, T² scaling and
  ``num_items_in_batch`` for gradient accumulation; the teacher as logits, log-probabilities,
  probabilities or a :class:`TopKTeacher`;
- :func:`fused_linear_divergence`: the same losses from hidden states and output-layer weights, never
  materialising the ``tokens × V`` logits;
- :func:`topk_teacher`: a teacher stored as its top-k tokens and a tail bucket.

Every torch path computes its gradient in the forward pass, a chunk of tokens at a time
(:mod:`klkit.distill._engine`), so the extra memory is one chunk's, on any device.
"""

from klkit.distill._options import DIVERGENCES
from klkit.distill.fused import fused_linear_divergence
from klkit.distill.jsd import generalized_jsd_loss
from klkit.distill.loss import divergence_loss
from klkit.distill.topk import TopKTeacher, topk_teacher

__all__ = [
    "DIVERGENCES",
    "TopKTeacher",
    "divergence_loss",
    "fused_linear_divergence",
    "generalized_jsd_loss",
    "topk_teacher",
]
