"""Entropy is maximal (log K) at the uniform distribution and zero at a point mass."""

from __future__ import annotations

import math

import numpy as np

import klkit
from klkit.lab.base import Check, LabContext, SectionResult, save_figure


def run(ctx: LabContext) -> SectionResult:
    import matplotlib.pyplot as plt

    rng = np.random.default_rng(ctx.seed + 1)
    n = 20_000 if ctx.quick else 200_000
    ks = list(range(2, 65))
    uniform_err = max(abs(float(klkit.entropy(np.full(k, 1.0 / k))) - math.log(k)) for k in ks)
    point_max = max(float(klkit.entropy(np.eye(k)[rng.integers(k)])) for k in ks)

    ctx.progress(f"entropy of {n:,} random distributions")
    rows = []
    worst_gap = math.inf
    for k in (2, 5, 20):
        alpha = rng.choice([0.05, 0.5, 1.0, 5.0, 50.0], size=n)[:, None]
        p = rng.gamma(alpha * np.ones((n, k)))
        p /= p.sum(axis=1, keepdims=True)
        h = klkit.entropy(p)
        gap = math.log(k) - float(h.max())
        worst_gap = min(worst_gap, gap)
        rows.append((k, float(h.min()), float(h.max()), math.log(k)))

    coin = np.linspace(0.0, 1.0, 1001)
    h_coin = klkit.entropy(np.stack([coin, 1 - coin], axis=-1), base=2)
    argmax = float(coin[np.argmax(h_coin)])

    checks = [
        Check(
            "H(uniform on K outcomes) = log K for K = 2..64",
            f"worst |H − log K| = {uniform_err:.2e} nats",
            uniform_err <= 1e-12,
        ),
        Check("H(point mass) = 0 for K = 2..64", f"max H = {point_max:g}", point_max == 0.0),
        Check(
            f"H(P) ≤ log K for {3 * n:,} random (Dirichlet) distributions, K ∈ {{2, 5, 20}}",
            f"smallest gap log K − max H = {worst_gap:.3g} nats",
            worst_gap >= 0,
        ),
        Check(
            "the entropy-of-a-coin curve peaks at p = 1/2 with 1 bit, and is 0 at p = 0 and p = 1",
            f"argmax = {argmax:g}, max = {h_coin.max():.12g} bits, ends = {h_coin[0]:g}, {h_coin[-1]:g}",
            argmax == 0.5 and abs(float(h_coin.max()) - 1) < 1e-12 and h_coin[0] == 0 and h_coin[-1] == 0,
        ),
    ]
    table = ["<table><tr><th>K</th><th>min H over random P</th><th>max H over random P</th><th>log K</th></tr>"]
    table += [
        f'<tr><td class="num">{k}</td><td class="num">{lo:.4f}</td><td class="num">{hi:.6f}</td>'
        f'<td class="num">{lk:.6f}</td></tr>'
        for k, lo, hi, lk in rows
    ]
    table.append("</table>")

    fig, ax = plt.subplots(figsize=(6, 3.4))
    ax.plot(coin, h_coin, color="C0")
    ax.axvline(0.5, color="gray", ls=":", lw=1)
    ax.set(xlabel="P(heads) = p", ylabel="H (bits)", title="Entropy of a coin: 1 bit at p = ½, 0 at p ∈ {0, 1}")
    ax.grid(alpha=0.3)
    fig_path = save_figure(ctx, fig, "entropy_coin")

    return SectionResult(
        key="entropy",
        title="Entropy is maximal at the uniform distribution and zero at a point mass",
        claim="Among distributions on K outcomes, the uniform one has the largest entropy, log K; a point mass "
        "(a certain outcome) has entropy 0.",
        how=f"klkit.entropy of the uniform distribution and of point masses for K = 2..64, and of {n:,} random "
        "Dirichlet draws (concentrations 0.05 to 50) for each K ∈ {2, 5, 20}; the coin curve on a 1001-point grid.",
        checks=checks,
        figures=[fig_path],
        tables_html=["".join(table)],
        intuition="Entropy is the average surprise, H(P) = E[−log p(X)]: how many bits (or nats) you need on "
        "average to say which outcome happened. It is largest when every outcome is equally likely, because then "
        "nothing helps you guess, and zero when one outcome is certain.",
        example="A fair four-sided die: H = log₂ 4 = 2 bits (ln 4 = 1.386 nats). P = (½, ¼, ⅛, ⅛): H = ½·1 + ¼·2 + "
        "⅛·3 + ⅛·3 = 1.75 bits, less than 2. P = (1, 0, 0, 0): H = 0.",
        captions={
            fig_path.name: "A coin's entropy: 0 when the outcome is certain (p = 0 or 1), rising to its maximum, "
            "1 bit, at the fair coin; the curve is symmetric because relabelling heads and tails changes nothing."
        },
        numbers={
            "uniform_max_error": uniform_err,
            "point_mass_max_entropy": point_max,
            "smallest_gap_to_log_k": worst_gap,
            "coin_argmax": argmax,
        },
    )
