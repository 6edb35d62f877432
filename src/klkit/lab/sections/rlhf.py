"""Which KL does your RLHF loss minimise? A bandit where both KLs and both regularised optima are exact.

A softmax policy over V = 10 arms starts at the reference π_0 and climbs the reward minus β times a KL
penalty estimated from sampled arms, as RLHF and GRPO do per token. The reward is highest on the arms
π_0 finds least likely, so the two directions of the KL disagree about how far to go. The optimum of
E_π[r] − β·KL(π‖π_0) is π* ∝ π_0·e^(r/β); that of E_π[r] − β·KL(π_0‖π) is π_f(a) = β·π_0(a) / (λ − r(a)),
λ > max r fixing Σπ_f = 1. Each penalty's run ends at one of them: k1 in the reward, k2 in the loss and k3
with ``gradient="reverse_kl"`` at π*; k3 in the loss (GRPO's default, verl's ``low_var_kl``) at π_f,
with less forward KL and more reverse KL than π*; k1 in the loss pulls nowhere.
"""

from __future__ import annotations

import html
from typing import Any

import numpy as np

import klkit
from klkit.lab.base import Check, LabContext, SectionResult, save_figure, torch_threads

V = 10  # arms
BETA = 0.15  # penalty weight
SAMPLES = 256  # arms drawn per step
LR = 0.05  # Adam
TV_BAR = 0.05  # "ends at" an optimum: total variation of the averaged final policy below this
EVERY = 5  # steps between records of the exact KLs

# name → (placement, estimator, gradient, what the libraries call it, which optimum the theory predicts)
METHODS: dict[str, tuple[str, str, str, str, str]] = {
    "k1 in the reward": ("reward", "k1", "native", "OpenRLHF/verl default reward KL", "reverse"),
    "k2 in the loss": ("loss", "k2", "native", "verl mse, OpenRLHF k2 loss (= verl k3+)", "reverse"),
    "k3 in the loss": ("loss", "k3", "native", "GRPO, verl low_var_kl, OpenRLHF k3", "forward"),
    "k3, reverse_kl": ("loss", "k3", "reverse_kl", "TRL use_bias_correction_kl", "reverse"),
    "k1 in the loss": ("loss", "k1", "native", "verl kl as a loss", "none"),
}
COLORS = ["tab:blue", "tab:green", "tab:red", "tab:purple", "tab:gray"]


def _problem(seed: int) -> dict[str, Any]:
    """The reference, the reward (best on the least likely arm) and both optima, in closed form."""
    import torch
    from scipy import optimize

    g = torch.Generator().manual_seed(seed)
    theta0 = torch.randn(V, generator=g, dtype=torch.float64)
    pi0 = torch.softmax(theta0, -1)
    reward = torch.empty(V, dtype=torch.float64)
    reward[torch.argsort(pi0)] = torch.linspace(1.0, 0.0, V, dtype=torch.float64)
    reverse_opt = torch.softmax(theta0 + reward / BETA, -1)
    top = float(reward.max())
    lam = optimize.brentq(
        lambda lam: float((BETA * pi0 / (lam - reward)).sum()) - 1.0, top + 1e-12, top + 100.0, xtol=1e-15
    )
    forward_opt = BETA * pi0 / (lam - reward)
    return {"theta0": theta0, "pi0": pi0, "reward": reward, "reverse": reverse_opt, "forward": forward_opt}


def _stationarity(problem: dict[str, Any]) -> dict[str, float]:
    """‖∇‖ of each regularised objective at its closed-form optimum (autograd of klkit's KL on logits)."""
    import torch

    import klkit

    out = {}
    for name, direction in (("reverse", "reverse"), ("forward", "forward")):
        logits = problem[name].log().clone().requires_grad_()
        kl = (
            klkit.kl_divergence(logits, problem["theta0"], kind="logits")
            if direction == "reverse"
            else klkit.kl_divergence(problem["theta0"], logits, kind="logits")
        )
        objective = (torch.softmax(logits, -1) * problem["reward"]).sum() - BETA * kl
        (grad,) = torch.autograd.grad(objective, logits)
        out[name] = float(grad.norm())
    return out


def _train(problem: dict[str, Any], method: tuple[str, str, str, str, str], steps: int, seed: int) -> dict[str, Any]:
    """Adam on the logits, REINFORCE (mean baseline) for the reward, the penalty as klkit.rlhf computes it."""
    import torch

    import klkit
    from klkit.rlhf import kl_penalty

    placement, estimator, gradient, *_ = method
    theta0, reward = problem["theta0"], problem["reward"]
    ref_lp = torch.log_softmax(theta0, -1)
    theta = theta0.clone().requires_grad_()
    m, v = torch.zeros_like(theta0), torch.zeros_like(theta0)  # Adam's moments (torch.optim imports torch._dynamo:
    # seconds, for 10 numbers)
    g = torch.Generator().manual_seed(seed)
    recorded, reverse, forward, average = [], [], [], torch.zeros(V, dtype=torch.float64)
    tail = steps - steps // 4
    for step in range(steps):
        logp_all = torch.log_softmax(theta, -1)
        arms = torch.multinomial(logp_all.detach().exp(), SAMPLES, replacement=True, generator=g)
        logp = logp_all[arms]
        penalty = kl_penalty(logp, ref_lp[arms], estimator=estimator, placement=placement, gradient=gradient)
        r = reward[arms] - (BETA * penalty.value if placement == "reward" else 0.0)
        loss = -((r - r.mean()) * logp).mean()
        if placement == "loss":
            loss = loss + BETA * penalty.surrogate.mean()
        (grad,) = torch.autograd.grad(loss, theta)
        with torch.no_grad():
            m.mul_(0.9).add_(grad, alpha=0.1)
            v.mul_(0.999).addcmul_(grad, grad, value=0.001)
            theta -= LR * (m / (1 - 0.9 ** (step + 1))) / ((v / (1 - 0.999 ** (step + 1))).sqrt() + 1e-8)
            if step % EVERY == 0 or step == steps - 1:
                recorded.append(step + 1)
                reverse.append(float(klkit.kl_divergence(theta, theta0, kind="logits")))
                forward.append(float(klkit.kl_divergence(theta0, theta, kind="logits")))
            if step >= tail:
                average += torch.softmax(theta, -1)
    return {"steps": recorded, "reverse": reverse, "forward": forward, "final": average / (steps - tail)}


def _tv(p: Any, q: Any) -> float:
    return 0.5 * float((p - q).abs().sum())


def _kls(p: Any, pi0: Any) -> tuple[float, float]:
    import klkit

    return float(klkit.kl_divergence(p, pi0)), float(klkit.kl_divergence(pi0, p))


def _figure(problem: dict[str, Any], runs: dict[str, dict[str, Any]]) -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax_rev, ax_fwd, ax_bar) = plt.subplots(1, 3, figsize=(17, 4.6))
    for (name, run), color in zip(runs.items(), COLORS, strict=True):
        ax_rev.plot(run["steps"], run["reverse"], color=color, lw=1.2, label=name)
        ax_fwd.plot(run["steps"], run["forward"], color=color, lw=1.2, label=name)
    for ax, index, title in ((ax_rev, 0, "reverse KL(π‖π_0)"), (ax_fwd, 1, "forward KL(π_0‖π)")):
        ax.axhline(
            _kls(problem["reverse"], problem["pi0"])[index],
            color="black",
            ls="--",
            lw=1.2,
            label="at π* (reverse-KL optimum)",
        )
        ax.axhline(
            _kls(problem["forward"], problem["pi0"])[index],
            color="black",
            ls=":",
            lw=1.2,
            label="at π_f (forward-KL optimum)",
        )
        ax.set(xlabel="step", ylabel="nats", ylim=(0, 5))
        ax.set_title(title, fontsize=11)
    ax_rev.legend(fontsize=9, loc="lower right")
    order = np.argsort(problem["pi0"].numpy())[::-1]
    x = np.arange(V)
    # the same colour means the same thing in every panel: a run's colour is its method's; the optima are black
    bars = {
        "π_0 (reference)": (problem["pi0"], dict(color="tan")),
        "π* (reverse-KL optimum)": (problem["reverse"], dict(color="black")),
        "π_f (forward-KL optimum)": (problem["forward"], dict(color="white", edgecolor="black", hatch="///")),
        "k3 in the loss (final)": (runs["k3 in the loss"]["final"], dict(color=COLORS[2])),
        "k1 in the reward (final)": (runs["k1 in the reward"]["final"], dict(color=COLORS[0])),
    }
    width = 0.8 / len(bars)
    for i, (name, (p, style)) in enumerate(bars.items()):
        ax_bar.bar(x + (i - len(bars) / 2 + 0.5) * width, p.numpy()[order], width, label=name, **style)
    ax_bar.set(xlabel="arm (π_0 most to least likely; reward rises to the right)", ylabel="probability")
    ax_bar.set_title("Final policies against the two optima", fontsize=11)
    ax_bar.legend(fontsize=9)
    fig.tight_layout()
    return fig


def run(ctx: LabContext) -> SectionResult:
    steps = 200 if ctx.quick else 800
    problem = _problem(ctx.seed)
    runs = {}
    with torch_threads(1):
        for i, (name, method) in enumerate(METHODS.items()):
            ctx.progress(f"{name}: {steps} steps of {SAMPLES} arms")
            runs[name] = _train(problem, method, steps, ctx.seed + 1 + i)
        stationary = _stationarity(problem)
    pi0 = problem["pi0"]
    star_rev, star_fwd = _kls(problem["reverse"], pi0)
    f_rev, f_fwd = _kls(problem["forward"], pi0)
    rows = []
    for name, (placement, estimator, gradient, library, predicted) in METHODS.items():
        final = runs[name]["final"]
        rev, fwd = _kls(final, pi0)
        rows.append(
            {
                "method": name,
                "library": library,
                "placement": placement,
                "estimator": estimator,
                "gradient": gradient,
                "predicted": predicted,
                "reverse_kl": rev,
                "forward_kl": fwd,
                "reward": float((final * problem["reward"]).sum()),
                "tv_reverse_opt": _tv(final, problem["reverse"]),
                "tv_forward_opt": _tv(final, problem["forward"]),
            }
        )
    by = {r["method"]: r for r in rows}
    k3 = by["k3 in the loss"]
    reverse_methods = [r for r in rows if r["predicted"] == "reverse"]
    gap = _tv(problem["reverse"], problem["forward"])
    checks = [
        Check(
            "the closed-form optima are stationary points of their objectives (‖∇‖ < 1e-9)",
            f"‖∇‖ at π* = {stationary['reverse']:.1e}, at π_f = {stationary['forward']:.1e}",
            max(stationary.values()) < 1e-9,
        ),
        Check("the two optima differ (total variation ≥ 0.3)", f"TV(π*, π_f) = {gap:.3f}", gap >= 0.3),
        Check(
            f"k1 in the reward, k2 in the loss, k3 with reverse_kl end at π* (TV < {TV_BAR})",
            ", ".join(f"{r['method']}: {r['tv_reverse_opt']:.3f}" for r in reverse_methods),
            all(r["tv_reverse_opt"] < TV_BAR for r in reverse_methods),
        ),
        Check(
            f"k3 in the loss ends at the forward-KL optimum π_f (TV < {TV_BAR}), not at π*",
            f"TV to π_f = {k3['tv_forward_opt']:.3f}, to π* = {k3['tv_reverse_opt']:.3f}",
            k3["tv_forward_opt"] < TV_BAR and k3["tv_reverse_opt"] > 0.3,
        ),
        Check(
            "k3 in the loss holds the forward KL below, and lets the reverse KL drift above, every "
            "reverse-KL penalty's",
            f"forward {k3['forward_kl']:.3f} vs ≥ "
            f"{min(r['forward_kl'] for r in reverse_methods):.3f}; reverse {k3['reverse_kl']:.3f} vs ≤ "
            f"{max(r['reverse_kl'] for r in reverse_methods):.3f}",
            all(k3["forward_kl"] < r["forward_kl"] and k3["reverse_kl"] > r["reverse_kl"] for r in reverse_methods),
        ),
        Check(
            "k1 in the loss pulls nowhere: the reverse KL ends above twice π*'s",
            f"{by['k1 in the loss']['reverse_kl']:.3f} vs KL(π*‖π_0) = {star_rev:.3f}",
            by["k1 in the loss"]["reverse_kl"] > 2 * star_rev,
        ),
    ]
    best = int(problem["reward"].argmax())
    top_rev, top_fwd = float(problem["reverse"][best]), float(problem["forward"][best])
    h_rev, h_fwd = (float(klkit.entropy(problem[k])) for k in ("reverse", "forward"))
    checks.append(
        Check(
            "the forward-KL-regularised optimum π_f is the more peaked one: more mass on the best arm (which π_0 "
            "finds unlikely) and lower entropy than π*",
            f"best arm: π_0 {float(pi0[best]):.3f}, π* {top_rev:.3f}, π_f {top_fwd:.3f}; entropy π* {h_rev:.3f} vs "
            f"π_f {h_fwd:.3f} nats",
            top_fwd > top_rev and h_fwd < h_rev,
        )
    )
    figure = save_figure(ctx, _figure(problem, runs), "rlhf_kl")
    body = "".join(
        f"<tr><td>{html.escape(r['method'])}</td><td>{html.escape(r['library'])}</td>"
        f'<td>{html.escape(r["predicted"])}</td><td class="num">{r["reverse_kl"]:.3f}</td>'
        f'<td class="num">{r["forward_kl"]:.3f}</td><td class="num">{r["reward"]:.3f}</td>'
        f'<td class="num">{r["tv_reverse_opt"]:.3f}</td><td class="num">{r["tv_forward_opt"]:.3f}</td></tr>'
        for r in rows
    )
    optima = (
        f'<tr><td>π* (exact)</td><td>argmax E[r] − β·KL(π‖π_0)</td><td>reverse</td><td class="num">'
        f'{star_rev:.3f}</td><td class="num">{star_fwd:.3f}</td><td class="num">'
        f'{float((problem["reverse"] * problem["reward"]).sum()):.3f}</td><td class="num">0</td>'
        f'<td class="num">{gap:.3f}</td></tr>'
        f'<tr><td>π_f (exact)</td><td>argmax E[r] − β·KL(π_0‖π)</td><td>forward</td><td class="num">'
        f'{f_rev:.3f}</td><td class="num">{f_fwd:.3f}</td><td class="num">'
        f'{float((problem["forward"] * problem["reward"]).sum()):.3f}</td><td class="num">{gap:.3f}</td>'
        f'<td class="num">0</td></tr>'
    )
    table = (
        "<table><tr><th>penalty</th><th>where libraries use it</th><th>KL it controls</th>"
        "<th>KL(π‖π_0)</th><th>KL(π_0‖π)</th><th>E[r]</th><th>TV to π*</th><th>TV to π_f</th></tr>"
        f"{optima}{body}</table>"
    )
    return SectionResult(
        key="rlhf",
        title="Which KL does your RLHF loss minimise?",
        claim="A KL penalty estimated from sampled tokens follows the gradient of the KL it estimates only in "
        "some placements: k1 in the reward, k2 in the loss, or k3 with the importance-weight correction "
        "minimise the reverse KL(π‖π_ref); k3 in the loss, as GRPO and verl's low_var_kl use it, minimises "
        "the forward KL(π_ref‖π); k1 in the loss has zero expected gradient.",
        how=f"Softmax policy over {V} arms started at π_0, Adam (lr {LR}) on reward − {BETA}·penalty for {steps} "
        f"steps of {SAMPLES} sampled arms (REINFORCE with a mean baseline for the reward), the penalty from "
        f"klkit.rlhf.kl_penalty; both KLs exact every {EVERY} steps (klkit.kl_divergence on the logits); the final "
        "policy is the average over the last quarter of the steps, compared with the two regularised optima "
        "in closed form. verl's k3+ and straight-through penalties have k2's per-sample gradient, so they "
        "follow the k2 curve.",
        checks=checks,
        figures=[figure],
        tables_html=[table],
        numbers={
            "beta": BETA,
            "steps": steps,
            "samples": SAMPLES,
            "tv_between_optima": gap,
            "optimum_reverse": {"reverse_kl": star_rev, "forward_kl": star_fwd},
            "optimum_forward": {"reverse_kl": f_rev, "forward_kl": f_fwd},
            "methods": rows,
            "best_arm_mass": {"reference": float(pi0[best]), "reverse_opt": top_rev, "forward_opt": top_fwd},
        },
        intuition="RLHF fine-tunes a policy π (a language model) to earn reward while a KL penalty keeps it close "
        "to a reference policy π_ref — the model before RL, frozen. Here π_ref is written π_0, because it is also "
        "where training starts. The KL is never computed exactly over all sequences: it is estimated from the "
        "tokens π sampled, with the log-ratio d = log π(a) − log π_0(a) and the estimators of "
        "[the TRPO section](#trpo) "
        "(k1 = d, k2 = ½d², k3 = e^−d − 1 + d), and the estimate is either subtracted from the reward or added to "
        "the loss. Each choice has its own gradient, and not every gradient is the gradient of the KL it "
        "estimates: here a 10-armed bandit, where everything is exact, shows which KL each one actually "
        "minimises. The two optima differ in shape: with π as the second argument, the forward KL(π_0‖π) = "
        "Σ π_0 log(π_0/π) charges π only for taking mass from arms π_0 likes, weighted by π_0's small "
        "probabilities, and nothing for piling that mass onto the best arm, while the reverse KL(π‖π_0) weighs "
        "each arm by π itself and so charges for the pile-up — which is why π_f is more peaked than π*.",
        example=f"β = {BETA}, and an arm with π_0 = 0.01 that π moves to 0.5: its term of the reverse KL is "
        "0.5 · ln(0.5/0.01) = 1.96 nats, its term of the forward KL only 0.01 · ln(0.01/0.5) = −0.039 nats (the "
        "forward KL pays instead where π took that mass from).",
        captions={
            figure.name: "Left and middle: the exact reverse and forward KL to π_0 during training, one colour per "
            "penalty (the same colours in the right panel); dashed and dotted black lines are the values at the "
            "two exact optima π* and π_f. Notice k1 in the reward, k2 in the loss and k3 with reverse_kl settle "
            "on the dashed line (π*), k3 in the loss on the dotted one (π_f), and k1 in the loss drifts away. "
            "Right: the final policies arm by arm against π_0 (tan), π* (black) and π_f (hatched): k3 in the "
            "loss ends at π_f, which piles most of its mass on the best arm; k1 in the reward ends at π*."
        },
    )
