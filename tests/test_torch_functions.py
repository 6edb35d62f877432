"""The fused torch autograd Functions (``klkit._engine``) against plain float64 torch and gradcheck."""

from __future__ import annotations

import math
import shutil

import pytest

torch = pytest.importorskip("torch")
import torch.nn.functional as F  # noqa: E402

from klkit._engine import (  # noqa: E402
    TILE_ELEMENTS,
    fused_tiles,
    logits_cross_entropy,
    logits_cross_entropy_soft,
    logits_entropy,
    logits_kl,
)

INF = math.inf


@pytest.fixture(params=["one tile", "row tiles", "column tiles"])
def tiling(request, monkeypatch):
    """Run each test with the whole input in one tile, with tiles of 3 rows, and with column tiles."""
    size = {"one tile": TILE_ELEMENTS, "row tiles": 3 * 7, "column tiles": 4}[request.param]
    monkeypatch.setattr(fused_tiles, "TILE_ELEMENTS", size)
    return request.param


# --- references: plain float64 torch ------------------------------------------------------------------


def ref_kl(zp, zq):
    lp, lq = F.log_softmax(zp.double(), -1), F.log_softmax(zq.double(), -1)
    p = lp.exp()
    return torch.where(p > 0, p * (lp - lq), torch.zeros_like(p)).sum(-1)


def ref_ce_soft(zp, zq):
    lp, lq = F.log_softmax(zp.double(), -1), F.log_softmax(zq.double(), -1)
    p = lp.exp()
    return torch.where(p > 0, -p * lq, torch.zeros_like(p)).sum(-1)


def ref_entropy(z):
    lp = F.log_softmax(z.double(), -1)
    p = lp.exp()
    return torch.where(p > 0, -p * lp, torch.zeros_like(p)).sum(-1)


def ref_ce(target, z, weight=None, eps=0.0, ignore_index=-100):
    """ℓ_n = −Σ_c a_{n,c} log softmax(z_n)_c with the target weights a written out in full."""
    z = z.double()
    n = z.shape[-1]
    w = torch.ones(n, dtype=torch.float64) if weight is None else weight.double()
    if target.is_floating_point():
        a = w * ((1 - eps) * target.double() + eps / n)
    else:
        valid = target != ignore_index
        onehot = F.one_hot(torch.where(valid, target, 0), n).double() * valid[:, None]
        a = (1 - eps) * onehot * w + (eps / n) * w * valid[:, None]
    lq = F.log_softmax(z, -1)
    return torch.where(a > 0, -a * lq, torch.zeros_like(a)).sum(-1)


def grads(fn, *inputs, seed=0):
    """Value and input gradients of Σ g·fn(inputs) for a random g (also negative)."""
    xs = [x.detach().clone().requires_grad_(x.is_floating_point()) for x in inputs]
    out = fn(*xs)
    out = out[0] if isinstance(out, tuple) else out
    g = torch.randn(out.shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    (out.double() * g).sum().backward()
    return out.detach(), [x.grad for x in xs if x.requires_grad]


def logits(shape, seed, scale=3.0, dtype=torch.float64):
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64).mul(scale).to(dtype)


# --- values and gradients against the references ------------------------------------------------------


@pytest.mark.parametrize(("mine", "ref"), [(logits_kl, ref_kl), (logits_cross_entropy_soft, ref_ce_soft)])
def test_pairs_match_float64_reference(mine, ref, tiling):
    zp, zq = logits((7, 11), 1), logits((7, 11), 2)
    value, (gp, gq) = grads(mine, zp, zq)
    ref_value, (rgp, rgq) = grads(ref, zp, zq)
    torch.testing.assert_close(value, ref_value, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(gp, rgp, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(gq, rgq, rtol=1e-10, atol=1e-12)


def test_entropy_matches_float64_reference(tiling):
    z = logits((2, 3, 11), 3)
    value, (g,) = grads(logits_entropy, z)
    ref_value, (rg,) = grads(ref_entropy, z)
    assert value.shape == (2, 3)
    torch.testing.assert_close(value, ref_value, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(g, rg, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("target_kind", ["index", "probs"])
@pytest.mark.parametrize("use_weight", [False, True])
@pytest.mark.parametrize("eps", [0.0, 0.3])
def test_cross_entropy_matches_float64_reference(target_kind, use_weight, eps, tiling):
    z = logits((9, 7), 4)
    gen = torch.Generator().manual_seed(5)
    w = torch.rand(7, generator=gen, dtype=torch.float64) + 0.1 if use_weight else None
    if target_kind == "index":
        t = torch.randint(7, (9,), generator=gen)
        t[[2, 5]] = -100
    else:
        t = torch.softmax(torch.randn(9, 7, generator=gen, dtype=torch.float64), -1)
    value, g = grads(lambda t_, z_: logits_cross_entropy(t_, z_, weight=w, label_smoothing=eps), t, z)
    ref_value, rg = grads(lambda t_, z_: ref_ce(t_, z_, w, eps), t, z)
    torch.testing.assert_close(value, ref_value, rtol=1e-12, atol=1e-12)
    for mine, ref in zip(g, rg, strict=True):  # logits, and the probability target when there is one
        torch.testing.assert_close(mine, ref, rtol=1e-10, atol=1e-12)


def test_cross_entropy_returns_the_rows_log_sum_exp():
    z = logits((4, 6), 6)
    _, lse = logits_cross_entropy(torch.tensor([0, 1, 2, 3]), z)
    torch.testing.assert_close(lse, torch.log(torch.exp(z).sum(-1)), rtol=1e-12, atol=1e-12)
    assert not lse.requires_grad


def test_gradcheck_float64(tiling):
    zp = logits((3, 5), 7).requires_grad_()
    zq = logits((3, 5), 8).requires_grad_()
    assert torch.autograd.gradcheck(logits_kl, (zp, zq))
    assert torch.autograd.gradcheck(logits_cross_entropy_soft, (zp, zq))
    assert torch.autograd.gradcheck(logits_entropy, (zp,))
    w = torch.rand(5, dtype=torch.float64) + 0.5
    y = torch.tensor([0, 4, -100])
    assert torch.autograd.gradcheck(lambda z: logits_cross_entropy(y, z, weight=w, label_smoothing=0.2)[0], (zp,))
    t = torch.softmax(logits((3, 5), 9), -1).requires_grad_()
    assert torch.autograd.gradcheck(
        lambda t_, z: logits_cross_entropy(t_, z, weight=w, label_smoothing=0.2)[0], (t, zp)
    )


# --- masks (-inf) ----------------------------------------------------------------------------------------


def test_masked_logits_are_exact(tiling):
    zp = torch.tensor([[0.0, -INF, 1.0, 2.0], [1.0, 0.5, -INF, -INF]], dtype=torch.float64)
    zq = torch.tensor([[0.3, -INF, -1.0, 0.0], [0.0, 2.0, 1.0, -INF]], dtype=torch.float64)
    # the reference: -inf replaced by -1e4, whose exp is exactly 0 in float64 (the limit, with finite gradients)
    fp, fq = zp.nan_to_num(neginf=-1e4), zq.nan_to_num(neginf=-1e4)
    for mine, ref in ((logits_kl, ref_kl), (logits_cross_entropy_soft, ref_ce_soft)):
        value, (gp, gq) = grads(mine, zp, zq)
        ref_value, (rgp, rgq) = grads(ref, fp, fq)
        torch.testing.assert_close(value, ref_value, rtol=1e-12, atol=1e-12)
        assert (gp[zp == -INF] == 0).all()  # a masked outcome of p has no gradient
        torch.testing.assert_close(gq, rgq, rtol=1e-10, atol=1e-12)
        torch.testing.assert_close(gp, rgp, rtol=1e-10, atol=1e-12)
    value, (g,) = grads(logits_entropy, zp)
    ref_value, (rg,) = grads(ref_entropy, fp)
    torch.testing.assert_close(value, ref_value, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(g, rg, rtol=1e-10, atol=1e-12)


def test_q_masked_where_p_is_not_gives_inf(tiling):
    zp = torch.tensor([[0.0, 0.0, 0.0], [0.0, -200.0, 0.0]])  # float32: exp(-200) underflows to 0
    zq = torch.tensor([[0.0, -INF, 0.0], [0.0, -INF, 0.0]])
    # the support rule: p > 0 in the compute dtype; in float32 the second row's p is [½, 0, ½] = q
    assert logits_kl(zp, zq).tolist() == [INF, 0.0]
    assert logits_cross_entropy_soft(zp, zq).tolist() == [INF, pytest.approx(math.log(2.0), rel=1e-6)]
    assert logits_kl(zp.double(), zq.double()).tolist() == [INF, INF]  # float64: exp(-200) > 0
    zp_d, zq_d = zp.double().requires_grad_(), zq.double().requires_grad_()
    logits_kl(zp_d, zq_d).sum().backward()
    assert torch.isfinite(zq_d.grad).all()  # ∂/∂z_q = q − p stays finite


def test_masked_target_logit_in_cross_entropy():
    z = torch.tensor([[0.0, -INF, 1.0]], dtype=torch.float64)
    loss, _ = logits_cross_entropy(torch.tensor([1]), z)
    assert loss.item() == INF  # the label is impossible under the model, as in F.cross_entropy
    loss, _ = logits_cross_entropy(torch.tensor([[0.5, 0.0, 0.5]], dtype=torch.float64), z)
    torch.testing.assert_close(loss, ref_ce(torch.tensor([[0.5, 0.0, 0.5]]), z))  # 0·(−inf) = 0


# --- half precision ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision_accumulates_in_float32(dtype, tiling):
    zp, zq = logits((6, 40), 10, dtype=dtype), logits((6, 40), 11, dtype=dtype)
    y = torch.randint(40, (6,), generator=torch.Generator().manual_seed(0))
    unit = 2.0**-8 if dtype == torch.bfloat16 else 2.0**-11
    cases = [
        (logits_kl, ref_kl, (zp, zq)),
        (logits_cross_entropy_soft, ref_ce_soft, (zp, zq)),
        (logits_entropy, ref_entropy, (zp,)),
        (lambda z: logits_cross_entropy(y, z, label_smoothing=0.1), lambda z: ref_ce(y, z, None, 0.1), (zp,)),
    ]
    for mine, ref, inputs in cases:
        value, g = grads(mine, *inputs)
        ref_value, rg = grads(ref, *(x.double() for x in inputs))  # the exact answer for these half inputs
        assert value.dtype == dtype and all(x.dtype == dtype for x in g)
        # one rounding to the output dtype: relative error ≤ one unit of the format
        assert ((value.double() - ref_value).abs() <= unit * ref_value.abs() + 1e-6).all()
        for mine_g, ref_g in zip(g, rg, strict=True):  # g itself arrives rounded to the dtype: two units
            assert (mine_g.double() - ref_g).abs().max() <= 2 * unit * ref_g.abs().max()


# --- devices, shapes, compile --------------------------------------------------------------------------------


def test_meta_device_shapes_and_dtypes():
    zp = torch.empty(4, 10, device="meta", dtype=torch.bfloat16, requires_grad=True)
    zq = torch.empty(4, 10, device="meta", dtype=torch.bfloat16)
    out = logits_kl(zp, zq)
    assert out.device.type == "meta" and out.shape == (4,) and out.dtype == torch.bfloat16
    loss, lse = logits_cross_entropy(torch.empty(4, dtype=torch.long, device="meta"), zq)
    assert loss.shape == (4,) and lse.dtype == torch.float32 and loss.device.type == "meta"


def test_shape_errors_name_the_argument():
    with pytest.raises(ValueError, match="`p_logits` and `q_logits` must have the same shape"):
        logits_kl(torch.zeros(2, 3), torch.zeros(2, 4))
    with pytest.raises(TypeError, match=r"`logits` must be a floating torch\.Tensor"):
        logits_entropy(torch.zeros(2, 3, dtype=torch.long))
    with pytest.raises(ValueError, match="non-empty class axis"):
        logits_entropy(torch.zeros(2, 0))


def _inductor_available() -> str | None:
    if shutil.which("g++") is None and shutil.which("gcc") is None:
        return "no C++ compiler for inductor"
    try:
        torch.compile(lambda x: x + 1, fullgraph=True)(torch.zeros(2))
    except Exception as exc:  # pragma: no cover - depends on the machine
        return f"torch.compile unavailable: {type(exc).__name__}: {exc}"
    return None


@pytest.mark.slow
def test_compiles_without_graph_breaks():
    reason = _inductor_available()
    if reason:
        pytest.skip(reason)
    torch._dynamo.reset()
    zp, zq = logits((5, 9), 12, dtype=torch.float32), logits((5, 9), 13, dtype=torch.float32)
    y = torch.tensor([0, 3, -100, 8, 1])

    def step(a, b):
        loss = logits_kl(a, b).mean() + logits_entropy(a).mean() + logits_cross_entropy_soft(a, b).mean()
        return loss + logits_cross_entropy(y, b, label_smoothing=0.1)[0].mean()

    compiled = torch.compile(step, fullgraph=True)  # fullgraph: a graph break raises
    a1, b1 = zp.clone().requires_grad_(), zq.clone().requires_grad_()
    a2, b2 = zp.clone().requires_grad_(), zq.clone().requires_grad_()
    compiled(a1, b1).backward()
    step(a2, b2).backward()
    torch.testing.assert_close(a1.grad, a2.grad, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(b1.grad, b2.grad, rtol=1e-5, atol=1e-6)
