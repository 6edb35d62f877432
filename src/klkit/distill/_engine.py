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
    """``log_softmax(x / T)`` in ``dtype``, as ``(y − max) − log Σ exp(y − max)``; probabilities are logged first.

    Shifting by the row's maximum before anything is rounded keeps each log-probability's error at the
    rounding of its own size (ε·|a_c|), not of the normaliser's (ε·|logsumexp|, ~1e-5 in float32 for
    logits of a few tens), which is what lets a divergence of two close rows round to ≈ 0 rather than
    to −1e-5. The sum of exponentials is torch's (pairwise on a CPU): the plain float32 sum of torch's
    CPU ``log_softmax`` kernel is off by ~2e-5 at V = 128,256. A row without a finite maximum (invalid,
    flagged by :func:`bad_rows`) is left unshifted.
    """
    y = x.to(dtype)
    if kind == "probs":
        y = y.log()
    if temperature != 1.0:
        y = y / temperature
    top = y.amax(dim=-1, keepdim=True)
    top = torch.where(torch.isfinite(top), top, torch.zeros_like(top))
    shifted = torch.sub(y, top) if y is x else y.sub_(top)
    return shifted.sub_(shifted.exp().sum(dim=-1, keepdim=True).log_())


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


class Rows:
    """The rows (tokens) of an ``(..., V)`` tensor, a chunk at a time, without copying the whole tensor.

    A ``(rows, V)`` view when the leading axes can be flattened without a copy; otherwise (a shifted
    ``logits[:, :-1]``, a batch-major transpose) each chunk's rows are gathered by their multi-index,
    so the copy is one chunk's.
    """

    def __init__(self, x: torch.Tensor) -> None:
        self.x = x
        self.lead = tuple(x.shape[:-1])
        try:
            self.flat: torch.Tensor | None = x.view(-1, x.shape[-1])
        except RuntimeError:
            self.flat = None

    def __getitem__(self, sel: slice | torch.Tensor) -> torch.Tensor:
        if self.flat is not None:
            return self.flat[sel]
        if isinstance(sel, slice):
            sel = torch.arange(sel.start, sel.stop, device=self.x.device)
        return self.x[torch.unravel_index(sel, self.lead)]

    def gather(self, rows: torch.Tensor | None) -> torch.Tensor:
        """Every kept row as one ``(n, V)`` tensor (for the diagnosis and the differentiable path)."""
        if rows is None:
            return self.x.reshape(-1, self.x.shape[-1])
        return self[rows]


def gradient_buffer(x: torch.Tensor, rows: torch.Tensor | None) -> torch.Tensor:
    """A contiguous buffer of ``x``'s shape and dtype (zeros where rows are skipped), seen as ``(rows, V)``."""
    make = torch.empty if rows is None else torch.zeros
    return make(x.shape, dtype=x.dtype, device=x.device)


def run_chunks(
    student: torch.Tensor,
    teacher: torch.Tensor,
    topk: Any,
    rows: torch.Tensor | None,
    factor: Any,
    spec: Spec,
    kind: str,
    chunk: int,
    per_row: bool,
    need_s: bool,
    need_t: bool,
) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None, torch.Tensor]:
    """(output, ∂/∂student, ∂/∂teacher, bad) of the loss, chunk by chunk, in the compute dtype.

    ``student`` and ``teacher`` are ``(..., V)`` (any strides); the output is Σ factor·D(row) or, with
    ``per_row``, the rows' D (0 at skipped rows). Gradient buffers are allocated only for ``need_*``
    (the caller decides from the grad mode), in the inputs' dtypes.
    """
    s_rows = Rows(student)
    t_rows = Rows(teacher) if topk is None else None
    n = s_rows.flat.shape[0] if s_rows.flat is not None else math.prod(s_rows.lead)
    dtype = compute_dtype(student.dtype, teacher.dtype)
    count = n if rows is None else rows.shape[0]
    grad_s = gradient_buffer(student, rows) if need_s else None
    grad_t = gradient_buffer(teacher, rows) if need_t else None
    flat_s = None if grad_s is None else grad_s.view(-1, student.shape[-1])
    flat_t = None if grad_t is None else grad_t.view(-1, teacher.shape[-1])
    per_row_values = student.new_zeros(n, dtype=dtype) if per_row else None
    total = student.new_zeros((), dtype=dtype)
    bad = torch.zeros((), dtype=torch.bool, device=student.device)
    g = 1.0 if per_row else factor
    for start in range(0, count, chunk):
        sel = slice(start, min(start + chunk, count)) if rows is None else rows[start : start + chunk]
        zs = s_rows[sel]
        if topk is None:
            values, gs, gt, b = pair_chunk(spec, zs, t_rows[sel], kind, need_s, need_t, g)
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
        for buffer, part in ((flat_s, gs), (flat_t, gt)):
            if buffer is not None:
                buffer[sel] = part.to(buffer.dtype)  # index_put needs one dtype: the input's
    out = per_row_values if per_row else total * factor
    return out, grad_s, grad_t, bad
