"""klkit: entropy, cross-entropy and KL divergence, from the formula to the training loop."""

from klkit import distributions as _distributions  # noqa: F401  (registers distribution objects with the measures)
from klkit._engine import get_num_threads, set_num_threads
from klkit.divergences import f_divergence, hellinger_distance, js_distance, total_variation
from klkit.estimators import Estimate, mc_kl
from klkit.information import conditional_entropy, joint_entropy, mutual_information
from klkit.measures import (
    Decomposition,
    cross_entropy,
    decompose,
    entropy,
    js_divergence,
    kl_divergence,
    normalize,
    surprise,
)
from klkit.renyi import renyi_divergence, renyi_entropy

__version__ = "0.1.0"

__all__ = [
    "Decomposition",
    "Estimate",
    "__version__",
    "conditional_entropy",
    "cross_entropy",
    "decompose",
    "entropy",
    "f_divergence",
    "get_num_threads",
    "hellinger_distance",
    "joint_entropy",
    "js_distance",
    "js_divergence",
    "kl_divergence",
    "mc_kl",
    "mutual_information",
    "normalize",
    "renyi_divergence",
    "renyi_entropy",
    "set_num_threads",
    "surprise",
    "total_variation",
]
