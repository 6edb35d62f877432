r"""The KL penalties of verl, OpenRLHF and TRL, as named presets of :func:`klkit.rlhf.kl_penalty`.

A preset fixes the estimator, its clamps, its gradient and the exact arithmetic of the library's
expression, so that ``kl_penalty(logp, ref_logp, preset=name)`` returns the library's numbers bit
for bit (float64 and float32 alike), ``-inf`` reference log-probabilities included (the clamps bound
them: ``verl:low_var_kl`` gives 10 there, as verl). Where the estimator is placed (reward or loss) stays
the caller's choice; left unsaid, it is the library's (:attr:`Preset.placement`: the loss for TRL's
GRPO term, the reward otherwise). The formulas, with :math:`\ell = \log\pi(a) - \log\pi_{\mathrm{ref}}(a)` and
:math:`d = -\ell`:

===================  ======================================================  ========================
preset               value                                                   expected gradient
===================  ======================================================  ========================
``verl:kl``          :math:`\ell`                                            native: 0
``verl:abs``         :math:`|\ell|`                                          native: ∇Σ|π − π_ref|
``verl:mse``         :math:`\tfrac12 \ell^2`                                 native: ∇KL(π‖π_ref)
``verl:low_var_kl``  :math:`\mathrm{clamp}((e^{d_c} - d_c) - 1, \pm 10)`     native: ∇KL(π_ref‖π)
                     :math:`d_c = \mathrm{clamp}(d, \pm 20)`
``verl:k1+``         :math:`\ell`                                            k2's: ∇KL(π‖π_ref)
``verl:k3+``         as ``verl:low_var_kl``                                  k2's: ∇KL(π‖π_ref)
``openrlhf:k1``      :math:`\mathrm{clamp}(\ell, \pm 10)`                    native: 0
``openrlhf:k2``      :math:`\mathrm{clamp}(\ell^2 / 2, \pm 10)`              native: ∇KL(π‖π_ref)
``openrlhf:k3``      :math:`\mathrm{clamp}((e^{d} - 1) - d, \pm 10)`         native: ∇KL(π_ref‖π)
``trl:k3``           :math:`(e^{d} - d) - 1`                                 native: ∇KL(π_ref‖π)
``trl:k3_ratio``     :math:`((e^{d} - d) - 1) \cdot \pi/\pi_{\mathrm{old}}`  reverse_kl: ∇KL(π‖π_ref)
===================  ======================================================  ========================

The gradients are those of the table of :func:`klkit.rlhf.kl_penalty`, where no clamp holds; they
hold on-policy, and off-policy when ``old_logp`` is passed (without it, tokens from an older
policy bias every one of them).

Sources (read from the libraries' code): verl ``verl/trainer/ppo/core_algos.py``, ``kl_penalty``
and ``kl_penalty_forward`` (a name ending in ``+`` keeps the value and takes the gradient of
``0.5 * (logprob - ref_logprob).square()`` through ``backward - backward.detach() +
forward.detach()``); OpenRLHF ``openrlhf/models/utils.py``, ``compute_approx_kl`` (every estimator
clamped to ±10; OpenRLHF also casts to float32 first, which a preset does not: it keeps the input
dtype); TRL ``trl/trainer/grpo_trainer.py``, the GRPO loss's ``per_token_kl`` with ``beta > 0``,
times ``coef_1 = exp(logp - old_logp)`` when ``use_bias_correction_kl=True`` (``old_logp`` is
``logp.detach()`` when none is given, so the weight is 1 with gradient :math:`\nabla\log\pi`).

Examples
--------
>>> import torch
>>> from klkit.rlhf import PRESETS, kl_penalty
>>> PRESETS["openrlhf:k3"].clamp
Clamp(log_ratio=None, value=10.0)
>>> logp, ref = torch.tensor([-1.0, -30.0]), torch.tensor([-1.5, -1.0])
>>> [round(v, 6) for v in kl_penalty(logp, ref, preset="openrlhf:k3").value.tolist()]  # the second clamped
[0.106531, 10.0]
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Literal, NamedTuple

from klkit.estimators.sampled_kl import k3

__all__ = ["PRESETS", "Clamp", "Preset"]

Estimator = Literal["k1", "k2", "k3", "abs"]
Gradient = Literal["native", "reverse_kl", "straight_through"]

# k3 = e^d - 1 - d (d = log π_ref - log π): klkit's, and the libraries' arithmetic orders
FORMULAS: dict[str, Callable[[Any], Any]] = {
    "klkit": k3,  # accurate to a few ulps (klkit.estimators.sampled_kl)
    "(exp(d) - d) - 1": lambda d: (d.exp() - d) - 1,  # verl's low_var_kl, TRL's GRPO
    "(exp(d) - 1) - d": lambda d: (d.exp() - 1) - d,  # OpenRLHF's k3 (it adds ℓ = -d: the same bits)
}


class Clamp(NamedTuple):
    r"""Bounds applied by a KL penalty: the log-ratio first, then the estimate.

    Attributes
    ----------
    log_ratio : float or None
        :math:`\log\pi - \log\pi_{\mathrm{ref}}` is clamped to ``[-log_ratio, log_ratio]`` before
        the estimator is computed (verl clamps k3's log-ratio to ±20); None: no clamp.
    value : float or None
        The estimate is clamped to ``[-value, value]`` (verl's k3 and every OpenRLHF estimator:
        ±10); None: no clamp.

    Where a clamp is active the estimate is constant in the policy, so its gradient is 0 there
    (``torch.clamp``'s rule: the gradient passes where ``-bound <= x <= bound``).

    Examples
    --------
    >>> import torch
    >>> from klkit.rlhf import Clamp, kl_penalty
    >>> logp, ref = torch.tensor([-1.0, -31.0]), torch.tensor([-1.5, -1.0])  # log-ratios 0.5 and -30
    >>> kl_penalty(logp, ref, clamp=Clamp(log_ratio=20.0)).value.tolist()  # k1: the log-ratio, clamped
    [0.5, -20.0]
    >>> clamp = Clamp(log_ratio=20.0, value=10.0)  # verl's low_var_kl: e^20 - 21 is then clamped to 10
    >>> [round(v, 6) for v in kl_penalty(logp, ref, estimator="k3", clamp=clamp).value.tolist()]
    [0.106531, 10.0]
    """

    log_ratio: float | None = None
    value: float | None = None


@dataclass(frozen=True)
class Preset:
    """One library's KL penalty: what :func:`klkit.rlhf.kl_penalty` computes for ``preset=name``.

    Attributes
    ----------
    library : str
        ``"verl"``, ``"OpenRLHF"`` or ``"TRL"``.
    source : str
        The library's function and option this preset reproduces.
    estimator : {'k1', 'k2', 'k3', 'abs'}
        The per-token estimator.
    gradient : {'native', 'reverse_kl', 'straight_through'}
        How the surrogate is differentiated (see :func:`klkit.rlhf.kl_penalty`).
    clamp : Clamp or None
        The library's clamps.
    placement : {'reward', 'loss'}
        Where the library puts the penalty when the caller does not say (:func:`klkit.rlhf.kl_penalty`'s
        ``placement=None``): ``"loss"`` for TRL's GRPO loss term, ``"reward"`` for verl and OpenRLHF,
        which offer both.
    formula : str
        The arithmetic of k3: ``"(exp(d) - d) - 1"`` (verl, TRL) or ``"(exp(d) - 1) - d"`` (OpenRLHF);
        ``"klkit"`` (accurate to a few ulps near d = 0, where those lose digits) for the estimators
        without an exponential.

    Examples
    --------
    >>> import torch
    >>> from klkit.rlhf import PRESETS, Preset, kl_penalty
    >>> preset = PRESETS["verl:k3+"]
    >>> isinstance(preset, Preset), preset.estimator, preset.gradient, preset.clamp
    (True, 'k3', 'straight_through', Clamp(log_ratio=20.0, value=10.0))
    >>> logp, ref = torch.tensor([-1.0, -2.0], dtype=torch.float64), torch.tensor([-1.5, -1.0], dtype=torch.float64)
    >>> by_name = kl_penalty(logp, ref, preset="verl:k3+").value
    >>> by_hand = kl_penalty(logp, ref, estimator=preset.estimator, clamp=preset.clamp).value  # klkit's k3
    >>> float((by_name - by_hand).abs().max()) < 1e-15  # the same up to the last bits of the arithmetic
    True
    """

    library: str
    source: str
    estimator: Estimator
    gradient: Gradient
    clamp: Clamp | None = None
    formula: str = "klkit"
    placement: Literal["reward", "loss"] = "reward"


_VERL = "verl/trainer/ppo/core_algos.py: kl_penalty(logprob, ref_logprob, kl_penalty={!r})"
_OPENRLHF = "openrlhf/models/utils.py: compute_approx_kl(log_probs, log_probs_base, kl_estimator={!r})"
_TRL = "trl/trainer/grpo_trainer.py: GRPO loss per_token_kl (beta > 0, use_bias_correction_kl={})"
_VERL_K3 = Clamp(log_ratio=20.0, value=10.0)
_OPENRLHF_CLAMP = Clamp(value=10.0)


class _Presets(Mapping[str, Preset]):
    """A read-only mapping whose missing keys raise a ``KeyError`` that lists the names."""

    def __init__(self, items: dict[str, Preset]) -> None:
        self._items = dict(items)

    def __getitem__(self, name: str) -> Preset:
        try:
            return self._items[name]
        except KeyError:
            raise KeyError(f"no KL preset named {name!r}; choose from {', '.join(self._items)}") from None

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __repr__(self) -> str:
        return f"PRESETS({', '.join(self._items)})"


PRESETS: Mapping[str, Preset] = _Presets(
    {
        "verl:kl": Preset("verl", _VERL.format("kl"), "k1", "native"),
        "verl:abs": Preset("verl", _VERL.format("abs"), "abs", "native"),
        "verl:mse": Preset("verl", _VERL.format("mse"), "k2", "native"),
        "verl:low_var_kl": Preset("verl", _VERL.format("low_var_kl"), "k3", "native", _VERL_K3, "(exp(d) - d) - 1"),
        "verl:k1+": Preset("verl", _VERL.format("k1+"), "k1", "straight_through"),
        "verl:k3+": Preset("verl", _VERL.format("k3+"), "k3", "straight_through", _VERL_K3, "(exp(d) - d) - 1"),
        "openrlhf:k1": Preset("OpenRLHF", _OPENRLHF.format("k1"), "k1", "native", _OPENRLHF_CLAMP),
        "openrlhf:k2": Preset("OpenRLHF", _OPENRLHF.format("k2"), "k2", "native", _OPENRLHF_CLAMP),
        "openrlhf:k3": Preset("OpenRLHF", _OPENRLHF.format("k3"), "k3", "native", _OPENRLHF_CLAMP, "(exp(d) - 1) - d"),
        "trl:k3": Preset("TRL", _TRL.format(False), "k3", "native", None, "(exp(d) - d) - 1", "loss"),
        "trl:k3_ratio": Preset("TRL", _TRL.format(True), "k3", "reverse_kl", None, "(exp(d) - d) - 1", "loss"),
    }
)
