"""The lab's sections, in the order they run.

Each name is a module ``klkit.lab.sections.<name>`` exposing
``run(ctx: LabContext) -> SectionResult`` (see :mod:`klkit.lab.base`). These names are what
``klkit lab --only`` accepts, in the order they run; the report groups them by
:data:`klkit.lab.lesson.PARTS` (the lesson's order, then the parts beyond it). A section whose module
(or a module it needs) cannot be imported fails.
"""

from __future__ import annotations

__all__ = ["SECTIONS", "TITLES"]

SECTIONS: tuple[str, ...] = (
    "surprise",
    "entropy",
    "coin",
    "differential",
    "decomposition",
    "nonnegativity",
    "jensen",
    "asymmetry",
    "relatives",
    "fitting",
    "modes",
    "losses",
    "distill",
    "vae",
    "trpo",
    "ppo",
    "rlhf",
)

# Titles used when a section cannot run (a module missing); a running section supplies its own.
TITLES: dict[str, str] = {
    "surprise": "Surprise",
    "entropy": "Entropy: maximal at uniform, zero at a point mass",
    "coin": "A fair coin carries one bit",
    "differential": "Differential entropy can be negative",
    "decomposition": "Cross-entropy = entropy + KL",
    "nonnegativity": "KL ≥ 0 (Gibbs' inequality)",
    "jensen": "Jensen's inequality proves KL ≥ 0",
    "asymmetry": "KL is not symmetric",
    "relatives": "KL bounds its relatives",
    "fitting": "Forward KL is mean-seeking, reverse KL is mode-seeking",
    "modes": "Forward and reverse KL as loss landscapes: one basin or several",
    "losses": "Cross-entropy loss = negative log-likelihood = maximum likelihood",
    "distill": "Distilling a language model: forward KL covers, reverse KL seeks modes",
    "vae": "The VAE's KL term: a pull towards the prior, and closed form = Monte Carlo",
    "trpo": "TRPO keeps KL ≤ δ",
    "ppo": "PPO's clip / penalty keeps KL small",
    "rlhf": "Which KL does your RLHF loss minimise?",
}
