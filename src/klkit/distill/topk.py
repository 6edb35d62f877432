r"""A teacher stored as its top-k tokens plus one tail bucket.

Storing a teacher's full distribution costs ``V`` numbers per token (128,256 for Llama 3); its top-k
costs ``k`` indices and ``k`` log-probabilities, plus the log of the mass left over, the tail
:math:`\log(1 - \sum_{j \le k} t_{i_j})`. :func:`klkit.distill.divergence_loss` compares such a
teacher with the student collapsed onto the same ``k + 1`` buckets (the student's own log-probabilities
at the teacher's ``k`` tokens, and the log of its remaining mass). By the data-processing inequality
a divergence of the collapsed pair is at most that of the full pair, with equality at ``k = V``.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import numpy as np
import torch

from klkit.distill._engine import CHUNK_ELEMENTS, compute_dtype, log_probs, raise_invalid
from klkit.distill._inputs import check_logits_tensor, numpy_bridge
from klkit.distill._options import check_temperature
from klkit.errors import InvalidArgumentError, InvalidDistributionError, ShapeError

__all__ = ["TopKTeacher", "topk_teacher"]


class TopKTeacher(NamedTuple):
    """A teacher's top-k tokens per position and the log of the probability left over.

    Attributes
    ----------
    indices : Tensor or ndarray, int64, shape ``(..., k)``
        Token ids, most probable first, distinct within a position.
    log_probs : Tensor or ndarray, float32 (float64 for float64 teachers), shape ``(..., k)``
        The teacher's log-probabilities of those tokens (at ``temperature``).
    tail_log_prob : Tensor or ndarray, shape ``(...)``
        :math:`\\log(1 - \\sum_j e^{\\text{log_probs}_j})`, computed as a log-sum-exp over the other
        tokens (``-inf`` when ``k`` is the vocabulary size).
    temperature : float
        The temperature the teacher's logits were divided by; the loss must use the same.
    vocab_size : int or None
        The teacher's vocabulary size V; the loss refuses a student whose vocabulary differs (the indices
        alone cannot tell: a top-k of V = 12 may only hold ids below 5). :func:`topk_teacher` sets it;
        a teacher built by hand must too.
    """

    indices: Any
    log_probs: Any
    tail_log_prob: Any
    temperature: float = 1.0
    vocab_size: int | None = None


@numpy_bridge(("teacher_logits",))
def topk_teacher(teacher_logits: Any, k: int, /, *, temperature: float = 1.0) -> TopKTeacher:
    r"""The ``k`` most probable tokens of ``softmax(teacher_logits / temperature)`` and the tail's log-mass.

    .. math:: t = \mathrm{softmax}(z / T),\quad \text{tail} = \log \sum_{c \notin \text{top-}k} t_c

    Computed in chunks of rows (float32 for half precision), so the temporaries stay at one chunk.

    Parameters
    ----------
    teacher_logits : torch.Tensor or ndarray
        Shape ``(..., V)``.
    k : int
        Tokens kept per position, ``1 <= k <= V``.
    temperature : float, default 1.0
        Divides the logits before the softmax; pass the same value to the loss.

    Returns
    -------
    TopKTeacher
        Storage per position: ``k`` int64 indices, ``k`` log-probabilities and one tail value
        (``12 k + 4`` bytes in float32, against ``4 V`` for the full distribution).

    Raises
    ------
    ValueError
        ``k`` outside ``[1, V]``; a temperature that is not > 0; NaN or ``+inf`` logits, or a row of
        only ``-inf``.
    TypeError
        Non-floating logits, or a non-integer ``k``.

    Examples
    --------
    >>> import torch
    >>> from klkit.distill import topk_teacher
    >>> top = topk_teacher(torch.tensor([[0.5, 0.3, 0.2]]).log(), 1)
    >>> top.indices.tolist(), round(float(top.log_probs.exp()), 6), round(float(top.tail_log_prob.exp()), 6)
    ([[0]], 0.5, 0.5)
    """
    z = check_logits_tensor(teacher_logits, "teacher_logits")
    vocab = z.shape[-1]
    if isinstance(k, bool) or not isinstance(k, int | np.integer):
        raise TypeError(f"`k` must be an integer (tokens kept per position); found {k!r}. Pass e.g. k=int(k).")
    if not 1 <= k <= vocab:
        raise InvalidArgumentError(
            f"`k` must lie in [1, {vocab}] (the vocabulary size); found {k}. Pass e.g. k=min(k, {vocab})."
        )
    t = check_temperature(temperature)
    dtype = compute_dtype(z.dtype)
    rows = z.detach().reshape(-1, vocab)
    n = rows.shape[0]
    index = torch.empty((n, k), dtype=torch.int64, device=z.device)
    top = torch.empty((n, k), dtype=dtype, device=z.device)
    tail = torch.empty((n,), dtype=dtype, device=z.device)
    step = max(1, CHUNK_ELEMENTS // vocab)
    bad = torch.zeros((), dtype=torch.bool, device=z.device)
    for start in range(0, n, step):
        chunk = rows[start : start + step]
        bad = bad | ~torch.isfinite(chunk.amax(dim=-1)).all()
        lp = log_probs(chunk, "logits", t, dtype)
        values, idx = lp.topk(k, dim=-1)
        index[start : start + step], top[start : start + step] = idx, values
        tail[start : start + step] = torch.logsumexp(lp.scatter_(1, idx, -math.inf), dim=-1)
    if bool(bad):
        raise_invalid(rows, "logits", "teacher_logits")
    lead = tuple(z.shape[:-1])
    return TopKTeacher(index.reshape(*lead, k), top.reshape(*lead, k), tail.reshape(lead), t, vocab)


def check_topk(teacher: TopKTeacher, student: torch.Tensor, temperature: float) -> TopKTeacher:
    """Shapes, dtypes, temperature and values of a TopKTeacher against the student's logits."""
    index, top, tail = teacher.indices, teacher.log_probs, teacher.tail_log_prob
    for name, x in (("indices", index), ("log_probs", top), ("tail_log_prob", tail)):
        if not isinstance(x, torch.Tensor):
            raise TypeError(
                f"`teacher.{name}` must be an array of the student's library (torch.Tensor or numpy array); "
                f"found {type(x).__name__}. Build the TopKTeacher with topk_teacher(teacher_logits, k)."
            )
    lead = tuple(student.shape[:-1])
    if (
        index.ndim != len(lead) + 1
        or tuple(index.shape[:-1]) != lead
        or tuple(top.shape) != tuple(index.shape)
        or tuple(tail.shape) != lead
    ):
        raise ShapeError(
            f"a TopKTeacher for a student of shape {tuple(student.shape)} needs `indices` and "
            f"`log_probs` of shape {(*lead, 'k')} and `tail_log_prob` of shape {lead}; found "
            f"{tuple(index.shape)}, {tuple(top.shape)} and {tuple(tail.shape)}."
        )
    if index.is_floating_point() or index.dtype == torch.bool:
        raise TypeError(
            f"`teacher.indices` must hold integer token ids; found dtype {index.dtype}. "
            "Cast them with .long(), or build the teacher with topk_teacher()."
        )
    if float(teacher.temperature) != temperature:
        raise InvalidArgumentError(
            f"`temperature` ({temperature}) must equal the temperature the TopKTeacher was built with "
            f"({teacher.temperature}); the student and the teacher must be softened alike. Pass "
            f"temperature={teacher.temperature}, or rebuild the teacher with topk_teacher(..., temperature=...)."
        )
    vocab, k = student.shape[-1], index.shape[-1]
    size = teacher.vocab_size
    if isinstance(size, bool) or not isinstance(size, int | np.integer):
        raise InvalidArgumentError(
            f"`teacher.vocab_size` must be the teacher's vocabulary size (an int); found {size!r}. Build the "
            f"teacher with topk_teacher(teacher_logits, k), or pass TopKTeacher(..., vocab_size=V)."
        )
    if size != vocab:
        raise ShapeError(
            f"the TopKTeacher was built on a vocabulary of {size} tokens and the student has {vocab} (its last "
            f"axis); they must be the same vocabulary. If one model pads its vocabulary, slice both logits to the "
            f"shared tokens before topk_teacher(...)."
        )
    flat = index.reshape(-1, k)
    if flat.numel() and (bool((flat < 0).any()) or bool((flat >= vocab).any())):
        raise InvalidArgumentError(
            f"`teacher.indices` must lie in [0, {vocab - 1}] (the student's vocabulary); "
            f"found values from {int(flat.min())} to {int(flat.max())}."
        )
    if k > 1 and flat.numel() and bool((flat.sort(dim=-1).values.diff(dim=-1) == 0).any()):
        raise InvalidArgumentError(
            "`teacher.indices` must be distinct within each position; found a repeated "
            "token id. Build the teacher with topk_teacher()."
        )
    mass = torch.logsumexp(
        torch.cat([top.reshape(-1, k), tail.reshape(-1, 1)], dim=1).to(compute_dtype(top.dtype)), dim=-1
    )
    tol = 1e-3 if top.dtype in (torch.float16, torch.bfloat16) else 1e-4
    if mass.numel() and not bool(((mass.abs() <= tol) & (top.amax() <= tol)).all()):
        raise InvalidDistributionError(
            "`teacher.log_probs` and `teacher.tail_log_prob` must be log-probabilities whose exponentials sum to 1 "
            f"per position; found log-sums from {float(mass.min()):.6g} to {float(mass.max()):.6g}. Build the "
            "teacher with topk_teacher()."
        )
    return TopKTeacher(
        index.to(torch.int64).reshape(-1, k),
        top.detach().reshape(-1, k),
        tail.detach().reshape(-1),
        teacher.temperature,
        int(size),
    )
