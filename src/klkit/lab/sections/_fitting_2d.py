"""The 2-D figure of the lab's fitting section: 2-σ ellipses of the fits over a three-mode target density."""

from __future__ import annotations

import numpy as np

from klkit.lab.base import LabContext, save_figure


def _ellipse(ax: object, mean: np.ndarray, cov: np.ndarray, **kw: object) -> None:
    """Draw the 2-σ ellipse of a 2-D Gaussian."""
    vals, vecs = np.linalg.eigh(cov)
    t = np.linspace(0, 2 * np.pi, 200)
    circle = np.stack([np.cos(t), np.sin(t)])
    pts = mean[:, None] + vecs @ (2.0 * np.sqrt(vals)[:, None] * circle)
    ax.plot(pts[0], pts[1], **kw)


def figure_2d(ctx: LabContext, target: object, locs: object, fwd: object, rev: object, mix: object) -> object:
    import matplotlib.pyplot as plt
    import torch

    g = np.linspace(-8, 8, 220)
    gy = np.linspace(-6, 8, 200)
    X, Y = np.meshgrid(g, gy)
    pts = torch.from_numpy(np.stack([X.ravel(), Y.ravel()], axis=1))
    Z = np.exp(target.log_prob(pts).numpy()).reshape(X.shape)
    fig, axes = plt.subplots(1, 3, figsize=(13, 4.2), sharey=True)
    titles = [
        "forward KL, one Gaussian:\nmean-seeking",
        "reverse KL, one Gaussian per restart:\nmode-seeking",
        "forward KL, 3-component mixture\n(EM): recovers the modes",
    ]
    for ax, title in zip(axes, titles, strict=True):
        ax.contourf(X, Y, Z, levels=12, cmap="Greys")
        ax.set(title=title, xlabel="x₁", aspect="equal")
    axes[0].set_ylabel("x₂")
    q = fwd.distribution
    _ellipse(axes[0], q.mean.numpy(), q.covariance_matrix.numpy(), color="C0", lw=2)
    axes[0].plot(*q.mean.numpy(), "o", color="C0")
    for i, r in enumerate(rev.restarts):
        d = r.distribution
        on_mode = float(torch.linalg.norm(d.mean - locs[r.modes[0]])) <= 0.2
        _ellipse(
            axes[1],
            d.mean.numpy(),
            d.covariance_matrix.numpy(),
            color="C3" if on_mode else "C1",
            ls="-" if on_mode else "--",
            lw=2.5 if i == rev.best else 1.2,
            alpha=1.0 if i == rev.best else 0.7,
        )
    axes[1].plot([], [], color="C3", lw=1.2, label="restart on a mode (kept: bold)")
    axes[1].plot([], [], color="C1", ls="--", lw=1.2, label="restart stopped off the modes")
    axes[1].legend(fontsize=9, loc="upper center", bbox_to_anchor=(0.5, -0.14))
    comps = mix.distribution.component_distribution
    for m, c in zip(comps.mean.numpy(), comps.covariance_matrix.numpy(), strict=True):
        _ellipse(axes[2], m, c, color="C2", lw=2)
    fig.suptitle("2-σ ellipses of the fits over the target density (three modes)")
    return save_figure(ctx, fig, "fitting_2d")
