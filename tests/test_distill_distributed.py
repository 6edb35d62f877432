"""Data-parallel distillation under torch.distributed (gloo, CPU, 2 spawned processes).

The ranks hold unequal numbers of sequences and of kept tokens. Each computes its loss with
``num_items_in_batch`` = the all-reduced token count, back-propagates, and all-reduces (sums) the
gradients: the result must equal the single-process gradient of the whole batch, for the fused
linear path and for the logits path.
"""

from __future__ import annotations

import os
import sys

import pytest
import torch

from klkit.distill import divergence_loss, fused_linear_divergence

VOCAB, HIDDEN, TEACHER_HIDDEN, LENGTH = 50, 8, 12, 9
SPLIT = (3, 5)  # sequences on rank 0 and rank 1


def batch():
    """8 sequences: hidden states, output layers and labels with a ragged tail of -100s."""
    g = torch.Generator().manual_seed(20261207)
    hs = torch.randn(8, LENGTH, HIDDEN, generator=g)
    ht = torch.randn(8, LENGTH, TEACHER_HIDDEN, generator=g)
    ws = torch.randn(VOCAB, HIDDEN, generator=g) * 0.5
    wt = torch.randn(VOCAB, TEACHER_HIDDEN, generator=g) * 0.5
    labels = torch.randint(0, VOCAB, (8, LENGTH), generator=g)
    lengths = torch.tensor([9, 2, 7, 4, 9, 1, 6, 3])
    labels[torch.arange(LENGTH)[None, :] >= lengths[:, None]] = -100
    return hs, ht, ws, wt, labels


def gradients(hs, ht, ws, wt, labels, num_items):
    """(∂/∂W_s and ∂/∂h_s of the fused loss, ∂/∂W_s of the logits loss)."""
    w = ws.clone().requires_grad_(True)
    h = hs.clone().requires_grad_(True)
    fused_linear_divergence(
        h, w, ht, wt, divergence="jsd", beta=0.3, labels=labels, num_items_in_batch=num_items
    ).backward()
    w2 = ws.clone().requires_grad_(True)
    divergence_loss(
        hs @ w2.T, ht @ wt.T, divergence="reverse_kl", labels=labels, num_items_in_batch=num_items, chunk_size=4
    ).backward()
    return w.grad, h.grad, w2.grad


def worker(rank: int, world: int, init_file: str, out_dir: str) -> None:
    import torch.distributed as dist

    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    try:
        hs, ht, ws, wt, labels = batch()
        rows = slice(0, SPLIT[0]) if rank == 0 else slice(SPLIT[0], SPLIT[0] + SPLIT[1])
        local = (labels[rows] != -100).sum()
        count = local.clone()
        dist.all_reduce(count)  # the global number of kept tokens
        grads = gradients(hs[rows], ht[rows], ws, wt, labels[rows], count)
        w_fused, h_fused, w_logits = grads
        dist.all_reduce(w_fused)  # summed, not averaged: num_items_in_batch already divides by the global count
        dist.all_reduce(w_logits)
        torch.save(
            {"w_fused": w_fused, "h_fused": h_fused, "w_logits": w_logits, "local": int(local)},
            os.path.join(out_dir, f"rank{rank}.pt"),
        )
    finally:
        dist.destroy_process_group()


@pytest.mark.slow
def test_all_reduced_gradients_equal_the_single_process_ones(tmp_path):
    import torch.distributed as dist
    import torch.multiprocessing as mp

    if not dist.is_available() or not dist.is_gloo_available():
        pytest.skip("torch.distributed with gloo is not available in this build")
    sys.path.insert(0, os.path.dirname(__file__))  # the spawned children import this module by name
    mp.spawn(worker, args=(2, str(tmp_path / "init"), str(tmp_path)), nprocs=2, join=True)
    results = [torch.load(tmp_path / f"rank{r}.pt") for r in range(2)]
    hs, ht, ws, wt, labels = batch()
    w_fused, h_fused, w_logits = gradients(hs, ht, ws, wt, labels, None)
    assert results[0]["local"] != results[1]["local"]  # unequal token counts per rank
    for r in results:
        torch.testing.assert_close(r["w_fused"], w_fused, rtol=1e-5, atol=1e-7)
        torch.testing.assert_close(r["w_logits"], w_logits, rtol=1e-5, atol=1e-7)
    torch.testing.assert_close(torch.cat([results[0]["h_fused"], results[1]["h_fused"]]), h_fused, rtol=1e-5, atol=1e-7)
