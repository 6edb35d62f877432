"""Second derivatives of the cross-entropy loss and of the logits measures on their fused Functions.

The truth is independent of the code under test: ``gradgradcheck`` compares the double backward with
float64 finite differences of the first derivative, and Hessian-vector products are checked against
the closed-form Hessian of softmax cross-entropy, m (diag(s) − s sᵀ), and against central differences
of the first-order (fused-kernel) gradients.
"""

from __future__ import annotations

import pytest
import torch
from torch.autograd import gradcheck, gradgradcheck

import klkit
from klkit.losses import cross_entropy_loss


@pytest.fixture
def fused_loss(monkeypatch):
    """Send every torch cross-entropy loss to the fused Function: no small-input lanes, 16-entry tiles."""
    monkeypatch.setattr("klkit._engine.fused_tiles.TILE_ELEMENTS", 16)
    monkeypatch.setattr("klkit._engine.loss_fast.SMALL_LOSS", 0)


@pytest.fixture
def fused_measures(monkeypatch):
    """Send torch logits under autograd to the fused measure Functions, whatever their size."""
    monkeypatch.setattr("klkit._engine.torch_autograd.FUSED_MIN", 1)


def graph_names(out: torch.Tensor) -> set[str]:
    """Names of every backward node reachable from ``out``."""
    seen, stack, names = set(), [out.grad_fn], set()
    while stack:
        node = stack.pop()
        if node is None or node in seen:
            continue
        seen.add(node)
        names.add(type(node).__name__)
        stack.extend(next_fn for next_fn, _ in node.next_functions)
    return names


def index_case(rows: int = 6, n: int = 5, seed: int = 0, ignore_index: int = -100, mask: bool = True):
    gen = torch.Generator().manual_seed(seed)
    z = torch.randn(rows, n, generator=gen, dtype=torch.float64)
    y = torch.randint(0, n, (rows,), generator=gen)
    y[1] = ignore_index
    y[3] = 0
    if mask:  # a masked class beside the label (smoothing puts weight on it: an infinite loss)
        z[3, 2] = -float("inf")
    return z, y


@pytest.mark.parametrize("ignore_index", [-100, 1])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize(("weighted", "smoothing"), [(False, 0.0), (True, 0.0), (False, 0.2), (True, 0.3)])
def test_index_loss_second_derivative(fused_loss, ignore_index, reduction, weighted, smoothing):
    z, y = index_case(ignore_index=ignore_index, mask=smoothing == 0)
    w = torch.tensor([0.5, 1.0, 2.0, 1.5, 0.25], dtype=torch.float64) if weighted else None

    def loss(z):
        return cross_entropy_loss(
            z, y, weight=w, ignore_index=ignore_index, label_smoothing=smoothing, reduction=reduction
        )

    zin = z.clone().requires_grad_(True)
    assert "_IndexCEBackward" in graph_names(loss(zin))
    assert gradcheck(loss, (zin,))
    assert gradgradcheck(loss, (zin,))


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize(("weighted", "smoothing"), [(False, 0.0), (True, 0.0), (False, 0.1), (True, 0.25)])
def test_soft_target_loss_second_derivative(fused_loss, reduction, weighted, smoothing):
    """Probability targets t = softmax(u): second derivatives in the logits, the target, and across."""
    gen = torch.Generator().manual_seed(1)
    z = torch.randn(4, 7, generator=gen, dtype=torch.float64, requires_grad=True)
    u = torch.randn(4, 7, generator=gen, dtype=torch.float64, requires_grad=True)
    w = torch.linspace(0.5, 2.0, 7, dtype=torch.float64) if weighted else None

    def loss(z, u):
        t = torch.softmax(u, dim=-1)
        return cross_entropy_loss(z, t, weight=w, label_smoothing=smoothing, reduction=reduction)

    assert "_ProbsCEBackward" in graph_names(loss(z, u))
    assert gradgradcheck(loss, (z, u))


@pytest.mark.parametrize("measure", ["kl_divergence", "cross_entropy", "entropy"])
@pytest.mark.parametrize("mask", ["none", "shared", "p_only"])
def test_logits_measures_second_derivative(fused_measures, measure, mask):
    gen = torch.Generator().manual_seed(2)
    zp = torch.randn(3, 6, generator=gen, dtype=torch.float64)
    zq = torch.randn(3, 6, generator=gen, dtype=torch.float64)
    if mask != "none":
        zp[0, 1] = -float("inf")  # p = 0 there: no term, finite derivatives of every order
        zq[0, 1] = -float("inf") if mask == "shared" else zq[0, 1]
    zp.requires_grad_(True)
    zq.requires_grad_(True)
    fn = getattr(klkit, measure)

    def value(zp, zq):
        return fn(zp, kind="logits") if measure == "entropy" else fn(zp, zq, kind="logits")

    names = graph_names(value(zp, zq))
    assert ("_EntropyBackward" if measure == "entropy" else "_PairBackward") in names
    out = value(zp, zq)
    assert torch.isfinite(out).all()
    assert gradgradcheck(value, (zp, zq))


def closed_form_hvp(z, a, scale, v):
    """Σ_n scale_n m_n (diag(s_n) − s_n s_nᵀ) v_n, the Hessian of Σ_n scale_n ℓ_n applied to v."""
    s = torch.softmax(z, dim=-1)
    m = a.sum(dim=-1, keepdim=True)
    sv = s * v
    return scale[:, None] * m * (sv - s * sv.sum(dim=-1, keepdim=True))


def test_hessian_vector_product_against_closed_form_and_finite_differences(fused_loss):
    n, rows = 5, 8
    gen = torch.Generator().manual_seed(3)
    z = torch.randn(rows, n, generator=gen, dtype=torch.float64)
    y = torch.randint(0, n, (rows,), generator=gen)
    y[2] = -100
    v = torch.randn(rows, n, generator=gen, dtype=torch.float64)
    w = torch.tensor([1.0, 0.5, 2.0, 1.0, 3.0], dtype=torch.float64)
    eps = 0.1

    def loss(z):
        return cross_entropy_loss(z, y, weight=w, label_smoothing=eps)

    zin = z.clone().requires_grad_(True)
    (g,) = torch.autograd.grad(loss(zin), zin, create_graph=True)
    (hvp,) = torch.autograd.grad((g * v).sum(), zin)

    valid = (y != -100).double()
    a = (eps / n) * w[None, :] * valid[:, None]
    a[valid.bool(), y[valid.bool()]] += (1 - eps) * w[y[valid.bool()]]
    denominator = (w[y.clamp(min=0)] * valid).sum()  # the weighted mean's Σ_n w_{y_n}
    want = closed_form_hvp(z, a, torch.full((rows,), 1.0, dtype=torch.float64) / denominator, v)
    torch.testing.assert_close(hvp, want, rtol=1e-12, atol=1e-14)

    h = 1e-5  # central difference of the first-order (fused kernel) gradients: error O(h²)
    grads = []
    for sign in (1, -1):
        zs = (z + sign * h * v).requires_grad_(True)
        grads.append(torch.autograd.grad(loss(zs), zs)[0])
    torch.testing.assert_close(hvp, (grads[0] - grads[1]) / (2 * h), rtol=1e-7, atol=1e-9)


def test_kl_hessian_vector_product_against_finite_differences(fused_measures):
    """Hessian of Σ KL(p‖q) wrt both logits (p's block included), applied to (v_p, v_q)."""
    gen = torch.Generator().manual_seed(4)
    zp, zq, vp, vq = (torch.randn(4, 9, generator=gen, dtype=torch.float64) for _ in range(4))

    def grads(zp, zq, create_graph):
        zp, zq = zp.requires_grad_(True), zq.requires_grad_(True)
        gp, gq = torch.autograd.grad(
            klkit.kl_divergence(zp, zq, kind="logits").sum(), (zp, zq), create_graph=create_graph
        )
        return zp, zq, gp, gq

    zp_in, zq_in, gp, gq = grads(zp.clone(), zq.clone(), True)
    hp, hq = torch.autograd.grad((gp * vp).sum() + (gq * vq).sum(), (zp_in, zq_in))
    h = 1e-5
    plus = grads(zp + h * vp, zq + h * vq, False)
    minus = grads(zp - h * vp, zq - h * vq, False)
    torch.testing.assert_close(hp, (plus[2] - minus[2]) / (2 * h), rtol=1e-7, atol=1e-9)
    torch.testing.assert_close(hq, (plus[3] - minus[3]) / (2 * h), rtol=1e-7, atol=1e-9)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_low_precision_hessian_vector_product(dtype):
    """Half/single precision take the fused Function without patching; the HVP matches float64's closed form."""
    gen = torch.Generator().manual_seed(5)
    z = torch.randn(6, 5, generator=gen, dtype=torch.float64)
    y = torch.randint(0, 5, (6,), generator=gen)
    v = torch.randn(6, 5, generator=gen, dtype=torch.float64)
    t = torch.softmax(torch.randn(6, 5, generator=gen, dtype=torch.float64), dim=-1)
    target = y if dtype == torch.bfloat16 else t.to(dtype)  # float32 soft targets: the fused Function
    zin = z.to(dtype).requires_grad_(True)
    out = cross_entropy_loss(zin, target, reduction="sum")
    assert {"_IndexCEBackward", "_ProbsCEBackward"} & graph_names(out)
    (g,) = torch.autograd.grad(out, zin, create_graph=True)
    (hvp,) = torch.autograd.grad((g * v.to(dtype)).sum(), zin)
    assert hvp.dtype == dtype
    a = torch.nn.functional.one_hot(y, 5).double() if dtype == torch.bfloat16 else t.to(dtype).double()
    want = closed_form_hvp(z.to(dtype).double(), a, torch.ones(6, dtype=torch.float64), v.to(dtype).double())
    tol = 2e-2 if dtype == torch.bfloat16 else 1e-5
    torch.testing.assert_close(hvp.double(), want, rtol=tol, atol=tol)
