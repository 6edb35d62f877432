"""KL is not symmetric: KL(P‖Q) ≠ KL(Q‖P) in general."""

from __future__ import annotations

import html
import math

import numpy as np
import scipy.stats

import klkit
from klkit.lab.base import Check, LabContext, SectionResult
from klkit.lab.sections._explore_pq import three_outcomes, two_outcomes
from klkit.lab.sections._random import random_pairs


def _explorer_check(values: np.ndarray, p: np.ndarray, q: np.ndarray) -> float:
    """Worst difference between the explorer's four quantities and scipy's (inf must meet inf)."""
    ref = np.stack(
        [
            scipy.stats.entropy(p, axis=-1),
            scipy.stats.entropy(p, axis=-1) + scipy.stats.entropy(p, q, axis=-1),
            scipy.stats.entropy(p, q, axis=-1),
            scipy.stats.entropy(q, p, axis=-1),
        ],
        axis=-1,
    )
    same_inf = np.array_equal(np.isinf(values), np.isinf(ref))
    finite = np.isfinite(ref)
    return float(np.max(np.abs(values[finite] - ref[finite]))) if same_inf else math.inf


def _normal_kl(m1: float, s1: float, m2: float, s2: float) -> float:
    """KL(N(m1, s1²)‖N(m2, s2²)) from the textbook formula."""
    return math.log(s2 / s1) + (s1**2 + (m1 - m2) ** 2) / (2 * s2**2) - 0.5


def run(ctx: LabContext) -> SectionResult:
    rng = np.random.default_rng(ctx.seed + 5)
    pairs = [
        ("fair coin vs 0.9-coin", [0.5, 0.5], [0.9, 0.1]),
        ("uniform vs skewed (K = 4)", [0.25, 0.25, 0.25, 0.25], [0.7, 0.1, 0.1, 0.1]),
        ("broad vs narrow (K = 3)", [0.4, 0.3, 0.3], [0.98, 0.01, 0.01]),
        ("Q misses an outcome P has", [0.5, 0.5], [1.0, 0.0]),
    ]
    rows, worst_ref = [], 0.0
    for name, p, q in pairs:
        pq, qp = float(klkit.kl_divergence(p, q)), float(klkit.kl_divergence(q, p))
        ref_pq, ref_qp = float(scipy.stats.entropy(p, q)), float(scipy.stats.entropy(q, p))
        for mine, ref in ((pq, ref_pq), (qp, ref_qp)):
            if math.isinf(ref):
                worst_ref = max(worst_ref, 0.0 if mine == ref else math.inf)
            else:
                worst_ref = max(worst_ref, abs(mine - ref))
        rows.append((name, str(p), str(q), pq, qp))
    # Gaussians: klkit's closed form for torch distributions, checked against the textbook formula
    import torch
    from torch.distributions import Normal

    def normal(m: float, s: float) -> Normal:
        return Normal(torch.tensor(m, dtype=torch.float64), torch.tensor(s, dtype=torch.float64))

    gauss = [("N(0, 1) vs N(1, 2²)", 0.0, 1.0, 1.0, 2.0), ("N(0, 1) vs N(0, 3²)", 0.0, 1.0, 0.0, 3.0)]
    for name, m1, s1, m2, s2 in gauss:
        p_n, q_n = normal(m1, s1), normal(m2, s2)
        pq, qp = float(klkit.kl_divergence(p_n, q_n)), float(klkit.kl_divergence(q_n, p_n))
        worst_ref = max(
            worst_ref,
            abs(pq - _normal_kl(m1, s1, m2, s2)) / max(1.0, pq),
            abs(qp - _normal_kl(m2, s2, m1, s1)) / max(1.0, qp),
        )
        rows.append((name, f"N({m1:g}, {s1:g}²)", f"N({m2:g}, {s2:g}²)", pq, qp))

    n = 10_000 if ctx.quick else 100_000
    ctx.progress(f"asymmetry on {n:,} random pairs")
    p, q = random_pairs(rng, n, 5)
    forward, reverse = klkit.kl_divergence(p, q), klkit.kl_divergence(q, p)
    rel_diff = np.abs(forward - reverse) / np.maximum(forward, reverse)
    frac = float(np.mean(rel_diff > 1e-6))
    median_ratio = float(np.median(np.maximum(forward, reverse) / np.minimum(forward, reverse)))
    js_sym = float(np.max(np.abs(klkit.js_divergence(p, q) - klkit.js_divergence(q, p))))

    ctx.progress("the P/Q explorers")
    pq2, values2 = two_outcomes()
    pq3, values3 = three_outcomes()
    grid = np.round(np.linspace(0.0, 1.0, 21), 10)
    g_p, g_q = (x.ravel() for x in np.meshgrid(grid, grid, indexing="ij"))
    worst2 = _explorer_check(values2, np.stack([g_p, 1 - g_p], -1), np.stack([g_q, 1 - g_q], -1))
    n_inf = int(np.isinf(values2[:, 2]).sum())
    finite3 = np.isfinite(values3[:, 1])
    resid3 = float(np.max(np.abs(values3[finite3, 1] - values3[finite3, 0] - values3[finite3, 2])))
    inf_match3 = bool(np.array_equal(~finite3, np.isinf(values3[:, 2])))

    coin = rows[0]
    checks = [
        Check(
            "the lesson's example: KL(P‖Q) ≠ KL(Q‖P) for P = (½, ½), Q = (0.9, 0.1)",
            f"KL(P‖Q) = {coin[3]:.4f}, KL(Q‖P) = {coin[4]:.4f} nats",
            abs(coin[3] - coin[4]) > 0.1,
        ),
        Check(
            "table values agree with independent references: scipy.stats.entropy(p, q) (= KL(p‖q)) for the "
            "discrete pairs, the textbook formula for the Gaussians",
            f"worst difference = {worst_ref:.2e}",
            worst_ref <= 1e-12,
        ),
        Check(
            f"asymmetry is the rule: random pairs (K = 5, {n:,}) with KL(P‖Q) ≠ KL(Q‖P) (relative difference > 1e-6)",
            f"{100 * frac:.2f}% of pairs; median ratio of the larger to the smaller = {median_ratio:.2f}",
            frac > 0.99,
        ),
        Check(
            f"the two-outcome explorer's {len(values2)} frames agree with scipy.stats.entropy (H, H + KL, both KLs), "
            "+∞ exactly where scipy has it",
            f"worst difference = {worst2:.2e} nats; KL(P‖Q) = +∞ in {n_inf} frames (Q = 0 or 1 with P ≠ Q there)",
            worst2 <= 1e-12 and n_inf == 2 * 20,
        ),
        Check(
            f"the three-outcome explorer: {len(values3):,} frames (every pair on a 0.1 simplex grid), KL ≥ 0 and "
            "H(P, Q) = H(P) + KL(P‖Q) in each (+∞ on both sides where Q misses an outcome of P)",
            f"min KL = {np.min(values3[:, 2:]):.2g}; worst |H(P,Q) − H(P) − KL| over finite frames = {resid3:.1e}; "
            f"+∞ cross-entropy exactly where KL(P‖Q) = +∞: {inf_match3}",
            bool(np.min(values3[:, 2:]) >= 0) and resid3 <= 1e-12 and inf_match3,
        ),
        Check("by contrast Jensen–Shannon is symmetric", f"max |JS(P,Q) − JS(Q,P)| = {js_sym:.2e}", js_sym <= 1e-12),
    ]
    body = "".join(
        f"<tr><td>{html.escape(name)}</td><td>{html.escape(ps)}</td><td>{html.escape(qs)}</td>"
        f'<td class="num">{pq:.4f}</td><td class="num">{qp:.4f}</td></tr>'
        for name, ps, qs, pq, qp in rows
    )
    table = f"<table><tr><th>pair</th><th>P</th><th>Q</th><th>KL(P‖Q) nats</th><th>KL(Q‖P) nats</th></tr>{body}</table>"
    return SectionResult(
        key="asymmetry",
        title="KL divergence is not symmetric",
        claim="KL(P‖Q) and KL(Q‖P) differ in general: KL is a divergence, not a distance. It is infinite when Q "
        "gives zero probability to an outcome P can produce, but not the other way round.",
        how="A table of both directions with klkit.kl_divergence for the lesson's pairs (checked against "
        "scipy.stats.entropy) and for Gaussians as torch distributions (klkit's closed form, checked against the "
        f"textbook formula); the fraction of {n:,} random pairs where the two directions differ.",
        checks=checks,
        tables_html=[table],
        intuition="KL(P‖Q) averages log(p/q) over samples of P: it asks how surprised someone who believes Q is by "
        "what P actually produces. Swap the roles and you average a different quantity under a different "
        "distribution, so the two directions differ. If Q says an outcome is impossible and P produces it, the "
        "believer in Q is infinitely surprised: KL(P‖Q) = +∞.",
        example="P = fair coin (0.5, 0.5), Q = (0.9, 0.1): KL(P‖Q) = 0.5 ln(0.5/0.9) + 0.5 ln(0.5/0.1) = −0.294 + "
        "0.805 = 0.511 nats; KL(Q‖P) = 0.9 ln(0.9/0.5) + 0.1 ln(0.1/0.5) = 0.529 − 0.161 = 0.368 nats.",
        interactive_html=[pq2.html(), pq3.html()],
        numbers={
            "explorer_worst_difference": worst2,
            "table": [{"pair": r[0], "kl_pq": r[3], "kl_qp": r[4]} for r in rows],
            "fraction_asymmetric": frac,
            "median_ratio": median_ratio,
        },
    )
