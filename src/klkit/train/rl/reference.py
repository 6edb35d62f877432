r"""An RLHF-style KL penalty to a fixed reference policy, for PPO (:func:`klkit.rlhf.kl_penalty`).

- :func:`reference_policy`: the frozen reference, the run's initial policy or a saved run's;
- :func:`reference_kl`: log π_ref at the rollout's actions, the exact KL to the reference both ways
  (klkit's closed form) beside the per-step estimate, and β·estimate off the rewards when the penalty
  sits in the reward;
- :func:`validate_reference_kl`: the rules of the ``kl_ref_*`` settings.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import torch

import klkit
from klkit.rlhf import kl_penalty
from klkit.train._checkpoint import load
from klkit.train._runs import isolated_rng
from klkit.train.rl.policies import ActorCritic, build_policy
from klkit.train.rl.rollout import RolloutBuffer
from klkit.train.rl.runs import CHECKPOINT, read_config

__all__ = ["reference_kl", "reference_policy", "validate_reference_kl"]


def reference_policy(cfg: Any, policy: ActorCritic) -> ActorCritic:
    """The frozen reference: a copy of ``policy`` as initialised, or the policy saved in ``cfg.kl_ref``."""
    if cfg.kl_ref is None:
        reference = copy.deepcopy(policy)
    else:
        ref_dir = Path(cfg.kl_ref)
        if not (ref_dir / CHECKPOINT).is_file():
            raise ValueError(f"`kl_ref` must be a run directory holding {CHECKPOINT}; none in {ref_dir}. "
                             "Train the reference first, or leave kl_ref None for the initial policy.")
        ref_cfg = read_config(ref_dir)
        if ref_cfg.get("env_id") != cfg.env_id or ref_cfg.get("normalize_observations"):
            found = f"{ref_cfg.get('env_id')!r} with normalize_observations={ref_cfg.get('normalize_observations')}"
            raise ValueError(f"`kl_ref` must be a run on {cfg.env_id} without observation normalisation; found "
                             f"{found}. The reference must read the observations this run stores.")
        with isolated_rng():  # building initialises weights from torch's generator; the run's stream stays as is
            reference = build_policy(ref_cfg)
        reference.load_state_dict(load(ref_dir / CHECKPOINT)["policy"])
        reference.to(next(policy.parameters()).device)
    reference.eval()
    return reference.requires_grad_(False)


def reference_kl(reference: ActorCritic, buffer: RolloutBuffer, cfg: Any,
                 device: torch.device) -> tuple[torch.Tensor, dict[str, float]]:
    """log π_ref at the rollout's actions and the KL to the reference at the rollout policy π_old.

    With ``kl_placement="reward"`` it also subtracts ``kl_ref_coef`` times the estimate from
    ``buffer.rewards`` (the learner's rewards, before GAE). The record holds the exact mean KLs both
    ways over the rollout's states (klkit's closed form), ``kl_ref_reverse`` = KL(π_old‖π_ref) and
    ``kl_ref_forward`` = KL(π_ref‖π_old), beside ``kl_ref_estimate``, the mean per-step estimate.
    """
    n = buffer.rewards.size
    obs = torch.from_numpy(buffer.obs.reshape(n, -1)).to(device)
    actions = torch.from_numpy(buffer.actions.reshape(n, *buffer.actions.shape[2:])).to(device)
    old_log_probs = torch.from_numpy(buffer.log_probs.reshape(n)).to(device)
    with torch.no_grad():
        ref = reference.distribution(obs)
        old = reference.make_distribution(torch.from_numpy(buffer.dist_params.reshape(n, -1)).to(device))
        ref_log_probs = ref.log_prob(actions).to(old_log_probs.dtype)
        estimate = kl_penalty(old_log_probs, ref_log_probs, estimator=cfg.kl_estimator).value
        record = {"kl_ref_reverse": float(klkit.kl_divergence(old, ref).mean()),
                  "kl_ref_forward": float(klkit.kl_divergence(ref, old).mean()),
                  "kl_ref_estimate": float(estimate.mean())}
    if cfg.kl_placement == "reward":
        buffer.rewards -= cfg.kl_ref_coef * estimate.cpu().numpy().reshape(buffer.rewards.shape)
    return ref_log_probs, record


def validate_reference_kl(cfg: Any) -> None:
    coef = cfg.kl_ref_coef
    if isinstance(coef, bool) or not isinstance(coef, (int, float)) or not 0 <= coef < float("inf"):
        raise ValueError(f"`kl_ref_coef` must be a finite number >= 0; found {cfg.kl_ref_coef!r}. 0 turns it off.")
    for name, allowed in (("kl_estimator", ("k1", "k2", "k3")), ("kl_placement", ("reward", "loss")),
                          ("kl_gradient", ("native", "reverse_kl", "straight_through"))):
        if getattr(cfg, name) not in allowed:
            raise ValueError(f"`{name}` must be one of {', '.join(allowed)}; found {getattr(cfg, name)!r}.")
    if cfg.kl_placement == "reward" and cfg.kl_gradient != "native":
        raise ValueError(f"`kl_gradient` must be 'native' with kl_placement='reward'; found {cfg.kl_gradient!r}. "
                         "In the reward only the estimate is used; use kl_placement='loss' for another gradient.")
    if cfg.kl_ref is not None and cfg.normalize_observations:
        raise ValueError("`kl_ref` needs normalize_observations=False: the reference reads the observations as "
                         "this run stores them, normalised by this run's moving statistics. Turn it off or drop "
                         "kl_ref.")
