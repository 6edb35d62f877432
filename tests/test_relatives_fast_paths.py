"""The relatives' gathered evaluation (numpy, eager torch: the general form only on the outcomes outside the
series' radius, the log-sum-exp form only for slices that need it) against the whole-array ``where`` form
(any other array library, here array-api-strict) and against mpmath: one input, one answer.

Rows mix near-equal slices (every outcome inside the radius), slices with a few outcomes outside it, far
slices, zeros on either side and disjoint supports, so that each branch runs beside the others in one batch.
"""

from __future__ import annotations

import mpmath
import numpy as np
import pytest

import klkit

torch = pytest.importorskip("torch")
strict = pytest.importorskip("array_api_strict")

ALPHAS = [1e-3, 0.3, 0.5, 1 - 1e-7, 1 + 1e-9, 1.5, 2.0, 5.0, 60.0]


def _exact(w: np.ndarray) -> np.ndarray:
    counts = np.floor(w / w.sum() * 2.0**52)
    counts[np.argmax(counts)] += 2.0**52 - counts.sum()
    return counts / 2.0**52


def _rows() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(17)
    ps, qs = [], []
    for i in range(12):
        p = rng.dirichlet(np.ones(16))
        spread = [1e-9, 1e-4, 0.05, 0.3, 1.0, 3.0][i % 6]
        q = p * np.exp(spread * rng.standard_normal(16))
        if i % 4 == 3:
            p[:3] = 0.0  # p = 0 < q
        if i % 5 == 4:
            q[-2:] = 0.0  # q = 0 < p: +inf for α > 1
        ps.append(_exact(p))
        qs.append(_exact(q))
    return np.stack(ps), np.stack(qs)


def _reference(p: np.ndarray, q: np.ndarray, alpha: float) -> float:
    with mpmath.workdps(50):
        a = mpmath.mpf(alpha)
        total = mpmath.mpf(0)
        for x, y in zip(p.tolist(), q.tolist(), strict=True):
            if x > 0 and y > 0:
                total += mpmath.mpf(x) ** a * mpmath.mpf(y) ** (1 - a)
            elif x > 0 and a > 1:
                return float("inf")
        return float(mpmath.log(total) / (a - 1)) if total > 0 else float("inf")


@pytest.mark.parametrize("alpha", ALPHAS)
def test_renyi_gathered_equals_where_form_and_mpmath(alpha):
    p, q = _rows()
    got_np = np.asarray(klkit.renyi_divergence(p, q, alpha=alpha))
    got_strict = np.asarray(klkit.renyi_divergence(strict.asarray(p), strict.asarray(q), alpha=alpha))
    got_torch = klkit.renyi_divergence(torch.tensor(p), torch.tensor(q), alpha=alpha).numpy()
    ref = np.array([_reference(a, b, alpha) for a, b in zip(p, q, strict=True)])
    finite = np.isfinite(ref)
    assert np.array_equal(np.isfinite(got_np), finite)
    np.testing.assert_allclose(got_np[finite], ref[finite], rtol=2e-15, atol=0)
    np.testing.assert_allclose(got_strict, got_np, rtol=2e-15, atol=0)
    np.testing.assert_allclose(got_torch, got_np, rtol=2e-15, atol=0)
    for i in range(len(p)):  # a slice's value does not depend on the slices beside it
        assert float(klkit.renyi_divergence(p[i], q[i], alpha=alpha)) == pytest.approx(got_np[i], rel=1e-15, abs=0)


@pytest.mark.parametrize("alpha", [0.5, 2.0])
def test_renyi_gradient_through_the_gathered_form(alpha):
    """Gradients wrt logits (full support, so the defining formula is smooth) against autograd through
    the textbook formula, with rows inside and outside the series' radius in one batch."""
    rng = np.random.default_rng(4)
    a0 = rng.standard_normal((6, 12))
    b0 = a0 + np.array([1e-6, 1e-3, 0.1, 0.4, 1.0, 2.0])[:, None] * rng.standard_normal((6, 12))
    grads = []
    for fn in (
        lambda a, b: klkit.renyi_divergence(a, b, alpha=alpha, kind="logits"),
        lambda a, b: torch.log(torch.sum(a.softmax(-1) ** alpha * b.softmax(-1) ** (1 - alpha), dim=-1)) / (alpha - 1),
    ):
        a = torch.tensor(a0, requires_grad=True)
        b = torch.tensor(b0, requires_grad=True)
        fn(a, b).sum().backward()
        grads.append((a.grad, b.grad))
    for got, want in zip(grads[0], grads[1], strict=True):
        torch.testing.assert_close(got, want, rtol=1e-7, atol=1e-12)
