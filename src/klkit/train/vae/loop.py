"""The training loop, top-down: data → model → (resume) → epochs of steps → validation → checkpoint → result.

:func:`train` sets up the scopes (threads, DDP process group, isolated RNG) and :func:`_train`
reads as the recipe; each step is a small function below it, in the order it runs. Under
``torchrun`` (``WORLD_SIZE`` set) every process trains on its shard of each batch, DDP averages
the gradients, and only rank 0 writes files.
"""

from __future__ import annotations

import contextlib
import hashlib
import math
import os
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch import nn

from klkit.train import _checkpoint as ckpt
from klkit.train._runs import isolated_rng, resolve_device, torch_threads
from klkit.train.data import Images, load_images
from klkit.train.vae.config import Config
from klkit.train.vae.data import fixed_binarization, fixed_test_images, split
from klkit.train.vae.evaluation import active_units, batch_statistics, log_likelihood_bound
from klkit.train.vae.loss import kl_weight_at
from klkit.train.vae.model import VAE
from klkit.train.vae.rundir import (
    CHECKPOINT,
    Progress,
    check_and_write_config,
    load_checkpoint,
    save_checkpoint,
    save_model,
    weights_digest,
)
from klkit.train.vae.step import EpochSums, Objective, train_batch

__all__ = ["TrainingDivergedError", "train"]


class TrainingDivergedError(RuntimeError):
    """The training loss became NaN or infinite; the last good checkpoint is kept."""


@dataclass(frozen=True)
class _Process:
    """This process's place in the run: its DDP rank, the number of processes, its device."""

    rank: int
    world: int
    device: torch.device


@dataclass
class _Data:
    """The images of a run, as tensors on the training device (``(n, pixels)`` each)."""

    images: Images
    train: torch.Tensor
    validation: torch.Tensor  # binarised once, like the test images
    test: torch.Tensor  # the fixed test images every evaluation uses


def train(cfg: Config, run_dir: str | Path) -> dict[str, Any]:
    """Train a VAE into ``run_dir``, resuming from its checkpoint if there is one.

    Writes ``config.json`` (with ``"algorithm": "vae"``), one line per epoch to
    ``metrics.jsonl``, ``checkpoint.pt`` (atomically, after every epoch) and ``model.pt`` (the
    selected weights). Under ``torchrun`` (``WORLD_SIZE`` set) it trains data-parallel with
    DDP: gloo on CPU, NCCL on GPU; only rank 0 writes files.

    Parameters
    ----------
    cfg : Config
    run_dir : str or Path

    Returns
    -------
    dict
        ``epochs`` trained in total, ``best_epoch``, ``final`` (the last metrics record),
        ``seconds`` of training, ``weights_sha256`` of this process's final weights,
        ``active_units`` of the selected model on the test images (as :func:`evaluate` counts them).

    The caller's torch thread count and global random generators are left as they were.

    Raises
    ------
    TrainingDivergedError
        If the loss becomes NaN or infinite; ``checkpoint.pt`` keeps the last good epoch.
    ValueError
        On a bad configuration; :class:`~klkit.train.errors.ConfigMismatchError` for a ``run_dir``
        holding a run with a different configuration; :class:`~klkit.train.errors.DeviceUnavailableError`
        for ``device="cuda"`` without CUDA.

    Examples
    --------
    >>> import tempfile
    >>> result = train(Config(data="digits", hidden=(32,), latent=4, epochs=2, threads=1, progress=False),
    ...                tempfile.mkdtemp())
    >>> result["epochs"], len(result["final"]["kl_per_dim"])
    (2, 4)
    """
    run_dir = Path(run_dir)
    device = resolve_device(cfg.device)
    with torch_threads(cfg.threads), _distributed(device) as (rank, world, device), isolated_rng(device):
        return _train(cfg, run_dir, _Process(rank, world, device))


def _train(cfg: Config, run_dir: Path, proc: _Process) -> dict[str, Any]:
    """The recipe, one named step per line: data, model, resume, then per epoch train → measure → save."""
    data = _load_data(cfg, proc.device)
    model, optimizer = _build_model(cfg, data.images.shape, proc.device)
    progress = _start_or_resume(cfg, run_dir, data.images, model, optimizer, proc)
    step_fn = _wrap_for_ddp(Objective(model), proc)

    record: dict[str, Any] = {}
    bar = _progress_bar(range(progress.next_epoch, cfg.epochs + 1), cfg, proc.rank, progress.next_epoch)
    for epoch in bar:
        started, started_cpu = time.perf_counter(), time.process_time()
        record = _train_epoch(step_fn, optimizer, model, data, cfg, epoch, proc, run_dir)
        stop = _held_out_metrics(model, data, cfg, epoch, proc, progress, record)  # may select this epoch
        progress.seconds += time.perf_counter() - started
        progress.cpu_seconds += time.process_time() - started_cpu
        record["seconds"], record["cpu_seconds"] = progress.seconds, progress.cpu_seconds
        stop = _agree(stop or (cfg.time_limit is not None and progress.seconds >= cfg.time_limit), proc)
        if proc.rank == 0:  # metrics first, then the checkpoint: on resume the log is cut back to its epoch
            ckpt.append_jsonl(run_dir / "metrics.jsonl", record)
            save_checkpoint(run_dir, epoch, model, optimizer, progress)
        _show(bar, record)
        if stop:
            break
    return _finish(model, data, progress, record, run_dir, proc)


# ---------------------------------------------------------------------------- data and model
def _load_data(cfg: Config, device: torch.device) -> _Data:
    """Training, validation and fixed test images, moved to ``device`` once."""
    images = load_images(cfg.data)
    x_train, x_val = split(images, cfg)
    return _Data(
        images,
        x_train.to(device),
        fixed_binarization(x_val, cfg.decoder).to(device),
        fixed_test_images(images, cfg.decoder).to(device),
    )


def _build_model(cfg: Config, image_shape: tuple[int, int], device: torch.device) -> tuple[VAE, torch.optim.Optimizer]:
    """The model with its seeded initial weights, and Adam (AdamW with weight decay)."""
    torch.manual_seed(cfg.seed)  # same initial weights on every process
    model = VAE(image_shape, cfg).to(device)
    optimizer = (
        torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
        if cfg.weight_decay
        else torch.optim.Adam(model.parameters(), lr=cfg.lr)
    )
    return model, optimizer


def _start_or_resume(
    cfg: Config, run_dir: Path, images: Images, model: VAE, optimizer: torch.optim.Optimizer, proc: _Process
) -> Progress:
    """Check (every process, so all raise together instead of hanging) and write config.json, then resume."""
    check_and_write_config(cfg, run_dir, images.shape, write=False)
    if proc.rank == 0:
        run_dir.mkdir(parents=True, exist_ok=True)
        check_and_write_config(cfg, run_dir, images.shape)
    if proc.world > 1:
        dist.barrier()
    progress = load_checkpoint(run_dir, model, optimizer)
    if proc.rank == 0:  # metrics.jsonl is cut back to the checkpoint's epoch (or started afresh)
        if progress is not None:
            ckpt.truncate_jsonl(run_dir / "metrics.jsonl", last_epoch=progress.next_epoch - 1)
        else:
            (run_dir / "metrics.jsonl").unlink(missing_ok=True)
    return progress or Progress()


def _wrap_for_ddp(step_fn: nn.Module, proc: _Process) -> nn.Module:
    """``step_fn`` itself in one process; with several, DDP (it averages gradients inside ``backward()``)."""
    if proc.world == 1:
        return step_fn
    return nn.parallel.DistributedDataParallel(step_fn, device_ids=None if proc.device.type == "cpu" else [proc.device])


# ---------------------------------------------------------------------------- one epoch
def _train_epoch(
    step_fn: nn.Module,
    optimizer: torch.optim.Optimizer,
    model: VAE,
    data: _Data,
    cfg: Config,
    epoch: int,
    proc: _Process,
    run_dir: Path,
) -> dict[str, Any]:
    """One pass over the training images; the epoch's record of training metrics (summed over processes)."""
    # This epoch's randomness is a function of (seed, epoch, process): a resumed run redraws it exactly.
    torch.manual_seed(_seed(cfg.seed, epoch, proc.rank))  # reparameterisation noise, dropout
    shuffle = torch.Generator().manual_seed(_seed(cfg.seed, epoch, -1))  # same order on every process
    augmentation = torch.Generator(proc.device).manual_seed(_seed(cfg.seed, epoch, proc.rank + 1000))
    weight = kl_weight_at(epoch, cfg)
    lr = _lr_at(epoch, cfg)
    for group in optimizer.param_groups:
        group["lr"] = lr

    model.train()
    sums = EpochSums.zeros(cfg.latent, proc.device)
    order = torch.randperm(len(data.train), generator=shuffle).to(proc.device)  # host: CPU generator, any device
    for step in range(math.ceil(len(data.train) / cfg.batch_size)):
        batch = order[step * cfg.batch_size : (step + 1) * cfg.batch_size][proc.rank :: proc.world]  # this shard
        terms = train_batch(
            step_fn,
            optimizer,
            data.train[batch],
            sums,
            cfg,
            image_shape=data.images.shape,
            kl_weight=weight,
            generator=augmentation,
            world=proc.world,
        )
        if terms is None:
            _diverged(epoch, step, cfg, run_dir)
    if proc.world > 1:
        sums.all_reduce()
    return {"epoch": epoch, "kl_weight": weight, "lr": lr, "processes": proc.world, **sums.means()}


def _seed(seed: int, epoch: int, stream: int) -> int:
    """A 63-bit seed for one random stream of one epoch (streams: -2 validation, -1 shuffle, rank, rank + 1000)."""
    return int.from_bytes(hashlib.sha256(f"{seed}/{epoch}/{stream}".encode()).digest()[:8], "little") >> 1


def _lr_at(epoch: int, cfg: Config) -> float:
    """``cfg.lr``, or its cosine annealing towards 0 over ``cfg.epochs`` (epochs count from 1)."""
    if cfg.lr_schedule == "cosine":
        return 0.5 * cfg.lr * (1 + math.cos(math.pi * (epoch - 1) / cfg.epochs))
    return cfg.lr


def _diverged(epoch: int, step: int, cfg: Config, run_dir: Path) -> None:
    """Raise :class:`TrainingDivergedError`, saying which checkpoint survives and how to resume."""
    kept = (
        f"the last good checkpoint (epoch {epoch - 1}) is kept in {run_dir / CHECKPOINT}"
        if epoch > 1
        else "no checkpoint was written yet"
    )
    raise TrainingDivergedError(
        f"VAE training stopped: the loss became NaN or infinite at epoch {epoch}, step {step + 1} "
        f"(lr={cfg.lr:g}, beta={cfg.beta:g}); {kept}. Lower --lr (or raise --warmup) and run the "
        "same command again to resume from it."
    )


# ---------------------------------------------------------------------------- validation
def _held_out_metrics(
    model: VAE, data: _Data, cfg: Config, epoch: int, proc: _Process, progress: Progress, record: dict[str, Any]
) -> bool:
    """Every ``eval_every`` epochs (and the last): test ELBO and active units, validation NLL and selection.

    Adds the measurements to ``record``, keeps the weights of a new best validation epoch in
    ``progress``, and returns whether patience has run out.
    """
    if not (epoch % cfg.eval_every == 0 or epoch == cfg.epochs):
        return False
    test = batch_statistics(model, data.test, seed=cfg.seed)
    record.update(
        {
            "test_elbo": test["elbo"],
            "test_reconstruction": test["reconstruction"],
            "test_kl": test["kl"],
            "active_units": active_units(model, data.test)[0],
        }
    )
    if not cfg.validation:
        return False
    nll = _validation_nll(model, data.validation, cfg, epoch, proc.world)
    record["validation_nll"] = nll
    if nll < progress.best["nll"]:
        progress.best = {"epoch": epoch, "nll": nll}
        progress.best_state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
    return bool(cfg.patience) and (epoch - progress.best["epoch"]) // cfg.eval_every >= cfg.patience


def _validation_nll(model: VAE, x_val: torch.Tensor, cfg: Config, epoch: int, world: int) -> float:
    """Mean importance-sampled NLL of the validation images (nats), rank 0's value on every process."""
    generator = torch.Generator().manual_seed(_seed(cfg.seed, epoch, -2))
    log_px = log_likelihood_bound(model, x_val, k=cfg.validation_samples, generator=generator)
    nll = -log_px.mean().double()  # on the model's device: NCCL broadcasts only CUDA tensors
    if world > 1:
        dist.broadcast(nll, src=0)  # identical weights, but one decision for all processes
    return float(nll)


def _agree(stop: bool, proc: _Process) -> bool:
    """Rank 0's decision, for every process (clocks differ between processes)."""
    if proc.world == 1:
        return stop
    flag = torch.tensor(float(stop), device=proc.device)
    dist.broadcast(flag, src=0)
    return bool(flag.item())


# ---------------------------------------------------------------------------- the result
def _finish(
    model: VAE, data: _Data, progress: Progress, record: dict[str, Any], run_dir: Path, proc: _Process
) -> dict[str, Any]:
    """Save the selected weights (best validation epoch, else the last one) to model.pt; the result of train()."""
    last_epoch = record.get("epoch", progress.next_epoch - 1)
    best_epoch = progress.best["epoch"] or last_epoch
    if progress.best_state is not None:
        model.load_state_dict(progress.best_state)
    if proc.rank == 0:
        save_model(run_dir, model, data.images.shape, best_epoch)
    if proc.world > 1:
        dist.barrier()
    if not record:  # resumed a run that had already finished
        records = ckpt.read_jsonl(run_dir / "metrics.jsonl")
        record = records[-1] if records else {}
    return {
        "epochs": last_epoch,
        "best_epoch": best_epoch,
        "final": record,
        "seconds": progress.seconds,
        "weights_sha256": weights_digest(model),
        "active_units": active_units(model, data.test)[0],
    }


# ---------------------------------------------------------------------------- processes and progress bar
@contextlib.contextmanager
def _distributed(device: torch.device) -> Iterator[tuple[int, int, torch.device]]:
    """``(rank, world_size, device)``; initialises the process group when launched by torchrun."""
    use_cuda = device.type == "cuda"
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        yield 0, 1, device
        return
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    device = torch.device(f"cuda:{local_rank}") if use_cuda else torch.device("cpu")
    if use_cuda:
        torch.cuda.set_device(device)
    owned = not dist.is_initialized()
    if owned:
        dist.init_process_group(backend="nccl" if use_cuda else "gloo")
    try:
        yield dist.get_rank(), dist.get_world_size(), device
    finally:
        if owned:
            dist.destroy_process_group()


def _progress_bar(epochs: range, cfg: Config, rank: int, start: int) -> Any:
    """``epochs`` wrapped in a tqdm bar on rank 0's terminal (not under CI, not without tqdm)."""
    show = cfg.progress and rank == 0 and sys.stderr.isatty() and not os.environ.get("CI")
    if not show:
        return epochs
    try:
        from tqdm.auto import tqdm
    except ImportError:  # tqdm is in the lab/rl extras; no bar without it
        return epochs
    return tqdm(epochs, desc="vae", unit="epoch", initial=start - 1, total=cfg.epochs)


def _show(bar: Any, record: dict[str, Any]) -> None:
    """The epoch's ELBO, KL and (when measured) active units next to the progress bar."""
    if hasattr(bar, "set_postfix"):
        bar.set_postfix(
            elbo=f"{record['train_elbo']:.2f}", kl=f"{record['train_kl']:.1f}", au=record.get("active_units", "-")
        )  # measured on held-out epochs only
