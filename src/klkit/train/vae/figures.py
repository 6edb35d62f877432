"""Figures of a trained VAE: reconstructions, prior samples, a latent traversal (or 2-D map), KL per dimension,
and the training curve. matplotlib is imported only when a figure is drawn (it is an optional dependency).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from klkit.train import _checkpoint as ckpt
from klkit.train.vae.data import standard_normal
from klkit.train.vae.model import VAE

__all__ = ["plot_kl_per_dim", "plot_training_curve", "write_figures"]


def write_figures(
    model: VAE, x_test: torch.Tensor, run_dir: Path, kl_per_dim: list[float], *, seed: int = 0
) -> list[Path]:
    """Reconstructions, prior samples, a latent traversal (or 2-D map), KL per dimension, training curve.

    Returns the paths written into ``run_dir``; the prior samples draw from a CPU generator seeded
    with ``seed``.
    """
    plt = _pyplot()
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        figures = [
            ("reconstructions.png", _reconstructions(plt, model, x_test[:10])),
            ("samples.png", _prior_samples(plt, model, x_test, generator)),
            _latent_figure(plt, model, x_test, kl_per_dim),
        ]
    paths = [_save(plt, fig, run_dir / name) for name, fig in figures]
    paths.append(plot_kl_per_dim(kl_per_dim, run_dir / "kl_per_dim.png"))
    curve = plot_training_curve(run_dir / "metrics.jsonl", run_dir / "training_curve.png")
    if curve is not None:
        paths.append(curve)
    return paths


def _pyplot() -> Any:
    """matplotlib.pyplot on the non-interactive Agg backend (figures are only ever written to files)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(plt: Any, fig: Any, path: Path) -> Path:
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return path


def _grid(model: VAE, images: torch.Tensor, rows: int, cols: int) -> np.ndarray:
    """``(rows * cols, pixels)`` images tiled into one ``(rows * height, cols * width)`` array."""
    h, w = model.image_shape
    tiles = images.reshape(rows, cols, h, w).permute(0, 2, 1, 3).reshape(rows * h, cols * w)
    return tiles.detach().cpu().numpy()


def _show(
    plt: Any, model: VAE, images: torch.Tensor, rows: int, cols: int, title: str, figsize: tuple[float, float]
) -> Any:
    """A figure showing ``images`` as a grid, without axes."""
    fig, ax = plt.subplots(figsize=figsize)
    ax.imshow(_grid(model, images, rows, cols), cmap="gray", vmin=0, vmax=1)
    ax.set_title(title)
    ax.axis("off")
    return fig


def _reconstructions(plt: Any, model: VAE, x: torch.Tensor) -> Any:
    """Ten test images above their reconstructions from the posterior mean."""
    recon = model.mean_image(model.decode(model.encode(x)[0]))  # (10, pixels)
    return _show(
        plt, model, torch.cat([x, recon]), 2, 10, "test images (top) and reconstructions from E[z|x] (bottom)", (8, 1.8)
    )


def _prior_samples(plt: Any, model: VAE, x_test: torch.Tensor, generator: torch.Generator) -> Any:
    """Decoder means of 64 draws from the prior."""
    z = standard_normal((64, model.latent), x_test, generator)  # (64, latent)
    return _show(plt, model, model.mean_image(model.decode(z)), 8, 8, "decoder means for z ~ N(0, I)", (6, 6))


def _latent_figure(plt: Any, model: VAE, x_test: torch.Tensor, kl_per_dim: list[float]) -> tuple[str, Any]:
    """``("latent_map.png", fig)`` for a 2-D latent, else ``("traversal.png", fig)``."""
    steps = torch.linspace(-3, 3, 9, dtype=x_test.dtype, device=x_test.device)  # (9,)
    if model.latent == 2:
        zz = torch.cartesian_prod(steps, steps.flip(0))[:, [1, 0]]  # (81, 2); rows: z2 high → low; columns: z1
        return "latent_map.png", _show(
            plt,
            model,
            model.mean_image(model.decode(zz)),
            9,
            9,
            "2-D latent map: z1 left → right, z2 top → bottom, in [−3, 3]",
            (6, 6),
        )
    return "traversal.png", _traversal(plt, model, x_test[:1], kl_per_dim, steps)


def _traversal(plt: Any, model: VAE, x: torch.Tensor, kl_per_dim: list[float], steps: torch.Tensor) -> Any:
    """Vary each of the (up to 6) highest-KL dimensions over ``steps``, the others held at E[z|x] of ``x``."""
    h, w = model.image_shape
    top = np.argsort(kl_per_dim)[::-1][: min(6, model.latent)].copy()
    base = model.encode(x)[0][0]  # (latent,)
    rows = []
    for d in top:
        zs = base.repeat(len(steps), 1)  # (steps, latent)
        zs[:, d] = steps
        rows.append(model.mean_image(model.decode(zs)))
    fig, ax = plt.subplots(figsize=(8, 0.9 * len(top) + 0.5))
    ax.imshow(_grid(model, torch.cat(rows), len(top), len(steps)), cmap="gray", vmin=0, vmax=1)
    ax.set_yticks([(i + 0.5) * h for i in range(len(top))], [f"z{d}" for d in top])
    ax.set_xticks([(i + 0.5) * w for i in range(len(steps))], [f"{s:.1f}" for s in steps.tolist()])
    ax.set_title("latent traversal of the most informative dimensions (others at E[z|x])")
    return fig


def plot_kl_per_dim(kl_per_dim: list[float], path: Path) -> Path:
    """Bar chart of the closed-form KL of each latent dimension (sorted), with the active-unit level marked."""
    plt = _pyplot()
    values = np.sort(np.asarray(kl_per_dim))[::-1]
    fig, ax = plt.subplots(figsize=(6, 3))
    ax.bar(np.arange(len(values)), values, color="tab:blue")
    ax.set_xlabel("latent dimension (sorted)")
    ax.set_ylabel("KL(q(z_i|x) ‖ N(0,1)) [nats]")
    ax.set_title(f"KL per dimension, total {values.sum():.1f} nats")
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return path


def plot_training_curve(metrics_path: Path, path: Path) -> Path | None:
    """Train and test ELBO (and validation NLL, when measured) per epoch."""
    records = ckpt.read_jsonl(metrics_path)
    if not records:
        return None
    plt = _pyplot()

    epochs = [r["epoch"] for r in records]
    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.plot(epochs, [-r["train_elbo"] for r in records], label="train −ELBO")
    test = [(r["epoch"], -r["test_elbo"]) for r in records if "test_elbo" in r]
    if test:
        ax.plot(*zip(*test, strict=True), ".-", label="test −ELBO")
    val = [(r["epoch"], r["validation_nll"]) for r in records if "validation_nll" in r]
    if val:
        ax.plot(*zip(*val, strict=True), "o-", label="validation NLL (IWAE)")
    shown = [-r["train_elbo"] for r in records] + [y for _, y in test] + [y for _, y in val]
    low = min(shown)
    ax.set_ylim(low - 5, min(max(shown), low + 60) + 5)  # the early epochs would squash the rest
    ax.set_xlabel("epoch")
    ax.set_ylabel("nats per image")
    ax.legend()
    ax.set_title("VAE training curve")
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return path
