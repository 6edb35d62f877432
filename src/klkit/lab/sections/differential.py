"""Differential entropy: the Gaussian's h(σ) = ½ ln(2πeσ²) is negative below σ = 1/√(2πe); not a limit of H."""

from __future__ import annotations

import math

import numpy as np
import scipy.integrate
import scipy.optimize
import scipy.stats

import klkit
from klkit.lab.base import Check, LabContext, SectionResult, save_figure

SIGMA_ZERO = 1.0 / math.sqrt(2 * math.pi * math.e)  # h(N(0, σ²)) = 0 here: ≈ 0.2420


def _h(sigma: float) -> float:
    """klkit's differential entropy of N(0, σ²) (a scipy frozen distribution), in nats."""
    return float(klkit.entropy(scipy.stats.norm(0.0, sigma)))


def _quadrature(sigma: float) -> float:
    """Independent truth: −∫ f ln f by adaptive quadrature (scipy), no closed form, no klkit."""
    dist = scipy.stats.norm(0.0, sigma)
    value, _ = scipy.integrate.quad(lambda x: -dist.pdf(x) * dist.logpdf(x), -40 * sigma, 40 * sigma, limit=200)
    return value


def _binned(deltas: list[float]) -> list[float]:
    """Entropy (nats) of N(0, 1) rounded to bins of width Δ: a discrete distribution, by klkit.entropy."""
    out = []
    for delta in deltas:
        edges = np.arange(-12.0, 12.0 + delta / 2, delta)
        mass = np.diff(scipy.stats.norm.cdf(edges))
        out.append(float(klkit.entropy(mass / mass.sum())))
    return out


def _figure(ctx: LabContext, sigmas: np.ndarray, hs: np.ndarray, deltas: list[float], binned: list[float]):
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.7))
    left.plot(sigmas, hs, color="C0", label="h(N(0, σ²)) = ½ ln(2πeσ²)")
    left.axhline(0, color="black", lw=0.8)
    left.axvline(SIGMA_ZERO, color="C3", ls=":", label=f"σ = 1/√(2πe) ≈ {SIGMA_ZERO:.3f}")
    left.fill_between(sigmas, hs, 0, where=hs < 0, color="C3", alpha=0.15, label="negative entropy")
    left.set(xlabel="σ", ylabel="differential entropy (nats)", title="A narrow Gaussian has negative entropy")
    left.legend(fontsize=9, loc="lower right")
    left.grid(alpha=0.3)
    minus_log = -np.log(deltas)
    h1 = _h(1.0)
    right.plot(minus_log, binned, "o", color="C0", label="H of N(0, 1) in bins of width Δ")
    right.plot(minus_log, h1 + minus_log, color="C1", label="h − log Δ")
    right.axhline(h1, color="gray", ls="--", lw=1, label=f"h = {h1:.3f} nats")
    right.set(xlabel="−log Δ (finer bins →)", ylabel="entropy (nats)", title="Binned entropy grows without bound")
    right.legend(fontsize=9, loc="upper left")
    right.grid(alpha=0.3)
    fig.tight_layout()
    return save_figure(ctx, fig, "differential_entropy")


def run(ctx: LabContext) -> SectionResult:
    ctx.progress("Gaussian differential entropy against quadrature")
    sigmas = np.geomspace(0.02, 4.0, 200)
    hs = np.array([_h(s) for s in sigmas])
    closed = 0.5 * np.log(2 * math.pi * math.e * sigmas**2)
    worst_closed = float(np.max(np.abs(hs - closed)))
    probes = [0.05, 0.1, SIGMA_ZERO, 0.5, 1.0, 3.0]
    worst_quad = max(abs(_h(s) - _quadrature(s)) for s in probes)
    root = scipy.optimize.brentq(_h, 0.05, 1.0, xtol=1e-14)
    negative = bool(np.all(hs[sigmas < SIGMA_ZERO * 0.999] < 0) and np.all(hs[sigmas > SIGMA_ZERO * 1.001] > 0))
    deltas = [1.0, 0.5, 0.1, 0.05, 0.01, 0.005, 0.001]
    binned = _binned(deltas)
    h1 = _h(1.0)
    approx = [b + math.log(d) for b, d in zip(binned, deltas, strict=True)]
    fine_err = max(abs(a - h1) for a, d in zip(approx, deltas, strict=True) if d <= 0.1)
    checks = [
        Check(
            "klkit's differential entropy of N(0, σ²) = ½ ln(2πeσ²) for 200 σ in [0.02, 4]",
            f"worst |difference| = {worst_closed:.2e} nats",
            worst_closed <= 1e-12,
        ),
        Check(
            "… and = −∫ f ln f by adaptive quadrature (scipy.integrate.quad) at σ ∈ {0.05, 0.1, 0.242, 0.5, 1, 3}",
            f"worst |difference| = {worst_quad:.2e} nats",
            worst_quad <= 1e-8,
        ),
        Check(
            "h = 0 exactly at σ = 1/√(2πe) ≈ 0.2420 (root of klkit's h by Brent's method); negative below, positive "
            "above",
            f"root σ = {root:.12f}, 1/√(2πe) = {SIGMA_ZERO:.12f}; sign pattern holds: {negative}",
            abs(root - SIGMA_ZERO) <= 1e-10 and negative,
        ),
        Check(
            "not a limit of discrete entropy: binning N(0, 1) at width Δ gives H_Δ ≈ h − log Δ (within 1e-3 nats "
            "for Δ ≤ 0.1), so H_Δ → ∞ as Δ → 0",
            f"H_Δ + log Δ at Δ = 1, 0.1, 0.001: {approx[0]:.5f}, {approx[2]:.5f}, {approx[-1]:.6f}; h = {h1:.6f}; "
            f"H at Δ = 0.001: {binned[-1]:.3f} nats",
            fine_err <= 1e-3 and binned[-1] > binned[-2] > binned[2] and binned[-1] > h1 + 6,
        ),
    ]
    fig_path = _figure(ctx, sigmas, hs, deltas, binned)
    return SectionResult(
        key="differential",
        title="Differential entropy: the continuous analogue, which can be negative",
        claim="For a density f, the differential entropy is h(f) = −∫ f(x) log f(x) dx. For N(μ, σ²) it is "
        "½ ln(2πeσ²): negative when σ < 1/√(2πe) ≈ 0.242. It is not the limit of the discrete entropy of finer "
        "and finer bins, which grows like h − log Δ.",
        how="klkit.entropy of scipy.stats.norm(0, σ) for 200 σ, against the closed form and against quadrature "
        "of −∫ f ln f (scipy.integrate.quad, no klkit); the zero of h by Brent's root finder; N(0, 1) rounded to "
        "bins of width Δ = 1 … 0.001 (masses from the normal CDF) and its discrete entropy by klkit.entropy.",
        checks=checks,
        figures=[fig_path],
        numbers={
            "worst_closed_form_error": worst_closed,
            "worst_quadrature_error": worst_quad,
            "zero_sigma": root,
            "binned": dict(zip(map(str, deltas), binned, strict=True)),
            "h_standard_normal": h1,
        },
        intuition="A density is not a probability: it can exceed 1 where the distribution is narrow, so −log f can "
        "be negative and so can its average. Differential entropy measures spread relative to a unit interval, "
        "not information in bits you could store: describing a real number exactly takes infinitely many bits.",
        example="N(0, 0.1²): h = ½ ln(2πe · 0.01) = 1.419 − 2.303 = −0.884 nats. N(0, 1): h = ½ ln(2πe) = 1.419 "
        "nats. Rounded to bins of width 0.01, N(0, 1) has H ≈ 1.419 + ln 100 = 6.024 nats.",
        captions={
            fig_path.name: "Left: the Gaussian's entropy falls below zero (shaded) once σ < 0.242, where the density "
            "peaks above 1. Right: the entropy of N(0, 1) rounded to bins of width Δ follows the line h − log Δ and "
            "grows without bound as the bins shrink; only the difference h is finite."
        },
    )
