"""Differential tests: the chunked logits path and the fused linear path against the naive computation,
and invariance of the loss and its gradients under micro-batching with ``num_items_in_batch``.

The naive computation is the plain torch composition written here: full ``tokens × V`` tensors,
log_softmax, the divergence's formula, masking, the reduction, and autograd for the gradients.
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from _torch_memory import torch_peak_bytes
from klkit.distill import divergence_loss, fused_linear_divergence, generalized_jsd_loss
from klkit.errors import InvalidArgumentError, ShapeError

SETTINGS = [
    ("forward_kl", {}),
    ("reverse_kl", {}),
    ("jsd", {"beta": 0.3}),
    ("skew_forward_kl", {"skew": 0.2}),
    ("skew_reverse_kl", {"skew": 0.1}),
    ("tvd", {}),
    ("alpha_beta", {"alpha": 0.6, "beta": 0.5}),
]


@pytest.fixture(autouse=True)
def _one_thread(torch_one_thread):
    """Small tensors: one torch thread (see conftest.torch_one_thread)."""


def naive_per_token(zs, zt, divergence, temperature=1.0, beta=0.5, skew=0.1, alpha=None):
    """The divergence of each token from full log_softmax tensors (autograd does the gradients)."""
    a = F.log_softmax(zs / temperature, -1)
    b = F.log_softmax(zt / temperature, -1)
    s, t = a.exp(), b.exp()
    if divergence == "forward_kl":
        return (t * (b - a)).sum(-1)
    if divergence == "reverse_kl":
        return (s * (a - b)).sum(-1)
    if divergence == "jsd":
        m = (1 - beta) * s + beta * t
        return beta * (t * (b - m.log())).sum(-1) + (1 - beta) * (s * (a - m.log())).sum(-1)
    if divergence == "skew_forward_kl":
        return (t * (b - (skew * t + (1 - skew) * s).log())).sum(-1)
    if divergence == "skew_reverse_kl":
        return (s * (a - (skew * s + (1 - skew) * t).log())).sum(-1)
    if divergence == "tvd":
        return 0.5 * (s - t).abs().sum(-1)
    u = alpha + beta
    return -(t**alpha * s**beta - alpha / u * t**u - beta / u * s**u).sum(-1) / (alpha * beta)


def naive_loss(zs, zt, divergence, labels=None, reduction="batchmean", num_items=None, **options):
    per_token = naive_per_token(zs, zt, divergence, **options)
    keep = torch.ones(per_token.shape, dtype=torch.bool) if labels is None else labels != -100
    per_token = torch.where(keep, per_token, torch.zeros_like(per_token))
    if reduction == "none":
        return per_token
    total = per_token.sum()
    if reduction == "sum":
        return total
    count = num_items if num_items is not None else keep.sum()
    return total / count if reduction == "batchmean" else total / (count * zs.shape[-1])


def grads_of(fn, *tensors, upstream=None):
    leaves = [x.detach().clone().requires_grad_(True) for x in tensors]
    out = fn(*leaves)
    (out if upstream is None else (out * upstream).sum()).backward()
    return [out.detach()] + [x.grad for x in leaves]


def inputs(dtype=torch.float64, shape=(3, 7, 29), seed=0):
    g = torch.Generator().manual_seed(seed)
    zs = torch.randn(shape, generator=g, dtype=torch.float64) * 2
    zt = torch.randn(shape, generator=g, dtype=torch.float64) * 2
    labels = torch.randint(0, shape[-1], shape[:-1], generator=g)
    labels[0, :3] = -100
    labels[2, -1] = -100
    return zs.to(dtype), zt.to(dtype), labels


@pytest.mark.parametrize("chunk_size", [1, 2, 5, None])
@pytest.mark.parametrize("reduction", ["batchmean", "sum", "mean", "none"])
@pytest.mark.parametrize(("divergence", "options"), SETTINGS)
def test_chunked_logits_path_equals_the_naive_one(divergence, options, reduction, chunk_size):
    zs, zt, labels = inputs()
    upstream = (
        torch.rand(labels.shape, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
        if reduction == "none"
        else None
    )
    temperature = 1.7
    got = grads_of(
        lambda s, t: divergence_loss(
            s,
            t,
            divergence=divergence,
            temperature=temperature,
            labels=labels,
            reduction=reduction,
            chunk_size=chunk_size,
            **options,
        ),
        zs,
        zt,
        upstream=upstream,
    )
    want = grads_of(
        lambda s, t: naive_loss(s, t, divergence, labels, reduction, temperature=temperature, **options),
        zs,
        zt,
        upstream=upstream,
    )
    for g, w in zip(got, want, strict=True):
        torch.testing.assert_close(g, w, rtol=1e-11, atol=1e-13)


def linear_inputs(dtype=torch.float64, tokens=(2, 9), hidden=(6, 10), vocab=37, seed=3, bias=True):
    g = torch.Generator().manual_seed(seed)

    def randn(*shape, scale=1.0):
        return (torch.randn(shape, generator=g, dtype=torch.float64) * scale).to(dtype)

    hs, ws = randn(*tokens, hidden[0]), randn(vocab, hidden[0], scale=0.8)
    ht, wt = randn(*tokens, hidden[1]), randn(vocab, hidden[1], scale=0.8)
    bs, bt = (randn(vocab), randn(vocab)) if bias else (None, None)
    labels = torch.randint(0, vocab, tokens, generator=g)
    labels[0, 1] = labels[1, 4] = labels[1, 5] = -100
    return hs, ws, bs, ht, wt, bt, labels


@pytest.mark.parametrize("chunk_size", [1, 4, None])
@pytest.mark.parametrize("teacher_grad", [False, True])
@pytest.mark.parametrize(("divergence", "options"), SETTINGS)
def test_fused_linear_path_equals_the_naive_one(divergence, options, teacher_grad, chunk_size):
    hs, ws, bs, ht, wt, bt, labels = linear_inputs()
    s_leaves = [x.clone().requires_grad_(True) for x in (hs, ws, bs)]
    t_leaves = [x.clone().requires_grad_(teacher_grad) for x in (ht, wt, bt)]
    loss = fused_linear_divergence(
        s_leaves[0],
        s_leaves[1],
        t_leaves[0],
        t_leaves[1],
        student_bias=s_leaves[2],
        teacher_bias=t_leaves[2],
        divergence=divergence,
        temperature=0.8,
        temperature_scaling=True,
        labels=labels,
        chunk_size=chunk_size,
        **options,
    )
    loss.backward()
    n_leaves = [x.clone().requires_grad_(True) for x in (hs, ws, bs, ht, wt, bt)]
    want = 0.64 * naive_loss(
        n_leaves[0] @ n_leaves[1].T + n_leaves[2],
        n_leaves[3] @ n_leaves[4].T + n_leaves[5],
        divergence,
        labels,
        temperature=0.8,
        **options,
    )
    want.backward()
    torch.testing.assert_close(loss.detach(), want.detach(), rtol=1e-12, atol=1e-14)
    for got, ref in zip(s_leaves, n_leaves[:3], strict=True):
        torch.testing.assert_close(got.grad, ref.grad, rtol=1e-11, atol=1e-13)
    for got, ref in zip(t_leaves, n_leaves[3:], strict=True):
        if teacher_grad:
            torch.testing.assert_close(got.grad, ref.grad, rtol=1e-11, atol=1e-13)
        else:
            assert got.grad is None  # a frozen teacher gets no gradient (and costs none)


def test_fused_linear_path_in_float32_and_without_bias():
    hs, ws, _, ht, wt, _, labels = linear_inputs(
        dtype=torch.float32, tokens=(4, 16), hidden=(32, 48), vocab=500, bias=False
    )
    got = grads_of(lambda h, w: fused_linear_divergence(h, w, ht, wt, labels=labels, chunk_size=7), hs, ws)
    want = grads_of(lambda h, w: generalized_jsd_loss(h @ w.T, ht @ wt.T, labels, 0.5), hs.double(), ws.double())
    for g, w in zip(got, want, strict=True):
        assert float((g.double() - w).abs().max()) <= 1e-5 * max(float(w.abs().max()), 1e-3)


@pytest.mark.parametrize("split", [1, 2, 8])
@pytest.mark.parametrize("path", ["logits", "jsd", "fused"])
def test_micro_batches_with_num_items_give_the_full_batch(split, path):
    """8 sequences of unequal kept lengths as 1 × 8, 2 × 4 and 8 × 1 micro-batches: summed losses and
    accumulated gradients equal the full batch's within 1e-6."""
    hs, ws, bs, ht, wt, bt, labels = linear_inputs(
        dtype=torch.float32, tokens=(8, 11), hidden=(12, 20), vocab=90, seed=4
    )
    labels[torch.arange(8)[:, None] < torch.arange(11)[None, :] - 3 - torch.arange(8)[:, None] % 5] = -100
    zt = (ht @ wt.T + bt).detach()
    global_count = int((labels != -100).sum())

    def run(pieces):
        w = ws.clone().requires_grad_(True)
        h = hs.clone().requires_grad_(True)
        total = 0.0
        for rows in torch.arange(8).chunk(pieces):
            if path == "fused":
                loss = fused_linear_divergence(
                    h[rows],
                    w,
                    ht[rows],
                    wt,
                    student_bias=bs,
                    teacher_bias=bt,
                    labels=labels[rows],
                    num_items_in_batch=global_count,
                )
            elif path == "jsd":
                loss = generalized_jsd_loss(
                    h[rows] @ w.T, zt[rows], labels[rows], 0.7, num_items_in_batch=torch.tensor(global_count)
                )
            else:
                loss = divergence_loss(
                    h[rows] @ w.T,
                    zt[rows],
                    divergence="reverse_kl",
                    labels=labels[rows],
                    num_items_in_batch=global_count,
                )
            loss.backward()
            total += float(loss.detach())
        return total, h.grad, w.grad

    full, parts = run(1), run(split)
    assert parts[0] == pytest.approx(full[0], rel=1e-6, abs=1e-7)
    for g, w in zip(parts[1:], full[1:], strict=True):
        assert float((g - w).abs().max()) <= 1e-6 * max(float(w.abs().max()), 1.0)


def test_extra_memory_is_one_chunk():
    """Peak bytes of torch's allocator above inputs and gradients, forward + backward: a chunk, not N × V."""

    n, vocab, chunk = 512, 4096, 16
    g = torch.Generator().manual_seed(5)
    zs = torch.randn(n, vocab, generator=g).requires_grad_(True)
    zt = torch.randn(n, vocab, generator=g)
    one = n * vocab * 4

    def peak(fn):
        zs.grad = None
        return torch_peak_bytes(lambda: fn().backward())

    chunked = peak(lambda: divergence_loss(zs, zt, divergence="jsd", chunk_size=chunk)) - one  # minus the gradient
    plain = peak(lambda: naive_loss(zs, zt, "jsd", beta=0.5)) - one
    assert chunked <= 16 * chunk * vocab * 4, chunked / (chunk * vocab * 4)
    assert plain >= 4 * one  # the naive composition holds several N × V temporaries


def test_fused_errors():
    hs, ws, _, ht, wt, bt, labels = linear_inputs(dtype=torch.float32)
    with pytest.raises(InvalidArgumentError, match="found 'none'"):
        fused_linear_divergence(hs, ws, ht, wt, reduction="none")
    with pytest.raises(ShapeError, match=r"`student_weight` must have shape \(V, 6\)"):
        fused_linear_divergence(hs, ws.T, ht, wt)
    with pytest.raises(ShapeError, match="`teacher_bias` must have shape"):
        fused_linear_divergence(hs, ws, ht, wt, teacher_bias=bt[:-1])
    with pytest.raises(ShapeError, match="same vocabulary size"):
        fused_linear_divergence(hs, ws, ht, wt[:-1])
    with pytest.raises(ShapeError, match="same leading shape"):
        fused_linear_divergence(hs, ws, ht[:1], wt)
    with pytest.raises(ShapeError, match="`labels` must have the shape"):
        fused_linear_divergence(hs, ws, ht, wt, labels=labels[:1])
    bad = ws.clone()
    bad[3, 0] = math.nan
    with pytest.raises(ValueError, match=r"`student logits \(student_hidden @ student_weight.T\)` must hold logits"):
        fused_linear_divergence(hs, bad, ht, wt)


def test_fused_numpy_in_numpy_out():
    hs, ws, bs, ht, wt, bt, labels = linear_inputs(dtype=torch.float32)
    out = fused_linear_divergence(
        hs.numpy(),
        ws.numpy(),
        ht.numpy(),
        wt.numpy(),
        student_bias=bs.numpy(),
        teacher_bias=bt.numpy(),
        labels=labels.numpy(),
    )
    want = generalized_jsd_loss(
        hs.double() @ ws.double().T + bs.double(), ht.double() @ wt.double().T + bt.double(), labels
    )
    assert out.dtype.name == "float32" and out.shape == ()
    assert float(out) == pytest.approx(float(want), rel=1e-6)
