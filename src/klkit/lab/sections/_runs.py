"""Reading a training run through its documented run directory (``docs/vae.md``, ``docs/rl.md``).

The lab's training sections see a run only through the public ``train`` / ``evaluate`` /
``load_model`` functions of :mod:`klkit.train` and the files every run directory holds:
``config.json``, ``metrics.jsonl`` (one JSON object per line) and the checkpoints.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

__all__ = ["read_metrics"]

METRICS = "metrics.jsonl"


def read_metrics(run_dir: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """Every record of ``run_dir/metrics.jsonl``, in order (one per epoch or update).

    Parameters
    ----------
    run_dir : path
        A run directory written by ``klkit.train.<algorithm>.train``.

    Returns
    -------
    list of dict
        Empty when the run wrote no metrics yet.

    Examples
    --------
    >>> import tempfile
    >>> d = Path(tempfile.mkdtemp())
    >>> _ = (d / METRICS).write_text('{"epoch": 1}\\n{"epoch": 2}\\n')
    >>> [r["epoch"] for r in read_metrics(d)]
    [1, 2]
    """
    path = Path(run_dir) / METRICS
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
