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
import importlib
import inspect
import random
import re
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np

from klkit.lab.base import Check, LabContext, SectionResult, save_figure, torch_rng, torch_threads

# ---------------------------------------------------------------------------
# Configuration
# ---------------------------------------------------------------------------

MODULES = (
    "collections",
    "functools",
    "itertools",
    "json",
    "re",
    "argparse",
    "logging",
    "pathlib",
    "random",
    "statistics",
    "textwrap",
    "string",
    "heapq",
    "bisect",
    "datetime",
    "fractions",
    "decimal",
    "csv",
    "difflib",
    "shutil",
    "subprocess",
    "threading",
    "typing",
    "dataclasses",
    "enum",
    "inspect",
)
CHARS = "abcdefghijklmnopqrstuvwxyz .,'-()"  # everything else becomes a space; runs of spaces collapse
TEACHER_CONTEXT, STUDENT_CONTEXT = 10, 4  # characters each model sees


@dataclass(frozen=True)
class Budget:
    """Steps and Adam learning rates of each training run; ``QUICK`` for ``--quick``."""

    teacher_steps: int
    teacher_lr: float
    student_steps: int
    student_lr: float
    samples: int  # sequences drawn from each model for the checks
    sample_length: int
    digit_seeds: int
    digit_steps: int
    digit_lr: float


FULL = Budget(
    teacher_steps=1500,
    teacher_lr=6e-3,
    student_steps=500,
    student_lr=8e-3,
    samples=256,
    sample_length=64,
    digit_seeds=5,
    digit_steps=300,
    digit_lr=1e-2,
)
QUICK = Budget(
    teacher_steps=400,
    teacher_lr=1e-2,
    student_steps=200,
    student_lr=1e-2,
    samples=256,
    sample_length=64,
    digit_seeds=3,
    digit_steps=100,
    digit_lr=3e-2,
)


# ---------------------------------------------------------------------------
# (a) The corpus and the character models
# ---------------------------------------------------------------------------


def corpus() -> str:
    """The docstrings of :data:`MODULES` and their public members, lower-cased, on :data:`CHARS`.

    Deterministic within one Python version; the docstrings, and so the text, change a little between versions.
    """
    docs = []
    with warnings.catch_warnings():  # deprecated aliases (typing.io, typing.re) warn when looked up
        warnings.simplefilter("ignore", DeprecationWarning)
        for name in MODULES:
            module = importlib.import_module(name)
            docs.append(inspect.getdoc(module) or "")
            for attr in sorted(dir(module)):
                obj = getattr(module, attr)
                if attr.startswith("_") or getattr(obj, "__module__", None) != module.__name__:
                    continue
                doc = inspect.getdoc(obj)
                if doc:
                    docs.append(doc)
    text = "".join(c if c in CHARS else " " for c in " ".join(docs).lower())
    return re.sub(" +", " ", text)


def char_model(context: int, embed: int, hidden: int) -> Any:
    """An MLP language model: embeddings of the last ``context`` characters → tanh layer → logits."""
    import torch.nn as nn

    model = nn.Sequential(
        nn.Embedding(len(CHARS), embed),
        nn.Flatten(1),
        nn.Linear(context * embed, hidden),
        nn.Tanh(),
        nn.Linear(hidden, len(CHARS)),
    )
    model.context = context
    return model


def logits_of(model: Any, windows: Any) -> Any:
    """Logits of the next character after each row of ``windows`` (B, ≥ context) of character ids."""
    return model(windows[:, -model.context :])


def sample(model: Any, prompts: Any, length: int, generator: Any) -> Any:
    """Continue each prompt (B, TEACHER_CONTEXT) by ``length`` characters drawn from the model."""
    import torch

    seq = prompts
    with torch.no_grad():
        for _ in range(length):
            probs = torch.softmax(logits_of(model, seq), dim=-1)
            seq = torch.cat([seq, torch.multinomial(probs, 1, generator=generator)], dim=1)
    return seq


def generated_windows(seq: Any, length: int) -> Any:
    """(B · length, TEACHER_CONTEXT + 1): the context and the character of every generated position."""
    return seq.unfold(1, TEACHER_CONTEXT + 1, 1)[:, -length:].reshape(-1, TEACHER_CONTEXT + 1)


def train_teacher(train: Any, steps: int, seed: int, lr: float = 6e-3) -> Any:
    """Maximum likelihood (cross-entropy) on the training windows, Adam, batches of 256."""
    import torch
    import torch.nn.functional as F  # noqa: N812 (torch's convention)

    with torch_rng(seed):
        teacher = char_model(TEACHER_CONTEXT, 24, 256)
    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.Adam(teacher.parameters(), lr=lr)
    for _ in range(steps):
        batch = train[torch.randint(len(train), (256,), generator=gen)]
        loss = F.cross_entropy(logits_of(teacher, batch[:, :-1]), batch[:, -1])
        opt.zero_grad()
        loss.backward()
        opt.step()
    teacher.requires_grad_(False)
    return teacher


def distill_student(teacher: Any, train: Any, divergence: str, steps: int, seed: int, lr: float = 8e-3) -> Any:
    """A small student (context 4, 8-dim embeddings, 32 hidden units) distilled with ``divergence``.

    ``forward_kl`` on windows of the text; ``reverse_kl`` on the student's own continuations of text
    prompts (on-policy, 32 × 16 characters per step); ``jsd`` (β = 0.5) on half of each.
    """
    import torch

    from klkit.distill import divergence_loss

    with torch_rng(seed):
        student = char_model(STUDENT_CONTEXT, 8, 32)
    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.Adam(student.parameters(), lr=lr)
    n, length = 32, 16
    for _ in range(steps):
        if divergence == "forward_kl":
            windows = train[torch.randint(len(train), (n * length,), generator=gen)][:, :-1]
        else:
            prompts = train[torch.randint(len(train), (n,), generator=gen)][:, :TEACHER_CONTEXT]
            windows = generated_windows(sample(student, prompts, length, gen), length)[:, :-1]
            if divergence == "jsd":  # half of the contexts from the text
                half = len(windows) // 2
                windows = torch.cat([windows[half:], train[torch.randint(len(train), (half,), generator=gen)][:, :-1]])
        with torch.no_grad():
            teacher_logits = logits_of(teacher, windows)
        loss = divergence_loss(logits_of(student, windows), teacher_logits, divergence=divergence)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return student


def evaluate(model: Any, teacher: Any, held: Any, budget: Budget, seed: int) -> dict[str, Any]:
    """Held-out NLL (nats/char); on the model's own samples: the teacher's log-likelihood per character and
    the model's predictive entropy; two sample lines."""
    import torch
    import torch.nn.functional as F  # noqa: N812 (torch's convention)

    gen = torch.Generator().manual_seed(seed + 1)
    prompts = held[torch.randint(len(held), (budget.samples,), generator=gen)][:, :TEACHER_CONTEXT]
    seq = sample(model, prompts, budget.sample_length, gen)
    windows = generated_windows(seq, budget.sample_length)
    with torch.no_grad():
        nll = float(F.cross_entropy(logits_of(model, held[:, :-1]), held[:, -1]))
        teacher_lp = torch.log_softmax(logits_of(teacher, windows[:, :-1]), dim=-1)
        teacher_ll = float(teacher_lp.gather(1, windows[:, -1:]).mean())
        own = torch.log_softmax(logits_of(model, windows[:, :-1]), dim=-1)
        entropy = float(-(own.exp() * own).sum(-1).mean())
    lines = ["".join(CHARS[i] for i in row) for row in seq[:2].tolist()]
    return {
        "held_out_nll": nll,
        "teacher_log_likelihood": teacher_ll,
        "sample_entropy": entropy,
        "lines": [(line[:TEACHER_CONTEXT], line[TEACHER_CONTEXT:]) for line in lines],
    }


def language_demo(ctx: LabContext, budget: Budget) -> dict[str, Any]:
    import torch

    text = corpus()
    ids = torch.tensor([CHARS.index(c) for c in text])
    split = int(0.9 * len(ids))
    windows = ids.unfold(0, TEACHER_CONTEXT + 1, 1)
    train, held = windows[: split - TEACHER_CONTEXT], windows[split:]
    cache = ctx.out_dir / f"distill-teacher-{ctx.seed}-{budget.teacher_steps}-{budget.teacher_lr}.pt"
    if cache.is_file():  # reused within the run's staging folder
        teacher = char_model(TEACHER_CONTEXT, 24, 256)
        teacher.load_state_dict(torch.load(cache))
        teacher.requires_grad_(False)
    else:
        ctx.progress(f"training the character teacher ({budget.teacher_steps} steps, {len(text):,} characters)")
        teacher = train_teacher(train, budget.teacher_steps, ctx.seed, budget.teacher_lr)
        torch.save(teacher.state_dict(), cache)
    results = {"teacher": evaluate(teacher, teacher, held, budget, ctx.seed)}
    for divergence in ("forward_kl", "reverse_kl", "jsd"):
        ctx.progress(f"distilling a student with {divergence}")
        student = distill_student(teacher, train, divergence, budget.student_steps, ctx.seed, budget.student_lr)
        results[divergence] = evaluate(student, teacher, held, budget, ctx.seed)
    parameters = {
        "teacher": sum(p.numel() for p in teacher.parameters()),
        "student": sum(p.numel() for p in char_model(STUDENT_CONTEXT, 8, 32).parameters()),
    }
    return {"characters": len(text), "held_out_characters": len(held), "parameters": parameters, **results}


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
    )
