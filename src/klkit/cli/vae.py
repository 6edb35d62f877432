"""``klkit train vae``: train the VAE of :mod:`klkit.train.vae` into a run directory.

Evaluate it afterwards with ``klkit eval vae DIR`` (or ``klkit eval DIR``). Data-parallel:
``torchrun --nproc_per_node=N -m klkit.train.vae --run-dir DIR [options]`` (same options).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any

import typer

from klkit.cli._errors import one_line_errors


def train_vae(run_dir: Path, **options: Any) -> dict[str, Any]:
    """Build a :class:`klkit.train.vae.Config` from the given options (None: the default) and train.

    Examples
    --------
    >>> import tempfile
    >>> result = train_vae(Path(tempfile.mkdtemp()), data="digits", epochs=1, hidden="16", latent=2,
    ...                    progress=False, threads=1)
    >>> result["epochs"]
    1
    """
    from klkit.train.vae import Config, train

    values = {k: v for k, v in options.items() if v is not None}
    if "hidden" in values:
        values["hidden"] = parse_hidden(values["hidden"])
    return train(Config(**values), run_dir)


def parse_hidden(text: str) -> tuple[int, ...]:
    """``"512,256"`` → ``(512, 256)``.

    Examples
    --------
    >>> parse_hidden("512, 256")
    (512, 256)
    """
    try:
        return tuple(int(part) for part in str(text).split(","))
    except ValueError:
        raise ValueError(f"`--hidden` must be comma-separated layer widths such as 512,256; found {text!r}.") from None


@one_line_errors
def train_vae_command(
    run_dir: Annotated[Path, typer.Option("--run-dir", help="Directory for config, metrics, checkpoints (resumed).")],
    data: Annotated[str | None, typer.Option(help="mnist5k | digits | PATH (.npy, MNIST IDX file or dir).")] = None,
    epochs: Annotated[int | None, typer.Option(help="Passes over the training images.")] = None,
    latent: Annotated[int | None, typer.Option(help="Dimension of z.")] = None,
    beta: Annotated[float | None, typer.Option(help="Weight of the KL term (1 = ELBO).")] = None,
    warmup: Annotated[int | None, typer.Option(help="Epochs of linear KL warm-up from 0 to beta.")] = None,
    free_bits: Annotated[float | None, typer.Option("--free-bits", help="Nats per latent dim not penalised.")] = None,
    samples: Annotated[int | None, typer.Option(help="Importance samples per image in training (1 = ELBO).")] = None,
    hidden: Annotated[str | None, typer.Option(help="MLP hidden widths, e.g. 512,256.")] = None,
    architecture: Annotated[str | None, typer.Option(help="mlp | conv.")] = None,
    decoder: Annotated[str | None, typer.Option(help="bernoulli (binarised) | gaussian (continuous).")] = None,
    dropout: Annotated[float | None, typer.Option(help="Dropout after each hidden layer.")] = None,
    lr: Annotated[float | None, typer.Option(help="Adam learning rate.")] = None,
    lr_schedule: Annotated[str | None, typer.Option("--lr-schedule", help="constant | cosine.")] = None,
    weight_decay: Annotated[float | None, typer.Option("--weight-decay", help="AdamW weight decay.")] = None,
    batch_size: Annotated[int | None, typer.Option("--batch-size", help="Images per step (all processes).")] = None,
    validation: Annotated[int | None, typer.Option(help="Training images held out to select the best epoch.")] = None,
    eval_every: Annotated[int | None, typer.Option("--eval-every", help="Epochs between held-out checks.")] = None,
    patience: Annotated[int | None, typer.Option(help="Validations without improvement before stopping.")] = None,
    max_train: Annotated[int | None, typer.Option("--max-train", help="Use only this many training images.")] = None,
    time_limit: Annotated[float | None, typer.Option("--time-limit", help="Stop after this many seconds.")] = None,
    seed: Annotated[int | None, typer.Option(help="Random seed.")] = None,
    threads: Annotated[int, typer.Option(help="torch threads per process (2 is the measured recipe).")] = 2,
    device: Annotated[str | None, typer.Option(help="auto (CUDA if present) | cpu | cuda.")] = None,
    progress: Annotated[bool, typer.Option(help="Show a progress bar on a terminal.")] = True,
) -> None:
    """Train a VAE whose KL term is klkit's closed form; resume if RUN_DIR has a checkpoint."""
    # Idle OpenMP threads sleep instead of spinning: with spinning, 2 threads on a busy 2-core machine
    # made a step 10-30x slower in our measurements (docs/vae.md). Read when torch loads, so set it first.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    from klkit.train.vae import TrainingDivergedError

    options = {k: v for k, v in locals().items() if k not in ("run_dir", "TrainingDivergedError")}
    try:
        result = train_vae(run_dir, **options)
    except TrainingDivergedError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(code=3) from None
    if int(os.environ.get("RANK", "0")) == 0:
        final = result["final"]
        typer.echo(
            f"trained {result['epochs']} epochs in {result['seconds']:.1f} s; selected epoch {result['best_epoch']}; "
            f"last train ELBO {final.get('train_elbo', float('nan')):.2f} nats, "
            f"active units {result['active_units']} of {final_latent(run_dir)}. Next: klkit eval vae {run_dir}"
        )


def final_latent(run_dir: Path) -> Any:
    """The latent dimension recorded in ``run_dir/config.json`` ('?' if unreadable)."""
    import json

    try:
        return json.loads((Path(run_dir) / "config.json").read_text())["latent"]
    except (OSError, ValueError, KeyError):
        return "?"


def register(app: typer.Typer) -> None:
    """Add ``klkit train vae`` to ``app`` (the ``klkit train`` group)."""
    app.command("vae")(train_vae_command)
