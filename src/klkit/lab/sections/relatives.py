"""KL bounds its relatives: total variation, Hellinger, Rényi divergences and mutual information."""

from __future__ import annotations

import math

import numpy as np

import klkit
from klkit.lab.base import Check, LabContext, SectionResult, save_figure
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
    at_one = float(np.max(np.abs(renyi[_ORDERS.index(1.0)] - kl)))
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
            f"Rényi D_α is non-decreasing in α over α ∈ {{{', '.join(_order(a) for a in _ORDERS)}}}; D_1 is KL",
            f"min relative step = {rel_step:.1e}; max |D_1 − KL| = {at_one:.1e}",
            bool(rel_step >= -_TOL and at_one == 0.0),
        ),
        Check(
            f"D_α is continuous at α = 1: the slopes (D_(1±δ) − KL)/(±δ), δ = {delta:g}, equal the derivative "
            "½ Var_P(log P/Q) computed with numpy",
            f"max relative slope error = {slope_error:.1e} (slopes up to {np.max(half_variance):.3g} nats)",
            bool(slope_error <= 1e-3),
        ),
        Check(
            f"I(X;Y) = KL(P_XY‖P_X P_Y) = H(X) + H(Y) − H(X,Y) = H(Y) − H(Y|X) ≥ 0 on {mi['tables']:,} random "
            "joint tables (4 × 5, some cells impossible)",
            f"max spread of the four = {mi['spread']:.1e} nats; min I = {mi['min']:.2e}",
            bool(mi["spread"] <= 1e-12 and mi["min"] >= 0),
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
        numbers={
            "pairs": n,
            "max_tv_over_pinsker": float(np.max(tv / pinsker)),
            "max_tv_over_bretagnolle_huber": float(np.max(tv / bretagnolle_huber)),
            "fraction_bretagnolle_huber_tighter": bh_tighter,
            "max_2h2_over_kl": float(np.max(2 * h2 / kl)),
            "min_renyi_step": rel_step,
            "renyi_slope_error_at_one": slope_error,
            "mutual_information": mi,
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


def _order(alpha: float) -> str:
    return "∞" if math.isinf(alpha) else f"{alpha:g}"


def _figure(ctx: LabContext, kl: np.ndarray, tv: np.ndarray, renyi: np.ndarray):
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.8))
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
        line = right.plot(finite, curve, marker="o", markersize=3)[0]
        right.axhline(renyi[-1, j], color=line.get_color(), linestyle=":", linewidth=0.8)
        right.plot([1.0], [renyi[_ORDERS.index(1.0), j]], marker="*", markersize=10, color=line.get_color())
    right.set(
        xlabel="order α", ylabel="D_α(P‖Q)  (nats)", title="Rényi divergences grow with α (★ α = 1: KL; dotted: α = ∞)"
    )
    right.title.set_fontsize(9)
    right.grid(alpha=0.3)
    fig.subplots_adjust(wspace=0.25)
    return save_figure(ctx, fig, "relatives")
