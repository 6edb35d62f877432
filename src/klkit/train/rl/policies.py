r"""The actor-critic networks and the policy distributions they define.

- :class:`ActorCritic`: policy :math:`\pi_\theta(a|s)` (Categorical, or diagonal Gaussian with a
  state-independent or state-dependent :math:`\log\sigma`) and value :math:`V_\phi(s)`, two MLPs;
- :func:`build_policy`: the :class:`ActorCritic` a configuration describes.

The old policy of an update is rebuilt from the distribution parameters saved in the rollout
(:meth:`ActorCritic.make_distribution`), so every KL between old and new policy is
:func:`klkit.kl_divergence` of two torch distributions.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from collections.abc import Sequence
from typing import Any, Literal

import gymnasium as gym
import numpy as np
import torch
from torch import nn
from torch.distributions import Categorical, Distribution, Independent, Normal

from klkit.train.rl.config import ACTIVATION_NAMES, CommonConfig

__all__ = ["ACTIVATIONS", "ActorCritic", "StdKind", "build_policy"]

StdKind = Literal["state-independent", "state-dependent"]


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


# the torch module of each name the config accepts (zip(strict=True): one module per name, in order)
ACTIVATIONS: dict[str, type[nn.Module]] = dict(zip(ACTIVATION_NAMES, (nn.Tanh, nn.ReLU), strict=True))
_FUNCTIONAL = {
    nn.Linear: lambda layer, x: torch.nn.functional.linear(x, layer.weight, layer.bias),
    nn.Tanh: lambda layer, x: torch.tanh(x),
    nn.ReLU: lambda layer, x: torch.relu(x),
}


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

    def __init__(
        self,
        obs_dim: int,
        action_space: gym.Space,
        *,
        hidden: Sequence[int] = (64, 64),
        activation: str = "tanh",
        std: StdKind = "state-independent",
        log_std_init: float = 0.0,
    ) -> None:
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
        """What defines π(·∣s), stacked on the last axis: logits, or [mean, log σ] (batch, 2·act_dim)."""
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
        """π(·∣s) for a batch of observations."""
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


def build_policy(cfg: dict[str, Any] | CommonConfig) -> ActorCritic:
    """The :class:`ActorCritic` a config describes (from a dataclass or a saved ``config.json``)."""
    c = dataclasses.asdict(cfg) if dataclasses.is_dataclass(cfg) else cfg
    env = gym.make(c["env_id"])
    policy = ActorCritic(
        int(np.prod(env.observation_space.shape)),
        env.action_space,
        hidden=tuple(c["hidden_sizes"]),
        activation=c["activation"],
        std=c["std"],
        log_std_init=c["log_std_init"],
    )
    env.close()
    return policy
