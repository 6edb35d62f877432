"""Why TRPO's KL budget keeps its importance-sampling correction reliable, measured on a trained TRPO policy.

TRPO estimates how a new policy π_new would do from actions drawn by the old one, weighting each by
w = π_new(a|s) / π_old(a|s). The weights average 1 whatever the step; their spread is what grows:
Var_old(w) = E_s[χ²(π_new(·|s) ‖ π_old(·|s))] ≈ 2·KL(π_old‖π_new) for small steps, and the effective
sample size (Σw)² / Σw² falls from n. Here the natural-gradient direction of one TRPO step from the
trained policy is scaled, as TRPO scales it, for a range of budgets δ', and the weights of every
step are measured on the same rollout — with klkit.train's public pieces (``rl.Run``, ``rl.gae``,
``rl.flatten_rollout``, ``trpo.surrogate_and_kl``, ``trpo.fisher_operator``, ``trpo.conjugate_gradient``,
``trpo.scale_to_trust_region``).
"""

from __future__ import annotations

import os
from typing import Any

BUDGETS = (1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 0.1, 0.3, 1.0)


def importance_weights(cfg: Any, run_dir: str | os.PathLike[str], budgets: tuple[float, ...] = BUDGETS) -> dict:
    """Steps of growing KL from the trained policy in ``run_dir``; per step the spread of w = π_new/π_old.

    Returns
    -------
    dict
        ``steps``: one dict per budget δ' with ``budget``, ``kl`` (exact mean KL(π_old‖π_new), klkit),
        ``chi2`` (exact mean χ²(π_new‖π_old) = Var_old(w)), ``variance`` (sample variance of w) and its
        standard error ``variance_se`` (from the fourth central moment),
        ``ess`` (effective sample size / n), ``max_weight``; ``samples``: n.
    """
    import torch
    from torch.nn.utils import parameters_to_vector, vector_to_parameters

    import klkit
    from klkit.train import rl, trpo

    with rl.run_scope(1):
        run = rl.Run(cfg, run_dir, "trpo")
        critic = torch.optim.Adam(run.policy.critic.parameters(), lr=cfg.critic_learning_rate)
        run.resume({"critic": critic})  # the trained policy, from checkpoint.pt
        last_value = run.collect_rollout()  # a fresh rollout of π_old
        adv, ret = rl.gae(
            run.buffer.rewards, run.buffer.values, run.buffer.dones, last_value, cfg.gamma, cfg.gae_lambda
        )
        batch = rl.flatten_rollout(run.buffer, adv, ret, run.device)
        policy = run.policy
        params = list(policy.actor_parameters())
        surrogate, mean_kl = trpo.surrogate_and_kl(policy, batch, normalize_advantage=cfg.normalize_advantage)
        g = torch.cat([x.reshape(-1) for x in torch.autograd.grad(surrogate(), params)])
        fvp = trpo.fisher_operator(mean_kl, params, damping=cfg.cg_damping)
        direction = trpo.conjugate_gradient(fvp, g, max_steps=cfg.cg_steps)
        theta_old = parameters_to_vector(params).detach().clone()
        old = policy.make_distribution(batch["dist_params"])
        steps = []
        for budget in budgets:
            step = trpo.scale_to_trust_region(direction, fvp, budget)
            with torch.no_grad():
                vector_to_parameters(theta_old + step, params)
                new = policy.distribution(batch["obs"])
                w = torch.exp(new.log_prob(batch["actions"]) - batch["log_probs"]).double()
                chi2 = (new.probs.double() ** 2 / old.probs.double()).sum(-1) - 1
                steps.append(
                    {
                        "budget": budget,
                        "kl": float(klkit.kl_divergence(old, new).mean()),
                        "chi2": float(chi2.mean()),
                        "variance": float(w.var()),
                        "variance_se": float(torch.sqrt(((w - w.mean()) ** 4).mean() - w.var() ** 2) / len(w) ** 0.5),
                        "mean_weight": float(w.mean()),
                        "ess": float(w.sum() ** 2 / (w.square().sum() * len(w))),
                        "max_weight": float(w.max()),
                    }
                )
        with torch.no_grad():
            vector_to_parameters(theta_old, params)
    return {"steps": steps, "samples": len(batch["actions"])}


def figure(ctx: Any, result: dict, max_kl: float) -> Any:
    """Spread of the importance weights against the KL of the step, with the budget δ marked."""
    import matplotlib.pyplot as plt
    import numpy as np

    from klkit.lab.base import save_figure

    steps = result["steps"]
    kl = np.array([s["kl"] for s in steps])
    fig, (spread, ess) = plt.subplots(1, 2, figsize=(11, 4.0))
    spread.plot(kl, [s["variance"] for s in steps], "o", color="C0", label="Var(w), sampled")
    spread.plot(kl, [s["chi2"] for s in steps], "-", color="C0", lw=1, label="exact E_s χ²(π_new‖π_old)")
    spread.plot(kl, 2 * kl, "k:", lw=1, label="2·KL (small-step expansion)")
    spread.axvline(max_kl, color="crimson", ls="--", label=f"budget δ = {max_kl:g}")
    spread.set(xscale="log", yscale="log", xlabel="KL(π_old ‖ π_new) of the step (nats)", ylabel="variance of w")
    spread.set_title("Importance weights w = π_new/π_old spread out", fontsize=11)
    spread.legend(fontsize=9)
    spread.grid(alpha=0.3)
    ess.plot(kl, [100 * s["ess"] for s in steps], "o-", color="C2", label="effective sample size (% of n)")
    ess.axvline(max_kl, color="crimson", ls="--", label=f"budget δ = {max_kl:g}")
    ess.set(xscale="log", ylim=(0, 105), xlabel="KL(π_old ‖ π_new) of the step (nats)", ylabel="% of the rollout")
    ess.set_title(f"…and the rollout's {result['samples']:,} actions count for fewer", fontsize=11)
    right = ess.twinx()
    right.plot(kl, [s["max_weight"] for s in steps], "s--", color="C1", label="largest weight")
    right.set_ylabel("largest weight w", color="C1")
    lines = ess.get_legend_handles_labels()
    more = right.get_legend_handles_labels()
    ess.legend(lines[0] + more[0], lines[1] + more[1], fontsize=9, loc="center left")
    ess.grid(alpha=0.3)
    fig.tight_layout()
    return save_figure(ctx, fig, "trpo_importance_weights")
