"""Distillation losses on logits: one divergence per token between teacher and student, chunked."""

from __future__ import annotations

from typing import Any

import torch

from klkit.distill._inputs import check_logits_tensor, check_pair, check_same_device, numpy_bridge
from klkit.distill._options import (
    Divergence,
    Reduction,
    TeacherKind,
    check_chunk_size,
    check_ignore_index,
    check_kind,
    check_num_items,
    check_reduction,
    divergence_spec,
)
from klkit.distill._run import logits_loss
from klkit.distill.topk import TopKTeacher, check_topk
from klkit.errors import InvalidArgumentError

__all__ = ["divergence_loss"]


@numpy_bridge(("student", "teacher"))
def divergence_loss(
    student: Any,
    teacher: Any,
    /,
    *,
    divergence: Divergence = "forward_kl",
    beta: float = 0.5,
    skew: float = 0.1,
    alpha: float | None = None,
    temperature: float = 1.0,
    temperature_scaling: bool = False,
    kind: TeacherKind | None = None,
    labels: Any = None,
    ignore_index: int = -100,
    reduction: Reduction = "batchmean",
    num_items_in_batch: Any = None,
    chunk_size: int | None = None,
) -> Any:
    r"""A divergence between teacher and student per token, reduced over tokens, in the memory of one chunk.

    .. math:: \mathcal L = \frac{c}{d} \sum_{n\ \mathrm{kept}} D(t_n, s_n),\qquad
       s_n = \mathrm{softmax}(z_n / T)

    with :math:`s_n` the student's distribution at token n and :math:`t_n` the teacher's (``softmax`` of its
    logits, or log-probabilities, or probabilities, each at temperature T), and D one of:

    - ``forward_kl``: :math:`\mathrm{KL}(t \| s) = \sum_c t_c \log(t_c / s_c)` (covers the teacher's mass);
    - ``reverse_kl``: :math:`\mathrm{KL}(s \| t)` (seeks the teacher's modes);
    - ``jsd``: :math:`\beta\, \mathrm{KL}(t \| m) + (1-\beta)\, \mathrm{KL}(s \| m)`,
      :math:`m = (1-\beta) s + \beta t`, TRL's generalized JSD (β = 0 is forward KL, β = 1 reverse KL,
      between them at most :math:`h(\beta) = -\beta\log\beta - (1-\beta)\log(1-\beta)`);
    - ``skew_forward_kl``: :math:`\mathrm{KL}(t \| \lambda t + (1-\lambda) s)` and ``skew_reverse_kl``:
      :math:`\mathrm{KL}(s \| \lambda s + (1-\lambda) t)` with λ = ``skew``: DistiLLM's skew KLs as true
      KL divergences (the entropy term included, so they are 0 when s = t; at most :math:`-\log\lambda`);
    - ``tvd``: :math:`\tfrac12 \sum_c |s_c - t_c|`;
    - ``alpha_beta``: ABKD's α-β divergence :math:`D_{AB}^{(\alpha,\beta)}(t \| s)` (α = ``alpha``,
      β = ``beta``; α = 1, β = 0 is forward KL, α = 0, β = 1 reverse KL), with its exact limit formulas.

    The tokens kept are those whose label is not ``ignore_index``; :math:`c = T^2` under
    ``temperature_scaling`` (else 1) and d is the divisor of the reduction.
    Mixtures are taken in log space (``logaddexp`` of log-weights and log-probabilities), everything in
    float32 at least, so half-precision inputs and log-probabilities of −1e4 give neither NaN nor a
    negative value; each token's value is clamped into the divergence's range [0, bound] against
    rounding (before that clamp a value leaves the range by at most its rounding: it is
    :math:`\ge -4\varepsilon\,(1 + \sum_c (s_c + t_c)(|\log s_c| + |\log t_c|))` and
    :math:`\le \mathrm{bound}\,(1 + 4\varepsilon)`, ε the compute dtype's epsilon, 1.2e-7 in float32).
    Tokens go in chunks whose gradient is computed in the forward pass, so the extra memory is one chunk
    (about ``4·2^20`` bytes per temporary) whatever the number of tokens and the strides of the logits
    (a shifted ``logits[:, :-1]`` is read a chunk at a time). The gradient is formed only when the
    grad mode is on and an input requires it (nothing under ``torch.no_grad()``); a backward pass with
    ``create_graph=True`` recomputes the loss as a plain autograd composition, so that second
    derivatives exist (at autograd's memory: several ``tokens × V`` tensors).

    Parameters
    ----------
    student : torch.Tensor or ndarray
        The student's logits, ``(..., V)``.
    teacher : torch.Tensor, ndarray or TopKTeacher
        The teacher, ``(..., V)`` of ``kind``, or a :class:`~klkit.distill.TopKTeacher` (the student is
        then collapsed onto the teacher's top-k tokens plus one tail bucket).
    divergence : {'forward_kl', 'reverse_kl', 'jsd', 'skew_forward_kl', 'skew_reverse_kl', 'tvd', 'alpha_beta'}
    beta : float, default 0.5
        ``jsd``: the teacher's weight in the mixture, in [0, 1]. ``alpha_beta``: the β of the α-β divergence.
    skew : float, default 0.1
        λ of the skew KLs, in [0, 1].
    alpha : float, optional
        The α of ``alpha_beta`` (required there, refused elsewhere).
    temperature : float, default 1.0
        T > 0: both logits are divided by it (for a TopKTeacher, it must be the one it was built with).
    temperature_scaling : bool, default False
        Multiply the loss by T² (Hinton et al.: keeps the gradients' size independent of T).
    kind : {'logits', 'log_probs', 'probs'}, optional
        What ``teacher`` holds (None: 'logits'). Probabilities are never renormalised: they must sum to 1.
        Not with a :class:`~klkit.distill.TopKTeacher`, which holds log-probabilities by construction.
    labels : torch.Tensor or ndarray of int, optional
        ``(...)``; tokens whose label is ``ignore_index`` contribute nothing (their gradient is 0).
    ignore_index : int, default -100
    reduction : {'batchmean', 'sum', 'mean', 'none'}, default 'batchmean'
        ``batchmean``: the mean per kept token (divisor: their number, or ``num_items_in_batch``);
        ``sum``; ``mean``: divided by tokens × V as ``F.kl_div(reduction='mean')`` does; ``none``: one value
        per token, shape ``(...)``, 0 at ignored tokens.
    num_items_in_batch : int or torch.Tensor, optional
        The number of kept tokens in the whole accumulated batch (every micro-batch and every rank):
        the divisor of ``batchmean`` and ``mean`` instead of the local count, so that summing the
        micro-batches' losses gives the full batch's loss.
    chunk_size : int, optional
        Tokens per chunk; by default as many as make ``2^20`` entries (at least one token).

    Returns
    -------
    torch.Tensor or ndarray
        A scalar (or ``(...)`` for 'none') in the compute dtype: float32 for half-precision inputs (the
        precision it was accumulated in, as a trainer should log it), else the inputs' promoted dtype;
        with gradients for the student (and the teacher when it requires them) in their own dtypes.
        numpy in, numpy out (computed in float64, no gradients). 0 when
        no token is kept.

    Raises
    ------
    ValueError
        Unknown ``divergence``, ``reduction`` or ``kind``; β outside [0, 1] for ``jsd``; ``skew`` outside
        [0, 1]; T ≤ 0; ``alpha`` missing for ``alpha_beta`` or given for another divergence; vocabularies
        or shapes that differ; labels not of the logits' leading shape; ``num_items_in_batch`` ≤ 0 or given
        with 'sum'/'none'; NaN or ``+inf`` logits, a token whose logits are all ``-inf``, teacher
        probabilities or log-probabilities that are not normalised.
    TypeError
        Non-floating logits, float labels, numpy mixed with torch, tensors on different devices, a
        teacher given as probabilities that requires gradients.

    See Also
    --------
    generalized_jsd_loss : TRL's function and reductions: the same per-token JSD as ``divergence="jsd"``,
        reduced as TRL does. Without labels TRL's ``batchmean`` divides by the first axis (the batch
        size), this function by the number of tokens; with ``num_items_in_batch`` TRL returns the sum over
        ``num_items_in_batch`` whatever the reduction, this function refuses it beside 'sum' and 'none'
        and divides by ``num_items_in_batch · V`` for 'mean'.
    fused_linear_divergence : the same losses from hidden states and the output layers' weights.

    References
    ----------
    .. [1] G. Hinton, O. Vinyals, J. Dean, "Distilling the Knowledge in a Neural Network", 2015.
    .. [2] R. Agarwal et al., "On-Policy Distillation of Language Models: Learning from Self-Generated
       Mistakes", ICLR 2024 (generalized JSD).
    .. [3] J. Ko et al., "DistiLLM: Towards Streamlined Distillation for Large Language Models", ICML 2024.
    .. [4] G. Wang et al., "ABKD: Pursuing a Proper Allocation of the Probability Mass in Knowledge
       Distillation via α-β-Divergence", ICML 2025.
    .. [5] A. Cichocki, S. Cruces, S. Amari, "Generalized Alpha-Beta Divergences and Their Application to
       Robust Nonnegative Matrix Factorization", Entropy 13, 2011.

    Examples
    --------
    >>> import torch
    >>> from klkit.distill import divergence_loss
    >>> teacher = torch.tensor([[0.5, 0.5], [0.9, 0.1]]).log()
    >>> student = torch.tensor([[0.9, 0.1], [0.9, 0.1]]).log()
    >>> round(float(divergence_loss(student, teacher)), 6)  # (KL(t1‖s1) + 0) / 2 = 0.510826 / 2
    0.255413
    >>> divergence_loss(student, teacher, divergence="reverse_kl", reduction="none").round(decimals=6)
    tensor([0.3681, 0.0000])
    >>> round(float(divergence_loss(student, teacher, labels=torch.tensor([-100, 1]))), 6)  # row 1 only
    0.0
    """
    student = check_logits_tensor(student, "student")
    spec = divergence_spec(
        divergence, beta=beta, skew=skew, alpha=alpha, temperature=temperature, temperature_scaling=temperature_scaling
    )
    reduction = check_reduction(reduction)
    ignore_index = check_ignore_index(ignore_index)
    num_items = check_num_items(num_items_in_batch, reduction)
    chunk = check_chunk_size(chunk_size)
    if isinstance(teacher, TopKTeacher):
        if kind is not None:
            raise InvalidArgumentError(
                f"`kind` does not apply to a TopKTeacher (it holds the teacher's log-probabilities and tail); found "
                f"kind={kind!r}. Drop `kind`, or pass the teacher's full logits/log-probabilities/probabilities."
            )
        check_same_device(
            student=student,
            indices=teacher.indices,
            log_probs=teacher.log_probs,
            tail_log_prob=teacher.tail_log_prob,
            num_items_in_batch=num_items,
        )
        topk = check_topk(teacher, student, spec.temperature)
        return logits_loss(
            student, topk.log_probs, topk, spec, "log_probs", labels, ignore_index, reduction, num_items, chunk
        )
    kind = check_kind("logits" if kind is None else kind)
    teacher = check_logits_tensor(teacher, "teacher")
    check_pair(student, teacher)
    check_same_device(student=student, teacher=teacher, num_items_in_batch=num_items)
    if kind == "probs" and teacher.requires_grad and torch.is_grad_enabled():
        raise TypeError(
            "a teacher given as probabilities (kind='probs') cannot take gradients (the derivative "
            "at a probability of 0 is infinite); pass the teacher's logits or log-probabilities, or "
            "teacher.detach()."
        )
    return logits_loss(student, teacher, None, spec, kind, labels, ignore_index, reduction, num_items, chunk)
