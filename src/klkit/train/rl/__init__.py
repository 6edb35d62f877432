r"""Shared pieces of klkit's on-policy agents (:mod:`klkit.train.ppo`, :mod:`klkit.train.trpo`).

Nothing here is specific to PPO or TRPO; each algorithm's file holds its update rule and
its training loop, which reads top-down: collect → advantages → update → log → checkpoint.
The pieces, one job per module:

==========================================  ==================================================================
:mod:`~klkit.train.rl.envs`                 vector environments; observation and reward normalisation
:mod:`~klkit.train.rl.policies`             the actor-critic networks and their distributions
:mod:`~klkit.train.rl.rollout`              the rollout buffer, collection, GAE(λ) advantages, minibatches
:mod:`~klkit.train.rl.metrics`              finished episodes, the KL between old and new policy (klkit's),
                                            the ``metrics.jsonl`` schema
:mod:`~klkit.train.rl.config`               the settings both algorithms share; what a resume may change
:mod:`~klkit.train.rl.runs`                 threads and seeds, ``config.json``, checkpoints, resuming
                                            (:class:`Run`)
:mod:`~klkit.train.rl.evaluation`           the saved policy's return over fresh episodes
:mod:`~klkit.train.rl.reference`            PPO's RLHF-style KL penalty to a fixed reference policy
==========================================  ==================================================================

Every name is importable from here, as ``from klkit.train import rl; rl.gae(...)``.
"""

from __future__ import annotations

from klkit.train.rl import policies as _policies
from klkit.train.rl.config import RESUMABLE, CommonConfig, config_from_dict
from klkit.train.rl.envs import Normalizer, RunningMeanStd, make_vector_env
from klkit.train.rl.evaluation import evaluate_run
from klkit.train.rl.metrics import (
    METRICS,
    EpisodeTracker,
    MetricsLog,
    measure_update,
    policy_kl,
    read_metrics,
    steps_to_threshold,
)
from klkit.train.rl.policies import ACTIVATIONS, ActorCritic, StdKind, build_policy
from klkit.train.rl.reference import pin_reference, reference_kl, reference_policy, validate_reference_kl
from klkit.train.rl.rollout import RolloutBuffer, collect_rollout, flatten_rollout, gae, minibatches
from klkit.train.rl.runs import (
    CHECKPOINT,
    CONFIG,
    Run,
    progress_bar,
    read_config,
    restore_rng,
    rng_state,
    run_scope,
    seed_everything,
    write_config,
)

__all__ = [
    "ACTIVATIONS",
    "CHECKPOINT",
    "CONFIG",
    "METRICS",
    "RESUMABLE",
    "ActorCritic",
    "CommonConfig",
    "EpisodeTracker",
    "MetricsLog",
    "Normalizer",
    "RolloutBuffer",
    "Run",
    "RunningMeanStd",
    "StdKind",
    "build_policy",
    "collect_rollout",
    "config_from_dict",
    "evaluate_run",
    "flatten_rollout",
    "gae",
    "make_vector_env",
    "measure_update",
    "minibatches",
    "pin_reference",
    "policy_kl",
    "progress_bar",
    "read_config",
    "read_metrics",
    "reference_kl",
    "reference_policy",
    "restore_rng",
    "rng_state",
    "run_scope",
    "seed_everything",
    "steps_to_threshold",
    "validate_reference_kl",
    "write_config",
]

# private helpers that tests/test_rl.py checks, reachable as before the split
_mlp, _forward = _policies._mlp, _policies._forward
