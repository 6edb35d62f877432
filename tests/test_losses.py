"""klkit.losses.cross_entropy_loss against torch.nn.functional.cross_entropy (the independent reference)."""

from __future__ import annotations

import itertools
import math
import zlib

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import klkit
from klkit.errors import BackendMismatchError, InvalidDistributionError
from klkit.losses import cross_entropy_loss

SHAPES = [(6,), (8, 6), (3, 6, 4, 2)]  # (C,), (N, C), (N, C, d1, d2): classes on axis 1 as in torch
TOL = {torch.float32: 1e-6, torch.float64: 1e-12}


def _case(shape, dtype, target_kind, seed):
    g = torch.Generator().manual_seed(seed)
    z = torch.randn(shape, generator=g, dtype=dtype) * 3
    class_axis = 0 if len(shape) == 1 else 1
    C = shape[class_axis]
    positions = tuple(s for i, s in enumerate(shape) if i != class_axis)
    if target_kind == "probs":
        t = torch.softmax(torch.randn(shape, generator=g, dtype=dtype) * 2, dim=class_axis)
    else:
        t = torch.randint(C, positions, generator=g)
        if target_kind == "index_ignore" and positions:
            ignore = torch.rand(positions, generator=g) < 0.3
            ignore.view(-1)[0] = False  # keep at least one position
            t = torch.where(ignore, torch.tensor(-100), t)
    w = torch.rand(C, generator=g, dtype=dtype) + 0.1
    return z, t, w


def _assert_close(mine, ref, dtype):
    ref = ref.detach()
    mine = torch.as_tensor(np.asarray(mine)) if not isinstance(mine, torch.Tensor) else mine.detach()
    assert tuple(mine.shape) == tuple(ref.shape)
    tol = TOL[dtype]
    torch.testing.assert_close(mine.to(ref.dtype), ref, rtol=tol, atol=tol)


# (a (C,) input has one position; ignoring it is the empty mean of test_all_ignored_mean_is_nan_like_torch)
GRID = [
    case
    for case in itertools.product(
        [torch.float32, torch.float64],
        SHAPES,
        ["index", "index_ignore", "probs"],
        [False, True],
        [0.0, 0.25],
        ["mean", "sum", "none"],
    )
    if not (case[2] == "index_ignore" and len(case[1]) == 1)
]


@pytest.mark.parametrize(
    ("dtype", "shape", "target_kind", "use_weight", "smoothing", "reduction"),
    GRID,
    ids=lambda v: str(v).removeprefix("torch."),
)
def test_matches_torch_in_every_option_combination(dtype, shape, target_kind, use_weight, smoothing, reduction):
    z, t, w = _case(shape, dtype, target_kind, seed=zlib.crc32(repr((shape, target_kind)).encode()))
    weight = w if use_weight else None
    ref = F.cross_entropy(z, t, weight=weight, label_smoothing=smoothing, reduction=reduction)
    mine = cross_entropy_loss(z, t, weight=weight, label_smoothing=smoothing, reduction=reduction)
    assert isinstance(mine, torch.Tensor) and mine.dtype == dtype
    _assert_close(mine, ref, dtype)
    # numpy in, numpy out, same dtype, same numbers
    mine_np = cross_entropy_loss(
        z.numpy(),
        t.numpy(),
        weight=None if weight is None else weight.numpy(),
        label_smoothing=smoothing,
        reduction=reduction,
    )
    assert isinstance(mine_np, np.ndarray) and mine_np.dtype == z.numpy().dtype
    _assert_close(mine_np, ref, dtype)


@pytest.mark.parametrize("target_kind", ["index_ignore", "probs"])
def test_gradients_match_torch(target_kind):
    z, t, w = _case((5, 4, 3), torch.float64, target_kind, seed=3)
    z1 = z.clone().requires_grad_(True)
    z2 = z.clone().requires_grad_(True)
    F.cross_entropy(z1, t, weight=w, label_smoothing=0.1).backward()
    cross_entropy_loss(z2, t, weight=w, label_smoothing=0.1).backward()
    torch.testing.assert_close(z2.grad, z1.grad, rtol=1e-12, atol=1e-12)


def test_all_ignored_mean_is_nan_like_torch():
    z = torch.randn(3, 4, dtype=torch.float64)
    t = torch.full((3,), -100)
    assert torch.isnan(F.cross_entropy(z, t))
    assert torch.isnan(cross_entropy_loss(z, t))
    assert np.isnan(cross_entropy_loss(z.numpy(), t.numpy()))
    assert float(cross_entropy_loss(z, t, reduction="sum")) == 0.0


def test_custom_ignore_index_and_lists():
    logits = [[2.0, 0.5, -1.0], [0.1, 0.2, 0.3]]
    ref = F.cross_entropy(torch.tensor(logits, dtype=torch.float64), torch.tensor([1, 7]), ignore_index=7)
    mine = cross_entropy_loss(np.array(logits), np.array([1, 7]), ignore_index=7)
    assert abs(float(mine) - float(ref)) < 1e-12


def test_is_the_negative_log_likelihood_of_the_labels():
    rng = np.random.default_rng(0)
    z = rng.normal(size=(50, 7))
    y = rng.integers(7, size=50)
    logq = z - np.log(np.exp(z).sum(axis=1, keepdims=True))  # log softmax by hand
    nll = -logq[np.arange(50), y].mean()
    assert abs(float(cross_entropy_loss(z, y)) - nll) < 1e-12
    # and it is klkit.cross_entropy of one-hot labels against the model
    onehot = np.eye(7)[y]
    per_example = klkit.cross_entropy(onehot, z, q_kind="logits")
    assert abs(float(cross_entropy_loss(z, y)) - float(np.mean(per_example))) < 1e-12


def test_extreme_logits_stay_finite():
    z = torch.tensor([[1000.0, -1000.0, 0.0]], dtype=torch.float64)
    t = torch.tensor([1])
    assert torch.isfinite(cross_entropy_loss(z, t))
    torch.testing.assert_close(cross_entropy_loss(z, t), F.cross_entropy(z, t))


# --- errors: torch accepts these silently, klkit names the argument, the rule and the fix -------------------


@pytest.mark.parametrize(
    ("target", "match"),
    [
        ([[0.5, 0.7, -0.2]], "finite and >= 0"),
        ([[0.5, 0.6, 0.2]], "sum to 1 over the class axis"),
        ([[np.nan, 0.5, 0.5]], "finite and >= 0"),
    ],
)
def test_rejects_bad_probability_targets(target, match):
    z = torch.zeros(1, 3, dtype=torch.float64)
    t = torch.tensor(target, dtype=torch.float64)
    F.cross_entropy(z, t)  # torch does not complain (NaN aside, it returns a number)
    with pytest.raises(InvalidDistributionError, match=match) as info:
        cross_entropy_loss(z, t)
    assert "`target`" in str(info.value)
    with pytest.raises(ValueError, match=match):
        cross_entropy_loss(z.numpy(), t.numpy())


@pytest.mark.parametrize(
    ("kwargs", "exc", "match"),
    [
        ({"target": np.array([0, 3])}, ValueError, r"`target` class indices must lie in \[0, 2\]"),
        ({"target": np.array([0, -1])}, ValueError, "`target` class indices"),
        ({"target": np.array([0, 1, 2])}, ValueError, r"`target` class indices must have shape \(2,\)"),
        ({"target": np.ones((2, 4)) / 4}, ValueError, "`target` probabilities must have the shape"),
        ({"target": np.array([True, False])}, TypeError, "`target` must hold class indices"),
        ({"weight": np.ones(4)}, ValueError, r"`weight` must have shape \(3,\)"),
        ({"weight": np.array([1.0, -1.0, 1.0])}, ValueError, "`weight` must be finite and >= 0"),
        ({"label_smoothing": 1.5}, ValueError, r"`label_smoothing` must be a number in \[0, 1\]"),
        ({"reduction": "avg"}, ValueError, "`reduction` must be 'mean', 'sum' or 'none'"),
        ({"ignore_index": 1.5}, TypeError, "`ignore_index` must be an integer"),
        ({"logits": np.zeros((2, 3), dtype=np.int64)}, TypeError, "`logits` must have a floating dtype"),
        ({"logits": np.float64(1.0), "target": np.int64(0)}, ValueError, "`logits` must have a class axis"),
        ({"logits": np.array([[np.nan, 0, 0], [0, 0, 0]])}, ValueError, "must hold logits"),
    ],
)
def test_errors(kwargs, exc, match):
    args = {"logits": np.zeros((2, 3)), "target": np.array([0, 1])} | kwargs
    logits, target = args.pop("logits"), args.pop("target")
    with pytest.raises(exc, match=match):
        cross_entropy_loss(logits, target, **args)


def test_mixing_numpy_and_torch_raises():
    with pytest.raises(BackendMismatchError, match="must all be numpy or all torch"):
        cross_entropy_loss(torch.zeros(2, 3), np.array([0, 1]))
    with pytest.raises(TypeError, match="`weight` numpy"):
        cross_entropy_loss(torch.zeros(2, 3), torch.tensor([0, 1]), weight=np.ones(3))


@given(
    logits=hnp.arrays(
        np.float64, st.tuples(st.integers(1, 6), st.integers(2, 5)), elements=st.floats(-30, 30, allow_nan=False)
    ),
    eps=st.floats(0.0, 1.0),
    data=st.data(),
)
@settings(max_examples=60, deadline=None)
def test_label_smoothing_mixes_the_nll_with_the_uniform_cross_entropy(logits, eps, data):
    """ℓ(ε) = (1 − ε) ℓ(0) + ε · H(uniform, q): smoothing is the cross-entropy against a mixture target."""
    n, c = logits.shape
    y = data.draw(hnp.arrays(np.int64, (n,), elements=st.integers(0, c - 1)))
    logq = logits - np.logaddexp.reduce(logits, axis=1, keepdims=True)
    nll = -logq[np.arange(n), y].mean()
    uniform_ce = -logq.mean(axis=1).mean()
    smoothed = float(cross_entropy_loss(logits, y, label_smoothing=eps))
    assert smoothed >= 0
    assert abs(smoothed - ((1 - eps) * nll + eps * uniform_ce)) <= 1e-9 * max(1.0, abs(smoothed))


# --- the fused Function path (large inputs), half precision, validation ------------------------------------


@pytest.fixture
def fused(monkeypatch):
    """Small tiles, so that the small test inputs take the fused Function path, in several tiles."""
    from klkit._engine import fused_tiles

    monkeypatch.setattr(fused_tiles, "TILE_ELEMENTS", 8)


@pytest.mark.parametrize(
    ("shape", "target_kind", "smoothing", "reduction"),
    [
        ((8, 6), "index_ignore", 0.25, "mean"),
        ((3, 6, 4, 2), "index", 0.0, "none"),
        ((8, 6), "probs", 0.25, "sum"),
        ((6,), "index", 0.1, "mean"),
    ],
)
def test_fused_path_matches_torch(fused, shape, target_kind, smoothing, reduction):
    z, t, w = _case(shape, torch.float64, target_kind, seed=11)
    z1, z2 = z.clone().requires_grad_(), z.clone().requires_grad_()
    ref = F.cross_entropy(z1, t, weight=w, label_smoothing=smoothing, reduction=reduction)
    mine = cross_entropy_loss(z2, t, weight=w, label_smoothing=smoothing, reduction=reduction)
    torch.testing.assert_close(mine, ref, rtol=1e-12, atol=1e-12)
    g = torch.randn(ref.shape, dtype=torch.float64)
    (ref * g).sum().backward()
    (mine * g).sum().backward()
    torch.testing.assert_close(z2.grad, z1.grad, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
@pytest.mark.parametrize("target_kind", ["index_ignore", "probs"])
def test_half_precision_logits_accumulate_in_float32(dtype, target_kind):
    z, t, w = _case((64, 50), torch.float64, target_kind, seed=12)
    zh = z.to(dtype).requires_grad_()
    th = t.to(dtype) if target_kind == "probs" else t
    loss = cross_entropy_loss(zh, th, weight=w, label_smoothing=0.1)
    assert loss.dtype == dtype
    zr = zh.detach().double().requires_grad_()  # the exact answer for the rounded inputs
    ref = F.cross_entropy(zr, th.double() if target_kind == "probs" else t, weight=w, label_smoothing=0.1)
    unit = 2.0**-8 if dtype == torch.bfloat16 else 2.0**-11
    assert abs(loss.item() - ref.item()) <= unit * abs(ref.item())  # one rounding of the result
    loss.backward()
    ref.backward()
    assert zh.grad.dtype == dtype
    assert (zh.grad.double() - zr.grad).abs().max() <= 2 * unit * zr.grad.abs().max()


def test_meta_device():
    z = torch.empty(4, 10, device="meta", requires_grad=True)
    out = cross_entropy_loss(z, torch.empty(4, dtype=torch.long, device="meta"), reduction="none", validate=False)
    assert out.device.type == "meta" and out.shape == (4,)


@pytest.mark.parametrize("path", ["small", "fused"])
def test_validation_on_both_torch_paths(path, monkeypatch):
    if path == "fused":
        from klkit._engine import fused_tiles

        monkeypatch.setattr(fused_tiles, "TILE_ELEMENTS", 4)
    z = torch.zeros(3, 4)
    with pytest.raises(ValueError, match=r"`target` class indices must lie in \[0, 3\]"):
        cross_entropy_loss(z, torch.tensor([0, 9, 1]))
    with pytest.raises(ValueError, match="`logits` must hold logits"):
        cross_entropy_loss(torch.tensor([[0.0, math.inf, 0, 0]] * 3), torch.tensor([0, 1, 2]))
    with pytest.raises(ValueError, match="at least one finite logit"):
        cross_entropy_loss(torch.tensor([[-math.inf] * 4] * 3), torch.tensor([0, 1, 2]))
    masked = torch.tensor([[0.0, -math.inf, 0, 0]] * 3)
    assert cross_entropy_loss(masked, torch.tensor([1, 0, 0]), reduction="none")[0] == math.inf  # as torch
    bad = torch.full((3, 4), 0.3)
    with pytest.raises(InvalidDistributionError, match="sum to 1"):
        cross_entropy_loss(z, bad)
    assert torch.isfinite(cross_entropy_loss(z, bad, validate=False))  # no check, no host sync
