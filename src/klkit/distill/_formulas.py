r"""Per-token divergences between a teacher and a student, with their derivatives, on log-probabilities.

Every function here takes ``a = log s`` (student) and ``b = log t`` (teacher), both ``(rows, K)`` and
normalised along the last axis, in the compute dtype (float32 at least), and returns a :class:`Terms`:
the divergence of each row and, where asked for, :math:`\psi^a_c = \partial D / \partial a_c` and
:math:`\psi^b_c = \partial D / \partial b_c`, the derivatives with each log-probability taken as a free
variable (so :math:`s_c = e^{a_c}` moves with it). The caller chains them through whatever made
``a`` and ``b``: for ``a = log_softmax(z / T)`` the gradient is
:math:`\partial D/\partial z = (\psi^a - s \sum_c \psi^a_c) / T`.

The formulas, with :math:`m` a mixture and :math:`\ell = \log m` computed as a ``logaddexp`` of
log-weights plus log-probabilities (never as the log of a sum of probabilities, which is ``log 0``
once both fall below about −104 in float32 or −745 in float64):

===================  =========================================  =========================================
divergence           :math:`D`                                   :math:`\psi^a`, :math:`\psi^b`
===================  =========================================  =========================================
forward_kl           :math:`\sum t (b - a)`                      :math:`-t`, :math:`t (b - a)`
reverse_kl           :math:`\sum s (a - b)`                      :math:`s (a - b)`, :math:`-s`
jsd (β)              :math:`\beta \sum t (b - \ell)`              :math:`-(1-\beta) s\, \mathrm{sp}(x)`,
                     :math:`+ (1-\beta) \sum s (a - \ell)`,       :math:`-\beta t\, \mathrm{sp}(-x)`
                     :math:`m = (1-\beta) s + \beta t`           :math:`x = b - a + \log\frac{\beta}{1-\beta}`
skew_forward_kl (λ)  :math:`\sum t (b - \ell)`,                   :math:`-t w`, :math:`t (b - \ell + w)`,
                     :math:`m = \lambda t + (1-\lambda) s`        :math:`w = (1-\lambda) s / m`
skew_reverse_kl (λ)  :math:`\sum s (a - \ell)`,                   :math:`s (a - \ell + w)`, :math:`-s w`,
                     :math:`m = \lambda s + (1-\lambda) t`        :math:`w = (1-\lambda) t / m`
tvd                  :math:`\tfrac12 \sum |s - t|`               :math:`\tfrac12 \mathrm{sgn}(s-t) s`,
                                                                 :math:`-\tfrac12 \mathrm{sgn}(s-t) t`
alpha_beta (α, β)    see :func:`alpha_beta`
===================  =========================================  =========================================

The derivatives may leave out a constant multiple of the probabilities (:math:`\psi^a` and
:math:`\psi^a + K s` give the same gradient through the softmax, as :math:`\sum_c s_c = 1`): the
forward KL's :math:`t\cdot 1`, and the JSD's :math:`-(1-\beta)\log(1-\beta)\, s` (sp is softplus),
whose subtraction would lose the digits of the result (see :func:`jsd`).

A term whose probability is 0 (``-inf`` log-probability, or one that underflows) contributes 0, never
``0·inf = NaN``; a divergence that is truly infinite (the student gives 0 where the teacher does not,
in forward KL) is ``+inf``. Row values are returned as computed (the caller clamps them into the
divergence's range).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
import torch.nn.functional as F  # noqa: N812 (torch's convention)

_INF = math.inf


class Terms(NamedTuple):
    values: torch.Tensor  # (rows,)
    psi_a: torch.Tensor | None  # ∂D/∂a, (rows, K)
    psi_b: torch.Tensor | None  # ∂D/∂b
    s: torch.Tensor | None  # exp(a), when it was computed anyway
    t: torch.Tensor | None  # exp(b)


def _zero_nan(x: torch.Tensor) -> torch.Tensor:
    """0·(±inf) and (−inf) − (−inf) of terms with zero probability → 0 (in place); ±inf kept."""
    return x.nan_to_num_(nan=0.0, posinf=_INF, neginf=-_INF)


def forward_kl(a: torch.Tensor, b: torch.Tensor, need_a: bool, need_b: bool, entrywise: bool = False) -> Terms:
    t = b.exp()
    term = _zero_nan(torch.sub(b, a).mul_(t))  # t (b − a)
    values = term.sum(dim=-1)
    psi_b = (term.add_(t) if entrywise else term) if need_b else None  # t (b − a + 1), or without the t·1
    psi_a = torch.neg(t) if need_a else None
    return Terms(values, psi_a, psi_b, None, t)


def reverse_kl(a: torch.Tensor, b: torch.Tensor, need_a: bool, need_b: bool, entrywise: bool = False) -> Terms:
    r = forward_kl(b, a, need_b, need_a, entrywise)
    return Terms(r.values, r.psi_b, r.psi_a, r.t, None)


def jsd(a: torch.Tensor, b: torch.Tensor, beta: float, need_a: bool, need_b: bool, entrywise: bool = False) -> Terms:
    """β KL(t‖m) + (1−β) KL(s‖m) with m = (1−β) s + β t, for 0 < β < 1.

    With x = b − a + log(β/(1−β)): a − ℓ = −log(1−β) − softplus(x) and b − ℓ = −log β − softplus(−x)
    (ℓ = log m, never the log of a sum of probabilities). The derivatives drop the terms
    −(1−β) log(1−β)·s and −β log β·t, constant multiples of the probabilities that the chain rule
    through the softmax removes exactly: what remains, −(1−β) s softplus(x), is accurate where the
    supports barely overlap, where the full ψ would cancel two numbers near (1−β)(−log(1−β)) s.
    ``entrywise`` keeps them (each entry's own derivative, for per-entry outputs).
    """
    x = torch.sub(b, a).add_(math.log(beta) - math.log1p(-beta))
    sp_s = F.softplus(x)  # −(a − ℓ) − log(1−β)
    sp_t = F.softplus(x.neg_())  # −(b − ℓ) − log β
    s, t = a.exp(), b.exp()
    e_s = _zero_nan(torch.add(sp_s, math.log1p(-beta)).neg_().mul_(s))  # s (a − ℓ)
    e_t = _zero_nan(torch.add(sp_t, math.log(beta)).neg_().mul_(t))  # t (b − ℓ)
    values = e_t.sum(dim=-1).mul_(beta).add_(e_s.sum(dim=-1), alpha=1.0 - beta)
    if entrywise:
        psi_a = e_s.mul_(1.0 - beta) if need_a else None
        psi_b = e_t.mul_(beta) if need_b else None
    else:
        psi_a = _zero_nan(sp_s.mul_(s)).mul_(beta - 1.0) if need_a else None
        psi_b = _zero_nan(sp_t.mul_(t)).mul_(-beta) if need_b else None
    return Terms(values, psi_a, psi_b, s, t)


def skew_forward_kl(a: torch.Tensor, b: torch.Tensor, skew: float, need_a: bool, need_b: bool) -> Terms:
    """KL(t ‖ λ t + (1−λ) s)."""
    log_rest = math.log1p(-skew) if skew < 1 else -_INF
    log_m = torch.logaddexp(b + (math.log(skew) if skew > 0 else -_INF), a + log_rest)
    t = b.exp()
    w = _zero_nan(torch.sub(a, log_m).add_(log_rest).exp_()) if (need_a or need_b) else None  # (1−λ) s / m
    term = _zero_nan(torch.sub(b, log_m, out=log_m).mul_(t))  # t (b − ℓ)
    values = term.sum(dim=-1)
    psi_a = torch.mul(t, w).neg_() if need_a else None
    psi_b = term.addcmul_(t, w) if need_b else None
    return Terms(values, psi_a, psi_b, None, t)


def skew_reverse_kl(a: torch.Tensor, b: torch.Tensor, skew: float, need_a: bool, need_b: bool) -> Terms:
    """KL(s ‖ λ s + (1−λ) t)."""
    r = skew_forward_kl(b, a, skew, need_b, need_a)
    return Terms(r.values, r.psi_b, r.psi_a, r.t, None)


def tvd(a: torch.Tensor, b: torch.Tensor, need_a: bool, need_b: bool) -> Terms:
    """½ Σ |s − t|."""
    s, t = a.exp(), b.exp()
    diff = torch.sub(s, t)
    values = diff.abs().sum(dim=-1).mul_(0.5)
    sign = diff.sign_().mul_(0.5)
    psi_a = torch.mul(sign, s) if need_a else None
    psi_b = sign.mul_(t).neg_() if need_b else None
    return Terms(values, psi_a, psi_b, s, t)


# ---------------------------------------------------------------------------
# α-β divergence (Cichocki, Cruces & Amari 2011), as ABKD uses it: D_AB(teacher ‖ student)
# ---------------------------------------------------------------------------


def _scaled(shift: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """e^shift · v for v ≥ 0 without overflowing in between: exp(shift + log v), 0 where v = 0."""
    return torch.where(v > 0, (shift + v.log()).exp(), torch.zeros_like(v))


def _finite_or_zero(x: torch.Tensor | None) -> torch.Tensor | None:
    """Derivatives of a term that is infinite are undefined: 0 there (documented), never NaN."""
    return None if x is None else x.nan_to_num_(nan=0.0, posinf=0.0, neginf=0.0)


def _one_zero(x: torch.Tensor, y: torch.Tensor, c: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """[e^{cx}(c(x − y) − 1) + e^{cy}] / c² per entry, with ∂/∂x = e^{cx}(x − y), ∂/∂y = (e^{cy} − e^{cx})/c."""
    shift = torch.maximum(c * x, c * y)
    shift = torch.where(torch.isfinite(shift), shift, torch.zeros_like(shift))
    ex, ey = (c * x - shift).exp(), (c * y - shift).exp()
    gap = x - y
    inner = _zero_nan(ex * (c * gap - 1.0))
    term = _scaled(shift, (inner + ey).clamp_(min=0.0) / (c * c))
    dx = _zero_nan(ex * gap) * shift.exp()
    dy = (ey - ex) * shift.exp() / c
    return term, dx, dy


def alpha_beta(a: torch.Tensor, b: torch.Tensor, alpha: float, beta: float, need_a: bool, need_b: bool) -> Terms:
    r"""α-β divergence of the teacher ``p = e^b`` from the student ``q = e^a``, summed over entries.

    .. math:: D_{AB}^{(\alpha,\beta)}(p \| q) = -\frac{1}{\alpha\beta} \sum_c \Big(p_c^\alpha q_c^\beta
       - \frac{\alpha}{\alpha+\beta} p_c^{\alpha+\beta} - \frac{\beta}{\alpha+\beta} q_c^{\alpha+\beta}\Big)

    with the exact limits: β = 0, :math:`\tfrac{1}{\alpha^2}\sum p^\alpha \log\frac{p^\alpha}{q^\alpha}
    - p^\alpha + q^\alpha` (forward KL at α = 1); α = 0, the same with p and q swapped and β for α
    (reverse KL at β = 1); α + β = 0, :math:`\tfrac{1}{\alpha^2}\sum e^{x} - 1 - x` with
    :math:`x = \alpha(\log p - \log q)`; α = β = 0, :math:`\tfrac12 \sum (\log p - \log q)^2`.
    Every entry is ≥ 0. An entry with p = q = 0 is 0; one with a zero raised to a negative power is
    ``+inf``, and the derivatives there are set to 0.
    """
    u = alpha + beta
    both_zero = (a == -_INF) & (b == -_INF)
    if alpha != 0 and beta != 0 and u != 0:
        x1, x2, x3 = u * b, u * a, _zero_nan(alpha * b + beta * a)
        shift = torch.maximum(torch.maximum(x1, x2), x3)
        infinite = shift == _INF
        shift = torch.where(torch.isfinite(shift), shift, torch.zeros_like(shift))
        e1, e2, e3 = (x1 - shift).exp(), (x2 - shift).exp(), (x3 - shift).exp()
        v = (e1 * (alpha / u) + e2 * (beta / u) - e3) / (alpha * beta)
        term = torch.where(infinite, _INF, _scaled(shift, v.clamp_(min=0.0)))
        scale = shift.exp()
        psi_a = (e2 - e3).mul_(scale / alpha) if need_a else None
        psi_b = (e1 - e3).mul_(scale / beta) if need_b else None
    elif beta == 0 and alpha != 0:
        term, psi_b, psi_a = _one_zero(b, a, alpha)
    elif alpha == 0 and beta != 0:
        term, psi_a, psi_b = _one_zero(a, b, beta)
    elif alpha != 0:  # α = −β
        x = alpha * (b - a)
        growth = torch.expm1(x)
        term = torch.where(x == _INF, _INF, (growth - x).clamp_(min=0.0) / (alpha * alpha))
        psi_a, psi_b = -growth / alpha, growth / alpha
    else:  # α = β = 0
        gap = a - b
        term = 0.5 * gap * gap
        psi_a, psi_b = gap, -gap
    term = term.masked_fill(both_zero, 0.0)
    psi_a = _finite_or_zero(psi_a.masked_fill_(both_zero, 0.0)) if need_a else None
    psi_b = _finite_or_zero(psi_b.masked_fill_(both_zero, 0.0)) if need_b else None
    return Terms(term.sum(dim=-1), psi_a, psi_b, None, None)


def terms(
    divergence: str,
    a: torch.Tensor,
    b: torch.Tensor,
    *,
    beta: float,
    skew: float,
    alpha: float,
    need_a: bool,
    need_b: bool,
    entrywise: bool = False,
) -> Terms:
    """Dispatch on the divergence's name (see the module docstring).

    The derivatives ψ may differ from ∂D/∂a by a constant multiple of the probabilities (which the
    chain rule through a softmax removes); ``entrywise`` (forward_kl, reverse_kl and jsd) returns each
    entry's own derivative instead, for outputs that keep the entries apart.
    """
    if divergence == "forward_kl":
        return forward_kl(a, b, need_a, need_b, entrywise)
    if divergence == "reverse_kl":
        return reverse_kl(a, b, need_a, need_b, entrywise)
    if divergence == "jsd":
        return jsd(a, b, beta, need_a, need_b, entrywise)
    if divergence == "skew_forward_kl":
        return skew_forward_kl(a, b, skew, need_a, need_b)
    if divergence == "skew_reverse_kl":
        return skew_reverse_kl(a, b, skew, need_a, need_b)
    if divergence == "tvd":
        return tvd(a, b, need_a, need_b)
    return alpha_beta(a, b, alpha, beta, need_a, need_b)
