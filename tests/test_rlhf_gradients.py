"""Which gradient each KL penalty follows, on a categorical policy: exact expectations and 1e6 samples.

The policy is softmax(θ) over V outcomes; the reference is at KL(π‖π_ref) = 0.5 nats. The truth is
klkit's closed-form KL on the logits (``klkit.kl_divergence(..., kind="logits")``) and its autograd
gradient, in both directions. A surrogate's expected gradient is computed two ways: exactly, by
weighting the surrogate at each of the V outcomes by its (detached) sampling probability, and from
10⁶ sampled tokens, with the standard error of the mean gradient from the per-sample gradients
:math:`c_i\\,(e_{a_i} - \\pi)` (:math:`c_i = \\partial s_i/\\partial\\log\\pi(a_i)`), accumulated per outcome.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import optimize

import klkit
from klkit.rlhf import kl_penalty

N = 1_000_000
KL_TARGET = 0.5
TV_OLD = 0.2


class Problem:
    """θ, the reference at KL(π‖π_ref) = 0.5 and an older policy at total variation 0.2 from π."""

    def __init__(self, V: int, seed: int) -> None:
        rng = np.random.default_rng(seed)
        self.V = V
        theta = rng.standard_normal(V)
        u, v = rng.standard_normal(V), rng.standard_normal(V)

        def kl(s: float) -> float:
            return float(klkit.kl_divergence(theta, theta + s * u, kind="logits")) - KL_TARGET

        def tv(t: float) -> float:
            p, q = _softmax(theta), _softmax(theta + t * v)
            return 0.5 * float(np.abs(p - q).sum()) - TV_OLD

        ref = theta + optimize.brentq(kl, 0.0, 20.0, xtol=1e-14) * u
        old = theta + optimize.brentq(tv, 0.0, 20.0, xtol=1e-14) * v
        self.theta = torch.tensor(theta, requires_grad=True)
        self.ref_logits, self.old_logits = torch.tensor(ref), torch.tensor(old)
        self.ref_lp, self.old_lp = torch.log_softmax(self.ref_logits, -1), torch.log_softmax(self.old_logits, -1)
        self.pi = torch.softmax(self.theta.detach(), -1)
        self.pi_old = torch.softmax(self.old_logits, -1)
        g = torch.Generator().manual_seed(seed)
        self.tokens = torch.multinomial(self.pi, N, replacement=True, generator=g)
        self.old_tokens = torch.multinomial(self.pi_old, N, replacement=True, generator=g)
        self.targets = {
            "reverse": self._grad(lambda th: klkit.kl_divergence(th, self.ref_logits, kind="logits")),
            "forward": self._grad(lambda th: klkit.kl_divergence(self.ref_logits, th, kind="logits")),
            "tv": self._grad(lambda th: (torch.softmax(th, -1) - torch.softmax(self.ref_logits, -1)).abs().sum()),
            "E[k2]": self._grad(
                lambda th: (torch.softmax(th, -1) * 0.5 * (torch.log_softmax(th, -1) - self.ref_lp) ** 2).sum()
            ),
            "zero": torch.zeros(V, dtype=torch.float64),
        }

    def _grad(self, f) -> torch.Tensor:
        (g,) = torch.autograd.grad(f(self.theta), self.theta)
        return g

    def exact(self, surrogate, *, off_policy: bool, corrected: bool) -> torch.Tensor:
        """E[∇s] = ∇ Σ_a sg(q_a) s(a), q the sampling distribution: the V outcomes as V samples."""
        lp = torch.log_softmax(self.theta, -1)
        q = self.pi_old if off_policy else self.pi
        s = surrogate(lp, self.ref_lp, self.old_lp if corrected else None)
        return torch.autograd.grad((q * s).sum(), self.theta)[0]

    def sampled(self, surrogate, *, off_policy: bool, corrected: bool) -> tuple[torch.Tensor, float, float]:
        """Mean per-sample gradient over 1e6 tokens, the standard error of its norm, and the variance per sample."""
        tokens = self.old_tokens if off_policy else self.tokens
        lp_all = torch.log_softmax(self.theta.detach(), -1)
        lp = lp_all[tokens].requires_grad_()
        s = surrogate(lp, self.ref_lp[tokens], self.old_lp[tokens] if corrected else None)
        (c,) = torch.autograd.grad(s.sum(), lp)  # per-sample ∂s/∂log π(a); its gradient in θ is c (e_a - π)
        pi, V = self.pi, self.V
        mean = torch.bincount(tokens, weights=c, minlength=V) / N - c.mean() * pi
        second = ((1 - 2 * pi) * torch.bincount(tokens, weights=c * c, minlength=V) + pi**2 * (c * c).sum()) / N
        variance = float((second - mean**2).sum())  # trace of the per-sample covariance
        return mean, math.sqrt(variance / N), variance


def _softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max())
    return e / e.sum()


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Element-wise work on 1e6 numbers: one thread is as fast, and far faster on a busy machine."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module", params=[16, 64], ids=["V16", "V64"])
def problem(request, one_thread) -> Problem:
    return Problem(request.param, seed=request.param)


def loss(estimator, gradient="native", preset=None):
    def surrogate(lp, ref, old):
        if preset is not None:
            return kl_penalty(lp, ref, placement="loss", old_logp=old, preset=preset).surrogate
        return kl_penalty(lp, ref, estimator=estimator, placement="loss", gradient=gradient, old_logp=old).surrogate

    return surrogate


def reward(estimator):
    """In the reward: the policy gradient's score-function term, value · log π (value detached)."""

    def surrogate(lp, ref, old):
        return kl_penalty(lp, ref, estimator=estimator).value * lp

    return surrogate


# (surrogate, the gradient it follows on-policy)
CASES = {
    "k1 in the reward": (reward("k1"), "reverse"),
    "k1 native": (loss("k1"), "zero"),
    "k2 native": (loss("k2"), "reverse"),
    "k3 native": (loss("k3"), "forward"),
    "abs native": (loss("abs"), "tv"),
    "k1 reverse_kl": (loss("k1", "reverse_kl"), "reverse"),
    "k2 reverse_kl": (loss("k2", "reverse_kl"), "reverse"),
    "k3 reverse_kl": (loss("k3", "reverse_kl"), "reverse"),
    "abs reverse_kl": (loss("abs", "reverse_kl"), "reverse"),
    "k1 straight_through": (loss("k1", "straight_through"), "reverse"),
    "k2 straight_through": (loss("k2", "straight_through"), "reverse"),
    "k3 straight_through": (loss("k3", "straight_through"), "reverse"),
    "abs straight_through": (loss("abs", "straight_through"), "reverse"),
    "verl:k3+": (loss(None, preset="verl:k3+"), "reverse"),
    "verl:low_var_kl": (loss(None, preset="verl:low_var_kl"), "forward"),
    "trl:k3": (loss(None, preset="trl:k3"), "forward"),
    "trl:k3_ratio": (loss(None, preset="trl:k3_ratio"), "reverse"),
}
# the penalty in the reward with another estimator follows no KL's gradient, but a known one:
# E[k3 ∇log π] = ∇KL(π‖π_ref) - ∇KL(π_ref‖π), E[k2 ∇log π] = ∇E_π[k2] - ∇KL(π‖π_ref)
REWARD_IDENTITIES = {"k3": ("reverse", "forward"), "k2": ("E[k2]", "reverse")}


def close_in_expectation(got: torch.Tensor, target: torch.Tensor, scale: torch.Tensor | None = None) -> float:
    """‖got - target‖ relative to ‖target‖ (to ‖scale‖ for a zero target)."""
    norm = float(target.norm()) or float(scale.norm())
    return float((got - target).norm()) / norm


def test_the_problem_is_as_specified(problem):
    assert float(klkit.kl_divergence(problem.theta.detach(), problem.ref_logits, kind="logits")) == pytest.approx(0.5)
    assert 0.5 * float((problem.pi - problem.pi_old).abs().sum()) == pytest.approx(0.2)
    assert float(problem.targets["reverse"].norm()) > 0.1 and float(problem.targets["forward"].norm()) > 0.1
    # the two KLs' gradients differ: the distinction the tests below draw is real
    assert close_in_expectation(problem.targets["forward"], problem.targets["reverse"]) > 0.2


@pytest.mark.parametrize("case", list(CASES))
def test_on_policy_gradient_is_the_stated_one(problem, case):
    surrogate, target_name = CASES[case]
    target = problem.targets[target_name]
    exact = problem.exact(surrogate, off_policy=False, corrected=False)
    assert close_in_expectation(exact, target, problem.targets["reverse"]) < 1e-10, (case, exact, target)
    mean, se, _ = problem.sampled(surrogate, off_policy=False, corrected=False)
    error = float((mean - target).norm())
    if target_name == "zero":
        assert float(exact.abs().max()) < 1e-15  # k1 native: exactly 0 in expectation
        assert error < 3 * se, (case, error, se)
    else:
        assert error < 0.01 * float(target.norm()) or error < 3 * se, (case, error / float(target.norm()), se)


@pytest.mark.parametrize("estimator", list(REWARD_IDENTITIES))
def test_other_estimators_in_the_reward_follow_a_difference_of_gradients(problem, estimator):
    plus, minus = REWARD_IDENTITIES[estimator]
    exact = problem.exact(reward(estimator), off_policy=False, corrected=False)
    target = problem.targets[plus] - problem.targets[minus]
    assert close_in_expectation(exact, target) < 1e-10
    assert close_in_expectation(exact, problem.targets["reverse"]) > 0.05  # biased for ∇KL(π‖π_ref)


OFF_POLICY = [case for case in CASES if case != "k1 in the reward" and case != "trl:k3"]


@pytest.mark.parametrize("case", OFF_POLICY)
def test_off_policy_corrected_surrogates_stay_unbiased(problem, case):
    surrogate, target_name = CASES[case]
    target = problem.targets[target_name]
    exact = problem.exact(surrogate, off_policy=True, corrected=True)
    assert close_in_expectation(exact, target, problem.targets["reverse"]) < 1e-10, case
    mean, se, _ = problem.sampled(surrogate, off_policy=True, corrected=True)
    error = float((mean - target).norm())
    scale = max(float(target.norm()), float(problem.targets["reverse"].norm()))
    assert error < 0.01 * scale or error < 3 * se, (case, error / scale, se)
    # without the correction, tokens from π_old bias the same surrogate
    biased = problem.exact(surrogate, off_policy=True, corrected=False)
    bias = float((biased - target).norm()) / scale
    print(f"V={problem.V} {case}: uncorrected relative bias {bias:.3f}")  # reported with pytest -s
    assert bias > 0.02, (case, bias)
