"""The autograd Function of the chunked logits losses, and the call that decides whether it is needed.

The gradient is computed in the forward pass (:func:`klkit.distill._engine.run_chunks`) only when the
grad mode is on and an input requires it: under ``torch.no_grad()`` or ``torch.inference_mode()`` no
``tokens × V`` buffer is allocated. The backward pass multiplies the stored gradient by the incoming
one; under ``create_graph=True`` it differentiates the plain composition of
:mod:`klkit.distill._autograd` instead, so that second derivatives exist. The inputs are kept by
reference for that (no copy).
"""

from __future__ import annotations

from typing import Any

import torch

from klkit.distill import _autograd
from klkit.distill._engine import Rows, raise_invalid, run_chunks
from klkit.distill._options import Spec


def scale_in_place(ctx: Any, grads: tuple[torch.Tensor | None, ...], g: torch.Tensor) -> tuple[Any, ...]:
    """The stored gradients times the incoming scalar ``g``: in place the first time (no second buffer).

    A later backward through the same graph (``retain_graph=True``, or ``gradcheck``) gets a fresh product
    ``stored · g / g_first``, provided nobody changed the tensors handed out the first time (autograd may
    have made one of them a leaf's ``.grad`` and added into it); otherwise, or after a first ``g`` of 0,
    it raises rather than return a wrong gradient.
    """
    if ctx.applied is None:
        if not (g.device.type == "cpu" and float(g) == 1.0):
            for x in grads:
                if x is not None:
                    x.mul_(g.to(x.dtype))
        ctx.applied = g.detach().clone()
        ctx.versions = tuple(None if x is None else x._version for x in grads)
        # views: a fresh tensor object that autograd may adopt as a leaf's .grad without a copy
        return tuple(None if x is None else x.view(x.shape) for x in grads)
    changed = any(x is not None and x._version != v for x, v in zip(grads, ctx.versions, strict=True))
    zero = ctx.applied.device.type == "cpu" and float(ctx.applied) == 0.0
    if changed or zero:
        raise RuntimeError(
            "the distillation loss computes its gradient in the forward pass and hands it over on the first "
            "backward; a later backward through the same graph needs that tensor unchanged"
            + (
                " and a first incoming gradient other than 0"
                if zero
                else " (it has since been added into or modified, e.g. as a leaf's .grad)"
            )
            + ". Compute the loss again for each backward pass."
        )
    ratio = g / ctx.applied
    return tuple(None if x is None else x * ratio.to(x.dtype) for x in grads)


def differentiable_grads(
    out: torch.Tensor, inputs: list[tuple[torch.Tensor, bool]], g: torch.Tensor
) -> list[torch.Tensor | None]:
    """∂out/∂input · g with a graph (``create_graph``), for the inputs flagged True (None for the others)."""
    wanted = [x for x, need in inputs if need]
    found = list(torch.autograd.grad(out, wanted, g.to(out.dtype), create_graph=True, allow_unused=True))
    result: list[torch.Tensor | None] = []
    for x, need in inputs:
        grad = found.pop(0) if need else None
        result.append(torch.zeros_like(x) if need and grad is None else grad)
    return result


class ChunkedLoss(torch.autograd.Function):
    """Σ over rows of factor · D(row), or the rows' D (``per_row``), with gradients from the forward pass."""

    @staticmethod
    def forward(
        ctx: Any,
        student: torch.Tensor,
        teacher: torch.Tensor,
        topk: Any,
        rows: torch.Tensor | None,
        factor: Any,
        spec: Spec,
        kind: str,
        chunk: int,
        per_row: bool,
        names: tuple[str, str],
        need_s: bool,
        need_t: bool,
    ) -> torch.Tensor:
        out, grad_s, grad_t, bad = run_chunks(
            student, teacher, topk, rows, factor, spec, kind, chunk, per_row, need_s, need_t
        )
        if bool(bad):  # the one host synchronisation
            diagnose(student, teacher, topk, rows, kind, names)
        ctx.save_for_backward(student, teacher)  # references, for a backward with create_graph=True
        ctx.grads = (grad_s, grad_t)
        ctx.setup = (topk, rows, factor, spec, kind, per_row)
        ctx.applied = None
        return out.reshape(student.shape[:-1]) if per_row else out

    @staticmethod
    def backward(ctx: Any, g: torch.Tensor) -> tuple[Any, ...]:
        grad_s, grad_t = ctx.grads
        if torch.is_grad_enabled():  # create_graph=True: differentiate a composition that has a graph
            student, teacher = ctx.saved_tensors
            topk, rows, factor, spec, kind, per_row = ctx.setup
            s2 = Rows(student).gather(None)
            t2 = teacher if topk is not None else Rows(teacher).gather(None)
            out = _autograd.loss(s2, t2, topk, rows, factor, spec, kind, per_row)
            gs, gt = differentiable_grads(
                out, [(student, grad_s is not None), (teacher, grad_t is not None)], g.reshape(out.shape)
            )
        elif ctx.setup[-1]:  # per_row: one gradient-sized product, the stored rows stay reusable
            gs = None if grad_s is None else grad_s * g.to(grad_s.dtype)[..., None]
            gt = None if grad_t is None else grad_t * g.to(grad_t.dtype)[..., None]
        else:
            gs, gt = scale_in_place(ctx, (grad_s, grad_t), g)
        return gs, gt, None, None, None, None, None, None, None, None, None, None


def diagnose(
    student: torch.Tensor,
    teacher: torch.Tensor,
    topk: Any,
    rows: torch.Tensor | None,
    kind: str,
    names: tuple[str, str],
) -> None:
    """Raise with the first invalid entry (index among the kept tokens, leading axes flattened)."""
    raise_invalid(Rows(student).gather(rows), "logits", names[0])
    if topk is None:
        raise_invalid(Rows(teacher).gather(rows), kind, names[1])
    raise AssertionError("the chunked checks flagged an input that the full checks accept")  # pragma: no cover


def chunked_loss(
    student: torch.Tensor,
    teacher: torch.Tensor,
    topk: Any,
    rows: torch.Tensor | None,
    factor: Any,
    spec: Spec,
    kind: str,
    chunk: int,
    per_row: bool,
    names: tuple[str, str],
) -> torch.Tensor:
    """The loss, through :class:`ChunkedLoss` when a gradient is wanted, else straight from the chunks.

    The output is in the compute dtype: float32 for half-precision inputs, the promoted dtype otherwise.
    """
    grad_on = torch.is_grad_enabled()
    need_s = grad_on and student.requires_grad
    need_t = grad_on and topk is None and teacher.requires_grad
    if need_s or need_t:
        return ChunkedLoss.apply(
            student, teacher, topk, rows, factor, spec, kind, chunk, per_row, names, need_s, need_t
        )
    out, _, _, bad = run_chunks(student, teacher, topk, rows, factor, spec, kind, chunk, per_row, False, False)
    if bool(bad):
        diagnose(student, teacher, topk, rows, kind, names)
    return out.reshape(student.shape[:-1]) if per_row else out
