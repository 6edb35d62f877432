r"""Exact per-token KL between a policy and its reference over the full vocabulary."""

from __future__ import annotations

import numbers
from typing import Any, Literal

import numpy as np

from klkit._engine import NUMPY, check_logits, namespace
from klkit.errors import InvalidArgumentError, InvalidDistributionError, ShapeError
from klkit.measures import kl_divergence

__all__ = ["token_kl"]

Direction = Literal["reverse", "forward"]


def token_kl(
    logits: Any, ref_logits: Any, /, *, direction: Direction = "reverse", chunk_size: int | None = None
) -> Any:
    r"""Exact KL between the policy's and the reference's next-token distributions, per token.

    .. math::

        \mathrm{reverse:}\ \mathrm{KL}(\pi_t\|\pi_{\mathrm{ref},t})
        = \sum_v \pi_t(v)\,(\log\pi_t(v) - \log\pi_{\mathrm{ref},t}(v)),
        \qquad \mathrm{forward:}\ \mathrm{KL}(\pi_{\mathrm{ref},t}\|\pi_t),

    with :math:`\pi_t = \mathrm{softmax}(\text{logits}_t)`. This is what the sampled estimators of
    :func:`klkit.rlhf.kl_penalty` estimate (``reverse``) and what k3 as a loss follows (``forward``):
    log it beside them. Differentiable; as a loss, ``"reverse"`` has the exact gradient
    ∇KL(π_t‖π_ref,t) and ``"forward"`` ∇KL(π_ref,t‖π_t), without sampling noise: nothing is sampled
    over the vocabulary, so this holds on- and off-policy alike (whichever policy produced the
    positions, they only weight the tokens). Summed over a sequence it is a token-level loss: it
    misses the sequence-level KL's terms through later prefixes (Tang & Munos 2025;
    :func:`klkit.rlhf.sequence_kl_surrogate`).

    Computed by :func:`klkit.kl_divergence` (``kind="logits"``; torch in float32 at least), whose
    support rule makes an entry of probability 0 under the first distribution add nothing to the
    value or to any derivative: a vocabulary masked with ``-1e9`` (or the dtype's lowest value) in one
    model and ``-inf`` in the other gives finite values and gradients under autograd, and second
    derivatives under ``create_graph=True``; mass under π where π_ref has none makes the reverse KL
    ``+inf``. With ``chunk_size``, ``chunk_size`` tokens go per call; under autograd each chunk is
    recomputed in the backward pass (activation checkpointing), so the extra memory is that of one
    chunk, not of the whole batch.

    Parameters
    ----------
    logits, ref_logits : torch.Tensor or ndarray
        Shape ``(..., V)``: the policy's and the reference's logits at the same positions.
    direction : {'reverse', 'forward'}, default 'reverse'
        ``"reverse"``: KL(π‖π_ref), the RLHF penalty; ``"forward"``: KL(π_ref‖π).
    chunk_size : int, optional
        Tokens per chunk; None: as many as make 2^20 entries.

    Returns
    -------
    torch.Tensor or ndarray
        Shape ``(...)``, nats; torch in, torch out (device and autograd kept; float32 for half-precision
        inputs, the precision it is accumulated in, else the inputs' dtype); numpy in, numpy out.

    Raises
    ------
    ValueError
        Shapes that differ, invalid logits (NaN, +inf, a row of only -inf), an unknown
        ``direction``, a ``chunk_size`` that is not a positive integer.
    TypeError
        numpy and torch inputs mixed, non-floating logits.

    References
    ----------
    .. [1] Y. Tang and R. Munos, "On a few pitfalls in KL divergence gradient estimation for RL", 2025.
    .. [2] verl ``kl_penalty(..., "full")`` (not implemented there); TRL ``trl/trainer/ppo_trainer.py``
       ``kl_penalty="full"``.

    Examples
    --------
    >>> import torch
    >>> from klkit.rlhf import token_kl
    >>> logits = torch.tensor([[2.0, 0.0, 0.0], [0.0, 0.0, 0.0]], dtype=torch.float64)
    >>> ref = torch.zeros(2, 3, dtype=torch.float64)
    >>> [round(v, 6) for v in token_kl(logits, ref).tolist()]
    [0.43304, 0.0]
    >>> [round(v, 6) for v in token_kl(logits, ref, direction="forward").tolist()]
    [0.474266, 0.0]
    """
    if direction not in ("reverse", "forward"):
        raise InvalidArgumentError(
            f"`direction` must be 'reverse' (KL(π‖π_ref)) or 'forward' (KL(π_ref‖π)); "
            f"found {direction!r}. Use 'reverse' for the RLHF penalty; for both, call "
            "token_kl once per direction."
        )
    if chunk_size is not None and (
        isinstance(chunk_size, bool) or not isinstance(chunk_size, numbers.Integral) or chunk_size < 1
    ):
        raise InvalidArgumentError(
            f"`chunk_size` must be None or a positive integer (tokens per call); "
            f"found {chunk_size!r}. Pass e.g. chunk_size=1024 to bound memory, or None "
            "for one call."
        )
    if namespace(logits, ref_logits, names=("logits", "ref_logits")) is NUMPY:  # raises on a mix
        logits, ref_logits = (np.asarray(x, dtype=np.result_type(x, np.float32)) for x in (logits, ref_logits))
    shape, ref_shape = tuple(logits.shape), tuple(ref_logits.shape)
    if shape != ref_shape or len(shape) == 0:
        raise ShapeError(
            f"`logits` and `ref_logits` must have the same shape (..., V); found {shape} and "
            f"{ref_shape}. Evaluate both models at the same positions."
        )
    for name, x in (("logits", logits), ("ref_logits", ref_logits)):
        if hasattr(x, "is_floating_point") and not x.is_floating_point():
            raise TypeError(f"`{name}` must have a floating dtype; found {x.dtype}. Cast with .float().")
    if type(logits).__module__.startswith("torch"):  # one check per input, then the masked-safe composition
        xp = namespace(logits, ref_logits, names=("logits", "ref_logits"))
        check_logits(logits.detach(), "logits", xp)
        check_logits(ref_logits.detach(), "ref_logits", xp)
    try:
        return _token_kl(logits, ref_logits, direction, chunk_size)
    except InvalidDistributionError:  # name the argument (klkit.kl_divergence calls them p and q)
        xp = namespace(logits, ref_logits, names=("logits", "ref_logits"))
        check_logits(logits, "logits", xp)
        check_logits(ref_logits, "ref_logits", xp)
        raise


def _token_kl(logits: Any, ref_logits: Any, direction: str, chunk_size: int | None) -> Any:
    shape = tuple(logits.shape)
    first, second = (logits, ref_logits) if direction == "reverse" else (ref_logits, logits)
    tokens = 1
    for n in shape[:-1]:
        tokens *= n
    if chunk_size is None or chunk_size >= tokens:
        return _kl_logits(first, second)
    first, second = first.reshape(tokens, shape[-1]), second.reshape(tokens, shape[-1])
    parts = [_chunk(first[i : i + chunk_size], second[i : i + chunk_size]) for i in range(0, tokens, chunk_size)]
    return _concat(parts).reshape(shape[:-1])


def _chunk(p: Any, q: Any) -> Any:
    """One chunk; under autograd, checkpointed (only the inputs are kept for backward)."""
    if getattr(p, "requires_grad", False) or getattr(q, "requires_grad", False):
        import torch
        from torch.utils.checkpoint import checkpoint

        if torch.is_grad_enabled():
            return checkpoint(_kl_logits, p, q, use_reentrant=False)
    return _kl_logits(p, q)


def _kl_logits(p: Any, q: Any) -> Any:
    """KL(softmax p ‖ softmax q) over the last axis by :func:`klkit.kl_divergence`; torch in float32 at least.

    Both inputs were checked by :func:`token_kl` (torch) or are checked here (numpy), so torch skips
    the measure's second validation pass.
    """
    if not type(p).__module__.startswith("torch"):
        return kl_divergence(p, q, kind="logits")
    import torch

    dtype = torch.promote_types(torch.promote_types(p.dtype, q.dtype), torch.float32)
    return kl_divergence(p.to(dtype), q.to(dtype), kind="logits", validate=False)


def _concat(parts: list[Any]) -> Any:
    if type(parts[0]).__module__.startswith("torch"):
        import torch

        return torch.cat(parts)
    return np.concatenate(parts)
