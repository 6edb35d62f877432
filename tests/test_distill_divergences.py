"""divergence_loss: every divergence against an independent float64 reference, the options, the errors.

References: scipy's ``rel_entr`` (KL terms with 0·log 0 = 0), ``jensenshannon``, and the α-β
divergence's known special cases (forward and reverse KL, 4·(1 − Bhattacharyya coefficient), the
Itakura–Saito divergence, half the squared log-ratio) besides its general formula written out here.
Gradients: fp64 ``torch.autograd.gradcheck`` for every divergence, student and teacher.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy.spatial.distance import jensenshannon
from scipy.special import log_softmax as np_log_softmax
from scipy.special import rel_entr

from klkit.distill import DIVERGENCES, divergence_loss
from klkit.errors import BackendMismatchError, InvalidArgumentError, InvalidDistributionError, ShapeError

RNG_SEED = 20261207
ALL = [
    ("forward_kl", {}),
    ("reverse_kl", {}),
    ("jsd", {"beta": 0.3}),
    ("jsd", {"beta": 0.5}),
    ("skew_forward_kl", {"skew": 0.1}),
    ("skew_reverse_kl", {"skew": 0.25}),
    ("tvd", {}),
    ("alpha_beta", {"alpha": 0.7, "beta": 0.4}),
    ("alpha_beta", {"alpha": 1.0, "beta": 0.0}),
    ("alpha_beta", {"alpha": 0.0, "beta": 0.6}),
    ("alpha_beta", {"alpha": 0.8, "beta": -0.8}),
    ("alpha_beta", {"alpha": 0.0, "beta": 0.0}),
    ("alpha_beta", {"alpha": 1.5, "beta": -0.5}),
]


@pytest.fixture(autouse=True)
def _one_thread(torch_one_thread):
    """Small tensors: one torch thread (see conftest.torch_one_thread)."""


def pair(n=40, v=23, scale=2.0, seed=RNG_SEED):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, v)) * scale, rng.standard_normal((n, v)) * scale


def probs_of(z, temperature=1.0):
    return np.exp(np_log_softmax(z / temperature, axis=-1))


def ab_general(p, q, a, b):
    u = a + b
    return -(p**a * q**b - a / u * p**u - b / u * q**u).sum(-1) / (a * b)


def reference(divergence, t, s, **o):
    """Per-row divergence of teacher probabilities t and student probabilities s, float64."""
    if divergence == "forward_kl":
        return rel_entr(t, s).sum(-1)
    if divergence == "reverse_kl":
        return rel_entr(s, t).sum(-1)
    if divergence == "jsd":
        b = o["beta"]
        m = (1 - b) * s + b * t
        return b * rel_entr(t, m).sum(-1) + (1 - b) * rel_entr(s, m).sum(-1)
    if divergence == "skew_forward_kl":
        return rel_entr(t, o["skew"] * t + (1 - o["skew"]) * s).sum(-1)
    if divergence == "skew_reverse_kl":
        return rel_entr(s, o["skew"] * s + (1 - o["skew"]) * t).sum(-1)
    if divergence == "tvd":
        return 0.5 * np.abs(s - t).sum(-1)
    a, b = o["alpha"], o["beta"]
    if (a, b) == (1.0, 0.0):
        return rel_entr(t, s).sum(-1)
    if a == 0 and b == 0:
        return 0.5 * ((np.log(t) - np.log(s)) ** 2).sum(-1)
    if a == 0:  # (1/β²) Σ q^β log(q^β / p^β) − q^β + p^β with p the teacher, q the student
        return (s**b * np.log(s**b / t**b) - s**b + t**b).sum(-1) / b**2
    if a + b == 0:
        x = a * (np.log(t) - np.log(s))
        return (np.exp(x) - 1 - x).sum(-1) / a**2
    return ab_general(t, s, a, b)


@pytest.mark.parametrize(("divergence", "options"), ALL)
@pytest.mark.parametrize("temperature", [0.7, 1.0, 2.0])
def test_per_token_values_match_the_reference(divergence, options, temperature):
    zs, zt = pair()
    got = divergence_loss(
        torch.from_numpy(zs),
        torch.from_numpy(zt),
        divergence=divergence,
        temperature=temperature,
        reduction="none",
        **options,
    ).numpy()
    want = reference(divergence, probs_of(zt, temperature), probs_of(zs, temperature), **options)
    np.testing.assert_allclose(got, want, rtol=1e-11, atol=1e-14)
    got32 = (
        divergence_loss(
            torch.from_numpy(zs).float(),
            torch.from_numpy(zt).float(),
            divergence=divergence,
            temperature=temperature,
            reduction="none",
            **options,
        )
        .double()
        .numpy()
    )
    np.testing.assert_allclose(got32, want, rtol=2e-5, atol=1e-6)


def test_alpha_beta_special_cases_have_closed_forms():
    zs, zt = pair(seed=5)
    s, t = probs_of(zs), probs_of(zt)
    S, T = torch.from_numpy(zs), torch.from_numpy(zt)

    def ab(a, b):
        return divergence_loss(S, T, divergence="alpha_beta", alpha=a, beta=b, reduction="none").numpy()

    np.testing.assert_allclose(ab(1.0, 0.0), rel_entr(t, s).sum(-1), rtol=1e-12)  # forward KL
    np.testing.assert_allclose(ab(0.0, 1.0), rel_entr(s, t).sum(-1), rtol=1e-12)  # reverse KL
    np.testing.assert_allclose(ab(0.5, 0.5), 4 * (1 - np.sqrt(s * t).sum(-1)), rtol=1e-10)  # Hellinger
    np.testing.assert_allclose(ab(1.0, -1.0), (t / s - 1 - np.log(t / s)).sum(-1), rtol=1e-12)  # Itakura–Saito
    np.testing.assert_allclose(ab(0.0, 0.0), 0.5 * ((np.log(t) - np.log(s)) ** 2).sum(-1), rtol=1e-12)


@pytest.mark.parametrize(
    ("near", "limit", "rtol"),
    [
        ((1.0, 1e-7), (1.0, 0.0), 1e-6),
        ((1e-7, 1.0), (0.0, 1.0), 1e-6),
        ((0.5, 1e-7), (0.5, 0.0), 1e-6),
        ((1.0, -1.0 + 1e-7), (1.0, -1.0), 1e-6),
        ((1e-3, 1e-3), (0.0, 0.0), 2e-2),
    ],
)
def test_alpha_beta_is_continuous_at_its_limit_branches(near, limit, rtol):
    zs, zt = pair(seed=6, scale=1.0)
    S, T = torch.from_numpy(zs), torch.from_numpy(zt)
    a = divergence_loss(S, T, divergence="alpha_beta", alpha=near[0], beta=near[1], reduction="none")
    b = divergence_loss(S, T, divergence="alpha_beta", alpha=limit[0], beta=limit[1], reduction="none")
    np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=rtol)


def test_symmetric_jsd_is_scipys_jensen_shannon_squared():
    zs, zt = pair(seed=7)
    got = divergence_loss(torch.from_numpy(zs), torch.from_numpy(zt), divergence="jsd", reduction="none").numpy()
    want = jensenshannon(probs_of(zs), probs_of(zt), axis=-1) ** 2
    np.testing.assert_allclose(got, want, rtol=1e-9)


def test_temperature_scaling_multiplies_by_t_squared():
    zs, zt = (torch.from_numpy(x) for x in pair(seed=8))
    plain = divergence_loss(zs, zt, temperature=3.0)
    scaled = divergence_loss(zs, zt, temperature=3.0, temperature_scaling=True)
    assert float(scaled) == pytest.approx(9 * float(plain), rel=1e-14)


@pytest.mark.parametrize(("divergence", "options"), ALL[:8])
def test_teacher_kinds_give_the_same_loss(divergence, options):
    zs, zt = pair(seed=9)
    S = torch.from_numpy(zs)
    lp = np_log_softmax(zt, axis=-1)
    values = [
        float(divergence_loss(S, torch.from_numpy(x), divergence=divergence, kind=k, temperature=1.5, **options))
        for x, k in ((zt, "logits"), (lp, "log_probs"), (np.exp(lp), "probs"))
    ]
    assert values[1] == pytest.approx(values[0], rel=1e-12)
    assert values[2] == pytest.approx(values[0], rel=1e-12)


def test_reductions_labels_and_num_items():
    zs, zt = pair(n=12, seed=10)
    S, T = torch.from_numpy(zs).reshape(3, 4, -1), torch.from_numpy(zt).reshape(3, 4, -1)
    labels = torch.tensor([[1, 2, -1, 3], [-1, -1, 4, 5], [6, 7, 8, -1]])
    per_token = reference("forward_kl", probs_of(zt), probs_of(zs)).reshape(3, 4)
    kept = (labels != -1).numpy()
    none = divergence_loss(S, T, labels=labels, ignore_index=-1, reduction="none").numpy()
    np.testing.assert_allclose(none, np.where(kept, per_token, 0.0), rtol=1e-12)
    total = per_token[kept].sum()
    assert float(divergence_loss(S, T, labels=labels, ignore_index=-1, reduction="sum")) == pytest.approx(total)
    assert float(divergence_loss(S, T, labels=labels, ignore_index=-1)) == pytest.approx(total / kept.sum())
    assert float(divergence_loss(S, T, labels=labels, ignore_index=-1, reduction="mean")) == pytest.approx(
        total / kept.sum() / zs.shape[-1]
    )
    assert float(divergence_loss(S, T, labels=labels, ignore_index=-1, num_items_in_batch=100)) == pytest.approx(
        total / 100
    )
    assert float(divergence_loss(S, T)) == pytest.approx(per_token.mean())  # per token, not per sequence


def test_numpy_in_numpy_out():
    zs, zt = pair(seed=11)
    out = divergence_loss(zs.astype(np.float32), zt.astype(np.float32), divergence="reverse_kl")
    assert isinstance(out, np.ndarray) and out.dtype == np.float32 and out.shape == ()
    assert float(out) == pytest.approx(reference("reverse_kl", probs_of(zt), probs_of(zs)).mean(), rel=1e-6)


@pytest.mark.parametrize(("divergence", "options"), ALL)
@pytest.mark.parametrize("reduction", ["batchmean", "none"])
def test_gradcheck_float64(divergence, options, reduction):
    g = torch.Generator().manual_seed(12)
    s = torch.randn(2, 3, 6, generator=g, dtype=torch.float64, requires_grad=True)
    t = torch.randn(2, 3, 6, generator=g, dtype=torch.float64, requires_grad=True)
    labels = torch.tensor([[0, -100, 2], [3, 4, 5]])

    def fn(a, b):
        return divergence_loss(
            a,
            b,
            divergence=divergence,
            temperature=1.3,
            temperature_scaling=True,
            labels=labels,
            reduction=reduction,
            **options,
        )

    assert torch.autograd.gradcheck(fn, (s, t), eps=1e-6, atol=1e-8, rtol=1e-6)


def test_backward_scaled_and_twice():
    zs, zt = (torch.from_numpy(x) for x in pair(seed=13))
    s = zs.clone().requires_grad_(True)
    divergence_loss(s, zt, divergence="jsd").backward()
    once = s.grad.clone()
    s.grad = None
    loss = divergence_loss(s, zt, divergence="jsd")
    (2.5 * loss).backward(retain_graph=True)
    torch.testing.assert_close(s.grad, 2.5 * once, rtol=1e-14, atol=0)
    (-1.0 * loss).backward(retain_graph=True)  # a second pass through the same graph: a fresh product
    torch.testing.assert_close(s.grad, 1.5 * once, rtol=1e-14, atol=1e-18)
    with pytest.raises(RuntimeError, match="Compute the loss again"):  # the first result was added into
        loss.backward()
    grads = [torch.autograd.grad(3.0 * (loss := divergence_loss(s, zt)), s, retain_graph=True)[0]]
    grads += [torch.autograd.grad(k * loss, s, retain_graph=True)[0] for k in (1.0, 3.0)]
    torch.testing.assert_close(grads[1] * 3, grads[0], rtol=1e-14, atol=1e-18)
    torch.testing.assert_close(grads[2], grads[0], rtol=1e-14, atol=1e-18)
    loss = divergence_loss(s, zt)
    (0.0 * loss).backward(retain_graph=True)
    with pytest.raises(RuntimeError, match="a first incoming gradient other than 0"):
        loss.backward()


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"divergence": "kl"}, InvalidArgumentError, "`divergence` must be one of"),
        ({"divergence": "jsd", "beta": 2.0}, InvalidArgumentError, "`beta` must lie in [0, 1]"),
        ({"divergence": "skew_forward_kl", "skew": 1.5}, InvalidArgumentError, "`skew` must lie in [0, 1]"),
        ({"divergence": "alpha_beta"}, InvalidArgumentError, "needs `alpha`"),
        ({"alpha": 0.5}, InvalidArgumentError, "`alpha` is an option of divergence='alpha_beta' only"),
        ({"divergence": "alpha_beta", "alpha": math.inf}, InvalidArgumentError, "`alpha` must be a finite real"),
        ({"temperature": 0}, InvalidArgumentError, "`temperature` must be > 0"),
        (
            {"temperature_scaling": 1},
            InvalidArgumentError,
            "`temperature_scaling` must be True or False (multiply the loss by T²); found 1. Pass a bool, "
            "e.g. temperature_scaling=True.",
        ),
        ({"kind": "prob"}, InvalidArgumentError, "`kind` (of the teacher) must be"),
        ({"reduction": "avg"}, InvalidArgumentError, "`reduction` must be one of"),
        (
            {"chunk_size": 0},
            InvalidArgumentError,
            "`chunk_size` must be None (automatic) or an integer >= 1 (tokens per chunk); found 0. "
            "Pass e.g. chunk_size=1024, or None to size the chunks automatically.",
        ),
        (
            {"ignore_index": 1.5},
            TypeError,
            "`ignore_index` must be an integer (the label of positions to skip); found 1.5. "
            "Pass the integer your labels use for padding, e.g. ignore_index=-100 (the default).",
        ),
        ({"reduction": "none", "num_items_in_batch": 3}, InvalidArgumentError, "needs reduction='batchmean' or 'mean'"),
        (
            {"num_items_in_batch": -2},
            InvalidArgumentError,
            "`num_items_in_batch` must be a number > 0 (the token count of the whole accumulated batch, on all "
            "ranks); found -2. Pass that count, e.g. (labels != -100).sum(), or None to divide by this call's own "
            "count.",
        ),
        (
            {"num_items_in_batch": torch.tensor(0.0)},
            InvalidArgumentError,
            "`num_items_in_batch` must be > 0 (a count of tokens); found 0.0. Pass the number of kept tokens in "
            "the whole batch, or None when no token is kept.",
        ),
        (
            {"num_items_in_batch": torch.tensor([1, 2])},
            ShapeError,
            "`num_items_in_batch` must be one number (the global token count); found a tensor of shape (2,). "
            "Pass the total, e.g. counts.sum().",
        ),
        ({"labels": torch.zeros(5, dtype=torch.long)}, ShapeError, "`labels` must have the shape"),
    ],
)
def test_bad_options_raise(kwargs, error, message):
    zs, zt = (torch.from_numpy(x) for x in pair(n=4, seed=15))
    with pytest.raises(error) as info:
        divergence_loss(zs, zt, **kwargs)
    assert message in str(info.value)


def test_bad_inputs_raise():
    zs, zt = (torch.from_numpy(x) for x in pair(n=4, seed=16))
    with pytest.raises(ShapeError, match=r"`teacher` and `student` must have the same vocabulary size.*slice"):
        divergence_loss(zs, zt[:, :-2])
    with pytest.raises(ShapeError) as info:
        divergence_loss(zs, zt[:2])
    assert str(info.value) == (
        "`teacher` must have the shape of `student` (4, 23); found (2, 23). Pass one teacher row per student "
        "token, in the same order: run both models on the same batch, and shift or slice both logits alike."
    )
    with pytest.raises(ShapeError) as info:
        divergence_loss(zs[:, :0], zt[:, :0])
    assert str(info.value) == (
        "`student` must have a non-empty vocabulary axis (the last); found shape (4, 0). "
        "Pass the model's logits over its vocabulary, of shape (..., V) with V >= 1."
    )
    with pytest.raises(TypeError, match=r"`teacher` must be a torch\.Tensor or a numpy array"):
        divergence_loss(zs, "teacher")
    with pytest.raises(BackendMismatchError, match="inputs mix numpy"):
        divergence_loss(zs, zt.numpy())
    with pytest.raises(BackendMismatchError, match="must be on one device"):
        divergence_loss(zs, zt.to("meta"))
    probs = torch.softmax(zt, -1)
    with pytest.raises(InvalidDistributionError, match="`teacher` must sum to 1"):
        divergence_loss(zs, probs * 1.1, kind="probs")
    with pytest.raises(InvalidDistributionError, match="`teacher` must hold probabilities"):
        divergence_loss(zs, probs - 0.5, kind="probs")
    with pytest.raises(InvalidDistributionError, match="`teacher` must hold log-probabilities: <= 0"):
        divergence_loss(zs, zt, kind="log_probs")
    with pytest.raises(InvalidDistributionError, match="`teacher` must be normalised"):
        divergence_loss(zs, torch.log_softmax(zt, -1) - 0.5, kind="log_probs")
    with pytest.raises(TypeError, match=r"kind=.probs..*cannot take gradients"):
        divergence_loss(zs, probs.clone().requires_grad_(True), kind="probs")
    bad = zs.clone()
    bad[1, 3] = math.inf
    with pytest.raises(InvalidDistributionError, match="`student` must hold logits"):
        divergence_loss(bad, zt)
    labels = torch.tensor([0, -100, 0, 0])
    assert math.isfinite(float(divergence_loss(bad, zt, labels=labels)))  # the bad token is ignored


def test_masked_vocabulary_entries_are_exact():
    """-inf logits (a masked token): 0 where both mask it, +inf for forward KL where only the student does."""
    zs, zt = (torch.from_numpy(x) for x in pair(n=3, v=6, seed=17))
    s, t = zs.clone(), zt.clone()
    s[:, 0] = t[:, 0] = -math.inf
    for divergence in DIVERGENCES:
        options = {"alpha": 0.5} if divergence == "alpha_beta" else {}
        got = divergence_loss(s, t, divergence=divergence, reduction="none", **options)
        want = divergence_loss(zs[:, 1:], zt[:, 1:], divergence=divergence, reduction="none", **options)
        torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-15)
    s[0, 1] = -math.inf
    assert float(divergence_loss(s, t, reduction="none")[0]) == math.inf
    assert math.isfinite(float(divergence_loss(s, t, divergence="reverse_kl", reduction="none")[0]))


@pytest.mark.parametrize(("divergence", "options"), ALL)
def test_zero_with_zero_gradient_when_the_student_is_the_teacher(divergence, options):
    """True divergences (the skew KLs too: DistiLLM's cross-entropy form is not 0 here, it is the entropy).
    The teacher's logits are the student's shifted by 3 (the same softmax); for TVD, which has no gradient
    at its minimum (any sign pattern is a subgradient), they are the same logits, so that s − t = 0 exactly."""
    z = torch.from_numpy(pair(seed=18)[0]).requires_grad_(True)
    shift = 0.0 if divergence == "tvd" else 3.0
    loss = divergence_loss(z, z.detach() + shift, divergence=divergence, temperature=1.5, **options)
    loss.backward()
    assert abs(float(loss.detach())) <= 1e-14
    assert float(z.grad.abs().max()) <= 1e-14
