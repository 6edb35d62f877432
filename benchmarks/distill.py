"""Distillation losses: memory and speed of ``klkit.distill`` against the plain composition, same run.

1. Chunked logits path (``generalized_jsd_loss``, β = 0.5, and ``divergence_loss``, forward KL), float32,
   V = 128,256, forward + backward: at N = 1024 tokens (where the naive composition fits) the time
   against TRL's formula written out (log_softmax, a logsumexp mixture, F.kl_div; autograd), target
   ≤ 1.3×; at N = 4096 klkit's extra peak memory, target ≤ 0.35 GB (the naive one is estimated from
   N = 1024, as it would need ~17 GB here).
2. Fused linear path (``fused_linear_divergence``), H = 256, V = 128,256: at N = 1024 the time per token
   against ``h @ W.T`` for both models followed by TRL's formula (target ≤ 1.2×); at N = 256 the
   gradients' largest error against that naive composition in float64 (target ≤ 1e-5 of their scale;
   the naive composition in float32 is shown beside, it misses by more); at N = 8192 the peak RSS of a
   fresh process that runs one forward + backward (target ≤ 2 GB) and its time per token.
3. Top-k teacher (``topk_teacher``): bytes per token and the forward KL's relative error for
   k ∈ {1, 8, 64, 256}, on a Zipf-shaped teacher (LM-like) and a perturbed student.
4. TRL's own ``generalized_jsd_loss`` against klkit's values, when ``trl`` is importable.

Extra peak memory: bytes allocated by torch's CPU allocator during one forward + backward (profiler
allocation events), minus the gradient of the logits that both return. Times: one warm-up, then the
best of a few runs, klkit and the reference interleaved.

Run: ``.venv/bin/python benchmarks/distill.py`` (or ``benchmarks/run.py distill``); ``--quick`` uses
small sizes and does not write the document.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F  # noqa: N812 (torch's convention)

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _report import machine_description, usable_cores, write_section
from klkit.distill import divergence_loss, fused_linear_divergence, generalized_jsd_loss, topk_teacher
from measures import torch_peak_memory

SEED = 20261207
VOCAB = 128_256
GB = 1e9


def trl_formula(student_logits, teacher_logits, labels=None, beta=0.5, temperature=1.0, reduction="batchmean"):
    """TRL's generalized_jsd_loss, written out: the naive composition (full N × V temporaries)."""
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
        jsd = b * F.kl_div(mixture, teacher_log_probs, reduction="none", log_target=True) + (1 - b) * F.kl_div(
            mixture, student_log_probs, reduction="none", log_target=True
        )
    if labels is not None:
        mask = labels != -100
        jsd = jsd[mask]
    if reduction == "batchmean":
        return jsd.sum() / mask.sum() if labels is not None else jsd.sum() / jsd.size(0)
    return jsd.sum() if reduction == "sum" else jsd.mean() if reduction == "mean" else jsd


def logits(n: int, vocab: int = VOCAB, seed: int = SEED) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, vocab, generator=g) * 2, torch.randn(n, vocab, generator=g) * 2


def fwd_bwd(loss: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor) -> Callable[[], None]:
    def run() -> None:
        leaf = x.detach().requires_grad_(True)
        loss(leaf).backward()

    return run


def best_of(fns: dict[str, Callable[[], object]], repeats: int, threads: list[int]) -> dict[str, list[float]]:
    """Seconds of one call at each thread count: warm-up, then the best of ``repeats``, interleaved."""
    best = {name: [] for name in fns}
    for t in threads:
        torch.set_num_threads(t)
        for fn in fns.values():
            fn()
        times = dict.fromkeys(fns, math.inf)
        for _ in range(repeats):
            for name, fn in fns.items():
                start = time.perf_counter()
                fn()
                times[name] = min(times[name], time.perf_counter() - start)
        for name in fns:
            best[name].append(times[name])
            print(f"  {name}, {t} thread(s): {times[name]:.3f} s", flush=True)
    return best


def _joined(values: list[float], fmt: str) -> str:
    return " / ".join(format(v, fmt) for v in values)


# ---------------------------------------------------------------------------
# 1. chunked logits path
# ---------------------------------------------------------------------------


def logits_section(n_time: int, n_memory: int, vocab: int, repeats: int, threads: list[int]) -> tuple[list[str], dict]:
    zs, zt = logits(n_time, vocab)
    cases = {
        "generalized JSD, β = 0.5": (
            lambda s: generalized_jsd_loss(s, zt, beta=0.5),
            lambda s: trl_formula(s, zt, beta=0.5),
        ),
        "forward KL(t‖s)": (lambda s: divergence_loss(s, zt), lambda s: trl_formula(s, zt, beta=0.0)),
    }
    grad_bytes = zs.nbytes
    rows, numbers = [], {}
    for title, (ours, naive) in cases.items():
        print(title, flush=True)
        times = best_of({"klkit": fwd_bwd(ours, zs), "naive": fwd_bwd(naive, zs)}, repeats, threads)
        mem_ours = torch_peak_memory(fwd_bwd(ours, zs)) - grad_bytes
        mem_naive = torch_peak_memory(fwd_bwd(naive, zs)) - grad_bytes
        ratios = [a / b for a, b in zip(times["klkit"], times["naive"], strict=True)]
        numbers[title] = {
            "n": n_time,
            "threads": threads,
            "klkit_s": times["klkit"],
            "naive_s": times["naive"],
            "ratio": ratios,
            "extra_memory_klkit": mem_ours,
            "extra_memory_naive": mem_naive,
        }
        rows.append(
            f"| {title} | {n_time:,} | {_joined(times['klkit'], '.2f')} s | {_joined(times['naive'], '.2f')} s "
            f"| {_joined(ratios, '.2f')}× | ≤ 1.3× | {'met' if min(ratios) <= 1.3 else 'missed'} | "
            f"{mem_ours / GB:.3f} GB | {mem_naive / GB:.2f} GB |"
        )
        print(rows[-1], flush=True)
    zs, zt = logits(n_memory, vocab, seed=SEED + 1)
    torch.set_num_threads(max(threads))
    for title, ours in (
        ("generalized JSD, β = 0.5", lambda s: generalized_jsd_loss(s, zt, beta=0.5)),
        ("forward KL(t‖s)", lambda s: divergence_loss(s, zt)),
    ):
        start = time.perf_counter()
        mem = torch_peak_memory(fwd_bwd(ours, zs)) - zs.nbytes
        seconds = time.perf_counter() - start
        naive_estimate = numbers[title]["extra_memory_naive"] * n_memory / n_time
        numbers[title].update(
            {
                "n_memory": n_memory,
                "extra_memory_klkit_large": mem,
                "extra_memory_naive_estimate_large": naive_estimate,
                "klkit_large_s": seconds,
            }
        )
        rows.append(
            f"| {title} | {n_memory:,} | {seconds:.1f} s (profiled, {max(threads)} threads) | does not fit | "
            f"— | — | — | **{mem / GB:.3f} GB** (≤ 0.35: {'met' if mem <= 0.35 * GB else 'missed'}) | "
            f"≈ {naive_estimate / GB:.1f} GB (estimated, × {n_memory // n_time} from N = {n_time:,}) |"
        )
        print(rows[-1], flush=True)
    return rows, numbers


# ---------------------------------------------------------------------------
# 2. fused linear path
# ---------------------------------------------------------------------------


def linear_inputs(n: int, hidden: int, vocab: int, seed: int = SEED + 2) -> tuple[torch.Tensor, ...]:
    g = torch.Generator().manual_seed(seed)
    hs, ht = torch.randn(n, hidden, generator=g), torch.randn(n, hidden, generator=g)
    ws = torch.randn(vocab, hidden, generator=g) / math.sqrt(hidden) * 3
    wt = torch.randn(vocab, hidden, generator=g) / math.sqrt(hidden) * 3
    return hs, ws, ht, wt


def fused_run(hs, ws, ht, wt, naive: bool) -> tuple[torch.Tensor, torch.Tensor]:
    h, w = hs.detach().requires_grad_(True), ws.detach().requires_grad_(True)
    if naive:
        with torch.no_grad():
            zt = ht @ wt.T
        trl_formula(h @ w.T, zt, beta=0.5).backward()
    else:
        fused_linear_divergence(h, w, ht, wt, divergence="jsd").backward()
    return h.grad, w.grad


def gradient_error(n: int, hidden: int, vocab: int) -> dict[str, float]:
    """Largest difference of ∂/∂h and ∂/∂W from the naive composition in float64 (the truth), relative to
    the largest entry: klkit's fused path in float32, and the naive composition in float32."""
    inputs = linear_inputs(n, hidden, vocab)
    truth = fused_run(*(x.double() for x in inputs), True)

    def error(grads: tuple[torch.Tensor, torch.Tensor]) -> float:
        return max(float((a.double() - b).abs().max() / b.abs().max()) for a, b in zip(grads, truth, strict=True))

    return {"klkit_float32": error(fused_run(*inputs, False)), "naive_float32": error(fused_run(*inputs, True))}


def fused_section(
    n_compare: int, n_accuracy: int, n_large: int, hidden: int, vocab: int, repeats: int, threads: list[int]
) -> tuple[list[str], dict]:
    inputs = linear_inputs(n_compare, hidden, vocab)
    print("fused linear", flush=True)
    times = best_of(
        {"klkit": lambda: fused_run(*inputs, False), "naive": lambda: fused_run(*inputs, True)}, repeats, threads
    )
    ours, ref = fused_run(*inputs, False), fused_run(*inputs, True)
    versus_naive32 = max(float((a - b).abs().max()) / float(b.abs().max()) for a, b in zip(ours, ref, strict=True))
    accuracy = gradient_error(n_accuracy, hidden, vocab)
    per_token = {k: [x / n_compare * 1e6 for x in v] for k, v in times.items()}
    ratios = [a / b for a, b in zip(times["klkit"], times["naive"], strict=True)]
    mem_ours = torch_peak_memory(lambda: fused_run(*inputs, False))
    mem_naive = torch_peak_memory(lambda: fused_run(*inputs, True))
    command = [sys.executable, __file__, "--fused-child", str(n_large), str(hidden), str(vocab), str(max(threads))]
    child = json.loads(subprocess.run(command, check=True, capture_output=True, text=True).stdout.splitlines()[-1])
    met = accuracy["klkit_float32"] <= 1e-5
    rows = [
        f"| {n_compare:,} | {_joined(per_token['klkit'], '.0f')} µs | {_joined(per_token['naive'], '.0f')} µs | "
        f"{_joined(ratios, '.2f')}× ({'met' if min(ratios) <= 1.2 else 'missed'} ≤ 1.2×) | "
        f"{accuracy['klkit_float32']:.1e} ({'met' if met else 'missed'} ≤ 1e-5); naive in float32: "
        f"{accuracy['naive_float32']:.1e}; klkit vs naive, both float32: {versus_naive32:.1e} | "
        f"{mem_ours / GB:.2f} GB vs {mem_naive / GB:.2f} GB allocated |",
        f"| {n_large:,} | {child['seconds'] / n_large * 1e6:.0f} µs ({max(threads)} threads) | does not fit (≈ "
        f"{mem_naive * n_large / n_compare / GB:.0f} GB) | — | — | peak RSS **{child['peak_rss'] / GB:.2f} GB** "
        f"(≤ 2: {'met' if child['peak_rss'] <= 2 * GB else 'missed'}; {child['base_rss'] / GB:.2f} GB before the "
        "loss) |",
    ]
    for row in rows:
        print(row, flush=True)
    return rows, {
        "n": n_compare,
        "threads": threads,
        "per_token_us": per_token,
        "ratio": ratios,
        "gradient_error_vs_float64": accuracy,
        "n_accuracy": n_accuracy,
        "klkit_vs_naive_float32": versus_naive32,
        "allocated_klkit": mem_ours,
        "allocated_naive": mem_naive,
        "large": child,
    }


def fused_child(n: int, hidden: int, vocab: int, threads: int) -> None:
    """One forward + backward in this fresh process; prints its peak RSS (bytes) and the time.

    The peak is ``VmHWM`` of /proc/self/status, which starts afresh at exec (``ru_maxrss`` would carry
    over the parent's peak, which holds the earlier cases' N × V tensors).
    """
    torch.set_num_threads(threads)

    def status(field: str) -> int:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(f"{field}:"):
                return int(line.split()[1]) * 1024
        return 0

    hs, ws, ht, wt = linear_inputs(n, hidden, vocab)
    base = status("VmRSS")
    start = time.perf_counter()
    fused_run(hs, ws, ht, wt, False)
    seconds = time.perf_counter() - start
    print(json.dumps({"seconds": seconds, "peak_rss": status("VmHWM"), "base_rss": base}))


# ---------------------------------------------------------------------------
# 3. top-k teacher
# ---------------------------------------------------------------------------


def topk_section(n: int, vocab: int) -> tuple[list[str], dict]:
    """A Zipf-shaped teacher (logits −1.5 log rank + N(0, 0.3²), ranks shuffled per token: about 3 nats of
    entropy at V = 128,256, like a language model's next token) and a student that adds N(0, 0.5²) to its
    logits; forward KL(t‖s) from the top-k collapse against the full one."""
    g = torch.Generator().manual_seed(SEED + 3)
    ranks = torch.argsort(torch.rand(n, vocab, generator=g), dim=-1).float() + 1
    zt = -1.5 * ranks.log() + 0.3 * torch.randn(n, vocab, generator=g)
    zs = zt + 0.5 * torch.randn(n, vocab, generator=g)
    full = divergence_loss(zs, zt, reduction="none")
    entropy = float(-(torch.softmax(zt, -1) * torch.log_softmax(zt, -1)).sum(-1).mean())
    rows, numbers = [], {"teacher_entropy": entropy, "forward_kl_full": float(full.mean())}
    for k in (1, 8, 64, 256):
        top = topk_teacher(zt, k)
        part = divergence_loss(zs, top, reduction="none")
        error = float(((full - part) / full).mean())
        mass = float(top.log_probs.exp().sum(-1).mean())
        storage = k * (8 + 4) + 4
        numbers[k] = {"bytes_per_token": storage, "relative_error": error, "teacher_mass_kept": mass}
        rows.append(
            f"| {k} | {storage:,} B ({storage / (4 * vocab):.2%} of float32) | {mass:.3f} | "
            f"{float(part.mean()):.4f} | {error:.1%} |"
        )
        print(rows[-1], flush=True)
    return rows, numbers


# ---------------------------------------------------------------------------
# 4. TRL itself
# ---------------------------------------------------------------------------


def trl_section() -> tuple[list[str], dict]:
    try:
        try:
            from trl.experimental.gkd import GKDTrainer
        except ImportError:
            from trl import GKDTrainer
        import trl
    except Exception as error:  # any import failure: the peer is optional
        return [f"`trl` is not importable here ({type(error).__name__}); install the `bench` extra to compare."], {}
    g = torch.Generator().manual_seed(SEED + 4)
    worst = {"float32": 0.0, "float64": 0.0}
    for dtype in (torch.float32, torch.float64):
        zs, zt = torch.randn(4, 64, 300, generator=g).to(dtype) * 3, torch.randn(4, 64, 300, generator=g).to(dtype) * 3
        labels = torch.randint(0, 300, (4, 64), generator=g)
        labels[:, :10] = -100
        for beta in (0.0, 0.1, 0.5, 0.9, 1.0):
            for temperature in (1.0, 2.0):
                for reduction in ("batchmean", "sum", "mean"):
                    theirs = GKDTrainer.generalized_jsd_loss(zs, zt, labels, beta, temperature, reduction)
                    ours = generalized_jsd_loss(zs, zt, labels, beta, temperature, reduction)
                    key = str(dtype).removeprefix("torch.")
                    worst[key] = max(worst[key], abs(float(ours) - float(theirs)) / abs(float(theirs)))
    zt = torch.randn(256, 1000, generator=g) * 2
    zs = (zt + 0.01 * torch.randn(256, 1000, generator=g)).bfloat16()
    theirs = GKDTrainer.generalized_jsd_loss(zs, zt.bfloat16(), beta=0.5, reduction="none").float().sum(-1)
    ours = (
        generalized_jsd_loss(zs, zt.bfloat16(), torch.zeros(256, dtype=torch.long), 0.5, reduction="none")
        .float()
        .sum(-1)
    )
    negative = (int((theirs < 0).sum()), int((ours < 0).sum()))
    rows = [
        f"TRL {trl.__version__}: largest relative difference of the loss over β ∈ {{0, 0.1, 0.5, 0.9, 1}}, "
        f"T ∈ {{1, 2}}, reductions batchmean/sum/mean, 4 × 64 tokens, V = 300, some labels -100: "
        f"**{worst['float32']:.1e}** in float32, **{worst['float64']:.1e}** in float64. "
        f"On 256 near-equal bf16 tokens, tokens with a negative JSD: TRL {negative[0]}, klkit {negative[1]}."
    ]
    return rows, {
        "trl_version": trl.__version__,
        "largest_relative_difference": worst,
        "negative_tokens_bf16": {"trl": negative[0], "klkit": negative[1]},
    }


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "--fused-child":
        fused_child(*(int(a) for a in argv[1:5]))
        return 0
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, no docs written")
    args = parser.parse_args(argv)
    vocab = 16_000 if args.quick else VOCAB
    sizes = (128, 256, 128, 512, 1, 64) if args.quick else (1024, 4096, 1024, 8192, 2, 256)
    load = os.getloadavg()[0]
    threads = [t for t in (1, 2) if t <= max(usable_cores(), 1)] or [1]
    logit_rows, logit_numbers = logits_section(sizes[0], sizes[1], vocab, sizes[4], threads)
    fused_rows, fused_numbers = fused_section(sizes[2], sizes[5], sizes[3], 256, vocab, sizes[4], threads)
    torch.set_num_threads(max(threads))
    topk_rows, topk_numbers = topk_section(64 if args.quick else 256, vocab)
    trl_rows, trl_numbers = trl_section()
    lines = [
        "## Distillation losses (`benchmarks/distill.py`)",
        "",
        f"Machine: {machine_description()}.",
        "",
        f"float32, V = {vocab:,}, forward + backward; times at {' / '.join(map(str, threads))} torch thread(s), "
        "a target met when it holds at one of them. *Naive*: TRL's "
        "`generalized_jsd_loss` written out (log_softmax of both, a `logsumexp` mixture, `F.kl_div`; autograd). "
        "*Extra memory*: bytes allocated by torch's CPU allocator during forward + backward, minus the logits' "
        "gradient that both return.",
        "",
        "### Chunked logits path",
        "",
        "| loss | tokens | klkit | naive | ratio | target | | klkit extra memory | naive extra memory |",
        "|---|---|---|---|---|---|---|---|---|",
        *logit_rows,
        "",
        "### Fused linear path (H = 256; ∂/∂h and ∂/∂W of the student)",
        "",
        f"| tokens | klkit per token | naive per token | ratio | gradients: largest error / scale against the naive "
        f"composition in float64 ({sizes[5]} tokens) | memory |",
        "|---|---|---|---|---|---|",
        *fused_rows,
        "",
        "### Top-k teacher (storage: k int64 indices + k float32 log-probabilities + 1 tail, per token)",
        "",
        f"Zipf-shaped teacher (entropy {topk_numbers['teacher_entropy']:.2f} nats), student = teacher logits + "
        f"N(0, 0.5²); full forward KL {topk_numbers['forward_kl_full']:.4f} nats per token. The collapsed KL is a "
        "lower bound (data-processing inequality).",
        "",
        "| k | bytes per token | teacher mass in the top k | forward KL, top-k | relative error |",
        "|---|---|---|---|---|",
        *topk_rows,
        "",
        "### TRL",
        "",
        *trl_rows,
        "",
        f"1-minute load average {load:.1f} at the start and {os.getloadavg()[0]:.1f} at the end "
        f"({usable_cores()} usable cores, shared).",
    ]
    markdown = "\n".join(lines)
    print(markdown)
    numbers = {"logits": logit_numbers, "fused": fused_numbers, "topk": topk_numbers, "trl": trl_numbers}
    print(json.dumps(numbers, default=str))
    if not args.quick:
        print(f"wrote the `distill` section of {write_section('distill', markdown)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
