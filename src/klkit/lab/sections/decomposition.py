"""Cross-entropy = entropy + KL divergence, on many random pairs."""

from __future__ import annotations

import numpy as np

import klkit
from klkit.lab.base import Check, LabContext, SectionResult, save_figure
from klkit.lab.sections._random import random_pairs


def run(ctx: LabContext) -> SectionResult:
    import matplotlib.pyplot as plt

    rng = np.random.default_rng(ctx.seed + 3)
    n = 10_000 if ctx.quick else 100_000
    hs, ces, kls, ks = [], [], [], []
    for k in (2, 3, 10, 100):
        ctx.progress(f"{n:,} random pairs on {k} outcomes")
        p, q = random_pairs(rng, n, k)
        # Three independent computations; the decomposition is checked, never used to compute a term.
        hs.append(klkit.entropy(p))
        ces.append(klkit.cross_entropy(p, q))
        kls.append(klkit.kl_divergence(p, q))
        ks.append(np.full(n, k))
    h, ce, kl, kk = (np.concatenate(x) for x in (hs, ces, kls, ks))
    err = np.abs(ce - (h + kl))
    rel = err / np.maximum(ce, 1.0)
    worst = int(np.argmax(rel))

    checks = [
        Check(
            f"H(P,Q) = H(P) + KL(P‖Q) on {h.size:,} random pairs (K ∈ {{2, 3, 10, 100}}), relative error ≤ 1e-12",
            f"worst |H(P,Q) − H(P) − KL| = {err[worst]:.2e} nats at H(P,Q) = {ce[worst]:.4g} "
            f"(relative {rel[worst]:.2e}, K = {kk[worst]})",
            bool(rel.max() <= 1e-12),
        ),
        Check(
            "H(P,Q) ≥ H(P): coding with the wrong distribution costs extra bits",
            f"min H(P,Q) − H(P) = {np.min(ce - h):.3g} nats",
            bool(np.min(ce - h) >= -1e-12 * np.max(ce)),
        ),
    ]
    fig, ax = plt.subplots(figsize=(5.6, 4))
    sub = rng.choice(h.size, size=min(4000, h.size), replace=False)
    ax.scatter(h[sub] + kl[sub], ce[sub], s=3, alpha=0.4, c=np.log10(kk[sub]), cmap="viridis")
    lim = float(np.quantile(ce[sub], 0.99))
    ax.plot([0, lim], [0, lim], color="C3", lw=1, label="y = x")
    ax.set(
        xlim=(0, lim),
        ylim=(0, lim),
        xlabel="H(P) + KL(P‖Q)  (nats)",
        ylabel="H(P, Q)  (nats)",
        title="Cross-entropy = entropy + KL (4,000 of the pairs)",
    )
    ax.legend(loc="upper left")
    ax.grid(alpha=0.3)
    fig_path = save_figure(ctx, fig, "decomposition")
    return SectionResult(
        key="decomposition",
        title="Cross-entropy = entropy + KL divergence",
        claim="For any P and Q, H(P, Q) = H(P) + KL(P‖Q): the cross-entropy is the entropy plus the extra cost "
        "of using Q instead of P.",
        how=f"{h.size:,} random pairs (Dirichlet, concentrations 0.05 to 50, K ∈ {{2, 3, 10, 100}}); the three terms "
        "are computed independently with klkit.entropy, klkit.cross_entropy and klkit.kl_divergence "
        "(all in log space) and the identity is checked; the worst error is shown.",
        checks=checks,
        figures=[fig_path],
        numbers={
            "pairs": int(h.size),
            "worst_abs_error": float(err[worst]),
            "worst_rel_error": float(rel[worst]),
            "worst_cross_entropy": float(ce[worst]),
            "worst_k": int(kk[worst]),
        },
    )
