"""klkit.rlhf.kl_penalty: the libraries' presets bit for bit, the modes' values, numerics and every error."""

from __future__ import annotations

import inspect
import math
import re
from pathlib import Path

import numpy as np
import pytest
import torch

import klkit.rlhf
from klkit.errors import InvalidArgumentError, InvalidDistributionError, ShapeError
from klkit.rlhf import PRESETS, Clamp, KLPenalty, Preset, kl_penalty, sequence_kl_surrogate, token_kl

ROOT = Path(__file__).resolve().parents[1]

# --- the libraries' formulas, written from their definitions ----------------------------------------
# verl verl/trainer/ppo/core_algos.py kl_penalty / kl_penalty_forward; OpenRLHF openrlhf/models/utils.py
# compute_approx_kl; TRL trl/trainer/grpo_trainer.py (GRPO loss, beta > 0, use_bias_correction_kl).


def verl(logprob, ref_logprob, name):
    base = name[:-1] if name.endswith("+") else name
    if base in ("kl", "k1"):
        forward = logprob - ref_logprob
    elif base == "abs":
        forward = (logprob - ref_logprob).abs()
    elif base in ("mse", "k2"):
        forward = 0.5 * (logprob - ref_logprob).square()
    else:  # low_var_kl, k3
        kl = torch.clamp(ref_logprob - logprob, min=-20, max=20)
        forward = torch.clamp(torch.exp(kl) - kl - 1, min=-10, max=10)
    if not name.endswith("+"):
        return forward
    backward = 0.5 * (logprob - ref_logprob).square()
    return backward - backward.detach() + forward.detach()


def openrlhf(log_probs, log_probs_base, estimator):
    log_ratio = log_probs - log_probs_base  # (OpenRLHF casts to float32 first; the preset keeps the dtype)
    if estimator == "k2":
        log_ratio = log_ratio**2 / 2.0
    elif estimator == "k3":
        log_ratio = (-log_ratio).exp() - 1 + log_ratio
    return log_ratio.clamp(min=-10, max=10)


def trl(per_token_logps, ref_per_token_logps, old_per_token_logps=None, ratio=False):
    per_token_kl = torch.exp(ref_per_token_logps - per_token_logps) - (ref_per_token_logps - per_token_logps) - 1
    if ratio:
        old = per_token_logps.detach() if old_per_token_logps is None else old_per_token_logps
        per_token_kl = per_token_kl * torch.exp(per_token_logps - old)
    return per_token_kl


LIBRARY = {
    "verl:kl": lambda lp, ref, old: verl(lp, ref, "kl"),
    "verl:abs": lambda lp, ref, old: verl(lp, ref, "abs"),
    "verl:mse": lambda lp, ref, old: verl(lp, ref, "mse"),
    "verl:low_var_kl": lambda lp, ref, old: verl(lp, ref, "low_var_kl"),
    "verl:k1+": lambda lp, ref, old: verl(lp, ref, "k1+"),
    "verl:k3+": lambda lp, ref, old: verl(lp, ref, "k3+"),
    "openrlhf:k1": lambda lp, ref, old: openrlhf(lp, ref, "k1"),
    "openrlhf:k2": lambda lp, ref, old: openrlhf(lp, ref, "k2"),
    "openrlhf:k3": lambda lp, ref, old: openrlhf(lp, ref, "k3"),
    "trl:k3": lambda lp, ref, old: trl(lp, ref),
    "trl:k3_ratio": lambda lp, ref, old: trl(lp, ref, old, ratio=True),
}


def log_probs(seed: int, n: int = 4096, dtype=torch.float64, spread: float = 3.0):
    """Log-probabilities of sampled tokens under a policy and a reference, log-ratios up to ±40 (clamps hit)."""
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(n, 32, generator=g, dtype=dtype) * spread
    ref_logits = logits + torch.randn(n, 32, generator=g, dtype=dtype) * spread
    ref_logits[: n // 8] *= 8  # tails of far-off tokens: |log-ratio| > 20 and k3 > 10
    logits[n // 8 : n // 4] *= 8
    tokens = torch.randint(0, 32, (n, 1), generator=g)
    logp = torch.log_softmax(logits, -1).gather(-1, tokens)[:, 0]
    ref = torch.log_softmax(ref_logits, -1).gather(-1, tokens)[:, 0]
    old = (logp + 0.3 * torch.randn(n, generator=g, dtype=dtype)).clamp(max=0.0)  # log-probabilities: ≤ 0
    return logp, ref, old


def test_the_sample_reaches_every_clamp():
    logp, ref, _ = log_probs(0)
    ell = logp - ref
    assert (ell > 20).any() and (ell < -20).any() and ((-ell).expm1() + ell > 10).any() and (ell.abs() > 10).any()


@pytest.mark.parametrize("name", list(LIBRARY))
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_presets_equal_the_libraries_bit_for_bit(name, dtype):
    assert set(PRESETS) == set(LIBRARY)
    logp, ref, old = log_probs(1, dtype=dtype)
    preset = PRESETS[name]
    for with_old in (False, True) if preset.gradient == "reverse_kl" else (False,):
        ours_lp, lib_lp = logp.clone().requires_grad_(), logp.clone().requires_grad_()
        out = kl_penalty(ours_lp, ref, preset=name, placement="loss", old_logp=old if with_old else None)
        expected = LIBRARY[name](lib_lp, ref, old if with_old else None)
        assert out.surrogate.dtype == dtype and out.value.dtype == dtype
        assert torch.equal(out.surrogate.detach(), expected.detach()), name
        if not with_old:  # the value is the estimate itself (TRL's ratio is 1 on-policy)
            assert torch.equal(out.value, expected.detach()), name
            assert torch.equal(kl_penalty(logp, ref, preset=name).value, expected.detach())  # reward: value only
        # gradients: the same expression (native, straight-through) or the same derivative written out
        (ours,) = torch.autograd.grad(out.surrogate.sum(), ours_lp)
        (lib,) = torch.autograd.grad(expected.sum(), lib_lp)
        if preset.gradient == "reverse_kl":
            small = (logp - ref).abs() < 8  # TRL's autograd of e^d·w - ... cancels for large |d|
            torch.testing.assert_close(
                ours[small],
                lib[small],
                rtol=1e-9 if dtype == torch.float64 else 2e-3,
                atol=1e-12 if dtype == torch.float64 else 1e-4,
            )
        else:  # where the library's gradient is NaN (e^d overflowing beneath a clamp), ours is the clamp's 0
            nan = torch.isnan(lib)
            assert torch.equal(ours[~nan], lib[~nan]), name
            assert (ours[nan] == 0).all(), name


def test_presets_describe_themselves():
    assert repr(PRESETS).startswith("PRESETS(verl:kl, ")
    for name, preset in PRESETS.items():
        assert isinstance(preset, Preset) and preset.library.lower() == name.split(":")[0]
        assert preset.source and preset.estimator in ("k1", "k2", "k3", "abs")
    assert PRESETS["verl:low_var_kl"].clamp == Clamp(log_ratio=20.0, value=10.0)
    assert PRESETS["openrlhf:k1"].clamp == Clamp(value=10.0)
    with pytest.raises(KeyError, match=r"no KL preset named 'verl:k2\+'; choose from verl:kl, "):
        PRESETS["verl:k2+"]


# --- the estimators' values and the modes' surrogate values ------------------------------------------


def test_values_are_the_estimators_to_the_last_digit():
    """k3 against mpmath at 50 digits: a few ulps everywhere, also near d = 0 where e^d - 1 - d cancels."""
    mpmath = pytest.importorskip("mpmath")
    ell = torch.tensor(
        [1e-12, 1e-9, -1e-6, 1e-3, -0.3, 0.5, -0.999, 0.999, 1.0, -1.0, 1.5, -2.0, 30.0, -30.0], dtype=torch.float64
    )
    ref = torch.full_like(ell, -33.0)  # log-probabilities: logp = ref + ℓ ≤ 0
    logp = ref + ell
    for dtype, ulp in ((torch.float64, 2.0**-52), (torch.float32, 2.0**-23)):
        lp, rf = logp.to(dtype), ref.to(dtype)
        k3 = kl_penalty(lp, rf, estimator="k3").value
        for a, b, got in zip(lp.tolist(), rf.tolist(), k3.tolist(), strict=True):
            with mpmath.workdps(50):
                d = mpmath.mpf(b) - mpmath.mpf(a)  # the log-ratio as the inputs hold it
                want = float(mpmath.expm1(d) - d)
            assert abs(got - want) <= 4 * ulp * abs(want), (dtype, a - b, got, want)
    exact_ell = logp - ref
    assert torch.equal(kl_penalty(logp, ref, estimator="k1").value, exact_ell)
    assert torch.equal(kl_penalty(logp, ref, estimator="k2").value, 0.5 * exact_ell**2)
    assert torch.equal(kl_penalty(logp, ref, estimator="abs").value, exact_ell.abs())


@pytest.mark.parametrize("estimator", ["k1", "k2", "k3", "abs"])
@pytest.mark.parametrize("gradient", ["native", "reverse_kl", "straight_through"])
def test_surrogate_value_is_the_estimate_on_policy_and_its_weighted_estimate_off_policy(estimator, gradient):
    logp, ref, old = log_probs(2, n=256)
    out = kl_penalty(logp.requires_grad_(), ref, estimator=estimator, placement="loss", gradient=gradient)
    assert torch.equal(out.surrogate.detach(), out.value)
    assert not out.value.requires_grad and out.surrogate.requires_grad
    off = kl_penalty(logp, ref, estimator=estimator, placement="loss", gradient=gradient, old_logp=old)
    torch.testing.assert_close(off.surrogate.detach(), torch.exp(logp.detach() - old) * off.value, rtol=1e-15, atol=0)
    assert torch.equal(off.value, out.value)


def test_clamp_bounds_the_log_ratio_then_the_value_with_zero_gradient_where_it_holds():
    ref = torch.full((4,), -40.0, dtype=torch.float64)
    logp = torch.tensor([-70.0, -45.0, -38.0, -10.0], dtype=torch.float64, requires_grad=True)  # ℓ = -30, -5, 2, 30
    out = kl_penalty(logp, ref, estimator="k1", placement="loss", clamp=Clamp(log_ratio=20.0, value=3.0))
    assert out.value.tolist() == [-3.0, -3.0, 2.0, 3.0]
    out.surrogate.sum().backward()
    assert logp.grad.tolist() == [0.0, 0.0, 1.0, 0.0]
    logp.grad = None
    out = kl_penalty(logp, ref, estimator="k1", placement="loss", gradient="reverse_kl", clamp=Clamp(value=3.0))
    out.surrogate.sum().backward()  # d(w·k)/dlog π = k + ∂k: the clamped value where a clamp holds, 1 + ℓ elsewhere
    assert logp.grad.tolist() == [-3.0, -3.0, 3.0, 3.0]
    k3 = kl_penalty(logp.detach(), ref, estimator="k3", clamp=Clamp(log_ratio=20.0)).value
    assert k3[0].item() == pytest.approx(np.expm1(20.0) - 20.0, rel=1e-15)  # ℓ = -30: d = 30 clamped to 20
    assert k3[3].item() == pytest.approx(np.expm1(-20.0) + 20.0, rel=1e-15)


# --- numerics ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("estimator", ["k1", "k2", "k3", "abs"])
@pytest.mark.parametrize("gradient", ["native", "reverse_kl", "straight_through"])
def test_no_nan_for_log_ratios_of_fifty(dtype, estimator, gradient):
    ell = torch.tensor([-50.0, -1e-8, 0.0, 1e-8, 50.0], dtype=dtype)
    ref = torch.full_like(ell, -60.0)
    logp = (ref + ell).requires_grad_()
    old = logp.detach() + torch.tensor([50.0, -1.0, 0.0, 1.0, -50.0], dtype=dtype)
    for old_logp in (None, old):
        out = kl_penalty(logp, ref, estimator=estimator, placement="loss", gradient=gradient, old_logp=old_logp)
        (grad,) = torch.autograd.grad(out.surrogate.sum(), logp)
        assert torch.isfinite(out.value).all() and torch.isfinite(out.surrogate).all() and torch.isfinite(grad).all()
        if gradient != "native":  # w·ℓ or w·(1 + ℓ) per token (no e^d - e^d cancellation in k3's)
            w = torch.ones_like(ell) if old_logp is None else torch.exp(logp.detach() - old_logp)
            one = 1 if gradient == "reverse_kl" and estimator == "k1" else 0
            torch.testing.assert_close(grad, w * (logp.detach() - ref + one), rtol=1e-6, atol=0)


def test_dtype_and_device_are_kept():
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    for device in devices:
        for dtype in (torch.float32, torch.float64, torch.bfloat16):
            logp = torch.tensor([-1.0, -2.0], dtype=dtype, device=device, requires_grad=True)
            ref = torch.tensor([-1.5, -1.0], dtype=dtype, device=device)
            for gradient in ("native", "reverse_kl", "straight_through"):
                out = kl_penalty(logp, ref, estimator="k3", placement="loss", gradient=gradient, old_logp=ref)
                assert out.value.dtype == out.surrogate.dtype == dtype
                assert out.value.device == out.surrogate.device == logp.device


def test_penalty_is_a_named_tuple():
    out = kl_penalty(torch.zeros(2), torch.zeros(2))
    assert isinstance(out, KLPenalty) and out._fields == ("value", "surrogate") and out.surrogate is None


# --- errors ------------------------------------------------------------------------------------------

LP, REF = torch.tensor([-1.0, -2.0]), torch.tensor([-1.5, -1.0])
ERRORS = [
    (
        dict(estimator="k4"),
        InvalidArgumentError,
        r"`estimator` must be one of 'k1', 'k2', 'k3', 'abs'; found 'k4'\. "
        r"Use 'k1' or 'k3' \(unbiased .*pass `preset` instead",
    ),
    (
        dict(placement="both"),
        InvalidArgumentError,
        r"`placement` must be one of 'reward', 'loss'; found 'both'\. "
        r"Use 'reward' to subtract β·value from the rewards, or 'loss'",
    ),
    (
        dict(placement="loss", gradient="forward_kl"),
        InvalidArgumentError,
        r"`gradient` must be one of 'native', 'reverse_kl', 'straight_through'; found 'forward_kl'\. "
        r"Use 'native' for the libraries' gradient, or 'reverse_kl'",
    ),
    (
        dict(gradient="reverse_kl"),
        InvalidArgumentError,
        r"`gradient` must be 'native' with placement='reward'; found gradient='reverse_kl'.*placement='loss'",
    ),
    (dict(old_logp=REF), InvalidArgumentError, r"`old_logp` applies to placement='loss' only"),
    (
        dict(preset="verl:k2+"),
        InvalidArgumentError,
        r"`preset` must be one of verl:kl, verl:abs, .*; found 'verl:k2\+'",
    ),
    (
        dict(preset="verl:kl", estimator="k3"),
        InvalidArgumentError,
        r"`estimator` cannot be combined with `preset`: the preset 'verl:kl' fixes it; found estimator='k3'",
    ),
    (dict(preset="trl:k3", clamp=Clamp(value=10.0)), InvalidArgumentError, r"`clamp` cannot be combined with `preset`"),
    (
        dict(preset="trl:k3", gradient="reverse_kl", placement="loss"),
        InvalidArgumentError,
        r"`gradient` cannot be combined with `preset`",
    ),
    (dict(clamp=(20.0, -1.0)), InvalidArgumentError, r"`clamp` must be Clamp\(log_ratio, value\) with each bound None"),
    (dict(clamp=(20.0,)), InvalidArgumentError, r"`clamp` must be Clamp"),
    (dict(clamp=(True, None)), InvalidArgumentError, r"`clamp` must be Clamp"),
    (
        dict(placement="loss", old_logp=torch.zeros(3)),
        ShapeError,
        r"`old_logp` must have the shape of `logp` .*found \(3,\) and \(2,\)",
    ),
    (
        dict(placement="loss", old_logp=torch.zeros(2, requires_grad=True)),
        InvalidArgumentError,
        r"`old_logp` must not require grad.*torch.no_grad\(\)",
    ),
    (
        dict(placement="loss", old_logp=torch.tensor([0.0, float("nan")])),
        InvalidDistributionError,
        r"`old_logp` must hold finite log-probabilities at the sampled tokens; found nan",
    ),
]


@pytest.mark.parametrize(("options", "error", "message"), ERRORS)
def test_bad_options_raise_naming_the_argument(options, error, message):
    with pytest.raises(error, match=message):
        kl_penalty(LP, REF, **options)


def test_bad_inputs_raise_naming_the_argument():
    with pytest.raises(ShapeError, match=r"`ref_logp` must have the shape of `logp`.*found \(3,\) and \(2,\)"):
        kl_penalty(LP, torch.zeros(3))
    with pytest.raises(TypeError, match=r"`logp` must be a floating-point torch tensor .*found ndarray"):
        kl_penalty(np.zeros(2), REF)
    with pytest.raises(TypeError, match=r"`ref_logp` must be a floating-point torch tensor .*found a torch.int64"):
        kl_penalty(LP, torch.zeros(2, dtype=torch.int64))
    with pytest.raises(InvalidArgumentError, match=r"`ref_logp` must not require grad"):
        kl_penalty(LP, REF.clone().requires_grad_())
    with pytest.raises(InvalidDistributionError, match=r"`logp` must hold finite log-probabilities.*found inf"):
        kl_penalty(torch.tensor([0.0, float("inf")]), REF)
    with pytest.raises(
        InvalidDistributionError,
        match=r"`ref_logp` must hold finite .*found -inf \(π_ref gives a sampled token no mass: "
        r"KL\(π‖π_ref\) is infinite; clamp the log-ratio",
    ):
        kl_penalty(LP, torch.tensor([0.0, -float("inf")]))


# --- the public API, pinned ------------------------------------------------------------------------

P, K = inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.KEYWORD_ONLY
EMPTY = inspect.Parameter.empty
SIGNATURES = {
    kl_penalty: [
        ("logp", P, EMPTY),
        ("ref_logp", P, EMPTY),
        ("estimator", K, "k1"),
        ("placement", K, None),
        ("gradient", K, "native"),
        ("old_logp", K, None),
        ("clamp", K, None),
        ("preset", K, None),
        ("densities", K, False),
    ],
    token_kl: [("logits", P, EMPTY), ("ref_logits", P, EMPTY), ("direction", K, "reverse"), ("chunk_size", K, None)],
    sequence_kl_surrogate: [
        ("logp", P, EMPTY),
        ("ref_logp", P, EMPTY),
        ("mask", P, EMPTY),
        ("old_logp", K, None),
        ("densities", K, False),
    ],
}


def test_public_api_is_pinned():
    assert klkit.rlhf.__all__ == [
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
    assert klkit.rlhf.ESTIMATORS == ("k1", "k2", "k3", "abs")
    assert klkit.rlhf.PLACEMENTS == ("reward", "loss")
    assert klkit.rlhf.GRADIENTS == ("native", "reverse_kl", "straight_through")
    for name in klkit.rlhf.__all__:
        assert hasattr(klkit.rlhf, name)
    for fn, expected in SIGNATURES.items():
        got = [(p.name, p.kind, p.default) for p in inspect.signature(fn).parameters.values()]
        assert got == expected, fn.__name__
    assert set(PRESETS) == {
        "verl:kl",
        "verl:abs",
        "verl:mse",
        "verl:low_var_kl",
        "verl:k1+",
        "verl:k3+",
        "openrlhf:k1",
        "openrlhf:k2",
        "openrlhf:k3",
        "trl:k3",
        "trl:k3_ratio",
    }
    assert Clamp._fields == ("log_ratio", "value")


def test_docstrings_state_the_gradients_and_cite_the_sources():
    for fn in (kl_penalty, sequence_kl_surrogate):
        doc = inspect.getdoc(fn)
        assert "Tang" in doc and "Off-policy" in doc, fn.__name__
    doc = inspect.getdoc(kl_penalty)
    for needle in (
        "∇KL(π_ref‖π)",
        "∇KL(π‖π_ref)",
        "verl",
        "OpenRLHF",
        "TRL",
        "Zhang",
        "comedy of estimators",
        "Rethinking KL regularization",
    ):
        assert needle in doc, needle
    assert re.search(r"k3\s+∇KL\(π_ref‖π\), the \*\*forward\*\* KL", doc)


# --- the reference gives a sampled token no mass; inputs that are not log-probabilities --------------


@pytest.mark.parametrize("name", [n for n, p in PRESETS.items() if p.clamp is not None])
def test_clamped_presets_match_the_libraries_where_the_reference_has_no_mass(name):
    """ref_logp = -inf: verl's low_var_kl clamps the log-ratio to -20 and the value to 10, OpenRLHF clamps to
    ±10: they return numbers, and so does the preset (the same ones); the gradient there is the clamp's 0."""
    logp = torch.tensor([-1.0, -2.0, -0.5], dtype=torch.float64, requires_grad=True)
    ref = torch.tensor([-1.5, -math.inf, -math.inf], dtype=torch.float64)
    expected = LIBRARY[name.replace("verl:k3+", "verl:low_var_kl")](logp.detach(), ref, None)  # k3+: its value
    out = kl_penalty(logp, ref, preset=name, placement="loss")
    assert torch.equal(out.value, expected), (out.value, expected)
    (grad,) = torch.autograd.grad(out.surrogate.sum(), logp)
    assert torch.isfinite(grad).all() and (grad[1:] == 0).all()


@pytest.mark.parametrize("name", [n for n, p in PRESETS.items() if p.clamp is None])
def test_unclamped_presets_refuse_a_reference_without_mass(name):
    with pytest.raises(InvalidDistributionError, match="`ref_logp` must hold finite log-probabilities"):
        kl_penalty(torch.tensor([-1.0, -2.0]), torch.tensor([-1.0, -math.inf]), preset=name)


@pytest.mark.parametrize("estimator", ["k1", "k2", "k3", "abs"])
@pytest.mark.parametrize("gradient", ["native", "reverse_kl", "straight_through"])
def test_the_advice_for_a_reference_without_mass_works(estimator, gradient):
    """The error names a clamp; passing that clamp gives finite values and gradients (0 at the clamped token)."""
    logp = torch.tensor([-1.0, -2.0], requires_grad=True)
    ref = torch.tensor([-1.5, -math.inf])
    with pytest.raises(InvalidDistributionError) as info:
        kl_penalty(logp, ref, estimator=estimator, placement="loss", gradient=gradient)
    advice = re.search(r"clamp=(Clamp\([^)]*\))", str(info.value)).group(1)
    out = kl_penalty(logp, ref, estimator=estimator, placement="loss", gradient=gradient, clamp=eval(advice))
    (grad,) = torch.autograd.grad(out.surrogate.sum(), logp)
    assert torch.isfinite(out.value).all() and torch.isfinite(out.surrogate).all()
    assert torch.isfinite(grad).all()
    assert grad[1] == (out.value[1] if gradient == "reverse_kl" else 0)  # reverse_kl: the clamped estimate's slope
    assert out.value[1] == {"k1": 20.0, "k2": 200.0, "k3": math.expm1(-20.0) + 20.0, "abs": 20.0}[estimator]


@pytest.mark.parametrize("which", ["logp", "ref_logp", "old_logp"])
def test_positive_log_probabilities_are_refused(which):
    """Raw logits passed by mistake: the penalty would be a plausible number; it raises naming the argument."""
    args = {
        "logp": torch.tensor([-1.0, -2.0]),
        "ref_logp": torch.tensor([-1.5, -1.0]),
        "old_logp": torch.tensor([-1.0, -2.5]),
    }
    args[which] = torch.tensor([-1.0, 3.25])
    with pytest.raises(
        InvalidDistributionError,
        match=rf"`{which}` must hold log-probabilities \(≤ 0\).*found 3.25 at index \(1,\).*log_softmax",
    ):
        kl_penalty(args["logp"], args["ref_logp"], placement="loss", old_logp=args["old_logp"])
    # rounding above 0 (log_softmax of a certain token) is not refused
    args[which] = torch.tensor([-1.0, 1e-7])
    kl_penalty(args["logp"], args["ref_logp"], placement="loss", old_logp=args["old_logp"])


def test_trl_presets_put_the_penalty_in_the_loss_unless_told():
    logp, ref, old = torch.tensor([-1.0, -2.0]), torch.tensor([-1.5, -1.0]), torch.tensor([-1.2, -2.0])
    for name, preset in PRESETS.items():
        assert preset.placement == ("loss" if name.startswith("trl:") else "reward")
        out = kl_penalty(logp.clone().requires_grad_(), ref, preset=name)
        assert (out.surrogate is not None) == name.startswith("trl:")
    assert kl_penalty(logp.clone().requires_grad_(), ref, preset="trl:k3_ratio", old_logp=old).surrogate is not None
    assert kl_penalty(logp, ref, preset="trl:k3", placement="reward").surrogate is None


def test_the_k3_series_threshold_is_documented_where_the_code_switches():
    """docs/rlhf.md and kl_penalty's docstring name the |d| below which k3 is a series; the code must switch
    there: above it the value is expm1(d) − d bit for bit, just below it the series gives other bits."""
    doc = re.search(r"series below :math:`\|d\| = (\\tfrac12|[0-9./]+)`", kl_penalty.__doc__)
    page = re.search(r"series below \|d\| = ([0-9./½]+)\)", (ROOT / "docs" / "rlhf.md").read_text())
    assert doc and page, "the threshold sentence is gone from the docstring or docs/rlhf.md"
    as_number = {r"\tfrac12": 0.5, "½": 0.5, "1/2": 0.5}
    threshold = as_number.get(doc.group(1)) or float(doc.group(1))
    assert threshold == (as_number.get(page.group(1)) or float(page.group(1)))
    ref = torch.full((400,), -30.0)
    above = torch.linspace(threshold * 1.0001, 3 * threshold, 400)
    below = torch.linspace(threshold * 0.6, threshold * 0.9999, 400)
    for d, same in ((above, True), (below, False)):
        for sign in (1, -1):
            logp = ref - sign * d  # d = ref − logp
            value = kl_penalty(logp, ref, estimator="k3").value
            plain = torch.expm1(ref - logp) - (ref - logp)
            assert torch.equal(value, plain) == same, (sign, same)


def test_log_densities_of_continuous_actions_may_be_positive():
    """A Gaussian policy's log-density exceeds 0 when its std is small: densities=True accepts it."""
    logp = torch.distributions.Normal(0.0, 0.1).log_prob(torch.tensor([0.0, 0.05]))  # 1.38, 1.26
    ref = torch.distributions.Normal(0.0, 0.2).log_prob(torch.tensor([0.0, 0.05]))
    with pytest.raises(InvalidDistributionError, match="densities=True"):
        kl_penalty(logp, ref)
    out = kl_penalty(logp, ref, estimator="k3", densities=True)
    d = (ref - logp).double()
    torch.testing.assert_close(out.value.double(), torch.expm1(d) - d, rtol=1e-6, atol=0)
    mask = torch.ones(1, 2, dtype=torch.bool)
    assert sequence_kl_surrogate(logp[None], ref[None], mask, densities=True).item() == pytest.approx(
        float((logp - ref).sum())
    )
    with pytest.raises(TypeError, match="`densities` must be True or False"):
        kl_penalty(logp, ref, densities=1)
