"""Benchmark of KL's relatives (Rényi, JS, χ², Hellinger): klkit's accurate forms against the textbook one-liners.

klkit evaluates each relative from per-outcome terms of one sign (``klkit._relative_terms`` and the
engine's ``js_term``), accurate to a few ulps however close P and Q are; the textbook one-liner
(``np.log(np.sum(p**a * q**(1 - a), -1)) / (a - 1)``, ``½ Σ p log(p/m) + ½ Σ q log(q/m)``, …) is what a
user would write, and loses every digit near P = Q. scipy is timed where it has the measure
(``scipy.spatial.distance.jensenshannon``). Each case is timed in the same run on the same inputs, the
contenders alternating, one thread (``klkit.set_num_threads(1)``, ``torch.set_num_threads(1)``,
``threadpool_limits(1)``), best of ``REPEATS`` calls; torch rows also time forward + backward.

Inputs: ``ROWS × N`` float64 rows, p from a flat Dirichlet and q = p·e^{0.1 z} renormalised (full
support: the one-liners are right there). Accuracy: the largest relative error over 24 near-equal rows
of 48 outcomes (q = p·e^{εz}, ε = 1e-4 … 1e-9; integers over 2^52, each summing to exactly 1) against
the defining formula at 50 digits (mpmath).

Run: ``.venv/bin/python benchmarks/relatives.py`` (or ``benchmarks/run.py relatives``); ``--quick``
uses 200 × 200 and does not write ``docs/benchmarks.md``.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mpmath
import numpy as np
import scipy.spatial.distance
import torch
from threadpoolctl import threadpool_limits

sys.path.insert(0, str(Path(__file__).resolve().parent))
import klkit
from _report import load_description, machine_description, write_section

SEED = 20261206
REPEATS = 7
ACCURACY_ROWS = 24


@dataclass
class Case:
    measure: str
    library: str
    klkit: Callable[[Any, Any], Any]
    textbook: Callable[[Any, Any], Any]
    scipy: Callable[[Any, Any], Any] | None = None


def _renyi_np(a: float) -> Callable[[Any, Any], Any]:
    return lambda p, q: np.log(np.sum(p**a * q ** (1 - a), axis=-1)) / (a - 1)


def _renyi_torch(a: float) -> Callable[[Any, Any], Any]:
    return lambda p, q: torch.log(torch.sum(p**a * q ** (1 - a), dim=-1)) / (a - 1)


def _js_np(p: Any, q: Any) -> Any:
    m = 0.5 * (p + q)
    return 0.5 * np.sum(p * np.log(p / m), axis=-1) + 0.5 * np.sum(q * np.log(q / m), axis=-1)


def _js_torch(p: Any, q: Any) -> Any:
    m = 0.5 * (p + q)
    return 0.5 * torch.sum(p * torch.log(p / m), dim=-1) + 0.5 * torch.sum(q * torch.log(q / m), dim=-1)


def cases() -> list[Case]:
    out = []
    for a in (2.0, 0.5):
        out += [
            Case(f"Rényi α={a:g}", "numpy", lambda p, q, a=a: klkit.renyi_divergence(p, q, alpha=a), _renyi_np(a)),
            Case(f"Rényi α={a:g}", "torch", lambda p, q, a=a: klkit.renyi_divergence(p, q, alpha=a), _renyi_torch(a)),
        ]
    out += [
        Case(
            "JS divergence",
            "numpy",
            klkit.js_divergence,
            _js_np,
            lambda p, q: scipy.spatial.distance.jensenshannon(p, q, axis=-1) ** 2,
        ),
        Case("JS divergence", "torch", klkit.js_divergence, _js_torch),
        Case(
            "JS distance",
            "numpy",
            klkit.js_distance,
            lambda p, q: np.sqrt(_js_np(p, q)),
            lambda p, q: scipy.spatial.distance.jensenshannon(p, q, axis=-1),
        ),
        Case("JS distance", "torch", klkit.js_distance, lambda p, q: torch.sqrt(_js_torch(p, q))),
        Case(
            "χ²",
            "numpy",
            lambda p, q: klkit.f_divergence(p, q, f="chi2"),
            lambda p, q: np.sum((p - q) ** 2 / q, axis=-1),
        ),
        Case(
            "χ²",
            "torch",
            lambda p, q: klkit.f_divergence(p, q, f="chi2"),
            lambda p, q: torch.sum((p - q) ** 2 / q, dim=-1),
        ),
        Case(
            "Hellinger",
            "numpy",
            klkit.hellinger_distance,
            lambda p, q: np.sqrt(0.5 * np.sum((np.sqrt(p) - np.sqrt(q)) ** 2, axis=-1)),
        ),
        Case(
            "Hellinger",
            "torch",
            klkit.hellinger_distance,
            lambda p, q: torch.sqrt(0.5 * torch.sum((torch.sqrt(p) - torch.sqrt(q)) ** 2, dim=-1)),
        ),
    ]
    return out


def inputs(rows: int, n: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(SEED)
    p = rng.dirichlet(np.ones(n), size=rows)
    q = p * np.exp(0.1 * rng.standard_normal((rows, n)))
    return p, q / q.sum(-1, keepdims=True)


def best_alternating(fns: list[Callable[[], Any]], repeats: int) -> list[float]:
    """Best time of each call, the calls run in turn ``repeats`` times (so that they share the load)."""
    best = [math.inf] * len(fns)
    for _ in range(repeats):
        for i, fn in enumerate(fns):
            start = time.perf_counter()
            fn()
            best[i] = min(best[i], time.perf_counter() - start)
    return best


def _backward(fn: Callable[[Any, Any], Any], p: np.ndarray, q: np.ndarray) -> Callable[[], Any]:
    def run() -> None:
        a = torch.tensor(p, requires_grad=True)
        b = torch.tensor(q, requires_grad=True)
        fn(a, b).sum().backward()

    return run


def reference(measure: str, p: np.ndarray, q: np.ndarray) -> float:
    """The defining formula at 50 digits on the stored values."""
    with mpmath.workdps(50):
        ps, qs = [mpmath.mpf(v) for v in p.tolist()], [mpmath.mpf(v) for v in q.tolist()]
        if measure.startswith("Rényi"):
            a = mpmath.mpf(measure.split("=")[1])
            return float(mpmath.log(mpmath.fsum(x**a * y ** (1 - a) for x, y in zip(ps, qs, strict=True))) / (a - 1))
        if measure.startswith("JS"):
            js = mpmath.fsum(
                x * mpmath.log(2 * x / (x + y)) / 2 + y * mpmath.log(2 * y / (x + y)) / 2
                for x, y in zip(ps, qs, strict=True)
            )
            return float(mpmath.sqrt(js) if measure == "JS distance" else js)
        if measure == "χ²":
            return float(mpmath.fsum((x - y) ** 2 / y for x, y in zip(ps, qs, strict=True)))
        return float(
            mpmath.sqrt(mpmath.fsum((mpmath.sqrt(x) - mpmath.sqrt(y)) ** 2 for x, y in zip(ps, qs, strict=True)) / 2)
        )


def _exact(w: np.ndarray) -> np.ndarray:
    """``w`` normalised as integers over 2^52 that sum to exactly 2^52 (so Σ = 1 holds exactly, as the
    measures' definitions assume)."""
    counts = np.floor(w / w.sum() * 2.0**52)
    counts[np.argmax(counts)] += 2.0**52 - counts.sum()
    return counts / 2.0**52


def accuracy(case: Case) -> tuple[float, float]:
    """Largest relative error of klkit and of the textbook one-liner on near-equal rows."""
    rng = np.random.default_rng(SEED + 1)
    worst = [0.0, 0.0]
    for i in range(ACCURACY_ROWS):
        eps = 10.0 ** -(4 + i % 6)
        p = _exact(rng.dirichlet(np.ones(48)))
        q = _exact(p * np.exp(eps * rng.standard_normal(48)))
        ref = reference(case.measure, p, q)
        for j, fn in enumerate((case.klkit, case.textbook)):
            a, b = (p, q) if case.library == "numpy" else (torch.tensor(p), torch.tensor(q))
            got = float(fn(a, b))
            worst[j] = max(worst[j], abs(got - ref) / abs(ref) if math.isfinite(got) else math.inf)
    return worst[0], worst[1]


def run(rows: int, n: int, log: Callable[[str], None]) -> list[dict[str, Any]]:
    p, q = inputs(rows, n)
    tp, tq = torch.tensor(p), torch.tensor(q)
    results = []
    for case in cases():
        a, b = (p, q) if case.library == "numpy" else (tp, tq)
        fns = [lambda c=case, a=a, b=b: c.klkit(a, b), lambda c=case, a=a, b=b: c.textbook(a, b)]
        if case.scipy is not None:
            fns.append(lambda c=case: c.scipy(p, q))
        seconds = best_alternating(fns, REPEATS)
        row = {"case": case, "klkit": seconds[0], "textbook": seconds[1], "scipy": seconds[2] if case.scipy else None}
        if case.library == "torch":
            back = best_alternating([_backward(case.klkit, p, q), _backward(case.textbook, p, q)], REPEATS)
            row["klkit_bwd"], row["textbook_bwd"] = back
        row["err_klkit"], row["err_textbook"] = accuracy(case)
        log(
            f"{case.measure} {case.library}: klkit {1e3 * seconds[0]:.1f} ms, textbook {1e3 * seconds[1]:.1f} ms"
            + (f", scipy {1e3 * seconds[2]:.1f} ms" if case.scipy else "")
            + (
                f"; fwd+bwd {1e3 * row['klkit_bwd']:.1f} vs {1e3 * row['textbook_bwd']:.1f} ms"
                if "klkit_bwd" in row
                else ""
            )
            + f"; max rel. error {row['err_klkit']:.1e} vs {row['err_textbook']:.1e}"
        )
        results.append(row)
    return results


def verdict(results: list[dict[str, Any]]) -> list[str]:
    """The target on this run's numbers: klkit's torch forward within 2× of the torch one-liner."""
    out = []
    for r in results:
        if r["case"].library == "torch":
            ratio = r["klkit"] / r["textbook"]
            out.append(
                f"- {r['case'].measure}, torch: {ratio:.1f}× the one-liner: {'met' if ratio <= 2 else 'NOT met'}"
            )
    return out


def markdown(results: list[dict[str, Any]], rows: int, n: int) -> str:
    def ms(v: float | None) -> str:
        return "—" if v is None else f"{1e3 * v:.1f}"

    lines = [
        "## KL's relatives: accurate forms against the textbook one-liners (`benchmarks/relatives.py`)",
        "",
        machine_description(),
        "",
        load_description(),
        "",
        f"{rows} × {n} float64 rows (q = p·e^(0.1 z), full support), one thread, best of {REPEATS} calls with the "
        "contenders alternating. The textbook one-liner is the defining formula in numpy/torch as a user writes "
        "it (e.g. `log Σ p^α q^(1−α) / (α − 1)`); scipy where it has the measure. Accuracy: the largest relative "
        f"error over {ACCURACY_ROWS} near-equal rows (48 outcomes, q = p·e^(εz), ε = 1e-4 … 1e-9, probabilities "
        "k/2^52 summing to exactly 1) against the "
        "defining formula at 50 digits (mpmath). Target: klkit's torch forward within 2× of the torch one-liner.",
        "",
        *verdict(results),
        "",
        "| measure | library | klkit (ms) | textbook (ms) | klkit / textbook | scipy (ms) | fwd+bwd klkit / textbook "
        "(ms) | max rel. error klkit | max rel. error textbook |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        c = r["case"]
        bwd = f"{ms(r['klkit_bwd'])} / {ms(r['textbook_bwd'])}" if "klkit_bwd" in r else "—"
        lines.append(
            f"| {c.measure} | {c.library} | {ms(r['klkit'])} | {ms(r['textbook'])} | {r['klkit'] / r['textbook']:.2f}× "
            f"| {ms(r['scipy'])} | {bwd} | {r['err_klkit']:.1e} | {r['err_textbook']:.1e} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="200 × 200, no document written")
    args = parser.parse_args(argv)
    rows = n = 200 if args.quick else 1000
    warnings.filterwarnings("ignore")
    klkit.set_num_threads(1)
    torch.set_num_threads(1)
    with threadpool_limits(1):
        results = run(rows, n, lambda s: print(s, flush=True))
    md = markdown(results, rows, n)
    if args.quick:
        print(md)
    else:
        print(f"wrote the relatives section of {write_section('relatives', md)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
