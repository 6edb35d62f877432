r"""Trust Region Policy Optimization (Schulman et al., 2015): a policy step bounded by a KL budget.

Each update solves, approximately,

.. math::

    \max_\theta\; L(\theta) = \hat E_t\Big[\frac{\pi_\theta(a_t|s_t)}{\pi_{\theta_{old}}(a_t|s_t)} \hat A_t\Big]
    \quad\text{subject to}\quad
    \bar D(\theta) = \hat E_s\big[\mathrm{KL}(\pi_{\theta_{old}}(\cdot|s)\,\|\,\pi_\theta(\cdot|s))\big] \le \delta.

With :math:`g = \nabla L` and :math:`F = \nabla^2 \bar D` at :math:`\theta_{old}` (the Fisher
information matrix of the policy), the step is the natural gradient scaled to the budget:

1. solve :math:`F x = g` by **conjugate gradient**, using only **Fisher-vector products**
   :math:`F v = \nabla(\nabla \bar D \cdot v)` (Hessian-vector products of klkit's closed-form
   mean KL, plus damping :math:`\lambda v`);
2. scale to the KL budget: :math:`\Delta = \sqrt{2\delta / x^\top F x}\; x` (the quadratic model
   :math:`\tfrac12 \Delta^\top F \Delta = \delta`);
3. **backtracking line search** on :math:`\theta_{old} + \alpha^k \Delta`, accepting the first step
   whose *exact* mean KL (klkit, not the quadratic model) is :math:`\le \delta` and whose surrogate
   improves; if none does, the policy is left unchanged.

The value function is fitted separately, by minibatch regression on the λ-returns.

Read top-down: config → presets → one policy step → the value regression → the loop (collect →
advantages → policy step → critic → log → checkpoint). The step's numerical pieces,
``conjugate_gradient``, ``hessian_vector_product`` (and the Fisher-vector products built on it) and
``backtracking_line_search``, are small functions in :mod:`klkit.train.trust_region`, importable from
here; the plumbing (environments, run directory, checkpoints) is in :mod:`klkit.train.rl`.

References
----------
J. Schulman, S. Levine, P. Moritz, M. Jordan, P. Abbeel, "Trust Region Policy Optimization",
ICML 2015, arXiv:1502.05477 (appendix C: the conjugate-gradient step and line search).
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch

import klkit
from klkit.train import rl
from klkit.train._runs import resolve_device
from klkit.train.trust_region import (
    LineSearchResult,
    backtracking_line_search,
    conjugate_gradient,
    fisher_operator,
    fisher_vector_product,
    hessian_vector_product,
)

__all__ = [
    "PRESETS",
    "Config",
    "LineSearchResult",
    "backtracking_line_search",
    "conjugate_gradient",
    "evaluate",
    "fisher_operator",
    "fisher_vector_product",
    "hessian_vector_product",
    "policy_step",
    "scale_to_trust_region",
    "surrogate_and_kl",
    "train",
    "value_regression",
]


# =============================================================================
# Configuration
# =============================================================================


@dataclasses.dataclass
class Config(rl.CommonConfig):
    """TRPO settings. Defaults follow rl-baselines3-zoo / sb3-contrib TRPO for CartPole-v1; see :data:`PRESETS`."""

    n_envs: int = 2
    """Environments stepped together."""
    n_steps: int = 512
    """Steps per environment per rollout (one policy step per rollout)."""
    gamma: float = 0.99
    """Discount factor γ."""
    gae_lambda: float = 0.98
    """GAE λ."""
    max_kl: float = 0.01
    """δ, the KL budget: every accepted step has mean KL(π_old‖π_new) ≤ δ on the rollout's states."""
    anneal_max_kl: bool = False
    """Decay δ linearly over training (δ·(1 − update/updates)), as PPO anneals its clip range: the last
    updates move the policy less, so a good policy is not lost to one noisy step near the end."""
    cg_steps: int = 15
    """Conjugate-gradient iterations for F x = g."""
    cg_damping: float = 1e-3
    """λ added to the Fisher matrix (F + λI) so CG stays well conditioned."""
    line_search_shrink: float = 0.8
    """Backtracking factor α: the k-th trial step is α^k Δ."""
    line_search_steps: int = 10
    """Trial steps before the update is rejected."""
    critic_learning_rate: float = 1e-3
    """Adam step size of the value-function regression."""
    critic_epochs: int = 20
    """Passes over the rollout for the value function (sb3-contrib's ``n_critic_updates``)."""
    critic_batch_size: int = 512
    """Minibatch size of the value regression."""

    def validate(self) -> None:
        super().validate()
        for name in ("cg_steps", "line_search_steps", "critic_epochs", "critic_batch_size"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"`{name}` must be a positive integer; found {value!r}.")
        if not self.max_kl > 0:
            raise ValueError(f"`max_kl` must be > 0; found {self.max_kl!r}. Use e.g. 0.01.")
        if not self.cg_damping >= 0:
            raise ValueError(f"`cg_damping` must be >= 0; found {self.cg_damping!r}.")
        if not 0 < self.line_search_shrink < 1:
            raise ValueError(f"`line_search_shrink` must be in (0, 1); found {self.line_search_shrink!r}.")
        if not self.critic_learning_rate > 0:
            raise ValueError(f"`critic_learning_rate` must be > 0; found {self.critic_learning_rate!r}.")

    @classmethod
    def for_env(cls, env_id: str, **overrides: Any) -> Config:
        """The preset for ``env_id`` (:data:`PRESETS`, else the defaults), with ``overrides`` applied."""
        return cls(**{"env_id": env_id, **PRESETS.get(env_id, {}), **overrides})


PRESETS: dict[str, dict[str, Any]] = {
    # rl-baselines3-zoo hyperparams/trpo.yml (sb3-contrib defaults where the zoo is silent)
    "CartPole-v1": dict(
        n_envs=2,
        n_steps=512,
        critic_batch_size=512,
        cg_damping=1e-3,
        gae_lambda=0.98,
        gamma=0.99,
        critic_learning_rate=1e-3,
        critic_epochs=20,
        anneal_max_kl=True,
    ),  # klkit's: keeps a solved policy solved (seeds 0–9 end at 500)
    "Acrobot-v1": dict(
        n_envs=2,
        n_steps=1024,
        critic_batch_size=128,
        cg_damping=0.1,
        gae_lambda=0.95,
        gamma=0.99,
        critic_epochs=10,
        normalize_observations=True,
        normalize_rewards=True,
    ),
    "Pendulum-v1": dict(
        n_envs=2, n_steps=1024, critic_batch_size=128, cg_damping=0.1, gae_lambda=0.95, gamma=0.9, critic_epochs=15
    ),
}
"""Per-environment settings, starting from the rl-baselines3-zoo TRPO hyperparameters (klkit's changes marked)."""


# =============================================================================
# One policy step (§6 and appendix C): surrogate and KL → CG direction → scale to δ → line search
# =============================================================================


def _flat(tensors: Sequence[torch.Tensor]) -> torch.Tensor:
    return torch.cat([t.reshape(-1) for t in tensors])


def _assign(params: Sequence[torch.Tensor], flat: torch.Tensor) -> None:
    offset = 0
    with torch.no_grad():
        for p in params:
            p.copy_(flat[offset : offset + p.numel()].view_as(p))
            offset += p.numel()


def surrogate_and_kl(
    policy: rl.ActorCritic,
    batch: dict[str, torch.Tensor],
    *,
    normalize_advantage: bool,
) -> tuple[Callable[[], torch.Tensor], Callable[[], torch.Tensor]]:
    r"""The two functions of θ in TRPO's problem (eq. 14), on one rollout, as closures over the policy.

    - :math:`L(\theta) = \hat E_t[\pi_\theta(a_t|s_t) / \pi_{old}(a_t|s_t)\, \hat A_t]`, the surrogate;
    - :math:`\bar D(\theta) = \hat E_s[\mathrm{KL}(\pi_{old}(\cdot|s)\,\|\,\pi_\theta(\cdot|s))]`,
      klkit's closed-form KL (:func:`klkit.kl_divergence`) averaged over the rollout's states, with
      π_old rebuilt from the distribution parameters saved at collection.
    """
    obs, actions, old_log_probs = batch["obs"], batch["actions"], batch["log_probs"]
    old = policy.make_distribution(batch["dist_params"])  # π_old, fixed
    adv = batch["advantages"]
    if normalize_advantage:
        adv = (adv - adv.mean()) / (adv.std() + 1e-8)

    def surrogate() -> torch.Tensor:
        return ((policy.distribution(obs).log_prob(actions) - old_log_probs).exp() * adv).mean()

    def mean_kl() -> torch.Tensor:
        return klkit.kl_divergence(old, policy.distribution(obs)).mean()

    return surrogate, mean_kl


def scale_to_trust_region(
    direction: torch.Tensor, fvp: Callable[[torch.Tensor], torch.Tensor], max_kl: float
) -> torch.Tensor:
    r"""The full step :math:`\Delta = \sqrt{2\delta / x^\top F x}\; x` along the direction :math:`x`.

    Its quadratic model of the KL, :math:`\tfrac12 \Delta^\top F \Delta`, equals δ (appendix C).

    Examples
    --------
    >>> scale_to_trust_region(torch.tensor([1.0, 0.0]), lambda v: 2.0 * v, max_kl=0.01).tolist()  # F = 2I
    [0.10000000149011612, 0.0]
    """
    xFx = torch.dot(direction, fvp(direction))
    return torch.sqrt(2.0 * max_kl / xFx.clamp_min(1e-12)) * direction


def policy_step(
    policy: rl.ActorCritic, batch: dict[str, torch.Tensor], cfg: Config, max_kl: float | None = None
) -> dict[str, Any]:
    """One TRPO step on the actor (natural gradient, KL-scaled, line-searched); returns its diagnostics.

    ``max_kl`` is this step's δ (default ``cfg.max_kl``). The policy's parameters end at the accepted
    step, or at θ_old when the line search rejects every trial.
    """
    max_kl = cfg.max_kl if max_kl is None else max_kl
    params = policy.actor_parameters()
    surrogate, mean_kl = surrogate_and_kl(policy, batch, normalize_advantage=cfg.normalize_advantage)
    # (a) the surrogate's gradient g at θ_old
    loss = surrogate()
    g = _flat(torch.autograd.grad(loss, params))
    # (b) the natural-gradient direction x ≈ F⁻¹ g, by conjugate gradient on Fisher-vector products (app. C)
    fvp = fisher_operator(mean_kl, params, damping=cfg.cg_damping)
    direction = conjugate_gradient(fvp, g, max_steps=cfg.cg_steps)
    # (c) the full step Δ, scaled so that the quadratic model of the KL equals δ
    step = scale_to_trust_region(direction, fvp, max_kl)
    # (d) backtracking line search on the exact KL (klkit) and the surrogate; θ_old if nothing passes
    theta_old = _flat([p.detach() for p in params]).clone()
    loss_old = loss.detach().item()

    def evaluate(fraction: float) -> tuple[float, float]:
        _assign(params, theta_old + fraction * step)
        with torch.no_grad():
            return float(surrogate()) - loss_old, float(mean_kl())

    result = backtracking_line_search(
        evaluate, max_kl=max_kl, shrink=cfg.line_search_shrink, max_steps=cfg.line_search_steps
    )
    if not result.accepted:
        _assign(params, theta_old)
    return {
        "surrogate": loss_old,
        "surrogate_improvement": result.improvement if result.accepted else 0.0,
        "line_search_accepted": result.accepted,
        "line_search_fraction": result.fraction,
        "line_search_trials": result.trials,
        "gradient_norm": float(g.norm()),
        "natural_step_norm": float(step.norm()),
    }


def value_regression(
    policy: rl.ActorCritic,
    optimizer: torch.optim.Optimizer,
    batch: dict[str, torch.Tensor],
    cfg: Config,
    rng: np.random.Generator,
) -> float:
    """Fit V to the λ-returns: ``critic_epochs`` passes of minibatch Adam on the MSE. Returns the mean loss."""
    losses = []
    for _ in range(cfg.critic_epochs):
        for idx in rl.minibatches(len(batch["returns"]), cfg.critic_batch_size, rng):
            loss = (policy.value(batch["obs"][idx]) - batch["returns"][idx]).pow(2).mean()
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
    return float(np.mean(losses))


# =============================================================================
# Training loop
# =============================================================================


def train(cfg: Config, run_dir: str | os.PathLike[str]) -> dict[str, Any]:
    """Train TRPO into ``run_dir`` (resuming from its checkpoint if there is one) and return a summary.

    Writes ``config.json`` (``"algorithm": "trpo"``), ``checkpoint.pt`` and one ``metrics.jsonl`` line
    per update: the keys every line has (:mod:`klkit.train.rl.metrics`), then ``surrogate``,
    ``surrogate_improvement``, ``line_search_accepted``, ``line_search_fraction``,
    ``line_search_trials``, ``gradient_norm``, ``natural_step_norm``, ``value_loss``, then
    :func:`klkit.train.rl.measure_update`'s ``entropy``, ``clip_fraction`` (None), ``kl_exact``, ``kl_k1``,
    ``kl_k1_se``, ``kl_k3``, ``kl_k3_se``, ``explained_variance``, and ``max_kl`` (this update's δ). A ``run_dir``
    holding a checkpoint is resumed only with the same configuration (see
    :data:`klkit.train.rl.RESUMABLE` for what may change); otherwise
    :class:`~klkit.train.errors.ConfigMismatchError` is raised and nothing is written. The caller's
    torch thread count and global random generators are left as they were.
    """
    cfg.validate()  # before the scope sets threads from it
    with rl.run_scope(cfg.threads, resolve_device(cfg.device)):
        return _train(cfg, run_dir)


def _train(cfg: Config, run_dir: str | os.PathLike[str]) -> dict[str, Any]:
    # --- plumbing: the run directory, environments and policy; resume if interrupted ---------------
    run = rl.Run(cfg, run_dir, "trpo")
    policy, buffer = run.policy, run.buffer
    critic_optimizer = torch.optim.Adam(policy.critic.parameters(), lr=cfg.critic_learning_rate, fused=True)
    optimizers = {"critic": critic_optimizer}
    run.resume(optimizers)

    while not run.done:
        # === TRPO, one iteration (Schulman et al., 2015, §6) ===========================================
        # 1. collect: run π_θold for n_steps steps in each of the n_envs environments (single path, §5.1)
        last_value = run.collect_rollout()
        # 2. advantages: GAE(λ) (Schulman et al., 2016) in place of the paper's Monte Carlo Q estimates
        advantages, returns = rl.gae(buffer.rewards, buffer.values, buffer.dones, last_value, cfg.gamma, cfg.gae_lambda)
        batch = rl.flatten_rollout(buffer, advantages, returns, run.device)
        # 3. update the policy: one trust-region step, max L(θ) s.t. mean KL(π_old ‖ π_θ) ≤ δ (eq. 14)
        max_kl = cfg.max_kl * (run.progress_remaining if cfg.anneal_max_kl else 1.0)
        info = policy_step(policy, batch, cfg, max_kl)
        # 4. update the critic: V regressed on the λ-returns, separately
        value_loss = value_regression(policy, critic_optimizer, batch, cfg, run.rng)
        # 5. how far did the policy move? KL(π_old ‖ π_new) on the rollout, three ways, all klkit's
        measured = rl.measure_update(policy, batch, clip=None)
        # === plumbing: log this update, checkpoint when due ============================================
        run.log({**info, "value_loss": value_loss, **measured, "max_kl": max_kl})
        if run.checkpoint_due:
            run.save_checkpoint(optimizers)
    return run.finish()


def evaluate(run_dir: str | os.PathLike[str], *, episodes: int = 10, deterministic: bool = True) -> dict[str, Any]:
    """Mean return of a trained TRPO run's policy over ``episodes`` episodes (greedy actions by default)."""
    return rl.evaluate_run(run_dir, rl.build_policy, episodes=episodes, deterministic=deterministic)
