"""Jensen's inequality proves KL ≥ 0: the chord below the concave log; and H(P) = log K − KL(P‖U)."""

from __future__ import annotations

import math

import numpy as np

import klkit
from klkit.lab.base import Check, LabContext, SectionResult, save_figure
from klkit.lab.sections._random import random_pairs

P2 = np.array([0.7, 0.3])
Q2 = np.array([0.2, 0.8])


def _chord_figure(ctx: LabContext, kl: float):
    import matplotlib.pyplot as plt

    r = Q2 / P2  # the ratios q/p at the two outcomes
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.9))
    x = np.linspace(0.12, 3.2, 400)
    left.plot(x, np.log(x), color="C0", label="log r (concave)")
    left.plot(r, np.log(r), color="C1", marker="o", label="chord between the two outcomes")
    mean_r, mean_log = float(P2 @ r), float(P2 @ np.log(r))
    left.plot([mean_r], [mean_log], "s", color="C3", ms=8, label=f"E_P[log r] = −KL = {mean_log:.3f}")
    left.plot([mean_r], [math.log(mean_r)], "s", color="C2", ms=8, label="log E_P[r] = log 1 = 0")
    left.annotate(
        "",
        xy=(mean_r, 0.0),
        xytext=(mean_r, mean_log),
        arrowprops={"arrowstyle": "<->", "color": "C3", "lw": 1.5},
    )
    left.text(mean_r + 0.25, mean_log / 2 - 0.15, f"gap = KL(P‖Q)\n= {kl:.3f} nats", color="C3", fontsize=9)
    for ri, pi in zip(r, P2, strict=True):
        left.annotate(
            f"r = q/p = {ri:.2f}\n(weight p = {pi:g})",
            (ri, math.log(ri)),
            xytext=(6, -26),
            textcoords="offset points",
            fontsize=8,
        )
    left.axhline(0, color="black", lw=0.6)
    left.set(
        xlabel="r = q(x)/p(x)",
        ylabel="log r",
        title="Jensen: the average of log lies below log of the average",
        ylim=(-2.4, 1.4),
    )
    left.legend(fontsize=8, loc="lower right")
    left.grid(alpha=0.3)

    p = np.linspace(0.0, 1.0, 501)
    coin = np.stack([p, 1 - p], axis=-1)
    h = klkit.entropy(coin)
    kl_u = klkit.kl_divergence(coin, np.full(2, 0.5))
    right.plot(p, h, color="C0", label="H(P)")
    right.axhline(math.log(2), color="gray", ls="--", label="log 2 (the uniform's entropy)")
    right.fill_between(p, h, math.log(2), color="C3", alpha=0.2, label="KL(P‖U): the gap")
    right.plot(p[::25], math.log(2) - kl_u[::25], "k.", ms=4, label="log 2 − KL(P‖U)")
    right.set(xlabel="P(heads) = p", ylabel="nats", title="H(P) = log K − KL(P‖U)", ylim=(0, 0.8))
    right.legend(fontsize=8, loc="lower center")
    right.grid(alpha=0.3)
    fig.tight_layout()
    return save_figure(ctx, fig, "jensen")


def run(ctx: LabContext) -> SectionResult:
    rng = np.random.default_rng(ctx.seed + 11)
    n = 10_000 if ctx.quick else 100_000
    kl = float(klkit.kl_divergence(P2, Q2))
    # independent numpy arithmetic for the two sides of Jensen's inequality at the figure's pair
    r = Q2 / P2
    mean_log, log_mean = float(P2 @ np.log(r)), float(np.log(P2 @ r))

    ctx.progress(f"Jensen's inequality on {n:,} random pairs per K")
    worst_jensen, worst_match, worst_identity = -math.inf, 0.0, 0.0
    for k in (2, 5, 20, 100):
        p, q = random_pairs(rng, n, k)
        ratio_log = np.log(q) - np.log(p)
        lhs = np.sum(p * ratio_log, axis=-1)  # E_P[log q/p]
        rhs = np.log(np.sum(p * np.exp(ratio_log), axis=-1))  # log E_P[q/p] = log Σ q = 0
        worst_jensen = max(worst_jensen, float(np.max(lhs - rhs)))
        kl_pq = klkit.kl_divergence(p, q)
        worst_match = max(worst_match, float(np.max(np.abs(-lhs - kl_pq) / np.maximum(1.0, kl_pq))))
        h = klkit.entropy(p)
        kl_u = klkit.kl_divergence(p, np.full(k, 1.0 / k))
        worst_identity = max(worst_identity, float(np.max(np.abs(h - (math.log(k) - kl_u)))))

    checks = [
        Check(
            "the figure's pair P = (0.7, 0.3), Q = (0.2, 0.8): E_P[q/p] = 1, so log E_P[q/p] = 0, and the chord "
            "point E_P[log q/p] lies KL(P‖Q) below it",
            f"log E_P[r] = {log_mean:.2e}; E_P[log r] = {mean_log:.6f}; klkit KL(P‖Q) = {kl:.6f} nats",
            abs(log_mean) <= 1e-15 and abs(mean_log + kl) <= 1e-12,
        ),
        Check(
            f"Jensen on {4 * n:,} random pairs (K ∈ {{2, 5, 20, 100}}): E_P[log q/p] ≤ log E_P[q/p] (numpy)",
            f"max E_P[log r] − log E_P[r] = {worst_jensen:.2e}",
            worst_jensen <= 1e-12,
        ),
        Check(
            "… and the gap −E_P[log q/p] is klkit's KL(P‖Q) (relative error ≤ 1e-10)",
            f"worst = {worst_match:.2e}",
            worst_match <= 1e-10,
        ),
        Check(
            f"H(P) = log K − KL(P‖U) on the same {4 * n:,} distributions (klkit.entropy and klkit.kl_divergence "
            "computed separately), so KL ≥ 0 ⇔ H(P) ≤ log K",
            f"worst |H(P) − (log K − KL(P‖U))| = {worst_identity:.2e} nats",
            worst_identity <= 1e-12,
        ),
    ]
    fig_path = _chord_figure(ctx, kl)
    return SectionResult(
        key="jensen",
        title="Why KL ≥ 0: Jensen's inequality, and why the uniform has the most entropy",
        claim="log is concave, so the average of log r lies below log of the average of r (Jensen). With r = q/p "
        "averaged under P: −KL(P‖Q) = E_P[log q/p] ≤ log E_P[q/p] = log Σ q = 0. With Q the uniform U on K outcomes "
        "the same fact reads H(P) = log K − KL(P‖U) ≤ log K.",
        how=f"The two sides of Jensen's inequality with numpy on {4 * n:,} random pairs (Dirichlet, K ∈ {{2, 5, 20, "
        "100}}), the gap compared with klkit.kl_divergence; the identity H(P) = log K − KL(P‖U) with klkit.entropy "
        "and klkit.kl_divergence computed separately.",
        checks=checks,
        figures=[fig_path],
        numbers={"kl_example": kl, "worst_jensen": worst_jensen, "worst_identity": worst_identity},
        intuition="On a curve that bends down like log, the straight chord between two of its points runs below it. "
        "Averaging log q/p over P is a point on such a chord; averaging q/p first lands exactly on 1, where log is "
        "0. The distance between the two is KL(P‖Q), which therefore cannot be negative, and is 0 only when q/p is "
        "the same everywhere, i.e. P = Q.",
        example="P = (0.7, 0.3), Q = (0.2, 0.8): r = q/p = (0.286, 2.667). E_P[r] = 0.7·0.286 + 0.3·2.667 = 1. "
        "E_P[log r] = 0.7·(−1.253) + 0.3·0.981 = −0.583, so KL(P‖Q) = 0.583 nats.",
        captions={
            fig_path.name: "Left: the two outcomes' ratios q/p on the log curve; the chord's point at weights P "
            "(red) sits KL(P‖Q) below the curve's value at their average, which is always 1. Right: a coin's entropy "
            "is log 2 minus its KL from the fair coin; the shaded gap closes only at p = ½."
        },
    )
