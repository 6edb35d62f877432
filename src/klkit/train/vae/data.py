"""The images as the VAE sees them: train/validation split, fixed test binarisation, augmentation, noise.

Loading the files is :func:`klkit.train.data.load_images`; this module turns the loaded
:class:`~klkit.train.data.Images` into tensors. Images are flattened: ``(batch, pixels)``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F  # noqa: N812 (the PyTorch convention)

from klkit.train.data import Images
from klkit.train.vae.config import Config

__all__ = [
    "TEST_BINARIZATION_SEED",
    "augment",
    "binarize",
    "fixed_binarization",
    "fixed_test_images",
    "random_shift",
    "split",
    "standard_normal",
]

TEST_BINARIZATION_SEED = 1234  # the fixed test binarisation every run is compared on


def binarize(x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Sample binary pixels with probabilities ``x`` (dynamic binarisation when called per batch).

    Examples
    --------
    >>> x = torch.tensor([[0.0, 1.0, 0.5]])
    >>> binarize(x, torch.Generator().manual_seed(0))[0, :2].tolist()
    [0.0, 1.0]
    """
    return torch.bernoulli(x, generator=generator)


def random_shift(
    x: torch.Tensor, shape: tuple[int, int], max_shift: int, generator: torch.Generator | None = None
) -> torch.Tensor:
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


def augment(
    x: torch.Tensor, image_shape: tuple[int, int], cfg: Config, generator: torch.Generator | None = None
) -> torch.Tensor:
    """A training batch as the model sees it: binarised afresh (Bernoulli decoder), then randomly shifted.

    Dynamic binarisation draws new binary pixels every time an image is used, which regularises
    like data augmentation; ``cfg.shift`` bounds the translation (0: none). Both draw from
    ``generator`` (None: the global generator of ``x``'s device).

    Examples
    --------
    >>> x = torch.full((2, 9), 0.5)
    >>> y = augment(x, (3, 3), Config(shift=0), torch.Generator().manual_seed(0))
    >>> sorted(set(y.flatten().tolist()))
    [0.0, 1.0]
    """
    if cfg.decoder == "bernoulli":
        x = binarize(x, generator)  # (batch, pixels), a fresh sample every time
    return random_shift(x, image_shape, cfg.shift, generator)


def standard_normal(
    shape: tuple[int, ...], like: torch.Tensor, generator: torch.Generator | None = None
) -> torch.Tensor:
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
    return fixed_binarization(torch.from_numpy(images.test), decoder)


def fixed_binarization(x: torch.Tensor, decoder: str) -> torch.Tensor:
    """``x`` binarised with the fixed seed (Bernoulli decoder) or as it is (Gaussian): held-out images never change."""
    if decoder == "gaussian":
        return x
    return binarize(x, torch.Generator().manual_seed(TEST_BINARIZATION_SEED))


def split(images: Images, cfg: Config) -> tuple[torch.Tensor, torch.Tensor]:
    """Training and validation images, ``(n_train, pixels)`` and ``(cfg.validation, pixels)``, on the CPU.

    The validation images are carved from the end of a permutation seeded by ``cfg.seed``;
    ``cfg.max_train`` then keeps the first training images only.
    """
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
