"""``klkit measure``: the lesson's numbers for a pair of distributions."""

from __future__ import annotations

from klkit.cli._errors import one_line_errors
from klkit.cli.app import app


@app.command("measure")
@one_line_errors
def measure_command() -> None:
    """Entropy, cross-entropy, KL both ways and JS for P and Q."""
    raise NotImplementedError("`klkit measure` is being written")
