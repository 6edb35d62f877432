"""The run directory and the plumbing around an algorithm's loop.

- :func:`run_scope`, :func:`seed_everything`: the threads and seeded generators a run uses,
  restored for the caller afterwards;
- :func:`write_config`, :func:`read_config`: ``config.json`` (the config plus ``"algorithm"``);
- :func:`rng_state`, :func:`restore_rng`: generator state in a ``weights_only``-loadable form;
- :class:`Run`: environments, policy, buffer, counters, ``metrics.jsonl``, ``checkpoint.pt``
  (written atomically, loaded with ``weights_only=True``) and resuming, with a refusal when the
  configuration changed (:func:`klkit.train._runs.refuse_changed_config`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch

from klkit.train._checkpoint import load, save_atomic, write_text_atomic
from klkit.train._runs import isolated_rng, refuse_changed_config, resolve_device, torch_threads
from klkit.train.errors import RunDirectoryError
from klkit.train.rl.config import RESUMABLE, CommonConfig
from klkit.train.rl.envs import Normalizer, make_vector_env
from klkit.train.rl.metrics import METRICS, EpisodeTracker, MetricsLog
from klkit.train.rl.policies import build_policy
from klkit.train.rl.rollout import RolloutBuffer, collect_rollout

__all__ = [
    "CHECKPOINT",
    "CONFIG",
    "Run",
    "progress_bar",
    "read_config",
    "restore_rng",
    "rng_state",
    "run_scope",
    "seed_everything",
    "write_config",
]

CHECKPOINT = "checkpoint.pt"
CONFIG = "config.json"


@contextlib.contextmanager
def run_scope(threads: int | None, device: torch.device | None = None) -> Iterator[None]:
    """The scope a training or evaluation call runs in: ``threads`` torch threads and forked global RNGs.

    On exit the caller's thread count and torch/numpy/Python generators (and ``device``'s CUDA
    generator) are as they were (see :func:`klkit.train._runs.torch_threads`,
    :func:`klkit.train._runs.isolated_rng`).
    """
    with torch_threads(threads), isolated_rng(device):
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


def write_config(run_dir: Path, cfg: Any, algorithm: str) -> None:
    """Write ``config.json`` (the config's fields plus ``"algorithm"``), atomically."""
    data = {"algorithm": algorithm, **dataclasses.asdict(cfg)}
    write_text_atomic(run_dir / CONFIG, json.dumps(data, indent=2) + "\n")


def read_config(run_dir: str | os.PathLike[str]) -> dict[str, Any]:
    """The run's ``config.json`` as a dict."""
    path = Path(run_dir) / CONFIG
    if not path.is_file():
        raise RunDirectoryError(
            f"`run_dir` must hold a {CONFIG} written by training; none found in {Path(run_dir)}. "
            "Train first, e.g. `klkit train ppo --run-dir DIR`."
        )
    return json.loads(path.read_text())


def rng_state(rng: np.random.Generator) -> dict[str, Any]:
    """Torch and numpy RNG state in a ``weights_only``-loadable form."""
    state = rng.bit_generator.state
    return {
        "torch": torch.get_rng_state(),
        "numpy_state": str(state["state"]["state"]),
        "numpy_inc": str(state["state"]["inc"]),
    }


def restore_rng(rng: np.random.Generator, saved: dict[str, Any]) -> None:
    """Set torch's global generator and ``rng`` back to the state :func:`rng_state` saved."""
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


class Run:
    """The plumbing around an algorithm's loop: environments, policy, buffer, counters, metrics, checkpoints.

    Everything that is not the algorithm lives here, so that the loop in :mod:`klkit.train.ppo` or
    :mod:`klkit.train.trpo` reads top-down. It runs inside :func:`run_scope` (this class seeds
    torch's global generator)::

        run = Run(cfg, run_dir, "ppo")        # refuses a changed config; seeds; builds env and policy
        optimizers = {"optimizer": ...}       # over run.policy's parameters
        run.resume(optimizers)                # loads checkpoint.pt if the run was interrupted
        while not run.done:
            last_value = run.collect_rollout()                        # 1. collect (into run.buffer)
            advantages, returns = gae(..., last_value, ...)           # 2. advantages
            batch = flatten_rollout(run.buffer, advantages, returns)
            ... update run.policy on batch ...                        # 3. update
            run.log({...losses, KLs...})                              # 4. log a metrics.jsonl line
            if run.checkpoint_due:                                    # 5. checkpoint
                run.save_checkpoint(optimizers)
        return run.finish()

    Parameters
    ----------
    cfg : CommonConfig
        The algorithm's configuration (validated here).
    run_dir : path
        The run directory; created if absent. If it holds ``checkpoint.pt``, its ``config.json``
        must match ``cfg`` outside :data:`~klkit.train.rl.config.RESUMABLE`, else
        :class:`~klkit.train.errors.ConfigMismatchError` is raised before anything is written.
    algorithm : str
        ``"ppo"`` or ``"trpo"``, written to ``config.json``.
    """

    def __init__(self, cfg: CommonConfig, run_dir: str | os.PathLike[str], algorithm: str) -> None:
        cfg.validate()
        self.cfg, self.algorithm = cfg, algorithm
        self.run_dir = Path(run_dir)
        if (self.run_dir / CHECKPOINT).is_file():  # before anything is written
            defaults = {f.name: f.default for f in dataclasses.fields(cfg) if f.default is not dataclasses.MISSING}
            refuse_changed_config(
                self.run_dir,
                {"algorithm": algorithm, **dataclasses.asdict(cfg)},
                resumable=RESUMABLE,
                defaults=defaults,  # compared as JSON there, like the rest of the config
            )
        self.device = resolve_device(cfg.device)
        self.rng = seed_everything(cfg.seed)
        self.env = make_vector_env(cfg.env_id, cfg.n_envs)  # checks env_id before anything is written
        self.run_dir.mkdir(parents=True, exist_ok=True)
        space = self.env.single_action_space
        self.box = isinstance(space, gym.spaces.Box)
        self.action_low = space.low if self.box else None
        self.action_high = space.high if self.box else None
        obs_shape = self.env.single_observation_space.shape
        self.policy = build_policy(cfg).to(self.device)  # initialised on the CPU: the same weights on any device
        self.normalizer = Normalizer(
            obs_shape, cfg.n_envs, cfg.gamma, observations=cfg.normalize_observations, rewards=cfg.normalize_rewards
        )
        self.tracker = EpisodeTracker(cfg.n_envs)
        n_params = 2 * int(np.prod(space.shape)) if self.box else int(space.n)
        self.buffer = RolloutBuffer.empty(
            cfg.n_steps,
            cfg.n_envs,
            int(np.prod(obs_shape)),
            tuple(space.shape) if self.box else (),
            n_params,
            not self.box,
        )
        self.batch_steps = cfg.n_steps * cfg.n_envs
        self.n_updates = math.ceil(cfg.total_steps / self.batch_steps)
        self.update, self.global_step, self.seconds, self.cpu_seconds = 0, 0, 0.0, 0.0
        self.extra: dict[str, Any] = {}  # algorithm state saved in the checkpoint (PPO: the penalty β)
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
        self.bar = progress_bar(
            self.n_updates * self.batch_steps,
            self.global_step,
            f"{self.algorithm} {self.cfg.env_id}",
            self.cfg.progress,
        )
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
    def collect_rollout(self) -> np.ndarray:
        """Run the current policy for ``n_steps`` in every environment, filling ``self.buffer``.

        Returns
        -------
        ndarray, shape (n_envs,)
            :math:`V(s_T)` of the observation after the rollout, for :func:`~klkit.train.rl.rollout.gae`.
        """
        self.policy.eval()
        self.obs, last_value, self.global_step = collect_rollout(
            self.env,
            self.policy,
            self.normalizer,
            self.buffer,
            self.obs,
            self.tracker,
            self.global_step,
            self.cfg.gamma,
            self.action_low,
            self.action_high,
        )
        self.policy.train()
        return last_value

    # --- after each update ----------------------------------------------------------
    def log(self, record: dict[str, Any]) -> dict[str, Any]:
        """Count the update and append its ``metrics.jsonl`` line: returns, steps, speed, then ``record``.

        Returns the full line (see :mod:`klkit.train.rl.metrics` for the keys every line has).
        """
        self.update += 1
        now = _now()
        self.seconds += now - self._clock
        self._clock = now
        cpu_now = time.process_time()
        self.cpu_seconds += cpu_now - self._cpu_clock
        self._cpu_clock = cpu_now
        new_episodes = self.tracker.finished[self._episodes_logged :]
        self._episodes_logged = len(self.tracker.finished)
        full = {
            "update": self.update,
            "global_step": self.global_step,
            "seconds": round(self.seconds, 3),
            "steps_per_second": round(self.global_step / max(self.seconds, 1e-9), 1),
            "return_mean10": self.tracker.mean_last(),
            "episodes": [[s, r] for s, r in new_episodes],
            **record,
        }
        self.metrics.write(full)
        self.bar.update(self.batch_steps)
        if full["return_mean10"] is not None:
            self.bar.set_postfix(ret10=f"{full['return_mean10']:.1f}", kl=f"{record.get('kl_exact', math.nan):.4f}")
        return full

    @property
    def checkpoint_due(self) -> bool:
        """Every ``checkpoint_every`` updates, and after the last."""
        return self.update % self.cfg.checkpoint_every == 0 or self.done

    def save_checkpoint(self, optimizers: dict[str, torch.optim.Optimizer]) -> None:
        """Write ``checkpoint.pt`` atomically: weights, optimisers, normalisation, episodes, RNGs, counters."""
        save_atomic(
            {
                "policy": self.policy.state_dict(),
                "optimizers": {name: opt.state_dict() for name, opt in optimizers.items()},
                "normalizer": self.normalizer.state_dict(),
                "tracker": self.tracker.state_dict(),
                "rng": rng_state(self.rng),
                "update": self.update,
                "global_step": self.global_step,
                "seconds": self.seconds,
                "cpu_seconds": self.cpu_seconds,
                "extra": self.extra,
            },
            self.run_dir / CHECKPOINT,
        )

    def finish(self) -> dict[str, Any]:
        """Close the environments and the bar; the run's summary."""
        self.bar.close()
        self.env.close()
        finished = self.tracker.finished
        return {
            "algorithm": self.algorithm,
            "env_id": self.cfg.env_id,
            "seed": self.cfg.seed,
            "run_dir": str(self.run_dir),
            "updates": self.update,
            "global_step": self.global_step,
            "seconds": self.seconds,
            "steps_per_second": self.global_step / max(self.seconds, 1e-9),
            "cpu_seconds": self.cpu_seconds,
            "episodes": len(finished),
            "return_mean10": self.tracker.mean_last(),
        }


def _now() -> float:
    return time.perf_counter()
