r"""PPO's objective on one minibatch and the adaptive penalty's β rule (Schulman et al., 2017).

- :func:`ppo_loss`: the clipped surrogate (eq. 7) or the KL-penalised one (eq. 8), the value loss and
  the entropy bonus (eq. 9), plus an optional RLHF-style penalty to a reference policy;
- :func:`adapt_beta`: §4's rule for β after each update.

:mod:`klkit.train.ppo` holds the configuration and the training loop that calls these.
"""

from __future__ import annotations

from typing import Any

import torch

import klkit
from klkit.rlhf import kl_penalty
from klkit.train import rl

__all__ = ["adapt_beta", "ppo_loss"]


def ppo_loss(
    policy: rl.ActorCritic,
    batch: dict[str, torch.Tensor],
    *,
    clip_range: float | None,
    clip_range_vf: float | None,
    vf_coef: float,
    ent_coef: float,
    kl_beta: float | None,
    normalize_advantage: bool,
    measure_kl: bool = False,
    kl_ref_coef: float = 0.0,
    kl_estimator: str = "k1",
    kl_gradient: str = "native",
) -> tuple[torch.Tensor, dict[str, Any]]:
    r"""PPO's loss on one minibatch and what it measured along the way.

    .. math::

        \mathcal L = -L^{CLIP} + \beta\,\overline{\mathrm{KL}}(\pi_{old}\|\pi_\theta)
        + c_v\,\overline{(V_\phi(s) - \hat R)^2} - c_e\,\overline{H[\pi_\theta(\cdot|s)]}

    (the β term only when ``kl_beta`` is given; the KL is klkit's closed form, averaged over states),
    plus, with ``kl_ref_coef`` > 0 and ``batch["ref_log_probs"]``, the reference penalty
    :math:`\beta_{ref}\,\overline{s}` with :math:`s` the surrogate of :func:`klkit.rlhf.kl_penalty`
    (``kl_estimator``, ``kl_gradient``, ``old_logp`` = the rollout's log-probs).

    Parameters
    ----------
    policy : ActorCritic
    batch : dict of Tensor
        ``obs``, ``actions``, ``log_probs`` (old), ``dist_params`` (old), ``values`` (old),
        ``advantages``, ``returns`` for the minibatch.
    measure_kl : bool, default False
        Compute the minibatch's closed-form mean KL even without a penalty (for ``target_kl``).
    kl_ref_coef, kl_estimator, kl_gradient
        The reference penalty in the loss (:class:`Config`); 0 leaves the loss as without it.

    Returns
    -------
    loss : Tensor
        Scalar, differentiable.
    info : dict
        ``policy_loss``, ``value_loss``, ``entropy`` (floats; entropy None
        when ``ent_coef`` is 0, as it is then not part of the loss) and
        ``kl`` (the closed-form mean KL, detached; None unless ``kl_beta`` or ``measure_kl``).
    """
    params = policy.distribution_parameters(batch["obs"])
    log_prob = policy.log_prob(params, batch["actions"])
    log_ratio = log_prob - batch["log_probs"]
    ratio = log_ratio.exp()
    adv = batch["advantages"]
    if normalize_advantage and adv.numel() > 1:
        adv = (adv - adv.mean()) / (adv.std() + 1e-8)

    # --- policy: clipped surrogate (eq. 7), or the plain ratio when clip_range is None ---
    surrogate = ratio * adv
    if clip_range is not None:
        surrogate = torch.min(surrogate, ratio.clamp(1.0 - clip_range, 1.0 + clip_range) * adv)
    policy_loss = -surrogate.mean()

    # --- KL(π_old ‖ π_θ) per state, closed form from klkit (for the penalty or the early stop) ---
    kl = None
    if kl_beta is not None or measure_kl:
        old = policy.make_distribution(batch["dist_params"])  # π_old, rebuilt from the rollout
        kl = klkit.kl_divergence(old, policy.make_distribution(params)).mean()
    if kl_beta is not None:  # adaptive KL penalty (eq. 8)
        policy_loss = policy_loss + kl_beta * kl
    if kl_ref_coef > 0:  # RLHF: KL to a fixed reference, with the gradient klkit.rlhf states
        penalty = kl_penalty(
            log_prob,
            batch["ref_log_probs"],
            estimator=kl_estimator,
            placement="loss",
            gradient=kl_gradient,
            old_logp=batch["log_probs"],
            densities=not policy.discrete,  # a Gaussian policy's log-densities may be positive
        )
        policy_loss = policy_loss + kl_ref_coef * penalty.surrogate.mean()

    # --- value function: MSE to the λ-returns, optionally clipped around the old prediction ---
    values = policy.value(batch["obs"])
    value_loss = (values - batch["returns"]).pow(2)
    if clip_range_vf is not None:
        clipped = batch["values"] + (values - batch["values"]).clamp(-clip_range_vf, clip_range_vf)
        value_loss = torch.max(value_loss, (clipped - batch["returns"]).pow(2))
    value_loss = value_loss.mean()

    loss = policy_loss + vf_coef * value_loss
    entropy = None
    if ent_coef != 0.0:  # (with no bonus, the entropy is reported once per update instead)
        entropy = policy.make_distribution(params).entropy().mean()
        loss = loss - ent_coef * entropy
    return loss, {
        "policy_loss": policy_loss.item(),
        "value_loss": value_loss.item(),
        "entropy": None if entropy is None else entropy.item(),
        "kl": None if kl is None else kl.detach(),
    }


def adapt_beta(beta: float, kl: float, kl_target: float) -> float:
    """The PPO paper's β rule (§4): halve when KL < d_targ/1.5, double when KL > 1.5·d_targ, else keep.

    Examples
    --------
    >>> adapt_beta(1.0, 0.001, 0.01), adapt_beta(1.0, 0.02, 0.01), adapt_beta(1.0, 0.01, 0.01)
    (0.5, 2.0, 1.0)
    """
    if kl < kl_target / 1.5:
        return beta / 2.0
    if kl > 1.5 * kl_target:
        return beta * 2.0
    return beta
