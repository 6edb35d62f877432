"""Surprise :math:`I(p) = -\\log p` is non-negative, zero for a certain event, additive over independent events."""

from __future__ import annotations

import numpy as np

import klkit
from klkit.lab.base import Check, LabContext, SectionResult, save_figure


def run(ctx: LabContext) -> SectionResult:
    import matplotlib.pyplot as plt

    rng = np.random.default_rng(ctx.seed)
    n = 20_000 if ctx.quick else 200_000
    ctx.progress(f"surprise of {n:,} random probabilities")
    # probabilities spread over many orders of magnitude: p = 10^(-u), u ~ U(0, 12)
    p = 10.0 ** -rng.uniform(0.0, 12.0, n)
    q = 10.0 ** -rng.uniform(0.0, 12.0, n)
    s_p, s_q, s_pq = klkit.surprise(p), klkit.surprise(q), klkit.surprise(p * q)
    additivity = np.abs(s_pq - (s_p + s_q)) / np.maximum(1.0, s_pq)
    reference = np.abs(s_p - (-np.log(p))) / np.maximum(1.0, s_p)  # independent truth: numpy's log
    certain = float(klkit.surprise(1.0))
    half_bits = float(klkit.surprise(0.5, base=2))

    checks = [
        Check(
            f"I(p) ≥ 0 for {n:,} probabilities in [1e-12, 1]", f"min I(p) = {s_p.min():.3g} nats", bool(s_p.min() >= 0)
        ),
        Check("I(1) = 0: a certain event carries no information", f"I(1) = {certain + 0.0:g}", certain == 0.0),
        Check("I(1/2) = 1 bit", f"I(1/2) = {half_bits:.15g} bit", abs(half_bits - 1.0) < 1e-15),
        Check(
            f"additive: I(p·q) = I(p) + I(q) on {n:,} independent pairs (relative error ≤ 1e-12)",
            f"worst relative error = {additivity.max():.2e}",
            bool(additivity.max() <= 1e-12),
        ),
        Check(
            "agrees with −log p computed by numpy (relative error ≤ 1e-15)",
            f"worst = {reference.max():.2e}",
            bool(reference.max() <= 1e-15),
        ),
    ]

    grid = np.linspace(1e-3, 1.0, 400)
    fig, ax = plt.subplots(figsize=(6, 3.4))
    ax.plot(grid, klkit.surprise(grid, base=2), color="C0")
    ax.scatter([0.5, 0.25, 0.125], [1, 2, 3], color="C3", zorder=3)
    for pp, bits in [(0.5, 1), (0.25, 2), (0.125, 3)]:
        ax.annotate(
            f"p={pp:g}: {bits} bit{'s' if bits > 1 else ''}",
            (pp, bits),
            textcoords="offset points",
            xytext=(8, 4),
            fontsize=8,
        )
    ax.set(
        xlabel="probability p",
        ylabel="surprise −log₂ p (bits)",
        title="Surprise: rare events are informative",
        ylim=(0, 10),
    )
    ax.grid(alpha=0.3)
    fig_path = save_figure(ctx, fig, "surprise")

    return SectionResult(
        key="surprise",
        title="Surprise is non-negative, zero for a certain event, additive over independent events",
        claim="The surprise (self-information) of an event of probability p is I(p) = −log p: it is ≥ 0, it is 0 "
        "exactly when p = 1, and for independent events it adds up, I(p·q) = I(p) + I(q).",
        how=f"klkit.surprise on {n:,} random probabilities spread log-uniformly over [1e-12, 1] and on as many "
        "independent pairs; compared with numpy's −log p.",
        checks=checks,
        figures=[fig_path],
        intuition="How surprised should you be by an event? Not at all if it was certain, a lot if it was rare. "
        "Surprise −log p measures that, in bits with log₂: a 1-in-2 event is worth 1 bit, a 1-in-8 event 3 bits. "
        "The logarithm makes the surprises of independent events add, as their probabilities multiply.",
        example="A fair die shows a 6: −log₂(1/6) = 2.585 bits. Two independent fair coins both land heads: "
        "−log₂(¼) = 2 bits = 1 bit + 1 bit. In nats: −ln(1/2) = 0.693 nats per coin.",
        captions={
            fig_path.name: "Surprise falls to 0 as p → 1 (a certain event tells you nothing) and grows without "
            "bound as p → 0; every halving of p adds one bit (red points)."
        },
        numbers={
            "n": n,
            "min_surprise": float(s_p.min()),
            "surprise_of_1": certain,
            "max_additivity_relative_error": float(additivity.max()),
        },
    )
