"""One iteration of the training loop: augment a batch, take an optimiser step, add its terms to the epoch's sums.

:func:`train_batch` is the whole loop body; the trainer (:mod:`klkit.train.vae.loop`) and
``benchmarks/vae.py`` both call it, so the benchmark times exactly what training runs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist
from torch import nn

from klkit.train.vae.config import Config
from klkit.train.vae.data import augment
from klkit.train.vae.loss import Terms, objective
from klkit.train.vae.model import VAE

__all__ = ["EpochSums", "Objective", "train_batch", "train_step"]


class Objective(nn.Module):
    """``forward = objective(vae, ...)``: the module DDP wraps, so the whole loss is one forward pass.

    Examples
    --------
    >>> _ = torch.manual_seed(0)
    >>> terms = Objective(VAE((8, 8), Config(hidden=(16,), latent=2)))(torch.zeros(3, 64), 1, 1.0, 0.0)
    >>> terms.loss.shape
    torch.Size([])
    """

    def __init__(self, model: VAE) -> None:
        super().__init__()
        self.vae = model

    def forward(self, x: torch.Tensor, samples: int, kl_weight: float, free_bits: float) -> Terms:
        return objective(self.vae, x, samples=samples, kl_weight=kl_weight, free_bits=free_bits)


def train_step(
    step_fn: nn.Module,
    optimizer: torch.optim.Optimizer,
    x: torch.Tensor,
    *,
    samples: int,
    kl_weight: float,
    free_bits: float,
    world: int = 1,
) -> Terms | None:
    """One optimiser step on the batch ``x``; None (and no update) if the loss is NaN or infinite.

    ``step_fn`` is ``Objective(model)`` or its DDP wrapper; with ``world > 1`` the finiteness
    check is all-reduced so that every process stops at the same step.
    """
    terms = step_fn(x, samples, kl_weight, free_bits)
    bad = torch.logical_not(torch.isfinite(terms.loss.detach())).float()
    if world > 1:
        dist.all_reduce(bad)
    if bad.item():
        return None
    optimizer.zero_grad(set_to_none=True)
    terms.loss.backward()
    optimizer.step()
    return terms


@dataclass
class EpochSums:
    """Running sums of an epoch's training terms, in float64 on the training device.

    Attributes
    ----------
    totals : Tensor, shape (5,)
        Batch size times the batch's mean loss, reconstruction, KL and IWAE gap, then the image count.
    kl_per_dim : Tensor, shape (latent,)
        Closed-form KL of each latent dimension, summed over images.
    """

    totals: torch.Tensor
    kl_per_dim: torch.Tensor

    @classmethod
    def zeros(cls, latent: int, device: torch.device | str = "cpu") -> EpochSums:
        """Empty sums for a model with ``latent`` dimensions."""
        return cls(
            torch.zeros(5, dtype=torch.float64, device=device), torch.zeros(latent, dtype=torch.float64, device=device)
        )

    @torch.no_grad()
    def add(self, terms: Terms, images: int) -> None:
        """Add one batch of ``images`` images (its terms are means over the batch)."""
        m = images
        self.totals += torch.stack(
            [m * terms.loss, m * terms.reconstruction, m * terms.kl, m * terms.gap, terms.loss.new_tensor(m)]
        ).double()
        self.kl_per_dim += terms.kl_per_dim

    def all_reduce(self) -> None:
        """Sum over the DDP processes (each saw its own shard of every batch)."""
        for tensor in (self.totals, self.kl_per_dim):
            dist.all_reduce(tensor)

    def means(self) -> dict[str, Any]:
        """Per-image means, as ``metrics.jsonl`` records them.

        Examples
        --------
        >>> sums = EpochSums(torch.tensor([-8.0, -6.0, 2.0, 0.0, 2.0], dtype=torch.float64),
        ...                  torch.tensor([3.0, 1.0], dtype=torch.float64))
        >>> sums.means()["train_elbo"], sums.means()["kl_per_dim"]
        (-4.0, [1.5, 0.5])
        """
        loss, reconstruction, kl, gap, images = (float(v) for v in self.totals)
        return {
            "train_loss": loss / images,
            "train_elbo": float(self.totals[1] - self.totals[2]) / images,
            "train_reconstruction": reconstruction / images,
            "train_kl": kl / images,
            "train_iw_gap": gap / images,
            "kl_per_dim": (self.kl_per_dim / images).tolist(),
        }


def train_batch(
    step_fn: nn.Module,
    optimizer: torch.optim.Optimizer,
    x: torch.Tensor,
    sums: EpochSums,
    cfg: Config,
    *,
    image_shape: tuple[int, int],
    kl_weight: float,
    generator: torch.Generator | None = None,
    world: int = 1,
) -> Terms | None:
    """The training loop's body for one batch: augment it, :func:`train_step`, add its terms to ``sums``.

    Parameters
    ----------
    step_fn : nn.Module
        ``Objective(model)`` or its DDP wrapper.
    optimizer : torch.optim.Optimizer
    x : Tensor, shape (batch, pixels)
        This process's images of the batch, pixel intensities in [0, 1].
    sums : EpochSums
        Updated in place when the step succeeds.
    cfg : Config
        Uses ``decoder``, ``shift``, ``samples`` and ``free_bits``.
    image_shape : (int, int)
        ``(height, width)`` of the images, for the shift.
    kl_weight : float
        β times the warm-up factor of this epoch.
    generator : torch.Generator or None
        Draws the binarisation and the shift (None: the global generator).
    world : int
        Number of DDP processes.

    Returns
    -------
    Terms or None
        None if the loss was NaN or infinite (no update, ``sums`` unchanged).
    """
    x = augment(x, image_shape, cfg, generator)  # (batch, pixels)
    terms = train_step(
        step_fn, optimizer, x, samples=cfg.samples, kl_weight=kl_weight, free_bits=cfg.free_bits, world=world
    )
    if terms is not None:
        sums.add(terms, len(x))
    return terms
