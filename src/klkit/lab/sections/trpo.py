"""TRPO keeps KL ≤ δ: every accepted policy step stays inside its KL budget, measured by klkit."""

from __future__ import annotations

import html
import tempfile
from typing import Any

import numpy as np

from klkit.lab.base import Check, LabContext, SectionResult, save_figure
from klkit.lab.sections._runs import read_metrics


def _train(ctx: LabContext, steps: int, max_kl: float) -> list[dict[str, Any]]:
    """Train TRPO (public ``trpo.train``, one thread) in a temporary run directory; its ``metrics.jsonl``."""
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
        return read_metrics(run_dir)


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
    ax_kl.axhline(max_kl, color="crimson", ls="--", label="δ (KL budget)")
    ax_kl.plot(steps, exact, "o-", ms=3, color="black", label="exact (klkit closed form)")
    ax_kl.errorbar(steps, k3, yerr=2 * k3_se, fmt=".", color="tab:blue", alpha=0.6, label="k3 ± 2 SE (mc_kl)")
    ax_kl.plot(steps, k1, "x", color="tab:orange", alpha=0.6, label="k1 (mc_kl)")
    ax_kl.set(
        xlabel="environment steps",
        ylabel="mean KL(π_old ‖ π_new) per update (nats)",
        title="TRPO: KL of each update against δ",
    )
    ax_kl.legend(fontsize=8)
    episodes = [(s, r) for rec in records for s, r in rec["episodes"]]
    if episodes:
        es, er = np.array(episodes).T
        ax_ret.plot(es, er, ".", color="gray", alpha=0.4, ms=3, label="episode return")
        means = np.convolve(er, np.ones(10) / 10, mode="valid") if len(er) >= 10 else er
        ax_ret.plot(es[len(es) - len(means) :], means, color="black", label="mean of last 10")
    ax_ret.axhline(475, color="green", ls=":", label="solved (475)")
    ax_ret.set(xlabel="environment steps", ylabel="return", title="CartPole-v1 return")
    ax_ret.legend(fontsize=8)
    fig.tight_layout()
    return fig


def run(ctx: LabContext) -> SectionResult:
    max_kl = 0.01
    steps = 8_192 if ctx.quick else 61_440
    ctx.progress(f"TRPO on CartPole-v1 for {steps:,} steps (δ = {max_kl})")
    records = _train(ctx, steps, max_kl)
    exact = np.array([r["kl_exact"] for r in records])
    accepted = np.array([r["line_search_accepted"] for r in records])
    k3 = np.array([r["kl_k3"] for r in records])
    k3_se = np.array([r["kl_k3_se"] for r in records])
    shrunk = np.array([r["line_search_trials"] > 1 for r in records])
    within = np.abs(k3 - exact) <= 3 * k3_se
    first = next(r["return_mean10"] for r in records if r["return_mean10"] is not None)
    final = records[-1]["return_mean10"]
    max_kl_measured = float(exact.max())
    checks = [
        Check(
            f"every update's exact mean KL(π_old‖π_new) ≤ δ = {max_kl} ({len(records)} updates)",
            f"max KL = {max_kl_measured:.5f} nats ({max_kl_measured / max_kl:.0%} of δ); "
            f"{int(accepted.sum())} steps accepted, {int((~accepted).sum())} rejected",
            bool(max_kl_measured <= max_kl * (1 + 1e-6)),
        ),
        Check(
            "the budget is used, not avoided: accepted steps end near δ",
            f"median KL of accepted steps = {float(np.median(exact[accepted])) if accepted.any() else 0:.5f} nats",
            bool(accepted.any() and np.median(exact[accepted]) >= 0.3 * max_kl),
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
    ]
    fig = _figure(ctx, records, max_kl)
    path = save_figure(ctx, fig, "trpo_kl")
    rows = []
    for r in records[:: max(1, len(records) // 12)]:
        ret = "" if r["return_mean10"] is None else f"{r['return_mean10']:.1f}"
        rows.append(
            f"<tr><td class='num'>{r['update']}</td><td class='num'>{r['global_step']}</td>"
            f"<td class='num'>{r['kl_exact']:.5f}</td><td class='num'>{r['kl_k1']:.5f}</td>"
            f"<td class='num'>{r['kl_k3']:.5f} ± {r['kl_k3_se']:.5f}</td>"
            f"<td class='num'>{html.escape(str(r['line_search_trials']))}</td><td class='num'>{ret}</td></tr>"
        )
    table = (
        "<table><tr><th>update</th><th>step</th><th>KL exact</th><th>k1</th><th>k3 ± SE</th>"
        f"<th>line-search trials</th><th>return (mean 10)</th></tr>{''.join(rows)}</table>"
    )
    return SectionResult(
        key="trpo",
        title="TRPO keeps KL ≤ δ",
        claim="TRPO bounds each policy update by a KL budget: E_s[KL(π_old(·|s) ‖ π_new(·|s))] ≤ δ. The natural "
        "gradient (conjugate gradient on Fisher-vector products of the KL) gives the direction and a step "
        "sized for δ; a backtracking line search enforces the bound on the exact KL.",
        how=f"klkit's TRPO on CartPole-v1 for {steps:,} steps (seed {ctx.seed}, δ = {max_kl}). After each update the "
        "mean KL between the old and new policy on the rollout's states is measured three ways: klkit's closed "
        "form for the two Categorical policies, and the k1 and k3 Monte Carlo estimates (klkit.estimators.mc_kl) "
        f"from the rollout's own actions. {int(shrunk.sum())} of {len(records)} updates needed the line search to "
        "shrink the step.",
        checks=checks,
        figures=[path],
        tables_html=[table],
        numbers={
            "max_kl": max_kl,
            "measured_max_kl": max_kl_measured,
            "updates": len(records),
            "accepted": int(accepted.sum()),
            "k3_within_3se": float(within.mean()),
            "first_return_mean10": first,
            "final_return_mean10": final,
            "steps": steps,
        },
    )
