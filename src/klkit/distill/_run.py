"""From validated inputs to the engine's call: rows, the reduction's divisor, the output's shape."""

from __future__ import annotations

import math
from typing import Any

import torch

from klkit.distill._engine import chunk_rows
from klkit.distill._function import chunked_loss
from klkit.distill._inputs import kept, valid_rows
from klkit.distill._options import Spec


def divisor(reduction: str, num_items: Any, n_kept: int, vocab: int, fallback: int) -> Any:
    """What the summed loss is divided by: the token count (``batchmean``), times V (``mean``).

    ``num_items`` (the global token count) replaces the local count; ``fallback`` is the count when
    nothing is masked (TRL divides by the first axis there). None for 'sum'.
    """
    if reduction == "sum":
        return None
    count = num_items if num_items is not None else n_kept if fallback < 0 else fallback
    return count * vocab if reduction == "mean" else count


def factor_of(div: Any, n_kept: int) -> Any:
    """1 / divisor; 0 when there is no token to average over (the loss is then 0, never 0/0)."""
    if div is None:
        return 1.0
    if isinstance(div, torch.Tensor):
        return 1.0 / div.to(torch.float64)
    return 0.0 if n_kept == 0 and div == 0 else 1.0 / div


def logits_loss(
    student: torch.Tensor,
    teacher: torch.Tensor,
    topk: Any,
    spec: Spec,
    kind: str,
    labels: Any,
    ignore_index: int,
    reduction: str,
    num_items: Any,
    chunk_size: int | None,
    trl_divisor: bool = False,
    names: tuple[str, str] = ("student", "teacher"),
) -> torch.Tensor:
    """The loss of ``student`` (..., V) against ``teacher`` through :class:`ChunkedLoss`."""
    vocab = student.shape[-1]
    lead = tuple(student.shape[:-1])
    n = math.prod(lead)
    rows = valid_rows(labels, lead, ignore_index, student.device)
    n_kept = kept(rows, n)
    fallback = -1  # the kept tokens; TRL without labels: the first axis (batchmean) or every row (mean)
    if trl_divisor and labels is None:
        fallback = student.shape[0] if reduction == "batchmean" else n
    per_row = reduction == "none"
    factor = 1.0 if per_row else factor_of(divisor(reduction, num_items, n_kept, vocab, fallback), n_kept)
    chunk = chunk_rows(n_kept, vocab, chunk_size)
    t = teacher if topk is None else topk.log_probs
    return chunked_loss(student, t, topk, rows, factor, spec, kind, chunk, per_row, names)
