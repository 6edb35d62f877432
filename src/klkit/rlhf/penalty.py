r"""The per-token KL penalty of RLHF: its value, and a surrogate whose gradient is stated."""

from __future__ import annotations

import math
from typing import Any, NamedTuple

from klkit.rlhf import _checks as checks
from klkit.rlhf.presets import FORMULAS, PRESETS, Clamp, Estimator, Gradient

__all__ = ["ESTIMATORS", "GRADIENTS", "PLACEMENTS", "KLPenalty", "kl_penalty"]

ESTIMATORS: tuple[str, ...] = checks.ESTIMATORS
"""The per-token estimators :func:`kl_penalty` accepts: ``('k1', 'k2', 'k3', 'abs')``."""
PLACEMENTS: tuple[str, ...] = checks.PLACEMENTS
"""Where the penalty goes: ``('reward', 'loss')``."""
GRADIENTS: tuple[str, ...] = checks.GRADIENTS
"""The gradient modes of the loss surrogate: ``('native', 'reverse_kl', 'straight_through')``."""


class KLPenalty(NamedTuple):
    """What :func:`kl_penalty` returns.

    Attributes
    ----------
    value : torch.Tensor
        The per-token estimate at each sampled token, detached: what goes into a reward.
    surrogate : torch.Tensor or None
        The per-token term to add (times β) to the loss; its expected gradient is the one named by
        ``gradient``. None for ``placement="reward"``.

    Examples
    --------
    >>> import torch
    >>> from klkit.rlhf import KLPenalty, kl_penalty
    >>> logp = torch.tensor([-1.0, -2.0], requires_grad=True)
    >>> ref = torch.tensor([-1.5, -1.0])
    >>> reward = kl_penalty(logp, ref)  # placement="reward": the value only
    >>> isinstance(reward, KLPenalty), reward.value.tolist(), reward.surrogate
    (True, [0.5, -1.0], None)
    >>> value, surrogate = kl_penalty(logp, ref, estimator="k2", placement="loss")  # unpacks as a tuple
    >>> value.requires_grad, surrogate.requires_grad, surrogate.tolist()
    (False, True, [0.125, 0.5])
    """

    value: Any
    surrogate: Any


def kl_penalty(
    logp: Any,
    ref_logp: Any,
    /,
    *,
    estimator: Estimator = "k1",
    placement: checks.Placement | None = None,
    gradient: Gradient = "native",
    old_logp: Any = None,
    clamp: Clamp | None = None,
    preset: str | None = None,
    densities: bool = False,
) -> KLPenalty:
    r"""Per-token estimate of KL(π‖π_ref) at sampled tokens, and a loss surrogate with a stated gradient.

    With :math:`\ell = \log\pi(a) - \log\pi_{\mathrm{ref}}(a)` at a sampled token :math:`a` and
    :math:`d = -\ell`:

    .. math::

        k_1 = \ell, \qquad k_2 = \tfrac12 \ell^2, \qquad
        k_3 = e^{d} - 1 - d, \qquad \mathrm{abs} = |\ell| .

    k3 is computed to a few ulps (a series below :math:`|d| = \tfrac12`, ``expm1(d) - d`` above; the
    libraries' ``(exp(d) - d) - 1`` keeps no correct digit in float32 below :math:`|d| \approx 10^{-4}`).
    On-policy (:math:`a \sim \pi`), :math:`E_\pi[k_1] = E_\pi[k_3] = \mathrm{KL}(\pi\|\pi_{\mathrm{ref}})`;
    k2 and abs are biased. Their **gradients** as losses differ from the gradient of that KL (Tang &
    Munos 2025; Zhang et al. 2025); with :math:`g(a) = \nabla_\theta \log\pi_\theta(a)`, the expected
    gradient of ``surrogate`` is:

    ==========  ======================================  =========================  ==================
    estimator   ``native`` (as the libraries)            ``reverse_kl``              ``straight_through``
    ==========  ======================================  =========================  ==================
    k1          0 (:math:`E_\pi[g] = 0`)                 ∇KL(π‖π_ref)                ∇KL(π‖π_ref)
    k2          ∇KL(π‖π_ref)                             ∇KL(π‖π_ref)                ∇KL(π‖π_ref)
    k3          ∇KL(π_ref‖π), the **forward** KL          ∇KL(π‖π_ref)                ∇KL(π‖π_ref)
    abs         ∇Σ_a|π(a) − π_ref(a)| (= 2 ∇TV)           ∇KL(π‖π_ref)                ∇KL(π‖π_ref)
    ==========  ======================================  =========================  ==================

    - ``native``: the estimator differentiated with the sample held fixed (verl, OpenRLHF, TRL's
      k3 loss). Per sample: k1 → :math:`g`, k2 → :math:`\ell g`, k3 → :math:`(1 - \pi_{\mathrm{ref}}/\pi) g`.
    - ``reverse_kl``: the derivative of the importance-weighted unbiased estimate
      :math:`w\,k` with :math:`w = \pi/\pi_{\mathrm{old}}` (value 1 on-policy), whose expectation is
      :math:`\nabla E_\pi[k] = \nabla\mathrm{KL}(\pi\|\pi_{\mathrm{ref}})` (score function plus pathwise
      term; TRL's ``use_bias_correction_kl``, DeepSeek-V3.2). k2 and abs keep their value and take
      k3's gradient, since :math:`E_\pi[k] \ne \mathrm{KL}` for them. Per sample: k1 →
      :math:`w(1 + \ell) g` (its zero-mean :math:`w g` term triples the variance: ``docs/rlhf.md``),
      the others → :math:`w \ell g`, computed analytically (no :math:`e^d - e^d` cancellation).
    - ``straight_through``: the estimator's value with k2's gradient :math:`\ell g` (verl's ``k1+``,
      ``k3+``: ``k2 - k2.detach() + value.detach()``).

    **Off-policy.** With ``old_logp`` (tokens drawn from :math:`\pi_{\mathrm{old}}`), ``native`` and
    ``straight_through`` are weighted by the detached :math:`w`, ``reverse_kl`` by :math:`w` itself, so each
    keeps the expected gradient of the table above. Without it, tokens from :math:`\pi_{\mathrm{old}}`
    make every surrogate follow :math:`\nabla_\theta E_{\pi_{\mathrm{old}}}[\ldots]` instead, the gradient of
    no divergence of π (``docs/rlhf.md`` gives the bias).

    **In the reward** (``placement="reward"``) only ``value`` is used: the policy-gradient estimator
    multiplies it by :math:`g` (and, with returns, by the scores of earlier tokens). There
    :math:`E_\pi[k_1 g] = \nabla\mathrm{KL}(\pi\|\pi_{\mathrm{ref}})` (and the sequence-level KL gradient
    with returns: OpenRLHF's "k1 in the reward, k2/k3 in the loss"), while
    :math:`E_\pi[k_3 g] = \nabla\mathrm{KL}(\pi\|\pi_{\mathrm{ref}}) - \nabla\mathrm{KL}(\pi_{\mathrm{ref}}\|\pi)` and
    :math:`E_\pi[k_2 g] = \nabla E_\pi[k_2] - \nabla\mathrm{KL}(\pi\|\pi_{\mathrm{ref}})`.
    Token-level losses miss the sequence-level terms; see :func:`klkit.rlhf.sequence_kl_surrogate`.

    Parameters
    ----------
    logp : torch.Tensor
        :math:`\log\pi_\theta(a)` at the sampled tokens, any shape, with the policy's autograd graph:
        log-probabilities, so ≤ 0 (up to √ε of rounding); positive values (raw logits) are refused.
    ref_logp : torch.Tensor
        :math:`\log\pi_{\mathrm{ref}}(a)` at the same tokens, same shape, not requiring grad. ``-inf``
        (π_ref gives the token no mass) only under a ``clamp``, which then bounds the estimate, as in verl
        and OpenRLHF (``verl:low_var_kl`` gives 10 there).
    estimator : {'k1', 'k2', 'k3', 'abs'}, default 'k1'
        The per-token estimator (verl's ``kl``/``k1``, ``mse``/``k2``, ``low_var_kl``/``k3``, ``abs``).
    placement : {'reward', 'loss'}, optional
        ``"reward"``: only the value is returned (``surrogate`` is None); ``"loss"``: the surrogate too.
        None: the preset's own placement (``"loss"`` for the ``trl:*`` presets, TRL's GRPO loss term;
        ``"reward"`` for the others), ``"reward"`` without a preset.
    gradient : {'native', 'reverse_kl', 'straight_through'}, default 'native'
        Which expected gradient the surrogate has (table above); only ``"native"`` with ``"reward"``.
    old_logp : torch.Tensor, optional
        :math:`\log\pi_{\mathrm{old}}(a)` of the policy that drew the tokens (same shape, no grad),
        for the importance correction; None when they were drawn from π itself. Only with ``"loss"``.
    clamp : Clamp, optional
        Clamps of the log-ratio and of the estimate (gradient 0 where active); None: none.
    densities : bool, default False
        The inputs are log-densities of continuous actions (a Gaussian policy's), which may be positive:
        the sign check is skipped. Token log-probabilities are ≤ 0, and a positive one is refused.
    preset : str, optional
        A key of :data:`klkit.rlhf.PRESETS` (``"verl:k3+"``, ``"openrlhf:k3"``, ``"trl:k3_ratio"`` ...):
        the library's estimator, clamps, gradient and arithmetic, bit for bit. It fixes
        ``estimator``, ``gradient`` and ``clamp`` (leave them at their defaults); with
        ``"reward"`` its value only is used, as in the libraries.

    Returns
    -------
    KLPenalty
        ``value`` (the estimate, detached) and ``surrogate``, both of the input's shape, dtype and
        device. On-policy the surrogate's value equals ``value``; with ``old_logp`` it is :math:`w` times
        it (an estimate of :math:`E_\pi[k]` from tokens of π_old). Where a clamp holds, ∂k/∂log π is 0
        (never NaN, at ``ref_logp = -inf`` too).

    Raises
    ------
    ValueError
        Shapes that differ, positive log-probabilities, NaN or ±inf in the inputs (−inf in ``ref_logp``
        without a ``clamp``: π_ref gives the sampled token no mass, KL(π‖π_ref) is infinite), an unknown
        ``estimator``, ``placement``, ``gradient`` or ``preset``, ``gradient`` other than ``"native"`` or
        ``old_logp`` with ``"reward"``, a ``preset`` beside ``estimator``/``gradient``/``clamp``, a bad
        ``clamp``, ``ref_logp`` or ``old_logp`` that requires grad.
    TypeError
        Inputs that are not floating-point torch tensors.

    References
    ----------
    .. [1] J. Schulman, "Approximating KL Divergence", 2020. http://joschu.net/blog/kl-approx.html
    .. [2] Y. Tang and R. Munos, "On a few pitfalls in KL divergence gradient estimation for RL", 2025.
    .. [3] Y. Zhang et al., "On the design of KL-regularized policy gradient algorithms for LLM reasoning", 2025.
    .. [4] "Rethinking KL regularization in RLHF: from value estimation to gradient optimization", 2025.
    .. [5] "A comedy of estimators: on KL regularization in RL training of LLMs", 2025.
    .. [6] verl ``verl/trainer/ppo/core_algos.py`` (``kl_penalty``); OpenRLHF ``openrlhf/models/utils.py``
       (``compute_approx_kl``); TRL ``trl/trainer/grpo_trainer.py`` (``beta``, ``use_bias_correction_kl``).

    Examples
    --------
    >>> import torch
    >>> from klkit.rlhf import kl_penalty
    >>> logp = torch.tensor([-1.0, -2.0], dtype=torch.float64, requires_grad=True)
    >>> ref = torch.tensor([-1.5, -1.0], dtype=torch.float64)
    >>> out = kl_penalty(logp, ref, estimator="k3", placement="loss", gradient="straight_through")
    >>> [round(v, 6) for v in out.value.tolist()]  # k3 = e^d - 1 - d, d = ref - logp
    [0.106531, 0.718282]
    >>> out.surrogate.sum().backward()
    >>> logp.grad.tolist()  # k2's gradient: the log-ratio
    [0.5, -1.0]
    >>> verl = kl_penalty(logp, ref, preset="verl:low_var_kl").value  # (exp(d) - d) - 1, clamped
    >>> float((verl - out.value).abs().max()) < 1e-15  # klkit's k3: the same up to rounding
    True
    """
    formula = "klkit"
    if preset is not None:
        estimator, gradient, clamp, formula = checks.from_preset(preset, estimator, gradient, clamp)
        placement = PRESETS[preset].placement if placement is None else placement
    placement = "reward" if placement is None else placement
    checks.options(estimator, placement, gradient, old_logp, preset)
    clamp = checks.clamp(clamp)
    bounded = clamp is not None and (clamp.log_ratio is not None or clamp.value is not None)
    torch = checks.tensors(logp, ref_logp, old_logp, ref_may_be_minus_inf=bounded, densities=checks.flag(densities))

    ell = logp - ref_logp  # log π/π_ref at the sampled tokens (+inf where ref_logp = -inf, under a clamp)
    raw = _estimate(ell, ref_logp - logp, estimator, clamp, formula, torch)  # before the clamp of the value
    k = raw if clamp is None or clamp.value is None else torch.clamp(raw, min=-clamp.value, max=clamp.value)
    value = k.detach()
    if placement == "reward":
        return KLPenalty(value, None)
    weight = None if old_logp is None else torch.exp(logp.detach() - old_logp)  # π/π_old at the tokens

    if gradient == "reverse_kl":
        # d(w·k)/d log π = w·(k + ∂k/∂log π): w·(1 + ℓ) for k1, w·ℓ for k3 (k3 + 1 - e^d = ℓ exactly),
        # written out so that no e^d - e^d cancels; k2 and abs keep their value and take k3's.
        # Where a clamp holds, ∂k/∂log π = 0 and the slope is the (clamped) estimate itself.
        free = _unclamped(ell.detach(), raw.detach(), clamp)
        slope = torch.where(free, ell.detach() + (1 if estimator == "k1" else 0), value)
        scale = slope if weight is None else weight * slope
        estimate = value if weight is None else weight * value
        return KLPenalty(value, estimate + scale * (logp - logp.detach()))

    if gradient == "straight_through":  # verl's '+': the estimator's value, k2's gradient
        finite = torch.where(torch.isfinite(ell), ell, torch.zeros_like(ell))  # gradient 0, not inf - inf
        k2 = 0.5 * finite.square()
        k = k2 - k2.detach() + value
    return KLPenalty(value, k if weight is None else weight * k)


# ---------------------------------------------------------------------------
# The estimators
# ---------------------------------------------------------------------------


def _estimate(ell: Any, d: Any, estimator: str, clamp: Clamp | None, formula: str, torch: Any) -> Any:
    """The estimator at each token after the clamp of the log-ratio (not yet that of the value).

    ``d = -ell`` is passed as the libraries compute it (``ref_logp - logp``: the same bits).
    """
    bound = None if clamp is None else clamp.log_ratio
    if estimator == "k3":
        d = -ell if d is None else d
        if bound is not None:
            d = torch.clamp(d, min=-bound, max=bound)
        if clamp is not None and clamp.value is not None:
            # under a clamp of the value, keep e^d finite: the value is clamped either way, and the
            # gradient is 0 there instead of 0·inf = NaN (OpenRLHF's k3 in float32 below ℓ = -88)
            d = torch.clamp(d, max=math.log(torch.finfo(d.dtype).max) - 1)
        return FORMULAS[formula](d)
    if bound is not None:
        ell = torch.clamp(ell, min=-bound, max=bound)
    infinite = ~torch.isfinite(ell)  # ℓ = +inf (ref_logp = -inf) under a clamp of the value only
    if bool(infinite.any()):  # the estimate is +inf there, as a constant: the clamp's gradient 0, never 0·inf
        safe = torch.where(infinite, torch.zeros_like(ell), ell)
        k = safe if estimator == "k1" else 0.5 * safe.square() if estimator == "k2" else safe.abs()
        return torch.where(infinite, math.inf, k)
    return ell if estimator == "k1" else 0.5 * ell.square() if estimator == "k2" else ell.abs()


def _unclamped(ell: Any, raw: Any, clamp: Clamp | None) -> Any:
    """Where no clamp holds (``torch.clamp`` passes the gradient where ``-b <= x <= b``)."""
    free = ell.abs() <= math.inf
    if clamp is not None and clamp.log_ratio is not None:
        free = free & (ell.abs() <= clamp.log_ratio)
    if clamp is not None and clamp.value is not None:
        free = free & (raw.abs() <= clamp.value)
    return free
