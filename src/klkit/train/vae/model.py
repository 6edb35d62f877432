"""The VAE: a Gaussian encoder q(z|x) and a Bernoulli or Gaussian decoder p(x|z), MLP or convolutional."""

from __future__ import annotations

import itertools
import math

import torch
import torch.nn.functional as F  # noqa: N812 (the PyTorch convention)
from torch import nn

from klkit.train.vae.config import Config

__all__ = ["VAE"]


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
        nn.Conv2d(1, 32, 4, stride=2, padding=1),
        nn.ReLU(),  # (batch, 32, h/2, w/2)
        nn.Conv2d(32, 64, 4, stride=2, padding=1),
        nn.ReLU(),  # (batch, 64, h/4, w/4)
        nn.Flatten(),
        nn.Linear(64 * (h // 4) * (w // 4), 2 * latent),
    )
    decoder = nn.Sequential(
        nn.Linear(latent, 64 * (h // 4) * (w // 4)),
        nn.ReLU(),
        nn.Unflatten(1, (64, h // 4, w // 4)),
        nn.ConvTranspose2d(64, 32, 4, stride=2, padding=1),
        nn.ReLU(),  # (batch, 32, h/2, w/2)
        nn.ConvTranspose2d(32, 1, 4, stride=2, padding=1),  # (batch, 1, h, w)
        nn.Flatten(),
    )
    return encoder, decoder
