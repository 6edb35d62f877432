"""The P/Q explorer: move P and Q on 2 or 3 outcomes and read H(P), H(P,Q), KL(P‖Q), KL(Q‖P), computed by klkit."""

from __future__ import annotations

import math

import numpy as np

import klkit
from klkit.lab.explore import Control, Explorable, fmt_nats, frame

CAP = 3.0  # nats: the quantities' axis; +∞ is drawn as a full red bar labelled ∞
NAMES = ["H(P)", "H(P, Q)", "KL(P‖Q)", "KL(Q‖P)"]
COLOURS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd"]


def _values(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    """(n, 4): H(P), H(P,Q), KL(P‖Q), KL(Q‖P) in nats for rows of p and q, each by klkit."""
    return np.stack(
        [klkit.entropy(p), klkit.cross_entropy(p, q), klkit.kl_divergence(p, q), klkit.kl_divergence(q, p)], axis=-1
    )


def _figure(k: int):
    from plotly.subplots import make_subplots

    outcomes = [f"outcome {i + 1}" for i in range(k)]
    fig = make_subplots(
        rows=1, cols=2, column_widths=[0.45, 0.55], subplot_titles=("P and Q", "the four quantities (nats)")
    )
    fig.add_bar(x=outcomes, y=[0.0] * k, name="P", marker_color="#1f77b4", row=1, col=1)
    fig.add_bar(x=outcomes, y=[0.0] * k, name="Q", marker_color="#ff7f0e", row=1, col=1)
    fig.add_bar(
        x=NAMES,
        y=[0.0] * 4,
        text=[""] * 4,
        textposition="outside",
        marker_color=COLOURS,
        showlegend=False,
        row=1,
        col=2,
    )
    fig.update_yaxes(range=[0, 1.05], title_text="probability", row=1, col=1)
    fig.update_yaxes(range=[0, CAP * 1.15], title_text="nats", row=1, col=2)
    fig.update_layout(height=360, margin={"t": 40, "b": 30, "l": 50, "r": 10}, barmode="group")
    return fig


def _frame(p: np.ndarray, q: np.ndarray, v: np.ndarray) -> dict:
    heights = [CAP if math.isinf(x) else min(float(x), CAP) for x in v]
    text = ["+∞" if math.isinf(x) else f"{x:.3f}" + ("↑" if x > CAP else "") for x in v]
    colours = ["#d62728" if math.isinf(x) else c for x, c in zip(v, COLOURS, strict=True)]
    notes = []
    if math.isinf(v[2]):
        notes.append("KL(P‖Q) = +∞: Q gives probability 0 to an outcome P can produce.")
    if math.isinf(v[3]):
        notes.append("KL(Q‖P) = +∞: P gives probability 0 to an outcome Q can produce.")
    fmt = "(" + ", ".join(f"{x:.2f}" for x in p) + ")"
    fmt_q = "(" + ", ".join(f"{x:.2f}" for x in q) + ")"
    return frame(
        [
            ({"y": [list(map(float, p)), list(map(float, q))]}, [0, 1]),
            ({"y": [heights], "text": [text], "marker.color": [colours]}, [2]),
        ],
        {
            "p": fmt,
            "q": fmt_q,
            "h": fmt_nats(v[0]),
            "ce": fmt_nats(v[1]),
            "kl_pq": fmt_nats(v[2]),
            "kl_qp": fmt_nats(v[3]),
        },
        note=" ".join(notes),
    )


READOUTS = [
    ("p", "P"),
    ("q", "Q"),
    ("h", "H(P)"),
    ("ce", "H(P, Q)"),
    ("kl_pq", "KL(P‖Q)"),
    ("kl_qp", "KL(Q‖P)"),
]


def two_outcomes() -> tuple[Explorable, np.ndarray]:
    """P = (p, 1 − p), Q = (q, 1 − q) on a 0.05 grid: 441 frames. Returns the explorable and the (441, 4) values."""
    grid = np.round(np.linspace(0.0, 1.0, 21), 10)
    pp, qq = np.meshgrid(grid, grid, indexing="ij")
    p = np.stack([pp.ravel(), 1 - pp.ravel()], axis=-1)
    q = np.stack([qq.ravel(), 1 - qq.ravel()], axis=-1)
    values = _values(p, q)
    frames = {}
    for n, (i, j) in enumerate(np.ndindex(pp.shape)):
        frames[f"{i}-{j}"] = _frame(p[n], q[n], values[n])
    steps = [f"{x:.2f}" for x in grid]
    explorable = Explorable(
        key="pq2",
        title="P and Q on two outcomes (a coin)",
        figure=_figure(2),
        controls=[Control("p1", "P(outcome 1)", steps, 10), Control("q1", "Q(outcome 1)", steps, 18)],
        readouts=READOUTS,
        frames=frames,
        caption="Start: the lesson's fair coin P against the 0.9-coin Q: KL(P‖Q) = 0.511 and KL(Q‖P) = 0.368 nats, "
        "two different numbers. Slide Q to 1.00: Q then says outcome 2 never happens, P still produces it, and "
        "KL(P‖Q) turns +∞ while KL(Q‖P) stays finite. Set Q = P: both KLs are 0 and H(P, Q) = H(P).",
    )
    return explorable, values


def three_outcomes() -> tuple[Explorable, np.ndarray]:
    """P = (p₁, p₂, 1 − p₁ − p₂) and Q likewise on a 0.1 grid; combinations with p₁ + p₂ > 1 have no frame."""
    ticks = np.round(np.linspace(0.0, 1.0, 11), 10)
    simplex = [(i, j) for i in range(11) for j in range(11) if i + j <= 10]
    pts = np.array([[ticks[i], ticks[j], max(0.0, round(1 - ticks[i] - ticks[j], 10))] for i, j in simplex])
    a, b = np.meshgrid(np.arange(len(simplex)), np.arange(len(simplex)), indexing="ij")
    values = _values(pts[a.ravel()], pts[b.ravel()])
    frames = {}
    for n, (x, y) in enumerate(zip(a.ravel(), b.ravel(), strict=True)):
        (i, j), (k, m) = simplex[x], simplex[y]
        frames[f"{i}-{j}-{k}-{m}"] = _frame(pts[x], pts[y], values[n])
    steps = [f"{x:.1f}" for x in ticks]
    explorable = Explorable(
        key="pq3",
        title="P and Q on three outcomes",
        figure=_figure(3),
        controls=[
            Control("p1", "P(1)", steps, 2),
            Control("p2", "P(2)", steps, 3),
            Control("q1", "Q(1)", steps, 6),
            Control("q2", "Q(2)", steps, 2),
        ],
        readouts=READOUTS,
        frames=frames,
        missing="P(1) + P(2) or Q(1) + Q(2) is above 1: that is not a distribution (outcome 3 gets the rest).",
        caption="Outcome 3 gets what outcomes 1 and 2 leave. Make one outcome rare under Q but common under P: "
        "KL(P‖Q) grows fast, KL(Q‖P) much less, because each KL weighs the log-ratio by its first argument. "
        "Set Q(1) + Q(2) = 1 while P(3) > 0: KL(P‖Q) is +∞.",
    )
    return explorable, values
