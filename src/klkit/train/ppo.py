r"""Proximal Policy Optimization (Schulman et al., 2017), with its KL in plain view.

PPO maximises, over minibatches of one rollout and for several epochs, the clipped surrogate

.. math::

    L^{CLIP}(\theta) = \hat E_t\big[\min\big(r_t(\theta)\hat A_t,\;
    \mathrm{clip}(r_t(\theta), 1-\epsilon, 1+\epsilon)\hat A_t\big)\big],
    \qquad r_t(\theta) = \frac{\pi_\theta(a_t|s_t)}{\pi_{\theta_{old}}(a_t|s_t)},

minus a value loss and plus an entropy bonus. Clipping removes the incentive to move
:math:`r_t` far from 1, which keeps :math:`\hat E_s[\mathrm{KL}(\pi_{old}(\cdot|s)\,\|\,\pi_\theta(\cdot|s))]`
small without TRPO's hard constraint. Optionally (paper §4) the KL is penalised directly,
:math:`-\beta\,\hat E_s[\mathrm{KL}(\pi_{old}\|\pi_\theta)]`, with β adapted after every update, and
the epochs can stop early once the KL passes ``target_kl``. Every KL here is klkit's:
the closed form :func:`klkit.kl_divergence` between the two policy distributions, and the
k1/k3 Monte Carlo estimates of :func:`klkit.estimators.mc_kl` that ``metrics.jsonl`` reports beside it.

Read top-down: config → presets → one update (K epochs) → the loop (collect → advantages →
update → log → checkpoint) → evaluation. The loss of one minibatch and the penalty's β rule are in
:mod:`klkit.train.ppo_objective` (re-exported here); the plumbing (environments, run directory,
checkpoints) is in :mod:`klkit.train.rl`.

Examples
--------
Train and evaluate from Python (the CLI is ``klkit train ppo --env CartPole-v1 --run-dir DIR``)::

    from klkit.train import ppo
    result = ppo.train(ppo.Config.for_env("CartPole-v1", seed=0), "runs/ppo-cartpole")
    ppo.evaluate("runs/ppo-cartpole", episodes=10)["mean_return"]

References
----------
J. Schulman, F. Wolski, P. Dhariwal, A. Radford, O. Klimov, "Proximal Policy Optimization
Algorithms", arXiv:1707.06347, 2017.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any

import numpy as np
import torch
from torch import nn

from klkit.train import rl
from klkit.train._runs import resolve_device
from klkit.train.ppo_objective import adapt_beta, ppo_loss

__all__ = ["PRESETS", "Config", "adapt_beta", "evaluate", "ppo_loss", "ppo_update", "schedules", "train"]


# =============================================================================
# Configuration: every hyperparameter, documented
# =============================================================================


@dataclasses.dataclass
class Config(rl.CommonConfig):
    """PPO settings. The defaults are rl-baselines3-zoo's for CartPole-v1; see :data:`PRESETS`."""

    batch_size: int = 256
    """Minibatch size for the gradient steps (a rollout has ``n_envs * n_steps`` transitions)."""
    n_epochs: int = 20
    """Passes over each rollout."""
    learning_rate: float = 1e-3
    """Adam step size (one optimiser for actor and critic)."""
    anneal_lr: bool = True
    """Decay the learning rate linearly to 0 over training."""
    clip_range: float | None = 0.2
    """ε of the clipped surrogate; None optimises the unclipped ratio (use with ``kl_penalty``)."""
    anneal_clip: bool = True
    """Decay ε linearly to 0 over training."""
    clip_range_vf: float | None = None
    """Clip the value prediction to ``old ± clip_range_vf`` and take the worse of the two losses; None: plain MSE."""
    vf_coef: float = 0.5
    """Weight of the value loss."""
    ent_coef: float = 0.0
    """Weight of the entropy bonus."""
    max_grad_norm: float = 0.5
    """Clip the global gradient norm to this."""
    adam_eps: float = 1e-5
    """Adam's ε."""
    kl_penalty: bool = False
    """Add β·KL(π_old‖π_θ) (closed form, mean over the minibatch) to the loss, β adapted after each update."""
    kl_target: float = 0.01
    """d_targ of the adaptive penalty: β halves when the update's KL < d_targ/1.5, doubles when > 1.5·d_targ."""
    kl_beta: float = 1.0
    """Initial β of the penalty."""
    target_kl: float | None = None
    """Early stop: before each minibatch's gradient step, the exact mean KL(π_old‖π_θ) on that minibatch is
    computed (klkit closed form, current θ); if it exceeds ``target_kl`` that step and all remaining
    epochs of the update are skipped. None: never stop early."""
    kl_ref_coef: float = 0.0
    """β of an RLHF-style penalty on the KL to a fixed reference policy, estimated per step by
    :func:`klkit.rlhf.kl_penalty`; 0: no penalty, and no reference is built or evaluated at all."""
    kl_estimator: str = "k1"
    """The reference penalty's per-step estimator: 'k1', 'k2', 'k3' or 'abs' (:data:`klkit.rlhf.ESTIMATORS`)."""
    kl_placement: str = "reward"
    """'reward': β·estimate (at the rollout policy) is subtracted from each step's reward before GAE;
    'loss': β·surrogate (mean over the minibatch, importance-weighted by π_θ/π_old) is added to the loss."""
    kl_gradient: str = "native"
    """The loss surrogate's gradient: 'native', 'reverse_kl' or 'straight_through' ('native' with 'reward')."""
    kl_ref: str | None = None
    """Run directory whose checkpointed policy is the reference (same env, no observation normalisation in
    either run); None: this run's initial policy (with ``normalize_observations``, evaluated on the
    observations as this run normalises them)."""

    def validate(self) -> None:
        super().validate()
        for name in ("batch_size", "n_epochs"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"`{name}` must be a positive integer; found {value!r}.")
        for name in ("learning_rate", "kl_target", "kl_beta", "max_grad_norm"):
            if not getattr(self, name) > 0:
                raise ValueError(f"`{name}` must be > 0; found {getattr(self, name)!r}.")
        for name in ("clip_range", "clip_range_vf", "target_kl"):
            value = getattr(self, name)
            if value is not None and not value > 0:
                raise ValueError(f"`{name}` must be > 0 or None; found {value!r}.")
        rl.validate_reference_kl(self)

    @classmethod
    def for_env(cls, env_id: str, **overrides: Any) -> Config:
        """The preset for ``env_id`` (:data:`PRESETS`, else the defaults), with ``overrides`` applied."""
        return cls(**{"env_id": env_id, **PRESETS.get(env_id, {}), **overrides})


PRESETS: dict[str, dict[str, Any]] = {
    # rl-baselines3-zoo hyperparams/ppo.yml
    "CartPole-v1": dict(
        n_envs=8,
        n_steps=32,
        batch_size=256,
        gae_lambda=0.8,
        gamma=0.98,
        n_epochs=20,
        ent_coef=0.0,
        learning_rate=1e-3,
        anneal_lr=True,
        clip_range=0.2,
        anneal_clip=True,
    ),
    "Acrobot-v1": dict(
        n_envs=16,
        n_steps=256,
        batch_size=64,
        gae_lambda=0.94,
        gamma=0.99,
        n_epochs=4,
        ent_coef=0.0,
        learning_rate=3e-4,
        anneal_lr=False,
        anneal_clip=False,
        normalize_observations=True,
        normalize_rewards=True,
    ),
    "Pendulum-v1": dict(
        n_envs=4,
        n_steps=1024,
        batch_size=64,
        gae_lambda=0.95,
        gamma=0.9,
        n_epochs=10,
        ent_coef=0.0,
        learning_rate=1e-3,
        anneal_lr=True,
        clip_range=0.2,
        anneal_clip=False,
        std="state-dependent",
    ),  # klkit's: state-dependent σ (the zoo: gSDE) and an annealed lr
}
"""Per-environment settings, starting from the rl-baselines3-zoo PPO hyperparameters (klkit's changes marked)."""


# =============================================================================
# One update: K epochs of minibatch Adam on the surrogate (Algorithm 1, "optimize surrogate L")
# =============================================================================


def schedules(cfg: Config, progress_remaining: float) -> tuple[float, float | None]:
    """This update's learning rate and clip range ε: the configured values, decayed linearly to 0 if annealed.

    Examples
    --------
    >>> schedules(Config(learning_rate=1e-3, clip_range=0.2), 0.5)
    (0.0005, 0.1)
    """
    lr = cfg.learning_rate * (progress_remaining if cfg.anneal_lr else 1.0)
    clip = None if cfg.clip_range is None else cfg.clip_range * (progress_remaining if cfg.anneal_clip else 1.0)
    return lr, clip


def ppo_update(
    policy: rl.ActorCritic,
    optimizer: torch.optim.Optimizer,
    batch: dict[str, torch.Tensor],
    cfg: Config,
    *,
    clip: float | None,
    beta: float,
    rng: np.random.Generator,
) -> tuple[list[dict[str, Any]], float | None]:
    """``n_epochs`` passes of shuffled minibatch gradient steps on :func:`ppo_loss` over one rollout.

    With ``target_kl`` set, each minibatch's exact mean KL(π_old‖π_θ) is checked before its step,
    and the update stops at the first that exceeds it.

    Parameters
    ----------
    policy, optimizer
        The actor-critic and its Adam optimiser (learning rate already set for this update).
    batch : dict of Tensor
        The rollout from :func:`klkit.train.rl.rollout.flatten_rollout`.
    cfg : Config
    clip : float or None
        This update's ε (:func:`schedules`).
    beta : float
        The KL penalty's β (used when ``cfg.kl_penalty``).
    rng : numpy.random.Generator
        Shuffles the minibatches.

    Returns
    -------
    stats : list of dict
        :func:`ppo_loss`'s info for every gradient step taken.
    stopped_at : float or None
        Epochs completed (fractional) when ``target_kl`` stopped the update; None if it ran to the end.
    """
    stats: list[dict[str, Any]] = []
    n = len(batch["returns"])
    for epoch in range(cfg.n_epochs):
        for i, idx in enumerate(rl.minibatches(n, cfg.batch_size, rng)):
            index = torch.from_numpy(idx)
            mb = {k: v[index] for k, v in batch.items()}
            loss, info = ppo_loss(
                policy,
                mb,
                clip_range=clip,
                clip_range_vf=cfg.clip_range_vf,
                vf_coef=cfg.vf_coef,
                ent_coef=cfg.ent_coef,
                kl_beta=beta if cfg.kl_penalty else None,
                normalize_advantage=cfg.normalize_advantage,
                measure_kl=cfg.target_kl is not None,
                kl_ref_coef=cfg.kl_ref_coef if cfg.kl_placement == "loss" else 0.0,
                kl_estimator=cfg.kl_estimator,
                kl_gradient=cfg.kl_gradient,
            )
            if cfg.target_kl is not None and float(info["kl"]) > cfg.target_kl:
                return stats, epoch + i * cfg.batch_size / n  # fraction of epochs completed
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            nn.utils.clip_grad_norm_(policy.parameters(), cfg.max_grad_norm, foreach=True)
            optimizer.step()
            stats.append(info)
    return stats, None


# =============================================================================
# Training loop
# =============================================================================


def train(cfg: Config, run_dir: str | os.PathLike[str]) -> dict[str, Any]:
    """Train PPO into ``run_dir`` (resuming from its checkpoint if there is one) and return a summary.

    Writes ``config.json`` (with ``"algorithm": "ppo"``), ``checkpoint.pt`` and one ``metrics.jsonl``
    line per update: the keys every line has (:mod:`klkit.train.rl.metrics`), then ``policy_loss``,
    ``value_loss`` (means over the gradient steps), ``entropy``, ``clip_fraction``, ``kl_exact``,
    ``kl_k1``, ``kl_k1_se``, ``kl_k3``, ``kl_k3_se``, ``explained_variance``, ``learning_rate``,
    ``clip_range``, ``gradient_steps``, ``early_stop_epoch``; with ``kl_penalty``, ``kl_beta``
    (the β this update used) and ``kl_beta_next``; with ``kl_ref_coef`` > 0, ``kl_ref_reverse``,
    ``kl_ref_forward`` and ``kl_ref_estimate`` (:func:`klkit.train.rl.reference_kl`).

    Returns
    -------
    dict
        ``global_step``, ``updates``, ``seconds``, ``steps_per_second``, ``episodes``,
        ``return_mean10`` (mean return of the last 10 finished episodes) and the run's identity.

    Raises
    ------
    ConfigMismatchError
        ``run_dir`` holds a checkpoint of a run with another configuration (only the keys in
        :data:`klkit.train.rl.RESUMABLE` may change on resume); nothing is written.

    Notes
    -----
    The caller's torch thread count and global random generators are left as they were.
    """
    cfg.validate()  # before the scope sets threads from it
    with rl.run_scope(cfg.threads, resolve_device(cfg.device)):
        return _train(cfg, run_dir)


def _train(cfg: Config, run_dir: str | os.PathLike[str]) -> dict[str, Any]:
    # --- plumbing: the run directory, environments and policy; resume if interrupted ---------------
    run = rl.Run(cfg, run_dir, "ppo")
    policy, buffer = run.policy, run.buffer
    optimizer = torch.optim.Adam(policy.parameters(), lr=cfg.learning_rate, eps=cfg.adam_eps, fused=True)
    optimizers = {"optimizer": optimizer}
    reference = rl.reference_policy(cfg, policy) if cfg.kl_ref_coef > 0 else None  # before resume: initial weights
    run.resume(optimizers)
    rl.pin_reference(reference, run.extra)  # the checkpoint keeps it: a resumed run uses the same one
    beta = float(run.extra.get("kl_beta", cfg.kl_beta))

    while not run.done:
        # === PPO, one iteration of Algorithm 1 (Schulman et al., 2017) ================================
        # 1. collect: run π_θold for T = n_steps steps in each of the N = n_envs environments
        last_value = run.collect_rollout()
        # (RLHF) the KL to the reference at the rollout's steps; in the reward, β·estimate comes off each reward
        ref_log_probs, ref_record = (None, {}) if reference is None else rl.reference_kl(reference, buffer, cfg)
        # 2. advantages: GAE(λ) estimates Â_1 … Â_T (eq. 11–12) and the λ-returns the critic regresses on
        advantages, returns = rl.gae(buffer.rewards, buffer.values, buffer.dones, last_value, cfg.gamma, cfg.gae_lambda)
        batch = rl.flatten_rollout(buffer, advantages, returns, run.device)
        if ref_log_probs is not None:
            batch["ref_log_probs"] = ref_log_probs
        # 3. update: optimise the surrogate (eq. 7, or 8 with the penalty, + value loss − entropy bonus,
        #    eq. 9) for K = n_epochs epochs of minibatch Adam; then θ_old ← θ
        lr, clip = schedules(cfg, run.progress_remaining)
        for group in optimizer.param_groups:
            group["lr"] = lr
        stats, stopped_at = ppo_update(policy, optimizer, batch, cfg, clip=clip, beta=beta, rng=run.rng)
        # 4. how far did the policy move? KL(π_old ‖ π_new) on the whole rollout, three ways, all klkit's
        measured = rl.measure_update(policy, batch, clip)
        record: dict[str, Any] = {
            "policy_loss": _mean(stats, "policy_loss"),
            "value_loss": _mean(stats, "value_loss"),
            **measured,
            "learning_rate": lr,
            "clip_range": clip,
            "gradient_steps": len(stats),
            "early_stop_epoch": stopped_at,
            **ref_record,
        }
        # 5. adaptive KL penalty (§4): β for the next update, from this update's exact KL
        if cfg.kl_penalty:
            record["kl_beta"] = beta
            beta = adapt_beta(beta, measured["kl_exact"], cfg.kl_target)
            record["kl_beta_next"] = beta
            run.extra["kl_beta"] = beta
        # === plumbing: log this update, checkpoint when due ============================================
        run.log(record)
        if run.checkpoint_due:
            run.save_checkpoint(optimizers)
    return run.finish()


def evaluate(run_dir: str | os.PathLike[str], *, episodes: int = 10, deterministic: bool = True) -> dict[str, Any]:
    """Mean return of a trained PPO run's policy over ``episodes`` episodes (greedy actions by default)."""
    return rl.evaluate_run(run_dir, rl.build_policy, episodes=episodes, deterministic=deterministic)


def _mean(stats: list[dict[str, Any]], key: str) -> float | None:
    return float(np.mean([s[key] for s in stats])) if stats else None
