"""PPO's clip / penalty keeps KL small: the same updates with and without them, KL measured by klkit."""

from __future__ import annotations

import html
import tempfile
from typing import Any

import numpy as np

from klkit.lab.base import Check, LabContext, SectionResult, save_figure
from klkit.lab.sections._runs import read_metrics

D_TARG = 0.01


def _variants() -> dict[str, dict[str, Any]]:
    """The three PPO objectives compared, on the CartPole-v1 preset (20 epochs per rollout)."""
    return {
        "clipped surrogate (ε = 0.2)": dict(clip_range=0.2, anneal_clip=False),
        f"adaptive KL penalty (d_targ = {D_TARG})": dict(
            clip_range=None, kl_penalty=True, kl_target=D_TARG, kl_beta=1.0
        ),
        "neither (plain surrogate)": dict(clip_range=None),
    }


def _train(ctx: LabContext, steps: int, overrides: dict[str, Any]) -> list[dict[str, Any]]:
    """Train PPO (public ``ppo.train``, one thread) in a temporary run directory; its ``metrics.jsonl``."""
    from klkit.train import ppo

    cfg = ppo.Config.for_env(
        "CartPole-v1",
        seed=ctx.seed,
        total_steps=steps,
        anneal_lr=False,
        progress=False,
        checkpoint_every=10**6,
        threads=1,
        **overrides,
    )
    with tempfile.TemporaryDirectory(prefix="klkit-lab-ppo-") as run_dir:
        ppo.train(cfg, run_dir)
        return read_metrics(run_dir)


def _figure(runs: dict[str, list[dict[str, Any]]]) -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax_kl, ax_beta, ax_ret) = plt.subplots(1, 3, figsize=(15, 3.8))
    colors = ["tab:blue", "tab:green", "tab:red"]
    for (name, records), color in zip(runs.items(), colors, strict=True):
        steps = np.array([r["global_step"] for r in records])
        ax_kl.plot(steps, [r["kl_exact"] for r in records], color=color, lw=1, label=name)
        episodes = [(s, ret) for rec in records for s, ret in rec["episodes"]]
        if len(episodes) >= 10:
            es, er = np.array(episodes).T
            ax_ret.plot(es[9:], np.convolve(er, np.ones(10) / 10, mode="valid"), color=color, label=name)
        if "kl_beta" in records[0]:
            ax_beta.plot(steps, [r["kl_beta"] for r in records], color=color, label="β")
    for y in (D_TARG / 1.5, 1.5 * D_TARG):
        ax_kl.axhline(y, color="gray", ls=":", lw=0.8)
    ax_kl.axhline(D_TARG, color="black", ls="--", lw=0.8, label="d_targ (β band dotted)")
    ax_kl.set(
        yscale="log",
        xlabel="environment steps",
        ylabel="KL(π_old ‖ π_new) per update (nats)",
        title="KL of each update (klkit closed form)",
    )
    ax_kl.legend(fontsize=7)
    ax_beta.set(yscale="log", xlabel="environment steps", ylabel="β", title="adaptive penalty's β")
    ax_ret.set(xlabel="environment steps", ylabel="mean return of last 10 episodes", title="CartPole-v1 return")
    ax_ret.axhline(475, color="gray", ls=":")
    ax_ret.legend(fontsize=7)
    fig.tight_layout()
    return fig


def run(ctx: LabContext) -> SectionResult:
    steps = 3_072 if ctx.quick else 24_576
    runs: dict[str, list[dict[str, Any]]] = {}
    for name, overrides in _variants().items():
        ctx.progress(f"PPO, {name}: {steps:,} steps")
        runs[name] = _train(ctx, steps, overrides)
    (clip_name, clip), (pen_name, pen), (plain_name, _) = runs.items()
    kl = {name: np.array([r["kl_exact"] for r in recs]) for name, recs in runs.items()}
    med = {name: float(np.median(v)) for name, v in kl.items()}
    mx = {name: float(np.max(v)) for name, v in kl.items()}
    beta_ok = all(r["kl_beta_next"] == _rule(r["kl_beta"], r["kl_exact"]) for r in pen)
    k3_rel = float(np.median([abs(r["kl_k3"] - r["kl_exact"]) / max(r["kl_exact"], 1e-12) for r in clip]))
    first, final = _first_last(clip)
    checks = [
        Check(
            "clipping keeps the KL of an update well below the unclipped surrogate's (same 20 epochs per rollout)",
            f"median KL clipped {med[clip_name]:.4f} vs plain {med[plain_name]:.4f} nats; "
            f"max {mx[clip_name]:.4f} vs {mx[plain_name]:.4f}",
            med[clip_name] * 3 <= med[plain_name],
        ),
        Check(
            f"the adaptive penalty holds the KL near d_targ = {D_TARG} (median within [d_targ/3, 3·d_targ])",
            f"median KL = {med[pen_name]:.4f}, max = {mx[pen_name]:.4f} nats; β ended at {pen[-1]['kl_beta_next']:g}",
            D_TARG / 3 <= med[pen_name] <= 3 * D_TARG,
        ),
        Check(
            "β follows the paper's rule after every update (halve below d_targ/1.5, double above 1.5·d_targ)",
            f"{len(pen)} updates checked",
            beta_ok,
        ),
        Check(
            "the clipped run learns (mean return of the last 10 episodes)",
            f"{first:.1f} → {final:.1f}",
            final > 1.5 * first,
        ),
    ]
    path = save_figure(ctx, _figure(runs), "ppo_kl")
    rows = "".join(
        f"<tr><td>{html.escape(name)}</td><td class='num'>{med[name]:.4f}</td><td class='num'>{mx[name]:.4f}</td>"
        f"<td class='num'>{_first_last(recs)[1]:.1f}</td></tr>"
        for name, recs in runs.items()
    )
    table = (
        "<table><tr><th>objective</th><th>median KL per update</th><th>max KL</th>"
        f"<th>final return (mean 10)</th></tr>{rows}</table>"
    )
    return SectionResult(
        key="ppo",
        title="PPO's clip / penalty keeps KL small",
        claim="PPO replaces TRPO's hard constraint with a clipped surrogate, which removes the incentive to move "
        "the probability ratio outside [1−ε, 1+ε], or with a KL penalty whose weight β adapts to hold the KL "
        "near a target. Either keeps KL(π_old ‖ π_new) per update small while taking many gradient steps "
        "on the same data.",
        how=f"klkit's PPO on CartPole-v1, {steps:,} steps each (seed {ctx.seed}), 20 epochs per rollout, constant "
        "learning rate, with three objectives: clipped, adaptive KL penalty (β halves when KL < d_targ/1.5 "
        "and doubles when KL > 1.5·d_targ), and neither. KL is klkit's closed form between the old and new "
        f"Categorical policies on each rollout's states; the k3 Monte Carlo estimate of the clipped run is "
        f"within a median {k3_rel:.0%} of it.",
        checks=checks,
        figures=[path],
        tables_html=[table],
        numbers={
            "median_kl": med,
            "max_kl": mx,
            "d_targ": D_TARG,
            "steps": steps,
            "final_beta": pen[-1]["kl_beta_next"],
            "k3_median_relative_error": k3_rel,
        },
    )


def _rule(beta: float, kl: float) -> float:
    """The PPO paper's β rule (§4), written out here rather than taken from the trainer it checks."""
    if kl < D_TARG / 1.5:
        return beta / 2.0
    if kl > 1.5 * D_TARG:
        return beta * 2.0
    return beta


def _first_last(records: list[dict[str, Any]]) -> tuple[float, float]:
    values = [r["return_mean10"] for r in records if r["return_mean10"] is not None]
    return (values[0], values[-1]) if values else (float("nan"), float("nan"))
