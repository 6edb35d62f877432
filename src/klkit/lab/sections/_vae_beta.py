"""The VAE's KL term against reconstruction: small β-VAEs on sklearn's digits, one per weight β of the KL.

Each run trains through the public :func:`klkit.train.vae.train` (ELBO with one sample, KL weight β),
then the saved model (:func:`klkit.train.vae.load_model`) encodes the fixed-binarised test images:
the KL term ``KL(q(z|x) ‖ N(0, I))`` (closed form), the reconstruction term ``−E_q[log p(x|z)]``
(Monte Carlo over q) and the posterior means μ(x) — which the KL term pulls towards the prior's mean 0.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from klkit.lab.base import LabContext, save_figure

BETAS = (0.1, 0.3, 1.0, 3.0, 10.0)
SHOWN = (0.1, 1.0, 10.0)  # the posterior means drawn in the figure, and the sweep of the quick lab


def beta_sweep(ctx: LabContext, epochs: int, samples: int = 16) -> dict[str, Any]:
    """Train one VAE per β in :data:`BETAS` (:data:`SHOWN` when ``ctx.quick``); per β the test KL,
    reconstruction, −ELBO and posterior means.

    Returns
    -------
    dict
        ``rows``: one dict per β (``beta``, ``kl``, ``reconstruction``, ``neg_elbo`` in nats per image,
        ``rms_mean`` = √mean μ², ``active_units``, ``mean_sigma``); ``means``: β → (images, latent) μ's.
    """
    import torch

    import klkit
    from klkit.train import vae
    from klkit.train.data import load_images

    images = torch.from_numpy(np.ascontiguousarray(load_images("digits").test))
    x = torch.bernoulli(images, generator=torch.Generator().manual_seed(ctx.seed))
    rows, means = [], {}
    for beta in SHOWN if ctx.quick else BETAS:
        ctx.progress(f"β-VAE on digits, β = {beta:g} ({epochs} epochs)")
        cfg = vae.Config(
            data="digits",
            hidden=(64,),
            latent=4,
            epochs=epochs,
            samples=1,
            beta=beta,
            warmup=0,
            shift=0,
            lr=3e-3,
            lr_schedule="constant",
            eval_every=epochs,
            seed=ctx.seed,
            threads=1,
            progress=False,
        )
        with tempfile.TemporaryDirectory(prefix="klkit-lab-beta-") as run_dir:
            vae.train(cfg, Path(run_dir))
            model, _ = vae.load_model(run_dir)
        with torch.no_grad():
            mu, logvar = model.encode(x)
            kl = klkit.distributions.gaussian_kl_standard_normal(mu, logvar).sum(-1)
            gen = torch.Generator().manual_seed(ctx.seed + 1)
            eps = torch.randn((samples, *mu.shape), generator=gen)
            z = mu + torch.exp(0.5 * logvar) * eps
            reconstruction = -model.log_likelihood(x, model.decode(z)).mean(0)
        rows.append(
            {
                "beta": beta,
                "kl": float(kl.mean()),
                "reconstruction": float(reconstruction.mean()),
                "neg_elbo": float((reconstruction + kl).mean()),
                "rms_mean": float(mu.square().mean().sqrt()),
                "active_units": int((mu.var(0) > 0.01).sum()),
                "mean_sigma": float(torch.exp(0.5 * logvar).mean()),
            }
        )
        means[beta] = mu.numpy()
    return {"rows": rows, "means": means, "epochs": epochs, "test_images": len(x), "betas": [r["beta"] for r in rows]}


def figure(ctx: LabContext, sweep: dict[str, Any]) -> Path:
    """KL and reconstruction against β; the posterior means shrinking to the prior's mean 0."""
    import matplotlib.pyplot as plt

    rows = sweep["rows"]
    betas = [r["beta"] for r in rows]
    fig, (terms, cloud) = plt.subplots(1, 2, figsize=(11, 4.0))
    terms.plot(betas, [r["kl"] for r in rows], "o-", color="C3", label="KL term  KL(q(z|x) ‖ N(0, I))")
    terms.plot(betas, [r["reconstruction"] for r in rows], "s-", color="C0", label="reconstruction  −E_q log p(x|z)")
    terms.plot(betas, [r["neg_elbo"] for r in rows], "k:", label="their sum (the −ELBO)")
    terms.set(xscale="log", xlabel="β (weight of the KL term)", ylabel="nats per test image")
    terms.set_title("The KL term trades against reconstruction", fontsize=11)
    terms.legend(fontsize=9)
    terms.grid(alpha=0.3)
    first = sweep["means"][SHOWN[0]]
    axes = np.argsort(first.var(0))[::-1][:2]  # the two most used latent dimensions at the smallest β
    for beta, color in zip(SHOWN, ("C0", "C2", "C3"), strict=True):
        mu = sweep["means"][beta]
        a, b = np.argsort(mu.var(0))[::-1][:2] if beta != SHOWN[0] else axes
        rms = float(np.sqrt(np.mean(mu**2)))
        cloud.scatter(mu[:, a], mu[:, b], s=7, alpha=0.6, color=color, label=f"β = {beta:g} (RMS μ = {rms:.2f})")
    cloud.axhline(0, color="black", lw=0.6)
    cloud.axvline(0, color="black", lw=0.6)
    cloud.set(xlabel="μ₁(x) (most used latent)", ylabel="μ₂(x) (second most used)", aspect="equal")
    cloud.set_title("Posterior means of the test images", fontsize=11)
    cloud.legend(fontsize=9, markerscale=2, loc="upper left", bbox_to_anchor=(1.02, 1.0))
    cloud.grid(alpha=0.3)
    fig.tight_layout()
    return save_figure(ctx, fig, "vae_beta")
