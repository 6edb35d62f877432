"""The settings PPO and TRPO share (:class:`CommonConfig`), and which of them a resumed run may change.

Each algorithm's ``Config`` (:class:`klkit.train.ppo.Config`, :class:`klkit.train.trpo.Config`)
extends :class:`CommonConfig` with its own hyperparameters; every field is documented by the
string below it. A run directory's ``config.json`` holds these fields plus ``"algorithm"``.
"""

from __future__ import annotations

import dataclasses
from typing import Any

__all__ = ["ACTIVATION_NAMES", "RESUMABLE", "CommonConfig", "config_from_dict"]

ACTIVATION_NAMES = ("tanh", "relu")  # the hidden layers' activations (torch modules in policies.ACTIVATIONS)

RESUMABLE = frozenset({"total_steps", "threads", "device", "progress", "checkpoint_every"})
"""Config keys a resumed run may change (the budget and where and how it runs); any other change is refused."""


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
    device: str = "cpu"
    """Where the networks run: 'cpu', 'cuda' or 'auto' (CUDA when available). The environments always step on
    the CPU; these small MLPs are fastest there, so 'cpu' is the default."""
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
        if self.device not in ("auto", "cpu", "cuda"):
            raise ValueError(f"`device` must be 'auto', 'cpu' or 'cuda'; found {self.device!r}. Use 'cpu'.")
        if self.std not in ("state-independent", "state-dependent"):
            raise ValueError(f"`std` must be 'state-independent' or 'state-dependent'; found {self.std!r}.")
        if self.activation not in ACTIVATION_NAMES:
            raise ValueError(f"`activation` must be one of {sorted(ACTIVATION_NAMES)}; found {self.activation!r}.")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise ValueError(f"`seed` must be a non-negative integer; found {self.seed!r}.")


def config_from_dict(cls: type, data: dict[str, Any]) -> Any:
    """A config dataclass from ``config.json`` contents (unknown keys such as ``algorithm`` dropped)."""
    names = {f.name for f in dataclasses.fields(cls)}
    kwargs = {k: v for k, v in data.items() if k in names}
    if "hidden_sizes" in kwargs:
        kwargs["hidden_sizes"] = tuple(kwargs["hidden_sizes"])
    return cls(**kwargs)
