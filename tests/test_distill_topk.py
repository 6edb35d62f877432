"""Top-k teachers: topk_teacher against numpy, the collapsed loss against the collapse done by hand,
k = V against the full loss, the data-processing inequality, gradients and errors."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy.special import log_softmax as np_log_softmax
from scipy.special import rel_entr

from klkit.distill import TopKTeacher, divergence_loss, topk_teacher
from klkit.errors import BackendMismatchError, InvalidArgumentError, InvalidDistributionError, ShapeError

SETTINGS = [
    ("forward_kl", {}),
    ("reverse_kl", {}),
    ("jsd", {"beta": 0.4}),
    ("skew_forward_kl", {"skew": 0.1}),
    ("skew_reverse_kl", {"skew": 0.2}),
    ("tvd", {}),
]


@pytest.fixture(autouse=True)
def _one_thread(torch_one_thread):
    """Small tensors: one torch thread (see conftest.torch_one_thread)."""


def logits(n=30, v=50, seed=0, scale=2.5):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, v)) * scale, rng.standard_normal((n, v)) * scale


def collapse(p, index):
    """(probabilities at index, 1 − their sum), float64."""
    top = np.take_along_axis(p, index, axis=-1)
    return np.concatenate([top, 1 - top.sum(-1, keepdims=True)], axis=-1)


def test_topk_teacher_matches_numpy():
    _, zt = logits()
    top = topk_teacher(torch.from_numpy(zt), 7, temperature=1.5)
    lp = np_log_softmax(zt / 1.5, axis=-1)
    order = np.argsort(-lp, axis=-1)[:, :7]
    np.testing.assert_array_equal(top.indices.numpy(), order)
    np.testing.assert_allclose(top.log_probs.numpy(), np.take_along_axis(lp, order, -1), rtol=1e-13)
    tail = 1 - np.exp(np.take_along_axis(lp, order, -1)).sum(-1)
    np.testing.assert_allclose(np.exp(top.tail_log_prob.numpy()), tail, rtol=1e-11)
    assert top.temperature == 1.5
    as_numpy = topk_teacher(zt, 7, temperature=1.5)
    assert isinstance(as_numpy.indices, np.ndarray) and as_numpy.log_probs.dtype == np.float64
    full = topk_teacher(torch.from_numpy(zt).float(), zt.shape[1])
    assert bool(torch.all(full.tail_log_prob == -math.inf)) and full.log_probs.dtype == torch.float32
    half = topk_teacher(torch.from_numpy(zt).bfloat16().reshape(5, 6, -1), 3)
    assert half.log_probs.dtype == torch.float32 and half.indices.shape == (5, 6, 3)


@pytest.mark.parametrize(("divergence", "options"), SETTINGS)
@pytest.mark.parametrize("k", [1, 5, 20])
def test_collapsed_loss_matches_the_collapse_by_hand(divergence, options, k):
    zs, zt = logits(seed=k)
    top = topk_teacher(torch.from_numpy(zt), k)
    got = divergence_loss(torch.from_numpy(zs), top, divergence=divergence, reduction="none", **options).numpy()
    s_hat = collapse(np.exp(np_log_softmax(zs, -1)), top.indices.numpy())
    t_hat = collapse(np.exp(np_log_softmax(zt, -1)), top.indices.numpy())
    if divergence == "forward_kl":
        want = rel_entr(t_hat, s_hat).sum(-1)
    elif divergence == "reverse_kl":
        want = rel_entr(s_hat, t_hat).sum(-1)
    elif divergence == "jsd":
        b = options["beta"]
        m = (1 - b) * s_hat + b * t_hat
        want = b * rel_entr(t_hat, m).sum(-1) + (1 - b) * rel_entr(s_hat, m).sum(-1)
    elif divergence == "skew_forward_kl":
        want = rel_entr(t_hat, 0.1 * t_hat + 0.9 * s_hat).sum(-1)
    elif divergence == "skew_reverse_kl":
        want = rel_entr(s_hat, 0.2 * s_hat + 0.8 * t_hat).sum(-1)
    else:
        want = 0.5 * np.abs(s_hat - t_hat).sum(-1)
    np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-13)


@pytest.mark.parametrize("reduction", ["batchmean", "none"])
def test_numpy_topk_teacher_gives_numpy_equal_to_torch(reduction):
    zs, zt = logits(n=6, v=12, seed=3)
    labels = np.array([0, -100, 2, 3, -100, 5])
    top = topk_teacher(zt, 4, temperature=1.2)
    assert all(isinstance(x, np.ndarray) for x in top[:3])
    got = divergence_loss(zs, top, temperature=1.2, labels=labels, reduction=reduction)
    assert isinstance(got, np.ndarray) and got.dtype == np.float64
    # the collapse by hand (scipy), ignored positions 0
    s_hat = collapse(np.exp(np_log_softmax(zs / 1.2, -1)), top.indices)
    t_hat = collapse(np.exp(np_log_softmax(zt / 1.2, -1)), top.indices)
    per_token = rel_entr(t_hat, s_hat).sum(-1) * (labels != -100)
    want = per_token if reduction == "none" else per_token.sum() / 4
    np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-14)
    as_torch = divergence_loss(
        torch.from_numpy(zs),
        topk_teacher(torch.from_numpy(zt), 4, temperature=1.2),
        temperature=1.2,
        labels=torch.from_numpy(labels),
        reduction=reduction,
    )
    np.testing.assert_array_equal(got, as_torch.numpy())
    single = divergence_loss(zs.astype(np.float32), topk_teacher(zt.astype(np.float32), 4), reduction=reduction)
    assert single.dtype == np.float32


@pytest.mark.parametrize(("divergence", "options"), SETTINGS)
def test_data_processing_inequality_and_k_equals_v(divergence, options):
    zs, zt = logits(seed=2)
    S, T = torch.from_numpy(zs), torch.from_numpy(zt)
    full = divergence_loss(S, T, divergence=divergence, reduction="none", temperature=1.3, **options)
    previous = torch.zeros_like(full)
    for k in (1, 4, 16, 48):
        part = divergence_loss(
            S, topk_teacher(T, k, temperature=1.3), divergence=divergence, reduction="none", temperature=1.3, **options
        )
        assert bool((part <= full + 1e-12).all()), k  # collapsing can only lose information
        assert bool((part >= previous - 1e-12).all()), k  # top-k buckets refine top-(k−1) buckets
        previous = part
    every = divergence_loss(
        S,
        topk_teacher(T, zs.shape[1], temperature=1.3),
        divergence=divergence,
        temperature=1.3,
        reduction="none",
        **options,
    )
    torch.testing.assert_close(every, full, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize(("divergence", "options"), [*SETTINGS, ("alpha_beta", {"alpha": 0.5, "beta": 0.7})])
def test_gradients_of_the_collapsed_loss(divergence, options):
    g = torch.Generator().manual_seed(3)
    zs = torch.randn(2, 3, 9, generator=g, dtype=torch.float64, requires_grad=True)
    top = topk_teacher(torch.randn(2, 3, 9, generator=g, dtype=torch.float64), 3, temperature=0.9)
    labels = torch.tensor([[1, -100, 2], [0, 4, 5]])
    assert torch.autograd.gradcheck(
        lambda s: divergence_loss(s, top, divergence=divergence, temperature=0.9, labels=labels, **options),
        (zs,),
        eps=1e-6,
        atol=1e-8,
    )
    # and against autograd through the collapse written with plain torch ops (forward KL)
    if divergence == "forward_kl":
        lp = torch.log_softmax(zs / 0.9, -1)
        rest = torch.logsumexp(lp.scatter(-1, top.indices, -math.inf), -1, keepdim=True)
        s_hat = torch.cat([lp.gather(-1, top.indices), rest], -1)
        t_hat = torch.cat([top.log_probs, top.tail_log_prob[..., None]], -1)
        naive = ((t_hat.exp() * (t_hat - s_hat)).sum(-1) * (labels != -100)).sum() / 5
        (want,) = torch.autograd.grad(naive, zs)
        (got,) = torch.autograd.grad(divergence_loss(zs, top, temperature=0.9, labels=labels), zs)
        torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-15)


def test_topk_errors():
    zs, zt = (torch.from_numpy(x) for x in logits(n=4, v=10))
    top = topk_teacher(zt, 3)
    with pytest.raises(
        InvalidArgumentError, match=r"`k` must lie in \[1, 10\] \(the vocabulary size\); found 11\. Pass e\.g\. k=min"
    ):
        topk_teacher(zt, 11)
    with pytest.raises(TypeError, match=r"`k` must be an integer \(tokens kept per position\); found 2\.0\. Pass"):
        topk_teacher(zt, 2.0)
    with pytest.raises(InvalidArgumentError, match="`temperature` must be > 0"):
        topk_teacher(zt, 2, temperature=0)
    bad = zt.clone()
    bad[2, 2] = math.nan
    with pytest.raises(InvalidDistributionError, match="`teacher_logits` must hold logits"):
        topk_teacher(bad, 2)
    with pytest.raises(InvalidArgumentError, match="must equal the temperature the TopKTeacher was built with"):
        divergence_loss(zs, top, temperature=2.0)
    with pytest.raises(ShapeError, match="a TopKTeacher for a student of shape"):
        divergence_loss(zs[:3], top)
    with pytest.raises(InvalidArgumentError, match=r"`teacher.indices` must lie in \[0, 7\]"):
        divergence_loss(zs[:, :8], top._replace(indices=top.indices.clamp(max=9).fill_(9), vocab_size=8))
    with pytest.raises(InvalidArgumentError, match="must be distinct"):
        divergence_loss(zs, top._replace(indices=torch.zeros_like(top.indices)))
    with pytest.raises(InvalidDistributionError, match="sum to 1"):
        divergence_loss(zs, top._replace(tail_log_prob=torch.zeros_like(top.tail_log_prob)))
    with pytest.raises(BackendMismatchError, match=r"inputs mix numpy \(`teacher`\) and torch \(`student`\)"):
        divergence_loss(zs, topk_teacher(zt.numpy(), 3))
    with pytest.raises(BackendMismatchError, match=r"inputs mix numpy \(`student`\) and torch \(`teacher`\)"):
        divergence_loss(zs.numpy(), top)
    with pytest.raises(
        TypeError,
        match=r"`teacher\.indices` must be an array of the student's library \(torch\.Tensor or numpy array\); "
        r"found list\. Build the TopKTeacher with topk_teacher\(teacher_logits, k\)\.",
    ):
        divergence_loss(zs, top._replace(indices=top.indices.tolist()))
    with pytest.raises(
        TypeError, match=r"`teacher\.indices` must hold integer token ids; found dtype torch\.float64\. Cast them"
    ):
        divergence_loss(zs, top._replace(indices=top.indices.double()))
    assert isinstance(top, TopKTeacher) and top.vocab_size == 10
    with pytest.raises(InvalidArgumentError, match=r"`teacher.vocab_size` must be the teacher's vocabulary size"):
        divergence_loss(zs, TopKTeacher(top.indices, top.log_probs, top.tail_log_prob))


@pytest.mark.parametrize(("teacher_vocab", "student_vocab", "k"), [(12, 5, 2), (8, 10, 3), (6, 5, 1)])
def test_a_topk_teacher_of_another_vocabulary_is_refused(teacher_vocab, student_vocab, k):
    """The top-k ids of a larger vocabulary may all be below the student's size (a teacher whose top tokens
    are its first ones), so the ids cannot reveal the mismatch: the stored vocabulary size does."""
    zt = torch.arange(teacher_vocab, 0, -1, dtype=torch.float64)[None].repeat(3, 1)  # top ids 0, 1, ...
    zs = torch.randn(3, student_vocab, dtype=torch.float64)
    top = topk_teacher(zt, k)
    assert int(top.indices.max()) < student_vocab
    with pytest.raises(ShapeError, match=f"built on a vocabulary of {teacher_vocab} tokens and the student has "):
        divergence_loss(zs, top)


@pytest.mark.parametrize("kind", ["logits", "log_probs", "probs"])
def test_kind_beside_a_topk_teacher_is_refused(kind):
    zs, zt = (torch.from_numpy(x) for x in logits(n=4, v=10))
    with pytest.raises(InvalidArgumentError, match=f"`kind` does not apply to a TopKTeacher.*found kind='{kind}'"):
        divergence_loss(zs, topk_teacher(zt, 3), kind=kind)
