"""Evaluating a saved run: the checkpointed policy's mean raw return over fresh, seeded episodes."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch

from klkit.train._checkpoint import load
from klkit.train._runs import isolated_rng
from klkit.train.errors import RunDirectoryError
from klkit.train.rl.envs import Normalizer
from klkit.train.rl.policies import ActorCritic
from klkit.train.rl.runs import CHECKPOINT, read_config

__all__ = ["evaluate_run"]


def evaluate_run(
    run_dir: str | os.PathLike[str],
    build: Callable[[dict[str, Any]], ActorCritic],
    *,
    episodes: int = 10,
    deterministic: bool = True,
    seed: int = 10_000,
) -> dict[str, Any]:
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
        return _evaluate_policy(cfg, load(ckpt_path), build, episodes=episodes, deterministic=deterministic, seed=seed)


def _evaluate_policy(
    cfg: dict[str, Any],
    state: dict[str, Any],
    build: Callable[[dict[str, Any]], ActorCritic],
    *,
    episodes: int,
    deterministic: bool,
    seed: int,
) -> dict[str, Any]:
    policy = build(cfg)
    policy.load_state_dict(state["policy"])
    policy.eval()
    env = gym.make(cfg["env_id"])
    normalizer = Normalizer(
        env.observation_space.shape, 1, cfg["gamma"], observations=cfg["normalize_observations"], rewards=False
    )
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
    return {
        "algorithm": cfg["algorithm"],
        "env_id": cfg["env_id"],
        "episodes": episodes,
        "mean_return": float(np.mean(returns)),
        "std_return": float(np.std(returns)),
        "returns": returns,
    }
