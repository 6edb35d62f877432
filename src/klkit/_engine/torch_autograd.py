"""The torch path for logits under autograd: torch's own composition, or the fused Functions.

Small inputs take ``log_softmax`` and ``kl_div`` (torch's fastest kernels there); from
:data:`FUSED_MIN` elements the fused autograd Functions of :mod:`klkit._engine.fused_measures`,
whose temporaries stay within a few cache-sized tiles.
"""

from __future__ import annotations

import math
from typing import Any

from klkit._engine.arrays import namespace
from klkit._engine.checks import CHECKS
from klkit._engine.prepare import Measure, under_autograd

__all__ = ["FUSED_MIN", "fused_pays", "torch_fused_logits_path", "torch_plain_logits_path"]

FUSED_MIN = 1 << 24  # torch logits under autograd with at least this many elements take the fused Functions


def fused_pays(P: Any, Q: Any) -> bool:
    """Large logits under autograd: there the plain composition's full-size temporaries (several
    copies of the input, kept for backward) cost more time and memory than the fused Functions'
    extra passes over cache-sized tiles (``benchmarks/training_loop.py``). Smaller inputs under
    autograd take torch's own composition (:func:`torch_plain_logits_path`), inputs without autograd
    the library kernels on tiles."""

    return under_autograd(P, Q) and P.numel() >= FUSED_MIN


def torch_plain_logits_path(measure: Measure, P: Any, Q: Any, dtype: Any) -> Any:
    """Logits under autograd with every logit finite: torch's own composition.

    ``log_softmax`` and ``kl_div`` are torch's fastest kernels here, and without a masked
    outcome no term is ``0 · inf`` (a p that underflows to 0 meets a finite log q), so they
    need no masks. One host check decides (and, all logits being finite, it is also the validation);
    otherwise, or while compiling, None hands over to the generic path, whose masks keep
    the gradients finite and whose checks name what is wrong.
    """
    import torch

    if torch.compiler.is_compiling() or dtype not in (torch.float32, torch.float64):
        return None
    # every logit finite (a sum overflowing only costs the faster path): then no p = 0 meets log q = -inf,
    # and ``kl_div`` needs no support mask (masked outcomes take the generic path's, value and gradient)
    total = P.detach().sum() if Q is None else P.detach().sum() + Q.detach().sum()
    if not bool(torch.isfinite(total)):
        return None
    logp = torch.log_softmax(P.to(dtype), -1)
    if measure == "entropy":
        return -(logp.exp() * logp).sum(-1)
    logq = torch.log_softmax(Q.to(dtype), -1)
    if measure == "kl_divergence":
        return torch.nn.functional.kl_div(logq, logp, reduction="none", log_target=True).sum(-1)
    return -(logp.exp() * logq).sum(-1)


def torch_fused_logits_path(measure: Measure, P: Any, Q: Any, validate: bool, dtype: Any) -> Any:
    """torch logits: the fused autograd Functions of :mod:`klkit._engine.fused_measures`.

    They keep only the inputs and one log-sum-exp per row for backward (the gradient
    is softmax minus target), run in tiles, accumulate half precision in float32 and
    never sync with the host. A slice is valid when its largest logit is finite (NaN,
    +inf and all -inf fail): invalid slices are NaN, and validation is one host sync
    on that flag, which only on failure runs the checks that build the message.
    """
    import torch

    from klkit._engine.fused_measures import logits_cross_entropy_soft, logits_entropy, logits_kl

    P = P if P.dtype == dtype else P.to(dtype)
    ok = torch.isfinite(P.detach().amax(-1))
    if measure == "entropy":
        value = logits_entropy(P)
    else:
        Q = Q if Q.dtype == dtype else Q.to(dtype)
        ok = ok & torch.isfinite(Q.detach().amax(-1))
        value = (logits_kl if measure == "kl_divergence" else logits_cross_entropy_soft)(P, Q)
    if validate and not bool(ok.all()):
        xp = namespace(P)
        for x, name in ((P, "p"), (Q, "q"))[: 1 if Q is None else 2]:
            CHECKS["logits"](x, name, xp)  # raises with the details
    return torch.where(ok, value, math.nan)
