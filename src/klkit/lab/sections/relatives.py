"""KL bounds its relatives: total variation, Hellinger, Rényi divergences and mutual information."""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np

import klkit
from klkit.lab.base import Check, LabContext, SectionResult, save_figure
from klkit.lab.sections._exact import exact_kl, input_rounding, unclamped_kl
from klkit.lab.sections._random import random_pairs

_ORDERS = (0.0, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 4.0, 8.0, math.inf)
_TOL = 1e-12  # rounding slack on inequalities between numbers of order 1


def run(ctx: LabContext) -> SectionResult:
    rng = np.random.default_rng(ctx.seed + 12)
    n = 4_000 if ctx.quick else 40_000
    k = 6
    ctx.progress(f"TV, Hellinger and Rényi divergences of {n:,} random pairs")
    p, q = random_pairs(rng, n, k)
    kl = klkit.kl_divergence(p, q)
    tv = klkit.total_variation(p, q)
    h2 = klkit.hellinger_distance(p, q) ** 2
    d_half = klkit.renyi_divergence(p, q, 0.5)
    renyi = np.stack([klkit.renyi_divergence(p, q, a) for a in _ORDERS])  # (orders, pairs)
    delta = 1e-7
    near_one = np.stack([klkit.renyi_divergence(p, q, 1 + d) for d in (-delta, delta)])

    pinsker = np.sqrt(kl / 2)
    bretagnolle_huber = np.sqrt(-np.expm1(-kl))
    bh_tighter = float(np.mean(bretagnolle_huber < pinsker))
    steps = np.diff(renyi, axis=0)
    rel_step = float(np.min(steps / (1 + np.abs(renyi[1:]))))
    from scipy.special import rel_entr

    reference_kl = rel_entr(p, q).sum(axis=1)  # scipy, independent of klkit
    at_one = float(np.max(np.abs(renyi[_ORDERS.index(1.0)] - reference_kl) / (1 + reference_kl)))
    # dD_α/dα at α = 1 is ½ Var_P(log P/Q) (numpy): the one-sided slopes from D_(1±δ) must match it
    log_ratio = np.log(p) - np.log(q)
    half_variance = 0.5 * np.sum(p * (log_ratio - kl[:, None]) ** 2, axis=1)
    slopes = (near_one - kl) / np.array([-delta, delta])[:, None]
    slope_error = float(np.max(np.abs(slopes - half_variance) / (1 + half_variance)))
    bc = np.sum(np.sqrt(p * q), axis=1)  # the Bhattacharyya coefficient, numpy
    bhattacharyya = float(np.max(np.abs(d_half + 2 * np.log(bc)) / (1 + d_half)))
    hellinger_bc = float(np.max(np.abs(h2 - (1 - bc))))

    ctx.progress("mutual information of random joint tables")
    mi = _information_checks(rng, 500 if ctx.quick else 5_000)
    exact = _exact_information(np.random.default_rng(ctx.seed + 41), 100 if ctx.quick else 400)

    checks = [
        Check(
            f"Pinsker: TV ≤ √(KL/2) on {n:,} random pairs (K = {k}, KL in nats)",
            f"max TV / √(KL/2) = {np.max(tv / pinsker):.4f}",
            bool(np.all(tv <= pinsker + _TOL)),
        ),
        Check(
            "Bretagnolle–Huber: TV ≤ √(1 − e^−KL), the better bound once KL is large",
            f"max TV / √(1 − e^−KL) = {np.max(tv / bretagnolle_huber):.4f}; tighter than Pinsker for "
            f"{100 * bh_tighter:.1f}% of pairs",
            bool(np.all(tv <= bretagnolle_huber + _TOL)),
        ),
        Check(
            "Hellinger and Bhattacharyya: H² = 1 − BC, BC = Σ√(pq) (numpy); 2H² ≤ D_½ = −2 log BC ≤ KL, so H² ≤ KL",
            f"max 2H²/KL = {np.max(2 * h2 / kl):.4f}, max (D_½ − KL) = {np.max(d_half - kl):.2e}; "
            f"max relative |D_½ + 2 log BC| = {bhattacharyya:.1e}, max |H² − (1 − BC)| = {hellinger_bc:.1e}",
            bool(
                np.all(2 * h2 <= d_half + _TOL)
                and np.all(d_half <= kl + _TOL * (1 + kl))
                and bhattacharyya <= 1e-12
                and hellinger_bc <= 1e-12
            ),
        ),
        Check(
            f"Rényi D_α is non-decreasing in α over α ∈ {{{', '.join(_order(a) for a in _ORDERS)}}}; D_1 is KL "
            "(against scipy.special.rel_entr summed, not klkit)",
            f"min relative step = {rel_step:.1e}; max |D_1 − KL_scipy| / (1 + KL) = {at_one:.1e}",
            bool(rel_step >= -_TOL and at_one <= 1e-12),
        ),
        Check(
            f"D_α is continuous at α = 1: the slopes (D_(1±δ) − KL)/(±δ), δ = {delta:g}, equal the derivative "
            "½ Var_P(log P/Q) computed with numpy",
            f"max relative slope error = {slope_error:.1e} (slopes up to {np.max(half_variance):.3g} nats)",
            bool(slope_error <= 1e-3),
        ),
        Check(
            f"I(X;Y) = KL(P_XY‖P_X P_Y) = H(X) + H(Y) − H(X,Y) = H(Y) − H(Y|X) on {mi['tables']:,} random "
            "joint tables (4 × 5, some cells impossible)",
            f"max spread of the four = {mi['spread']:.1e} nats",
            bool(mi["spread"] <= 1e-12),
        ),
        Check(
            f"I(X;Y) ≥ 0, exactly: {exact['tables']} joint tables with rational cells c/N (3 × 4, N ≤ 10⁸), "
            "mutual information at 50 digits (mpmath) is > 0 for dependent tables and exactly 0 for independent "
            "ones (P_XY = P_X P_Y); klkit.mutual_information within the float64 rounding bound of it",
            f"min exact I over {exact['dependent']} dependent tables = {exact['min_dependent']:.2e} nats; "
            f"max |I| over {exact['independent']} independent = {exact['max_independent']:.1g}; max |klkit − "
            f"exact| / bound = {exact['klkit_error_ratio']:.3f}; {exact['raw_negative']} unclamped float64 sums "
            f"negative, all within their bound (max |sum − exact| / bound = {exact['raw_error_ratio']:.3f})",
            exact["min_dependent"] > 0
            and exact["max_independent"] == 0
            and exact["klkit_error_ratio"] <= 1
            and exact["raw_error_ratio"] <= 1,
        ),
        Check(
            "data processing: a channel Y → Z never adds information, I(X;Z) ≤ I(X;Y)",
            f"max I(X;Z) − I(X;Y) = {mi['processing']:.2e} nats; median ratio I(X;Z)/I(X;Y) = {mi['ratio']:.3f}",
            bool(mi["processing"] <= _TOL),
        ),
    ]
    shown = np.flatnonzero((renyi[-1] < 2.0) & (kl > 0.01))[:5]  # a few pairs with moderate D_∞
    figure = _figure(ctx, kl, tv, renyi[:, shown])
    return SectionResult(
        key="relatives",
        title="KL bounds its relatives",
        claim="Small KL forces the other measures of difference to be small: total variation ≤ √(KL/2) "
        "(Pinsker) and ≤ √(1 − e^−KL) (Bretagnolle–Huber), Hellinger² ≤ KL; KL is the α = 1 member of "
        "the Rényi family, which grows with α; mutual information is the KL from independence and "
        "cannot grow through a channel.",
        how=f"klkit.total_variation, hellinger_distance, renyi_divergence and kl_divergence on {n:,} random "
        "Dirichlet pairs (concentrations 0.05 to 50); klkit.mutual_information, joint_entropy and "
        f"conditional_entropy on {mi['tables']:,} random joint tables, compared with klkit.entropy of "
        "their marginals (numpy sums) and pushed through random channels.",
        checks=checks,
        figures=[figure],
        intuition="KL is one way to measure how different two distributions are; total variation (the largest "
        "difference in probability any event can have), Hellinger distance and the Rényi family are others. They "
        "are tied together: a small KL forces all of them to be small, Pinsker's TV ≤ √(KL/2) above all. That is "
        "why a KL budget works as a trust region ([TRPO](#trpo), [RLHF](#rlhf)): a policy within KL δ of the "
        "old one cannot "
        "change the probability of any event by more than √(δ/2). Mutual information is the KL between a joint "
        "distribution and the product of its marginals, so it inherits KL ≥ 0.",
        example="KL budget δ = 0.01 nats: no event's probability can move by more than √(0.01/2) = 0.071. "
        "P = (½, ½), Q = (¼, ¾): TV = ¼, KL = 0.144 nats and √(0.144/2) = 0.268 ≥ 0.25.",
        captions={
            figure.name: "Left: each dot is a random pair; every one lies under both curves — Pinsker's "
            "√(KL/2) (tight for small KL) and Bretagnolle–Huber's √(1 − e^−KL) (better once KL is large, "
            "and never above 1). Right: five pairs, the Rényi divergence of each against its order α: every "
            "curve rises, passes through KL at α = 1 (★) and flattens towards log max P/Q at α = ∞ (dotted)."
        },
        numbers={
            "pairs": n,
            "max_tv_over_pinsker": float(np.max(tv / pinsker)),
            "max_tv_over_bretagnolle_huber": float(np.max(tv / bretagnolle_huber)),
            "fraction_bretagnolle_huber_tighter": bh_tighter,
            "max_2h2_over_kl": float(np.max(2 * h2 / kl)),
            "min_renyi_step": rel_step,
            "renyi_slope_error_at_one": slope_error,
            "mutual_information": mi,
            "mutual_information_exact": exact,
        },
    )


def _information_checks(rng: np.random.Generator, n: int) -> dict[str, float]:
    weights = rng.gamma(0.5, size=(n, 4, 5)) * (rng.random((n, 4, 5)) > 0.15)  # some impossible cells
    weights[:, 0, 0] += 1e-3
    pxy = weights / weights.sum(axis=(1, 2), keepdims=True)
    px, py = pxy.sum(axis=2), pxy.sum(axis=1)
    mi = klkit.mutual_information(pxy)
    as_kl = klkit.kl_divergence(pxy.reshape(n, -1), (px[:, :, None] * py[:, None, :]).reshape(n, -1))
    by_entropies = klkit.entropy(px) + klkit.entropy(py) - klkit.joint_entropy(pxy)
    by_conditional = klkit.entropy(py) - klkit.conditional_entropy(pxy)
    spread = np.max(np.abs(np.stack([as_kl, by_entropies, by_conditional]) - mi))
    channel = rng.dirichlet(np.full(3, 0.5), size=(n, 5))  # p(z | y): (tables, y, z)
    pxz = np.einsum("txy,tyz->txz", pxy, channel)
    processed = klkit.mutual_information(pxz)
    informative = mi > 1e-9
    return {
        "tables": n,
        "spread": float(spread),
        "min": float(mi.min()),
        "processing": float(np.max(processed - mi)),
        "ratio": float(np.median(processed[informative] / mi[informative])),
    }


def _exact_information(rng: np.random.Generator, n: int) -> dict[str, float]:
    """Joint tables with rational cells: exact I(X;Y) = KL(P_XY‖P_X P_Y) (mpmath) against klkit and plain float64.

    Half the tables are independent by construction (cells a_i b_j / (A B)); half have cells c_ij / N,
    some of them a single unit away from independence.
    """
    truth, values, raw, bound, dependent = [], [], [], [], []
    for t in range(n):
        a = 1 + rng.integers(0, 10 ** rng.uniform(1, 4), size=3)
        b = 1 + rng.integers(0, 10 ** rng.uniform(1, 4), size=4)
        cells = np.outer(a, b)
        if t % 2:  # dependent: move one unit (or a random amount) between two cells
            i, j = rng.choice(12, size=2, replace=False)
            amount = 1 if t % 4 == 1 else int(rng.integers(1, cells.flat[i] + 1))
            amount = min(amount, int(cells.flat[i]) - 1)  # every cell keeps at least 1/N
            cells.flat[i] -= amount
            cells.flat[j] += amount
        total = int(cells.sum())
        pxy = [[Fraction(int(c), total) for c in row] for row in cells]
        px = [sum(row, Fraction(0)) for row in pxy]
        py = [sum(col, Fraction(0)) for col in zip(*pxy, strict=True)]
        joint = [c for row in pxy for c in row]
        product = [x * y for x in px for y in py]
        truth.append(exact_kl(joint, product))
        dependent.append(joint != product)
        table = np.array([[float(c) for c in row] for row in pxy])
        values.append(float(klkit.mutual_information(table)))
        f_joint, f_product = table.ravel(), np.outer(table.sum(1), table.sum(0)).ravel()
        s, r = unclamped_kl(f_joint, f_product)
        raw.append(float(s))
        bound.append(float(r + input_rounding(f_joint, f_product)))
    truth_a, values_a, raw_a, bound_a, dep = map(np.array, (truth, values, raw, bound, dependent))
    return {
        "tables": n,
        "dependent": int(dep.sum()),
        "independent": int((~dep).sum()),
        "min_dependent": float(truth_a[dep].min()),
        "max_independent": float(np.abs(truth_a[~dep]).max()),
        "klkit_error_ratio": float(np.max(np.abs(values_a - truth_a) / bound_a)),
        "raw_negative": int(np.sum(raw_a < 0)),
        "raw_error_ratio": float(np.max(np.abs(raw_a - truth_a) / bound_a)),
    }


def _order(alpha: float) -> str:
    return "∞" if math.isinf(alpha) else f"{alpha:g}"


def _figure(ctx: LabContext, kl: np.ndarray, tv: np.ndarray, renyi: np.ndarray):
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 3.8))
    left.scatter(kl, tv, s=3, alpha=0.3, color="C0", label="random pairs", rasterized=True)
    grid = np.geomspace(max(kl.min(), 1e-4), kl.max(), 200)
    left.plot(grid, np.minimum(np.sqrt(grid / 2), 1.0), color="C3", label="Pinsker √(KL/2)  (TV ≤ 1)")
    left.plot(grid, np.sqrt(-np.expm1(-grid)), color="C2", label="Bretagnolle–Huber √(1 − exp(−KL))")
    left.set(
        xscale="log", xlabel="KL(P‖Q)  (nats)", ylabel="TV(P, Q)", ylim=(0, 1.05), title="TV lies under both bounds"
    )
    left.legend(loc="upper left", fontsize=8)
    left.grid(alpha=0.3)
    finite = [a for a in _ORDERS if math.isfinite(a)]
    for j in range(renyi.shape[1]):
        curve = renyi[: len(finite), j]
        kl_j = renyi[_ORDERS.index(1.0), j]
        line = right.plot(finite, curve, marker="o", markersize=3, label=f"pair {j + 1}: KL = D_1 = {kl_j:.2f}")[0]
        right.axhline(renyi[-1, j], color=line.get_color(), linestyle=":", linewidth=0.8)
        right.plot([1.0], [kl_j], marker="*", markersize=11, color=line.get_color())
    right.plot([], [], "k*", markersize=9, linestyle="none", label="★ α = 1: D_1 = KL")
    right.plot([], [], "k:", linewidth=0.8, label="dotted: D_∞ = log max P/Q")
    right.set(xlabel="order α", ylabel="D_α(P‖Q)  (nats)", title="Rényi divergences D_α grow with α")
    right.legend(fontsize=8, loc="center left", bbox_to_anchor=(1.02, 0.5))
    right.grid(alpha=0.3)
    fig.subplots_adjust(wspace=0.25)
    return save_figure(ctx, fig, "relatives")
