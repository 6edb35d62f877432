"""`validate=False` means one thing for every measure (docs/guide/kinds.md, section `validate=False`):
an entry no distribution can hold makes its slice NaN; a slice of valid entries that does not sum to 1 gives an
unspecified value that is finite and inside the measure's range, never NaN and never an error. Checked on every
public measure, numpy and torch, on small inputs and on inputs large enough for the kernels and chunked paths."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import klkit

# name -> (call, range of the measure)
NONNEGATIVE = (0.0, math.inf)
UNIT = (0.0, 1.0)
MEASURES = {
    "entropy": (lambda p, q: klkit.entropy(p, validate=False), NONNEGATIVE),
    "cross_entropy": (lambda p, q: klkit.cross_entropy(p, q, validate=False), NONNEGATIVE),
    "kl_divergence": (lambda p, q: klkit.kl_divergence(p, q, validate=False), NONNEGATIVE),
    "js_divergence": (lambda p, q: klkit.js_divergence(p, q, validate=False), NONNEGATIVE),
    "js_distance": (lambda p, q: klkit.js_distance(p, q, validate=False), NONNEGATIVE),
    "total_variation": (lambda p, q: klkit.total_variation(p, q, validate=False), UNIT),
    "hellinger_distance": (lambda p, q: klkit.hellinger_distance(p, q, validate=False), UNIT),
    "f_divergence(kl)": (lambda p, q: klkit.f_divergence(p, q, "kl", validate=False), NONNEGATIVE),
    "renyi_divergence(0.5)": (lambda p, q: klkit.renyi_divergence(p, q, 0.5, validate=False), NONNEGATIVE),
    "renyi_divergence(2)": (lambda p, q: klkit.renyi_divergence(p, q, 2.0, validate=False), NONNEGATIVE),
    "renyi_entropy(2)": (lambda p, q: klkit.renyi_entropy(p, 2.0, validate=False), NONNEGATIVE),
    "f_divergence(chi2)": (lambda p, q: klkit.f_divergence(p, q, "chi2", validate=False), NONNEGATIVE),
    "mutual_information": (lambda p, q: klkit.mutual_information(_table(p), validate=False), NONNEGATIVE),
    "conditional_entropy": (lambda p, q: klkit.conditional_entropy(_table(p), validate=False), NONNEGATIVE),
    "joint_entropy": (lambda p, q: klkit.joint_entropy(_table(p), validate=False), NONNEGATIVE),
}


def _table(p):
    """Each row of p (n outcomes, n a square) as an n^½ × n^½ joint table."""
    k = math.isqrt(p.shape[-1])
    return p.reshape(*p.shape[:-1], k, k)


def _rows(rows: int, n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = rng.random((rows, n)) + 0.05
    return x / x.sum(axis=-1, keepdims=True)


SIZES = {"small": (4, 16), "kernels": (512, 256), "chunked": (1100, 256)}  # 1 100 × 256 > 2^18: chunked


@pytest.mark.parametrize("size", list(SIZES))
@pytest.mark.parametrize("library", ["numpy", "torch"])
@pytest.mark.parametrize("name", list(MEASURES))
def test_bad_entries_make_their_slice_nan_and_off_sum_slices_finite_in_range(name, library, size):
    call, (low, high) = MEASURES[name]
    rows, n = SIZES[size]
    p, q = _rows(rows, n, 0), _rows(rows, n, 1)
    p[1] *= 0.4  # a slice of valid entries summing to 0.4
    p[2, 3] = np.nan  # entries no distribution holds
    p[3, 5] = -0.25
    if rows > 4:
        p[4, 7] = np.inf
    convert = np.asarray if library == "numpy" else torch.from_numpy
    value = np.asarray(call(convert(p), convert(q)), dtype=np.float64)
    bad = [2, 3] + ([4] if rows > 4 else [])
    assert np.isnan(value[bad]).all(), value[bad]
    good = np.delete(value, bad)
    assert np.isfinite(good).all(), good
    assert (good >= low).all() and (good <= high).all(), (good.min(), good.max())


@pytest.mark.parametrize("name", ["entropy", "cross_entropy", "kl_divergence", "js_divergence"])
@pytest.mark.parametrize("library", ["numpy", "torch"])
def test_bad_logits_make_their_slice_nan(name, library):
    call = {
        "entropy": lambda p, q: klkit.entropy(p, kind="logits", validate=False),
        "cross_entropy": lambda p, q: klkit.cross_entropy(p, q, kind="logits", validate=False),
        "kl_divergence": lambda p, q: klkit.kl_divergence(p, q, kind="logits", validate=False),
        "js_divergence": lambda p, q: klkit.js_divergence(p, q, kind="logits", validate=False),
    }[name]
    p = np.random.default_rng(2).normal(size=(4, 8))
    q = np.random.default_rng(3).normal(size=(4, 8))
    p[1, 2], p[2, 0], p[3] = np.nan, np.inf, -np.inf
    convert = np.asarray if library == "numpy" else torch.from_numpy
    value = np.asarray(call(convert(p), convert(q)), dtype=np.float64)
    assert np.isnan(value[1:]).all() and np.isfinite(value[0]), value
