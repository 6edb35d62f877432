r"""Shared pieces of klkit's on-policy agents (:mod:`klkit.train.ppo`, :mod:`klkit.train.trpo`).

Read top-down: seeding and threads → vector environments → observation/reward
normalisation → episode bookkeeping → policies → rollout buffer and GAE(λ) →
the KL between the old and new policy, measured three ways → run directories
(config, metrics, checkpoints) → evaluation.

Nothing here is specific to PPO or TRPO; each algorithm file holds only its
update rule and its training loop.
"""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
import json
import math
import os
import sys
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, Literal

import gymnasium as gym
import numpy as np
import torch
from torch import nn
from torch.distributions import Categorical, Distribution, Independent, Normal

import klkit
from klkit.estimators import mc_kl
from klkit.train._checkpoint import load, save_atomic
from klkit.train._runs import isolated_rng, refuse_changed_config, torch_threads
from klkit.train.errors import RunDirectoryError

__all__ = [
    "ActorCritic",
    "EpisodeTracker",
    "Normalizer",
    "RolloutBuffer",
    "RunningMeanStd",
    "collect_rollout",
    "evaluate_run",
    "gae",
    "make_vector_env",
    "policy_kl",
    "run_scope",
    "seed_everything",
    "steps_to_threshold",
]

StdKind = Literal["state-independent", "state-dependent"]
CHECKPOINT = "checkpoint.pt"
CONFIG = "config.json"
METRICS = "metrics.jsonl"
RESUMABLE = frozenset({"total_steps", "threads", "progress", "checkpoint_every"})
"""Config keys a resumed run may change (the budget and how it runs); any other change is refused."""


# =============================================================================
# Seeding and threads
# =============================================================================


@contextlib.contextmanager
def run_scope(threads: int | None) -> Iterator[None]:
    """The scope a training or evaluation call runs in: ``threads`` torch threads and forked global RNGs.

    On exit the caller's thread count and torch/numpy/Python generators are as they were
    (see :func:`klkit.train._runs.torch_threads`, :func:`klkit.train._runs.isolated_rng`).
    """
    with torch_threads(threads), isolated_rng():
        yield


def seed_everything(seed: int, threads: int | None = None) -> np.random.Generator:
    """Seed torch's global generator and return a numpy Generator (call it inside :func:`run_scope`).

    A run is repeatable given its seed and thread count: the environments are
    seeded with ``seed + i`` at their first reset, the networks are initialised
    and actions sampled from torch's global generator seeded here. It changes global
    state on purpose; the trainers call it inside :func:`run_scope`, which restores it.

    Parameters
    ----------
    seed : int
        The run's seed.
    threads : int, optional
        ``torch.set_num_threads(threads)`` when given (small MLPs run fastest
        on 1–2 threads; more threads add synchronisation overhead).

    Returns
    -------
    numpy.random.Generator
        For the run's numpy randomness (minibatch shuffling).

    Examples
    --------
    >>> rng = seed_everything(0)
    >>> int(rng.integers(10))
    8
    """
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"`seed` must be a non-negative integer; found {seed!r}. Use e.g. seed=0.")
    if threads is not None:
        torch.set_num_threads(int(threads))
    torch.manual_seed(int(seed))
    return np.random.default_rng(int(seed))


# =============================================================================
# Vector environments
# =============================================================================


def make_vector_env(env_id: str, n_envs: int) -> gym.vector.SyncVectorEnv:
    """``n_envs`` copies of a Gymnasium environment stepped in one process.

    Classic-control environments are so cheap that subprocesses cost more than
    they save, so this is a :class:`gymnasium.vector.SyncVectorEnv`. Episodes
    reset in the same step they end (``AutoresetMode.SAME_STEP``): the
    observation returned is the next episode's first, and the last one is in
    ``info["final_obs"]``, which the rollout uses to bootstrap truncated episodes.

    Raises
    ------
    ValueError
        ``n_envs < 1`` or an unknown ``env_id``.
    """
    if n_envs < 1:
        raise ValueError(f"`n_envs` must be at least 1; found {n_envs}. Use e.g. n_envs=8.")
    try:
        gym.spec(env_id)
    except gym.error.Error as exc:
        raise ValueError(f"`env_id` must name a registered Gymnasium environment; found {env_id!r} ({exc}).") from None
    return gym.vector.SyncVectorEnv(
        [lambda: gym.make(env_id) for _ in range(n_envs)],
        autoreset_mode=gym.vector.AutoresetMode.SAME_STEP,
    )


# =============================================================================
# Observation and reward normalisation (running statistics, like SB3's VecNormalize)
# =============================================================================


class RunningMeanStd:
    """Running mean and variance of a stream of batches (Chan et al.'s parallel update).

    Examples
    --------
    >>> rms = RunningMeanStd(shape=())
    >>> rms.update(np.array([1.0, 2.0])); rms.update(np.array([3.0, 4.0, 5.0]))
    >>> float(rms.mean), round(float(rms.var), 6)  # mean and population variance of 1..5
    (3.0, 2.0)
    """

    def __init__(self, shape: tuple[int, ...]) -> None:
        self.mean = np.zeros(shape, np.float64)
        self.var = np.ones(shape, np.float64)
        self.count = 0.0

    def update(self, batch: np.ndarray) -> None:
        """Fold a batch (rows = samples) into the statistics."""
        b_mean, b_var, n = batch.mean(axis=0), batch.var(axis=0), batch.shape[0]
        if self.count == 0:
            self.mean, self.var, self.count = b_mean.astype(np.float64), b_var.astype(np.float64), float(n)
            return
        delta, total = b_mean - self.mean, self.count + n
        self.mean = self.mean + delta * n / total
        self.var = (self.var * self.count + b_var * n + delta**2 * self.count * n / total) / total
        self.count = total

    def state_dict(self) -> dict[str, Any]:
        return {"mean": torch.as_tensor(self.mean), "var": torch.as_tensor(self.var), "count": self.count}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.mean, self.var = state["mean"].numpy(), state["var"].numpy()
        self.count = float(state["count"])


class Normalizer:
    r"""Optional observation and reward normalisation for a vector environment.

    - observations: :math:`\mathrm{clip}((o - \mu) / \sqrt{\sigma^2 + 10^{-8}}, \pm 10)` with running
      :math:`\mu, \sigma^2` (updated only while training);
    - rewards: divided by the running standard deviation of the discounted return
      :math:`R_t = \gamma R_{t-1} + r_t` (reset at episode ends), then clipped to :math:`\pm 10`.
      The agent learns from these; every return klkit *reports* is the raw one.
    """

    def __init__(self, obs_shape: tuple[int, ...], n_envs: int, gamma: float, *, observations: bool,
                 rewards: bool, clip: float = 10.0) -> None:
        self.observations, self.rewards, self.gamma, self.clip = observations, rewards, gamma, clip
        self.obs_rms = RunningMeanStd(obs_shape)
        self.ret_rms = RunningMeanStd(())
        self.discounted = np.zeros(n_envs, np.float64)

    def obs(self, obs: np.ndarray, *, update: bool) -> np.ndarray:
        """Normalised observations (``update`` folds them into the statistics first)."""
        if not self.observations:
            return obs.astype(np.float32, copy=False)
        if update:
            self.obs_rms.update(obs)
        out = (obs - self.obs_rms.mean) / np.sqrt(self.obs_rms.var + 1e-8)
        return np.clip(out, -self.clip, self.clip).astype(np.float32)

    def reward(self, reward: np.ndarray, done: np.ndarray) -> np.ndarray:
        """Scaled rewards for the learner; updates the return statistics."""
        if not self.rewards:
            return reward.astype(np.float32, copy=False)
        self.discounted = self.discounted * self.gamma + reward
        self.ret_rms.update(self.discounted)
        self.discounted[done] = 0.0
        return np.clip(reward / np.sqrt(self.ret_rms.var + 1e-8), -self.clip, self.clip).astype(np.float32)

    def state_dict(self) -> dict[str, Any]:
        return {"obs_rms": self.obs_rms.state_dict(), "ret_rms": self.ret_rms.state_dict(),
                "discounted": torch.as_tensor(self.discounted)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.obs_rms.load_state_dict(state["obs_rms"])
        self.ret_rms.load_state_dict(state["ret_rms"])
        self.discounted = state["discounted"].numpy().copy()


# =============================================================================
# Episode bookkeeping: raw returns, last-10 mean, steps to a threshold
# =============================================================================


class EpisodeTracker:
    """Undiscounted raw returns of finished episodes, with the environment step each ended at.

    ``mean_last(10)`` is the success measure: the mean return of the last
    10 finished episodes.
    """

    def __init__(self, n_envs: int) -> None:
        self.running = np.zeros(n_envs, np.float64)
        self.finished: list[tuple[int, float]] = []  # (global step at the end, return)
        self.recent: deque[float] = deque(maxlen=10)

    def step(self, reward: np.ndarray, done: np.ndarray, global_step: int) -> None:
        self.running += reward
        for i in np.flatnonzero(done):
            self.finished.append((int(global_step), float(self.running[i])))
            self.recent.append(float(self.running[i]))
        self.running[done] = 0.0

    def mean_last(self) -> float | None:
        """Mean return of the last 10 finished episodes (None before the first ends)."""
        return float(np.mean(self.recent)) if self.recent else None

    def state_dict(self) -> dict[str, Any]:
        return {"finished": [list(f) for f in self.finished]}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.finished = [(int(s), float(r)) for s, r in state["finished"]]
        self.recent = deque((r for _, r in self.finished[-10:]), maxlen=10)


def steps_to_threshold(episodes: Sequence[tuple[int, float]], threshold: float, window: int = 10) -> int | None:
    """First environment step at which the mean return of the last ``window`` finished episodes reaches ``threshold``.

    Parameters
    ----------
    episodes : sequence of (step, return)
        Finished episodes in the order they ended, ``step`` the global environment
        step count when each ended.
    threshold : float
        Success level, e.g. 475 for CartPole-v1.
    window : int, default 10
        How many of the latest episodes are averaged; the mean is taken only once
        ``window`` episodes have finished.

    Returns
    -------
    int or None
        The step, or None if never reached.

    Examples
    --------
    >>> eps = [(100 * i, r) for i, r in enumerate([10, 20, 30, 40], start=1)]
    >>> steps_to_threshold(eps, 25.0, window=2), steps_to_threshold(eps, 99.0, window=2)
    (300, None)
    """
    returns = np.array([r for _, r in episodes], np.float64)
    if len(returns) < window:
        return None
    means = np.convolve(returns, np.ones(window) / window, mode="valid")  # means[k] ends at episode k+window-1
    hits = np.flatnonzero(means >= threshold)
    return None if hits.size == 0 else int(episodes[hits[0] + window - 1][0])


# =============================================================================
# Policies: actor and critic as two small MLPs
# =============================================================================


def _mlp(sizes: Sequence[int], activation: type[nn.Module], out_gain: float) -> nn.Sequential:
    """Linear layers with ``activation`` between them; orthogonal init (gain √2, last layer ``out_gain``)."""
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(itertools.pairwise(sizes)):
        linear = nn.Linear(a, b)
        last = i == len(sizes) - 2
        nn.init.orthogonal_(linear.weight, out_gain if last else math.sqrt(2))
        nn.init.zeros_(linear.bias)
        layers += [linear] if last else [linear, activation()]
    return nn.Sequential(*layers)


ACTIVATIONS: dict[str, type[nn.Module]] = {"tanh": nn.Tanh, "relu": nn.ReLU}
_FUNCTIONAL = {nn.Linear: lambda layer, x: torch.nn.functional.linear(x, layer.weight, layer.bias),
               nn.Tanh: lambda layer, x: torch.tanh(x), nn.ReLU: lambda layer, x: torch.relu(x)}


def _forward(layers: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """``layers(x)`` for a Sequential of Linear/Tanh/ReLU, calling the functional ops directly.

    Same result and gradients as ``layers(x)``; skips ``nn.Module.__call__`` (hooks), whose
    overhead is a large share of a 64-unit MLP's forward pass at the rollout's batch of a few states.
    """
    if not isinstance(layers, nn.Sequential):
        return layers(x)
    for layer in layers:
        x = _FUNCTIONAL[type(layer)](layer, x) if type(layer) in _FUNCTIONAL else layer(x)
    return x


class ActorCritic(nn.Module):
    r"""Policy :math:`\pi_\theta(a|s)` and value :math:`V_\phi(s)` as two separate MLPs.

    - Discrete actions: :math:`\pi(\cdot|s) = \mathrm{Categorical}(\mathrm{logits}=f_\theta(s))`.
    - Continuous actions: a diagonal Gaussian,
      :math:`\pi(\cdot|s) = \prod_j \mathcal N(\mu_\theta(s)_j, \sigma_j^2)`, returned as
      ``Independent(Normal(μ, σ), 1)`` so that ``log_prob`` sums over action dimensions.
      ``std="state-independent"``: :math:`\log\sigma` is a learned vector;
      ``std="state-dependent"``: :math:`\log\sigma = g_\theta(s)`, a second head on the actor's body.

    Parameters
    ----------
    obs_dim : int
        Observation size.
    action_space : gymnasium.spaces.Discrete or Box
        The environment's single action space.
    hidden : sequence of int
        Hidden layer widths of both networks.
    activation : {'tanh', 'relu'}
    std : {'state-independent', 'state-dependent'}
        Gaussian policies only.
    log_std_init : float
        Initial :math:`\log\sigma` (the state-dependent head starts at this value for every state).

    Examples
    --------
    >>> torch.manual_seed(0) and None
    >>> net = ActorCritic(4, gym.spaces.Discrete(2), hidden=(8,))
    >>> net.distribution(torch.zeros(3, 4)).probs.shape, net.value(torch.zeros(3, 4)).shape
    (torch.Size([3, 2]), torch.Size([3]))
    """

    def __init__(self, obs_dim: int, action_space: gym.Space, *, hidden: Sequence[int] = (64, 64),
                 activation: str = "tanh", std: StdKind = "state-independent", log_std_init: float = 0.0) -> None:
        super().__init__()
        if activation not in ACTIVATIONS:
            raise ValueError(f"`activation` must be one of {sorted(ACTIVATIONS)}; found {activation!r}.")
        if std not in ("state-independent", "state-dependent"):
            raise ValueError(f"`std` must be 'state-independent' or 'state-dependent'; found {std!r}.")
        act = ACTIVATIONS[activation]
        self.discrete = isinstance(action_space, gym.spaces.Discrete)
        if not self.discrete and not isinstance(action_space, gym.spaces.Box):
            raise TypeError(f"`action_space` must be Discrete or Box; found {type(action_space).__name__}.")
        n_out = int(action_space.n) if self.discrete else int(np.prod(action_space.shape))
        self.std_kind = std
        self.critic = _mlp([obs_dim, *hidden, 1], act, out_gain=1.0)
        if self.discrete or std == "state-independent":
            self.actor = _mlp([obs_dim, *hidden, n_out], act, out_gain=0.01)
            # host: a parameter, moved with the module by .to(device)
            self.log_std = None if self.discrete else nn.Parameter(torch.full((n_out,), float(log_std_init)))
        else:
            body = _mlp([obs_dim, *hidden], act, out_gain=math.sqrt(2))
            self.actor = nn.Sequential(*body, act()) if hidden else nn.Identity()
            width = hidden[-1] if hidden else obs_dim
            self.mean_head = nn.Linear(width, n_out)
            self.log_std_head = nn.Linear(width, n_out)
            nn.init.orthogonal_(self.mean_head.weight, 0.01)
            nn.init.zeros_(self.mean_head.bias)
            nn.init.zeros_(self.log_std_head.weight)
            nn.init.constant_(self.log_std_head.bias, float(log_std_init))

    def actor_parameters(self) -> list[nn.Parameter]:
        """Parameters of the policy (θ); the critic's are the rest."""
        critic = {id(p) for p in self.critic.parameters()}
        return [p for p in self.parameters() if id(p) not in critic]

    def distribution_parameters(self, obs: torch.Tensor) -> torch.Tensor:
        """What defines π(·|s), stacked on the last axis: logits, or [mean, log σ] (batch, 2·act_dim)."""
        if self.discrete:
            return _forward(self.actor, obs)
        if self.std_kind == "state-independent":
            mean = _forward(self.actor, obs)
            return torch.cat([mean, self.log_std.expand_as(mean)], dim=-1)
        h = _forward(self.actor, obs)
        return torch.cat([self.mean_head(h), self.log_std_head(h).clamp(-20.0, 2.0)], dim=-1)

    def make_distribution(self, params: torch.Tensor) -> Distribution:
        """The policy distribution from :meth:`distribution_parameters` (batch shape = leading axes)."""
        if self.discrete:
            return Categorical(logits=params, validate_args=False)
        mean, log_std = params.chunk(2, dim=-1)
        return Independent(Normal(mean, log_std.exp(), validate_args=False), 1, validate_args=False)

    def distribution(self, obs: torch.Tensor) -> Distribution:
        """π(·|s) for a batch of observations."""
        return self.make_distribution(self.distribution_parameters(obs))

    def value(self, obs: torch.Tensor) -> torch.Tensor:
        """V(s), shape (batch,)."""
        return _forward(self.critic, obs).squeeze(-1)

    def sample(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        r"""Action, its log-probability, the distribution parameters and V(s), in one pass (the rollout's hot path).

        Equivalent to ``d = self.distribution(obs); a = d.sample(); d.log_prob(a)`` but without
        building a distribution object per step: categorical actions by inverse CDF,
        Gaussian ones as :math:`\mu + \sigma\varepsilon` with
        :math:`\log \pi(a|s) = \sum_j -\tfrac12\varepsilon_j^2 - \log\sigma_j - \tfrac12\log 2\pi`.
        """
        params = self.distribution_parameters(obs)
        value = self.value(obs)
        if self.discrete:
            log_p = params.log_softmax(-1)
            u = torch.rand((*params.shape[:-1], 1), dtype=params.dtype, device=params.device)
            action = (log_p.exp().cumsum(-1) < u).sum(-1).clamp_max(params.shape[-1] - 1)
            return action, log_p.gather(-1, action.unsqueeze(-1)).squeeze(-1), params, value
        mean, log_std = params.chunk(2, dim=-1)
        noise = torch.randn_like(mean)
        log_prob = (-0.5 * noise.square() - log_std - 0.5 * math.log(2 * math.pi)).sum(-1)
        return mean + log_std.exp() * noise, log_prob, params, value

    def log_prob(self, params: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        """log π(a|s) from :meth:`distribution_parameters`; equals ``make_distribution(params).log_prob(actions)``
        without building the distribution (the update's hot path)."""
        if self.discrete:
            return params.log_softmax(-1).gather(-1, actions.unsqueeze(-1)).squeeze(-1)
        mean, log_std = params.chunk(2, dim=-1)
        z = (actions - mean) * (-log_std).exp()
        return (-0.5 * z.square() - log_std - 0.5 * math.log(2 * math.pi)).sum(-1)

    def act(self, obs: torch.Tensor, *, deterministic: bool = False) -> torch.Tensor:
        """An action per observation: sampled, or the mode (argmax / mean) when ``deterministic``."""
        params = self.distribution_parameters(obs)
        if deterministic:
            return params.argmax(-1) if self.discrete else params.chunk(2, dim=-1)[0]
        return self.make_distribution(params).sample()


# =============================================================================
# Rollout buffer, collection and GAE(λ)
# =============================================================================


@dataclasses.dataclass
class RolloutBuffer:
    """One rollout of ``n_steps`` steps in each of ``n_envs`` environments, numpy arrays ``(n_steps, n_envs, ...)``.

    Numpy, not torch, because writing one row per step is several times cheaper.
    ``rewards`` are the learner's (normalised, with γ·V(final obs) added at truncations);
    ``dones`` mark the last step of an episode (terminated or truncated).
    ``dist_params`` are the behaviour policy's distribution parameters, from which the
    old policy π_old is rebuilt exactly for the KL and the penalty.
    """

    obs: np.ndarray
    actions: np.ndarray
    log_probs: np.ndarray
    dist_params: np.ndarray
    values: np.ndarray
    rewards: np.ndarray
    dones: np.ndarray

    @classmethod
    def empty(cls, n_steps: int, n_envs: int, obs_dim: int, action_shape: tuple[int, ...], n_params: int,
              discrete: bool) -> RolloutBuffer:
        z, f = np.zeros, np.float32
        return cls(
            obs=z((n_steps, n_envs, obs_dim), f),
            actions=z((n_steps, n_envs, *action_shape), np.int64 if discrete else f),
            log_probs=z((n_steps, n_envs), f),
            dist_params=z((n_steps, n_envs, n_params), f),
            values=z((n_steps, n_envs), f),
            rewards=z((n_steps, n_envs), f),
            dones=z((n_steps, n_envs), bool),
        )


def gae(rewards: np.ndarray, values: np.ndarray, dones: np.ndarray, last_value: np.ndarray,
        gamma: float, lam: float) -> tuple[np.ndarray, np.ndarray]:
    r"""Generalised advantage estimation, GAE(γ, λ) (Schulman et al., 2016, eq. 16).

    .. math::

        \delta_t = r_t + \gamma (1 - d_t) V(s_{t+1}) - V(s_t), \qquad
        \hat A_t = \delta_t + \gamma\lambda (1 - d_t) \hat A_{t+1},

    where :math:`d_t = 1` when step :math:`t` ends an episode; the value
    target is :math:`\hat R_t = \hat A_t + V(s_t)` (the λ-return).

    Parameters
    ----------
    rewards, values : ndarray, shape (n_steps, n_envs)
    dones : bool ndarray, shape (n_steps, n_envs)
        Step ``t`` was the last of its episode.
    last_value : ndarray, shape (n_envs,)
        :math:`V(s_{T})` of the observation after the rollout.
    gamma, lam : float
        Discount γ and GAE parameter λ (λ=1: Monte Carlo returns minus V; λ=0: one-step TD).

    Returns
    -------
    advantages, returns : ndarray, shape (n_steps, n_envs)

    Examples
    --------
    >>> r = np.array([[1.0], [1.0]]); v = np.zeros((2, 1)); d = np.array([[False], [True]])
    >>> adv, ret = gae(r, v, d, np.array([5.0]), gamma=0.5, lam=1.0)
    >>> adv[:, 0].tolist()  # the episode ends at t=1: 1 + 0.5·1, then 1 (V=5 after it is not used)
    [1.5, 1.0]
    """
    n_steps = rewards.shape[0]
    advantages = np.zeros_like(rewards)
    not_done = 1.0 - dones.astype(rewards.dtype)
    next_value, running = last_value, np.zeros_like(last_value)
    for t in range(n_steps - 1, -1, -1):
        delta = rewards[t] + gamma * not_done[t] * next_value - values[t]
        running = delta + gamma * lam * not_done[t] * running
        advantages[t] = running
        next_value = values[t]
    return advantages, advantages + values


def collect_rollout(env: gym.vector.VectorEnv, policy: ActorCritic, normalizer: Normalizer, buffer: RolloutBuffer,
                    obs: np.ndarray, tracker: EpisodeTracker, global_step: int, gamma: float,
                    action_low: np.ndarray | None = None,
                    action_high: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, int]:
    """Fill ``buffer`` with one rollout from the current policy; no autograd.

    Truncated episodes (time limits) are bootstrapped: γ·V(final observation) is
    added to the last reward, as the episode did not really end there.
    Continuous actions are clipped to the action bounds for the environment only;
    the buffer keeps the sampled action, whose log-probability the update uses.

    Returns
    -------
    obs : ndarray
        Normalised observation after the rollout.
    last_value : ndarray (n_envs,)
        V of that observation.
    global_step : int
        Environment steps so far (all environments).
    """
    n_steps = buffer.rewards.shape[0]
    n_envs = buffer.rewards.shape[1]
    with torch.inference_mode():
        for t in range(n_steps):
            action, log_prob, params, value = policy.sample(torch.from_numpy(obs))
            action = action.numpy()
            buffer.obs[t] = obs
            buffer.actions[t] = action
            buffer.log_probs[t] = log_prob.numpy()
            buffer.dist_params[t] = params.numpy()
            buffer.values[t] = value.numpy()
            if action_low is not None:
                action = np.clip(action, action_low, action_high)
            raw_obs, reward, terminated, truncated, info = env.step(action)
            global_step += n_envs
            done = terminated | truncated
            tracker.step(reward, done, global_step)
            buffer.rewards[t] = normalizer.reward(reward, done)
            buffer.dones[t] = done
            if truncated.any():  # bootstrap time-limit ends from V(final observation)
                idx = np.flatnonzero(truncated & ~terminated)
                if idx.size:
                    final = np.stack([info["final_obs"][i] for i in idx])
                    final_v = policy.value(torch.from_numpy(normalizer.obs(final, update=False))).numpy()
                    buffer.rewards[t, idx] += gamma * final_v
            obs = normalizer.obs(raw_obs, update=True)
        last_value = policy.value(torch.from_numpy(obs)).numpy().copy()
    return obs, last_value, global_step


def minibatches(n: int, batch_size: int, rng: np.random.Generator) -> Iterator[np.ndarray]:
    """Shuffled index sets of size ``batch_size`` covering ``range(n)`` (the last may be smaller)."""
    perm = rng.permutation(n)
    for start in range(0, n, batch_size):
        yield perm[start:start + batch_size]


# =============================================================================
# The KL between the old and the new policy, measured three ways
# =============================================================================


def policy_kl(old: Distribution, new: Distribution, old_log_probs: torch.Tensor,
              new_log_probs: torch.Tensor) -> dict[str, float]:
    r"""Mean KL(π_old(·|s) ‖ π_new(·|s)) over a batch of states, three ways, all from klkit.

    - ``kl_exact``: :func:`klkit.kl_divergence` of the two policy distributions
      (closed form per state), averaged over states;
    - ``kl_k1`` and ``kl_k3``: :func:`klkit.estimators.mc_kl` on the batch's own
      actions, which were sampled from π_old (one sample per state), with their
      standard errors ``kl_k1_se``, ``kl_k3_se``.

    Parameters
    ----------
    old, new : torch Distribution
        π_old and π_new on the same states (batch shape ``(n,)``).
    old_log_probs, new_log_probs : Tensor, shape (n,)
        log π_old(a|s) and log π_new(a|s) of the batch's actions ``a ~ π_old``.
    """
    with torch.no_grad():
        exact = klkit.kl_divergence(old, new).mean()
        k1 = mc_kl(old_log_probs, new_log_probs, estimator="k1")
        k3 = mc_kl(old_log_probs, new_log_probs, estimator="k3")
    return {"kl_exact": float(exact), "kl_k1": float(k1.value), "kl_k1_se": float(k1.standard_error),
            "kl_k3": float(k3.value), "kl_k3_se": float(k3.standard_error)}


# =============================================================================
# Run directory: config.json, metrics.jsonl, atomic checkpoints
# =============================================================================


def write_config(run_dir: Path, cfg: Any, algorithm: str) -> None:
    """Write ``config.json`` (the config's fields plus ``"algorithm"``), atomically."""
    data = {"algorithm": algorithm, **dataclasses.asdict(cfg)}
    _atomic_write_text(run_dir / CONFIG, json.dumps(data, indent=2) + "\n")


def read_config(run_dir: str | os.PathLike[str]) -> dict[str, Any]:
    """The run's ``config.json`` as a dict."""
    path = Path(run_dir) / CONFIG
    if not path.is_file():
        raise RunDirectoryError(
            f"`run_dir` must hold a {CONFIG} written by training; none found in {Path(run_dir)}. "
            "Train first, e.g. `klkit train ppo --run-dir DIR`."
        )
    return json.loads(path.read_text())


def _atomic_write_text(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


class MetricsLog:
    """Append-only ``metrics.jsonl``: one JSON object per update, flushed as written."""

    def __init__(self, path: Path, *, keep_updates: int | None = None) -> None:
        self.path = path
        if keep_updates is not None and path.exists():  # on resume, drop lines after the checkpoint
            lines = [ln for ln in path.read_text().splitlines() if ln.strip()]
            lines = [ln for ln in lines if json.loads(ln).get("update", 0) <= keep_updates]
            _atomic_write_text(path, "".join(ln + "\n" for ln in lines))
        elif keep_updates is None and path.exists():
            path.unlink()

    def write(self, record: dict[str, Any]) -> None:
        with open(self.path, "a") as handle:
            handle.write(json.dumps(record) + "\n")


def read_metrics(run_dir: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """All records of a run's ``metrics.jsonl``."""
    path = Path(run_dir) / METRICS
    return [json.loads(ln) for ln in path.read_text().splitlines() if ln.strip()] if path.exists() else []


def rng_state(rng: np.random.Generator) -> dict[str, Any]:
    """Torch and numpy RNG state in a ``weights_only``-loadable form."""
    state = rng.bit_generator.state
    return {"torch": torch.get_rng_state(), "numpy_state": str(state["state"]["state"]),
            "numpy_inc": str(state["state"]["inc"])}


def restore_rng(rng: np.random.Generator, saved: dict[str, Any]) -> None:
    torch.set_rng_state(saved["torch"])
    state = rng.bit_generator.state
    state["state"] = {"state": int(saved["numpy_state"]), "inc": int(saved["numpy_inc"])}
    rng.bit_generator.state = state


def progress_bar(total: int, initial: int, desc: str, enabled: bool | None) -> Any:
    """A tqdm bar over environment steps; off when stderr is not a terminal or ``CI=true`` unless forced."""
    from tqdm.auto import tqdm

    if enabled is None:
        enabled = sys.stderr.isatty() and os.environ.get("CI", "").lower() != "true"
    return tqdm(total=total, initial=initial, desc=desc, unit="step", disable=not enabled, dynamic_ncols=True)


# =============================================================================
# Evaluation of a saved run
# =============================================================================


def evaluate_run(run_dir: str | os.PathLike[str], build: Callable[[dict[str, Any]], ActorCritic], *,
                 episodes: int = 10, deterministic: bool = True, seed: int = 10_000) -> dict[str, Any]:
    """Mean raw return of the saved policy over ``episodes`` fresh episodes.

    The policy acts with its mode (argmax / mean) unless ``deterministic=False``;
    observations are normalised with the statistics saved at the checkpoint
    (frozen). Episode ``i`` is seeded ``seed + i``, apart from the training seeds.
    """
    if isinstance(episodes, bool) or not isinstance(episodes, int) or episodes < 1:
        raise ValueError(f"`episodes` must be a positive integer; found {episodes!r}. Use e.g. --episodes 10.")
    run_dir = Path(run_dir)
    cfg = read_config(run_dir)
    ckpt_path = run_dir / CHECKPOINT
    if not ckpt_path.is_file():
        raise RunDirectoryError(f"`run_dir` must hold {CHECKPOINT}; none in {run_dir}. Train first.")
    with isolated_rng():  # building the policy initialises (then overwrites) weights from torch's generator
        return _evaluate_policy(cfg, load(ckpt_path), build, episodes=episodes, deterministic=deterministic,
                                seed=seed)


def _evaluate_policy(cfg: dict[str, Any], state: dict[str, Any], build: Callable[[dict[str, Any]], ActorCritic], *,
                     episodes: int, deterministic: bool, seed: int) -> dict[str, Any]:
    policy = build(cfg)
    policy.load_state_dict(state["policy"])
    policy.eval()
    env = gym.make(cfg["env_id"])
    normalizer = Normalizer(env.observation_space.shape, 1, cfg["gamma"],
                            observations=cfg["normalize_observations"], rewards=False)
    normalizer.load_state_dict(state["normalizer"])
    box = isinstance(env.action_space, gym.spaces.Box)
    returns = []
    with torch.inference_mode():
        for i in range(episodes):
            raw, _ = env.reset(seed=seed + i)
            total, done = 0.0, False
            while not done:
                obs = torch.from_numpy(normalizer.obs(raw[None], update=False))
                action = policy.act(obs, deterministic=deterministic)[0].numpy()
                if box:
                    action = np.clip(action, env.action_space.low, env.action_space.high)
                raw, reward, terminated, truncated, _ = env.step(action)
                total += float(reward)
                done = terminated or truncated
            returns.append(total)
    env.close()
    return {"algorithm": cfg["algorithm"], "env_id": cfg["env_id"], "episodes": episodes,
            "mean_return": float(np.mean(returns)), "std_return": float(np.std(returns)), "returns": returns}


# =============================================================================
# Settings both algorithms share, and the run plumbing around their loops
# =============================================================================


@dataclasses.dataclass
class CommonConfig:
    """Settings shared by PPO and TRPO (each field is documented by the string below it)."""

    env_id: str = "CartPole-v1"
    """Gymnasium environment id (classic control: CartPole-v1, Acrobot-v1, Pendulum-v1, ...)."""
    total_steps: int = 100_000
    """Environment steps to train for, summed over all environments (rounded up to whole rollouts)."""
    seed: int = 0
    """Seeds torch, numpy and the environments (``seed + i`` for environment ``i``)."""
    n_envs: int = 8
    """Environments stepped together; a rollout holds ``n_envs * n_steps`` transitions."""
    n_steps: int = 32
    """Steps per environment per rollout (one policy update per rollout)."""
    gamma: float = 0.98
    """Discount factor γ."""
    gae_lambda: float = 0.8
    """GAE λ: 0 gives one-step TD advantages, 1 Monte Carlo returns minus V."""
    normalize_advantage: bool = True
    """Standardise advantages (zero mean, unit std) before the policy update (per minibatch in PPO)."""
    normalize_observations: bool = False
    """Running mean/std normalisation of observations (saved with the checkpoint, frozen at evaluation)."""
    normalize_rewards: bool = False
    """Scale the learner's rewards by the running std of the discounted return (reported returns stay raw)."""
    hidden_sizes: tuple[int, ...] = (64, 64)
    """Hidden widths of the actor and of the critic (two separate MLPs)."""
    activation: str = "tanh"
    """Hidden activation: 'tanh' or 'relu'."""
    std: str = "state-independent"
    """Gaussian policies: 'state-independent' (a learned log σ vector) or 'state-dependent' (a log σ head)."""
    log_std_init: float = 0.0
    """Initial log σ of Gaussian policies."""
    threads: int | None = None
    """``torch.set_num_threads`` during the run, restored afterwards (None: leave the caller's setting;
    small MLPs are fastest on one thread, which the CLI uses)."""
    checkpoint_every: int = 50
    """Write ``checkpoint.pt`` every this many updates (and always at the end)."""
    progress: bool | None = None
    """Show a progress bar: None = only when stderr is a terminal and CI is not set."""

    def validate(self) -> None:
        """Raise ValueError naming the first field that breaks its rule."""
        positive = ["total_steps", "n_envs", "n_steps", "checkpoint_every"]
        if self.threads is not None:
            positive.append("threads")
        for name in positive:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"`{name}` must be a positive integer; found {value!r}.")
        for name in ("gamma", "gae_lambda"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"`{name}` must be in [0, 1]; found {value!r}.")
        if self.std not in ("state-independent", "state-dependent"):
            raise ValueError(f"`std` must be 'state-independent' or 'state-dependent'; found {self.std!r}.")
        if self.activation not in ACTIVATIONS:
            raise ValueError(f"`activation` must be one of {sorted(ACTIVATIONS)}; found {self.activation!r}.")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise ValueError(f"`seed` must be a non-negative integer; found {self.seed!r}.")


def build_policy(cfg: dict[str, Any] | CommonConfig) -> ActorCritic:
    """The :class:`ActorCritic` a config describes (from a dataclass or a saved ``config.json``)."""
    c = dataclasses.asdict(cfg) if dataclasses.is_dataclass(cfg) else cfg
    env = gym.make(c["env_id"])
    policy = ActorCritic(int(np.prod(env.observation_space.shape)), env.action_space,
                         hidden=tuple(c["hidden_sizes"]), activation=c["activation"], std=c["std"],
                         log_std_init=c["log_std_init"])
    env.close()
    return policy


def config_from_dict(cls: type, data: dict[str, Any]) -> Any:
    """A config dataclass from ``config.json`` contents (unknown keys such as ``algorithm`` dropped)."""
    names = {f.name for f in dataclasses.fields(cls)}
    kwargs = {k: v for k, v in data.items() if k in names}
    if "hidden_sizes" in kwargs:
        kwargs["hidden_sizes"] = tuple(kwargs["hidden_sizes"])
    return cls(**kwargs)


class Run:
    """Everything around an algorithm's update: environments, policy, buffer, metrics, checkpoints.

    The algorithm's loop runs inside :func:`run_scope` (it seeds torch's global generator) and reads::

        run = Run(cfg, run_dir, "ppo")
        optimizer = ...                       # over run.policy's parameters
        run.resume({"optimizer": optimizer})  # loads checkpoint.pt if the run was interrupted
        while not run.done:
            batch = run.collect()             # one rollout + GAE(λ)
            ... update run.policy ...
            run.log({...losses, KLs...}, {"optimizer": optimizer})
        return run.finish({"optimizer": optimizer})
    """

    def __init__(self, cfg: CommonConfig, run_dir: str | os.PathLike[str], algorithm: str) -> None:
        cfg.validate()
        self.cfg, self.algorithm = cfg, algorithm
        self.run_dir = Path(run_dir)
        if (self.run_dir / CHECKPOINT).is_file():  # before anything is written
            refuse_changed_config(self.run_dir, {"algorithm": algorithm, **dataclasses.asdict(cfg)},
                                  resumable=RESUMABLE)
        self.rng = seed_everything(cfg.seed)
        self.env = make_vector_env(cfg.env_id, cfg.n_envs)  # checks env_id before anything is written
        self.run_dir.mkdir(parents=True, exist_ok=True)
        space = self.env.single_action_space
        self.box = isinstance(space, gym.spaces.Box)
        self.action_low = space.low if self.box else None
        self.action_high = space.high if self.box else None
        obs_shape = self.env.single_observation_space.shape
        self.policy = build_policy(cfg)
        self.normalizer = Normalizer(obs_shape, cfg.n_envs, cfg.gamma, observations=cfg.normalize_observations,
                                     rewards=cfg.normalize_rewards)
        self.tracker = EpisodeTracker(cfg.n_envs)
        n_params = 2 * int(np.prod(space.shape)) if self.box else int(space.n)
        self.buffer = RolloutBuffer.empty(cfg.n_steps, cfg.n_envs, int(np.prod(obs_shape)),
                                          tuple(space.shape) if self.box else (), n_params, not self.box)
        self.batch_steps = cfg.n_steps * cfg.n_envs
        self.n_updates = math.ceil(cfg.total_steps / self.batch_steps)
        self.update, self.global_step, self.seconds, self.cpu_seconds = 0, 0, 0.0, 0.0
        self.extra: dict[str, Any] = {}
        self._episodes_logged = 0
        self._reset_seed = cfg.seed

    # --- resume -------------------------------------------------------------------
    def resume(self, optimizers: dict[str, torch.optim.Optimizer]) -> bool:
        """Load ``checkpoint.pt`` if present (same algorithm and env), else start fresh. Returns whether it resumed.

        Resuming restores weights, optimiser moments, normalisation statistics, the
        finished episodes and the RNGs; the environments restart from fresh episodes
        (their internal state is not saved), so a resumed run is a valid continuation,
        not a bit-identical replay.
        """
        ckpt = self.run_dir / CHECKPOINT
        resumed = False
        if ckpt.is_file():  # the configuration was checked against config.json in __init__
            state = load(ckpt)  # weights_only=True
            self.policy.load_state_dict(state["policy"])
            for name, opt in optimizers.items():
                opt.load_state_dict(state["optimizers"][name])
            self.normalizer.load_state_dict(state["normalizer"])
            self.tracker.load_state_dict(state["tracker"])
            restore_rng(self.rng, state["rng"])
            self.update, self.global_step = int(state["update"]), int(state["global_step"])
            self.seconds = float(state["seconds"])
            self.cpu_seconds = float(state.get("cpu_seconds", 0.0))
            self.extra = dict(state.get("extra", {}))
            self._episodes_logged = len(self.tracker.finished)
            self._reset_seed = self.cfg.seed + 7919 * self.update  # fresh episodes after a restart
            resumed = True
        write_config(self.run_dir, self.cfg, self.algorithm)
        self.metrics = MetricsLog(self.run_dir / METRICS, keep_updates=self.update if resumed else None)
        raw, _ = self.env.reset(seed=self._reset_seed)
        self.obs = self.normalizer.obs(raw, update=not resumed)
        self.bar = progress_bar(self.n_updates * self.batch_steps, self.global_step,
                                f"{self.algorithm} {self.cfg.env_id}", self.cfg.progress)
        self._clock, self._cpu_clock = _now(), time.process_time()
        return resumed

    @property
    def done(self) -> bool:
        return self.update >= self.n_updates

    @property
    def progress_remaining(self) -> float:
        """1 at the start of training, → 0 at the end (for linear schedules)."""
        return 1.0 - self.update / self.n_updates

    # --- one rollout ----------------------------------------------------------------
    def collect(self) -> dict[str, torch.Tensor]:
        """Run the policy for one rollout and return the flattened batch with GAE advantages and returns."""
        self.policy.eval()
        self.obs, last_value, self.global_step = collect_rollout(
            self.env, self.policy, self.normalizer, self.buffer, self.obs, self.tracker, self.global_step,
            self.cfg.gamma, self.action_low, self.action_high)
        self.policy.train()
        b = self.buffer
        advantages, returns = gae(b.rewards, b.values, b.dones, last_value, self.cfg.gamma, self.cfg.gae_lambda)
        n = self.batch_steps
        arrays = {
            "obs": b.obs.reshape(n, -1), "actions": b.actions.reshape(n, *b.actions.shape[2:]),
            "log_probs": b.log_probs.reshape(n), "dist_params": b.dist_params.reshape(n, -1),
            "values": b.values.reshape(n), "advantages": advantages.reshape(n), "returns": returns.reshape(n),
        }
        return {k: torch.from_numpy(v.copy()) for k, v in arrays.items()}

    # --- after each update ----------------------------------------------------------
    def log(self, record: dict[str, Any], optimizers: dict[str, torch.optim.Optimizer]) -> dict[str, Any]:
        """Append one metrics line (returns, steps, speed + the algorithm's record); checkpoint when due."""
        self.update += 1
        now = _now()
        self.seconds += now - self._clock
        self._clock = now
        cpu_now = time.process_time()
        self.cpu_seconds += cpu_now - self._cpu_clock
        self._cpu_clock = cpu_now
        new_episodes = self.tracker.finished[self._episodes_logged:]
        self._episodes_logged = len(self.tracker.finished)
        full = {
            "update": self.update, "global_step": self.global_step, "seconds": round(self.seconds, 3),
            "steps_per_second": round(self.global_step / max(self.seconds, 1e-9), 1),
            "return_mean10": self.tracker.mean_last(),
            "episodes": [[s, r] for s, r in new_episodes],
            **record,
        }
        self.metrics.write(full)
        self.bar.update(self.batch_steps)
        if full["return_mean10"] is not None:
            self.bar.set_postfix(ret10=f"{full['return_mean10']:.1f}", kl=f"{record.get('kl_exact', math.nan):.4f}")
        if self.update % self.cfg.checkpoint_every == 0 or self.done:
            self.checkpoint(optimizers)
        return full

    def checkpoint(self, optimizers: dict[str, torch.optim.Optimizer]) -> None:
        save_atomic({
            "policy": self.policy.state_dict(),
            "optimizers": {name: opt.state_dict() for name, opt in optimizers.items()},
            "normalizer": self.normalizer.state_dict(),
            "tracker": self.tracker.state_dict(),
            "rng": rng_state(self.rng),
            "update": self.update, "global_step": self.global_step, "seconds": self.seconds,
            "cpu_seconds": self.cpu_seconds, "extra": self.extra,
        }, self.run_dir / CHECKPOINT)

    def finish(self) -> dict[str, Any]:
        """Close the environments and the bar; the run's summary."""
        self.bar.close()
        self.env.close()
        finished = self.tracker.finished
        return {
            "algorithm": self.algorithm, "env_id": self.cfg.env_id, "seed": self.cfg.seed,
            "run_dir": str(self.run_dir), "updates": self.update, "global_step": self.global_step,
            "seconds": self.seconds, "steps_per_second": self.global_step / max(self.seconds, 1e-9),
            "cpu_seconds": self.cpu_seconds,
            "episodes": len(finished), "return_mean10": self.tracker.mean_last(),
        }


def _now() -> float:
    return time.perf_counter()
