"""The discrete closed forms follow the measures' support rule: P's support is p > 0 in the working dtype.

A term with p = 0 adds nothing to the value or the gradient, also where q = 0 (a masked logit of −1e9
beside −inf), so the distribution-object call agrees with the array call ``klkit.kl_divergence``.
Truth: mpmath sums over the surviving outcomes and the analytic gradients of KL of a softmax.
"""

from __future__ import annotations

import math

import mpmath
import pytest

torch = pytest.importorskip("torch")
D = torch.distributions

import klkit  # noqa: E402

INF = math.inf


def _truth(a: list[float], b: list[float]) -> tuple[float, list[float], list[float]]:
    """KL(softmax a ‖ softmax b) and its gradients over the outcomes where both logits are finite (mpmath)."""
    with mpmath.workdps(40):
        la = [mpmath.mpf(x) for x in a]
        lb = [mpmath.mpf(x) for x in b]
        za, zb = mpmath.log(sum(mpmath.exp(x) for x in la)), mpmath.log(sum(mpmath.exp(x) for x in lb))
        lp, lq = [x - za for x in la], [x - zb for x in lb]
        p, q = [mpmath.exp(x) for x in lp], [mpmath.exp(x) for x in lq]
        kl = sum(pi * (x - y) for pi, x, y in zip(p, lp, lq))
        grad_a = [pi * (x - y - kl) for pi, x, y in zip(p, lp, lq)]  # ∂KL/∂a_j = p_j (d_j − KL)
        grad_b = [qi - pi for pi, qi in zip(p, q)]  # ∂KL/∂b_j = q_j − p_j
        return float(kl), [float(g) for g in grad_a] + [0.0], [float(g) for g in grad_b] + [0.0]


@pytest.mark.parametrize("family", [D.Categorical, D.OneHotCategorical])
def test_categorical_masked_logit_is_outside_the_support(family):
    a = torch.tensor([0.3, -1.2, -1e9], dtype=torch.float64, requires_grad=True)
    b = torch.tensor([0.1, 0.5, -INF], dtype=torch.float64, requires_grad=True)
    value = klkit.kl_divergence(family(logits=a), family(logits=b))
    value.backward()
    kl, grad_a, grad_b = _truth([0.3, -1.2], [0.1, 0.5])
    assert value.item() == pytest.approx(kl, rel=1e-14)
    assert a.grad.tolist() == pytest.approx(grad_a, rel=1e-13, abs=1e-16)
    assert b.grad.tolist() == pytest.approx(grad_b, rel=1e-13, abs=1e-16)


def test_categorical_object_and_array_calls_agree_on_masked_logits():
    rows_p = [[0.0, -1e9], [0.0, -1.0], [0.2, -1e9]]
    rows_q = [[0.0, -INF], [0.0, -INF], [-0.4, 0.3]]
    for row_p, row_q in zip(rows_p, rows_q):
        a1 = torch.tensor(row_p, dtype=torch.float64, requires_grad=True)
        a2 = torch.tensor(row_p, dtype=torch.float64, requires_grad=True)
        obj = klkit.kl_divergence(
            D.Categorical(logits=a1), D.Categorical(logits=torch.tensor(row_q, dtype=torch.float64))
        )
        arr = klkit.kl_divergence(a2, torch.tensor(row_q, dtype=torch.float64), kind="logits")
        assert obj.item() == pytest.approx(arr.item(), rel=1e-15)
        if math.isfinite(obj.item()):
            obj.backward()
            arr.backward()
            assert a1.grad.tolist() == pytest.approx(a2.grad.tolist(), rel=1e-14, abs=1e-300)
    # [0, −1] against [0, −inf]: p_2 = e^{-1}/(1+e^{-1}) > 0 = q_2, so KL = +inf on both calls
    assert (
        klkit.kl_divergence(
            D.Categorical(logits=torch.tensor([0.0, -1.0])), D.Categorical(logits=torch.tensor([0.0, -INF]))
        ).item()
        == INF
    )


def test_categorical_support_is_decided_in_the_working_dtype():
    # e^{−200} underflows to 0 in float32 (outside P's support), not in float64 (then q = 0 < p: +inf)
    for dtype, expected in ((torch.float32, 0.0), (torch.float64, INF)):
        p = D.Categorical(logits=torch.tensor([0.0, -200.0, 0.0], dtype=dtype))
        q = D.Categorical(logits=torch.tensor([0.0, -INF, 0.0], dtype=dtype))
        assert klkit.kl_divergence(p, q).item() == expected
        assert klkit.kl_divergence(p.logits, q.logits, kind="logits").item() == expected


@pytest.mark.parametrize(
    "make",
    [
        lambda t: D.Bernoulli(logits=t),
        lambda t: D.Binomial(5, logits=t),
        lambda t: D.Geometric(logits=-t),  # −t: the point mass at 0 failures has success logit +inf
    ],
)
def test_bernoulli_like_masked_logit_has_zero_value_and_gradient(make):
    # Bernoulli(logit −1e9) is the point mass at 0 in float64 (σ(−1e9) = 0), as Bernoulli(logit −inf):
    # KL = 0, and the array call on the two-outcome logits [a, 0] ‖ [−inf, 0] has gradient 0 too
    a = torch.tensor([-1e9], dtype=torch.float64, requires_grad=True)
    value = klkit.kl_divergence(make(a), make(torch.tensor([-INF], dtype=torch.float64)))
    value.sum().backward()
    assert value.item() == 0.0
    assert a.grad.item() == 0.0
    arr = torch.tensor([-1e9, 0.0], dtype=torch.float64, requires_grad=True)
    klkit.kl_divergence(arr, torch.tensor([-INF, 0.0], dtype=torch.float64), kind="logits").backward()
    assert arr.grad[0].item() == a.grad.item()


def test_binomial_unequal_counts_uses_the_support_rule():
    # Binomial(5, 0) and Binomial(6, 0) are both the point mass at 0: KL = 0 (the log-pmf's own gradient
    # at π = 0 is infinite, so only the value is pinned here)
    p = D.Binomial(5, logits=torch.tensor(-1e9, dtype=torch.float64))
    q = D.Binomial(6, logits=torch.tensor(-INF, dtype=torch.float64))
    assert klkit.kl_divergence(p, q).item() == 0.0
    # Binomial(6, ½) has mass at k = 6 where Binomial(5, ½) has none: only the reverse direction is +inf
    half5, half6 = D.Binomial(5, probs=torch.tensor(0.5)), D.Binomial(6, probs=torch.tensor(0.5))
    assert klkit.kl_divergence(half6, half5).item() == INF
    assert klkit.kl_divergence(half5, half6).item() == pytest.approx(
        float(
            sum(
                mpmath.binomial(5, k) / 32 * mpmath.log(mpmath.binomial(5, k) / 32 / (mpmath.binomial(6, k) / 64))
                for k in range(6)
            )
        ),
        rel=1e-6,
    )


def test_poisson_zero_rate_has_a_finite_gradient():
    # KL(Poisson(0) ‖ Poisson(λ)) = λ; ∂/∂λ (λ − λp log λ) = 1 − λp/λ = 1 at λp = 0
    rp = torch.tensor([0.0, 0.0], dtype=torch.float64, requires_grad=True)
    rq = torch.tensor([2.0, 0.0], dtype=torch.float64, requires_grad=True)
    value = klkit.kl_divergence(D.Poisson(rp), D.Poisson(rq))
    value.sum().backward()
    assert value.tolist() == [2.0, 0.0]
    assert rq.grad.tolist() == [1.0, 1.0]
    assert all(math.isfinite(g) for g in rp.grad.tolist())
    # λq = 0 < λp: +inf (P has mass where Q has none)
    assert klkit.kl_divergence(D.Poisson(torch.tensor(1.0)), D.Poisson(torch.tensor(0.0))).item() == INF
