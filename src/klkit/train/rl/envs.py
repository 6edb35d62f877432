r"""The environments an on-policy agent learns from: a vector of Gymnasium copies, and normalisation.

- :func:`make_vector_env`: ``n_envs`` copies stepped together, resetting in the step an episode ends;
- :class:`RunningMeanStd`: running mean and variance of a stream of batches;
- :class:`Normalizer`: optional observation and reward normalisation built on it (like SB3's
  ``VecNormalize``); its statistics are saved in the checkpoint and frozen at evaluation.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
import torch

__all__ = ["Normalizer", "RunningMeanStd", "make_vector_env"]


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

    Parameters
    ----------
    obs_shape : tuple of int
        One observation's shape.
    n_envs : int
        Environments in the vector (one running discounted return each).
    gamma : float
        Discount γ of the return whose spread scales the rewards.
    observations, rewards : bool
        Which of the two normalisations are on (off: values pass through as float32).
    clip : float, default 10
        Bound on the normalised values.
    """

    def __init__(
        self,
        obs_shape: tuple[int, ...],
        n_envs: int,
        gamma: float,
        *,
        observations: bool,
        rewards: bool,
        clip: float = 10.0,
    ) -> None:
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
        return {
            "obs_rms": self.obs_rms.state_dict(),
            "ret_rms": self.ret_rms.state_dict(),
            "discounted": torch.as_tensor(self.discounted),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.obs_rms.load_state_dict(state["obs_rms"])
        self.ret_rms.load_state_dict(state["ret_rms"])
        self.discounted = state["discounted"].numpy().copy()
