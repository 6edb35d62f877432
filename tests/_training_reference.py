"""Float64 references and the pairwise covering design of tests/test_training_matrix.py."""

from __future__ import annotations

import itertools
import math

import torch

V = 11
DIVERGENCES = {
    "forward_kl": {},
    "reverse_kl": {},
    "jsd": {"beta": 0.3},
    "skew_forward_kl": {"skew": 0.2},
    "skew_reverse_kl": {"skew": 0.1},
    "tvd": {},
    "alpha_beta": {"alpha": 0.6, "beta": 0.5},
}

PENALTY_FACTORS = {
    "estimator": ["k1", "k2", "k3", "abs"],
    "gradient": ["native", "reverse_kl", "straight_through"],
    "placement": ["reward", "loss"],
    "old": [False, True],
    "dtype": ["float32", "bfloat16", "float16"],
    "grad": ["requires_grad", "no_grad", "inference_mode", "create_graph"],
    "layout": ["contiguous", "strided"],
    "clamp": [None, (20.0, 10.0)],
}


def pairwise(factors: dict[str, list]) -> list[dict]:
    """A greedy covering array of strength 2: every pair of levels of two factors appears in some case."""
    names = list(factors)
    todo = {((a, x), (b, y)) for a, b in itertools.combinations(names, 2) for x in factors[a] for y in factors[b]}
    cases = []
    while todo:
        (a, x), (b, y) = min(todo, key=lambda p: (names.index(p[0][0]), names.index(p[1][0]), str(p)))
        case = {a: x, b: y}
        for name in names:
            if name in case:
                continue

            def gain(level, name=name):
                return sum(((n, case[n]), (name, level)) in todo or ((name, level), (n, case[n])) in todo for n in case)

            case[name] = max(factors[name], key=lambda level: (gain(level), -factors[name].index(level)))
        todo -= {((m, case[m]), (n, case[n])) for m, n in itertools.combinations(names, 2)}
        cases.append(case)
    return cases


def log_softmax64(x: torch.Tensor, temperature: float, fill: float | None = None) -> torch.Tensor:
    """float64 log-softmax of the rounded inputs; masked entries −inf (or ``fill`` for smooth gradients)."""
    y = x.double()
    y = torch.where(y <= -1e9, -math.inf if fill is None else fill, y)  # a mask, whatever filled it
    return torch.log_softmax(y / temperature, dim=-1)


def _lae(u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """log(e^u + e^v) as a logsumexp (torch's logaddexp has NaN second derivatives at large gaps)."""
    return torch.logsumexp(torch.stack([u, v]), dim=0)


def per_token_reference(term: str, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """D(teacher b, student a) per token from float64 log-probabilities, rel_entr's conventions."""
    s, t = a.exp(), b.exp()

    def xlogy(x, ly, lz):  # x (ly − lz), 0 where x = 0
        return torch.where(x > 0, x * (ly - lz), torch.zeros_like(x)).sum(-1)

    name = term.split(":")[-1]
    if name in ("forward_kl", "topk_teacher", "fused_linear_divergence"):
        return xlogy(t, b, a)
    if name in ("reverse_kl", "token_kl"):
        return xlogy(s, a, b)
    if name in ("jsd", "generalized_jsd_loss"):
        beta = DIVERGENCES["jsd"]["beta"] if name == "jsd" else 0.5
        m = _lae(a + math.log1p(-beta), b + math.log(beta))
        return beta * xlogy(t, b, m) + (1 - beta) * xlogy(s, a, m)
    if name.startswith("skew"):
        lam = DIVERGENCES[name]["skew"]
        x, lx, ly = (t, b, a) if name == "skew_forward_kl" else (s, a, b)
        return xlogy(x, lx, _lae(lx + math.log(lam), ly + math.log1p(-lam)))
    if name == "tvd":
        return 0.5 * (s - t).abs().sum(-1)
    al, be = DIVERGENCES["alpha_beta"]["alpha"], DIVERGENCES["alpha_beta"]["beta"]
    u = al + be
    # powers as exponentials of log-probabilities: t**α has an infinite second derivative at t → 0
    return -((al * b + be * a).exp() - al / u * (u * b).exp() - be / u * (u * a).exp()).sum(-1) / (al * be)


def reduce_reference(values: torch.Tensor, keep: torch.Tensor, reduction: str, count: float, trl: bool) -> torch.Tensor:
    values = torch.where(keep, values, torch.zeros_like(values))
    if reduction == "none":
        return values
    total = values.sum()
    if reduction == "sum":
        return total
    return total / max(count, 1) / (V if reduction == "mean" else 1)


def penalty_reference(estimator, gradient, logp, ref, old, clamp):
    """(value, d surrogate / d logp) per token in float64, from the definitions (docs/rlhf.md's table)."""
    ell = logp - ref
    lc = ell if clamp is None else ell.clamp(-clamp[0], clamp[0])
    k = {"k1": lc, "k2": 0.5 * lc**2, "k3": torch.expm1(-lc) + lc, "abs": lc.abs()}[estimator]
    free = torch.ones_like(ell, dtype=torch.bool) if clamp is None else (ell.abs() <= clamp[0]) & (k.abs() <= clamp[1])
    value = k if clamp is None else k.clamp(-clamp[1], clamp[1])
    w = torch.ones_like(ell) if old is None else torch.exp(logp - old)
    slope = {"k1": torch.ones_like(ell), "k2": ell, "k3": -torch.expm1(-ell), "abs": ell.sign()}[estimator]
    if gradient == "native":
        grad = w * torch.where(free, slope, 0.0)
    elif gradient == "straight_through":
        grad = w * ell
    else:
        grad = w * torch.where(free, ell + (1.0 if estimator == "k1" else 0.0), value)
    return value, grad
