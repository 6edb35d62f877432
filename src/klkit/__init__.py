"""klkit: entropy, cross-entropy and KL divergence, from the formula to the training loop."""

from klkit._threads import get_num_threads, set_num_threads
from klkit.estimators import Estimate, mc_kl
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

__version__ = "0.1.0"

__all__ = [
    "Decomposition",
    "Estimate",
    "__version__",
    "cross_entropy",
    "decompose",
    "entropy",
    "get_num_threads",
    "js_divergence",
    "kl_divergence",
    "mc_kl",
    "normalize",
    "set_num_threads",
    "surprise",
]
