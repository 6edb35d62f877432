"""Argument and value checks of :func:`klkit.rlhf.kl_penalty` and :func:`klkit.rlhf.sequence_kl_surrogate`."""

from __future__ import annotations

import math
from typing import Any, Literal, get_args

from klkit.errors import InvalidArgumentError, InvalidDistributionError, ShapeError
from klkit.rlhf.presets import PRESETS, Clamp, Estimator, Gradient

Placement = Literal["reward", "loss"]
ESTIMATORS: tuple[str, ...] = get_args(Estimator)
PLACEMENTS: tuple[str, ...] = get_args(Placement)
GRADIENTS: tuple[str, ...] = get_args(Gradient)

# what to do about a value outside each list (the fix clause of the error message)
_OPTION_FIXES = {
    "estimator": "Use 'k1' or 'k3' (unbiased for KL(π‖π_ref) on-policy); for a library's own name such as "
    "'low_var_kl' pass `preset` instead (klkit.rlhf.PRESETS).",
    "placement": "Use 'reward' to subtract β·value from the rewards, or 'loss' to add β·surrogate to the loss.",
    "gradient": "Use 'native' for the libraries' gradient, or 'reverse_kl' for ∇KL(π‖π_ref) whatever the estimator.",
}


# ---------------------------------------------------------------------------


def _torch() -> Any:
    import torch

    return torch


def tensors(
    logp: Any,
    ref_logp: Any,
    old_logp: Any,
    keep: Any = None,
    finite: bool = True,
    ref_may_be_minus_inf: bool = False,
    densities: bool = False,
) -> Any:
    """Types, shapes, no grad on the constants; with ``finite``, finite values ≤ √ε (where ``keep``): one host sync.

    ``ref_may_be_minus_inf``: ``-inf`` in ``ref_logp`` passes (a clamp bounds the estimate there);
    ``densities``: log-densities, which may be positive (no sign check).
    """
    torch = _torch()
    named = [("logp", logp), ("ref_logp", ref_logp)] + ([("old_logp", old_logp)] if old_logp is not None else [])
    for name, x in named:
        if not isinstance(x, torch.Tensor) or not x.dtype.is_floating_point:
            found = f"a {x.dtype} tensor" if isinstance(x, torch.Tensor) else f"{type(x).__name__}"
            raise TypeError(
                f"`{name}` must be a floating-point torch tensor of log-probabilities; found {found}. "
                "Use torch.as_tensor(x, dtype=torch.float32) (the penalty needs autograd)."
            )
    for name, x in named[1:]:
        if tuple(x.shape) != tuple(logp.shape):
            raise ShapeError(
                f"`{name}` must have the shape of `logp` (one log-probability per sampled token); "
                f"found {tuple(x.shape)} and {tuple(logp.shape)}. Evaluate both at the same tokens."
            )
        if x.requires_grad:
            raise InvalidArgumentError(
                f"`{name}` must not require grad: the penalty's gradient is taken with respect to the policy "
                f"only. Compute it under torch.no_grad() or pass `{name}.detach()`."
            )
    if not finite:
        return torch
    values = [x.detach() if keep is None else x.detach()[keep] for _, x in named]
    tol = math.inf if densities else math.sqrt(torch.finfo(logp.dtype).eps)  # log_softmax may round up to +1e-7
    allowed = [
        torch.isfinite(x) | (x == -math.inf) if name == "ref_logp" and ref_may_be_minus_inf else torch.isfinite(x)
        for (name, _), x in zip(named, values, strict=True)
    ]
    flags = torch.stack([ok.all() for ok in allowed] + [~(x > tol).any() for x in values]).tolist()  # one sync
    for (name, _), x, ok, fine in zip(named, values, allowed, flags[: len(named)], strict=True):
        if not fine:
            bad = x[~ok][0].item()
            hint = (
                " (π_ref gives a sampled token no mass: KL(π‖π_ref) is infinite; clamp the log-ratio, "
                "e.g. clamp=Clamp(log_ratio=20.0), or mask the token)"
                if name == "ref_logp" and bad < 0
                else ""
            )
            raise InvalidDistributionError(
                f"`{name}` must hold finite log-probabilities at the sampled tokens; found {bad}{hint}. "
                "Check the model's outputs for NaN/inf, and mask padding before calling."
            )
    for (name, _), x, fine in zip(named, values, flags[len(named) :], strict=True):
        if not fine:
            where = tuple(int(i) for i in (x > tol).nonzero()[0])
            raise InvalidDistributionError(
                f"`{name}` must hold log-probabilities (≤ 0) at the sampled tokens; found {x[x > tol][0].item()} "
                f"at index {where}{' of the unmasked entries' if keep is not None else ''}. Raw logits passed "
                "by mistake? Pass torch.log_softmax(logits, dim=-1).gather(-1, tokens[..., None]).squeeze(-1); "
                "for log-densities of continuous actions pass densities=True."
            )
    return torch


def flag(densities: Any) -> bool:
    if not isinstance(densities, bool):
        raise TypeError(
            f"`densities` must be True or False (log-densities of continuous actions, which may be positive); "
            f"found {densities!r}. Pass densities=True for a Gaussian policy's log_prob."
        )
    return densities


def from_preset(preset: Any, estimator: str, gradient: str, clamp: Any) -> tuple[str, str, Clamp | None, str]:
    if not isinstance(preset, str) or preset not in PRESETS:
        raise InvalidArgumentError(
            f"`preset` must be one of {', '.join(PRESETS)}; found {preset!r}. "
            "Or leave it None and choose estimator, gradient and clamp yourself."
        )
    for name, given, default in (
        ("estimator", estimator, "k1"),
        ("gradient", gradient, "native"),
        ("clamp", clamp, None),
    ):
        if given != default:
            raise InvalidArgumentError(
                f"`{name}` cannot be combined with `preset`: the preset {preset!r} fixes it; found {name}={given!r}. "
                f"Leave `{name}` at its default, or drop `preset` and pass the options yourself."
            )
    chosen = PRESETS[preset]
    return chosen.estimator, chosen.gradient, chosen.clamp, chosen.formula


def options(estimator: Any, placement: Any, gradient: Any, old_logp: Any, preset: Any) -> None:
    for name, given, allowed in (
        ("estimator", estimator, ESTIMATORS),
        ("placement", placement, PLACEMENTS),
        ("gradient", gradient, GRADIENTS),
    ):
        if given not in allowed:
            raise InvalidArgumentError(
                f"`{name}` must be one of {', '.join(map(repr, allowed))}; found {given!r}. " + _OPTION_FIXES[name]
            )
    if placement == "reward" and gradient != "native" and preset is None:
        raise InvalidArgumentError(
            f"`gradient` must be 'native' with placement='reward'; found gradient={gradient!r}. In the reward "
            "only the value is used (the policy gradient supplies the score function); use placement='loss' "
            "for a surrogate with another gradient."
        )
    if placement == "reward" and old_logp is not None:
        raise InvalidArgumentError(
            "`old_logp` applies to placement='loss' only; found it with placement='reward'. A reward's KL is "
            "measured at the policy that drew the tokens: pass its log-probs as `logp` (the PPO ratio weights "
            "the reward)."
        )


def clamp(clamp: Any) -> Clamp | None:
    if clamp is None:
        return None
    ok = (
        isinstance(clamp, tuple)
        and len(clamp) == 2
        and all(
            b is None or (isinstance(b, (int, float)) and not isinstance(b, bool) and b > 0 and math.isfinite(b))
            for b in clamp
        )
    )
    if not ok:
        raise InvalidArgumentError(
            f"`clamp` must be Clamp(log_ratio, value) with each bound None or a finite number > 0; found {clamp!r}. "
            "E.g. Clamp(log_ratio=20.0, value=10.0) as verl's low_var_kl."
        )
    return Clamp(*(None if b is None else float(b) for b in clamp))
