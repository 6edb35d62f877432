"""Numerical properties of the distillation losses over generated extreme cases (≥ 10,000 per setting).

Each batch holds 12,000 tokens (rows) of random logits mixing ordinary values, log-probabilities down
to −1e4, entries that underflow in both distributions (log-probabilities near −150, below float32's
−104), entries masked (−inf) in both, in float64, float32, bfloat16 and float16. Properties: no NaN
or inf in values or gradients; before the final clamp, every token's value within the rounding bound
that ``divergence_loss`` documents, ≥ −4ε(1 + Σ_c (s_c + t_c)(|log s_c| + |log t_c|)) and
≤ bound·(1 + 4ε) (the generalized JSD's h(β), log 2 at β = 0.5; TVD's 1; the skew KL's −log λ);
accuracy against scipy in float64 where float32 underflows.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.special import log_softmax as np_log_softmax
from scipy.special import rel_entr

from klkit.distill import _formulas, divergence_loss, generalized_jsd_loss
from klkit.distill._engine import compute_dtype, log_probs

ROWS = 12_000
DTYPES = [torch.float64, torch.float32, torch.bfloat16, torch.float16]
SETTINGS = [
    ("forward_kl", {}),
    ("reverse_kl", {}),
    ("jsd", {"beta": 0.5}),
    ("jsd", {"beta": 0.1}),
    ("jsd", {"beta": 0.9}),
    ("skew_forward_kl", {"skew": 0.1}),
    ("skew_reverse_kl", {"skew": 0.3}),
    ("tvd", {}),
    ("alpha_beta", {"alpha": 0.5, "beta": 0.5}),
    ("alpha_beta", {"alpha": 1.0, "beta": 0.0}),
    ("alpha_beta", {"alpha": 0.0, "beta": 1.0}),
    ("alpha_beta", {"alpha": 0.3, "beta": 0.9}),
    ("alpha_beta", {"alpha": 0.0, "beta": 0.0}),
]


@pytest.fixture(autouse=True)
def _one_thread(torch_one_thread):
    """Small tensors: one torch thread (see conftest.torch_one_thread)."""


def extreme_logits(seed: int, rows: int = ROWS, vocab: int = 24) -> tuple[np.ndarray, np.ndarray]:
    """Teacher and student logits, each row a different mix of the hard cases."""
    rng = np.random.default_rng(seed)
    scale = rng.choice([0.1, 1.0, 5.0, 30.0], size=(rows, 1))
    zt = rng.standard_normal((rows, vocab)) * scale
    zs = np.where(
        rng.random((rows, 1)) < 0.3,
        zt + 0.01 * rng.standard_normal((rows, vocab)),  # near-equal
        rng.standard_normal((rows, vocab)) * scale,
    )
    deep = rng.random((rows, vocab)) < 0.2  # log-probabilities down to −1e4 (one side or both)
    zt = np.where(deep & (rng.random((rows, vocab)) < 0.7), -1e4 * rng.random((rows, vocab)), zt)
    zs = np.where(deep & (rng.random((rows, vocab)) < 0.7), -1e4 * rng.random((rows, vocab)), zs)
    both_tiny = rng.random((rows, vocab)) < 0.15  # underflow in float32 in both: ~ e^−150
    zt = np.where(both_tiny, zt.max(-1, keepdims=True) - 150 - rng.random((rows, vocab)), zt)
    zs = np.where(both_tiny, zs.max(-1, keepdims=True) - 150 - rng.random((rows, vocab)), zs)
    masked = rng.random((rows, vocab)) < 0.05  # masked in both
    masked[:, 0] = False
    zt[masked], zs[masked] = -np.inf, -np.inf
    return zs, zt


def bound_of(divergence: str, options: dict) -> float:
    if divergence == "jsd":
        b = options["beta"]
        return -(b * math.log(b) + (1 - b) * math.log(1 - b))
    if divergence == "tvd":
        return 1.0
    if divergence.startswith("skew"):
        return -math.log(options["skew"])
    return math.inf


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize(("divergence", "options"), SETTINGS)
def test_no_nan_nonnegative_and_bounded(divergence, options, dtype):
    if dtype == torch.float16 and options == {"alpha": 0.0, "beta": 0.0}:
        pytest.skip("½ Σ (log t − log s)² reaches ~5e7 at gaps of 1e4: beyond float16's largest value, 65504")
    zs, zt = extreme_logits(seed=7)
    s = torch.from_numpy(zs).to(dtype).requires_grad_(True)
    t = torch.from_numpy(zt).to(dtype).requires_grad_(True)
    values = divergence_loss(s, t, divergence=divergence, reduction="none", **options)
    (values.float() * torch.linspace(0.5, 1.5, ROWS)).sum().backward()
    v = values.detach().double()
    assert v.shape == (ROWS,) and values.dtype == compute_dtype(dtype)  # float32 for half precision
    assert bool(torch.isfinite(v).all()), f"{int((~torch.isfinite(v)).sum())} non-finite values"
    for grad in (s.grad, t.grad):
        assert bool(torch.isfinite(grad.double()).all())


@pytest.mark.parametrize("temperature", [0.5, 1.0, 2.0])
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize(("divergence", "options"), SETTINGS)
def test_values_before_the_clamp_stay_within_the_documented_rounding(divergence, options, dtype, temperature):
    """The engine's per-token values before its final clamp into [0, bound] (the clamp would hide any
    error): ≥ −4ε(1 + Σ_c (s_c + t_c)(|a_c| + |b_c|)) and ≤ bound·(1 + 4ε), ε the compute dtype's epsilon
    (float32's for half-precision inputs), as divergence_loss's docstring states. With the log-probabilities
    computed as (y − max) − log Σ e^(y − max) float32 forward KL reaches −1.5e-7 here; as y − logsumexp(y)
    it reached −5.6e-6 (~50 ε), and TVD 1 + 2.6e-6."""
    zs, zt = extreme_logits(seed=7)
    cdtype = compute_dtype(dtype)
    a = log_probs(torch.from_numpy(zs).to(dtype), "logits", temperature, cdtype)
    b = log_probs(torch.from_numpy(zt).to(dtype), "logits", temperature, cdtype)
    r = _formulas.terms(
        divergence,
        a,
        b,
        beta=options.get("beta", 0.5),
        skew=options.get("skew", 0.1),
        alpha=options.get("alpha", 0.0),
        need_a=False,
        need_b=False,
    )
    v = r.values.double()
    a64, b64 = a.double(), b.double()
    finite = torch.isfinite(a64) & torch.isfinite(b64)
    size = torch.where(finite, (a64.exp() + b64.exp()) * (a64.abs() + b64.abs()), 0.0).sum(-1)
    eps = torch.finfo(cdtype).eps
    low = -4 * eps * (1 + size)
    assert bool((v >= low).all()), float(((v - low) / eps).min())
    bound = bound_of(divergence, options)
    if math.isfinite(bound):
        assert float(v.max()) <= bound * (1 + 4 * eps), (float(v.max()) - bound) / eps


@pytest.mark.parametrize("beta", [0.001, 0.1, 0.3, 0.5, 0.7, 0.999])
def test_generalized_jsd_never_exceeds_the_entropy_of_its_weights(beta):
    zs, zt = extreme_logits(seed=int(beta * 1000))
    bound = -(beta * math.log(beta) + (1 - beta) * math.log(1 - beta))
    for dtype in (torch.float32, torch.bfloat16):
        out = generalized_jsd_loss(
            torch.from_numpy(zs).to(dtype),
            torch.from_numpy(zt).to(dtype),
            torch.zeros(ROWS, dtype=torch.long),
            beta,
            reduction="none",
        )
        per_token = out.float().double().sum(-1)  # TRL's 'none' is per vocabulary entry
        assert float(out.float().min()) >= 0  # each entry is m·KL(Bernoulli) ≥ 0 for 0 < β < 1
        assert float(per_token.max()) <= bound * (1 + 1e-2)
        assert bool(torch.isfinite(per_token).all())
        loss = float(generalized_jsd_loss(torch.from_numpy(zs).to(dtype), torch.from_numpy(zt).to(dtype), beta=beta))
        assert 0 <= loss <= float(torch.tensor(bound, dtype=dtype))


@pytest.mark.parametrize(("divergence", "options"), SETTINGS[:8])
def test_float32_agrees_with_scipy_where_both_underflow(divergence, options):
    """Entries near e^−150 in both distributions: float32 underflows them to 0, and so loses nothing
    that float64 sees beyond its rounding (Liger's JSD returns NaN there)."""
    rng = np.random.default_rng(11)
    rows, vocab = 2_000, 16
    zt = rng.standard_normal((rows, vocab))
    zs = rng.standard_normal((rows, vocab))
    tiny = rng.random((rows, vocab)) < 0.5
    tiny[:, 0] = False
    zt[tiny] -= 150 + 40 * rng.random(int(tiny.sum()))
    zs[tiny] -= 150 + 40 * rng.random(int(tiny.sum()))
    t, s = np.exp(np_log_softmax(zt, -1)), np.exp(np_log_softmax(zs, -1))
    if divergence == "forward_kl":
        want = rel_entr(t, s).sum(-1)
    elif divergence == "reverse_kl":
        want = rel_entr(s, t).sum(-1)
    elif divergence == "jsd":
        b = options["beta"]
        m = (1 - b) * s + b * t
        want = b * rel_entr(t, m).sum(-1) + (1 - b) * rel_entr(s, m).sum(-1)
    elif divergence == "skew_forward_kl":
        want = rel_entr(t, options["skew"] * t + (1 - options["skew"]) * s).sum(-1)
    elif divergence == "skew_reverse_kl":
        want = rel_entr(s, options["skew"] * s + (1 - options["skew"]) * t).sum(-1)
    else:
        want = 0.5 * np.abs(s - t).sum(-1)
    got = (
        divergence_loss(
            torch.from_numpy(zs).float(),
            torch.from_numpy(zt).float(),
            divergence=divergence,
            reduction="none",
            **options,
        )
        .double()
        .numpy()
    )
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=2e-7)


LOG_VALUES = st.sampled_from([0.0, -0.5, -3.0, -50.0, -103.0, -104.5, -150.0, -745.5, -1e4, -math.inf])


@settings(max_examples=300, deadline=None, derandomize=True)
@given(
    teacher=st.lists(LOG_VALUES, min_size=2, max_size=9),
    student_shift=st.lists(LOG_VALUES, min_size=9, max_size=9),
    beta=st.floats(0.0, 1.0),
    dtype=st.sampled_from(DTYPES),
)
def test_adversarial_rows_never_give_nan(teacher, student_shift, beta, dtype):
    """Rows built from the values where naive code breaks (log 0, underflow at −104 / −745, −1e4)."""
    vocab = len(teacher)
    zt = torch.tensor(teacher, dtype=torch.float64)
    zs = torch.tensor(student_shift[:vocab], dtype=torch.float64)
    zt[0] = zs[0] = 0.0  # one finite logit per row
    one_side = torch.isinf(zs) != torch.isinf(zt)  # a token masked on one side only: KL is +inf, keep it finite
    zs = torch.where(one_side & torch.isinf(zs), torch.full_like(zs, -1e4), zs)
    zt = torch.where(one_side & torch.isinf(zt), torch.full_like(zt, -1e4), zt)
    s = zs.to(dtype)[None].requires_grad_(True)
    t = zt.to(dtype)[None]
    for divergence, options in (
        ("jsd", {"beta": beta}),
        ("forward_kl", {}),
        ("reverse_kl", {}),
        ("skew_forward_kl", {"skew": 0.1}),
        ("tvd", {}),
    ):
        value = divergence_loss(s, t, divergence=divergence, **options)
        (grad,) = torch.autograd.grad(value, s)
        assert math.isfinite(float(value.detach())) and float(value.detach()) >= -1e-7, (divergence, value)
        assert bool(torch.isfinite(grad.double()).all()), divergence


@pytest.mark.parametrize("beta", [0.1, 0.5, 0.9])
def test_float32_jsd_gradient_keeps_its_digits_where_supports_barely_overlap(beta):
    """Independent teacher and student logits of scale 4: most of each one's mass sits where the other has
    little, and the plain gradient cancels two numbers near (1−β)(−log(1−β)) per token. Against float64:
    ours within 1e-6 of the largest entry; TRL's formula in float32 (the negative control) ten times
    further off (2e-6 to 2e-5 here)."""
    g = torch.Generator().manual_seed(int(beta * 10))
    zs, zt = torch.randn(64, 4000, generator=g) * 4, torch.randn(64, 4000, generator=g) * 4

    def grad(fn, z):
        z = z.clone().requires_grad_(True)
        fn(z).backward()
        return z.grad.double()

    def plain(z, t):  # TRL's mixture in the dtype of the inputs
        a, b = torch.log_softmax(z, -1), torch.log_softmax(t, -1)
        m = torch.logsumexp(torch.stack([a + math.log1p(-beta), b + math.log(beta)]), 0)
        return (beta * (b.exp() * (b - m)) + (1 - beta) * (a.exp() * (a - m))).sum() / len(z)

    truth = grad(lambda z: plain(z, zt.double()), zs.double())
    ours = grad(lambda z: divergence_loss(z, zt, divergence="jsd", beta=beta), zs)
    naive = grad(lambda z: plain(z, zt), zs)
    ours_error = float((ours - truth).abs().max()) / float(truth.abs().max())
    naive_error = float((naive - truth).abs().max()) / float(truth.abs().max())
    assert ours_error <= 1e-6
    assert naive_error > 10 * ours_error


@pytest.mark.parametrize("divergence", ["forward_kl", "reverse_kl", "jsd"])
def test_float32_gradients_at_a_large_vocabulary(divergence):
    """V = 128,256: the normaliser is a log-sum-exp with a cascaded float32 sum (torch's CPU log_softmax
    sums plainly and is off by ~2e-5 there, which reached every gradient). Gradients within 1e-5 of float64,
    relative to the largest (the rest is float32's rounding of log-probabilities near −23: 6e-6 for the
    reverse KL here)."""
    g = torch.Generator().manual_seed(21)
    zs, zt = torch.randn(8, 128_256, generator=g) * 4, torch.randn(8, 128_256, generator=g) * 4

    def grad(z, t):
        z = z.clone().requires_grad_(True)
        divergence_loss(z, t, divergence=divergence).backward()
        return z.grad.double()

    truth = grad(zs.double(), zt.double())
    assert float((grad(zs, zt) - truth).abs().max()) <= 1e-5 * float(truth.abs().max())
