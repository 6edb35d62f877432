"""Distilling a language model: forward KL covers, reverse KL seeks modes; and Hinton's soft targets.

(a) A character-level teacher (an MLP over the last characters, trained here on the docstrings of a
fixed list of standard-library modules) is distilled into a smaller student three ways with
:func:`klkit.distill.divergence_loss`: forward KL(teacher‖student) on the text, reverse KL on the
student's own samples (on-policy), and the symmetric JSD on half of each. (b) Hinton distillation on
sklearn's digits: a small MLP trained on a large MLP's softened outputs (T² scaling) against the same
small MLP trained on the labels.
"""

from __future__ import annotations

import html
import random
from typing import Any

import numpy as np

from klkit.lab.base import Check, LabContext, SectionResult, save_figure, torch_rng, torch_threads
from klkit.lab.sections._charlm import FULL, QUICK, STUDENT_CONTEXT, TEACHER_CONTEXT, Budget, language_demo
from klkit.lab.sections._corpus import CHARS, MODULES, corpus

__all__ = ["CHARS", "FULL", "MODULES", "QUICK", "STUDENT_CONTEXT", "TEACHER_CONTEXT", "Budget", "corpus", "run"]


# ---------------------------------------------------------------------------
# (b) Hinton distillation on digits
# ---------------------------------------------------------------------------


def digits_demo(
    seeds: list[int], steps: int, lr: float, temperature: float = 4.0, alpha: float = 0.9
) -> dict[str, Any]:
    """Per seed: a 64-256-10 teacher and two 64-16-10 students (ReLU) on 20% of the digits, full-batch Adam
    (``steps`` at learning rate ``lr`` for each).

    The hard-label student minimises the cross-entropy; the distilled one
    (1 − α)·CE + α·T²·KL(softmax(z_t/T) ‖ softmax(z_s/T)), α = 0.9, T = 4, same steps and learning rate.
    Test accuracy and NLL on the other 80%.
    """
    import torch
    import torch.nn as nn
    import torch.nn.functional as F  # noqa: N812 (torch's convention)
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    from klkit.distill import divergence_loss

    X, y = load_digits(return_X_y=True)
    X = X / 16.0

    def mlp(hidden: int, seed: int) -> Any:
        with torch_rng(seed):
            return nn.Sequential(nn.Linear(64, hidden), nn.ReLU(), nn.Linear(hidden, 10))

    def fit(model: Any, x: Any, labels: Any, teacher: Any = None, weight_decay: float = 0.0) -> Any:
        opt = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)
        soft = None if teacher is None else teacher(x).detach()
        for _ in range(steps):
            z = model(x)
            loss = F.cross_entropy(z, labels)
            if soft is not None:
                loss = (1 - alpha) * loss + alpha * divergence_loss(
                    z, soft, temperature=temperature, temperature_scaling=True
                )
            opt.zero_grad()
            loss.backward()
            opt.step()
        return model

    rows, n_train = [], 0
    for seed in seeds:
        x_tr, x_te, y_tr, y_te = train_test_split(X, y, train_size=0.2, random_state=seed, stratify=y)
        x_tr, x_te = torch.tensor(x_tr, dtype=torch.float32), torch.tensor(x_te, dtype=torch.float32)
        y_tr, y_te = torch.tensor(y_tr), torch.tensor(y_te)
        n_train = len(y_tr)
        teacher = fit(mlp(256, seed), x_tr, y_tr, weight_decay=1e-3)
        row = {"seed": seed}
        for name, model in (
            ("teacher", teacher),
            ("hard", fit(mlp(16, seed + 100), x_tr, y_tr)),
            ("distilled", fit(mlp(16, seed + 100), x_tr, y_tr, teacher=teacher)),
        ):
            with torch.no_grad():
                z = model(x_te)
            row[name] = {
                "accuracy": float((z.argmax(1) == y_te).float().mean()),
                "nll": float(F.cross_entropy(z, y_te)),
            }
        rows.append(row)
    mean = {
        name: {m: float(np.mean([r[name][m] for r in rows])) for m in ("accuracy", "nll")}
        for name in ("teacher", "hard", "distilled")
    }
    return {
        "n_train": n_train,
        "n_test": len(y) - n_train,
        "temperature": temperature,
        "alpha": alpha,
        "seeds": rows,
        "mean": mean,
    }


# ---------------------------------------------------------------------------
# The section
# ---------------------------------------------------------------------------


def run(ctx: LabContext) -> SectionResult:
    """The section. torch's global generator (model initialisation) is seeded and restored, and so is
    Python's, which the first imports of matplotlib and sklearn.datasets draw from."""
    python_state = random.getstate()
    try:
        with torch_threads(1), torch_rng(ctx.seed):
            return _run(ctx)
    finally:
        random.setstate(python_state)


def _run(ctx: LabContext) -> SectionResult:
    import matplotlib.pyplot as plt

    budget = QUICK if ctx.quick else FULL
    lm = language_demo(ctx, budget)
    ctx.progress(f"Hinton distillation on digits, {budget.digit_seeds} seeds")
    dig = digits_demo(list(range(ctx.seed, ctx.seed + budget.digit_seeds)), budget.digit_steps, budget.digit_lr)

    f, r, j = lm["forward_kl"], lm["reverse_kl"], lm["jsd"]

    def between(key: str) -> bool:
        return min(f[key], r[key]) < j[key] < max(f[key], r[key])

    hard, soft = dig["mean"]["hard"], dig["mean"]["distilled"]
    nll_wins = sum(s["distilled"]["nll"] < s["hard"]["nll"] for s in dig["seeds"])
    acc_wins = sum(s["distilled"]["accuracy"] > s["hard"]["accuracy"] for s in dig["seeds"])
    n_seeds = len(dig["seeds"])
    checks = [
        Check(
            "the forward-KL student has the lowest held-out NLL (it covers the teacher's mass)",
            f"nats/char: forward {f['held_out_nll']:.3f}, JSD {j['held_out_nll']:.3f}, reverse "
            f"{r['held_out_nll']:.3f} (teacher {lm['teacher']['held_out_nll']:.3f})",
            f["held_out_nll"] < min(j["held_out_nll"], r["held_out_nll"]),
        ),
        Check(
            "the reverse-KL student's samples have the highest teacher log-likelihood per character",
            f"reverse {r['teacher_log_likelihood']:.3f}, JSD {j['teacher_log_likelihood']:.3f}, forward "
            f"{f['teacher_log_likelihood']:.3f} nats/char",
            r["teacher_log_likelihood"] > max(j["teacher_log_likelihood"], f["teacher_log_likelihood"]),
        ),
        Check(
            "the reverse-KL student's samples have the lowest entropy (it seeks the teacher's modes)",
            f"reverse {r['sample_entropy']:.3f}, JSD {j['sample_entropy']:.3f}, forward "
            f"{f['sample_entropy']:.3f} nats/char",
            r["sample_entropy"] < min(j["sample_entropy"], f["sample_entropy"]),
        ),
        Check(
            "the JSD student lies between the two on all three measures",
            f"held-out NLL, teacher log-likelihood, entropy: {between('held_out_nll')}, "
            f"{between('teacher_log_likelihood')}, {between('sample_entropy')}",
            between("held_out_nll") and between("teacher_log_likelihood") and between("sample_entropy"),
        ),
        Check(
            f"digits: the distilled small student beats the hard-label one in test NLL on every seed "
            f"(T = {dig['temperature']:g}, T² scaling)",
            f"mean NLL {soft['nll']:.4f} vs {hard['nll']:.4f}; lower on {nll_wins} of {n_seeds} seeds",
            nll_wins == n_seeds,
        ),
        Check(
            "digits: and in test accuracy (mean over seeds, and on most seeds)",
            f"mean accuracy {soft['accuracy']:.4f} vs {hard['accuracy']:.4f}; higher on {acc_wins} of {n_seeds} "
            f"seeds (teacher {dig['mean']['teacher']['accuracy']:.4f})",
            soft["accuracy"] > hard["accuracy"] and acc_wins > n_seeds / 2,
        ),
    ]

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 3.8))
    names = {"forward_kl": "forward KL", "jsd": "JSD (β = 0.5)", "reverse_kl": "reverse KL (on-policy)"}
    for i, (key, label) in enumerate(names.items()):
        res = lm[key]
        ax1.scatter(
            res["held_out_nll"],
            res["teacher_log_likelihood"],
            s=400 * res["sample_entropy"] / 2.5,
            color=f"C{i}",
            alpha=0.7,
            label=f"{label}: entropy {res['sample_entropy']:.2f}",
        )
    ax1.set(
        xlabel="held-out NLL of the student (nats/char) — lower covers more",
        ylabel="teacher log-lik. of the student's samples",
        title="Character LM students (size ∝ entropy)",
    )
    ax1.legend(fontsize=8, loc="lower right")
    seeds = [s["seed"] for s in dig["seeds"]]
    ax2.plot(seeds, [s["hard"]["nll"] for s in dig["seeds"]], "o-", label="hard labels")
    ax2.plot(
        seeds, [s["distilled"]["nll"] for s in dig["seeds"]], "s-", label=f"distilled (T = {dig['temperature']:g})"
    )
    ax2.plot(seeds, [s["teacher"]["nll"] for s in dig["seeds"]], "k:", label="teacher (64-256-10)")
    ax2.set(
        xlabel="seed (split and initialisation)",
        ylabel="test NLL (nats)",
        xticks=seeds,
        title="Digits: 64-16-10 students",
    )
    ax2.legend(fontsize=8)
    fig_path = save_figure(ctx, fig, "distill")

    cells = "".join(
        f"<tr><td>{html.escape(label)}</td><td><code>{html.escape(prompt)}</code>|<code>{html.escape(cont)}</code>"
        "</td></tr>"
        for key, label in (("teacher", "teacher"), *names.items())
        for prompt, cont in lm[key]["lines"][:1]
    )
    table = "<table><tr><th>model</th><th>prompt | sampled continuation (temperature 1)</th></tr>" + cells + "</table>"
    return SectionResult(
        key="distill",
        title="Distilling a language model: forward KL covers, reverse KL seeks modes",
        claim="Distilling with forward KL(teacher‖student) makes a small student cover everything the teacher "
        "can say (best likelihood of real text); reverse KL on the student's own samples makes it say what "
        "the teacher finds most likely, with less variety; the JSD lies between. Soft targets at a "
        "temperature (Hinton) teach a small classifier more than the labels alone.",
        how=f"(a) {lm['characters']:,} characters of standard-library docstrings ({len(MODULES)} modules, "
        f"{len(CHARS)} symbols; the text, and so the figures, vary a little between Python versions); the last "
        f"10% held out. Teacher: MLP over {TEACHER_CONTEXT} characters "
        f"({lm['parameters']['teacher']:,} parameters, {budget.teacher_steps} Adam steps of cross-entropy). "
        f"Students: MLP over {STUDENT_CONTEXT} characters ({lm['parameters']['student']:,} parameters), "
        f"{budget.student_steps} steps each of klkit.distill.divergence_loss: forward KL on text windows, "
        "reverse KL on the student's own 16-character continuations of text prompts, JSD on half of each. "
        f"Measured on {budget.samples} samples of {budget.sample_length} characters per model. (b) sklearn "
        f"digits, 20% for training, {n_seeds} seeds, {budget.digit_steps} full-batch Adam steps per model.",
        checks=checks,
        figures=[fig_path],
        tables_html=[table],
        numbers={"language_model": lm, "digits": dig},
        intuition="Distillation trains a small student to copy a big teacher's whole next-token distribution, not "
        "only its top answer. Which KL you minimise decides what the copy gets wrong: forward KL(teacher‖student), "
        "averaged over real text, punishes the student wherever the teacher puts mass the student misses, so a "
        "too-small student spreads out to cover everything; reverse KL(student‖teacher), averaged over the "
        "student's own samples (on-policy: the contexts come from the model being trained, not from a fixed "
        "data set), punishes only what the student says and the teacher finds unlikely, so it keeps to the "
        "teacher's safest modes. Hinton's soft targets divide the logits by a temperature T > 1 so the teacher's "
        "small probabilities (which wrong classes look alike) carry signal; the KL at temperature T has "
        "gradients 1/T² as large, so it is multiplied by T² (T² scaling) to keep its weight against the label "
        "loss independent of T.",
        example="Teacher logits (2, 1, 0): at T = 1 the soft target is softmax(2, 1, 0) = (0.665, 0.245, 0.090); "
        "at T = 4 it is softmax(0.5, 0.25, 0) = (0.419, 0.326, 0.254): the runner-up classes now carry a third "
        "and a quarter of the mass the student learns from, instead of 0.245 and 0.090.",
        captions={
            fig_path.name: "Left: each character-level student as one disc (area ∝ the entropy of its samples). "
            "Notice the forward-KL student furthest left (lowest held-out NLL: it covers the real text best) but "
            "low (its samples are less teacher-like), and the reverse-KL student the opposite: highest teacher "
            "log-likelihood, smallest disc (least variety); the JSD student in between. "
            "Right: on every seed the student trained on the teacher's softened outputs (T = 4, T² scaling) "
            "has a lower test NLL than the same small network trained on the labels alone."
        },
    )
