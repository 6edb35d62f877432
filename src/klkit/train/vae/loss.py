r"""The training objective: the (importance-weighted) ELBO with klkit's closed-form KL, and the KL weight schedule.

For ``samples = k > 1`` the objective is the IWAE bound (Burda et al., 2016) written as the
ELBO (closed-form KL) plus the non-negative gap
:math:`\log \frac1k\sum_i w_i - \frac1k\sum_i \log w_i`; for ``k = 1`` the gap is 0.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from klkit.distributions import gaussian_kl_standard_normal
from klkit.train.vae.config import Config

__all__ = ["Terms", "kl_weight_at", "objective"]


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


def objective(
    model: nn.Module, x: torch.Tensor, *, samples: int = 1, kl_weight: float = 1.0, free_bits: float = 0.0
) -> Terms:
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
    >>> from klkit.train.vae import VAE
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
