"""Train a VAE from the command line: ``python -m klkit.train.vae --run-dir DIR [options]``.

Data-parallel: ``torchrun --nproc_per_node=N -m klkit.train.vae --run-dir DIR [options]``.
Every :class:`~klkit.train.vae.config.Config` field is an option (``--free-bits 0.1``,
``--hidden 512,256``, ``--no-progress``), as in ``klkit train vae`` (whose ``--help`` describes
them); ``--threads`` defaults to 2 as there. Exit codes: 0 trained, 2 a user's error (one line
on stderr), 3 the loss diverged.
"""

# Idle OpenMP threads sleep instead of spinning: with spinning, 2 threads on a busy 2-core machine made
# a step 10-30x slower in our measurements (docs/vae.md). OpenMP reads this when torch loads, so it is set
# before anything below imports torch (the package's __init__ imports no torch for this reason).
import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import argparse
import dataclasses
import sys
import typing
from pathlib import Path
from typing import Any

from klkit.errors import InvalidArgumentError
from klkit.train.vae.config import Config

THREADS = 2  # the measured recipe (docs/vae.md), as `klkit train vae` defaults to


def main(argv: list[str]) -> int:
    """Train with the options in ``argv``; print a summary on rank 0; return the exit code."""
    parser = _parser()
    args = vars(parser.parse_args(argv))
    run_dir = args.pop("run_dir")
    try:
        cfg = Config(**{name: value for name, value in args.items() if value is not None})
    except ValueError as exc:
        parser.error(str(exc))  # exits with code 2
    from klkit.train.vae.loop import TrainingDivergedError, train  # torch loads here

    try:
        result = train(cfg, run_dir)
    except TrainingDivergedError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 3
    except (InvalidArgumentError, OSError, ValueError) as exc:
        if not _users_mistake(exc):
            raise
        print(f"error: {' '.join(str(exc).split())}", file=sys.stderr)
        return 2
    if int(os.environ.get("RANK", "0")) == 0:
        final = result["final"]
        print(
            f"trained {result['epochs']} epochs in {result['seconds']:.1f} s; selected epoch "
            f"{result['best_epoch']}; last train ELBO {final.get('train_elbo', float('nan')):.2f} nats, "
            f"active units {result['active_units']} of {cfg.latent}. Next: klkit eval vae {run_dir}"
        )
    return 0


def _users_mistake(exc: Exception) -> bool:
    """Whether ``exc`` is a user's mistake (one line, exit 2) rather than a bug (traceback), as the CLI decides.

    klkit's own error classes and ``OSError`` are; a plain ``ValueError`` only when klkit's code
    raised it (its "`name` must be ...; found ..." messages), not when it came from deep in torch.
    """
    if isinstance(exc, (InvalidArgumentError, OSError)):
        return True
    tb = exc.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    return tb is not None and str(tb.tb_frame.f_globals.get("__name__", "")).startswith("klkit.")


def _parser() -> argparse.ArgumentParser:
    """``--run-dir`` and one option per Config field (``--name-with-dashes``; unset: the field's default)."""
    parser = argparse.ArgumentParser(prog="python -m klkit.train.vae", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--run-dir", type=Path, required=True, help="directory for config, metrics, checkpoints (resumed)"
    )
    hints = typing.get_type_hints(Config)
    for field in dataclasses.fields(Config):
        flag = "--" + field.name.replace("_", "-")
        kind = hints[field.name]
        if kind is bool:
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, default=None)
        else:
            parser.add_argument(flag, type=_parse_as(kind), default=None, metavar=field.name.upper())
    parser.set_defaults(threads=THREADS)
    return parser


def _parse_as(kind: Any) -> Any:
    """The function that turns an option's text into a value of the field's type.

    ``X | None`` parses as ``X``; ``tuple[int, ...]`` from ``"512,256"``; a ``Literal`` as its
    text (Config names the allowed values when it is wrong).
    """
    args = [arg for arg in typing.get_args(kind) if arg is not type(None)]
    if typing.get_origin(kind) is typing.Literal:
        return str
    if typing.get_origin(kind) is tuple:
        return _widths
    if args:  # X | None
        return _parse_as(args[0])
    return kind


def _widths(text: str) -> tuple[int, ...]:
    """``"512,256"`` → ``(512, 256)``."""
    try:
        return tuple(int(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"must be comma-separated layer widths such as 512,256; found {text!r}"
        ) from None


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
