"""KL(P‖Q) ≥ 0 with equality only at P = Q (Gibbs' inequality, from Jensen)."""

from __future__ import annotations

from typing import Any

import numpy as np

import klkit
from klkit.lab.base import Check, LabContext, SectionResult, save_figure
from klkit.lab.sections._exact import exact_kl, input_rounding, rational_pairs, unclamped_kl
from klkit.lab.sections._random import random_pairs


def run(ctx: LabContext) -> SectionResult:
    rng = np.random.default_rng(ctx.seed + 4)
    n = 10_000 if ctx.quick else 100_000
    kls, same, jensen_gap, unclamped, unclamped_bound = [], [], [], [], []
    for k in (2, 3, 10, 100):
        ctx.progress(f"KL of {n:,} random pairs on {k} outcomes")
        p, q = random_pairs(rng, n, k)
        kl = klkit.kl_divergence(p, q)
        kls.append(kl)
        same.append(klkit.kl_divergence(p, p))
        # Jensen: E_p[log(q/p)] ≤ log E_p[q/p] = log Σ q = 0, so −KL ≤ 0.  Check the gap with numpy alone.
        expected_log_ratio = np.sum(p * (np.log(q) - np.log(p)), axis=1)
        log_expected_ratio = np.log(np.sum(p * (q / p), axis=1))
        jensen_gap.append(log_expected_ratio - expected_log_ratio)
        raw, bound = unclamped_kl(p, q)
        unclamped.append(raw)
        unclamped_bound.append(bound)
    kl, same, gap = (np.concatenate(x) for x in (kls, same, jensen_gap))
    raw, raw_bound = np.concatenate(unclamped), np.concatenate(unclamped_bound)
    near = rng.dirichlet(np.ones(10), size=1000)
    eps_kl = klkit.kl_divergence(near, 0.999 * near + 0.001 / 10)

    ctx.progress("exact KL of rational distributions (mpmath, 50 digits)")
    exact = _exact_checks(np.random.default_rng(ctx.seed + 40), 300 if ctx.quick else 1_500)

    checks = [
        Check(
            f"KL(P‖Q) ≥ 0 on {kl.size:,} random pairs (K ∈ {{2, 3, 10, 100}}): the plain float64 sum "
            "Σ p (log p − log q), with no clamp (numpy), is never below minus its rounding bound",
            f"min unclamped sum = {raw.min():.3g} nats; {int(np.sum(raw < 0))} negative, the most negative at "
            f"{np.max(np.where(raw < 0, -raw / raw_bound, 0)):.2f}× its bound; klkit's min KL = {kl.min():.3g}",
            bool(np.all(raw >= -raw_bound)),
        ),
        Check(
            f"exact: on {exact['pairs']:,} pairs of rational distributions (probabilities a/N, N ≤ 10⁹, 2–10 "
            "outcomes), KL at 50 digits (mpmath) is > 0 whenever P ≠ Q and exactly 0 when P = Q",
            f"min exact KL over P ≠ Q = {exact['min_exact']:.3g} nats ({exact['distinct']:,} pairs); "
            f"max |KL| over P = Q = {exact['max_equal']:.1g} ({exact['equal']} pairs)",
            exact["min_exact"] > 0 and exact["max_equal"] == 0,
        ),
        Check(
            "the plain float64 sum is within its rounding bound (sum and inputs) of the exact value: where it is "
            "negative, it is rounding of a positive number, not a negative KL",
            f"{exact['raw_negative']} of {exact['distinct']:,} unclamped sums negative (the exact KL there at "
            f"most {exact['max_exact_where_negative']:.2g} nats); "
            f"max |sum − exact| / bound = {exact['raw_error_ratio']:.2f}",
            exact["raw_error_ratio"] <= 1.0,
        ),
        Check(
            "klkit's KL is within the same bound of the exact value, and > 0 on every pair whose exact KL exceeds "
            "the bound: its positive results are the KL, not the clamp's doing",
            f"max |klkit − exact| / bound = {exact['klkit_error_ratio']:.3f}; on the {exact['resolved']:,} "
            f"resolvable pairs: max relative error {exact['klkit_rel_error_resolved']:.1e}, "
            f"{exact['klkit_zeros_resolved']} zeros",
            exact["klkit_error_ratio"] <= 1.0 and exact["klkit_zeros_resolved"] == 0,
        ),
        Check("KL(P‖P) = 0", f"max KL(P‖P) = {same.max():.3g}", bool(same.max() <= 1e-12)),
        Check(
            "Jensen: log E_P[Q/P] − E_P[log Q/P] ≥ 0 (numpy, independent of klkit), within rounding",
            f"min gap = {gap.min():.3g}",
            bool(gap.min() >= -1e-12),
        ),
        Check(
            "KL is positive even for a tiny perturbation (Q = 0.999 P + 0.001 uniform, 1,000 P's)",
            f"min KL = {eps_kl.min():.3g} nats",
            bool(eps_kl.min() > 0),
        ),
    ]
    fig_path = _figure(ctx, kl, exact)
    return SectionResult(
        key="nonnegativity",
        title="KL divergence is never negative",
        claim="KL(P‖Q) ≥ 0 for all P, Q, with equality exactly when P = Q (Gibbs' inequality, a consequence of "
        "Jensen's inequality for the concave log).",
        how=f"klkit.kl_divergence on {kl.size:,} random Dirichlet pairs, and the same sums in plain numpy with no "
        "clamp, compared with their rounding bound; pairs of distributions with rational probabilities a/N whose "
        "KL mpmath computes to 50 digits from the exact fractions (the reference klkit and the unclamped sum are "
        "held to); KL(P‖P); the Jensen gap log E_P[Q/P] − E_P[log(Q/P)] computed with numpy only; and "
        "near-identical pairs. klkit returns max(0, ·) of its sum, so its outputs alone could not show a "
        "negative KL: the evidence is the exact values and the unclamped sums.",
        checks=checks,
        figures=[fig_path],
        numbers={
            "pairs": int(kl.size),
            "min_kl": float(kl.min()),
            "min_unclamped_sum": float(raw.min()),
            "unclamped_negative": int(np.sum(raw < 0)),
            "max_kl_self": float(same.max()),
            "min_jensen_gap": float(gap.min()),
            "min_kl_perturbed": float(eps_kl.min()),
            "exact": {k: v for k, v in exact.items() if not isinstance(v, np.ndarray)},
        },
        intuition="KL(P‖Q) is the average of log(P/Q) under P. That average can be negative for a moment on "
        "single outcomes (where Q > P) but never overall: Q must take its extra probability from somewhere, and "
        "the log is concave, so the losses where Q > P never outweigh the gains where P > Q (Jensen: "
        "E_P[log(Q/P)] ≤ log E_P[Q/P] = log Σ Q = log 1 = 0; [the picture](#jensen)). It is 0 only when Q = P "
        "everywhere.",
        example="P = (½, ½), Q = (¼, ¾): KL = ½ ln(0.5/0.25) + ½ ln(0.5/0.75) = ½(0.693) + ½(−0.405) = "
        "0.144 nats > 0, although the second term is negative.",
        captions={
            fig_path.name: "Left: every KL of the random pairs on a linear axis (the last bar collects the large "
            "values); nothing lies left of the red line at 0. Right: pairs with exact rational probabilities, "
            "from identical to far apart: the error of the plain float64 sum (grey) and of klkit (blue) relative "
            "to the 50-digit value, in units of the sum's rounding bound. The plain sums that came out negative "
            "(red) are within ±1 bound of a true value that is positive: rounding, not a negative KL. klkit's "
            "error is far inside the bound, so it returns the positive value rather than a clamped 0."
        },
    )


def _exact_checks(rng: np.random.Generator, n: int) -> dict[str, Any]:
    """Rational pairs: exact KL (mpmath), klkit's float64 KL and the unclamped float64 sum against it.

    Both float64 values are held to the unclamped sum's rounding bound plus the rounding of the inputs.
    """
    pairs = rational_pairs(rng, n)
    truth = np.array([exact_kl(p, q) for p, q in pairs])
    equal = np.array([p == q for p, q in pairs])
    floats = [(np.array(p, dtype=float), np.array(q, dtype=float)) for p, q in pairs]
    values = np.array([float(klkit.kl_divergence(p, q)) for p, q in floats])
    raws = [unclamped_kl(p, q) for p, q in floats]
    raw = np.array([r for r, _ in raws])
    bound = np.array([b for _, b in raws]) + np.array([input_rounding(p, q) for p, q in floats])
    distinct = ~equal
    negative = distinct & (raw < 0)
    resolved = distinct & (truth > bound)  # pairs whose KL float64 can tell from 0
    return {
        "pairs": n,
        "distinct": int(distinct.sum()),
        "equal": int(equal.sum()),
        "resolved": int(resolved.sum()),
        "min_exact": float(truth[distinct].min()),
        "max_equal": float(np.abs(truth[equal]).max()) if equal.any() else 0.0,
        "klkit_error_ratio": float(np.max(np.abs(values - truth) / bound)),
        "klkit_rel_error_resolved": float(np.max(np.abs(values - truth)[resolved] / truth[resolved])),
        "klkit_zeros_resolved": int(np.sum(values[resolved] == 0)),
        "raw_negative": int(negative.sum()),
        "max_exact_where_negative": float(truth[negative].max()) if negative.any() else 0.0,
        "raw_error_ratio": float(np.max(np.abs(raw - truth) / bound)),
        "exact_values": truth,
        "raw_values": raw,
        "klkit_values": values,
        "bounds": bound,
    }


def _figure(ctx: LabContext, kl: np.ndarray, exact: dict[str, Any]) -> Any:
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 3.8))
    top = float(np.quantile(kl, 0.99))
    edges = np.linspace(min(0.0, float(kl.min())) - top / 60, top, 61)
    left.hist(np.minimum(kl, top * (1 - 1e-9)), bins=edges, color="C0")
    left.axvline(0, color="crimson", lw=1.5, label="0")
    left.set(
        xlabel=f"KL(P‖Q) (nats); the last bar holds the {int(np.sum(kl >= top)):,} values ≥ {top:.1f}",
        ylabel="pairs",
        title=f"KL of {kl.size:,} random pairs (linear axis): min {kl.min():.2g}",
    )
    left.legend(fontsize=9)
    left.grid(alpha=0.3)
    truth, raw, mine, bound = (exact[k] for k in ("exact_values", "raw_values", "klkit_values", "bounds"))
    distinct = truth > 0
    x = truth[distinct]
    negative = raw[distinct] < 0
    right.axhspan(-1, 1, color="0.92", label="± rounding bound")
    right.scatter(x, ((raw - truth) / bound)[distinct], s=8, color="0.45", label="plain float64 sum")
    right.scatter(
        x[negative], ((raw - truth) / bound)[distinct][negative], s=14, color="crimson", label="plain sum < 0"
    )
    right.scatter(x, ((mine - truth) / bound)[distinct], s=8, color="C0", marker="x", label="klkit")
    right.axhline(0, color="black", lw=0.8)
    right.set(
        xscale="log",
        ylim=(-1.3, 1.3),
        xlabel="exact KL(P‖Q), 50-digit mpmath (nats)",
        ylabel="(float64 − exact) / bound",
        title="Rational pairs: errors inside the rounding bound",
    )
    right.legend(fontsize=9, loc="lower right")
    right.grid(alpha=0.3)
    fig.tight_layout()
    return save_figure(ctx, fig, "nonnegativity")
