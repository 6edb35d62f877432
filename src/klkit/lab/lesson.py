"""The lesson the lab teaches ("KL divergence and cross-entropy"): its parts and its objectives, each with the
section of the report that shows and checks it.

The report is ordered by :data:`PARTS` (the lesson, then the parts beyond it); :data:`OBJECTIVES` is the map at
the top of the report. The run order and the names ``klkit lab --only`` takes are
:data:`klkit.lab.sections.SECTIONS`.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["OBJECTIVES", "PARTS", "Objective", "Part", "report_order"]


@dataclass(frozen=True)
class Part:
    """A part of the report: a heading, a sentence on what it holds, and its sections in reading order."""

    key: str
    title: str
    blurb: str
    sections: tuple[str, ...]


@dataclass(frozen=True)
class Objective:
    """A learning objective or statement of the lesson and the key of the section that teaches and checks it."""

    text: str
    section: str


PARTS: tuple[Part, ...] = (
    Part(
        "lesson",
        "Part I — The lesson: KL divergence and cross-entropy",
        "In the lesson's order: information and entropy, cross-entropy and KL, their properties, forward and "
        "reverse KL, and where KL appears in machine learning.",
        (
            "surprise",
            "entropy",
            "coin",
            "differential",
            "decomposition",
            "nonnegativity",
            "jensen",
            "asymmetry",
            "fitting",
            "modes",
            "losses",
            "vae",
            "trpo",
            "ppo",
        ),
    ),
    Part(
        "beyond",
        "Part II — Beyond the lesson: KL's relatives, distillation, RLHF",
        "Material the lesson does not cover, for readers who go on: each section defines its terms and gives the "
        "one takeaway a student needs.",
        ("relatives", "distill", "rlhf"),
    ),
)

OBJECTIVES: tuple[Objective, ...] = (
    Objective("Surprise −log p: rare events carry more information; independent surprises add", "surprise"),
    Objective("Entropy is the expected surprise: maximal (log K) at the uniform, zero at a point mass", "entropy"),
    Objective("Compute entropy in nats and in bits: a fair coin carries ln 2 nats = 1 bit", "coin"),
    Objective("Differential entropy of a continuous distribution can be negative", "differential"),
    Objective(
        "State what each term represents: entropy = unavoidable coding cost, KL = the penalty for using the wrong "
        "distribution, cross-entropy = their sum",
        "decomposition",
    ),
    Objective("KL(P‖Q) ≥ 0, with equality only when P = Q (Gibbs' inequality)", "nonnegativity"),
    Objective("The proof by Jensen's inequality; H(P) = log K − KL(P‖U) ties 'maximal at uniform' to KL ≥ 0", "jensen"),
    Objective("KL is not symmetric, and infinite when Q misses an outcome P can produce", "asymmetry"),
    Objective("Forward KL is mean-seeking (mass-covering), reverse KL is mode-seeking", "fitting"),
    Objective("Variational inference (reverse KL) finds one mode; restarts can stop between modes", "modes"),
    Objective("Minimising cross-entropy loss = minimising NLL = maximum likelihood", "losses"),
    Objective("The VAE's KL term pulls the encoder toward the prior and trades against reconstruction", "vae"),
    Objective("TRPO bounds the KL of each step so that importance sampling stays reliable", "trpo"),
    Objective("PPO's clipped objective, with an optional KL penalty, keeps each update small", "ppo"),
)


def report_order(keys: list[str]) -> list[tuple[Part, list[str]]]:
    """The given section keys grouped by part, in reading order; keys no part lists go last, in a part of their own.

    Examples
    --------
    >>> [(part.key, ks) for part, ks in report_order(["rlhf", "coin", "surprise"])]
    [('lesson', ['surprise', 'coin']), ('beyond', ['rlhf'])]
    """
    wanted = set(keys)
    out = [(part, [k for k in part.sections if k in wanted]) for part in PARTS]
    listed = {k for part in PARTS for k in part.sections}
    others = [k for k in keys if k not in listed]
    if others:
        out.append((Part("other", "Other sections", "Sections outside the lesson's plan.", tuple(others)), others))
    return [(part, ks) for part, ks in out if ks]
