"""Bias and variance of the RLHF KL penalties' gradients (klkit.rlhf), exactly, on a categorical policy.

The policy is softmax(θ) over V = 64 outcomes, the reference at KL(π‖π_ref) = 0.5 nats, an older
policy π_old at total variation 0.2 from π (the seeds and the construction of tests/test_rlhf_gradients.py).
For each placement × estimator × gradient mode the per-sample gradient is c(a)·(e_a − π) with
c(a) = ∂s/∂log π(a) of the surrogate s at outcome a, so every number below is an exact expectation
over the V outcomes (no sampling): the expected gradient, which divergence's gradient it equals (the
candidates are ∇KL(π‖π_ref), ∇KL(π_ref‖π), ∇Σ|π − π_ref| and 0, matched to 1e-9 relative), its bias
for ∇KL(π‖π_ref), the variance per sampled token E‖g − E g‖², and the tokens needed for a standard
error of 1% of ‖∇KL(π‖π_ref)‖. Off-policy columns draw the tokens from π_old, without and with
``old_logp``. Then the sequence-level toy of tests/test_rlhf_sequence.py (V = 3, T = 4, 81 sequences):
how far the token-level losses are from the sequence KL's gradient. Last, the time of one
``kl_penalty`` call on 1e6 float32 tokens against the libraries' one-line formula.

Run: ``.venv/bin/python benchmarks/rlhf_estimators.py`` (or ``benchmarks/run.py rlhf_estimators``);
it prints the tables and writes the ``rlhf-estimators`` section of ``docs/rlhf.md``
(``--no-write`` prints only).
"""

from __future__ import annotations

import argparse
import itertools
import math
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from scipy import optimize

sys.path.insert(0, str(Path(__file__).resolve().parent))
import klkit
from _report import machine_description, write_section
from klkit.rlhf import kl_penalty, sequence_kl_surrogate, token_kl

V, SEED = 64, 64
KL_TARGET, TV_OLD = 0.5, 0.2


# --- the problem ---------------------------------------------------------------------------------


def _softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max())
    return e / e.sum()


class Problem:
    def __init__(self) -> None:
        rng = np.random.default_rng(SEED)
        theta = rng.standard_normal(V)
        u, v = rng.standard_normal(V), rng.standard_normal(V)
        s = optimize.brentq(
            lambda s: float(klkit.kl_divergence(theta, theta + s * u, kind="logits")) - KL_TARGET, 0.0, 20.0, xtol=1e-14
        )
        t = optimize.brentq(
            lambda t: 0.5 * float(np.abs(_softmax(theta) - _softmax(theta + t * v)).sum()) - TV_OLD,
            0.0,
            20.0,
            xtol=1e-14,
        )
        self.theta = torch.tensor(theta, requires_grad=True)
        self.ref_logits = torch.tensor(theta + s * u)
        self.ref_lp = torch.log_softmax(self.ref_logits, -1)
        self.old_lp = torch.log_softmax(torch.tensor(theta + t * v), -1)
        self.pi = torch.softmax(self.theta.detach(), -1)
        self.pi_old = self.old_lp.exp()
        self.targets = {
            "∇KL(π‖π_ref)": self._grad(lambda th: klkit.kl_divergence(th, self.ref_logits, kind="logits")),
            "∇KL(π_ref‖π)": self._grad(lambda th: klkit.kl_divergence(self.ref_logits, th, kind="logits")),
            "∇Σ|π − π_ref|": self._grad(lambda th: (torch.softmax(th, -1) - self.ref_lp.exp()).abs().sum()),
            "0": torch.zeros(V, dtype=torch.float64),
        }
        self.reverse = self.targets["∇KL(π‖π_ref)"]

    def _grad(self, f: Callable[[torch.Tensor], torch.Tensor]) -> torch.Tensor:
        (g,) = torch.autograd.grad(f(self.theta), self.theta)
        return g

    def moments(self, surrogate: Callable, *, off_policy: bool, corrected: bool) -> tuple[torch.Tensor, float]:
        """Exact E[g] and E‖g − E g‖² of the per-sample gradient c(a)(e_a − π), a ~ π or π_old."""
        lp = torch.log_softmax(self.theta.detach(), -1).requires_grad_()
        s = surrogate(lp, self.ref_lp, self.old_lp if corrected else None)
        (c,) = torch.autograd.grad(s.sum(), lp)
        q = self.pi_old if off_policy else self.pi
        per_outcome = c[:, None] * (torch.eye(V, dtype=torch.float64) - self.pi)  # row a: g(a)
        mean = (q[:, None] * per_outcome).sum(0)
        variance = float((q * ((per_outcome - mean) ** 2).sum(1)).sum())
        return mean, variance

    def follows(self, mean: torch.Tensor) -> str:
        for name, target in self.targets.items():
            scale = float(target.norm()) or float(self.reverse.norm())
            if float((mean - target).norm()) <= 1e-9 * scale:
                return name
        return "none of these"


def loss(estimator: str | None, gradient: str = "native", preset: str | None = None) -> Callable:
    def surrogate(lp, ref, old):
        if preset is not None:
            return kl_penalty(lp, ref, placement="loss", old_logp=old, preset=preset).surrogate
        return kl_penalty(lp, ref, estimator=estimator, placement="loss", gradient=gradient, old_logp=old).surrogate

    return surrogate


def reward(estimator: str) -> Callable:
    def surrogate(lp, ref, old):  # the policy gradient's score-function term; no old_logp in the reward
        return kl_penalty(lp, ref, estimator=estimator).value * lp

    return surrogate


ROWS = (
    [("reward", e, "(score function)", reward(e)) for e in ("k1", "k2", "k3", "abs")]
    + [
        ("loss", e, g, loss(e, g))
        for g in ("native", "reverse_kl", "straight_through")
        for e in ("k1", "k2", "k3", "abs")
    ]
    + [
        ("loss", f"preset {p}", "", loss(None, preset=p))
        for p in ("verl:low_var_kl", "verl:k3+", "openrlhf:k3", "trl:k3", "trl:k3_ratio")
    ]
)


def gradient_table(problem: Problem) -> tuple[str, list[dict]]:
    norm = float(problem.reverse.norm())
    lines = [
        "| placement | estimator | gradient | follows (on-policy) | bias for ∇KL(π‖π_ref) | variance / token "
        "| tokens for 1% | off-policy bias, uncorrected | with `old_logp` | variance with `old_logp` |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    rows = []
    for placement, estimator, gradient, surrogate in ROWS:
        mean, variance = problem.moments(surrogate, off_policy=False, corrected=False)
        follows = problem.follows(mean)
        bias = float((mean - problem.reverse).norm()) / norm
        tokens = variance / (0.01 * norm) ** 2
        off, _ = problem.moments(surrogate, off_policy=True, corrected=False)
        target = problem.targets[follows] if follows != "none of these" else mean
        off_bias = float((off - target).norm()) / norm
        if placement == "loss":
            fixed, fixed_variance = problem.moments(surrogate, off_policy=True, corrected=True)
            fixed_bias = f"{float((fixed - target).norm()) / norm:.1e}"
            fixed_variance_text = f"{fixed_variance:.3f}"
        else:
            fixed_bias, fixed_variance_text = "n/a (reward: the PPO ratio)", ""
        rows.append(
            dict(
                placement=placement,
                estimator=estimator,
                gradient=gradient,
                follows=follows,
                bias=bias,
                variance=variance,
                tokens=tokens,
                off_bias=off_bias,
                fixed_bias=fixed_bias,
            )
        )
        lines.append(
            f"| {placement} | {estimator} | {gradient} | {follows} | {bias:.3f} | {variance:.3f} "
            f"| {tokens:,.0f} | {off_bias:.3f} | {fixed_bias} | {fixed_variance_text} |"
        )
    return "\n".join(lines), rows


def value_table(problem: Problem) -> str:
    kl = float(klkit.kl_divergence(problem.theta.detach(), problem.ref_logits, kind="logits"))
    lines = [
        f"Exact KL(π‖π_ref) = {kl:.4f} nats. The value of each estimator at a token a ~ π:",
        "",
        "| estimator | E[value] | bias | variance / token |",
        "|---|---|---|---|",
    ]
    lp = torch.log_softmax(problem.theta.detach(), -1)
    for estimator in ("k1", "k2", "k3", "abs"):
        value = kl_penalty(lp, problem.ref_lp, estimator=estimator).value
        mean = float((problem.pi * value).sum())
        variance = float((problem.pi * (value - mean) ** 2).sum())
        lines.append(f"| {estimator} | {mean:.4f} | {mean - kl:+.4f} | {variance:.4f} |")
    return "\n".join(lines)


# --- the sequence-level toy ---------------------------------------------------------------------


def sequence_numbers() -> str:
    n_v, n_t = 3, 4
    sequences = torch.tensor(list(itertools.product(range(n_v), repeat=n_t)))
    offsets = [sum(n_v**s for s in range(t)) for t in range(n_t)]
    rows = torch.zeros(len(sequences), n_t, dtype=torch.long)
    for t in range(n_t):
        code = torch.zeros(len(sequences), dtype=torch.long)
        for s in range(t):
            code = code * n_v + sequences[:, s]
        rows[:, t] = offsets[t] + code
    g = torch.Generator().manual_seed(0)
    table = torch.randn(offsets[-1] + n_v ** (n_t - 1), n_v, generator=g, dtype=torch.float64)
    theta = table.clone().requires_grad_()
    ref_table = table + 0.8 * torch.randn(table.shape, generator=g, dtype=torch.float64)

    def logp_of(tab: torch.Tensor) -> torch.Tensor:
        return torch.log_softmax(tab[rows], -1).gather(-1, sequences[..., None])[..., 0]

    def grad(value: torch.Tensor) -> torch.Tensor:
        (out,) = torch.autograd.grad(value, theta, retain_graph=True)
        return out

    logp, ref = logp_of(theta), logp_of(ref_table)
    weights = torch.exp(logp.sum(-1)).detach()
    kl = (torch.exp(logp.sum(-1)) * (logp.sum(-1) - ref.sum(-1))).sum()
    truth = grad(kl)
    mask = torch.ones_like(logp, dtype=torch.bool)
    lines = [
        f"Sequence KL(π‖π_ref) = {float(kl.detach()):.4f} nats over the 81 sequences; ‖∇‖ = {float(truth.norm()):.4f}.",
        "",
        "| surrogate (summed over tokens) | relative distance to the sequence KL's gradient |",
        "|---|---|",
    ]
    cases = {
        "`sequence_kl_surrogate`": sequence_kl_surrogate(logp, ref, mask),
        "k1 in the loss (native)": kl_penalty(logp, ref, placement="loss").surrogate.sum(-1),
        "k2 in the loss (native)": kl_penalty(logp, ref, estimator="k2", placement="loss").surrogate.sum(-1),
        "k3 in the loss (native)": kl_penalty(logp, ref, estimator="k3", placement="loss").surrogate.sum(-1),
        "k3, `reverse_kl`": kl_penalty(
            logp, ref, estimator="k3", placement="loss", gradient="reverse_kl"
        ).surrogate.sum(-1),
        "exact token KL(π_t‖π_ref,t) (`token_kl`)": token_kl(theta[rows], ref_table[rows]).sum(-1),
    }
    for name, per_sequence in cases.items():
        got = grad((weights * per_sequence).sum())
        lines.append(f"| {name} | {float((got - truth).norm() / truth.norm()):.2e} |")
    return "\n".join(lines)


# --- speed ---------------------------------------------------------------------------------------


def best_time(fn: Callable[[], object], repeats: int = 7) -> float:
    fn()
    best = math.inf
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def speed_table(n: int = 1_000_000) -> str:
    g = torch.Generator().manual_seed(1)
    logp = -torch.rand(n, generator=g) * 5
    ref = logp + torch.randn(n, generator=g) * 0.3

    def ours(**options):
        def run():
            leaf = logp.clone().requires_grad_()
            kl_penalty(leaf, ref, placement="loss", **options).surrogate.sum().backward()

        return run

    def verl_k3():
        leaf = logp.clone().requires_grad_()
        kl = torch.clamp(ref - leaf, min=-20, max=20)
        torch.clamp(torch.exp(kl) - kl - 1, min=-10, max=10).sum().backward()

    def plain_k2():
        leaf = logp.clone().requires_grad_()
        (0.5 * (leaf - ref).square()).sum().backward()

    cases = [
        ("k3 native, klkit (series, validation)", ours(estimator="k3")),
        ('`preset="verl:low_var_kl"`', ours(preset="verl:low_var_kl")),
        ("verl's formula, plain torch", verl_k3),
        ("k2 native, klkit", ours(estimator="k2")),
        ("k2, plain torch", plain_k2),
        ("k3 `reverse_kl`, klkit", ours(estimator="k3", gradient="reverse_kl")),
    ]
    lines = [
        f"One forward and backward on {n:,} float32 tokens, best of 7, {torch.get_num_threads()} torch thread(s):",
        "",
        "| call | ms |",
        "|---|---|",
    ]
    for name, fn in cases:
        lines.append(f"| {name} | {1e3 * best_time(fn):.1f} |")
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-write", action="store_true", help="print only; leave docs/rlhf.md alone")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    problem = Problem()
    table, _ = gradient_table(problem)
    body = "\n\n".join(
        [
            "## Bias and variance of the KL penalties' gradients (`benchmarks/rlhf_estimators.py`)",
            f"Machine: {machine_description()}.",
            "Categorical policy over V = 64 outcomes, KL(π‖π_ref) = 0.5 nats, π_old at total variation 0.2 from π. "
            "Exact expectations over the outcomes (no sampling; tests/test_rlhf_gradients.py checks the same "
            "numbers with 10⁶ sampled tokens). *follows*: the divergence whose gradient the expected gradient "
            "equals (to 1e-9 relative); *bias*: ‖E g − ∇KL(π‖π_ref)‖ / ‖∇KL(π‖π_ref)‖; *variance / token*: "
            "E‖g − E g‖²; *tokens for 1%*: tokens for a standard error of 1% of ‖∇KL(π‖π_ref)‖; off-policy "
            "biases are relative to the gradient followed on-policy, with tokens from π_old.",
            table,
            "### The estimates themselves",
            value_table(problem),
            "### Sequence level: token-level losses miss part of the gradient",
            "The autoregressive toy of tests/test_rlhf_sequence.py (V = 3, T = 4, tabular policy), expectations "
            "exact over the 81 sequences:",
            sequence_numbers(),
            "### Cost",
            speed_table(),
        ]
    )
    print(body)
    if not args.no_write:
        print(f"wrote {write_section('rlhf-estimators', body, path='docs/rlhf.md')}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
