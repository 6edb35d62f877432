r"""The KL penalty of RLHF, with stated and tested gradient semantics.

In RLHF and GRPO the KL to a reference policy is estimated per token from sampled tokens and put
either in the reward or in the loss; which divergence's gradient results depends on the estimator
and on how it is differentiated (Tang & Munos 2025; Zhang et al. 2025):

- :func:`kl_penalty`: the per-token estimate (k1, k2, k3, abs) and a loss surrogate whose expected
  gradient is named: ``native`` (as verl, OpenRLHF and TRL differentiate it: k1 → 0,
  k2 → ∇KL(π‖π_ref), k3 → ∇KL(π_ref‖π)), ``reverse_kl`` (∇KL(π‖π_ref) whatever the estimator)
  or ``straight_through`` (verl's ``k1+``/``k3+``), on- and off-policy (``old_logp``);
- :data:`PRESETS`: the libraries' own penalties, bit for bit (``kl_penalty(..., preset="verl:k3+")``);
- :func:`token_kl`: the exact per-token KL over the vocabulary, either direction, chunked;
- :func:`sequence_kl_surrogate`: a surrogate whose gradient is the sequence-level KL's.

The options :func:`kl_penalty` accepts are :data:`ESTIMATORS`, :data:`PLACEMENTS` and
:data:`GRADIENTS` (what a trainer built on it, such as PPO's ``kl_ref_*`` settings, validates against).
``docs/rlhf.md`` has the bias/variance table of every estimator and gradient mode.

Examples
--------
>>> from klkit.rlhf import ESTIMATORS, GRADIENTS, PLACEMENTS
>>> ESTIMATORS, PLACEMENTS, GRADIENTS
(('k1', 'k2', 'k3', 'abs'), ('reward', 'loss'), ('native', 'reverse_kl', 'straight_through'))
"""

from klkit.rlhf.penalty import ESTIMATORS, GRADIENTS, PLACEMENTS, KLPenalty, kl_penalty
from klkit.rlhf.presets import PRESETS, Clamp, Preset
from klkit.rlhf.sequence import sequence_kl_surrogate
from klkit.rlhf.token import token_kl

__all__ = [
    "ESTIMATORS",
    "GRADIENTS",
    "PLACEMENTS",
    "PRESETS",
    "Clamp",
    "KLPenalty",
    "Preset",
    "kl_penalty",
    "sequence_kl_surrogate",
    "token_kl",
]
