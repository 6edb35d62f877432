"""Atomic checkpoints, safe loading, RNG state as tensors, and a resumable metrics log.

Shared by the training loops (``vae`` uses it; ``ppo``/``trpo`` may reuse it):

- :func:`save_atomic` writes to a temporary file in the same directory, flushes it to
  disk and ``os.replace``-s it over the target, so a crash leaves either the old or the
  new checkpoint, never a torn one.
- :func:`load` uses ``torch.load(..., weights_only=True)``: a checkpoint may hold only
  tensors and primitive containers (dict, list, tuple, str, int, float, bool, None).
- :func:`rng_state` / :func:`set_rng_state` capture torch's CPU (and CUDA) generators,
  Python's ``random`` and numpy's legacy global generator as tensors, so they pass
  ``weights_only`` loading.
- :func:`write_text_atomic` replaces a small text file (``config.json``) in one step.
- :func:`append_jsonl` / :func:`truncate_jsonl` keep ``metrics.jsonl`` consistent with the
  checkpoint after a resume (lines past the checkpoint's epoch are dropped and redone).
"""

from __future__ import annotations

import json
import os
import random
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

__all__ = [
    "append_jsonl",
    "load",
    "read_jsonl",
    "rng_state",
    "save_atomic",
    "set_rng_state",
    "truncate_jsonl",
    "write_text_atomic",
]


def save_atomic(obj: dict[str, Any], path: str | Path) -> None:
    """Write ``obj`` with ``torch.save`` to ``path`` atomically (temp file, fsync, ``os.replace``).

    Examples
    --------
    >>> import tempfile
    >>> d = Path(tempfile.mkdtemp())
    >>> save_atomic({"epoch": 3, "w": torch.ones(2)}, d / "ckpt.pt")
    >>> load(d / "ckpt.pt")["epoch"]
    3
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(obj, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_text_atomic(path: str | Path, text: str) -> None:
    """Write ``text`` to ``path`` through ``path.tmp`` and ``os.replace``, so readers see the old or the new file."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def load(path: str | Path) -> dict[str, Any]:
    """Load a checkpoint written by :func:`save_atomic` with ``weights_only=True`` onto the CPU."""
    return torch.load(Path(path), map_location="cpu", weights_only=True)


def rng_state() -> dict[str, Any]:
    """Every global random generator's state, as tensors (loadable with ``weights_only=True``).

    Examples
    --------
    >>> state = rng_state()
    >>> a = torch.rand(3)
    >>> set_rng_state(state)
    >>> bool(torch.equal(a, torch.rand(3)))
    True
    """
    _, keys, pos, has_gauss, cached = np.random.get_state()  # noqa: NPY002 (the legacy global generator)
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy_keys": torch.from_numpy(np.asarray(keys, dtype=np.int64)),
        "numpy_rest": [int(pos), int(has_gauss), float(cached)],
        # Python's Mersenne Twister: 625 unsigned 32-bit words, stored as int64
        "python": torch.tensor(random.getstate()[1], dtype=torch.int64),  # host: RNG state, saved to disk
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore the generators captured by :func:`rng_state`."""
    torch.set_rng_state(state["torch"])
    pos, has_gauss, cached = state["numpy_rest"]
    keys = state["numpy_keys"].numpy().astype(np.uint32)
    np.random.set_state(("MT19937", keys, int(pos), int(has_gauss), float(cached)))  # noqa: NPY002
    random.setstate((3, tuple(int(v) for v in state["python"].tolist()), None))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def append_jsonl(path: str | Path, record: dict[str, Any]) -> None:
    """Append one JSON record as a line and flush it to disk."""
    with open(path, "a") as f:
        f.write(json.dumps(record) + "\n")
        f.flush()
        os.fsync(f.fileno())


def read_jsonl(path: str | Path) -> list[dict[str, Any]]:
    """All complete records of a JSON-lines file (a torn last line, from a crash, is skipped)."""
    path = Path(path)
    if not path.exists():
        return []
    records = []
    for line in path.read_text().splitlines():
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return records


def truncate_jsonl(path: str | Path, *, last_epoch: int, key: str = "epoch") -> list[dict[str, Any]]:
    """Keep only the records with ``record[key] <= last_epoch`` (rewritten atomically); return them.

    Used on resume: the metrics log then ends exactly where the checkpoint does.

    Examples
    --------
    >>> import tempfile
    >>> p = Path(tempfile.mkdtemp()) / "metrics.jsonl"
    >>> for e in (1, 2, 3):
    ...     append_jsonl(p, {"epoch": e})
    >>> [r["epoch"] for r in truncate_jsonl(p, last_epoch=2)]
    [1, 2]
    """
    path = Path(path)
    kept = [r for r in read_jsonl(path) if r.get(key, 0) <= last_epoch]
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    with os.fdopen(fd, "w") as f:
        f.writelines(json.dumps(r) + "\n" for r in kept)
    os.replace(tmp, path)
    return kept
