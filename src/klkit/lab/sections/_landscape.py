"""Forward and reverse KL between a Gaussian q = N(m, s²) and the lesson's bimodal target, on grids of (m, s).

Continuous KL is computed by klkit on a fine x grid: both densities become masses f(x)·Δx (normalised), and the
KL of the masses equals the integral's Riemann sum (Δx cancels in the log-ratio); with Δx = 0.02 over [−50, 50]
it agrees with adaptive quadrature to better than 1e-6 nats for s in [0.3, 5], |m| ≤ 6 (checked in the section,
corners included: a wide q's tails, where log p falls like −x²/2, carry much of the reverse KL).
"""

from __future__ import annotations

import math

import numpy as np
import scipy.integrate
import scipy.stats

import klkit

MODE, WIDTH = 3.0, 1.0  # p = ½ N(−3, 1) + ½ N(3, 1), as in the fitting section
X = np.linspace(-50.0, 50.0, 5001)  # Δx = 0.02; q = N(6, 5²) keeps 8.8σ inside: its tails count


def log_target(x: np.ndarray) -> np.ndarray:
    """log p(x) of the bimodal target (scipy)."""
    return np.logaddexp(scipy.stats.norm.logpdf(x, -MODE, WIDTH), scipy.stats.norm.logpdf(x, MODE, WIDTH)) + math.log(
        0.5
    )


def _log_mass(logf: np.ndarray) -> np.ndarray:
    """Log-masses on the grid, normalised along the last axis (explicitly: the densities' Riemann sums)."""
    return logf - np.logaddexp.reduce(logf, axis=-1, keepdims=True)


def kl_grid(means: np.ndarray, sigmas: np.ndarray, x: np.ndarray = X) -> tuple[np.ndarray, np.ndarray]:
    """Forward KL(p‖q) and reverse KL(q‖p) in nats for every (mean, sigma), shape ``(len(means), len(sigmas))``."""
    lp = _log_mass(log_target(x))
    forward = np.empty((len(means), len(sigmas)))
    reverse = np.empty_like(forward)
    for i, m in enumerate(means):  # one mean at a time: bounded memory
        lq = _log_mass(scipy.stats.norm.logpdf(x[None, :], m, np.asarray(sigmas)[:, None]))
        lp_b = np.broadcast_to(lp, lq.shape)
        forward[i] = klkit.kl_divergence(lp_b, lq, kind="log_probs")
        reverse[i] = klkit.kl_divergence(lq, lp_b, kind="log_probs")
    return forward, reverse


def integrands(mean: float, sigma: float, x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """q(x), the forward integrand p log(p/q) and the reverse integrand q log(q/p) at the points ``x``."""
    lp = log_target(x)
    lq = scipy.stats.norm.logpdf(x, mean, sigma)
    p, q = np.exp(lp), np.exp(lq)
    return q, p * (lp - lq), q * (lq - lp)


def quadrature_kl(mean: float, sigma: float) -> tuple[float, float]:
    """Independent truth: forward and reverse KL by adaptive quadrature (scipy.integrate.quad), no klkit."""

    def fwd(x: float) -> float:
        lp = float(log_target(np.array([x]))[0])
        return math.exp(lp) * (lp - scipy.stats.norm.logpdf(x, mean, sigma))

    def rev(x: float) -> float:
        lp = float(log_target(np.array([x]))[0])
        lq = scipy.stats.norm.logpdf(x, mean, sigma)
        return math.exp(lq) * (lq - lp)

    lo, hi = min(-MODE - 12, mean - 40 * sigma), max(MODE + 12, mean + 40 * sigma)
    points = sorted({-MODE, MODE, mean})
    f = scipy.integrate.quad(fwd, lo, hi, points=points, limit=400, epsabs=1e-12)[0]
    r = scipy.integrate.quad(rev, lo, hi, points=points, limit=400, epsabs=1e-12)[0]
    return f, r


def local_minima(z: np.ndarray) -> list[tuple[int, int]]:
    """Grid cells no higher than any of their (up to 8) neighbours."""
    out = []
    for i in range(z.shape[0]):
        for j in range(z.shape[1]):
            block = z[max(i - 1, 0) : i + 2, max(j - 1, 0) : j + 2]
            if z[i, j] <= block.min():
                out.append((i, j))
    return out
