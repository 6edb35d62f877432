r"""What a run measures and writes: finished episodes, the KL between old and new policy, ``metrics.jsonl``.

``metrics.jsonl`` holds one JSON object per update. Every line has

=====================  ===========================================================================
``update``             updates done so far (1, 2, ...)
``global_step``        environment steps so far, summed over the environments
``seconds``            wall-clock seconds of training so far (summed over resumed sessions)
``steps_per_second``   ``global_step / seconds``
``return_mean10``      mean raw return of the last 10 finished episodes (null before the first)
``episodes``           ``[global_step, raw return]`` of each episode finished during this update
``kl_exact``           mean closed-form KL(π_old‖π_new) over the rollout's states (:func:`policy_kl`)
``kl_k1``, ``kl_k3``   Monte Carlo estimates of the same from the rollout's actions, with
``kl_k1_se``,          their standard errors
``kl_k3_se``
=====================  ===========================================================================

followed by the algorithm's own keys (listed in :func:`klkit.train.ppo.train` and
:func:`klkit.train.trpo.train`). Returns are raw (before any reward normalisation).
"""

from __future__ import annotations

import json
import os
from collections import deque
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.distributions import Distribution

import klkit
from klkit.estimators import mc_kl
from klkit.train._checkpoint import write_text_atomic
from klkit.train.rl.policies import ActorCritic

__all__ = [
    "METRICS",
    "EpisodeTracker",
    "MetricsLog",
    "measure_update",
    "policy_kl",
    "read_metrics",
    "steps_to_threshold",
]

METRICS = "metrics.jsonl"


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


def policy_kl(
    old: Distribution, new: Distribution, old_log_probs: torch.Tensor, new_log_probs: torch.Tensor
) -> dict[str, float]:
    r"""Mean KL(π_old(·∣s) ‖ π_new(·∣s)) over a batch of states, three ways, all from klkit.

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
    return {
        "kl_exact": float(exact),
        "kl_k1": float(k1.value),
        "kl_k1_se": float(k1.standard_error),
        "kl_k3": float(k3.value),
        "kl_k3_se": float(k3.standard_error),
    }


class MetricsLog:
    """Append-only ``metrics.jsonl``: one JSON object per update, flushed as written."""

    def __init__(self, path: Path, *, keep_updates: int | None = None) -> None:
        self.path = path
        if keep_updates is not None and path.exists():  # on resume, drop lines after the checkpoint
            lines = [ln for ln in path.read_text().splitlines() if ln.strip()]
            lines = [ln for ln in lines if json.loads(ln).get("update", 0) <= keep_updates]
            write_text_atomic(path, "".join(ln + "\n" for ln in lines))
        elif keep_updates is None and path.exists():
            path.unlink()

    def write(self, record: dict[str, Any]) -> None:
        with open(self.path, "a") as handle:
            handle.write(json.dumps(record) + "\n")


def read_metrics(run_dir: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """All records of a run's ``metrics.jsonl``."""
    path = Path(run_dir) / METRICS
    return [json.loads(ln) for ln in path.read_text().splitlines() if ln.strip()] if path.exists() else []


def measure_update(policy: ActorCritic, batch: dict[str, torch.Tensor], clip: float | None) -> dict[str, Any]:
    """How far the update moved the policy, on the whole rollout (π_old rebuilt from its saved parameters).

    Returns
    -------
    dict
        ``entropy`` of π_new; ``clip_fraction``, the share of the rollout whose ratio π_new/π_old lies
        outside [1 − ε, 1 + ε] (None without clipping: TRPO); ``kl_exact``, ``kl_k1``, ``kl_k3`` and their
        standard errors (:func:`klkit.train.rl.metrics.policy_kl`); ``explained_variance`` of the critic.
    """
    with torch.no_grad():
        new = policy.distribution(batch["obs"])
        old = policy.make_distribution(batch["dist_params"])
        new_log_probs = new.log_prob(batch["actions"])
        kls = policy_kl(old, new, batch["log_probs"], new_log_probs)
        explained = _explained_variance(policy.value(batch["obs"]), batch["returns"])
        ratio = (new_log_probs - batch["log_probs"]).exp()
        clip_fraction = None if clip is None else float(((ratio - 1.0).abs() > clip).float().mean())
        entropy = float(new.entropy().mean())
    return {"entropy": entropy, "clip_fraction": clip_fraction, **kls, "explained_variance": explained}


def _explained_variance(pred: torch.Tensor, target: torch.Tensor) -> float | None:
    """1 − Var(target − pred) / Var(target): 1 for a perfect critic, 0 for a constant one (None if undefined)."""
    var = float(target.var())
    return None if var == 0 else 1.0 - float((target - pred).var()) / var
