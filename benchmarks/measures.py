"""Benchmark of klkit's measures against scipy, the plain numpy one-liner and plain torch.

One run, the same arrays for every method of a case:

1. KL and entropy on one float64 vector of 1e7 entries;
2. KL and entropy on a float64 batch of 1e4 × 1000, reduced over the last axis;
3. cross-entropy from float32 logits, 4096 × 1000, against ``torch.nn.functional.cross_entropy``
   (klkit takes the one-hot labels as ``p`` with ``kind="probs"`` and the logits with ``q_kind="logits"``);
4. KL from float32 logits, 8 × 128,000 (a large vocabulary), with the peak extra memory.

Timing: one warm-up call, then the best of N calls (``time.perf_counter``). torch uses as many
threads as klkit's kernels (``torch.set_num_threads`` = usable cores); numpy and scipy are
single-threaded here. Accuracy: float64 results against a reference computed in extended
precision (see ``reference_*``). Prints rich tables and writes the ``measures`` section of
``docs/benchmarks.md``.

Run: ``.venv/bin/python benchmarks/measures.py`` (or ``benchmarks/run.py measures``);
``--quick`` uses smaller arrays and does not write the document (a smoke run).
"""

from __future__ import annotations

import argparse
import gc
import math
import os
import sys
import time
import tracemalloc
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import scipy.special
import scipy.stats
import torch
import torch.nn.functional as F  # noqa: N812 (torch's convention)
from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parent))
import klkit
from _report import machine_description, usable_cores, write_section

SEED = 20261124
MAX_CALLS = 50  # timed calls per method at most


# ---------------------------------------------------------------------------
# Measurement
# ---------------------------------------------------------------------------


@dataclass
class Row:
    """One method on one case."""

    method: str
    family: str  # "klkit", "klkit-torch", "scipy", "numpy", "torch", "floor"
    seconds: float
    result: Any = None
    rel_error: float | None = None
    memory: float | None = None  # peak extra memory as a fraction of one input
    validate: bool | None = None


@dataclass
class Case:
    """One benchmark case: its rows and notes."""

    key: str
    title: str
    short: str  # label in the targets table, e.g. "KL 1e7"
    rows: list[Row] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def row(self, method: str) -> Row:
        return next(r for r in self.rows if r.method == method)

    def best(self, family: str) -> Row:
        return min((r for r in self.rows if r.family == family), key=lambda r: r.seconds)


def best_time(fn: Callable[[], Any], repeat: int, budget: float) -> tuple[float, Any]:
    """One warm-up call, then the minimum over timed calls: at least ``repeat``, and more (up to
    ``MAX_CALLS``) while the time spent stays under ``budget`` seconds; never fewer than 3.

    The minimum is the least disturbed by other processes sharing the CPU.
    """
    result = fn()
    times: list[float] = []
    spent = 0.0
    while len(times) < 3 or (len(times) < MAX_CALLS and (len(times) < repeat or spent < budget)):
        if len(times) >= 3 and spent > budget * 2:  # slow methods: 3 calls are enough
            break
        start = time.perf_counter()
        fn()
        elapsed = time.perf_counter() - start
        times.append(elapsed)
        spent += elapsed
    return min(times), result


def numpy_peak_memory(fn: Callable[[], Any]) -> int:
    """Peak bytes allocated during ``fn()`` above what was live before, via ``tracemalloc``.

    numpy reports its array buffers to tracemalloc; buffers that numba's runtime allocates
    inside a compiled kernel are not reported (klkit's logits kernel allocates only its
    four per-row outputs, ``rows`` float64 each).
    """
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        tracemalloc.reset_peak()
        fn()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    return max(0, peak - before)


def torch_peak_memory(fn: Callable[[], Any]) -> int:
    """Peak bytes allocated during ``fn()`` by torch's CPU allocator, from the profiler's allocation events.

    ``torch.profiler.profile(profile_memory=True)`` records every allocation and free
    (size, time); the running sum of sizes in time order peaks at the answer.
    """
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        fn()
    events = []

    def walk(nodes: list[Any]) -> None:
        for node in nodes:
            if type(node.extra_fields).__name__ == "_ExtraFields_Allocation":
                events.append((node.start_time_ns, node.extra_fields.alloc_size))
            walk(node.children)

    walk(prof.profiler.kineto_results.experimental_event_tree())
    running = peak = 0
    for _, size in sorted(events):
        running += size
        peak = max(peak, running)
    return peak


def _as_numpy(x: Any) -> np.ndarray:
    return x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)


def relative_error(result: Any, reference: np.ndarray) -> float:
    """Largest ``|result − reference| / |reference|`` over the slices."""
    got = _as_numpy(result).astype(np.float64)
    ref = np.asarray(reference, dtype=np.float64)
    return float(np.max(np.abs(got - ref) / np.abs(ref)))


# ---------------------------------------------------------------------------
# High-precision references
# ---------------------------------------------------------------------------


def _terms(p: np.ndarray, q: np.ndarray | None) -> np.ndarray:
    """Per-element terms in x87 extended precision (np.longdouble, 64-bit mantissa):
    ``p log(p/q)`` for KL, ``−p log p`` for entropy."""
    pl = p.astype(np.longdouble)
    if q is None:
        return -pl * np.log(pl)
    return pl * np.log(pl / q.astype(np.longdouble))


def _exact_sum(terms: np.ndarray) -> float:
    """Correctly rounded sum of extended-precision terms: each term is split exactly into
    float64 ``hi + lo`` and ``math.fsum`` adds all of them without rounding error."""
    hi = terms.astype(np.float64)
    lo = (terms - hi).astype(np.float64)
    return math.fsum(np.concatenate([hi, lo]).tolist())


def reference_vector(p: np.ndarray, q: np.ndarray | None) -> float:
    """KL(p‖q) (or H(p)) of one vector: extended-precision terms, summed exactly with ``math.fsum``."""
    return _exact_sum(_terms(p, q))


def reference_rows(p: np.ndarray, q: np.ndarray | None) -> np.ndarray:
    """Per-row references: extended-precision terms, summed per row in extended precision
    (pairwise; error ≲ log2(1000) · 1.1e-19 relative to Σ|terms|)."""
    return np.sum(_terms(p, q), axis=-1).astype(np.float64)


def mpmath_check(p: np.ndarray, q: np.ndarray, n: int = 100_000, digits: int = 40) -> tuple[float, float]:
    """Validate the reference method on the first ``n`` entries: relative difference between the
    longdouble+fsum reference and mpmath at ``digits`` digits, for KL and for entropy."""
    import mpmath

    mpmath.mp.dps = digits
    ps, qs = p[:n], q[:n]
    kl_mp = mpmath.fsum(mpmath.mpf(a) * mpmath.log(mpmath.mpf(a) / mpmath.mpf(b)) for a, b in zip(ps, qs, strict=True))
    h_mp = -mpmath.fsum(mpmath.mpf(a) * mpmath.log(mpmath.mpf(a)) for a in ps)
    kl_ref, h_ref = reference_vector(ps, qs), reference_vector(ps, None)
    return float(abs((kl_ref - kl_mp) / kl_mp)), float(abs((h_ref - h_mp) / h_mp))


# ---------------------------------------------------------------------------
# Cases
# ---------------------------------------------------------------------------


def _run(
    case: Case,
    method: str,
    family: str,
    fn: Callable[[], Any],
    *,
    repeat: int,
    budget: float,
    reference: Any = None,
    validate: bool | None = None,
    memory: Callable[[], int] | None = None,
    input_bytes: int = 0,
    console: Console,
) -> None:
    seconds, result = best_time(fn, repeat, budget)
    row = Row(method, family, seconds, result, validate=validate)
    if reference is not None and family != "floor":
        row.rel_error = relative_error(result, reference)
    if memory is not None:
        row.memory = memory() / input_bytes
    case.rows.append(row)
    console.log(f"{case.key}: {method}: {seconds * 1e3:.2f} ms")


def float64_cases(n: int, rows: int, cols: int, repeat: int, console: Console) -> tuple[list[Case], list[str]]:
    """KL and entropy, one vector of ``n`` and a batch of ``rows × cols``, float64."""
    rng = np.random.default_rng(SEED)
    p = rng.random(n)
    p /= p.sum()
    q = rng.random(n)
    q /= q.sum()
    pb = rng.random((rows, cols))
    pb /= pb.sum(axis=-1, keepdims=True)
    qb = rng.random((rows, cols))
    qb /= qb.sum(axis=-1, keepdims=True)
    notes = []
    kl_mp, h_mp = mpmath_check(p, q, n=min(n, 100_000))
    notes.append(
        f"Reference check: on the first {min(n, 100_000):,} entries the longdouble+fsum reference agrees with "
        f"mpmath at 40 digits to {kl_mp:.1e} (KL) and {h_mp:.1e} (entropy) relative."
    )
    cases = []
    for batched, (P, Q) in ((False, (p, q)), (True, (pb, qb))):
        shape = f"{rows:,} × {cols:,}" if batched else f"{n:.0e}".replace("+0", "")
        for measure in ("kl", "entropy"):
            cases.append(float64_case(measure, batched, shape, P, Q, repeat, console))
    return cases, notes


def float64_case(
    measure: str, batched: bool, shape: str, P: np.ndarray, Q: np.ndarray, repeat: int, console: Console
) -> Case:
    """One float64 case (KL or entropy; one vector or a batch) with every method on the same arrays."""
    two = measure == "kl"
    title = f"{'KL' if two else 'entropy'}, {shape} float64" + (" (batched, last axis)" if batched else "")
    case = Case(f"{measure}-{'batch' if batched else 'vector'}", title, f"{'KL' if two else 'entropy'} {shape}")
    ref = (reference_rows if batched else reference_vector)(P, Q if two else None)
    pt, qt = torch.from_numpy(P), torch.from_numpy(Q)
    kw = {"repeat": repeat, "budget": 3.0, "reference": ref, "console": console}
    axis = {"axis": -1} if batched else {}
    for validate in (True, False):
        fn = (
            partial(klkit.kl_divergence, P, Q, validate=validate)
            if two
            else partial(klkit.entropy, P, validate=validate)
        )
        _run(case, f"klkit (validate={validate})", "klkit", fn, validate=validate, **kw)
    if two:
        _run(case, "scipy.stats.entropy(p, q)", "scipy", lambda: scipy.stats.entropy(P, Q, **axis), **kw)
        _run(case, "numpy: np.sum(p * np.log(p / q))", "numpy", lambda: np.sum(P * np.log(P / Q), axis=-1), **kw)
    else:
        _run(case, "scipy.stats.entropy(p)", "scipy", lambda: scipy.stats.entropy(P, **axis), **kw)
        _run(case, "numpy: -np.sum(p * np.log(p))", "numpy", lambda: -np.sum(P * np.log(P), axis=-1), **kw)
    for validate in (True, False):
        fn = (
            partial(klkit.kl_divergence, pt, qt, validate=validate)
            if two
            else partial(klkit.entropy, pt, validate=validate)
        )
        _run(case, f"klkit on torch (validate={validate})", "klkit-torch", fn, validate=validate, **kw)
    if two:
        _run(
            case,
            "torch: F.kl_div(q.log(), p, reduction=…)",
            "torch",
            (lambda: F.kl_div(qt.log(), pt, reduction="none").sum(-1))
            if batched
            else (lambda: F.kl_div(qt.log(), pt, reduction="sum")),
            **kw,
        )
        _run(
            case,
            "torch: (p * (p.log() - q.log())).sum(-1)",
            "torch",
            lambda: (pt * (pt.log() - qt.log())).sum(-1),
            **kw,
        )
        _run(case, "torch: (p * (p / q).log()).sum(-1)", "torch", lambda: (pt * (pt / qt).log()).sum(-1), **kw)
        _run(
            case,
            "torch: kl_divergence(Categorical(p), Categorical(q))",
            "torch",
            lambda: torch.distributions.kl_divergence(
                torch.distributions.Categorical(probs=pt, validate_args=False),
                torch.distributions.Categorical(probs=qt, validate_args=False),
            ),
            **kw,
        )
    else:
        _run(
            case,
            "torch: Categorical(probs=p).entropy()",
            "torch",
            lambda: torch.distributions.Categorical(probs=pt, validate_args=False).entropy(),
            **kw,
        )
        _run(case, "torch: -(p * p.log()).sum(-1)", "torch", lambda: -(pt * pt.log()).sum(-1), **kw)
        _run(case, "torch: torch.special.entr(p).sum(-1)", "torch", lambda: torch.special.entr(pt).sum(-1), **kw)
    _run(case, "np.log(p) (the floor: one log per element)", "floor", lambda: np.log(P), **kw)
    return case


def cross_entropy_case(rows: int, classes: int, repeat: int, console: Console) -> Case:
    """Cross-entropy from float32 logits against F.cross_entropy; klkit takes one-hot labels as p."""
    rng = np.random.default_rng(SEED + 1)
    logits = (3 * rng.standard_normal((rows, classes))).astype(np.float32)
    labels = rng.integers(0, classes, size=rows)
    onehot = np.eye(classes, dtype=np.float32)[labels]
    lt, yt, ot = torch.from_numpy(logits), torch.from_numpy(labels), torch.from_numpy(onehot)
    ref = -scipy.special.log_softmax(logits.astype(np.float64), axis=-1)[np.arange(rows), labels]
    case = Case(
        "ce-logits",
        f"cross-entropy from logits, {rows:,} × {classes:,} float32 (p = one-hot labels)",
        f"CE from logits {rows:,} × {classes:,}",
    )
    kw = {"repeat": repeat, "budget": 2.0, "reference": ref, "console": console}
    for validate in (True, False):
        _run(
            case,
            f"klkit numpy (validate={validate})",
            "klkit",
            lambda v=validate: klkit.cross_entropy(onehot, logits, q_kind="logits", validate=v),
            validate=validate,
            **kw,
        )
    _run(
        case,
        "numpy: -(p * scipy.special.log_softmax(z)).sum(-1)",
        "numpy",
        lambda: -(onehot * scipy.special.log_softmax(logits, axis=-1)).sum(-1),
        **kw,
    )
    for validate in (True, False):
        _run(
            case,
            f"klkit on torch (validate={validate})",
            "klkit-torch",
            lambda v=validate: klkit.cross_entropy(ot, lt, q_kind="logits", validate=v),
            validate=validate,
            **kw,
        )
    _run(
        case,
        "torch: F.cross_entropy(z, labels, reduction='none')",
        "torch",
        lambda: F.cross_entropy(lt, yt, reduction="none"),
        **kw,
    )
    _run(
        case,
        "torch: F.cross_entropy(z, p, reduction='none') (probability targets)",
        "torch",
        lambda: F.cross_entropy(lt, ot, reduction="none"),
        **kw,
    )
    _run(
        case, "torch: -(p * F.log_softmax(z, -1)).sum(-1)", "torch", lambda: -(ot * F.log_softmax(lt, -1)).sum(-1), **kw
    )
    case.notes.append("Relative error here is float32 output against a float64 reference (information only).")
    return case


def kl_logits_case(rows: int, vocab: int, repeat: int, console: Console) -> Case:
    """KL from float32 logits of a large vocabulary, with peak extra memory."""
    rng = np.random.default_rng(SEED + 2)
    a = (2 * rng.standard_normal((rows, vocab))).astype(np.float32)
    b = (2 * rng.standard_normal((rows, vocab))).astype(np.float32)
    at, bt = torch.from_numpy(a), torch.from_numpy(b)
    la = scipy.special.log_softmax(a.astype(np.float64), axis=-1)
    lb = scipy.special.log_softmax(b.astype(np.float64), axis=-1)
    ref = np.sum(np.exp(la) * (la - lb), axis=-1)
    case = Case(
        "kl-logits",
        f"KL from logits, {rows} × {vocab:,} float32 (large vocabulary)",
        f"KL from logits {rows} × {vocab:,}",
    )
    kw = {"repeat": repeat, "budget": 2.0, "reference": ref, "console": console, "input_bytes": a.nbytes}

    def numpy_plain() -> np.ndarray:
        lp = scipy.special.log_softmax(a, axis=-1)
        lq = scipy.special.log_softmax(b, axis=-1)
        return np.sum(np.exp(lp) * (lp - lq), axis=-1)

    def torch_manual() -> torch.Tensor:
        lp = F.log_softmax(at, -1)
        return (lp.exp() * (lp - F.log_softmax(bt, -1))).sum(-1)

    for validate in (True, False):
        fn = partial(klkit.kl_divergence, a, b, kind="logits", validate=validate)
        _run(
            case,
            f"klkit numpy (validate={validate})",
            "klkit",
            fn,
            validate=validate,
            memory=lambda fn=fn: numpy_peak_memory(fn),
            **kw,
        )
    _run(
        case,
        "numpy: log_softmax both, sum(exp(lp) * (lp - lq))",
        "numpy",
        numpy_plain,
        memory=lambda: numpy_peak_memory(numpy_plain),
        **kw,
    )
    for validate in (True, False):
        fn = partial(klkit.kl_divergence, at, bt, kind="logits", validate=validate)
        _run(
            case,
            f"klkit on torch (validate={validate})",
            "klkit-torch",
            fn,
            validate=validate,
            memory=lambda fn=fn: torch_peak_memory(fn),
            **kw,
        )

    def kl_div() -> torch.Tensor:
        return F.kl_div(F.log_softmax(bt, -1), F.log_softmax(at, -1), log_target=True, reduction="none").sum(-1)

    def categorical() -> torch.Tensor:
        return torch.distributions.kl_divergence(
            torch.distributions.Categorical(logits=at, validate_args=False),
            torch.distributions.Categorical(logits=bt, validate_args=False),
        )

    for name, fn in (
        ("torch: F.kl_div(log_softmax(b), log_softmax(a), log_target=True)", kl_div),
        ("torch: lp = log_softmax(a); (lp.exp() * (lp - log_softmax(b))).sum(-1)", torch_manual),
        ("torch: kl_divergence(Categorical(logits=a), Categorical(logits=b))", categorical),
    ):
        _run(case, name, "torch", fn, memory=lambda fn=fn: torch_peak_memory(fn), **kw)
    case.notes.append(
        "Memory: peak bytes allocated during one call above what was live before, as a fraction of one input "
        f"({a.nbytes / 2**20:.1f} MiB). numpy: `tracemalloc` (numpy reports its buffers to it; numba-runtime "
        "buffers inside a compiled kernel are not traced: klkit's logits kernel allocates only its 4 per-row "
        "outputs). torch: `torch.profiler.profile(profile_memory=True)`, running sum of the allocation/free "
        "events of torch's CPU allocator in time order."
    )
    case.notes.append("Relative error here is float32-input results against a float64 reference (information only).")
    return case


# ---------------------------------------------------------------------------
# Targets and output
# ---------------------------------------------------------------------------


@dataclass
class Target:
    name: str
    goal: str
    measured: str
    met: bool


def targets(cases: dict[str, Case]) -> list[Target]:
    out = []
    for key, bound in (("kl-vector", 5), ("entropy-vector", 5), ("kl-batch", 4), ("entropy-batch", 4)):
        case = cases[key]
        speedup = case.best("scipy").seconds / case.row("klkit (validate=True)").seconds
        out.append(
            Target(
                f"{case.short}: klkit vs scipy.stats.entropy", f"≥ {bound}× faster", f"{speedup:.1f}×", speedup >= bound
            )
        )
    for key in ("kl-vector", "entropy-vector", "kl-batch", "entropy-batch"):
        case = cases[key]
        ratio = case.row("klkit (validate=True)").seconds / case.best("floor").seconds
        out.append(Target(f"{case.short}: klkit time / np.log time", "≤ 2×", f"{ratio:.2f}×", ratio <= 2))
    for key in ("kl-vector", "entropy-vector", "kl-batch", "entropy-batch"):
        case = cases[key]
        err = max(r.rel_error for r in case.rows if r.family in ("klkit", "klkit-torch"))
        out.append(
            Target(f"{case.short}: klkit relative error (numpy and torch)", "≤ 1e-12", f"{err:.1e}", err <= 1e-12)
        )
    for case in cases.values():
        best = case.best("torch")
        ratio = case.row("klkit on torch (validate=True)").seconds / best.seconds
        out.append(
            Target(
                f"{case.short}: klkit on torch / best plain torch ({best.method.removeprefix('torch: ')})",
                "≤ 1.0× (no slower)",
                f"{ratio:.2f}×",
                ratio <= 1.0,
            )
        )
    case = cases["kl-logits"]
    for method in ("klkit numpy (validate=True)", "klkit on torch (validate=True)"):
        mem = case.row(method).memory
        out.append(
            Target(f"{case.short}: {method} peak extra memory", "≤ 25% of one input", f"{100 * mem:.1f}%", mem <= 0.25)
        )
    return out


def _case_columns(case: Case) -> tuple[list[str], list[list[str]]]:
    scipy_rows = [r for r in case.rows if r.family == "scipy"]
    floor_rows = [r for r in case.rows if r.family == "floor"]
    base = scipy_rows[0] if scipy_rows else None
    if case.key == "ce-logits":
        base = case.row("torch: F.cross_entropy(z, labels, reduction='none')")
    if case.key == "kl-logits":
        base = case.best("torch")
    base_label = {"ce-logits": "F.cross_entropy / this", "kl-logits": "best torch / this"}.get(case.key, "scipy / this")
    header = ["method", "time (ms)", base_label]
    if floor_rows:
        header.append("this / np.log")
    header.append("rel. error")
    has_memory = any(r.memory is not None for r in case.rows)
    if has_memory:
        header.append("peak extra memory / input")
    body = []
    for r in case.rows:
        line = [r.method, f"{r.seconds * 1e3:.2f}", f"{base.seconds / r.seconds:.2f}×"]
        if floor_rows:
            line.append(f"{r.seconds / floor_rows[0].seconds:.2f}×")
        line.append("—" if r.rel_error is None else f"{r.rel_error:.1e}")
        if has_memory:
            line.append("—" if r.memory is None else f"{100 * r.memory:.1f}%")
        body.append(line)
    return header, body


def _markdown_table(header: list[str], body: list[list[str]]) -> str:
    def esc(cell: str) -> str:
        return cell.replace("|", "\\|")

    lines = ["| " + " | ".join(esc(h) for h in header) + " |", "|" + "|".join(["---"] * len(header)) + "|"]
    lines += ["| " + " | ".join(esc(c) for c in row) + " |" for row in body]
    return "\n".join(lines)


def render(
    cases: list[Case], goals: list[Target], notes: list[str], machine: str, repeat: int, console: Console
) -> str:
    md = [
        "## Measures (`benchmarks/measures.py`)",
        "",
        f"Machine: {machine}.",
        "",
        f"Timing: one warm-up call, then the best (minimum) of at least 3 and up to {MAX_CALLS} calls "
        f"({repeat} or more while within a budget of 2–4 s per method). numpy/scipy single-threaded; "
        f"klkit's kernels and torch (`torch.set_num_threads({torch.get_num_threads()})`) use "
        f"{usable_cores()} threads. klkit's defaults are `validate=True`; `validate=False` skips the checks. "
        "`klkit on torch` runs on `torch.from_numpy` views of the same arrays.",
        "",
        "Accuracy: float64 results against a high-precision reference: each term (`p·log(p/q)` or `−p·log p`) "
        "is computed in x87 extended precision (`np.longdouble`, 64-bit mantissa), then for one vector split "
        "exactly into float64 `hi + lo` and summed with `math.fsum` (exact), for batches summed per row in "
        "extended precision. mpmath on 1e7 terms is too slow, so mpmath checks the method on a sample "
        "(below).",
        "",
    ]
    md += [f"- {n}" for n in notes]
    md += [
        "",
        "The numpy one-liners have no validation and no `0·log 0 = 0` rule (a zero in `p` gives NaN), "
        "and scipy renormalises its inputs silently; klkit validates (by default) and handles both.",
        "",
    ]
    md += [
        "### Targets",
        "",
        _markdown_table(
            ["target", "goal", "measured", "met"],
            [[g.name, g.goal, g.measured, "yes" if g.met else "**no**"] for g in goals],
        ),
        "",
    ]
    summary = Table(title="Targets")
    for col in ("target", "goal", "measured", "met"):
        summary.add_column(col)
    for g in goals:
        summary.add_row(g.name, g.goal, g.measured, "[green]yes[/]" if g.met else "[red]no[/]")
    for case in cases:
        header, body = _case_columns(case)
        table = Table(title=case.title)
        for h in header:
            table.add_column(h, justify="left" if h == "method" else "right")
        for line in body:
            table.add_row(*line)
        console.print(table)
        md += [f"### {case.title}", "", _markdown_table(header, body), ""]
        md += [f"- {n}" for n in case.notes]
        if case.notes:
            md.append("")
    console.print(summary)
    return "\n".join(md)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small arrays, no docs written (smoke run)")
    parser.add_argument("--repeat", type=int, default=7, help="best of this many timed calls (default 7)")
    args = parser.parse_args(argv)
    torch.set_num_threads(usable_cores())
    console = Console(highlight=False)
    if args.quick:
        sizes = {"n": 200_000, "rows": 200, "cols": 1000, "ce": (256, 1000), "vocab": (8, 16_000)}
    else:
        sizes = {"n": 10_000_000, "rows": 10_000, "cols": 1000, "ce": (4096, 1000), "vocab": (8, 128_000)}
    machine = machine_description()
    load_start = os.getloadavg()[0]
    console.print(f"[bold]klkit measures benchmark[/] on {machine}")
    cases, notes = float64_cases(sizes["n"], sizes["rows"], sizes["cols"], args.repeat, console)
    cases.append(cross_entropy_case(*sizes["ce"], args.repeat, console))
    cases.append(kl_logits_case(*sizes["vocab"], args.repeat, console))
    goals = targets({c.key: c for c in cases})
    notes.append(
        f"1-minute load average {load_start:.1f} at the start and {os.getloadavg()[0]:.1f} at the end of the run "
        f"({usable_cores()} cores): above the core count, other processes shared the CPU and times are inflated. "
        "Multithreaded calls (torch, klkit's kernels) suffer most when another process holds a core (a thread "
        "waits at a barrier for a descheduled peer); on a shared machine compare several runs before trusting "
        "one ratio."
    )
    markdown = render(cases, goals, notes, machine, args.repeat, console)
    if args.quick:
        console.print("--quick: docs/benchmarks.md not written")
    else:
        path = write_section("measures", markdown)
        console.print(f"wrote the `measures` section of {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
