r"""A surrogate whose gradient is the gradient of the sequence-level KL(π(y)‖π_ref(y))."""

from __future__ import annotations

from typing import Any

from klkit.errors import InvalidArgumentError, ShapeError
from klkit.rlhf import _checks as checks

__all__ = ["sequence_kl_surrogate"]


def sequence_kl_surrogate(
    logp: Any, ref_logp: Any, mask: Any, /, *, old_logp: Any = None, densities: bool = False
) -> Any:
    r"""Per-sequence surrogate with value the k1 estimate of KL(π(y)‖π_ref(y)) and gradient its exact gradient.

    For a sequence :math:`y = (y_1, \ldots, y_T)` drawn from the autoregressive policy π, with
    :math:`\ell_t = \log\pi(y_t\mid y_{<t}) - \log\pi_{\mathrm{ref}}(y_t\mid y_{<t})` on the unmasked tokens,

    .. math::

        \mathrm{KL}(\pi\|\pi_{\mathrm{ref}}) = E_\pi\Big[\sum_t \ell_t\Big], \qquad
        \nabla\mathrm{KL}(\pi\|\pi_{\mathrm{ref}}) = E_\pi\Big[\sum_t \nabla\log\pi(y_t\mid y_{<t})
        \sum_{s \ge t} \ell_s\Big],

    (the score of :math:`y_t` has mean zero given :math:`y_{<t}`, which removes the terms with
    :math:`s < t` and the pathwise term :math:`E_\pi[\sum_t \nabla\ell_t] = 0`). The surrogate is
    :math:`\sum_t \mathrm{sg}(\ell_t) + \sum_t \mathrm{sg}(G_t)\,(\log\pi_t - \mathrm{sg}(\log\pi_t))`
    with the reward-to-go :math:`G_t = \sum_{s\ge t}\ell_s` and sg the stop-gradient (``detach``): its
    gradient with respect to :math:`\log\pi_t` is :math:`G_t` (the pathwise term, 1 per token, is
    left out: its expectation is 0 and it only adds variance), its value the unbiased k1 estimate of the
    sequence KL, its expected gradient exactly the sequence-level ∇KL(π‖π_ref) — which is what
    k1 in the reward with undiscounted returns follows. Token-level losses (k2 or k3 summed over
    tokens, :func:`klkit.rlhf.kl_penalty`) miss the :math:`s > t` terms: k2 follows
    :math:`E_\pi[\sum_t \ell_t \nabla\log\pi_t]` only, k3 the per-token forward KLs (Tang & Munos 2025;
    "A comedy of estimators", 2025).

    **Off-policy.** With ``old_logp`` (sequences drawn from π_old) each :math:`\ell_s` is weighted by the
    prefix ratio :math:`\rho_{\le s} = \prod_{u \le s} \pi(y_u\mid y_{<u}) / \pi_{\mathrm{old}}(y_u\mid y_{<u})`
    (detached): value and gradient stay unbiased, at the cost of the variance of the products.

    Parameters
    ----------
    logp : torch.Tensor
        :math:`\log\pi_\theta(y_t\mid y_{<t})`, shape ``(..., T)`` (the last axis is time), with autograd;
        log-probabilities (≤ 0 at unmasked tokens: positive values, raw logits, are refused).
    ref_logp : torch.Tensor
        The reference's, same shape, not requiring grad.
    mask : torch.Tensor
        Same shape, bool or 0/1: 1 on the sequence's tokens, 0 on padding (whose log-probs are ignored).
    old_logp : torch.Tensor, optional
        The sampling policy's, same shape, no grad; None when the sequences were drawn from π.
    densities : bool, default False
        The inputs are log-densities of continuous actions, which may be positive (no sign check).

    Returns
    -------
    torch.Tensor
        Shape ``(...)``: one surrogate per sequence; its value is the estimate of the sequence KL.

    Raises
    ------
    ValueError
        Shapes that differ, no time axis, a ``mask`` with values other than 0 and 1, NaN, ±inf or
        positive values at unmasked tokens, ``ref_logp`` or ``old_logp`` that requires grad.
    TypeError
        Inputs that are not floating-point torch tensors (``mask``: bool, integer or float).

    References
    ----------
    .. [1] Y. Tang and R. Munos, "On a few pitfalls in KL divergence gradient estimation for RL", 2025.
    .. [2] Y. Zhang et al., "On the design of KL-regularized policy gradient algorithms for LLM reasoning", 2025.

    Examples
    --------
    >>> import torch
    >>> from klkit.rlhf import sequence_kl_surrogate
    >>> logp = torch.tensor([[-0.5, -1.0, -2.0]], dtype=torch.float64, requires_grad=True)
    >>> ref = torch.tensor([[-1.0, -1.0, -0.5]], dtype=torch.float64)
    >>> mask = torch.tensor([[True, True, False]])
    >>> s = sequence_kl_surrogate(logp, ref, mask)
    >>> s.tolist()  # ℓ_1 + ℓ_2; the padded token is ignored
    [0.5]
    >>> s.sum().backward()
    >>> logp.grad.tolist()  # the rewards-to-go G_t
    [[0.5, 0.0, 0.0]]
    """
    import torch

    checks.tensors(logp, ref_logp, old_logp, finite=False)  # types and shapes first
    if not isinstance(mask, torch.Tensor) or mask.dtype.is_complex:
        raise TypeError(
            f"`mask` must be a bool or 0/1 torch tensor; found {type(mask).__name__}. "
            "Use torch.as_tensor(mask, dtype=torch.bool)."
        )
    if tuple(mask.shape) != tuple(getattr(logp, "shape", ())) or mask.ndim == 0:
        raise ShapeError(
            f"`mask` must have the shape of `logp` (..., T); found {tuple(mask.shape)} and "
            f"{tuple(getattr(logp, 'shape', ()))}. One entry per token, time last."
        )
    keep = mask if mask.dtype == torch.bool else mask != 0
    if mask.dtype != torch.bool and not bool(((mask == 0) | (mask == 1)).all()):
        raise InvalidArgumentError(
            f"`mask` must hold only 0 and 1; found {mask[(mask != 0) & (mask != 1)][0].item()}. "
            "Pass a bool mask of the sequence's tokens."
        )
    checks.tensors(logp, ref_logp, old_logp, keep, densities=checks.flag(densities))

    zero = torch.zeros((), dtype=logp.dtype, device=logp.device)
    ell = torch.where(keep, logp.detach() - ref_logp, zero)  # ℓ_t, 0 on padding
    if old_logp is not None:
        log_ratio = torch.where(keep, logp.detach() - old_logp, zero)
        ell = torch.exp(torch.cumsum(log_ratio, dim=-1)) * ell  # ρ_{≤t} ℓ_t
    to_go = torch.flip(torch.cumsum(torch.flip(ell, (-1,)), dim=-1), (-1,))  # G_t = Σ_{s≥t}
    score = torch.where(keep, logp - logp.detach(), zero)  # value 0, gradient ∇log π_t
    return ell.sum(-1) + (to_go * score).sum(-1)
