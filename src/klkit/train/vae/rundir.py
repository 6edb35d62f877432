"""The files of a VAE run directory: ``config.json``, ``checkpoint.pt``, ``model.pt`` (``metrics.jsonl`` is the loop's).

Checkpoints are written atomically and read with ``torch.load(..., weights_only=True)``
(:mod:`klkit.train._checkpoint`); a run resumes only with the configuration it started with.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from klkit.train import _checkpoint as ckpt
from klkit.train._runs import isolated_rng, refuse_changed_config
from klkit.train.errors import RunDirectoryError
from klkit.train.vae.config import RESUMABLE_CHANGES, Config
from klkit.train.vae.model import VAE

__all__ = [
    "CHECKPOINT",
    "MODEL",
    "Progress",
    "check_and_write_config",
    "load_checkpoint",
    "load_model",
    "save_checkpoint",
    "save_model",
    "weights_digest",
]

CHECKPOINT = "checkpoint.pt"  # training state, rewritten atomically after every epoch
MODEL = "model.pt"  # the selected weights (best validation epoch, or the last one)


@dataclass
class Progress:
    """What a checkpoint carries besides the weights and the optimiser state.

    Attributes
    ----------
    next_epoch : int
        The first epoch still to train (epochs count from 1).
    best : dict
        ``{"epoch", "nll"}`` of the best validation so far (epoch 0: none yet).
    best_state : dict of Tensor or None
        The weights of that epoch, on the CPU (None without validation).
    seconds, cpu_seconds : float
        Wall and process CPU time spent training so far.
    """

    next_epoch: int = 1
    best: dict[str, Any] = field(default_factory=lambda: {"epoch": 0, "nll": math.inf})
    best_state: dict[str, torch.Tensor] | None = None
    seconds: float = 0.0
    cpu_seconds: float = 0.0


def check_and_write_config(cfg: Config, run_dir: Path, image_shape: tuple[int, int], *, write: bool = True) -> None:
    """Refuse to resume a run with a different configuration (nothing written); then write ``config.json``.

    Raises
    ------
    ConfigMismatchError
        ``run_dir`` holds a checkpoint of a run whose configuration differs outside
        :data:`~klkit.train.vae.config.RESUMABLE_CHANGES`.
    """
    path = run_dir / "config.json"
    values = {"algorithm": "vae", **dataclasses.asdict(cfg), "image_shape": list(image_shape)}
    values["hidden"] = list(cfg.hidden)
    if (run_dir / CHECKPOINT).exists():
        refuse_changed_config(run_dir, values, resumable=RESUMABLE_CHANGES)
    if write:
        tmp = path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(values, indent=2) + "\n")
        os.replace(tmp, path)


def load_checkpoint(run_dir: Path, model: nn.Module, optimizer: torch.optim.Optimizer) -> Progress | None:
    """Load ``checkpoint.pt`` into ``model`` and ``optimizer`` and return its :class:`Progress`; None if absent."""
    if not (run_dir / CHECKPOINT).exists():
        return None
    state = ckpt.load(run_dir / CHECKPOINT)
    model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    return Progress(
        next_epoch=state["epoch"] + 1,
        best=dict(state["best"]),
        best_state=state.get("best_model"),
        seconds=float(state["seconds"]),
        cpu_seconds=float(state["cpu_seconds"]),
    )


def save_checkpoint(
    run_dir: Path, epoch: int, model: nn.Module, optimizer: torch.optim.Optimizer, progress: Progress
) -> None:
    """Write the state after ``epoch`` to ``checkpoint.pt`` atomically (a crash leaves the old or the new file)."""
    state = {
        "epoch": epoch,
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "best": progress.best,
        "seconds": progress.seconds,
        "cpu_seconds": progress.cpu_seconds,
    }
    if progress.best_state is not None:
        state["best_model"] = progress.best_state
    ckpt.save_atomic(state, run_dir / CHECKPOINT)


def save_model(run_dir: Path, model: nn.Module, image_shape: tuple[int, int], epoch: int) -> None:
    """Write the selected weights to ``model.pt`` atomically, with what :func:`load_model` needs to rebuild them."""
    ckpt.save_atomic({"model": model.state_dict(), "image_shape": list(image_shape), "epoch": epoch}, run_dir / MODEL)


def load_model(run_dir: str | Path, *, device: str | torch.device = "cpu") -> tuple[VAE, Config]:
    """The selected model of a run (``model.pt``) and its Config, on ``device`` (default the CPU) in eval mode."""
    run_dir = Path(run_dir)
    config_path = run_dir / "config.json"
    if not config_path.exists() or not (run_dir / MODEL).exists():
        raise RunDirectoryError(
            f"`run_dir` {run_dir} has no finished VAE run (config.json and {MODEL} are needed); "
            "train one with `klkit train vae --run-dir DIR` first."
        )
    values = json.loads(config_path.read_text())
    if values.get("algorithm") != "vae":
        raise ValueError(f"`run_dir` {run_dir} holds a {values.get('algorithm')!r} run, not a VAE run.")
    cfg = Config.from_dict(values)
    state = ckpt.load(run_dir / MODEL)
    with isolated_rng():  # the initial weights, overwritten below, would draw from the caller's generator
        model = VAE(tuple(state["image_shape"]), cfg)
    model.load_state_dict(state["model"])
    return model.to(device).eval(), cfg


def weights_digest(model: nn.Module) -> str:
    """SHA-256 of the model's parameters and buffers (equal digests: bit-identical weights)."""
    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()
