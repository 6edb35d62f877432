"""KL(P‖Q) ≥ 0 with equality only at P = Q (Gibbs' inequality, from Jensen)."""

from __future__ import annotations

import numpy as np

import klkit
from klkit.lab.base import Check, LabContext, SectionResult, save_figure
from klkit.lab.sections._random import random_pairs


def run(ctx: LabContext) -> SectionResult:
    import matplotlib.pyplot as plt

    rng = np.random.default_rng(ctx.seed + 4)
    n = 10_000 if ctx.quick else 100_000
    kls, same, jensen_gap, zero_diff = [], [], [], []
    for k in (2, 3, 10, 100):
        ctx.progress(f"KL of {n:,} random pairs on {k} outcomes")
        p, q = random_pairs(rng, n, k)
        kl = klkit.kl_divergence(p, q)
        kls.append(kl)
        zero_diff.append(np.max(np.abs(p - q), axis=1)[kl == 0])  # how different are pairs with KL exactly 0?
        same.append(klkit.kl_divergence(p, p))
        # Jensen: E_p[log(q/p)] ≤ log E_p[q/p] = log Σ q = 0, so −KL ≤ 0.  Check the gap with numpy alone.
        expected_log_ratio = np.sum(p * (np.log(q) - np.log(p)), axis=1)
        log_expected_ratio = np.log(np.sum(p * (q / p), axis=1))
        jensen_gap.append(log_expected_ratio - expected_log_ratio)
    kl, same, gap, zero_diff = (np.concatenate(x) for x in (kls, same, jensen_gap, zero_diff))
    zeros = (
        (
            f"; KL = 0 to double precision for {zero_diff.size} pair(s), spiky pairs whose probabilities differ "
            f"by at most {zero_diff.max():.1e}"
        )
        if zero_diff.size
        else ""
    )
    near = rng.dirichlet(np.ones(10), size=1000)
    eps_kl = klkit.kl_divergence(near, 0.999 * near + 0.001 / 10)

    checks = [
        Check(
            f"KL(P‖Q) ≥ 0 on {kl.size:,} random pairs (K ∈ {{2, 3, 10, 100}})",
            f"min KL = {kl.min():.3g} nats{zeros}",
            bool(kl.min() >= 0),
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
    fig, ax = plt.subplots(figsize=(6, 3.4))
    positive = kl[kl > 0]
    ax.hist(np.log10(positive), bins=80, color="C0")
    ax.set(
        xlabel="log₁₀ KL(P‖Q)  (nats)",
        ylabel="pairs",
        title=f"KL of {kl.size:,} random pairs: all ≥ 0 (min {kl.min():.2g})",
    )
    ax.grid(alpha=0.3)
    fig_path = save_figure(ctx, fig, "nonnegativity")
    return SectionResult(
        key="nonnegativity",
        title="KL divergence is never negative",
        claim="KL(P‖Q) ≥ 0 for all P, Q, with equality exactly when P = Q (Gibbs' inequality, a consequence of "
        "Jensen's inequality for the concave log).",
        how=f"klkit.kl_divergence on {kl.size:,} random Dirichlet pairs; KL(P‖P); the Jensen gap "
        "log E_P[Q/P] − E_P[log(Q/P)] computed with numpy only; and near-identical pairs.",
        checks=checks,
        figures=[fig_path],
        numbers={
            "pairs": int(kl.size),
            "min_kl": float(kl.min()),
            "max_kl_self": float(same.max()),
            "min_jensen_gap": float(gap.min()),
            "min_kl_perturbed": float(eps_kl.min()),
        },
    )
