"""The character language models of the lab's distillation section: a teacher, students, sampling, evaluation.

A model is an MLP over the last few characters (embeddings → tanh layer → logits over :data:`CHARS`).
The teacher is trained by maximum likelihood on :func:`~klkit.lab.sections._corpus.corpus`; students are
distilled from it with :func:`klkit.distill.divergence_loss` (forward KL on the text, reverse KL on the
student's own samples, or the JSD on half of each).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from klkit.lab.base import LabContext, torch_rng
from klkit.lab.sections._corpus import CHARS, corpus

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
