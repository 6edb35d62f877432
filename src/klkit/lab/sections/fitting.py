"""Forward KL is mean-seeking (mass-covering), reverse KL is mode-seeking: 1-D and 2-D fits."""

from __future__ import annotations

import html
import math
from typing import Any

import numpy as np

from klkit.lab.base import Check, LabContext, SectionResult, save_figure, torch_rng, torch_threads
from klkit.lab.sections._fitting_2d import figure_2d

_MU, _SIGMA = 3.0, 1.0  # the lesson's target: ½ N(−3, 1) + ½ N(3, 1)


def _log_target_1d(x: np.ndarray) -> np.ndarray:
    from scipy import stats

    return np.logaddexp(stats.norm.logpdf(x, -_MU, _SIGMA), stats.norm.logpdf(x, _MU, _SIGMA)) + math.log(0.5)


def _quadrature_truth() -> dict[str, float]:
    """Independent truth by numerical integration on a fine grid (numpy/scipy only, no klkit, no sampling)."""
    from scipy import optimize, stats

    x = np.linspace(-16.0, 16.0, 64_001)
    dx = x[1] - x[0]
    logp = _log_target_1d(x)
    p = np.exp(logp)
    mean = float(np.sum(p * x) * dx)
    std = float(math.sqrt(np.sum(p * (x - mean) ** 2) * dx))

    def forward(m: float, s: float) -> float:
        return float(np.sum(p * (logp - stats.norm.logpdf(x, m, s))) * dx)

    def reverse(theta: np.ndarray) -> float:
        lq = stats.norm.logpdf(x, theta[0], math.exp(theta[1]))
        return float(np.sum(np.exp(lq) * (lq - logp)) * dx)

    opt = optimize.minimize(reverse, [2.5, 0.3], method="Nelder-Mead", options={"xatol": 1e-7, "fatol": 1e-12})
    # the symmetric stationary point: mean 0 by symmetry, best std (a local minimum of the reverse KL)
    bridge = optimize.minimize_scalar(lambda ls: reverse(np.array([0.0, ls])), bounds=(0.0, 2.0), method="bounded")
    return {
        "mean": mean,
        "std": std,
        "forward_kl_at_moment_match": forward(mean, std),
        "reverse_kl_at_moment_match": reverse(np.array([mean, math.log(std)])),
        "reverse_opt_mean": float(abs(opt.x[0])),
        "reverse_opt_std": float(math.exp(opt.x[1])),
        "reverse_opt_kl": float(opt.fun),
        "bridge_std": float(math.exp(bridge.x)),
        "bridge_kl": float(bridge.fun),
    }


def _classify(mean: float, std: float, truth: dict[str, float]) -> str:
    """Which stationary point of the reverse KL a 1-D fit ended at."""
    if abs(abs(mean) - truth["reverse_opt_mean"]) <= 0.1 and abs(std - truth["reverse_opt_std"]) <= 0.05:
        return f"mode {'−3' if mean < 0 else '+3'}"
    if abs(mean) <= 0.2 and abs(std - truth["bridge_std"]) <= 0.1:
        return "local optimum spanning both modes"
    return "not converged"


def _fmt(e: object) -> str:
    """An Estimate as 'v ± se', a tensor/float as 'v (closed form)'."""
    if hasattr(e, "standard_error"):
        return f"{e.value:.4f} ± {e.standard_error:.4f}"
    return f"{float(e):.4f} (closed form)"


def run(ctx: LabContext) -> SectionResult:
    """The section; torch's global generator (drawn from by ``mass_covered``) is seeded and restored."""
    from threadpoolctl import threadpool_limits  # a dependency of scikit-learn

    with torch_rng(ctx.seed), torch_threads(1), threadpool_limits(1):  # one thread: faster for small arrays
        return _run(ctx)


def _run(ctx: LabContext) -> SectionResult:
    import matplotlib.pyplot as plt
    import torch
    from torch.distributions import Categorical, MixtureSameFamily, MultivariateNormal, Normal

    from klkit.fitting import fit, mass_covered

    steps, restarts = (200, 4) if ctx.quick else (600, 8)
    steps_2d, restarts_2d = (200, 4) if ctx.quick else (400, 6)
    n_eval = 50_000 if ctx.quick else 200_000

    # ---- 1-D: the lesson's bimodal target ---------------------------------------------------------
    # validate_args=False: the parameters are valid by construction, and the checks cost a third of the time
    target = MixtureSameFamily(
        Categorical(torch.tensor([0.5, 0.5], dtype=torch.float64), validate_args=False),
        Normal(torch.tensor([-_MU, _MU], dtype=torch.float64), torch.tensor(_SIGMA).double(), validate_args=False),
        validate_args=False,
    )
    ctx.progress("1-D forward fit (moment matching)")
    fwd = fit(target, divergence="forward", seed=ctx.seed, eval_samples=n_eval)
    ctx.progress(f"1-D reverse fit, {restarts} restarts × {steps} Adam steps")
    rev = fit(target, divergence="reverse", restarts=restarts, steps=steps, seed=ctx.seed + 1, eval_samples=n_eval)
    truth = _quadrature_truth()
    f_mean, f_std = float(fwd.distribution.mean), float(fwd.distribution.stddev)
    r_mean, r_std = float(rev.distribution.mean), float(rev.distribution.stddev)
    cover_f = mass_covered(target, fwd.distribution, n_samples=n_eval)
    cover_r = mass_covered(target, rev.distribution, n_samples=n_eval)
    restart_means = [r.means[0][0] for r in rev.restarts]
    restart_stds = [float(r.distribution.stddev) for r in rev.restarts]
    kinds = [_classify(m, sd, truth) for m, sd in zip(restart_means, restart_stds, strict=True)]
    counts = {k: kinds.count(k) for k in dict.fromkeys(kinds)}

    sqrt10 = math.sqrt(10.0)
    fkl_f, rkl_f, fkl_r, rkl_r = fwd.forward_kl, fwd.reverse_kl, rev.forward_kl, rev.reverse_kl
    z_fwd = (fkl_f.value - truth["forward_kl_at_moment_match"]) / fkl_f.standard_error
    checks = [
        Check(
            "forward fit: mean 0 ± 0.05", f"mean = {f_mean:+.4f} (quadrature {truth['mean']:+.4f})", abs(f_mean) <= 0.05
        ),
        Check(
            "forward fit: standard deviation √10 = 3.1623 within 2%",
            f"std = {f_std:.4f} ({100 * (f_std / sqrt10 - 1):+.2f}%)",
            abs(f_std / sqrt10 - 1) <= 0.02,
        ),
        Check(
            "reverse fit: mean ±3 within 0.1",
            f"mean = {r_mean:+.4f} (quadrature optimum ±{truth['reverse_opt_mean']:.4f})",
            abs(abs(r_mean) - _MU) <= 0.1,
        ),
        Check(
            "reverse fit: standard deviation 1 within 5%",
            f"std = {r_std:.4f} ({100 * (r_std - 1):+.2f}%; quadrature optimum {truth['reverse_opt_std']:.4f})",
            abs(r_std - 1) <= 0.05,
        ),
        Check(
            f"every reverse restart ends at a stationary point of the reverse KL ({restarts} restarts): one mode, or "
            f"the local optimum spanning both (mean 0, std {truth['bridge_std']:.3f}, KL {truth['bridge_kl']:.4f} "
            f"> {truth['reverse_opt_kl']:.4f}); the kept (lowest-loss) restart is on a mode",
            "; ".join(f"{k}: {v}" for k, v in counts.items()) + f"; kept: {kinds[rev.best]}",
            "not converged" not in counts and kinds[rev.best].startswith("mode"),
        ),
        Check(
            "mass covered (target mass inside q's 95% region): forward ≈ all, reverse ≈ one mode (≈ 47.5%)",
            f"forward {100 * cover_f.value:.2f}%, reverse {100 * cover_r.value:.2f}%",
            cover_f.value >= 0.99 and 0.40 <= cover_r.value <= 0.55,
        ),
        Check(
            "forward KL(p‖q) at the forward fit agrees with quadrature (within 4 SE + 0.01)",
            f"{_fmt(fkl_f)} vs {truth['forward_kl_at_moment_match']:.4f} nats (z = {z_fwd:+.1f})",
            abs(fkl_f.value - truth["forward_kl_at_moment_match"]) <= 4 * fkl_f.standard_error + 0.01,
        ),
        Check(
            "reverse KL(q‖p) at the reverse fit agrees with the quadrature optimum (within 4 SE + 0.005)",
            f"{_fmt(rkl_r)} vs {truth['reverse_opt_kl']:.4f} nats",
            abs(rkl_r.value - truth["reverse_opt_kl"]) <= 4 * rkl_r.standard_error + 0.005,
        ),
        Check(
            "each fit wins its own objective: KL(p‖q_fwd) < KL(p‖q_rev) and KL(q_rev‖p) < KL(q_fwd‖p)",
            f"forward KL {fkl_f.value:.3f} < {fkl_r.value:.3f}; reverse KL {rkl_r.value:.3f} < {rkl_f.value:.3f}",
            fkl_f.value < fkl_r.value and rkl_r.value < rkl_f.value,
        ),
    ]

    # figure 1-D
    x = np.linspace(-9, 9, 800)
    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(12, 4.4), gridspec_kw={"width_ratios": [1.6, 1]})
    ax.fill_between(x, np.exp(_log_target_1d(x)), color="0.85", label="target p = ½N(−3,1) + ½N(3,1)")
    ax.plot(
        x,
        np.exp(fwd.distribution.log_prob(torch.from_numpy(x)).numpy()),
        color="C0",
        lw=2,
        label=f"forward KL(p‖q): N({f_mean:.2f}, {f_std:.2f}²)",
    )
    styles = {  # a restart is drawn by where it ended, so one stuck between the modes does not pass for a mode fit
        "mode": dict(color="C3", lw=1.6, ls="-"),
        "local optimum spanning both modes": dict(color="C1", lw=1.6, ls="--"),
        "not converged": dict(color="0.5", lw=1.0, ls=":"),
    }

    def style(kind: str) -> dict[str, Any]:
        return styles["mode" if kind.startswith("mode") else kind]

    labelled: set[str] = set()
    for m, sd, kind in zip(restart_means, restart_stds, kinds, strict=True):
        key = "mode" if kind.startswith("mode") else kind
        label = None
        if key not in labelled:
            labelled.add(key)
            label = {
                "mode": "reverse KL(q‖p): restart on a mode",
                "local optimum spanning both modes": "reverse KL: restart stuck between the modes (local optimum)",
                "not converged": "reverse KL: restart not converged",
            }[key]
        ax.plot(x, np.exp(Normal(m, sd).log_prob(torch.from_numpy(x)).numpy()), alpha=0.85, label=label, **style(kind))
    ax.set(xlabel="x", ylabel="density")
    ax.set_title("Forward = mean-seeking, reverse = mode-seeking", fontsize=11)
    ax.legend(fontsize=9, loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=2)
    for r, kind in zip(rev.restarts, kinds, strict=True):
        ax2.plot(r.trace, alpha=0.6, **{**style(kind), "lw": 0.7})
    ax2.axhline(truth["reverse_opt_kl"], color="k", ls=":", lw=1, label=f"on a mode: {truth['reverse_opt_kl']:.3f}")
    ax2.axhline(truth["bridge_kl"], color="C1", ls="--", lw=1, label=f"between the modes: {truth['bridge_kl']:.3f}")
    ax2.set(xlabel="Adam step", ylabel="reverse KL (mini-batch)", ylim=(0, 3))
    ax2.set_title("Reverse-KL training, all restarts", fontsize=11)
    ax2.legend(fontsize=9, title="optimum (quadrature)", title_fontsize=9)
    fig_1d = save_figure(ctx, fig, "fitting_1d")

    rows = "".join(
        f'<tr><td class="num">{r.index}</td><td class="num">{m:+.3f}</td><td class="num">{s:.3f}</td>'
        f'<td>{html.escape(kind)}</td><td class="num">{r.loss:.4f}</td>'
        f"<td>{'kept' if r.index == rev.best else ''}</td></tr>"
        for r, m, s, kind in zip(rev.restarts, restart_means, restart_stds, kinds, strict=True)
    )
    table_1d = (
        "<table><tr><th>reverse restart</th><th>mean</th><th>std</th><th>ended at</th>"
        f"<th>final reverse KL</th><th></th></tr>{rows}</table>"
    )
    table_kl = (
        "<table><tr><th>fit</th><th>forward KL(p‖q)</th><th>reverse KL(q‖p)</th><th>target mass covered</th>"
        "<th>method</th></tr>"
        f"<tr><td>forward</td><td>{_fmt(fkl_f)}</td><td>{_fmt(rkl_f)}</td><td>{100 * cover_f.value:.2f}%</td>"
        f"<td>{html.escape(fwd.method)}</td></tr>"
        f"<tr><td>reverse</td><td>{_fmt(fkl_r)}</td><td>{_fmt(rkl_r)}</td><td>{100 * cover_r.value:.2f}%</td>"
        f"<td>{html.escape(rev.method)}</td></tr></table>"
    )

    # ---- 2-D: three well-separated modes ------------------------------------------------------------
    locs = torch.tensor([[-4.0, -2.0], [4.0, -2.0], [0.0, 4.0]], dtype=torch.float64)
    covs = torch.tensor(
        [[[1.0, 0.5], [0.5, 1.0]], [[1.0, -0.5], [-0.5, 1.0]], [[1.5, 0.0], [0.0, 0.5]]], dtype=torch.float64
    )
    weights = torch.tensor([0.3, 0.3, 0.4], dtype=torch.float64)
    target2 = MixtureSameFamily(
        Categorical(weights, validate_args=False),
        MultivariateNormal(locs, covs, validate_args=False),
        validate_args=False,
    )
    ctx.progress("2-D forward Gaussian and 3-component mixture (EM)")
    fwd2 = fit(target2, divergence="forward", seed=ctx.seed, eval_samples=n_eval)
    mix2 = fit(
        target2,
        family="gaussian_mixture",
        components=3,
        divergence="forward",
        seed=ctx.seed,
        n_samples=20_000,
        restarts=3,
        eval_samples=n_eval,
    )
    ctx.progress(f"2-D reverse fit, {restarts_2d} restarts × {steps_2d} Adam steps")
    rev2 = fit(
        target2, divergence="reverse", restarts=restarts_2d, steps=steps_2d, seed=ctx.seed + 2, eval_samples=n_eval
    )
    cover_f2 = mass_covered(target2, fwd2.distribution, n_samples=n_eval)
    cover_r2 = mass_covered(target2, rev2.distribution, n_samples=n_eval)
    mode_of_rev2 = rev2.restarts[rev2.best].modes[0]
    near = float(torch.linalg.norm(rev2.distribution.mean - locs[mode_of_rev2]))
    rev2_modes = sorted({r.modes[0] for r in rev2.restarts})
    # well-separated modes: sitting on mode k gives reverse KL ≈ −log w_k (q ≈ that component, p ≈ w_k · it there)
    on_mode = [
        (r, -math.log(float(weights[r.modes[0]])))
        for r in rev2.restarts
        if float(torch.linalg.norm(r.distribution.mean - locs[r.modes[0]])) <= 0.2
    ]
    worst_2d = max((abs(r.loss - ref) for r, ref in on_mode), default=math.inf)
    mix_modes = sorted(mix2.restarts[mix2.best].modes)
    checks += [
        Check(
            "2-D forward Gaussian covers the target (mass inside its 95% region ≥ 99%)",
            f"{100 * cover_f2.value:.2f}%",
            cover_f2.value >= 0.99,
        ),
        Check(
            "2-D reverse Gaussian sits on a single mode (mean within 0.2 of a mode, covers < 45% of the mass)",
            f"distance to mode {mode_of_rev2} = {near:.3f}; covers {100 * cover_r2.value:.1f}%; modes found by "
            f"the {restarts_2d} restarts: {rev2_modes}",
            near <= 0.2 and cover_r2.value < 0.45,
        ),
        Check(
            "2-D reverse restarts on a mode k reach reverse KL = −log w_k (−log 0.3 = 1.204, −log 0.4 = 0.916)",
            f"{len(on_mode)}/{len(rev2.restarts)} restarts on a mode; worst |KL − (−log w_k)| = {worst_2d:.4f}",
            len(on_mode) >= 1 and worst_2d <= 0.02,
        ),
        Check(
            "2-D forward 3-component mixture (EM) recovers all three modes, KL(p‖q) < 0.01",
            f"modes {mix_modes}; KL(p‖q) = {_fmt(mix2.forward_kl)}",
            mix_modes == [0, 1, 2] and mix2.forward_kl.value < 0.01,
        ),
    ]
    fig_2d = figure_2d(ctx, target2, locs, fwd2, rev2, mix2)

    return SectionResult(
        key="fitting",
        title="Forward KL is mean-seeking, reverse KL is mode-seeking",
        claim="Fitting one Gaussian q to a bimodal target p: minimising the forward KL(p‖q) (maximum likelihood) "
        "spreads q over both modes, mean 0 and std √10; minimising the reverse KL(q‖p) locks q onto one mode, "
        "mean ±3 and std 1.",
        how=f"klkit.fitting.fit on ½N(−3,1) + ½N(3,1): forward by {fwd.method}; reverse by "
        f"reparameterised Adam, {restarts} restarts × {steps} steps. KL at each optimum "
        f"estimated with klkit (Monte Carlo, {n_eval:,} samples) and compared with numerical integration; mass "
        "covered = target samples inside q's 95% highest-density region. Then a 2-D target with three modes.",
        checks=checks,
        figures=[fig_1d, fig_2d],
        intuition="When a simple q must approximate a p it cannot match, the direction of the KL decides the "
        "compromise. Forward KL(p‖q) = E_p[log p/q] averages over p's samples and explodes wherever p has mass "
        "and q has almost none, so q stretches to cover every mode — mean-seeking, and the same as maximum "
        "likelihood on samples of p. Reverse KL(q‖p) = E_q[log q/p] averages over q's own samples and explodes "
        "wherever q puts mass p lacks, so q retreats into one mode and ignores the rest — mode-seeking. "
        "Variational inference minimises the reverse KL (it can sample q, not p), which is why it typically "
        "finds one mode of a multimodal posterior and underestimates its spread; and its loss surface has a "
        "local optimum between the modes, where restarts can stop ([move q and watch both losses](#modes)).",
        example="p = ½N(−3, 1) + ½N(3, 1) has mean 0 and variance 1 + 3² = 10. The forward-KL Gaussian matches "
        "these moments: N(0, 10), std √10 = 3.16. The reverse-KL Gaussian sits on one mode, N(±3, 1); there "
        "q ≈ one component and p ≈ ½ of it, so KL(q‖p) ≈ −ln ½ = ln 2 = 0.693 nats.",
        captions={
            fig_1d.name: "Left: the forward fit (blue) spreads over both modes and puts its peak where p has "
            "almost no mass; each reverse restart on a mode (red) hugs one peak. A restart that ended between "
            "the modes (orange dashes, when there is one) is a local optimum of the reverse KL, not a mode fit: "
            "its KL is higher. Right: the reverse KL during training for every restart, settling at the "
            "on-mode optimum ln 2 ≈ 0.69 (dotted) or the between-modes one (orange dashes).",
            fig_2d.name: "Three well-separated modes (grey). A single forward-KL Gaussian (left) covers all "
            "three with one wide ellipse; reverse-KL Gaussians (middle, one per restart, the kept one bold) "
            "each lock onto one mode (red), unless a restart stopped at a local optimum off the modes (orange "
            "dashes); a forward-KL mixture of three Gaussians (right) has enough components to "
            "cover the modes one each.",
        },
        tables_html=[table_kl, table_1d],
        numbers={
            "forward_mean": f_mean,
            "forward_std": f_std,
            "reverse_mean": r_mean,
            "reverse_std": r_std,
            "reverse_restart_means": restart_means,
            "reverse_restart_stds": restart_stds,
            "forward_fit_forward_kl": fkl_f,
            "forward_fit_reverse_kl": rkl_f,
            "reverse_fit_forward_kl": fkl_r,
            "reverse_fit_reverse_kl": rkl_r,
            "mass_covered_forward": cover_f.value,
            "mass_covered_reverse": cover_r.value,
            "quadrature": truth,
            "two_d": {
                "mass_covered_forward": cover_f2.value,
                "mass_covered_reverse": cover_r2.value,
                "reverse_modes_found": rev2_modes,
                "mixture_modes": mix_modes,
                "mixture_forward_kl": mix2.forward_kl,
            },
        },
    )
