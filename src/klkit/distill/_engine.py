r"""The chunked engine: divergence values and gradients, a chunk of tokens at a time, in one pass.

For a chunk of rows (tokens) the engine turns the student's logits and the teacher's input into
log-probabilities in the compute dtype (float32 for half precision), calls the formulas of
:mod:`klkit.distill._formulas`, and chains their derivatives through ``log_softmax(z / T)``:

.. math:: \frac{\partial D}{\partial z_c} = \frac{1}{T}\Big(\psi_c - p_c \sum_j \psi_j\Big)

(times the row's weight: the reduction's 1 / denominator and the loss's scale). The gradient is
written into a buffer the size of the input during the forward pass, so nothing of the chunk is kept
for backward: extra memory is one chunk's temporaries (about ten ``chunk × V`` arrays). The
backward pass only multiplies that buffer by the incoming gradient, in place.

Chunks are :data:`CHUNK_ELEMENTS` entries, :data:`FUSED_CHUNK_ELEMENTS` on the fused linear path
(``chunk_size`` rows overrides them). Rows masked by the
labels are skipped (their gradient is 0). Invalid values (NaN or ``+inf`` logits, a row of only
``-inf``, teacher probabilities that are not probabilities) are collected as one boolean on the
device, read once after the loop, and only then diagnosed with the row-by-row checks of
:mod:`klkit._engine.checks`.
"""

from __future__ import annotations

import math
from typing import Any

import torch

from klkit._engine import CHECKS, namespace, sum_tolerance
from klkit.distill import _formulas
from klkit.distill._options import Spec

CHUNK_ELEMENTS = 1 << 20  # entries of one chunk: 4 MiB of float32 per temporary (cache-friendly on a CPU)
FUSED_CHUNK_ELEMENTS = 1 << 24  # the fused path: larger chunks, so the weights are read fewer times
_INF = math.inf


def compute_dtype(*dtypes: torch.dtype) -> torch.dtype:
    """float32 for half precision (and mixes with it), else the promoted dtype."""
    dtype = dtypes[0]
    for d in dtypes[1:]:
        dtype = torch.promote_types(dtype, d)
    return torch.float32 if dtype in (torch.float16, torch.bfloat16) else dtype


def chunk_rows(n_rows: int, vocab: int, chunk_size: int | None, elements: int = CHUNK_ELEMENTS) -> int:
    """Rows per chunk: ``chunk_size``, or as many as make ``elements`` entries (at least 1)."""
    return chunk_size if chunk_size is not None else max(1, min(max(n_rows, 1), elements // max(vocab, 1)))


def log_probs(x: torch.Tensor, kind: str, temperature: float, dtype: torch.dtype) -> torch.Tensor:
    """``log_softmax(x / T)`` in ``dtype``; probabilities are logged first.

    Computed as ``y − logsumexp(y)``: torch's CPU ``log_softmax`` kernel sums the exponentials in plain
    float32 and is off by ~2e-5 in the normaliser at V = 128,256 (``logsumexp`` by ~1e-6, eps × |lse|),
    which would put errors of 2e-5 into every gradient.
    """
    y = x.to(dtype)
    if kind == "probs":
        y = y.log()
    if temperature != 1.0:
        y = y / temperature
    lse = torch.logsumexp(y, dim=-1, keepdim=True)
    return y.sub_(lse) if y is not x else torch.sub(y, lse)


def bad_rows(x: torch.Tensor, kind: str) -> torch.Tensor:
    """One boolean: some row of ``x`` is not a valid input of ``kind`` (the checks of klkit._engine.checks)."""
    if kind == "logits":
        return ~torch.isfinite(x.amax(dim=-1)).all()
    dtype = compute_dtype(x.dtype)
    tol = sum_tolerance(x.dtype)
    if kind == "log_probs":
        lse = torch.logsumexp(x.to(dtype), dim=-1)
        return ~((x.amax(dim=-1) <= tol) & (lse.abs() <= tol)).all()
    total = x.sum(dim=-1, dtype=dtype)
    return ~((x.amin(dim=-1) >= 0) & ((total - 1).abs() <= tol)).all()  # NaN and inf fail the sum


def raise_invalid(x: torch.Tensor, kind: str, name: str) -> None:
    """Run the full check of ``kind`` on ``x`` (rows last): raises with the first offender."""
    x = x.detach()
    CHECKS[kind](x, name, namespace(x, names=(name,)))


def chain(psi: torch.Tensor, p: torch.Tensor, factor: Any) -> torch.Tensor:
    """(ψ − p Σψ) · factor, in ψ's buffer."""
    total = psi.sum(dim=-1, keepdim=True)
    return psi.addcmul_(p, total, value=-1.0).mul_(factor)


def pair_chunk(
    spec: Spec, zs: torch.Tensor, zt: torch.Tensor, kind: str, need_s: bool, need_t: bool, factor: Any
) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None, torch.Tensor]:
    """(scaled row values, ∂/∂zs · factor, ∂/∂zt · factor, bad) of one chunk with a full teacher."""
    dtype = compute_dtype(zs.dtype, zt.dtype)
    bad = bad_rows(zs, "logits") | bad_rows(zt, kind)
    a = log_probs(zs, "logits", spec.temperature, dtype)
    b = log_probs(zt, kind, spec.temperature, dtype)
    r = _formulas.terms(
        spec.divergence, a, b, beta=spec.beta, skew=spec.skew, alpha=spec.alpha, need_a=need_s, need_b=need_t
    )
    values = r.values.clamp(0.0, spec.bound).mul_(spec.scale)
    g = factor * (spec.scale / spec.temperature)
    grad_s = chain(r.psi_a, r.s if r.s is not None else a.exp(), g) if need_s else None
    grad_t = chain(r.psi_b, r.t if r.t is not None else b.exp(), g) if need_t else None
    return values, grad_s, grad_t, bad


def topk_chunk(
    spec: Spec, zs: torch.Tensor, index: torch.Tensor, top: torch.Tensor, tail: torch.Tensor, need_s: bool, factor: Any
) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor]:
    r"""One chunk against a top-k teacher: the student collapsed onto the same k + 1 buckets.

    :math:`\hat a = (a_{i_1}, \dots, a_{i_k}, \log \sum_{c \notin \mathrm{top}} s_c)`; for a tail entry
    :math:`\partial \hat a_{\mathrm{tail}} / \partial a_c = s_c / \hat s_{\mathrm{tail}}`, so
    :math:`\partial D/\partial z_c = (\psi_{j(c)}\, s_c / \hat s_{j(c)} - s_c \sum_j \psi_j) / T`.
    """
    dtype = compute_dtype(zs.dtype, top.dtype)
    bad = bad_rows(zs, "logits")
    a = log_probs(zs, "logits", spec.temperature, dtype)
    rest = a.scatter(1, index, -_INF)
    a_tail = torch.logsumexp(rest, dim=-1)
    a_hat = torch.cat([a.gather(1, index), a_tail[:, None]], dim=1)
    b_hat = torch.cat([top.to(dtype), tail.to(dtype)[:, None]], dim=1)
    r = _formulas.terms(
        spec.divergence, a_hat, b_hat, beta=spec.beta, skew=spec.skew, alpha=spec.alpha, need_a=need_s, need_b=False
    )
    values = r.values.clamp(0.0, spec.bound).mul_(spec.scale)
    if not need_s:
        return values, None, bad
    psi = r.psi_a
    total = psi.sum(dim=-1, keepdim=True)
    shift = torch.where(torch.isfinite(a_tail), a_tail, torch.zeros_like(a_tail))
    grad = torch.sub(a, shift[:, None], out=rest).exp_().mul_(psi[:, -1:])  # ψ_tail s_c / ŝ_tail
    grad.addcmul_(a.exp_(), total, value=-1.0)  # − s_c Σψ (a's buffer now holds s)
    k = index.shape[1]
    grad.scatter_(1, index, psi[:, :k] - a_hat[:, :k].exp() * total)
    return values, grad.mul_(factor * (spec.scale / spec.temperature)), bad


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
        return grads
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
        names: tuple[str, str] = ("student", "teacher"),
    ) -> torch.Tensor:
        n = student.shape[0]
        need_s = ctx.needs_input_grad[0]
        need_t = ctx.needs_input_grad[1] and topk is None
        out_dtype = torch.promote_types(student.dtype, teacher.dtype)
        dtype = compute_dtype(student.dtype, teacher.dtype)
        count = n if rows is None else rows.shape[0]
        new = torch.empty_like if rows is None else torch.zeros_like
        grad_s = new(student) if need_s else None
        grad_t = new(teacher) if need_t else None
        per_row_values = student.new_zeros(n, dtype=dtype) if per_row else None
        total = student.new_zeros((), dtype=dtype)
        bad = torch.zeros((), dtype=torch.bool, device=student.device)
        g = 1.0 if per_row else factor
        for start in range(0, count, chunk):
            sel = slice(start, min(start + chunk, count)) if rows is None else rows[start : start + chunk]
            zs = student[sel]
            if topk is None:
                values, gs, gt, b = pair_chunk(spec, zs, teacher[sel], kind, need_s, need_t, g)
            else:
                values, gs, b = topk_chunk(
                    spec, zs, topk.indices[sel], topk.log_probs[sel], topk.tail_log_prob[sel], need_s, g
                )
                gt = None
            bad = bad | b
            if per_row:
                per_row_values[sel] = values
            else:
                total = total + values.sum()
            for buffer, part in ((grad_s, gs), (grad_t, gt)):
                if buffer is not None:
                    buffer[sel] = part  # a copy into the rows, cast to the input's dtype
        if bool(bad):  # the one host synchronisation
            _diagnose(student, teacher, topk, rows, kind, names)
        ctx.grads = (grad_s, grad_t)
        ctx.per_row = per_row
        ctx.applied = None
        if per_row:
            return per_row_values.to(out_dtype)
        return (total * factor).to(out_dtype)

    @staticmethod
    def backward(ctx: Any, g: torch.Tensor) -> tuple[Any, ...]:
        grad_s, grad_t = ctx.grads
        if ctx.per_row:  # one gradient-sized product: the stored rows stay reusable
            grad_s = None if grad_s is None else grad_s * g.to(grad_s.dtype)[:, None]
            grad_t = None if grad_t is None else grad_t * g.to(grad_t.dtype)[:, None]
        else:
            grad_s, grad_t = scale_in_place(ctx, (grad_s, grad_t), g)
        return grad_s, grad_t, None, None, None, None, None, None, None, None


def _diagnose(
    student: torch.Tensor,
    teacher: torch.Tensor,
    topk: Any,
    rows: torch.Tensor | None,
    kind: str,
    names: tuple[str, str],
) -> None:
    """Raise with the first invalid entry (index among the kept tokens, leading axes flattened)."""
    pick = (lambda x: x) if rows is None else (lambda x: x[rows])
    raise_invalid(pick(student), "logits", names[0])
    if topk is None:
        raise_invalid(pick(teacher), kind, names[1])
    raise AssertionError("the chunked checks flagged an input that the full checks accept")  # pragma: no cover
