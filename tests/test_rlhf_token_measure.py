"""rlhf.token_kl is klkit.kl_divergence(kind="logits") per token: one answer per input, masked vocabularies included."""

from __future__ import annotations

import math

import mpmath
import pytest

torch = pytest.importorskip("torch")

import klkit  # noqa: E402
from klkit.rlhf import token_kl  # noqa: E402

MASKED_P = [0.3, -1.2, -1e9, 0.5]
MASKED_Q = [0.1, 0.5, -math.inf, 0.2]


def _mp_kl(a: list[float], b: list[float]) -> float:
    """KL(softmax a ‖ softmax b) over the entries with finite logits in both (the masked one has p = q = 0)."""
    pairs = [(x, y) for x, y in zip(a, b) if math.isfinite(y) and x > -1e8]
    with mpmath.workdps(40):
        za = mpmath.log(mpmath.fsum(mpmath.exp(x) for x, _ in pairs))
        zb = mpmath.log(mpmath.fsum(mpmath.exp(y) for _, y in pairs))
        return float(mpmath.fsum(mpmath.exp(x - za) * ((x - za) - (y - zb)) for x, y in pairs))


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32, torch.bfloat16, torch.float16])
@pytest.mark.parametrize("grad", [False, True])
def test_token_kl_is_the_measure(dtype, grad):
    torch.manual_seed(0)
    logits, ref = torch.randn(3, 5, 11).to(dtype), torch.randn(3, 5, 11).to(dtype)
    logits[0, 0, :4], ref[0, 0, :4] = torch.tensor(MASKED_P).to(dtype).clamp(min=-6e4), torch.tensor(MASKED_Q)
    a, b = logits.clone().requires_grad_(grad), ref.clone().requires_grad_(grad)
    mine = token_kl(a, b)
    wide = torch.promote_types(dtype, torch.float32)
    a2, b2 = logits.clone().requires_grad_(grad), ref.clone().requires_grad_(grad)
    measure = klkit.kl_divergence(a2.to(wide), b2.to(wide), kind="logits")
    assert mine.dtype == wide  # float32 for half precision
    assert torch.equal(mine.detach(), measure.detach())
    if grad:
        mine.sum().backward()
        measure.sum().backward()
        assert a.grad.dtype == dtype and torch.equal(a.grad, a2.grad) and torch.equal(b.grad, b2.grad)
        assert bool(torch.isfinite(a.grad).all()) and bool(torch.isfinite(b.grad).all())


@pytest.mark.parametrize("direction", ["reverse", "forward"])
def test_masked_vocabulary_against_mpmath(direction):
    a = torch.tensor([MASKED_P], dtype=torch.float64, requires_grad=True)
    b = torch.tensor([MASKED_Q], dtype=torch.float64, requires_grad=True)
    value = token_kl(a, b, direction=direction)
    truth = _mp_kl(MASKED_P, MASKED_Q) if direction == "reverse" else _mp_kl(MASKED_Q, MASKED_P)
    assert value.item() == pytest.approx(truth, rel=1e-14)
    (ga,) = torch.autograd.grad(value.sum(), a, create_graph=True)
    (hvp,) = torch.autograd.grad(ga.sum(), a)
    assert bool(torch.isfinite(ga).all()) and bool(torch.isfinite(hvp).all())
    assert ga[0, 2].item() == 0.0 and hvp[0, 2].item() == 0.0  # the masked entry: outside both supports
