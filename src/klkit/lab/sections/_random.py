"""Random pairs of distributions for the lab's property checks."""

from __future__ import annotations

import numpy as np


def random_pairs(rng: np.random.Generator, n: int, k: int) -> tuple[np.ndarray, np.ndarray]:
    """``n`` pairs of distributions on ``k`` outcomes, Dirichlet with concentrations from 0.05 (spiky) to 50 (flat).

    Returns two ``(n, k)`` float64 arrays of strictly positive probabilities (rows sum to 1).
    """

    def draw() -> np.ndarray:
        alpha = rng.choice([0.05, 0.3, 1.0, 5.0, 50.0], size=n)[:, None] * np.ones((n, k))
        x = rng.gamma(alpha)
        x = np.maximum(x, np.finfo(np.float64).tiny)  # gamma(0.05) underflows to 0 now and then
        return x / x.sum(axis=1, keepdims=True)

    return draw(), draw()
