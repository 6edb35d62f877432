r"""Measuring a trained VAE: the importance-sampled :math:`\log p(x)`, active units, ELBO terms, a KL check.

:func:`evaluate` runs them all on a run directory's saved model and the fixed test images and
writes ``eval.json`` (and figures). Every random draw comes from a CPU generator seeded by the
caller, so results do not depend on the device beyond floating-point rounding and the caller's
global RNG is untouched.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

import torch

from klkit.distributions import gaussian_kl_standard_normal
from klkit.estimators import mc_kl
from klkit.train._runs import resolve_device, torch_threads
from klkit.train.data import load_images
from klkit.train.vae.data import fixed_test_images, standard_normal
from klkit.train.vae.figures import write_figures
from klkit.train.vae.model import VAE
from klkit.train.vae.rundir import load_model

__all__ = [
    "ACTIVE_UNIT_THRESHOLD",
    "active_units",
    "batch_statistics",
    "evaluate",
    "kl_closed_vs_monte_carlo",
    "log_likelihood_bound",
    "posterior_mean_variance",
    "statistics_sums",
]


@torch.no_grad()
def log_likelihood_bound(
    model: VAE, x: torch.Tensor, *, k: int = 1000, chunk: int = 50_000, generator: torch.Generator | None = None
) -> torch.Tensor:
    r"""Importance-weighted estimate of :math:`\log p(x)` per image (the IWAE bound :math:`\mathcal{L}_k`).

    .. math::

        \log p(x) \ge \mathcal{L}_k = \mathbb{E}\Big[\log \frac1k \sum_{i=1}^k
        \frac{p(x|z_i)\,p(z_i)}{q(z_i|x)}\Big], \quad z_i \sim q(z|x),

    which approaches :math:`\log p(x)` as ``k`` grows. ``chunk`` bounds the number of
    decoder evaluations held at once (memory).

    Returns
    -------
    Tensor, shape (batch,)
        In nats.
    """
    model.eval()
    out = []
    per_step = max(1, chunk // k)
    for start in range(0, len(x), per_step):
        xb = x[start : start + per_step]
        mu, logvar = model.encode(xb)
        std = torch.exp(0.5 * logvar)
        eps = standard_normal((k, *mu.shape), mu, generator)
        z = mu + std * eps  # (k, batch, latent)
        log_px = model.log_likelihood(xb, model.decode(z))
        log_ratio = (-0.5 * z.square() + 0.5 * eps.square() + 0.5 * logvar).sum(-1)
        out.append(torch.logsumexp(log_px + log_ratio, 0) - math.log(k))
    return torch.cat(out)


ACTIVE_UNIT_THRESHOLD = 1e-2
"""A latent dimension is active when the variance over images of its posterior mean exceeds this (Burda et al.)."""


@torch.no_grad()
def posterior_mean_variance(model: VAE, x: torch.Tensor) -> torch.Tensor:
    r""":math:`\operatorname{Cov}_x(\mathbb{E}_{q(z|x)}[z_d])` for each latent dimension ``d``, shape ``(latent,)``.

    The unbiased variance over the images ``x`` of the posterior means, in eval mode (no dropout),
    computed on ``x``'s device.
    """
    model.eval()
    mu = torch.cat([model.encode(xb)[0] for xb in x.split(1024)])
    return mu.var(0, correction=1)


def active_units(model: VAE, x: torch.Tensor, *, threshold: float = ACTIVE_UNIT_THRESHOLD) -> tuple[int, torch.Tensor]:
    r"""Active latent units (Burda et al., 2016): :math:`A_u = \operatorname{Var}_x(\mathbb{E}_{q(z|x)}[z_u]) > 0.01`.

    The one definition klkit uses: training reports it for its final (selected) model on the
    fixed test images, and :func:`evaluate` for the saved model on the same images, so the two agree.

    Returns
    -------
    (int, Tensor of shape (latent,))
        The count and the variance of each unit's posterior mean over ``x``.
    """
    variance = posterior_mean_variance(model, x)
    return int((variance > threshold).sum()), variance


@torch.no_grad()
def statistics_sums(
    model: VAE, x: torch.Tensor, *, generator: torch.Generator | None = None, chunk: int = 1000
) -> torch.Tensor:
    """Sums over ``x`` of [reconstruction, KL, KL per dimension...], shape ``(2 + latent,)``, on ``x``'s device.

    One reparameterised sample per image, drawn from ``generator`` (see :func:`standard_normal`).
    """
    model.eval()
    sums = torch.zeros(2 + model.latent, dtype=torch.float64, device=x.device)
    for xb in x.split(chunk):
        mu, logvar = model.encode(xb)
        kl_d = gaussian_kl_standard_normal(mu, logvar)
        z = mu + torch.exp(0.5 * logvar) * standard_normal(tuple(mu.shape), mu, generator)
        rec = model.log_likelihood(xb, model.decode(z))
        sums += torch.cat([rec.sum().reshape(1), kl_d.sum().reshape(1), kl_d.sum(0)]).double()
    return sums


def batch_statistics(model: VAE, x: torch.Tensor, *, seed: int = 0) -> dict[str, Any]:
    """ELBO, reconstruction and closed-form KL (total and per dimension) on ``x``, one sample per image."""
    sums = (statistics_sums(model, x, generator=torch.Generator().manual_seed(seed)) / len(x)).tolist()
    stats: dict[str, Any] = {"reconstruction": sums[0], "kl": sums[1]}
    stats["elbo"] = stats["reconstruction"] - stats["kl"]
    stats["kl_per_dim"] = sums[2:]
    return stats


@torch.no_grad()
def kl_closed_vs_monte_carlo(model: VAE, x: torch.Tensor, *, samples: int = 2000, seed: int = 0) -> dict[str, float]:
    r"""The batch's closed-form KL(q(z|x) ‖ N(0, I)) next to a Monte Carlo estimate with its standard error.

    The Monte Carlo side draws ``samples`` z per image from q(z|x) and averages
    :math:`\log q(z|x) - \log p(z)` (``klkit.estimators.mc_kl``, estimator ``k1``: unbiased with
    finite variance here; ``k3``'s ratio :math:`p/q` has infinite variance once a posterior
    variance drops below half the prior's). Per-image standard errors combine as independent.

    Returns
    -------
    dict
        ``closed_form``, ``monte_carlo``, ``standard_error`` (of the batch mean, nats) and
        ``z_score`` = (MC − closed) / SE.
    """
    model.eval()
    generator = torch.Generator().manual_seed(seed)
    mu, logvar = model.encode(x)
    mu, logvar = mu.double(), logvar.double()
    closed = gaussian_kl_standard_normal(mu, logvar).sum(-1)  # (batch,)
    std = torch.exp(0.5 * logvar)
    q = torch.distributions.Normal(mu, std)
    prior = torch.distributions.Normal(torch.zeros_like(mu), torch.ones_like(std))
    z = mu + std * standard_normal((samples, *mu.shape), mu, generator)  # (samples, batch, latent)
    estimate = mc_kl(q.log_prob(z).sum(-1), prior.log_prob(z).sum(-1), estimator="k1", axis=0)  # per image
    n = len(x)
    mc = float(estimate.value.mean())
    se = float(torch.sqrt((torch.as_tensor(estimate.standard_error) ** 2).sum())) / n
    closed_mean = float(closed.mean())
    return {
        "closed_form": closed_mean,
        "monte_carlo": mc,
        "standard_error": se,
        "z_score": (mc - closed_mean) / se if se > 0 else 0.0,
        "images": n,
        "samples": samples,
    }


def evaluate(
    run_dir: str | Path,
    *,
    k: int = 1000,
    kl_check_samples: int = 2000,
    figures: bool = True,
    seed: int = 0,
    threads: int | None = None,
    device: str = "cpu",
) -> dict[str, Any]:
    """Evaluate a trained run on its fixed test images; write ``eval.json`` and figures into ``run_dir``.

    Reports the importance-weighted test NLL (``k`` samples per image; nats per image and bits
    per dimension), the test ELBO with its reconstruction and KL terms, KL per dimension, active
    units, and the closed-form KL of a test batch checked against a Monte Carlo estimate.

    Parameters
    ----------
    run_dir : str or Path
    k : int, default 1000
        Importance samples per image for log p(x).
    kl_check_samples : int, default 2000
        Monte Carlo samples per image for the KL check.
    figures : bool, default True
        Write ``reconstructions.png``, ``samples.png``, ``traversal.png`` (``latent_map.png``
        for a 2-D latent), ``kl_per_dim.png`` and ``training_curve.png``.
    seed : int
        Seeds local generators only; the caller's global RNG is untouched.
    threads : int or None
        ``torch.set_num_threads`` during the evaluation, restored afterwards (None: untouched).
    device : {'cpu', 'auto', 'cuda'}
        Where to evaluate; the random draws come from CPU generators, so the result does not
        depend on it beyond floating-point rounding.

    Returns
    -------
    dict
        The contents of ``eval.json``.
    """
    if not isinstance(k, int) or k < 1:
        raise ValueError(f"`k` must be a positive integer; found {k!r}. Use k=1000 for the reported NLL.")
    where = resolve_device(device)
    with torch_threads(threads):
        return _evaluate(
            Path(run_dir), k=k, kl_check_samples=kl_check_samples, figures=figures, seed=seed, device=where
        )


def _evaluate(
    run_dir: Path, *, k: int, kl_check_samples: int, figures: bool, seed: int, device: torch.device
) -> dict[str, Any]:
    model, cfg = load_model(run_dir, device=device)
    images = load_images(cfg.data)
    x_test = fixed_test_images(images, cfg.decoder).to(device)
    generator = torch.Generator().manual_seed(seed)
    log_px = log_likelihood_bound(model, x_test, k=k, generator=generator)
    nll = -float(log_px.mean())
    stats = batch_statistics(model, x_test, seed=seed)
    units, variances = active_units(model, x_test)
    check = kl_closed_vs_monte_carlo(model, x_test[:256], samples=kl_check_samples, seed=seed)
    result = {
        "algorithm": "vae",
        "data": cfg.data,
        "test_images": len(x_test),
        "k": k,
        "nll": nll,
        "nll_standard_error": float(log_px.std(correction=1)) / math.sqrt(len(log_px)),
        "bits_per_dim": nll / (images.dim * math.log(2)),
        "elbo": stats["elbo"],
        "reconstruction": stats["reconstruction"],
        "kl": stats["kl"],
        "kl_per_dim": stats["kl_per_dim"],
        "active_units": units,
        "latent": cfg.latent,
        "posterior_mean_variance": variances.tolist(),
        "kl_check": check,
    }
    if cfg.decoder == "gaussian":
        result["note"] = "Gaussian decoder: NLL and bits/dim are of a density on continuous pixels."
    if figures:
        result["figures"] = [p.name for p in write_figures(model, x_test, run_dir, stats["kl_per_dim"], seed=seed)]
    tmp = run_dir / "eval.json.tmp"
    tmp.write_text(json.dumps(result, indent=2) + "\n")
    os.replace(tmp, run_dir / "eval.json")
    return result
