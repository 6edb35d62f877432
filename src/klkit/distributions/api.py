"""Entropy, cross-entropy and KL of distribution objects: exact if registered, else Monte Carlo.

These are what :func:`klkit.entropy`, :func:`klkit.cross_entropy` and
:func:`klkit.kl_divergence` call when given ``torch.distributions`` or frozen
``scipy.stats`` objects.

Options (keyword-only)
----------------------
method : {'auto', 'exact', 'mc'}, default 'auto'
    'exact' uses a registered closed form or raises :class:`~klkit.errors.NotRegisteredError`;
    'mc' always samples; 'auto' uses the closed form when one is registered, else samples.
n_samples : int, default 100_000
    Samples per batch element for Monte Carlo.
seed : int, optional
    Seed for Monte Carlo; same seed, same answer (global generators are left untouched).
estimator : {'k1', 'k2', 'k3'}, default 'k1'
    Monte Carlo KL estimator (:func:`klkit.estimators.mc_kl`). k1 and k3 are
    unbiased; **k2 is biased** (it matches KL only to second order in log(q/p)).
    k1 is the default here: its variance is finite whenever Var_p[log(p/q)] is,
    while k3's needs E_p[(q/p)²] < ∞, which fails when q has heavier tails than p
    (e.g. N(0, 1) against a Student t); k3 is best when p and q are close.
base : float, optional
    None for nats, 2 for bits.

Closed forms return arrays with the parameters' batch shape (torch in → torch
out with gradients; scipy in → numpy out); Monte Carlo returns an
:class:`~klkit.estimators.Estimate`.

This module gathers them: entropy, cross-entropy, KL and the decomposition live in
:mod:`klkit.distributions.information_api`, the Jensen–Shannon divergence in
:mod:`klkit.distributions.js_api`, and the total variation, Hellinger distance, Rényi
divergence, f-divergences and the Jensen–Shannon distance in
:mod:`klkit.distributions.divergence_api`.
"""

from klkit.distributions.divergence_api import (
    f_divergence,
    hellinger_distance,
    js_distance,
    renyi_divergence,
    total_variation,
)
from klkit.distributions.information_api import cross_entropy, decompose, entropy, kl_divergence
from klkit.distributions.js_api import js_divergence

__all__ = [
    "cross_entropy",
    "decompose",
    "entropy",
    "f_divergence",
    "hellinger_distance",
    "js_distance",
    "js_divergence",
    "kl_divergence",
    "renyi_divergence",
    "total_variation",
]
