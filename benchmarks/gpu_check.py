"""One command for a GPU machine: the CUDA tests, then the distillation and cross-entropy losses timed.

``make gpu-check`` (or ``python3 benchmarks/gpu_check.py``) needs only a ``python3`` with torch (and, for
the Liger-Kernel rows, triton and liger_kernel; transformers is not used here): no network, no installs;
klkit is taken from ``src/``. It

1. runs the tests whose id names CUDA (``pytest -k cuda`` on the test files that mention it; with
   ``--device cpu`` they are only collected, so the selection is checked without a GPU);
2. times each loss, forward + backward, on the same inputs: the distillation losses (generalized JSD,
   β = 0.5) from logits — naive torch (TRL's formula, autograd), klkit's chunked
   ``generalized_jsd_loss``, Liger-Kernel's ``LigerJSD`` — and from hidden states and output layers —
   naive (``h @ W.T``, then the formula), klkit's ``fused_linear_divergence``, Liger's
   ``LigerFusedLinearJSD``; the cross-entropy loss — ``F.cross_entropy``, klkit's
   ``cross_entropy_loss``, Liger's ``LigerCrossEntropyLoss`` — and fused with the output layer —
   naive, Liger's ``LigerFusedLinearCrossEntropyLoss`` (klkit has no fused cross-entropy);
3. writes ``gpu_check.json`` and ``gpu_check.md`` (one table) into ``--out`` (and, with ``--docs``, the
   table into the ``gpu-check`` section of ``docs/benchmarks.md``).

Per row: the best time of a few runs (synchronised), the extra peak memory (CUDA: the allocator's peak
beyond what it held before; CPU: torch's CPU allocator, from the profiler), and the largest error against
the same loss in float64 (naive formula): of the loss, relative, and of the gradients, relative to their
largest entry. A peer that is not importable or that fails is a row that says so.

``--device cpu --quick`` (small sizes, tests only collected) is the smoke test the suite runs.
"""

from __future__ import annotations

import argparse
import functools
import importlib.util
import json
import math
import os
import platform
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "benchmarks"))

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402,N812 (torch's convention)

MB = 2**20


def naive_jsd(student: torch.Tensor, teacher: torch.Tensor, beta: float = 0.5) -> torch.Tensor:
    """TRL's generalized JSD written out (log-softmax of both, a logsumexp mixture, kl_div), mean per token."""
    s, t = F.log_softmax(student, -1), F.log_softmax(teacher, -1)
    b = torch.tensor(beta, dtype=s.dtype, device=s.device)
    m = torch.logsumexp(torch.stack([s + torch.log1p(-b), t + torch.log(b)]), dim=0)
    jsd = b * F.kl_div(m, t, reduction="none", log_target=True) + (1 - b) * F.kl_div(
        m, s, reduction="none", log_target=True
    )
    return jsd.sum() / student.shape[0]


def environment(device: str) -> dict:
    info = {"python": platform.python_version(), "torch": torch.__version__, "device": device}
    if device == "cuda":
        info["gpu"] = torch.cuda.get_device_name(0)
        info["cuda"] = torch.version.cuda
    else:
        info["cpu"] = platform.processor() or platform.machine()
    for name in ("triton", "transformers", "liger_kernel"):
        try:
            module = __import__(name)
            info[name] = getattr(module, "__version__", "importable")
        except Exception as error:  # a missing or broken peer is reported, not fatal
            info[name] = f"not importable ({type(error).__name__})"
    return info


def cuda_tests(device: str, timeout: float) -> dict:
    """``pytest -k cuda`` on the test files that mention CUDA; only collected on a CPU."""
    files = sorted(str(p.relative_to(ROOT)) for p in (ROOT / "tests").glob("test_*.py") if "cuda" in p.read_text())
    missing = [name for name in ("pytest", "hypothesis") if importlib.util.find_spec(name) is None]
    if missing:  # nothing may be installed on the GPU machine: say so instead of failing
        return {"files": files, "status": f"not run: {', '.join(missing)} not installed for {sys.executable}"}
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-k", "cuda", "-o", "addopts=",
               "--continue-on-collection-errors", *files]  # fmt: skip
    if device != "cuda":
        command.append("--collect-only")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT / "src"), os.environ.get("PYTHONPATH")]))}
    try:
        done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=timeout, env=env)
    except subprocess.TimeoutExpired:
        return {"files": files, "status": f"timed out after {timeout:.0f} s"}
    lines = [line for line in done.stdout.strip().splitlines() if line.strip()]
    return {"files": files, "collect_only": device != "cuda", "exit_code": done.returncode,
            "summary": lines[-1] if lines else done.stderr.strip()[-300:]}  # fmt: skip


def synchronize(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def extra_peak(fn: Callable[[], object], device: str) -> int:
    if device == "cuda":
        synchronize(device)
        torch.cuda.reset_peak_memory_stats()
        before = torch.cuda.memory_allocated()
        fn()
        synchronize(device)
        return torch.cuda.max_memory_allocated() - before
    from measures import torch_peak_memory

    return torch_peak_memory(fn)


def best_time(fn: Callable[[], object], device: str, repeats: int) -> float:
    fn()
    best = math.inf
    for _ in range(repeats):
        synchronize(device)
        start = time.perf_counter()
        fn()
        synchronize(device)
        best = min(best, time.perf_counter() - start)
    return best


def run_case(loss: Callable[..., torch.Tensor], inputs: tuple[torch.Tensor, ...], grad_of: tuple[int, ...]):
    """Loss and the gradients of ``inputs[i]`` for i in ``grad_of`` (fresh leaves)."""
    leaves = [x.detach().requires_grad_(i in grad_of) if x.is_floating_point() else x for i, x in enumerate(inputs)]
    value = loss(*leaves)
    value.backward()
    return value.detach(), [leaves[i].grad for i in grad_of]


def errors(result, truth) -> tuple[float, float]:
    (value, grads), (value64, grads64) = result, truth
    loss_error = abs(float(value.double()) - float(value64)) / abs(float(value64))
    grad_error = max(
        float((g.double() - g64).abs().max() / g64.abs().max()) for g, g64 in zip(grads, grads64, strict=True)
    )
    return loss_error, grad_error


def cases(peers: dict) -> dict[str, list[tuple[str, Callable | None, str]]]:
    """Per group: (name, loss function or None, note); the first entry is the float64 reference."""
    try:
        from klkit.distill import fused_linear_divergence, generalized_jsd_loss
        from klkit.losses import cross_entropy_loss
    except Exception as error:  # klkit's own dependencies missing on this machine: rows that say so
        reason = f"klkit not importable here ({type(error).__name__}: {error})"
        return {group: [entries[0], (entries[1][0], None, reason)] for group, entries in _naive_only().items()}
    liger = peers.get("liger")
    groups: dict[str, list] = {
        "jsd from logits": [
            ("naive torch (TRL's formula)", lambda s, t: naive_jsd(s, t), ""),
            ("klkit generalized_jsd_loss (chunked)", lambda s, t: generalized_jsd_loss(s, t, beta=0.5), ""),
        ],
        "jsd fused with the output layer": [
            ("naive torch (h @ W.T, then the formula)", lambda hs, ws, ht, wt: naive_jsd(hs @ ws.T, ht @ wt.T), ""),
            ("klkit fused_linear_divergence", lambda hs, ws, ht, wt: fused_linear_divergence(hs, ws, ht, wt), ""),
        ],
        "cross-entropy from logits": [
            ("torch F.cross_entropy", lambda z, y: F.cross_entropy(z, y), ""),
            ("klkit cross_entropy_loss", lambda z, y: cross_entropy_loss(z, y), ""),
        ],
        "cross-entropy fused with the output layer": [
            ("naive torch (h @ W.T, then F.cross_entropy)", lambda h, w, y: F.cross_entropy(h @ w.T, y), ""),
            ("klkit", None, "klkit has no fused cross-entropy"),
        ],
    }
    names = {
        "jsd from logits": "LigerJSD",
        "jsd fused with the output layer": "LigerFusedLinearJSD",
        "cross-entropy from logits": "LigerCrossEntropyLoss",
        "cross-entropy fused with the output layer": "LigerFusedLinearCrossEntropyLoss",
    }
    for group, name in names.items():
        if liger is None:
            groups[group].append((f"Liger-Kernel {name}", None, peers["liger_reason"]))
            continue
        groups[group].append((f"Liger-Kernel {name}", _liger_case(group, getattr(liger, name)), ""))
    return groups


def _naive_only() -> dict[str, list[tuple[str, Callable | None, str]]]:
    """The float64 references' rows and klkit's names, for when klkit cannot be imported."""
    return {
        "jsd from logits": [("naive torch (TRL's formula)", naive_jsd, ""), ("klkit generalized_jsd_loss", None, "")],
        "jsd fused with the output layer": [
            ("naive torch (h @ W.T, then the formula)", lambda hs, ws, ht, wt: naive_jsd(hs @ ws.T, ht @ wt.T), ""),
            ("klkit fused_linear_divergence", None, ""),
        ],
        "cross-entropy from logits": [
            ("torch F.cross_entropy", F.cross_entropy, ""),
            ("klkit cross_entropy_loss", None, ""),
        ],
        "cross-entropy fused with the output layer": [
            ("naive torch (h @ W.T, then F.cross_entropy)", lambda h, w, y: F.cross_entropy(h @ w.T, y), ""),
            ("klkit", None, ""),
        ],
    }


def _liger_case(group: str, module: type) -> Callable[..., torch.Tensor]:
    """Liger's module called on this group's inputs (its own argument order)."""
    if group == "jsd from logits":
        jsd = module(beta=0.5)
        return lambda s, t: jsd(F.log_softmax(s, -1), F.log_softmax(t, -1))
    if group == "jsd fused with the output layer":
        fused_jsd = module(jsd_beta=0.5)
        return lambda hs, ws, ht, wt: fused_jsd(hs, ws, ht, wt)
    if group == "cross-entropy from logits":
        return module()
    fused_ce = module()
    return lambda h, w, y: fused_ce(w, h, y)


def inputs_for(group: str, n: int, hidden: int, vocab: int, device: str, dtype: torch.dtype):
    g = torch.Generator().manual_seed(0)
    if group == "jsd from logits":
        xs = (torch.randn(n, vocab, generator=g) * 2, torch.randn(n, vocab, generator=g) * 2)
        return tuple(x.to(device, dtype) for x in xs), (0,)
    if group == "cross-entropy from logits":
        z, y = torch.randn(n, vocab, generator=g) * 2, torch.randint(0, vocab, (n,), generator=g)
        return (z.to(device, dtype), y.to(device)), (0,)
    scale = 3 / math.sqrt(hidden)
    hs, ws = torch.randn(n, hidden, generator=g), torch.randn(vocab, hidden, generator=g) * scale
    if group == "cross-entropy fused with the output layer":
        y = torch.randint(0, vocab, (n,), generator=g)
        return (hs.to(device, dtype), ws.to(device, dtype), y.to(device)), (0, 1)
    ht, wt = torch.randn(n, hidden, generator=g), torch.randn(vocab, hidden, generator=g) * scale
    return tuple(x.to(device, dtype) for x in (hs, ws, ht, wt)), (0, 1)


def load_liger(device: str) -> dict:
    if device != "cuda":
        return {"liger": None, "liger_reason": "Liger-Kernel's Triton kernels need a GPU"}
    try:
        import liger_kernel.transformers as liger
    except Exception as error:  # not installed on this machine: a row that says so
        return {"liger": None, "liger_reason": f"liger_kernel not importable ({type(error).__name__})"}
    return {"liger": liger, "liger_reason": ""}


def benchmark(device: str, quick: bool, deadline: float) -> list[dict]:
    n, hidden, vocab = (64, 32, 2048) if quick else (4096, 1024, 128_256)
    repeats = 2 if quick else 5
    dtypes = [torch.float32] + ([torch.bfloat16] if device == "cuda" else [])
    rows = []
    for group, entries in cases(load_liger(device)).items():
        for dtype in dtypes:
            inputs, grad_of = inputs_for(group, n, hidden, vocab, device, dtype)
            truth = None
            for name, fn, note in entries:
                row = {"group": group, "dtype": str(dtype).removeprefix("torch."), "implementation": name,
                       "tokens": n, "vocab": vocab, "hidden": hidden if "fused" in group else None}  # fmt: skip
                if fn is None or time.monotonic() > deadline:
                    rows.append({**row, "status": note or "skipped: the run's time budget is spent"})
                    continue
                try:
                    if truth is None:
                        wide = tuple(x.double() if x.is_floating_point() else x for x in inputs)
                        truth = run_case(entries[0][1], wide, grad_of)
                    loss_error, grad_error = errors(run_case(fn, inputs, grad_of), truth)
                    call = functools.partial(run_case, fn, inputs, grad_of)
                    seconds = best_time(call, device, repeats)
                    peak = extra_peak(call, device)
                    row.update(status="ok", ms=seconds * 1e3, extra_peak_mib=peak / MB, loss_rel_error=loss_error,
                               grad_rel_error=grad_error)  # fmt: skip
                except Exception as error:  # a failing peer (or an out-of-memory naive path) is a row
                    row["status"] = f"failed: {type(error).__name__}: {str(error).splitlines()[0][:160]}"
                    if device == "cuda":
                        torch.cuda.empty_cache()
                rows.append(row)
                print(json.dumps(row), flush=True)
            del inputs, truth
            if device == "cuda":
                torch.cuda.empty_cache()
    return rows


def markdown(report: dict) -> str:
    env = report["environment"]
    where = env.get("gpu") or env.get("cpu")
    tests = report["tests"]
    lines = [
        f"# klkit GPU check ({env['device']}: {where})",
        "",
        f"torch {env['torch']}, triton {env['triton']}, transformers {env['transformers']}, "
        f"liger_kernel {env['liger_kernel']}; Python {env['python']}; {report['date']}"
        + ("; quick sizes" if report["quick"] else ""),
        "",
        f"CUDA tests ({'collected only' if tests.get('collect_only') else 'run'}; `pytest -k cuda` on "
        f"{', '.join(tests.get('files', []))}): {tests.get('summary', tests.get('status'))}",
        "",
        "Forward + backward; time: best of a few runs; extra peak: allocator memory beyond the inputs; errors "
        "against the same loss in float64: loss (relative) and gradients (relative to their largest entry).",
        "",
        "| loss | dtype | implementation | time | extra peak | loss error | gradient error |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in report["rows"]:
        if r["status"] != "ok":
            lines.append(f"| {r['group']} | {r['dtype']} | {r['implementation']} | {r['status']} | | | |")
            continue
        lines.append(
            f"| {r['group']} | {r['dtype']} | {r['implementation']} | {r['ms']:.2f} ms | "
            f"{r['extra_peak_mib']:,.1f} MiB | {r['loss_rel_error']:.1e} | {r['grad_rel_error']:.1e} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", choices=("cuda", "cpu"), default="cuda")
    parser.add_argument("--quick", action="store_true", help="small sizes (the CPU smoke test)")
    parser.add_argument("--out", type=Path, default=ROOT / "gpu-check", help="folder for the JSON and Markdown")
    parser.add_argument("--docs", action="store_true", help="also replace the gpu-check section of docs/benchmarks.md")
    parser.add_argument("--budget", type=float, default=480.0, help="seconds for the whole check (default 8 min)")
    args = parser.parse_args(argv)
    start = time.monotonic()
    if args.device == "cpu":
        torch.set_num_threads(1)  # steadier times on a shared CPU
    if args.device == "cuda" and not torch.cuda.is_available():
        print("error: --device cuda but torch sees no CUDA device; use --device cpu", file=sys.stderr)
        return 2
    tests = cuda_tests(args.device, timeout=min(240.0, args.budget / 2))
    print(f"CUDA tests: {tests.get('summary', tests.get('status'))}", flush=True)
    rows = benchmark(args.device, args.quick, deadline=start + args.budget - 30)
    report = {
        "environment": environment(args.device),
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "quick": args.quick,
        "seconds": time.monotonic() - start,
        "tests": tests,
        "rows": rows,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "gpu_check.json").write_text(json.dumps(report, indent=1))
    (args.out / "gpu_check.md").write_text(markdown(report))
    print(f"wrote {args.out / 'gpu_check.json'} and {args.out / 'gpu_check.md'} in {report['seconds']:.0f} s")
    if args.docs:
        from _report import write_section

        section = markdown(report).replace("# klkit GPU check", "## GPU check (`make gpu-check`)", 1)
        print(f"wrote the `gpu-check` section of {write_section('gpu-check', section)}")
    failed_tests = args.device == "cuda" and tests.get("exit_code") not in (0, 5)
    return 1 if failed_tests else 0


if __name__ == "__main__":
    sys.exit(main())
