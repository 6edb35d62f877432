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

Read top-down: config → presets → the three numerical pieces (``conjugate_gradient``,
``fisher_vector_product``, ``backtracking_line_search``) → one policy step → the loop.

References
----------
J. Schulman, S. Levine, P. Moritz, M. Jordan, P. Abbeel, "Trust Region Policy Optimization",
ICML 2015, arXiv:1502.05477 (appendix C: the conjugate-gradient step and line search).
"""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import numpy as np
import torch

import klkit
from klkit.train import rl

__all__ = [
    "PRESETS",
    "Config",
    "LineSearchResult",
    "backtracking_line_search",
    "conjugate_gradient",
    "evaluate",
    "fisher_operator",
    "fisher_vector_product",
    "train",
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
    "CartPole-v1": dict(n_envs=2, n_steps=512, critic_batch_size=512, cg_damping=1e-3, gae_lambda=0.98,
                        gamma=0.99, critic_learning_rate=1e-3, critic_epochs=20),
    "Acrobot-v1": dict(n_envs=2, n_steps=1024, critic_batch_size=128, cg_damping=0.1, gae_lambda=0.95,
                       gamma=0.99, critic_epochs=10, normalize_observations=True, normalize_rewards=True),
    "Pendulum-v1": dict(n_envs=2, n_steps=1024, critic_batch_size=128, cg_damping=0.1, gae_lambda=0.95,
                        gamma=0.9, critic_epochs=15),
}
"""Per-environment settings, starting from the rl-baselines3-zoo TRPO hyperparameters."""


# =============================================================================
# The numerical pieces: CG, Fisher-vector products, line search
# =============================================================================


def conjugate_gradient(matvec: Callable[[torch.Tensor], torch.Tensor], b: torch.Tensor, *, max_steps: int = 15,
                       tolerance: float = 1e-10) -> torch.Tensor:
    r"""Solve :math:`A x = b` for symmetric positive-definite :math:`A`, given only :math:`v \mapsto A v`.

    Conjugate gradient (Hestenes & Stiefel, 1952), started at :math:`x_0 = 0`: exact after
    ``n`` steps for an ``n``-dimensional system (in exact arithmetic), and a good
    approximation after a few when the spectrum is clustered, which is why TRPO
    needs only ~10–15 Fisher-vector products and never forms :math:`F`.

    Parameters
    ----------
    matvec : callable
        ``v -> A v`` for 1-D tensors ``v``.
    b : Tensor, shape (n,)
        Right-hand side.
    max_steps : int, default 15
        Iteration limit.
    tolerance : float, default 1e-10
        Stop when the squared residual :math:`\|b - A x\|^2` falls below this.

    Returns
    -------
    Tensor, shape (n,)
        The approximate solution.

    Raises
    ------
    ValueError
        ``b`` not 1-D, or ``max_steps < 1``.

    Examples
    --------
    >>> A = torch.tensor([[4.0, 1.0], [1.0, 3.0]], dtype=torch.float64)
    >>> x = conjugate_gradient(lambda v: A @ v, torch.tensor([1.0, 2.0], dtype=torch.float64))
    >>> x.tolist()  # A^{-1} b = [1/11, 7/11]
    [0.09090909090909091, 0.6363636363636364]
    """
    if b.ndim != 1:
        raise ValueError(f"`b` must be a 1-D tensor; found shape {tuple(b.shape)}. Flatten it first.")
    if max_steps < 1:
        raise ValueError(f"`max_steps` must be at least 1; found {max_steps}.")
    x = torch.zeros_like(b)
    r = b.clone()  # residual b - A x
    p = b.clone()  # search direction
    rr = torch.dot(r, r)
    for _ in range(max_steps):
        if rr <= tolerance:
            break
        Ap = matvec(p)
        alpha = rr / torch.dot(p, Ap)
        x = x + alpha * p
        r = r - alpha * Ap
        rr_new = torch.dot(r, r)
        p = r + (rr_new / rr) * p
        rr = rr_new
    return x


def fisher_vector_product(mean_kl: Callable[[], torch.Tensor], params: Sequence[torch.Tensor], vector: torch.Tensor,
                          *, damping: float = 0.0) -> torch.Tensor:
    r"""The damped Fisher-vector product :math:`(F + \lambda I)\,v`, with :math:`F = \nabla^2_\theta \bar D`.

    :math:`\bar D(\theta)` is the mean KL(π_old‖π_θ) over states with π_old held fixed; at
    :math:`\theta = \theta_{old}` its Hessian is the Fisher information matrix. The product is
    a Hessian-vector product by double backpropagation,
    :math:`F v = \nabla_\theta\big(\nabla_\theta \bar D \cdot v\big)`, never forming :math:`F`.
    For many products at the same θ (conjugate gradient), :func:`fisher_operator` builds
    :math:`\nabla_\theta \bar D` once and reuses it.

    Parameters
    ----------
    mean_kl : callable
        ``() -> scalar Tensor``: the mean KL as a differentiable function of ``params``
        (in klkit's TRPO, :func:`klkit.kl_divergence` between π_old and π_θ, averaged).
    params : sequence of Tensor
        The parameters θ (``requires_grad=True``); ``vector`` is laid out as their concatenation.
    vector : Tensor, shape (n_params,)
    damping : float, default 0
        λ.

    Returns
    -------
    Tensor, shape (n_params,)

    Examples
    --------
    >>> theta = torch.tensor([0.5, -1.0], requires_grad=True)
    >>> kl = lambda: 0.5 * (3.0 * theta[0] ** 2 + theta[1] ** 2)  # Hessian diag(3, 1)
    >>> fisher_vector_product(kl, [theta], torch.tensor([1.0, 1.0]), damping=0.1).tolist()
    [3.0999999046325684, 1.100000023841858]
    """
    return fisher_operator(mean_kl, params, damping=damping)(vector)


def fisher_operator(mean_kl: Callable[[], torch.Tensor], params: Sequence[torch.Tensor], *,
                    damping: float = 0.0) -> Callable[[torch.Tensor], torch.Tensor]:
    """``v -> (F + λI) v`` at the current θ, the KL's gradient graph built once (see :func:`fisher_vector_product`).

    The returned function is valid until ``params`` change.
    """
    params = list(params)
    grads = torch.autograd.grad(mean_kl(), params, create_graph=True)
    flat = torch.cat([g.reshape(-1) for g in grads])

    def product(vector: torch.Tensor) -> torch.Tensor:
        if flat.shape != vector.shape:
            raise ValueError(
                f"`vector` must have one entry per parameter ({flat.numel()}); found shape {tuple(vector.shape)}."
            )
        hvp = torch.autograd.grad(torch.dot(flat, vector.detach()), params, retain_graph=True)
        return torch.cat([h.reshape(-1) for h in hvp]).detach() + damping * vector

    return product


class LineSearchResult(NamedTuple):
    """Outcome of :func:`backtracking_line_search`."""

    accepted: bool
    """Whether some trial step met both conditions."""
    fraction: float
    """α^k of the accepted step (0 when rejected)."""
    trials: int
    """Trial steps evaluated."""
    improvement: float
    """Surrogate improvement of the accepted step (of the last trial when rejected)."""
    kl: float
    """Mean KL of the accepted step (of the last trial when rejected)."""


def backtracking_line_search(evaluate: Callable[[float], tuple[float, float]], *, max_kl: float,
                             shrink: float = 0.8, max_steps: int = 10) -> LineSearchResult:
    r"""Try fractions :math:`1, \alpha, \alpha^2, \ldots` of a step; accept the first that keeps KL ≤ δ and improves.

    Parameters
    ----------
    evaluate : callable
        ``fraction -> (improvement, kl)``: the surrogate's improvement over the old
        policy and the mean KL(π_old‖π_new) at ``θ_old + fraction · Δ``. (The caller
        applies the step; TRPO leaves the parameters at θ_old when the search fails.)
    max_kl : float
        δ.
    shrink : float, default 0.8
        α in (0, 1).
    max_steps : int, default 10
        Trials before giving up.

    Returns
    -------
    LineSearchResult

    Examples
    --------
    >>> # improvement 2a - a² (best at a = 1), KL = a²: with δ = 0.25 only a ≤ 0.5 is allowed
    >>> r = backtracking_line_search(lambda a: (2 * a - a * a, a * a), max_kl=0.25, shrink=0.5)
    >>> r.accepted, r.fraction, r.trials
    (True, 0.5, 2)
    """
    if not 0 < shrink < 1:
        raise ValueError(f"`shrink` must be in (0, 1); found {shrink!r}.")
    if max_steps < 1:
        raise ValueError(f"`max_steps` must be at least 1; found {max_steps}.")
    improvement, kl = math.nan, math.nan
    for k in range(max_steps):
        fraction = shrink**k
        improvement, kl = evaluate(fraction)
        if kl <= max_kl and improvement > 0:
            return LineSearchResult(True, fraction, k + 1, improvement, kl)
    return LineSearchResult(False, 0.0, max_steps, improvement, kl)


# =============================================================================
# One policy step
# =============================================================================


def _flat(tensors: Sequence[torch.Tensor]) -> torch.Tensor:
    return torch.cat([t.reshape(-1) for t in tensors])


def _assign(params: Sequence[torch.Tensor], flat: torch.Tensor) -> None:
    offset = 0
    with torch.no_grad():
        for p in params:
            p.copy_(flat[offset:offset + p.numel()].view_as(p))
            offset += p.numel()


def policy_step(policy: rl.ActorCritic, batch: dict[str, torch.Tensor], cfg: Config) -> dict[str, Any]:
    """One TRPO step on the actor (natural gradient, KL-scaled, line-searched); returns its diagnostics."""
    params = policy.actor_parameters()
    obs, actions, old_log_probs = batch["obs"], batch["actions"], batch["log_probs"]
    old = policy.make_distribution(batch["dist_params"])  # π_old, fixed
    adv = batch["advantages"]
    if cfg.normalize_advantage:
        adv = (adv - adv.mean()) / (adv.std() + 1e-8)

    def surrogate() -> torch.Tensor:  # L(θ) = E[π_θ/π_old · A]
        return ((policy.distribution(obs).log_prob(actions) - old_log_probs).exp() * adv).mean()

    def mean_kl() -> torch.Tensor:  # D̄(θ) = E_s KL(π_old(·|s) ‖ π_θ(·|s)), klkit's closed form
        return klkit.kl_divergence(old, policy.distribution(obs)).mean()

    # --- 1. gradient g of the surrogate; natural direction x ≈ F⁻¹ g by CG ---
    loss = surrogate()
    g = _flat(torch.autograd.grad(loss, params))
    fvp = fisher_operator(mean_kl, params, damping=cfg.cg_damping)
    direction = conjugate_gradient(fvp, g, max_steps=cfg.cg_steps)
    # --- 2. scale so that the quadratic model of the KL equals δ ---
    xFx = torch.dot(direction, fvp(direction))
    step = torch.sqrt(2.0 * cfg.max_kl / xFx.clamp_min(1e-12)) * direction
    # --- 3. backtracking line search on the exact KL and the surrogate ---
    theta_old = _flat([p.detach() for p in params]).clone()
    loss_old = loss.detach().item()

    def evaluate(fraction: float) -> tuple[float, float]:
        _assign(params, theta_old + fraction * step)
        with torch.no_grad():
            return float(surrogate()) - loss_old, float(mean_kl())

    result = backtracking_line_search(evaluate, max_kl=cfg.max_kl, shrink=cfg.line_search_shrink,
                                      max_steps=cfg.line_search_steps)
    if not result.accepted:
        _assign(params, theta_old)
    return {"surrogate": loss_old, "surrogate_improvement": result.improvement if result.accepted else 0.0,
            "line_search_accepted": result.accepted, "line_search_fraction": result.fraction,
            "line_search_trials": result.trials, "gradient_norm": float(g.norm()),
            "natural_step_norm": float(step.norm())}


def value_regression(policy: rl.ActorCritic, optimizer: torch.optim.Optimizer, batch: dict[str, torch.Tensor],
                     cfg: Config, rng: np.random.Generator) -> float:
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

    Writes ``config.json`` (``"algorithm": "trpo"``), one ``metrics.jsonl`` line per update
    (returns, surrogate, value loss, entropy, KL exact/k1/k3 against δ, line-search outcome)
    and ``checkpoint.pt``. A ``run_dir`` holding a checkpoint is resumed only with the same
    configuration (see :data:`klkit.train.rl.RESUMABLE` for what may change); otherwise
    :class:`~klkit.train.errors.ConfigMismatchError` is raised and nothing is written. The caller's
    torch thread count and global random generators are left as they were.
    """
    cfg.validate()  # before the scope sets threads from it
    with rl.run_scope(cfg.threads):
        return _train(cfg, run_dir)


def _train(cfg: Config, run_dir: str | os.PathLike[str]) -> dict[str, Any]:
    run = rl.Run(cfg, run_dir, "trpo")
    policy = run.policy
    critic_optimizer = torch.optim.Adam(policy.critic.parameters(), lr=cfg.critic_learning_rate, fused=True)
    optimizers = {"critic": critic_optimizer}
    run.resume(optimizers)

    while not run.done:
        # --- 1. collect a rollout with π_old; GAE(λ) advantages ---
        batch = run.collect()
        # --- 2. the trust-region policy step ---
        info = policy_step(policy, batch, cfg)
        # --- 3. the value function, by separate regression ---
        value_loss = value_regression(policy, critic_optimizer, batch, cfg, run.rng)
        # --- 4. how far did the policy move? KL(π_old ‖ π_new) on the rollout, three ways ---
        with torch.no_grad():
            new = policy.distribution(batch["obs"])
            old = policy.make_distribution(batch["dist_params"])
            kls = rl.policy_kl(old, new, batch["log_probs"], new.log_prob(batch["actions"]))
            entropy = float(new.entropy().mean())
        run.log({**info, "value_loss": value_loss, "entropy": entropy, **kls, "max_kl": cfg.max_kl}, optimizers)
    return run.finish()


def evaluate(run_dir: str | os.PathLike[str], *, episodes: int = 10, deterministic: bool = True) -> dict[str, Any]:
    """Mean return of a trained TRPO run's policy over ``episodes`` episodes (greedy actions by default)."""
    return rl.evaluate_run(run_dir, rl.build_policy, episodes=episodes, deterministic=deterministic)
