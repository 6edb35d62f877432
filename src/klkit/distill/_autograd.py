r"""The distillation losses as plain autograd compositions: the path of higher-order derivatives.

The chunked engine (:mod:`klkit.distill._engine`) hands over a gradient computed in the forward pass,
which has no graph of its own. When a backward pass runs with ``create_graph=True`` (a Hessian-vector
product, a gradient penalty, a trust-region constraint) the engine's backward recomputes the loss here,
with ordinary differentiable torch operations on the whole batch, and differentiates that: values and
first derivatives agree with the engine's, and every higher derivative is autograd's.

An entry whose probability is 0 (a masked ``-inf`` logit, or one that underflows) contributes 0 to a
term weighted by that probability; its inputs are replaced by 0 before the term is formed
(``torch.where`` on the inputs, not on the result), so neither the value nor any derivative sees
``0 · inf``. Memory is that of autograd: several ``tokens × V`` tensors.
"""

from __future__ import annotations

import math
from typing import Any

import torch

from klkit.distill._options import Spec


def log_probs(x: torch.Tensor, kind: str, temperature: float, dtype: torch.dtype) -> torch.Tensor:
    """``log_softmax(x / T)`` in ``dtype`` (probabilities logged first), differentiable to any order.

    Entries that are ``-inf`` after the division (masked, or the dtype's lowest value over T < 1) are
    replaced by the row's maximum before anything is differentiated and set to ``-inf`` at the end, so
    no derivative of any order meets them (torch's ``log_softmax`` gives NaN second derivatives there).
    """
    y = x.to(dtype)
    if kind == "probs":
        y = y.log()
    y = y / temperature
    dead = y.detach() == -math.inf
    top = y.detach().masked_fill(dead, -math.inf).amax(dim=-1, keepdim=True)
    top = torch.where(torch.isfinite(top), top, torch.zeros_like(top))
    live = torch.where(dead, top, y)
    lse = top + torch.where(dead, torch.zeros_like(live), (live - top).exp()).sum(dim=-1, keepdim=True).log()
    return torch.where(dead, -math.inf, live - lse)


def _logaddexp(u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """log(e^u + e^v) shifted by the (constant) larger of the two: finite derivatives of every order at any gap.

    torch's ``logaddexp`` has a NaN second derivative once the gap overflows ``exp`` (inf / inf).
    """
    top = torch.maximum(u, v).detach()
    top = torch.where(torch.isfinite(top), top, torch.zeros_like(top))
    return top + ((u - top).exp() + (v - top).exp()).log()


def _zeroed(mask: torch.Tensor, *xs: torch.Tensor) -> list[torch.Tensor]:
    return [torch.where(mask, torch.zeros_like(x), x) for x in xs]


def _weighted(w_log: torch.Tensor, x: torch.Tensor, other: torch.Tensor, fn: Any) -> torch.Tensor:
    """e^{w_log} · fn(w_log, other) per entry, 0 where e^{w_log} = 0 (inputs zeroed there first)."""
    none = w_log.detach().exp() == 0
    w_safe, x_safe, o_safe = _zeroed(none, w_log, x, other)
    return torch.where(none, torch.zeros_like(w_log), w_safe.exp() * fn(w_safe, x_safe, o_safe))


def entries(spec: Spec, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """D's terms per entry, ``(rows, K)``: a = log s (student), b = log t (teacher); their sum is D."""
    div = spec.divergence
    if div == "forward_kl":
        return _weighted(b, b, a, lambda w, x, o: x - o)
    if div == "reverse_kl":
        return _weighted(a, a, b, lambda w, x, o: x - o)
    if div == "jsd":
        lb, l1b = math.log(spec.beta), math.log1p(-spec.beta)

        def mix(w: torch.Tensor, x: torch.Tensor, o: torch.Tensor, lw: float, lo: float) -> torch.Tensor:
            return x - _logaddexp(x + lw, o + lo)

        e_t = _weighted(b, b, a, lambda w, x, o: mix(w, x, o, lb, l1b))
        e_s = _weighted(a, a, b, lambda w, x, o: mix(w, x, o, l1b, lb))
        return spec.beta * e_t + (1.0 - spec.beta) * e_s
    if div in ("skew_forward_kl", "skew_reverse_kl"):
        lam = spec.skew
        ll, l1l = (math.log(lam) if lam > 0 else -math.inf), (math.log1p(-lam) if lam < 1 else -math.inf)
        first, second = (b, a) if div == "skew_forward_kl" else (a, b)
        return _weighted(first, first, second, lambda w, x, o: x - _logaddexp(x + ll, o + l1l))
    if div == "tvd":
        return 0.5 * (a.exp() - b.exp()).abs()
    return _alpha_beta(a, b, spec.alpha, spec.beta)


def _alpha_beta(a: torch.Tensor, b: torch.Tensor, alpha: float, beta: float) -> torch.Tensor:
    """ABKD's D_AB(p‖q), p = e^b (teacher), q = e^a (student), with its limit formulas (see _formulas)."""
    both = (a.detach() == -math.inf) & (b.detach() == -math.inf)
    a, b = _zeroed(both, a, b)
    u = alpha + beta
    if alpha != 0 and beta != 0 and u != 0:
        term = -((alpha * b + beta * a).exp() - alpha / u * (u * b).exp() - beta / u * (u * a).exp()) / (alpha * beta)
    elif beta == 0 and alpha != 0:
        term = ((alpha * b).exp() * (alpha * (b - a) - 1.0) + (alpha * a).exp()) / (alpha * alpha)
    elif alpha == 0 and beta != 0:
        term = ((beta * a).exp() * (beta * (a - b) - 1.0) + (beta * b).exp()) / (beta * beta)
    elif alpha != 0:
        x = alpha * (b - a)
        term = (torch.expm1(x) - x) / (alpha * alpha)
    else:
        term = 0.5 * (a - b).square()
    return torch.where(both, torch.zeros_like(term), term)


def _clamped(values: torch.Tensor, bound: float) -> torch.Tensor:
    """Values clamped into [0, bound] with the derivatives of the unclamped ones (as the engine's)."""
    return values + (values.detach().clamp(0.0, bound) - values.detach())


def loss(
    student: torch.Tensor,
    teacher: torch.Tensor,
    topk: Any,
    rows: torch.Tensor | None,
    factor: Any,
    spec: Spec,
    kind: str,
    per_row: bool,
    entrywise: bool = False,
) -> torch.Tensor:
    """What the engine returns for ``(rows, V)`` inputs, as a differentiable composition.

    Σ_rows factor·scale·D, or per row (``per_row``, 0 at skipped rows), or TRL's per-entry terms of the
    kept rows (``entrywise``).
    """
    from klkit.distill._engine import compute_dtype  # the engine imports this module lazily

    n = student.shape[0]
    dtype = compute_dtype(student.dtype, teacher.dtype)
    s = student if rows is None else student[rows]
    a = log_probs(s, "logits", spec.temperature, dtype)
    if topk is None:
        t = teacher if rows is None else teacher[rows]
        b = log_probs(t, kind, spec.temperature, dtype)
    else:
        index = topk.indices if rows is None else topk.indices[rows]
        top = (topk.log_probs if rows is None else topk.log_probs[rows]).to(dtype)
        tail = (topk.tail_log_prob if rows is None else topk.tail_log_prob[rows]).to(dtype)
        rest = a.scatter(1, index, -math.inf)
        empty = (rest.detach() == -math.inf).all(dim=-1, keepdim=True)
        rest_safe = torch.where(empty, torch.zeros_like(rest), rest)
        a_tail = torch.where(empty, -math.inf, torch.logsumexp(rest_safe, dim=-1, keepdim=True))
        a = torch.cat([a.gather(1, index), a_tail], dim=1)
        b = torch.cat([top, tail[:, None]], dim=1)
    terms = entries(spec, a, b)
    if entrywise:
        return terms.clamp(min=0.0) * spec.scale if spec.divergence == "jsd" else terms * spec.scale
    values = _clamped(terms.sum(dim=-1), spec.bound) * spec.scale
    if not per_row:
        return values.sum() * factor
    if rows is None:
        return values
    return torch.zeros(n, dtype=values.dtype, device=values.device).index_put((rows,), values)
