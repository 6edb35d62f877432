r"""Distillation losses from hidden states and output layers, never holding the ``tokens × V`` logits.

For a chunk of tokens the student's and teacher's logits are computed, :math:`z = h W^\top + b`, the
divergence and its gradient wrt the logits :math:`G` follow as in :mod:`klkit.distill._engine`, and
the gradient flows on at once: :math:`\partial/\partial h = G W`, :math:`\partial/\partial W \mathrel{+}= G^\top h`,
:math:`\partial/\partial b \mathrel{+}= \sum_n G_n`, for the student and, where they require gradients,
for the teacher. Memory: the gradients of the inputs (``tokens × H`` and ``V × H``) and one chunk.
"""

from __future__ import annotations

from typing import Any

import torch

from klkit.distill import _autograd
from klkit.distill._engine import FUSED_CHUNK_ELEMENTS, Rows, chunk_rows, compute_dtype, pair_chunk, raise_invalid
from klkit.distill._function import differentiable_grads, scale_in_place
from klkit.distill._inputs import check_logits_tensor, check_same_device, kept, numpy_bridge, valid_rows
from klkit.distill._options import (
    Divergence,
    Reduction,
    Spec,
    check_chunk_size,
    check_ignore_index,
    check_num_items,
    check_reduction,
    divergence_spec,
)
from klkit.distill._run import divisor, factor_of
from klkit.errors import InvalidArgumentError, ShapeError

__all__ = ["fused_linear_divergence"]

_NAMES = ("student_hidden", "student_weight", "teacher_hidden", "teacher_weight", "student_bias", "teacher_bias")


@numpy_bridge(_NAMES)
def fused_linear_divergence(
    student_hidden: Any,
    student_weight: Any,
    teacher_hidden: Any,
    teacher_weight: Any,
    /,
    *,
    student_bias: Any = None,
    teacher_bias: Any = None,
    divergence: Divergence = "jsd",
    beta: float = 0.5,
    skew: float = 0.1,
    alpha: float | None = None,
    temperature: float = 1.0,
    temperature_scaling: bool = False,
    labels: Any = None,
    ignore_index: int = -100,
    reduction: Reduction = "batchmean",
    num_items_in_batch: Any = None,
    chunk_size: int | None = None,
) -> Any:
    r""":func:`~klkit.distill.divergence_loss` of ``h_s W_s^T + b_s`` against ``h_t W_t^T + b_t``, chunk by chunk.

    .. math:: \mathcal L = \frac{c}{d} \sum_{n\ \mathrm{kept}} D\big(\mathrm{softmax}((h^t_n W_t^\top + b_t)/T)
       \,\big\|\, \mathrm{softmax}((h^s_n W_s^\top + b_s)/T)\big)

    with the divergences, scale c and divisor d of :func:`~klkit.distill.divergence_loss`. The logits
    exist one chunk at a time; gradients reach ``student_hidden``, ``student_weight``, ``student_bias``
    and, for those that require them, the teacher's tensors (a frozen teacher costs no gradient work).

    Parameters
    ----------
    student_hidden : torch.Tensor or ndarray
        ``(..., H_s)``, the student's last hidden states.
    student_weight : torch.Tensor or ndarray
        ``(V, H_s)``, the student's output layer (``lm_head.weight``).
    teacher_hidden : torch.Tensor or ndarray
        ``(..., H_t)`` with the student's leading shape.
    teacher_weight : torch.Tensor or ndarray
        ``(V, H_t)``.
    student_bias, teacher_bias : torch.Tensor or ndarray, optional
        ``(V,)``.
    divergence, beta, skew, alpha, temperature, temperature_scaling, labels, ignore_index, num_items_in_batch
        As in :func:`~klkit.distill.divergence_loss`.
    chunk_size : int, optional
        Tokens per chunk; by default as many as make ``2^24`` logits (64 MiB of float32 per temporary,
        about ten of them), so that each chunk's matrix products are large enough to be efficient.
    reduction : {'batchmean', 'sum', 'mean'}, default 'batchmean'
        'none' is not offered: per-token values would need the logits again in backward.

    Returns
    -------
    torch.Tensor or ndarray
        The loss, a scalar: float32 for half-precision inputs, else their promoted dtype.

    Raises
    ------
    ValueError
        The errors of :func:`~klkit.distill.divergence_loss`; weights whose vocabulary sizes differ or whose
        width is not the hidden states'; a bias that is not ``(V,)``; reduction='none'.
    TypeError
        Non-floating inputs, numpy mixed with torch, tensors on different devices.

    Examples
    --------
    >>> import torch
    >>> from klkit.distill import divergence_loss, fused_linear_divergence
    >>> g = torch.Generator().manual_seed(0)
    >>> hs, ws = torch.randn(6, 4, generator=g), torch.randn(10, 4, generator=g)
    >>> ht, wt = torch.randn(6, 8, generator=g), torch.randn(10, 8, generator=g)
    >>> fused = fused_linear_divergence(hs, ws, ht, wt, divergence="forward_kl", chunk_size=4)
    >>> plain = divergence_loss(hs @ ws.T, ht @ wt.T)
    >>> bool(torch.allclose(fused, plain, rtol=1e-6))
    True
    """
    spec = divergence_spec(
        divergence, beta=beta, skew=skew, alpha=alpha, temperature=temperature, temperature_scaling=temperature_scaling
    )
    reduction = check_reduction(reduction)
    if reduction == "none":
        raise InvalidArgumentError(
            "`reduction` must be 'batchmean', 'sum' or 'mean' for the fused linear loss; found 'none' (per-token "
            "values would need every token's logits again in backward). Use divergence_loss on the logits."
        )
    ignore_index = check_ignore_index(ignore_index)
    num_items = check_num_items(num_items_in_batch, reduction)
    chunk = check_chunk_size(chunk_size)
    hs, ws, ht, wt = (
        check_logits_tensor(x, n)
        for x, n in zip((student_hidden, student_weight, teacher_hidden, teacher_weight), _NAMES[:4], strict=True)
    )
    _check_layer(hs, ws, student_bias, "student")
    _check_layer(ht, wt, teacher_bias, "teacher")
    if ws.shape[0] != wt.shape[0]:
        raise ShapeError(
            f"`student_weight` and `teacher_weight` must have the same vocabulary size (first axis); "
            f"found {ws.shape[0]} and {wt.shape[0]}. Slice the padded one to the shared tokens."
        )
    if hs.shape[:-1] != ht.shape[:-1]:
        raise ShapeError(
            f"`student_hidden` and `teacher_hidden` must have the same leading shape (tokens); found "
            f"{tuple(hs.shape[:-1])} and {tuple(ht.shape[:-1])}."
        )
    check_same_device(
        student_hidden=hs,
        student_weight=ws,
        teacher_hidden=ht,
        teacher_weight=wt,
        student_bias=student_bias,
        teacher_bias=teacher_bias,
        num_items_in_batch=num_items,
    )
    lead = tuple(hs.shape[:-1])
    vocab = ws.shape[0]
    h2, t2 = hs.reshape(-1, hs.shape[-1]), ht.reshape(-1, ht.shape[-1])
    rows = valid_rows(labels, lead, ignore_index, hs.device)
    n_kept = kept(rows, h2.shape[0])
    factor = factor_of(divisor(reduction, num_items, n_kept, vocab, -1), n_kept)
    step = chunk_rows(n_kept, vocab, chunk, FUSED_CHUNK_ELEMENTS)
    tensors = (h2, ws, student_bias, t2, wt, teacher_bias)
    need = tuple(torch.is_grad_enabled() and x is not None and x.requires_grad for x in tensors)
    if any(need):
        return _FusedLinear.apply(*tensors, rows, factor, spec, step, need)
    return _fused(*tensors, rows, factor, spec, step, need)[0]


def _check_layer(hidden: torch.Tensor, weight: torch.Tensor, bias: Any, who: str) -> None:
    if weight.ndim != 2 or weight.shape[1] != hidden.shape[-1]:
        raise ShapeError(
            f"`{who}_weight` must have shape (V, {hidden.shape[-1]}) for `{who}_hidden` of width "
            f"{hidden.shape[-1]}; found {tuple(weight.shape)}. Pass lm_head.weight (vocabulary first)."
        )
    if bias is not None:
        bias = check_logits_tensor(bias, f"{who}_bias")
        if tuple(bias.shape) != (weight.shape[0],):
            raise ShapeError(f"`{who}_bias` must have shape ({weight.shape[0]},); found {tuple(bias.shape)}.")


def _logits(h: torch.Tensor, w: torch.Tensor, b: torch.Tensor | None) -> torch.Tensor:
    return h @ w.t() if b is None else torch.addmm(b, h, w.t())


def _fused(
    hs: torch.Tensor,
    ws: torch.Tensor,
    bs: Any,
    ht: torch.Tensor,
    wt: torch.Tensor,
    bt: Any,
    rows: torch.Tensor | None,
    factor: Any,
    spec: Spec,
    step: int,
    need: tuple[bool, ...],
) -> tuple[torch.Tensor, tuple[Any, ...]]:
    """(loss in the compute dtype, gradients of the six inputs where ``need``), chunk by chunk."""
    need_s, need_t = any(need[:3]), any(need[3:6])
    dtype = compute_dtype(ws.dtype, wt.dtype, hs.dtype, ht.dtype)
    hidden_grad = torch.empty_like if rows is None else torch.zeros_like
    grads: list[Any] = [
        hidden_grad(hs) if need[0] else None,
        torch.zeros(ws.shape, dtype=dtype, device=ws.device) if need[1] else None,
        torch.zeros(bs.shape, dtype=dtype, device=bs.device) if need[2] else None,
        hidden_grad(ht) if need[3] else None,
        torch.zeros(wt.shape, dtype=dtype, device=wt.device) if need[4] else None,
        torch.zeros(bt.shape, dtype=dtype, device=bt.device) if need[5] else None,
    ]
    h_rows, t_rows = Rows(hs), Rows(ht)
    n = kept(rows, hs.shape[0])
    total = hs.new_zeros((), dtype=dtype)
    bad = torch.zeros((), dtype=torch.bool, device=hs.device)
    for start in range(0, n, step):
        sel = slice(start, min(start + step, n)) if rows is None else rows[start : start + step]
        h_s, h_t = h_rows[sel], t_rows[sel]
        values, g_s, g_t, b = pair_chunk(
            spec, _logits(h_s, ws, bs), _logits(h_t, wt, bt), "logits", need_s, need_t, factor
        )
        bad = bad | b
        total = total + values.sum()
        for offset, h, w, g in ((0, h_s, ws, g_s), (3, h_t, wt, g_t)):
            if g is None:
                continue
            if need[offset]:
                grads[offset][sel] = (g.to(w.dtype) @ w).to(grads[offset].dtype)
            if need[offset + 1]:
                grads[offset + 1].addmm_(g.t(), h.to(dtype))
            if need[offset + 2]:
                grads[offset + 2] += g.sum(dim=0)
    if bool(bad):
        keep = (lambda x: x) if rows is None else (lambda x: x[rows])
        with torch.no_grad():
            raise_invalid(keep(_logits(hs, ws, bs)), "logits", "student logits (student_hidden @ student_weight.T)")
            raise_invalid(keep(_logits(ht, wt, bt)), "logits", "teacher logits (teacher_hidden @ teacher_weight.T)")
    for i, like in ((1, ws), (2, bs), (4, wt), (5, bt)):
        if grads[i] is not None:
            grads[i] = grads[i].to(like.dtype)
    return total * factor, tuple(grads)


class _FusedLinear(torch.autograd.Function):
    @staticmethod
    def forward(
        ctx: Any,
        hs: torch.Tensor,
        ws: torch.Tensor,
        bs: Any,
        ht: torch.Tensor,
        wt: torch.Tensor,
        bt: Any,
        rows: torch.Tensor | None,
        factor: Any,
        spec: Spec,
        step: int,
        need: tuple[bool, ...],
    ) -> torch.Tensor:
        out, ctx.grads = _fused(hs, ws, bs, ht, wt, bt, rows, factor, spec, step, need)
        ctx.save_for_backward(hs, ws, bs, ht, wt, bt)  # references, for a backward with create_graph=True
        ctx.setup = (rows, factor, spec, need)
        ctx.applied = None
        return out

    @staticmethod
    def backward(ctx: Any, g: torch.Tensor) -> tuple[Any, ...]:
        if torch.is_grad_enabled():  # create_graph=True: differentiate a composition that has a graph
            tensors = ctx.saved_tensors
            rows, factor, spec, need = ctx.setup
            hs, ws, bs, ht, wt, bt = tensors
            out = _autograd.loss(_logits(hs, ws, bs), _logits(ht, wt, bt), None, rows, factor, spec, "logits", False)
            grads = differentiable_grads(out, list(zip(tensors, need, strict=True)), g)
            return (*grads, None, None, None, None, None)
        return (*scale_in_place(ctx, ctx.grads, g), None, None, None, None, None)
