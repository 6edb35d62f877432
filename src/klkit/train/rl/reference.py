r"""An RLHF-style KL penalty to a fixed reference policy, for PPO (:func:`klkit.rlhf.kl_penalty`).

- :func:`reference_policy`: the frozen reference, the run's initial policy or a saved run's;
- :func:`pin_reference`: the reference kept in the checkpoint, so that a resumed run uses the same one;
- :func:`reference_kl`: log π_ref at the rollout's actions, the exact KL to the reference both ways
  (klkit's closed form) beside the per-step estimate, and β·estimate off the rewards when the penalty
  sits in the reward;
- :func:`validate_reference_kl`: the rules of the ``kl_ref_*`` settings (the options are
  :data:`klkit.rlhf.ESTIMATORS`, :data:`klkit.rlhf.PLACEMENTS`, :data:`klkit.rlhf.GRADIENTS`).
"""

from __future__ import annotations

import copy
import math
from pathlib import Path
from typing import Any

import torch

import klkit
from klkit.errors import InvalidArgumentError
from klkit.rlhf import ESTIMATORS, GRADIENTS, PLACEMENTS, kl_penalty
from klkit.train._checkpoint import load
from klkit.train._runs import isolated_rng
from klkit.train.rl.policies import ActorCritic, build_policy
from klkit.train.rl.rollout import RolloutBuffer
from klkit.train.rl.runs import CHECKPOINT, read_config

__all__ = ["pin_reference", "reference_kl", "reference_policy", "validate_reference_kl"]

_KEY = "reference"  # where the reference's weights live in the checkpoint's ``extra``
# the fix clause of each option's error message
_FIXES = {
    "kl_estimator": "Use 'k1' or 'k3' (unbiased for KL(π_old‖π_ref) at the rollout's actions).",
    "kl_placement": "Use 'reward' (β·estimate off each reward) or 'loss' (β·surrogate added to the loss).",
    "kl_gradient": "Use 'native' (the libraries' gradient) or 'reverse_kl' (∇KL(π‖π_ref) whatever the estimator).",
}


def reference_policy(cfg: Any, policy: ActorCritic) -> ActorCritic:
    r"""The frozen reference of the penalty :math:`\beta\,\mathrm{KL}(\pi\|\pi_{\mathrm{ref}})`.

    A copy of ``policy`` as it is now (call it before resuming: the run's initial policy), or, with
    ``cfg.kl_ref``, the policy saved in that run directory. Either way in eval mode, without grad,
    on ``policy``'s device. See :func:`pin_reference` for keeping it across an interruption.

    Parameters
    ----------
    cfg : klkit.train.ppo.Config
        Reads ``kl_ref`` and ``env_id``.
    policy : ActorCritic
        The run's freshly initialised policy.

    Returns
    -------
    ActorCritic
        The reference, a separate module (training ``policy`` leaves it as it is).

    Raises
    ------
    ValueError
        ``cfg.kl_ref`` holds no ``checkpoint.pt``, or is a run on another environment or with
        observation normalisation.

    Examples
    --------
    >>> from klkit.train import ppo, rl
    >>> cfg = ppo.Config(hidden_sizes=(8,), kl_ref_coef=0.1)
    >>> policy = rl.build_policy(cfg)
    >>> reference = rl.reference_policy(cfg, policy)
    >>> reference is policy, reference.training, any(p.requires_grad for p in reference.parameters())
    (False, False, False)
    >>> all(torch.equal(a, b) for a, b in zip(reference.parameters(), policy.parameters()))
    True
    """
    if cfg.kl_ref is None:
        reference = copy.deepcopy(policy)
    else:
        ref_dir = Path(cfg.kl_ref)
        if not (ref_dir / CHECKPOINT).is_file():
            raise ValueError(
                f"`kl_ref` must be a run directory holding {CHECKPOINT}; none in {ref_dir}. "
                "Train the reference first, or leave kl_ref None for the initial policy."
            )
        ref_cfg = read_config(ref_dir)
        if ref_cfg.get("env_id") != cfg.env_id or ref_cfg.get("normalize_observations"):
            found = f"{ref_cfg.get('env_id')!r} with normalize_observations={ref_cfg.get('normalize_observations')}"
            raise ValueError(
                f"`kl_ref` must be a run on {cfg.env_id} without observation normalisation; found "
                f"{found}. Point kl_ref at such a run: the reference must read the observations this "
                "run stores."
            )
        with isolated_rng():  # building initialises weights from torch's generator; the run's stream stays as is
            reference = build_policy(ref_cfg)
        reference.load_state_dict(load(ref_dir / CHECKPOINT)["policy"])
        reference.to(next(policy.parameters()).device)
    reference.eval()
    return reference.requires_grad_(False)


def pin_reference(reference: ActorCritic | None, extra: dict[str, Any]) -> None:
    r"""Keep :math:`\pi_{\mathrm{ref}}` in the checkpoint: a resumed run reloads the one it started with.

    Call it after :meth:`klkit.train.rl.Run.resume` with the run's ``extra`` (the algorithm state
    :meth:`~klkit.train.rl.Run.save_checkpoint` writes). If ``extra`` holds a reference (a resumed
    run), its weights are loaded into ``reference``; else ``reference``'s are stored there (tensors
    only, loadable with ``weights_only=True``). So the penalty's reference stays the run's initial
    policy, or the ``kl_ref`` run's policy as it was when this run started, even if that run has
    trained on since. None (no penalty) does nothing.

    Parameters
    ----------
    reference : ActorCritic or None
        From :func:`reference_policy`.
    extra : dict
        ``run.extra``; changed in place.

    Examples
    --------
    >>> from klkit.train import ppo, rl
    >>> from klkit.train.rl.reference import pin_reference
    >>> cfg = ppo.Config(hidden_sizes=(8,), kl_ref_coef=0.1)
    >>> first = rl.reference_policy(cfg, rl.build_policy(cfg))
    >>> extra = {}
    >>> pin_reference(first, extra)  # a fresh run: the checkpoint will hold this reference
    >>> sorted(extra)
    ['reference']
    >>> rebuilt = rl.reference_policy(cfg, rl.build_policy(cfg))  # after a restart, drawn anew
    >>> pin_reference(rebuilt, extra)  # the saved one is loaded into it
    >>> all(torch.equal(a, b) for a, b in zip(rebuilt.parameters(), first.parameters()))
    True
    """
    if reference is None:
        return
    saved = extra.get(_KEY)
    if saved is None:
        extra[_KEY] = {name: value.detach().clone() for name, value in reference.state_dict().items()}
    else:
        reference.load_state_dict(saved)


def reference_kl(
    reference: ActorCritic, buffer: RolloutBuffer, cfg: Any, device: torch.device | None = None
) -> tuple[torch.Tensor, dict[str, float]]:
    r"""log π_ref at the rollout's actions, and the KL to the reference at the rollout policy π_old.

    With :math:`\ell_t = \log\pi_{\mathrm{old}}(a_t|s_t) - \log\pi_{\mathrm{ref}}(a_t|s_t)` and
    :math:`k` the estimator ``cfg.kl_estimator`` of :func:`klkit.rlhf.kl_penalty` (k1: :math:`\ell`,
    k3: :math:`e^{-\ell} - 1 + \ell`, ...), for ``kl_placement="reward"``

    .. math::

        r_t \leftarrow r_t - \beta\,k(\ell_t), \qquad \beta = \texttt{kl\_ref\_coef},

    applied to ``buffer.rewards`` in place (the learner's rewards, before GAE). k1 and k3 are
    unbiased: :math:`E_{a\sim\pi_{\mathrm{old}}(\cdot|s)}[k(\ell)]
    = \mathrm{KL}(\pi_{\mathrm{old}}(\cdot|s)\|\pi_{\mathrm{ref}}(\cdot|s))`.

    Parameters
    ----------
    reference : ActorCritic
        From :func:`reference_policy`.
    buffer : RolloutBuffer
        The rollout just collected (π_old is rebuilt from its ``dist_params``).
    cfg : klkit.train.ppo.Config
        Reads ``kl_estimator``, ``kl_placement`` and ``kl_ref_coef``.
    device : torch.device, optional
        Where to evaluate; None: the reference's device.

    Returns
    -------
    ref_log_probs : torch.Tensor
        Shape ``(n_steps * n_envs,)``: :math:`\log\pi_{\mathrm{ref}}(a_t|s_t)`, flattened as
        :func:`~klkit.train.rl.rollout.flatten_rollout` flattens the rollout.
    record : dict
        ``kl_ref_reverse`` = mean exact KL(π_old‖π_ref) over the rollout's states, ``kl_ref_forward``
        = mean exact KL(π_ref‖π_old) (klkit's closed form), ``kl_ref_estimate`` = mean of :math:`k(\ell_t)`.

    Examples
    --------
    A uniform policy π_old and a reference with logits (1, −1), two steps of each action:

    >>> import numpy as np
    >>> from klkit.train import ppo, rl
    >>> cfg = ppo.Config(hidden_sizes=(8,), kl_ref_coef=0.5)
    >>> reference = rl.build_policy(cfg)
    >>> with torch.no_grad():
    ...     _ = reference.actor[-1].weight.zero_(), reference.actor[-1].bias.copy_(torch.tensor([1.0, -1.0]))
    >>> buffer = rl.RolloutBuffer.empty(2, 2, 4, (), 2, True)  # 2 steps × 2 envs, logits of π_old: 0
    >>> buffer.actions[:] = [[0, 1], [1, 0]]
    >>> buffer.log_probs[:] = np.log(0.5)
    >>> buffer.rewards[:] = 1.0
    >>> ref_log_probs, record = rl.reference_kl(reference, buffer, cfg)
    >>> {name: round(value, 4) for name, value in record.items()}  # k1 = log π_old - log π_ref
    {'kl_ref_reverse': 0.4338, 'kl_ref_forward': 0.3278, 'kl_ref_estimate': 0.4338}
    >>> buffer.rewards.astype(np.float64).round(4).tolist()  # 1 - 0.5·(log 0.5 - log π_ref(a))
    [[1.2831, 0.2831], [0.2831, 1.2831]]
    """
    device = next(reference.parameters()).device if device is None else device
    n = buffer.rewards.size
    obs = torch.from_numpy(buffer.obs.reshape(n, -1)).to(device)
    actions = torch.from_numpy(buffer.actions.reshape(n, *buffer.actions.shape[2:])).to(device)
    old_log_probs = torch.from_numpy(buffer.log_probs.reshape(n)).to(device)
    with torch.no_grad():
        ref = reference.distribution(obs)
        old = reference.make_distribution(torch.from_numpy(buffer.dist_params.reshape(n, -1)).to(device))
        ref_log_probs = ref.log_prob(actions).to(old_log_probs.dtype)
        estimate = kl_penalty(
            old_log_probs, ref_log_probs, estimator=cfg.kl_estimator, densities=not reference.discrete
        ).value
        record = {
            "kl_ref_reverse": float(klkit.kl_divergence(old, ref).mean()),
            "kl_ref_forward": float(klkit.kl_divergence(ref, old).mean()),
            "kl_ref_estimate": float(estimate.mean()),
        }
    if cfg.kl_placement == "reward":
        buffer.rewards -= cfg.kl_ref_coef * estimate.cpu().numpy().reshape(buffer.rewards.shape)
    return ref_log_probs, record


def validate_reference_kl(cfg: Any) -> None:
    """Check the ``kl_ref_*`` settings of a PPO config; raise naming the first that breaks its rule.

    The rules: ``kl_ref_coef`` a finite number ≥ 0; ``kl_estimator``, ``kl_placement`` and
    ``kl_gradient`` among :data:`klkit.rlhf.ESTIMATORS`, :data:`klkit.rlhf.PLACEMENTS` and
    :data:`klkit.rlhf.GRADIENTS`; ``kl_gradient="native"`` with ``kl_placement="reward"`` (the
    reward uses the estimate only); ``kl_ref`` only without ``normalize_observations``.

    Parameters
    ----------
    cfg : klkit.train.ppo.Config
        Called by its ``validate``.

    Raises
    ------
    ValueError
        (:class:`klkit.errors.InvalidArgumentError`) naming the setting, the rule, what was found
        and the fix.

    Examples
    --------
    >>> from klkit.train import ppo, rl
    >>> rl.validate_reference_kl(ppo.Config(kl_ref_coef=0.1, kl_estimator="k3", kl_placement="loss"))
    >>> try:
    ...     rl.validate_reference_kl(ppo.Config(kl_ref_coef=0.1, kl_estimator="low_var_kl"))
    ... except ValueError as error:
    ...     print(str(error).split(";")[0])
    `kl_estimator` must be one of 'k1', 'k2', 'k3', 'abs'
    """
    coef = cfg.kl_ref_coef
    if isinstance(coef, bool) or not isinstance(coef, (int, float)) or not 0 <= coef < math.inf:
        raise InvalidArgumentError(
            f"`kl_ref_coef` must be a finite number >= 0; found {coef!r}. Pass 0 to turn the "
            "penalty off, or a small β such as 0.05."
        )
    for name, allowed in (("kl_estimator", ESTIMATORS), ("kl_placement", PLACEMENTS), ("kl_gradient", GRADIENTS)):
        if getattr(cfg, name) not in allowed:
            raise InvalidArgumentError(
                f"`{name}` must be one of {', '.join(map(repr, allowed))}; found {getattr(cfg, name)!r}. {_FIXES[name]}"
            )
    if cfg.kl_placement == "reward" and cfg.kl_gradient != "native":
        raise InvalidArgumentError(
            f"`kl_gradient` must be 'native' with kl_placement='reward'; found {cfg.kl_gradient!r}. In the reward "
            "only the estimate is used; use kl_placement='loss' for another gradient."
        )
    if cfg.kl_ref is not None and cfg.normalize_observations:
        raise InvalidArgumentError(
            "`kl_ref` needs normalize_observations=False: the reference reads the observations as this run stores "
            "them, normalised by this run's moving statistics; found normalize_observations=True. Turn it off or "
            "drop kl_ref."
        )
