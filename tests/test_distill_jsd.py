"""generalized_jsd_loss against TRL's formula, written out here in float64 (values and gradients).

The reference follows TRL's ``GKDTrainer.generalized_jsd_loss`` line by line: log_softmax of the
tempered logits, F.kl_div for the ends, a logsumexp mixture inside, masking with -100 labels and
TRL's four reductions. Parity: 1e-12 relative in float64 and 1e-5 in float32 (against the float64
reference), for β ∈ {0, 0.1, 0.5, 0.9, 1}, T ∈ {0.5, 1, 2}, with and without labels, every reduction.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from klkit.distill import divergence_loss, generalized_jsd_loss
from klkit.errors import InvalidArgumentError, ShapeError

BETAS = [0.0, 0.1, 0.5, 0.9, 1.0]
TEMPERATURES = [0.5, 1.0, 2.0]
REDUCTIONS = ["batchmean", "sum", "mean", "none"]


@pytest.fixture(autouse=True)
def _one_thread(torch_one_thread):
    """Small tensors: one torch thread (see conftest.torch_one_thread)."""


def trl_reference(student_logits, teacher_logits, labels=None, beta=0.5, temperature=1.0, reduction="batchmean"):
    """TRL's generalized_jsd_loss, written out (float64 inputs give a float64 reference)."""
    student_log_probs = F.log_softmax(student_logits / temperature, dim=-1)
    teacher_log_probs = F.log_softmax(teacher_logits / temperature, dim=-1)
    if beta == 0:
        jsd = F.kl_div(student_log_probs, teacher_log_probs, reduction="none", log_target=True)
    elif beta == 1:
        jsd = F.kl_div(teacher_log_probs, student_log_probs, reduction="none", log_target=True)
    else:
        b = torch.tensor(beta, dtype=student_log_probs.dtype)
        mixture = torch.logsumexp(
            torch.stack([student_log_probs + torch.log1p(-b), teacher_log_probs + torch.log(b)]), dim=0
        )
        kl_teacher = F.kl_div(mixture, teacher_log_probs, reduction="none", log_target=True)
        kl_student = F.kl_div(mixture, student_log_probs, reduction="none", log_target=True)
        jsd = b * kl_teacher + (1 - b) * kl_student
    if labels is not None:
        mask = labels != -100
        jsd = jsd[mask]
    if reduction == "batchmean":
        return jsd.sum() / mask.sum() if labels is not None else jsd.sum() / jsd.size(0)
    if reduction == "sum":
        return jsd.sum()
    if reduction == "mean":
        return jsd.mean()
    return jsd


def make_inputs(dtype, seed=0, shape=(3, 5, 17)):
    g = torch.Generator().manual_seed(seed)
    s = torch.randn(shape, generator=g, dtype=torch.float64) * 2.5
    t = torch.randn(shape, generator=g, dtype=torch.float64) * 2.5
    labels = torch.randint(0, shape[-1], shape[:-1], generator=g)
    labels[0, :2] = -100
    labels[2, 4] = -100
    return s.to(dtype), t.to(dtype), labels


def values_and_grads(fn, s, t, upstream_seed=1):
    s = s.detach().clone().requires_grad_(True)
    t = t.detach().clone().requires_grad_(True)
    out = fn(s, t)
    if out.ndim:  # 'none': a fixed random upstream gradient
        g = torch.randn(out.shape, generator=torch.Generator().manual_seed(upstream_seed), dtype=torch.float64)
        (out * g.to(out.dtype)).sum().backward()
    else:
        out.backward()
    return out.detach().double(), s.grad.double(), t.grad.double()


def assert_close_relative(got, want, rtol):
    """|got − want| ≤ rtol · max|want| (elementwise terms near 0 are judged on the array's scale)."""
    scale = float(want.abs().max()) if want.numel() else 0.0
    err = float((got - want).abs().max()) if want.numel() else 0.0
    assert err <= rtol * max(scale, 1e-300), f"max error {err:.3e} vs scale {scale:.3e} (rtol {rtol})"


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("with_labels", [False, True])
@pytest.mark.parametrize("temperature", TEMPERATURES)
@pytest.mark.parametrize("beta", BETAS)
def test_matches_trl_in_float64_and_float32(beta, temperature, with_labels, reduction):
    s64, t64, labels = make_inputs(torch.float64, seed=int(beta * 10 + temperature * 100))
    labels = labels if with_labels else None
    want = values_and_grads(lambda s, t: trl_reference(s, t, labels, beta, temperature, reduction), s64, t64)
    got64 = values_and_grads(lambda s, t: generalized_jsd_loss(s, t, labels, beta, temperature, reduction), s64, t64)
    for g, w in zip(got64, want, strict=True):
        assert g.shape == w.shape
        assert_close_relative(g, w, 1e-12)
    got32 = values_and_grads(
        lambda s, t: generalized_jsd_loss(s, t, labels, beta, temperature, reduction), s64.float(), t64.float()
    )
    for g, w in zip(got32, want, strict=True):
        assert_close_relative(g, w, 1e-5)


def test_keeps_dtype_and_returns_numpy_for_numpy():
    s, t, labels = make_inputs(torch.float32)
    assert generalized_jsd_loss(s, t, labels).dtype == torch.float32
    out = generalized_jsd_loss(s.numpy(), t.numpy(), labels.numpy(), 0.3)
    assert isinstance(out, np.ndarray) and out.dtype == np.float32 and out.shape == ()
    want = trl_reference(s.double(), t.double(), labels, 0.3)
    assert abs(float(out) - float(want)) <= 1e-6 * float(want)


@pytest.mark.parametrize("labelled", [True, False])
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_num_items_in_batch_divides_the_sum_whatever_the_reduction_as_trl(reduction, labelled):
    """TRL returns Σ / num_items_in_batch for every reduction ('none' included): the same numbers here,
    against TRL's own function where it is installed (its rule written out otherwise)."""
    s, t, labels = make_inputs(torch.float64)
    labels = labels if labelled else None
    total = trl_reference(s, t, labels, 0.5, reduction="sum")
    for count in (40, torch.tensor(40)):
        got = generalized_jsd_loss(s, t, labels, reduction=reduction, num_items_in_batch=count)
        assert got.shape == () and float(got) == pytest.approx(float(total) / 40, rel=1e-13)
    trainer = pytest.importorskip("trl.experimental.gkd").GKDTrainer
    want = trainer.generalized_jsd_loss(s, t, labels, beta=0.5, reduction=reduction, num_items_in_batch=40)
    assert float(generalized_jsd_loss(s, t, labels, reduction=reduction, num_items_in_batch=40)) == pytest.approx(
        float(want), rel=1e-13
    )


def test_all_labels_ignored_gives_zero_loss_and_zero_gradient():
    s, t, _ = make_inputs(torch.float64)
    s.requires_grad_(True)
    labels = torch.full(s.shape[:-1], -100)
    loss = generalized_jsd_loss(s, t, labels)
    loss.backward()
    assert float(loss.detach()) == 0.0
    assert float(s.grad.abs().max()) == 0.0


def test_continuous_interpolation_meets_both_kls_at_the_ends():
    s, t, labels = make_inputs(torch.float64, shape=(4, 6, 30))
    forward = float(trl_reference(s, t, labels, 0.0))
    reverse = float(trl_reference(s, t, labels, 1.0))
    near0 = float(generalized_jsd_loss(s, t, labels, 1e-9, interpolation="continuous"))
    near1 = float(generalized_jsd_loss(s, t, labels, 1 - 1e-9, interpolation="continuous"))
    assert near0 == pytest.approx(forward, rel=1e-6)
    assert near1 == pytest.approx(reverse, rel=1e-6)
    assert float(generalized_jsd_loss(s, t, labels, 0.0, interpolation="continuous")) == pytest.approx(forward)
    for beta in (0.1, 0.5, 0.9):  # inside: TRL's value divided by β(1−β)
        trl = float(trl_reference(s, t, labels, beta))
        got = float(generalized_jsd_loss(s, t, labels, beta, interpolation="continuous"))
        assert got == pytest.approx(trl / (beta * (1 - beta)), rel=1e-12)


def test_trl_jumps_at_the_ends_and_continuous_does_not():
    """The motivating numbers (module docstring): 0.0062 at β = 0.999 against 7.33 at β = 1."""
    g = torch.Generator().manual_seed(2)
    s, t = torch.randn(4, 300, generator=g) * 3, torch.randn(4, 300, generator=g) * 3
    assert float(generalized_jsd_loss(s, t, beta=0.999)) == pytest.approx(0.0062, abs=1e-4)
    assert float(generalized_jsd_loss(s, t, beta=1.0)) == pytest.approx(7.33, abs=1e-2)
    s, t = s.double(), t.double()
    ends = float(generalized_jsd_loss(s, t, beta=1.0))
    gaps = [ends - float(generalized_jsd_loss(s, t, beta=1 - e, interpolation="continuous")) for e in (1e-3, 1e-6)]
    assert 0 < gaps[1] < gaps[0] < 1.5 and gaps[1] < 0.02


def test_half_precision_is_never_negative_where_the_plain_formula_is():
    """bf16 inputs: TRL's formula in bf16 goes negative on near-equal distributions; ours does not."""
    g = torch.Generator().manual_seed(3)
    t = torch.randn(256, 1000, generator=g) * 2
    s = t + 0.01 * torch.randn(256, 1000, generator=g)
    s16, t16 = s.bfloat16(), t.bfloat16()
    plain = trl_reference(s16, t16, beta=0.5, reduction="none").float().sum(-1)
    assert float(plain.min()) < 0, "negative control: the plain bf16 formula should dip below 0 here"
    ours = generalized_jsd_loss(s16, t16, torch.zeros(256, dtype=torch.long), 0.5, reduction="none").float().sum(-1)
    assert float(ours.min()) >= 0
    per_token = [float(generalized_jsd_loss(s16[i : i + 1], t16[i : i + 1], beta=0.5)) for i in range(8)]
    assert min(per_token) >= 0


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"beta": 1.5}, "`beta` must lie in [0, 1]"),
        ({"beta": -0.1}, "`beta` must lie in [0, 1]"),
        ({"beta": float("nan")}, "`beta` must be a finite real number"),
        ({"temperature": 0.0}, "`temperature` must be > 0"),
        ({"temperature": -1.0}, "`temperature` must be > 0"),
        ({"reduction": "avg"}, "`reduction` must be one of"),
        ({"interpolation": "linear"}, "`interpolation` must be 'trl' or 'continuous'"),
        ({"num_items_in_batch": 0}, "`num_items_in_batch` must be a number > 0"),
        ({"num_items_in_batch": torch.tensor([1, 2])}, "`num_items_in_batch` must be one number"),
    ],
)
def test_bad_options_raise_naming_the_argument(kwargs, message):
    s, t, labels = make_inputs(torch.float32)
    with pytest.raises(InvalidArgumentError if "one number" not in message else ShapeError) as info:
        generalized_jsd_loss(s, t, labels, **kwargs)
    assert message in str(info.value)


def test_bad_inputs_raise_naming_the_argument():
    s, t, labels = make_inputs(torch.float32)
    with pytest.raises(ShapeError, match="same vocabulary size"):
        generalized_jsd_loss(s, t[..., :-1])
    with pytest.raises(ShapeError, match="`labels` must have the shape of the logits without the vocabulary axis"):
        generalized_jsd_loss(s, t, labels[:, :-1])
    with pytest.raises(TypeError, match="`labels` must hold integer token ids"):
        generalized_jsd_loss(s, t, labels.float())
    with pytest.raises(TypeError, match="`student_logits` must have a floating dtype"):
        generalized_jsd_loss(s.long(), t)
    bad = t.clone()
    bad[1, 2, 3] = math.nan
    with pytest.raises(ValueError, match="`teacher_logits` must hold logits"):
        generalized_jsd_loss(s, bad, labels)
    bad = s.clone()
    bad[2, 0] = -math.inf
    with pytest.raises(ValueError, match="`student_logits` must have at least one finite logit"):
        generalized_jsd_loss(bad, t, reduction="none")
    with pytest.raises(TypeError, match="inputs mix numpy"):
        generalized_jsd_loss(s.numpy(), t)


def test_labels_may_be_numpy_or_torch_whatever_the_logits():
    s, t, labels = make_inputs(torch.float64)
    want = float(trl_reference(s, t, labels, 0.4))
    assert float(generalized_jsd_loss(s, t, labels.numpy(), 0.4)) == pytest.approx(want, rel=1e-13)
    assert float(generalized_jsd_loss(s.numpy(), t.numpy(), labels, 0.4)) == pytest.approx(want, rel=1e-13)


def test_divergence_loss_jsd_and_generalized_jsd_loss_differ_only_by_their_documented_divisors():
    """divergence_loss's See Also: same per-token JSD; without labels TRL's batchmean divides by the batch axis,
    divergence_loss's by the token count; with labels both by the kept tokens; 'mean' with num_items_in_batch:
    TRL divides by the count, divergence_loss by count · V."""
    s, t, labels = make_inputs(torch.float64)
    batch, tokens, vocab = s.shape[0], s.shape[0] * s.shape[1], s.shape[-1]
    ours = divergence_loss(s, t, divergence="jsd", beta=0.3)
    trl = generalized_jsd_loss(s, t, beta=0.3)
    assert float(ours) * tokens == pytest.approx(float(trl) * batch, rel=1e-13)
    assert float(divergence_loss(s, t, divergence="jsd", beta=0.3, labels=labels)) == pytest.approx(
        float(generalized_jsd_loss(s, t, labels, 0.3)), rel=1e-13
    )
    ours = divergence_loss(s, t, divergence="jsd", beta=0.3, labels=labels, reduction="mean", num_items_in_batch=7)
    trl = generalized_jsd_loss(s, t, labels, 0.3, reduction="mean", num_items_in_batch=7)
    assert float(ours) * vocab == pytest.approx(float(trl), rel=1e-13)
    with pytest.raises(InvalidArgumentError, match="`num_items_in_batch` divides the summed loss"):
        divergence_loss(s, t, divergence="jsd", labels=labels, reduction="sum", num_items_in_batch=7)
    assert "divides by the first axis" in " ".join(divergence_loss.__doc__.split())
