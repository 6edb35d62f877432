"""Training-loop speed: klkit's measures and losses against the calls they replace, same run.

Every case times klkit and its reference on the same inputs, interleaved, at 1 and 2 torch
threads (and klkit threads), and states the target ratio klkit / reference:

1. ``klkit.losses.cross_entropy_loss`` with class-index targets (1024 × 32000, 64 × 32000,
   256 × 50) against ``F.cross_entropy``, forward + backward, float32 (≤ 1.0×, ≤ 1.0×, ≤ 1.5×);
2. ``klkit.kl_divergence(t, x, kind="logits").mean()`` against
   ``F.kl_div(log_softmax(x), log_softmax(t), log_target=True, reduction="batchmean")``,
   1024 × 32000, forward + backward, float32 (≤ 1.0×);
3. KL on length-10 probability vectors: numpy with validation against the numpy one-liner
   ``np.sum(p * np.log(p / q))`` (target: ≤ 15 µs in absolute terms, about 5× the one-liner),
   and torch with and without validation against ``(p * (p.log() - q.log())).sum()`` (≤ 4×, ≤ 2×);
4. ``klkit.kl_divergence`` on two ``Categorical`` batches of 256 × 50 against
   ``torch.distributions.kl_divergence`` (≤ 1.3×).

Timing: one warm-up call, then the best of repeated timed samples, each sample a loop of calls
long enough (~2 ms) that the clock's resolution does not matter. Peak memory (the large cases, at
1 thread): bytes allocated by torch's CPU allocator during one forward + backward above what was
live before (``torch.profiler`` allocation events, gradients included), as a fraction of one input.
Writes the ``training-loop`` section of ``docs/benchmarks.md``.

Run: ``.venv/bin/python benchmarks/training_loop.py`` (or ``benchmarks/run.py training_loop``);
``--quick`` uses smaller sizes and does not write the document.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch
import torch.nn.functional as F  # noqa: N812 (torch's convention)
from torch.distributions import Categorical
from torch.distributions import kl_divergence as torch_distribution_kl

sys.path.insert(0, str(Path(__file__).resolve().parent))
import klkit
from _report import machine_description, usable_cores, write_section
from klkit.losses import cross_entropy_loss
from measures import torch_peak_memory

SEED = 20261201


class Case(NamedTuple):
    title: str
    klkit: dict[str, Callable[[], object]]  # one or more klkit variants
    reference: tuple[str, Callable[[], object]]
    target: str  # e.g. "≤ 1.0×"
    limit: float  # the target as a ratio (or, with absolute_us, a time in µs)
    input_bytes: int = 0  # > 0: measure peak memory too
    absolute_us: bool = False


def best_per_call(fn: Callable[[], object], budget: float = 1.0) -> float:
    """Seconds per call: the best sample, each sample ≥ ~2 ms of back-to-back calls."""
    fn()
    start = time.perf_counter()
    fn()
    once = max(time.perf_counter() - start, 1e-7)
    number = max(1, int(2e-3 / once))
    best = float("inf")
    spent = 0.0
    samples = 0
    while samples < 5 or (spent < budget and samples < 200):
        start = time.perf_counter()
        for _ in range(number):
            fn()
        elapsed = time.perf_counter() - start
        best = min(best, elapsed / number)
        spent += elapsed
        samples += 1
        if samples >= 3 and spent > 4 * budget:
            break
    return best


def fwd_bwd(loss: Callable[..., torch.Tensor], *inputs: torch.Tensor) -> Callable[[], None]:
    """One forward + backward of ``loss`` on fresh leaves of ``inputs`` (float ones require grad)."""

    def run() -> None:
        leaves = [x.detach().requires_grad_(x.is_floating_point()) for x in inputs]
        loss(*leaves).backward()

    return run


def cross_entropy_case(rows: int, classes: int, target: float) -> Case:
    g = torch.Generator().manual_seed(SEED)
    z = torch.randn(rows, classes, generator=g) * 3
    y = torch.randint(classes, (rows,), generator=g)
    return Case(
        f"`cross_entropy_loss`, index targets, {rows} × {classes}",
        {"klkit": fwd_bwd(cross_entropy_loss, z, y)},
        ("F.cross_entropy", fwd_bwd(F.cross_entropy, z, y)),
        f"≤ {target}×",
        target,
        z.nbytes if z.nbytes > 1 << 20 else 0,
    )


def logits_kl_case(rows: int, classes: int) -> Case:
    g = torch.Generator().manual_seed(SEED + 1)
    t = torch.randn(rows, classes, generator=g) * 2
    x = torch.randn(rows, classes, generator=g) * 2

    def torch_kl(t_: torch.Tensor, x_: torch.Tensor) -> torch.Tensor:
        return F.kl_div(F.log_softmax(x_, -1), F.log_softmax(t_, -1), log_target=True, reduction="batchmean")

    return Case(
        f'`kl_divergence(t, x, kind="logits").mean()`, {rows} × {classes}',
        {"klkit": fwd_bwd(lambda a, b: klkit.kl_divergence(a, b, kind="logits").mean(), t, x)},
        ("F.kl_div(log_softmax, log_softmax, log_target=True)", fwd_bwd(torch_kl, t, x)),
        "≤ 1.0×",
        1.0,
        t.nbytes,
    )


def small_vector_cases() -> list[Case]:
    rng = np.random.default_rng(SEED)
    p, q = rng.dirichlet(np.ones(10)), rng.dirichlet(np.ones(10))
    tp, tq = torch.tensor(p), torch.tensor(q)
    numpy_one_liner = ("np.sum(p * np.log(p / q))", lambda: np.sum(p * np.log(p / q)))
    torch_one_liner = ("(p * (p.log() - q.log())).sum()", lambda: (tp * (tp.log() - tq.log())).sum())
    return [
        Case(
            "KL, length-10 vectors, numpy, validate on",
            {"klkit": lambda: klkit.kl_divergence(p, q)},
            numpy_one_liner,
            "≤ 15 µs",
            15.0,
            absolute_us=True,
        ),
        Case(
            "KL, length-10 tensors, validate on",
            {"klkit": lambda: klkit.kl_divergence(tp, tq)},
            torch_one_liner,
            "≤ 4×",
            4.0,
        ),
        Case(
            "KL, length-10 tensors, validate off",
            {"klkit": lambda: klkit.kl_divergence(tp, tq, validate=False)},
            torch_one_liner,
            "≤ 2×",
            2.0,
        ),
    ]


def categorical_case(rows: int, classes: int) -> Case:
    g = torch.Generator().manual_seed(SEED + 2)
    a = Categorical(logits=torch.randn(rows, classes, generator=g))
    b = Categorical(logits=torch.randn(rows, classes, generator=g))
    return Case(
        f"`kl_divergence` on `Categorical`, {rows} × {classes}",
        {"klkit": lambda: klkit.kl_divergence(a, b)},
        ("torch.distributions.kl_divergence", lambda: torch_distribution_kl(a, b)),
        "≤ 1.3×",
        1.3,
    )


def measure(case: Case, threads: list[int]) -> dict[str, list[float]]:
    """Seconds per call of every method at each thread count, methods interleaved."""
    methods = {**case.klkit, case.reference[0]: case.reference[1]}
    times: dict[str, list[float]] = {name: [] for name in methods}
    for t in threads:
        torch.set_num_threads(t)
        klkit.set_num_threads(t)
        for name, fn in methods.items():
            times[name].append(best_per_call(fn))
            print(f"{case.title}: {name}, {t} thread(s): {times[name][-1] * 1e3:.4f} ms", flush=True)
    torch.set_num_threads(1)
    klkit.set_num_threads(None)
    return times


def _ms(seconds: float) -> str:
    return f"{seconds * 1e3:.3f}" if seconds >= 1e-3 else f"{seconds * 1e6:.1f} µs"


def rows_of(case: Case, times: dict[str, list[float]]) -> list[str]:
    ref_name = case.reference[0]
    ref = times[ref_name]
    memory = {}
    if case.input_bytes:
        fns = {**case.klkit, ref_name: case.reference[1]}
        memory = {name: torch_peak_memory(fn) / case.input_bytes for name, fn in fns.items()}
    out = []
    for name in case.klkit:
        mine = times[name]
        ratios = [a / b for a, b in zip(mine, ref, strict=True)]
        met = (min(mine) * 1e6 <= case.limit) if case.absolute_us else (min(ratios) <= case.limit)
        mem = f"{100 * memory[name]:.0f}% vs {100 * memory[ref_name]:.0f}%" if memory else "—"
        out.append(
            f"| {case.title} | {' / '.join(_ms(s) for s in mine)} | `{ref_name}` "
            f"{' / '.join(_ms(s) for s in ref)} | {' / '.join(f'{r:.2f}×' for r in ratios)} | "
            f"{case.target} | {'met' if met else 'missed'} | {mem} |"
        )
    return out


WHY = [
    "Where a target is missed, or a number looks odd, why:",
    "",
    "- `cross_entropy_loss` at 64 × 32000 (the fused Function, tiles of 2^18 entries) is about 1.9× "
    "`F.cross_entropy` at 1 thread on this AMD EPYC machine, before and after the small-case fast lane "
    "(1.86× on main, 1.88× here in one A/B run with thread CPU time); it was 0.92× on the Intel Xeon of "
    "the earlier run. Not investigated further.",
    "- Small cases (`cross_entropy_loss` 128 × 60 and 256 × 50, length-10 tensors, `Categorical`): the front "
    "door decides these in one test (plain CPU tensors, default options) and goes straight to the compiled "
    "kernel or `F.cross_entropy`; what remains is that test, the validation look at shared memory and the "
    "result's conversion.",
    "- Times at 2 threads far above the 1-thread ones (e.g. 9 ms for a 40 µs case) are other processes "
    "holding a core during the measurement (the load average above is over the core count), not klkit's cost.",
]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, no docs written")
    args = parser.parse_args(argv)
    big, mid = ((128, 8000), (64, 8000)) if args.quick else ((1024, 32000), (64, 32000))
    cases = [
        cross_entropy_case(*big, 0.65),
        cross_entropy_case(*mid, 1.0),
        cross_entropy_case(256, 50, 1.5),
        cross_entropy_case(128, 60, 1.5),
        logits_kl_case(*big),
        *small_vector_cases(),
        categorical_case(256, 50),
    ]
    threads = [t for t in (1, 2) if t <= max(usable_cores(), 1)] or [1]
    load = os.getloadavg()[0]
    label = " / ".join(f"{t} thread{'s' if t > 1 else ''}" for t in threads)
    lines = [
        "## Training-loop speed (`benchmarks/training_loop.py`)",
        "",
        f"Machine: {machine_description()}.",
        "",
        f"Times per call ({label}; ms unless marked µs); the large cases are forward + backward in float32. "
        "Ratio = klkit / reference in the same run. A target is met when it holds at one of the thread counts "
        "(the absolute µs target: at the faster one). Peak memory: torch's CPU allocator during one "
        "forward + backward at 1 thread, gradients included, klkit vs reference, as a fraction of one input.",
        "",
        "| case | klkit | reference | ratio | target | | peak memory / input |",
        "|---|---|---|---|---|---|---|",
    ]
    for case in cases:
        lines += rows_of(case, measure(case, threads))
    lines += [
        "",
        f"1-minute load average {load:.1f} at the start and {os.getloadavg()[0]:.1f} at the end "
        f"({usable_cores()} usable cores).",
        "",
        *WHY,
    ]
    markdown = "\n".join(lines)
    print(markdown)
    if not args.quick:
        print(f"wrote the `training-loop` section of {write_section('training-loop', markdown)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
