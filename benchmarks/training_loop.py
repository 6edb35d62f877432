"""Benchmark of klkit's losses against the torch calls they replace, forward + backward, float32.

Cases (the same tensors for every method of a case), each at 1 and 2 torch threads:

1. ``cross_entropy_loss`` with class-index targets, 1024 × 32000, 64 × 32000 and 256 × 50, against
   ``F.cross_entropy``;
2. KL from logits, 1024 × 32000: ``klkit._torch_functions.logits_kl(t, x).mean()`` and the public
   ``klkit.kl_divergence(t, x, kind="logits").mean()`` against
   ``F.kl_div(log_softmax(x), log_softmax(t), log_target=True, reduction="batchmean")``.

Timing: one warm-up call, then the best of the timed calls (``time.perf_counter``). Memory: peak
bytes allocated by torch's CPU allocator during one forward + backward above what was live before
(``torch.profiler`` allocation events), as a fraction of one input. Writes the ``losses`` section
of ``docs/benchmarks.md``.

Run: ``.venv/bin/python benchmarks/losses.py`` (or ``benchmarks/run.py losses``); ``--quick`` uses
smaller sizes and does not write the document.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F  # noqa: N812 (torch's convention)

sys.path.insert(0, str(Path(__file__).resolve().parent))
import klkit
from _report import machine_description, usable_cores, write_section
from klkit._torch_functions import logits_kl
from klkit.losses import cross_entropy_loss
from measures import best_time, torch_peak_memory

SEED = 20261201


def fwd_bwd(loss: Callable[..., torch.Tensor], *inputs: torch.Tensor) -> Callable[[], None]:
    """One forward + backward of ``loss`` on fresh leaves of ``inputs`` (float ones require grad)."""
    def run() -> None:
        leaves = [x.detach().requires_grad_(x.is_floating_point()) for x in inputs]
        loss(*leaves).backward()

    return run


def ce_methods(rows: int, classes: int) -> tuple[str, dict[str, Callable[[], None]], int]:
    g = torch.Generator().manual_seed(SEED)
    z = torch.randn(rows, classes, generator=g) * 3
    y = torch.randint(classes, (rows,), generator=g)
    return (f"cross_entropy_loss, index targets, {rows} × {classes}",
            {"klkit cross_entropy_loss": fwd_bwd(cross_entropy_loss, z, y),
             "torch F.cross_entropy": fwd_bwd(F.cross_entropy, z, y)}, z.nbytes)


def kl_methods(rows: int, classes: int) -> tuple[str, dict[str, Callable[[], None]], int]:
    g = torch.Generator().manual_seed(SEED + 1)
    t = torch.randn(rows, classes, generator=g) * 2
    x = torch.randn(rows, classes, generator=g) * 2

    def torch_kl(t_: torch.Tensor, x_: torch.Tensor) -> torch.Tensor:
        return F.kl_div(F.log_softmax(x_, -1), F.log_softmax(t_, -1), log_target=True, reduction="batchmean")

    return (f"KL(t‖x) from logits, mean over rows, {rows} × {classes}",
            {"klkit._torch_functions.logits_kl": fwd_bwd(lambda a, b: logits_kl(a, b).mean(), t, x),
             "klkit.kl_divergence(kind='logits')": fwd_bwd(
                 lambda a, b: klkit.kl_divergence(a, b, kind="logits").mean(), t, x),
             "torch F.kl_div(log_softmax…, batchmean)": fwd_bwd(torch_kl, t, x)}, t.nbytes)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, no docs written")
    args = parser.parse_args(argv)
    big, mid = ((128, 8000), (64, 8000)) if args.quick else ((1024, 32000), (64, 32000))
    cases = [(ce_methods(*big), 1.0), (ce_methods(*mid), 1.0), (ce_methods(256, 50), 1.5), (kl_methods(*big), 1.0)]
    threads = [t for t in (1, 2) if t <= max(usable_cores(), 1)] or [1]
    load = os.getloadavg()[0]
    lines = ["## Losses (`benchmarks/losses.py`)", "", f"Machine: {machine_description()}.", "",
             "Forward + backward, float32, best of the timed calls after one warm-up. Ratio: klkit time / torch "
             "time (target in brackets). Peak memory: bytes allocated by torch's CPU allocator during one "
             "forward + backward at 1 thread above what was live before (`torch.profiler` allocation events; "
             "the gradients themselves included), as a fraction of one input.", "",
             "| case | method | " + " | ".join(f"{t} thread{'s' if t > 1 else ''} (ms)" for t in threads)
             + " | ratio (" + ", ".join(f"{t}T" for t in threads) + ") | peak memory / input |",
             "|---|---|" + "---|" * len(threads) + "---|---|"]
    for (title, methods, nbytes), target in cases:
        times: dict[str, list[float]] = {m: [] for m in methods}
        for t in threads:
            torch.set_num_threads(t)
            for name, fn in methods.items():
                seconds, _ = best_time(fn, repeat=7, budget=2.0)
                times[name].append(seconds)
                print(f"{title}: {name}, {t} thread(s): {seconds * 1e3:.3f} ms", flush=True)
        torch.set_num_threads(1)
        memory = {name: torch_peak_memory(fn) / nbytes for name, fn in methods.items()} if nbytes > 1 << 20 else {}
        ref = next(m for m in methods if m.startswith("torch"))
        for name in methods:
            ratio = ", ".join(f"{a / b:.2f}×" for a, b in zip(times[name], times[ref], strict=True))
            cells = " | ".join(f"{s * 1e3:.3f}" for s in times[name])
            mem = f"{100 * memory[name]:.0f}%" if name in memory else "—"
            goal = "" if name == ref else f" (≤ {target}×)"
            lines.append(f"| {title} | {name} | {cells} | {ratio if name != ref else '1'}{goal} | {mem} |")
    lines += ["", f"1-minute load average {load:.1f} at the start and {os.getloadavg()[0]:.1f} at the end "
              f"({usable_cores()} usable cores): other processes shared the CPU, so ratios from one run are "
              "indicative; both sides of a ratio ran interleaved in the same run.",
              "`cross_entropy_loss` takes the fused Function (`klkit._torch_functions.logits_cross_entropy`) for "
              "inputs above one tile (262,144 entries) and `F.cross_entropy` itself, after klkit's checks, for "
              "smaller float32/float64 inputs with class-index targets (256 × 50 here). "
              "`klkit.kl_divergence` on torch is wired to `logits_kl` by the measures work, not yet here."]
    markdown = "\n".join(lines)
    print(markdown)
    if not args.quick:
        print(f"wrote the `losses` section of {write_section('losses', markdown)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
