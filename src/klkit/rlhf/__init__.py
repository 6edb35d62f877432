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

``docs/rlhf.md`` has the bias/variance table of every estimator and gradient mode.
"""

from klkit.rlhf.penalty import KLPenalty, kl_penalty
from klkit.rlhf.presets import PRESETS, Clamp, Preset
from klkit.rlhf.sequence import sequence_kl_surrogate
from klkit.rlhf.token import token_kl

__all__ = ["PRESETS", "Clamp", "KLPenalty", "Preset", "kl_penalty", "sequence_kl_surrogate", "token_kl"]
