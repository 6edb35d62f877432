r"""TRL's ``generalized_jsd_loss``, same signature and numbers, computed in log space and in chunks.

TRL (``trl.experimental.gkd.GKDTrainer.generalized_jsd_loss``) computes, per token and vocabulary entry,
with :math:`s, t` the student's and teacher's softmax at temperature T and
:math:`m = (1-\beta) s + \beta t`:

.. math:: J_\beta = \beta\, \mathrm{KL}(t \| m) + (1-\beta)\, \mathrm{KL}(s \| m),\qquad
   J_0 := \mathrm{KL}(t \| s),\quad J_1 := \mathrm{KL}(s \| t).

Inside (0, 1), :math:`J_\beta = \beta\,\mathrm{KL}(t\|s) + O(\beta^2)` and
:math:`J_\beta = (1-\beta)\,\mathrm{KL}(s\|t) + O((1-\beta)^2)` (differentiate at the ends: the
derivative of :math:`(1-\beta)\mathrm{KL}(s\|m)` at β = 0 is :math:`-\sum_c (t_c - s_c) = 0`), so the
loss jumps at both ends: on 4 × 300 standard normal logits times 3 (``torch.Generator().manual_seed(2)``,
student drawn first), TRL gives 0.0062 at β = 0.999 and 7.33 at β = 1.
``interpolation="continuous"`` divides by β(1−β) inside (0, 1):

.. math:: \tilde J_\beta = \frac{J_\beta}{\beta (1-\beta)} \;\xrightarrow[\beta\to 0]{}\; \mathrm{KL}(t\|s),
   \qquad \xrightarrow[\beta\to 1]{}\; \mathrm{KL}(s\|t),

(4 × TRL's value at β = 0.5), bounded by :math:`h(\beta)/(\beta(1-\beta))`. The approach to the ends is
slow when the two distributions barely overlap, because :math:`\mathrm{KL}(s\|m) \le -\log(1-\beta)`
grows only logarithmically: on the example above the continuous loss is 6.25 at β = 0.999, 7.03 at
1 − 10⁻⁴, 7.32 at 1 − 10⁻⁶ and 7.33 at β = 1; at the other end 6.37 at β = 10⁻³, 7.83 at 10⁻⁶, against
KL(t‖s) = 7.84 at β = 0.
"""

from __future__ import annotations

import math
from typing import Any, Literal

import torch

from klkit.distill import _autograd
from klkit.distill._engine import (
    Rows,
    bad_rows,
    chain,
    chunk_rows,
    compute_dtype,
    gradient_buffer,
    log_probs,
    raise_invalid,
)
from klkit.distill._formulas import terms
from klkit.distill._function import differentiable_grads
from klkit.distill._inputs import check_logits_tensor, check_pair, check_same_device, kept, numpy_bridge, valid_rows
from klkit.distill._options import Spec, check_interpolation, check_num_items, check_reduction, divergence_spec
from klkit.distill._run import logits_loss

__all__ = ["generalized_jsd_loss"]


@numpy_bridge(("student_logits", "teacher_logits"))
def generalized_jsd_loss(
    student_logits: Any,
    teacher_logits: Any,
    labels: Any = None,
    beta: float = 0.5,
    temperature: float = 1.0,
    reduction: Literal["batchmean", "sum", "mean", "none"] = "batchmean",
    num_items_in_batch: Any = None,
    *,
    interpolation: Literal["trl", "continuous"] = "trl",
) -> Any:
    r"""TRL's generalized Jensen–Shannon loss :math:`\beta\,\mathrm{KL}(t\|m) + (1-\beta)\,\mathrm{KL}(s\|m)`.

    .. math:: m = (1-\beta)\, s + \beta\, t,\quad s = \mathrm{softmax}(z_s / T),\quad t = \mathrm{softmax}(z_t / T)

    β = 0 is :math:`\mathrm{KL}(t\|s)` (forward), β = 1 is :math:`\mathrm{KL}(s\|t)` (reverse), as in TRL.
    Same arguments and values as ``GKDTrainer.generalized_jsd_loss`` (TRL), with: the mixture in
    log space and float32 at least (no negative values in bf16, no NaN at log-probabilities of −1e4),
    tokens in chunks with the gradient computed in the forward pass (memory of one chunk), each
    token's value clamped into [0, h(β)] against rounding, 0 instead of 0/0 when every label is
    ignored, and ``num_items_in_batch`` for gradient accumulation. The loss comes back in float32 for
    half-precision logits (the precision it is accumulated in), else in the inputs' dtype.

    Parameters
    ----------
    student_logits, teacher_logits : torch.Tensor or ndarray
        ``(batch, sequence, V)`` (any leading shape).
    labels : torch.Tensor or ndarray of int, optional
        ``(batch, sequence)``; positions with -100 are left out.
    beta : float, default 0.5
        In [0, 1].
    temperature : float, default 1.0
        Both logits are divided by it (no T² factor, as in TRL).
    reduction : {'batchmean', 'sum', 'mean', 'none'}, default 'batchmean'
        As TRL: ``batchmean`` divides the sum by the number of kept tokens with ``labels``, by the first
        axis (the batch size) without; ``mean`` divides by the number of kept entries (tokens × V);
        ``none`` returns the per-entry terms, ``(n_kept, V)`` with ``labels``, the input's shape without.
    num_items_in_batch : int or torch.Tensor, optional
        The global number of kept tokens (all micro-batches, all ranks). As TRL: the loss is then the sum
        over the kept entries divided by it, whatever ``reduction`` ('none' included: a scalar).
    interpolation : {'trl', 'continuous'}, default 'trl'
        ``continuous`` divides by β(1−β) inside (0, 1), so that the loss tends to the forward and reverse
        KL at the ends instead of jumping to them (see the module docstring for the derivation).

    Returns
    -------
    torch.Tensor or ndarray
        Scalar (or the per-entry terms), differentiable: float32 for half-precision inputs, else the
        inputs' dtype (numpy in, numpy out in the inputs' dtype).

    Raises
    ------
    ValueError
        β outside [0, 1], T ≤ 0, an unknown ``reduction`` or ``interpolation``, vocabularies or shapes that
        differ, ``labels`` not of the logits' leading shape, NaN or ``+inf`` logits or a position whose
        logits are all ``-inf``, ``num_items_in_batch`` ≤ 0.
    TypeError
        Non-floating logits, float labels, numpy mixed with torch, tensors on different devices.

    References
    ----------
    .. [1] R. Agarwal et al., "On-Policy Distillation of Language Models: Learning from Self-Generated
       Mistakes", ICLR 2024, Eq. (1).

    Examples
    --------
    >>> import torch
    >>> from klkit.distill import generalized_jsd_loss
    >>> s = torch.tensor([[0.9, 0.1]]).log()
    >>> t = torch.tensor([[0.5, 0.5]]).log()
    >>> round(float(generalized_jsd_loss(s, t, beta=0.5)), 6)  # JSD, at most log 2 = 0.693147
    0.101749
    >>> round(float(generalized_jsd_loss(s, t, beta=0.0)), 6)  # KL(t‖s)
    0.510826
    >>> round(float(generalized_jsd_loss(s, t, beta=0.5, interpolation="continuous")), 6)  # 4 × JSD
    0.406997
    """
    student = check_logits_tensor(student_logits, "student_logits")
    teacher = check_logits_tensor(teacher_logits, "teacher_logits")
    check_pair(student, teacher, "student_logits", "teacher_logits")
    interpolation = check_interpolation(interpolation)
    spec = divergence_spec(
        "jsd",
        beta=beta,
        skew=0.1,
        alpha=None,
        temperature=temperature,
        temperature_scaling=False,
        interpolation=interpolation,
    )
    reduction = check_reduction(reduction)
    num_items = check_num_items(num_items_in_batch, None)
    check_same_device(student_logits=student, teacher_logits=teacher, num_items_in_batch=num_items)
    if num_items is not None:  # TRL: the summed loss divided by num_items_in_batch, whatever the reduction
        reduction = "batchmean"
    if reduction == "none":
        return _per_entry(student, teacher, labels, spec)
    return logits_loss(
        student,
        teacher,
        None,
        spec,
        "logits",
        labels,
        -100,
        reduction,
        num_items,
        None,
        trl_divisor=True,
        names=("student_logits", "teacher_logits"),
    )


class _PerEntry(torch.autograd.Function):
    """TRL's (kept rows, V) terms; backward recomputes each chunk and multiplies by the incoming terms."""

    @staticmethod
    def forward(
        ctx: Any, student: torch.Tensor, teacher: torch.Tensor, rows: torch.Tensor | None, spec: Spec
    ) -> torch.Tensor:
        ctx.save_for_backward(student, teacher)  # references: backward recomputes from them
        ctx.rows, ctx.spec = rows, spec
        return per_entry_values(student, teacher, rows, spec)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[Any, ...]:
        student, teacher = ctx.saved_tensors
        rows, spec = ctx.rows, ctx.spec
        need_s, need_t = ctx.needs_input_grad[:2]
        s_rows, t_rows = Rows(student), Rows(teacher)
        if torch.is_grad_enabled():  # create_graph=True: differentiate a composition that has a graph
            out = _autograd.loss(s_rows.gather(None), t_rows.gather(None), None, rows, 1.0, spec, "logits", False, True)
            return (*differentiable_grads(out, [(student, need_s), (teacher, need_t)], grad), None, None)
        dtype = compute_dtype(student.dtype, teacher.dtype)
        grad_s = gradient_buffer(student, rows) if need_s else None
        grad_t = gradient_buffer(teacher, rows) if need_t else None
        vocab = student.shape[-1]
        n = grad.shape[0]
        step = chunk_rows(n, vocab, None)
        factor = spec.scale / spec.temperature
        for start in range(0, n, step):
            sel = slice(start, min(start + step, n))
            pick = sel if rows is None else rows[sel]
            a = log_probs(s_rows[pick], "logits", spec.temperature, dtype)
            b = log_probs(t_rows[pick], "logits", spec.temperature, dtype)
            r = terms(
                spec.divergence,
                a,
                b,
                beta=spec.beta,
                skew=spec.skew,
                alpha=spec.alpha,
                need_a=need_s,
                need_b=need_t,
                entrywise=True,
            )
            g = grad[sel].to(dtype)
            for buffer, psi, lp in ((grad_s, r.psi_a, a), (grad_t, r.psi_b, b)):
                if buffer is not None:
                    buffer.view(-1, vocab)[pick] = chain(psi.mul_(g), lp.exp(), factor).to(buffer.dtype)
        return grad_s, grad_t, None, None


def per_entry_values(
    student: torch.Tensor, teacher: torch.Tensor, rows: torch.Tensor | None, spec: Spec
) -> torch.Tensor:
    """TRL's per-entry terms of the kept rows, ``(n_kept, V)``, in the compute dtype, chunk by chunk."""
    dtype = compute_dtype(student.dtype, teacher.dtype)
    s_rows, t_rows = Rows(student), Rows(teacher)
    vocab = student.shape[-1]
    n = kept(rows, math.prod(s_rows.lead))
    out = student.new_empty((n, vocab), dtype=dtype)
    bad = torch.zeros((), dtype=torch.bool, device=student.device)
    step = chunk_rows(n, vocab, None)
    for start in range(0, n, step):
        sel = slice(start, min(start + step, n))
        pick = sel if rows is None else rows[sel]
        zs, zt = s_rows[pick], t_rows[pick]
        bad = bad | bad_rows(zs, "logits") | bad_rows(zt, "logits")
        a, b = log_probs(zs, "logits", spec.temperature, dtype), log_probs(zt, "logits", spec.temperature, dtype)
        out[sel] = _entries(spec, a, b).mul_(spec.scale)
    if bool(bad):
        raise_invalid(s_rows.gather(rows), "logits", "student_logits")
        raise_invalid(t_rows.gather(rows), "logits", "teacher_logits")
    return out


def _entries(spec: Spec, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """TRL's per-entry terms: t(b − a), s(a − b), or β t (b − ℓ) + (1−β) s (a − ℓ) (≥ 0 entry by entry)."""
    if spec.divergence == "forward_kl":
        return torch.sub(b, a).mul_(b.exp()).nan_to_num_(nan=0.0, posinf=math.inf)
    if spec.divergence == "reverse_kl":
        return torch.sub(a, b).mul_(a.exp()).nan_to_num_(nan=0.0, posinf=math.inf)
    beta = spec.beta
    log_m = torch.logaddexp(a + math.log1p(-beta), b + math.log(beta))
    e_s = torch.sub(a, log_m).mul_(a.exp()).nan_to_num_(nan=0.0)
    e_t = torch.sub(b, log_m).mul_(b.exp()).nan_to_num_(nan=0.0)
    return e_t.mul_(beta).add_(e_s, alpha=1.0 - beta).clamp_(min=0.0)


def _per_entry(student: torch.Tensor, teacher: torch.Tensor, labels: Any, spec: Spec) -> torch.Tensor:
    lead = tuple(student.shape[:-1])
    rows = valid_rows(labels, lead, -100, student.device)
    if torch.is_grad_enabled() and (student.requires_grad or teacher.requires_grad):
        out = _PerEntry.apply(student, teacher, rows, spec)
    else:
        out = per_entry_values(student, teacher, rows, spec)
    return out.reshape(student.shape) if labels is None else out
