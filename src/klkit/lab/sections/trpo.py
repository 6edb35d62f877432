"""TRPO keeps KL ≤ δ: every accepted policy step stays inside its KL budget, measured by klkit; and why the
budget matters — the importance weights π_new/π_old of a step spread out as its KL grows."""

from __future__ import annotations

import html
import itertools
import tempfile
from typing import Any

import numpy as np

from klkit.lab.base import Check, LabContext, SectionResult, save_figure
from klkit.lab.sections._runs import read_metrics
from klkit.lab.sections._trust_region import BUDGETS, importance_weights
from klkit.lab.sections._trust_region import figure as weights_figure


def _train(ctx: LabContext, steps: int, max_kl: float) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Train TRPO (public ``trpo.train``, one thread) in a temporary run directory; its ``metrics.jsonl``
    and the importance weights of steps of growing KL from the trained policy."""
    from klkit.train import trpo

    cfg = trpo.Config.for_env(
        "CartPole-v1",
        seed=ctx.seed,
        total_steps=steps,
        max_kl=max_kl,
        progress=False,
        checkpoint_every=10**6,
        threads=1,
    )
    with tempfile.TemporaryDirectory(prefix="klkit-lab-trpo-") as run_dir:
        trpo.train(cfg, run_dir)
        records = read_metrics(run_dir)
        ctx.progress("importance weights of steps of growing KL from the trained policy")
        weights = importance_weights(cfg, run_dir)
    return records, weights


def _figure(ctx: LabContext, records: list[dict[str, Any]], max_kl: float) -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    steps = np.array([r["global_step"] for r in records])
    exact = np.array([r["kl_exact"] for r in records])
    k3 = np.array([r["kl_k3"] for r in records])
    k3_se = np.array([r["kl_k3_se"] for r in records])
    k1 = np.array([r["kl_k1"] for r in records])
    fig, (ax_kl, ax_ret) = plt.subplots(1, 2, figsize=(11, 3.8))
    ax_kl.step(
        steps, [r["max_kl"] for r in records], where="mid", color="crimson", ls="--", label="δ_t (this update's budget)"
    )
    ax_kl.plot(steps, exact, "o-", ms=3, color="black", label="exact (klkit closed form)")
    ax_kl.errorbar(steps, k3, yerr=2 * k3_se, fmt=".", color="tab:blue", alpha=0.6, label="k3 ± 2 SE (mc_kl)")
    ax_kl.plot(steps, k1, "x", color="tab:orange", alpha=0.6, label="k1 (mc_kl)")
    ax_kl.set(
        xlabel="environment steps",
        ylabel="mean KL(π_old ‖ π_new) per update (nats)",
        title="TRPO: KL of each update against its budget",
    )
    ax_kl.legend(fontsize=9)
    episodes = [(s, r) for rec in records for s, r in rec["episodes"]]
    if episodes:
        es, er = np.array(episodes).T
        ax_ret.plot(es, er, ".", color="gray", alpha=0.4, ms=3, label="episode return")
        means = np.convolve(er, np.ones(10) / 10, mode="valid") if len(er) >= 10 else er
        ax_ret.plot(es[len(es) - len(means) :], means, color="black", label="mean of last 10")
    ax_ret.axhline(475, color="green", ls=":", label="solved (475)")
    ax_ret.set(xlabel="environment steps", ylabel="return", title="CartPole-v1 return")
    ax_ret.legend(fontsize=9)
    fig.tight_layout()
    return fig


def run(ctx: LabContext) -> SectionResult:
    max_kl = 0.01
    steps = 8_192 if ctx.quick else 61_440
    ctx.progress(f"TRPO on CartPole-v1 for {steps:,} steps (δ = {max_kl})")
    records, weights = _train(ctx, steps, max_kl)
    exact = np.array([r["kl_exact"] for r in records])
    budget = np.array([r["max_kl"] for r in records])
    accepted = np.array([r["line_search_accepted"] for r in records])
    k3 = np.array([r["kl_k3"] for r in records])
    k3_se = np.array([r["kl_k3_se"] for r in records])
    shrunk = np.array([r["line_search_trials"] > 1 for r in records])
    within = np.abs(k3 - exact) <= 3 * k3_se
    first = next(r["return_mean10"] for r in records if r["return_mean10"] is not None)
    final = records[-1]["return_mean10"]
    used = exact[accepted] / budget[accepted]
    worst = float(np.max(exact / budget))
    ws = weights["steps"]
    inside = [w for w in ws if w["kl"] <= max_kl]
    expansion = [w["chi2"] / (2 * w["kl"]) for w in inside]
    z_var = max(abs(w["variance"] - w["chi2"]) / w["variance_se"] for w in ws)
    ess_in, ess_last = min(w["ess"] for w in inside), ws[-1]["ess"]
    checks = [
        Check(
            f"every update's exact mean KL(π_old‖π_new) ≤ its budget δ_t ({len(records)} updates; δ = {max_kl} "
            "annealed linearly to 0 over training)",
            f"max KL / δ_t = {worst:.3f}; max KL = {exact.max():.5f} nats; {int(accepted.sum())} steps accepted, "
            f"{int((~accepted).sum())} rejected",
            bool(worst <= 1 + 1e-6),
        ),
        Check(
            "the budget is used, not avoided: accepted steps end at half their δ_t or more (median; the line "
            "search shrinks a step by 0.8 per trial, its KL by about 0.64)",
            f"KL / δ_t of accepted steps: median {float(np.median(used)) if used.size else 0:.2f}, "
            f"min {float(np.min(used)) if used.size else 0:.2f}",
            bool(used.size and np.median(used) >= 0.5),
        ),
        Check(
            "the Monte Carlo k3 estimate (one action per state) agrees with the closed form within 3 SE",
            f"{int(within.sum())}/{len(within)} updates",
            bool(within.mean() >= 0.8),
        ),
        Check(
            "the policy learns under the constraint (mean return of the last 10 episodes)",
            f"{first:.1f} → {final:.1f}",
            bool(final > 1.5 * first),
        ),
        Check(
            f"the spread of the importance weights w = π_new/π_old grows with the KL of the step ({len(ws)} steps "
            f"along the trained policy's natural gradient, budgets {BUDGETS[0]:g} to {BUDGETS[-1]:g}, the same "
            f"{weights['samples']:,} rollout actions)",
            "Var(w) = "
            + ", ".join(f"{w['variance']:.2g}" for w in ws)
            + "; ESS/n = "
            + ", ".join(f"{w['ess']:.2f}" for w in ws),
            all(a["variance"] < b["variance"] and a["ess"] > b["ess"] for a, b in itertools.pairwise(ws)),
        ),
        Check(
            "the sampled Var(w) equals the exact E_s χ²(π_new‖π_old) (within 4 standard errors), and inside the "
            "budget χ² ≈ 2·KL (ratio in [0.8, 1.25]): a small KL means a small weight variance",
            f"max |Var − χ²| / SE = {z_var:.1f}; χ²/(2 KL) at KL ≤ δ: " + ", ".join(f"{e:.2f}" for e in expansion),
            bool(z_var <= 4 and expansion and all(0.8 <= e <= 1.25 for e in expansion)),
        ),
        Check(
            f"inside the budget the correction stays reliable (ESS ≥ 90% of n at KL ≤ δ); at KL = "
            f"{ws[-1]['kl']:.2g} nats it is not (ESS ≤ 60%)",
            f"ESS/n ≥ {ess_in:.3f} inside; {ess_last:.2f} at the largest step, largest weight "
            f"{ws[-1]['max_weight']:.1f}",
            bool(ess_in >= 0.9 and ess_last <= 0.6),
        ),
    ]
    path = save_figure(ctx, _figure(ctx, records, max_kl), "trpo_kl")
    weights_path = weights_figure(ctx, weights, max_kl)
    rows = []
    for r in records[:: max(1, len(records) // 12)]:
        ret = "" if r["return_mean10"] is None else f"{r['return_mean10']:.1f}"
        rows.append(
            f"<tr><td class='num'>{r['update']}</td><td class='num'>{r['global_step']}</td>"
            f"<td class='num'>{r['max_kl']:.5f}</td>"
            f"<td class='num'>{r['kl_exact']:.5f}</td><td class='num'>{r['kl_k1']:.5f}</td>"
            f"<td class='num'>{r['kl_k3']:.5f} ± {r['kl_k3_se']:.5f}</td>"
            f"<td class='num'>{html.escape(str(r['line_search_trials']))}</td><td class='num'>{ret}</td></tr>"
        )
    table = (
        "<table><tr><th>update</th><th>step</th><th>budget δ_t</th><th>KL exact</th><th>k1</th><th>k3 ± SE</th>"
        f"<th>line-search trials</th><th>return (mean 10)</th></tr>{''.join(rows)}</table>"
    )
    return SectionResult(
        key="trpo",
        title="TRPO keeps KL ≤ δ",
        claim="TRPO bounds each policy update by a KL budget: E_s[KL(π_old(·|s) ‖ π_new(·|s))] ≤ δ. The natural "
        "gradient (conjugate gradient on Fisher-vector products of the KL) gives the direction and a step "
        "sized for δ; a backtracking line search enforces the bound on the exact KL. The budget is what keeps the "
        "importance-sampling correction, which judges π_new on π_old's actions, reliable: the weights "
        "π_new/π_old spread out as the KL of a step grows.",
        how=f"klkit's TRPO on CartPole-v1 for {steps:,} steps (seed {ctx.seed}; δ = {max_kl}, annealed linearly to 0 "
        "over training as klkit's CartPole preset does, so update t has its own budget δ_t, logged as max_kl). "
        "After each update the mean KL between the old and new policy on the rollout's states is measured three "
        "ways: klkit's closed form for the two Categorical policies, and the k1 and k3 Monte Carlo estimates "
        f"(klkit.estimators.mc_kl) from the rollout's own actions. {int(shrunk.sum())} of {len(records)} updates "
        "needed the line search to shrink the step. Then, from the trained policy and one fresh rollout of "
        f"{weights['samples']:,} actions, TRPO's natural-gradient step is scaled for budgets δ' from "
        f"{BUDGETS[0]:g} to {BUDGETS[-1]:g} (no line search) and the weights w = π_new(a|s)/π_old(a|s) of the "
        "rollout's actions are measured: their variance, the exact χ² (Σ_a π_new²/π_old − 1 per state), the "
        "effective sample size (Σw)²/Σw² and the largest weight.",
        checks=checks,
        figures=[path, weights_path],
        tables_html=[table],
        numbers={
            "max_kl": max_kl,
            "measured_max_kl": float(exact.max()),
            "max_kl_over_budget": worst,
            "median_kl_over_budget_accepted": float(np.median(used)) if used.size else 0.0,
            "updates": len(records),
            "accepted": int(accepted.sum()),
            "k3_within_3se": float(within.mean()),
            "first_return_mean10": first,
            "final_return_mean10": final,
            "steps": steps,
            "importance_weights": weights,
        },
        intuition="A policy-gradient method collects actions with the current policy π_old (on-policy data: "
        "sampled by the policy being improved) and then asks how a changed policy π_new would do on them, "
        "re-weighting each action by w = π_new(a|s)/π_old(a|s) (importance sampling). The weights average 1 for "
        "any π_new, but the further π_new moves, the more they spread: a few actions get large weights, the "
        "rest count for little, and the estimate becomes noise. TRPO therefore takes the largest step whose "
        "KL(π_old‖π_new), averaged over the visited states, stays within a budget δ. The KL of an update is "
        "measured exactly here and also estimated from the sampled actions a ~ π_old with r = π_new/π_old: "
        "k1 = −log r (unbiased, but often negative and noisy), k2 = ½(log r)² (never negative, low variance, "
        "slightly biased) and k3 = (r − 1) − log r (unbiased and never negative); the same three appear in "
        "PPO and RLHF below.",
        example="Two actions, π_old = (0.5, 0.5), π_new = (0.6, 0.4): KL(π_old‖π_new) = 0.5 ln(0.5/0.6) + "
        "0.5 ln(0.5/0.4) = 0.5(−0.182) + 0.5(0.223) = 0.020 nats; the weights are 1.2 and 0.8, with variance "
        "χ² = 0.6²/0.5 + 0.4²/0.5 − 1 = 0.04 ≈ 2·KL; a step with KL ≤ δ = 0.01 moves each probability by at "
        "most about √(δ/2) = 0.07 (Pinsker).",
        captions={
            path.name: "Left: the exact KL of every update (black) against its budget δ_t (red, falling to 0 as "
            "δ is annealed): always below it, mostly well above half of it; the k3 estimate (blue, ± 2 SE) "
            "tracks the exact value, the k1 estimate (orange crosses) scatters more. Right: the return rises while "
            "every step respects its budget.",
            weights_path.name: "From the trained policy, TRPO steps of growing KL, judged on the same rollout. "
            "Left: the variance of the weights π_new/π_old (dots) matches the exact χ² (line) and grows with the "
            "KL, close to 2·KL while the step is small. Right: inside the budget (left of the red line) the "
            "rollout's actions count almost fully (effective sample size near 100%); beyond it a few actions "
            "carry large weights and the effective sample size falls below half: an estimate built on "
            "those weights could no longer be trusted.",
        },
    )
