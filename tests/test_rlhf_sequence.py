"""Sequence-level KL on an autoregressive toy enumerated exactly, and the exact token KL (token_kl).

The toy: V = 3 tokens, T = 4 steps, a tabular policy with one row of logits per prefix (40 rows),
all 81 sequences enumerated. Expectations are exact sums weighted by the (detached) sequence
probabilities; the truth is the sequence KL written from its definition, Σ_y π(y) log(π(y)/π_ref(y)),
cross-checked against klkit.kl_divergence on the 81-outcome joint distributions.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
from scipy import special

import klkit
from klkit.errors import InvalidArgumentError, InvalidDistributionError, ShapeError
from klkit.rlhf import kl_penalty, sequence_kl_surrogate, token_kl

V, T = 3, 4
EOS = 2
SEQUENCES = torch.tensor(list(itertools.product(range(V), repeat=T)))  # (81, 4)
OFFSETS = [sum(V**s for s in range(t)) for t in range(T)]  # 0, 1, 4, 13: first row of each prefix length


def prefix_rows() -> torch.Tensor:
    """(81, T): the table row of each sequence's prefix y_<t."""
    rows = torch.zeros(len(SEQUENCES), T, dtype=torch.long)
    for t in range(T):
        code = torch.zeros(len(SEQUENCES), dtype=torch.long)
        for s in range(t):
            code = code * V + SEQUENCES[:, s]
        rows[:, t] = OFFSETS[t] + code
    return rows


ROWS = prefix_rows()
EOS_MASK = torch.ones(len(SEQUENCES), T, dtype=torch.bool)
EOS_MASK[:, 1:] = torch.cumprod(SEQUENCES[:, :-1] != EOS, dim=1).bool()  # tokens after an EOS are padding


class Toy:
    def __init__(self, seed: int = 0) -> None:
        g = torch.Generator().manual_seed(seed)
        table = torch.randn(OFFSETS[-1] + V ** (T - 1), V, generator=g, dtype=torch.float64)
        self.theta = table.clone().requires_grad_()
        self.ref = table + 0.8 * torch.randn(table.shape, generator=g, dtype=torch.float64)
        self.old = table + 0.4 * torch.randn(table.shape, generator=g, dtype=torch.float64)

    def logits(self, table: torch.Tensor) -> torch.Tensor:
        return table[ROWS]  # (81, T, V)

    def logp(self, table: torch.Tensor) -> torch.Tensor:
        return torch.log_softmax(self.logits(table), -1).gather(-1, SEQUENCES[..., None])[..., 0]  # (81, T)

    def grad(self, value: torch.Tensor) -> torch.Tensor:
        (g,) = torch.autograd.grad(value, self.theta, retain_graph=True)
        return g


@pytest.fixture(scope="module")
def toy() -> Toy:
    return Toy()


def sequence_kl(toy: Toy, mask: torch.Tensor) -> torch.Tensor:
    """Σ_y π(y) Σ_t mask_t (log π_t - log π_ref,t): the definition (padded tokens sum out to 1)."""
    logp, ref = toy.logp(toy.theta), toy.logp(toy.ref)
    seq = (logp * mask).sum(-1)
    return (torch.exp(logp.sum(-1)) * (seq - (ref * mask).sum(-1))).sum()


def expected(toy: Toy, per_sequence: torch.Tensor, sampler: torch.Tensor | None = None) -> torch.Tensor:
    """E[per_sequence] under π (or under the policy ``sampler``), weights detached."""
    table = toy.theta if sampler is None else sampler
    weights = torch.exp(toy.logp(table).sum(-1)).detach()
    return (weights * per_sequence).sum()


@pytest.mark.parametrize("masked", [False, True], ids=["full", "eos"])
def test_surrogate_gradient_is_the_exact_sequence_kl_gradient(toy, masked):
    mask = EOS_MASK if masked else torch.ones_like(EOS_MASK)
    kl = sequence_kl(toy, mask)
    if not masked:  # the definition against klkit's measure on the joint distribution of the 81 sequences
        joint, joint_ref = toy.logp(toy.theta).sum(-1), toy.logp(toy.ref).sum(-1)
        assert float(kl.detach()) == pytest.approx(
            float(klkit.kl_divergence(joint.detach(), joint_ref, kind="log_probs")), rel=1e-13
        )
    truth = toy.grad(kl)
    logp, ref = toy.logp(toy.theta), toy.logp(toy.ref)
    padded = logp.where(mask, torch.tensor(-1e300))  # padding may hold anything: the mask decides
    surrogate = sequence_kl_surrogate(padded, ref.where(mask, torch.tensor(float("nan"))), mask)
    assert float(expected(toy, surrogate.detach())) == pytest.approx(float(kl.detach()), rel=1e-13)  # value: unbiased
    got = toy.grad(expected(toy, surrogate))
    assert float((got - truth).abs().max()) < 1e-10
    assert float(truth.norm()) > 0.1


def test_token_level_losses_miss_part_of_the_sequence_gradient(toy):
    """Σ_t k2 as a loss follows the per-token reverse KLs, Σ_t k3 the per-token forward KLs (prefixes held
    fixed); both differ from the sequence KL's gradient, which also moves the later tokens' prefixes."""
    mask = torch.ones_like(EOS_MASK)
    truth = toy.grad(sequence_kl(toy, mask))
    logp, ref = toy.logp(toy.theta), toy.logp(toy.ref)
    logits, ref_logits = toy.logits(toy.theta), toy.logits(toy.ref)
    numbers = {}
    for estimator, direction in (("k2", "reverse"), ("k3", "forward")):
        loss = kl_penalty(logp, ref, estimator=estimator, placement="loss").surrogate.sum(-1)
        got = toy.grad(expected(toy, loss))
        # the per-token exact KLs of token_kl, prefixes held at their (detached) probabilities
        per_token = token_kl(logits, ref_logits, direction=direction).sum(-1)
        assert float((got - toy.grad(expected(toy, per_token))).abs().max()) < 1e-12
        numbers[estimator] = float((got - truth).norm() / truth.norm())
    print(
        f"token-level losses vs the sequence KL gradient: relative difference k2 {numbers['k2']:.3f}, "
        f"k3 {numbers['k3']:.3f}"
    )  # reported with pytest -s
    assert numbers["k2"] > 0.05 and numbers["k3"] > 0.05
    # the per-token terms are the first part of the sequence gradient: adding the future terms closes it
    future = toy.grad(expected(toy, sequence_kl_surrogate(logp, ref, mask)))
    k2 = toy.grad(expected(toy, kl_penalty(logp, ref, estimator="k2", placement="loss").surrogate.sum(-1)))
    assert float((future - truth).abs().max()) < 1e-10 and float((future - k2).norm()) > 0.05 * float(truth.norm())


@pytest.mark.parametrize("masked", [False, True], ids=["full", "eos"])
def test_off_policy_surrogate_stays_unbiased(toy, masked):
    mask = EOS_MASK if masked else torch.ones_like(EOS_MASK)
    kl = sequence_kl(toy, mask)
    truth = toy.grad(kl)
    logp, ref, old = toy.logp(toy.theta), toy.logp(toy.ref), toy.logp(toy.old)
    surrogate = sequence_kl_surrogate(logp, ref, mask, old_logp=old)
    assert float(expected(toy, surrogate.detach(), sampler=toy.old)) == pytest.approx(float(kl.detach()), rel=1e-12)
    assert float((toy.grad(expected(toy, surrogate, sampler=toy.old)) - truth).abs().max()) < 1e-10
    uncorrected = toy.grad(expected(toy, sequence_kl_surrogate(logp, ref, mask), sampler=toy.old))
    assert float((uncorrected - truth).norm()) > 0.05 * float(truth.norm())


def test_sequence_surrogate_errors():
    logp, ref = torch.zeros(2, 3), torch.zeros(2, 3)
    mask = torch.ones(2, 3, dtype=torch.bool)
    with pytest.raises(TypeError, match=r"`mask` must be a bool or 0/1 torch tensor; found ndarray"):
        sequence_kl_surrogate(logp, ref, np.ones((2, 3)))
    with pytest.raises(
        ShapeError,
        match=r"`mask` must have the shape of `logp` \(\.\.\., T\); "
        r"found \(2,\) and \(2, 3\)",
    ):
        sequence_kl_surrogate(logp, ref, torch.ones(2, dtype=torch.bool))
    with pytest.raises(InvalidArgumentError, match=r"`mask` must hold only 0 and 1; found 2"):
        sequence_kl_surrogate(logp, ref, torch.tensor([[1, 1, 2], [1, 1, 1]]))
    with pytest.raises(ShapeError, match=r"`ref_logp` must have the shape of `logp`"):
        sequence_kl_surrogate(logp, torch.zeros(2, 4), mask)
    with pytest.raises(InvalidDistributionError, match=r"`logp` must hold finite log-probabilities .*found nan"):
        sequence_kl_surrogate(torch.tensor([[0.0, float("nan"), 0.0]]), torch.zeros(1, 3), torch.ones(1, 3))
    with pytest.raises(InvalidArgumentError, match=r"`old_logp` must not require grad"):
        sequence_kl_surrogate(logp, ref, mask, old_logp=torch.zeros(2, 3, requires_grad=True))
    with pytest.raises(TypeError, match=r"`logp` must be a floating-point torch tensor"):
        sequence_kl_surrogate([[0.0]], ref, mask)
    # a 0/1 float mask is accepted and equals the bool one
    a = sequence_kl_surrogate(torch.tensor([[-1.0, -2.0]]), torch.tensor([[-2.0, -1.0]]), torch.tensor([[1.0, 0.0]]))
    assert a.tolist() == [1.0]


# --- token_kl --------------------------------------------------------------------------------------


def scipy_kl(p_logits: np.ndarray, q_logits: np.ndarray) -> np.ndarray:
    p, q = special.softmax(p_logits, -1), special.softmax(q_logits, -1)
    return special.rel_entr(p, q).sum(-1)


@pytest.mark.parametrize("direction", ["reverse", "forward"])
@pytest.mark.parametrize("chunk_size", [None, 1, 7, 1000])
def test_token_kl_against_scipy(direction, chunk_size):
    rng = np.random.default_rng(3)
    logits, ref = rng.standard_normal((4, 5, 33)) * 2, rng.standard_normal((4, 5, 33)) * 2
    want = scipy_kl(logits, ref) if direction == "reverse" else scipy_kl(ref, logits)
    for convert in (torch.from_numpy, np.asarray):
        got = token_kl(convert(logits), convert(ref), direction=direction, chunk_size=chunk_size)
        assert type(got) is type(convert(logits)) and tuple(got.shape) == (4, 5)
        np.testing.assert_allclose(np.asarray(got), want, rtol=1e-12)


def test_token_kl_chunks_give_the_same_gradients():
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(6, 9, 50, generator=g, dtype=torch.float64, requires_grad=True)
    ref = torch.randn(6, 9, 50, generator=g, dtype=torch.float64)
    weights = torch.rand(6, 9, generator=g, dtype=torch.float64)
    for direction in ("reverse", "forward"):
        (whole,) = torch.autograd.grad((token_kl(logits, ref, direction=direction) * weights).sum(), logits)
        (chunked,) = torch.autograd.grad(
            (token_kl(logits, ref, direction=direction, chunk_size=4) * weights).sum(), logits
        )
        torch.testing.assert_close(chunked, whole, rtol=1e-12, atol=1e-15)
    # the reverse direction's gradient is the exact ∇KL(π‖π_ref), the one the sampled penalties estimate
    p, q = torch.softmax(logits.detach(), -1), torch.softmax(ref, -1)
    kl = (p * (p.log() - q.log())).sum(-1, keepdim=True)
    (grad,) = torch.autograd.grad(token_kl(logits, ref).sum(), logits)
    torch.testing.assert_close(grad, p * (p.log() - q.log() - kl), rtol=1e-10, atol=1e-14)


def test_token_kl_masked_logits_and_dtypes():
    logits = torch.tensor([[0.0, 0.0, -float("inf")], [0.0, 1.0, 2.0]])
    ref = torch.tensor([[0.0, -float("inf"), 0.0], [0.0, 0.0, 0.0]])
    reverse = token_kl(logits, ref)
    assert reverse[0].item() == float("inf")  # π puts mass where π_ref has none
    assert token_kl(ref, logits, direction="forward")[0].item() == float("inf")
    masked = token_kl(logits, torch.zeros(2, 3))
    assert masked[0].item() == pytest.approx(np.log(1.5), rel=1e-6)  # uniform on 2 of 3 outcomes vs uniform on 3
    for dtype in (torch.float32, torch.bfloat16, torch.float16):  # half precision: accumulated and returned in float32
        assert token_kl(logits.to(dtype), torch.zeros(2, 3, dtype=dtype), chunk_size=1).dtype == torch.float32


@pytest.mark.parametrize("fill", [-1e9, -float("inf"), "lowest"])
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32, torch.bfloat16])
def test_token_kl_masked_vocabulary_under_autograd(fill, dtype):
    """The policy's masked entries filled with -1e9 (or the dtype's lowest value), the reference's with -inf on
    the same entries: finite values and gradients with requires_grad, equal to the KL over the unmasked entries
    (scipy, float64), and a gradient of exactly 0 on the masked ones."""
    rng = np.random.default_rng(5)
    logits, ref = rng.standard_normal((4, 9)) * 2, rng.standard_normal((4, 9)) * 2
    masked = np.zeros((4, 9), dtype=bool)
    masked[:, 5:] = True
    masked[1, 2] = True
    want = scipy_kl(np.where(masked, -np.inf, logits), np.where(masked, -np.inf, ref))
    value = torch.finfo(dtype).min if fill == "lowest" else fill
    policy = torch.from_numpy(logits).to(dtype).masked_fill(torch.from_numpy(masked), value).requires_grad_(True)
    reference = torch.from_numpy(ref).to(dtype).masked_fill(torch.from_numpy(masked), -float("inf"))
    for direction in ("reverse", "forward"):
        got = token_kl(policy, reference, direction=direction)
        (grad,) = torch.autograd.grad(got.sum(), policy)
        truth = (
            want
            if direction == "reverse"
            else scipy_kl(np.where(masked, -np.inf, ref), np.where(masked, -np.inf, logits))
        )
        tol = 1e-12 if dtype == torch.float64 else 2e-5 if dtype == torch.float32 else 0.1
        if dtype == torch.bfloat16:  # the inputs' rounding: compare with the rounded inputs' KL
            rounded = (
                torch.from_numpy(logits).to(dtype).double().numpy(),
                torch.from_numpy(ref).to(dtype).double().numpy(),
            )
            truth = scipy_kl(
                *(np.where(masked, -np.inf, x) for x in (rounded if direction == "reverse" else rounded[::-1]))
            )
            tol = 1e-5
        np.testing.assert_allclose(got.detach().double().numpy(), truth, rtol=tol, atol=tol)
        assert torch.isfinite(grad.double()).all() and (grad[torch.from_numpy(masked)] == 0).all()


def test_token_kl_errors():
    x = torch.zeros(2, 3)
    with pytest.raises(
        InvalidArgumentError,
        match=r"`direction` must be 'reverse' \(KL\(π‖π_ref\)\) or 'forward' "
        r"\(KL\(π_ref‖π\)\); found 'both'\. Use 'reverse' for the RLHF "
        r"penalty; for both, call token_kl once per direction",
    ):
        token_kl(x, x, direction="both")
    for bad in (0, 1.5, True):
        with pytest.raises(
            InvalidArgumentError,
            match=rf"`chunk_size` must be None or a positive integer \(tokens "
            rf"per call\); found {bad!r}\. Pass e\.g\. chunk_size=1024 "
            r"to bound memory, or None for one call",
        ):
            token_kl(x, x, chunk_size=bad)
    with pytest.raises(
        ShapeError,
        match=r"`logits` and `ref_logits` must have the same shape \(\.\.\., V\); "
        r"found \(2, 3\) and \(2, 4\)",
    ):
        token_kl(x, torch.zeros(2, 4))
    nan = torch.zeros(2, 3)
    nan[1, 1] = float("nan")
    with pytest.raises(InvalidDistributionError, match=r"`logits` must hold logits: .*never NaN"):
        token_kl(nan, x, chunk_size=1)
    with pytest.raises(InvalidDistributionError, match=r"`ref_logits` must hold logits: .*never NaN"):
        token_kl(x, nan, direction="forward")
    with pytest.raises(TypeError, match=r"inputs mix torch tensors with other arrays"):
        token_kl(x, np.zeros((2, 3)))


def test_sequence_surrogate_refuses_positive_log_probabilities_at_unmasked_tokens():
    logp = torch.tensor([[-1.0, 2.5, 7.0]])
    mask = torch.tensor([[True, True, False]])  # the padded 7.0 is not checked
    with pytest.raises(InvalidDistributionError, match=r"`logp` must hold log-probabilities \(≤ 0\).*found 2.5"):
        sequence_kl_surrogate(logp, torch.full((1, 3), -1.0), mask)
    with pytest.raises(InvalidDistributionError, match=r"`ref_logp` must hold log-probabilities \(≤ 0\).*found 0.5"):
        sequence_kl_surrogate(torch.full((1, 3), -1.0), torch.tensor([[-1.0, 0.5, -1.0]]), mask)


def test_the_documented_surrogate_has_the_gradient_the_code_returns():
    """The docstring's formula, evaluated as written (sg = detach), has the code's gradient: G_t per token,
    not 1 + G_t (which Σ ℓ_t without the stop-gradient would add)."""
    doc = sequence_kl_surrogate.__doc__
    assert r"\sum_t \mathrm{sg}(\ell_t) + \sum_t \mathrm{sg}(G_t)\,(\log\pi_t - \mathrm{sg}(\log\pi_t))" in doc
    assert r"with respect to :math:`\log\pi_t` is :math:`G_t`" in doc
    g = torch.Generator().manual_seed(4)
    logp = -torch.rand(3, 6, generator=g, dtype=torch.float64) * 3
    ref = -torch.rand(3, 6, generator=g, dtype=torch.float64) * 3
    mask = torch.rand(3, 6, generator=g) < 0.8
    ell = torch.where(mask, logp - ref, 0.0)
    to_go = ell.flip(-1).cumsum(-1).flip(-1)
    x = logp.clone().requires_grad_(True)
    written = torch.where(mask, x - ref, 0.0).detach().sum(-1) + (to_go * torch.where(mask, x - x.detach(), 0.0)).sum(
        -1
    )
    (doc_grad,) = torch.autograd.grad(written.sum(), x)
    x = logp.clone().requires_grad_(True)
    (code_grad,) = torch.autograd.grad(sequence_kl_surrogate(x, ref, mask).sum(), x)
    torch.testing.assert_close(code_grad, doc_grad, rtol=0, atol=1e-15)
    torch.testing.assert_close(code_grad, torch.where(mask, to_go, 0.0), rtol=0, atol=1e-15)
