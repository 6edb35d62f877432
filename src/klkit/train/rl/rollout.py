r"""Collecting experience and turning it into advantages: the rollout buffer, collection, GAE(λ).

- :class:`RolloutBuffer`: one rollout of ``n_steps`` steps in each of ``n_envs`` environments;
- :func:`collect_rollout`: fill it by running the current policy (no autograd), bootstrapping
  time-limit truncations from :math:`V`;
- :func:`gae`: generalised advantage estimates and λ-returns (Schulman et al., 2016);
- :func:`flatten_rollout`: the buffer as one batch of tensors for the update;
- :func:`minibatches`: shuffled index sets over that batch.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

import gymnasium as gym
import numpy as np
import torch

from klkit.train.rl.envs import Normalizer
from klkit.train.rl.metrics import EpisodeTracker
from klkit.train.rl.policies import ActorCritic

__all__ = ["RolloutBuffer", "collect_rollout", "flatten_rollout", "gae", "minibatches"]


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
    def empty(
        cls, n_steps: int, n_envs: int, obs_dim: int, action_shape: tuple[int, ...], n_params: int, discrete: bool
    ) -> RolloutBuffer:
        """A zero-filled buffer; ``n_params`` is the width of the distribution parameters (logits, or 2·act_dim)."""
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


def collect_rollout(
    env: gym.vector.VectorEnv,
    policy: ActorCritic,
    normalizer: Normalizer,
    buffer: RolloutBuffer,
    obs: np.ndarray,
    tracker: EpisodeTracker,
    global_step: int,
    gamma: float,
    action_low: np.ndarray | None = None,
    action_high: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, int]:
    """Fill ``buffer`` with one rollout from the current policy; no autograd.

    Truncated episodes (time limits) are bootstrapped: γ·V(final observation) is
    added to the last reward, as the episode did not really end there.
    Continuous actions are clipped to the action bounds for the environment only;
    the buffer keeps the sampled action, whose log-probability the update uses.

    Parameters
    ----------
    env : gymnasium.vector.VectorEnv
        From :func:`~klkit.train.rl.envs.make_vector_env` (same-step autoreset).
    policy : ActorCritic
        Acts by :meth:`~klkit.train.rl.policies.ActorCritic.sample`.
    normalizer : Normalizer
        Normalises observations (updating its statistics) and the learner's rewards.
    buffer : RolloutBuffer
        Filled in place; its shape sets ``n_steps`` and ``n_envs``.
    obs : ndarray, shape (n_envs, obs_dim)
        The normalised observation the rollout starts from.
    tracker : EpisodeTracker
        Records the raw return of every episode that ends.
    global_step : int
        Environment steps before the rollout.
    gamma : float
        Discount γ, for bootstrapping truncated episodes.
    action_low, action_high : ndarray, optional
        Bounds of a continuous action space.

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
    device = next(policy.parameters()).device
    with torch.inference_mode():
        for t in range(n_steps):
            action, log_prob, params, value = (x.cpu() for x in policy.sample(torch.from_numpy(obs).to(device)))
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
                    final_obs = torch.from_numpy(normalizer.obs(final, update=False)).to(device)
                    final_v = policy.value(final_obs).cpu().numpy()
                    buffer.rewards[t, idx] += gamma * final_v
            obs = normalizer.obs(raw_obs, update=True)
        last_value = policy.value(torch.from_numpy(obs).to(device)).cpu().numpy().copy()
    return obs, last_value, global_step


def gae(
    rewards: np.ndarray, values: np.ndarray, dones: np.ndarray, last_value: np.ndarray, gamma: float, lam: float
) -> tuple[np.ndarray, np.ndarray]:
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


def flatten_rollout(
    buffer: RolloutBuffer, advantages: np.ndarray, returns: np.ndarray, device: torch.device | str = "cpu"
) -> dict[str, torch.Tensor]:
    """The rollout as one batch of ``n_steps * n_envs`` transitions, as torch tensors on ``device`` (copies).

    Parameters
    ----------
    buffer : RolloutBuffer
        The rollout just collected.
    advantages, returns : ndarray, shape (n_steps, n_envs)
        From :func:`gae`.
    device : torch.device or str, default "cpu"
        Where the update runs (the policy's device).

    Returns
    -------
    dict of Tensor
        ``obs`` (n, obs_dim), ``actions``, ``log_probs``, ``dist_params`` (n, n_params), ``values``,
        ``advantages``, ``returns`` (n,), step-major (all environments of step 0 first).
    """
    b = buffer
    n = b.rewards.shape[0] * b.rewards.shape[1]
    arrays = {
        "obs": b.obs.reshape(n, -1),
        "actions": b.actions.reshape(n, *b.actions.shape[2:]),
        "log_probs": b.log_probs.reshape(n),
        "dist_params": b.dist_params.reshape(n, -1),
        "values": b.values.reshape(n),
        "advantages": advantages.reshape(n),
        "returns": returns.reshape(n),
    }
    return {k: torch.from_numpy(v.copy()).to(device) for k, v in arrays.items()}


def minibatches(n: int, batch_size: int, rng: np.random.Generator) -> Iterator[np.ndarray]:
    """Shuffled index sets of size ``batch_size`` covering ``range(n)`` (the last may be smaller)."""
    perm = rng.permutation(n)
    for start in range(0, n, batch_size):
        yield perm[start : start + batch_size]
