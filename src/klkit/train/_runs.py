"""What every trainer shares around its loop: the resume check, thread and RNG scopes, the device.

- :func:`refuse_changed_config` compares the ``config.json`` of a run directory with the
  configuration asked for and raises :class:`~klkit.train.errors.ConfigMismatchError` naming
  every differing key (old → new), before anything is written.
- :func:`torch_threads` sets ``torch.set_num_threads`` for a block and restores it after.
- :func:`isolated_rng` lets a block seed and draw from torch's (and numpy's, Python's) global
  generators and restores their state afterwards, so a training call leaves the caller's RNG
  as it found it.
- :func:`resolve_device` turns ``"auto" | "cpu" | "cuda"`` into a :class:`torch.device`, with
  a one-line error when CUDA is asked for and absent.
"""

from __future__ import annotations

import contextlib
import json
import random
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch

from klkit.train.errors import ConfigMismatchError, DeviceUnavailableError

__all__ = ["config_changes", "isolated_rng", "refuse_changed_config", "resolve_device", "torch_threads"]


def config_changes(old: dict[str, Any], new: dict[str, Any], *, resumable: Iterable[str] = ()) -> list[str]:
    """``"key old → new"`` for every key (not in ``resumable``) whose JSON value differs.

    Both sides are compared as JSON (tuples and lists alike, as ``config.json`` stores them).

    Examples
    --------
    >>> config_changes({"seed": 0, "lr": 0.1, "epochs": 2}, {"seed": 1, "lr": 0.1, "epochs": 5},
    ...                resumable={"epochs"})
    ['seed 0 → 1']
    """
    old, new = json.loads(json.dumps(old)), json.loads(json.dumps(new))
    skip = set(resumable)
    keys = sorted((set(old) | set(new)) - skip)
    return [f"{k} {json.dumps(old.get(k))} → {json.dumps(new.get(k))}" for k in keys if old.get(k) != new.get(k)]


def refuse_changed_config(
    run_dir: Path, new: dict[str, Any], *, resumable: Iterable[str], defaults: dict[str, Any] | None = None
) -> None:
    """Raise :class:`ConfigMismatchError` if ``run_dir/config.json`` differs from ``new`` outside ``resumable``.

    Called before a trainer writes anything, whenever ``run_dir`` holds a checkpoint to resume.

    Parameters
    ----------
    run_dir : Path
        The run directory (its ``config.json`` is read, never written here).
    new : dict
        The configuration asked for, as it would be written to ``config.json`` (with ``algorithm``).
    resumable : iterable of str
        Keys that may change on resume (budget, threads, progress bar, ...).
    defaults : dict, optional
        Each setting's default: a key missing from an older ``config.json`` (a setting added since the
        run started) stands for its default, which is what that run used.

    Raises
    ------
    ConfigMismatchError
        One line: the directory, the algorithm, every differing key as ``old → new``, and the fix.
    """
    path = Path(run_dir) / "config.json"
    if not path.is_file():
        return
    old = {**(defaults or {}), **json.loads(path.read_text())}
    if old.get("algorithm") != new.get("algorithm"):  # the other keys differ by nature; name the one that matters
        changes = [f"algorithm {json.dumps(old.get('algorithm'))} → {json.dumps(new.get('algorithm'))}"]
    else:
        changes = config_changes(old, new, resumable=resumable)
    if changes:
        raise ConfigMismatchError(
            f"`run_dir` {run_dir} holds a {old.get('algorithm', '?')} run with a different configuration "
            f"({'; '.join(changes)}); a run resumes only with the options it started with (may change: "
            f"{', '.join(sorted(resumable))}). Repeat the original options to resume it, or pass a new --run-dir "
            "to start a new run."
        )


@contextlib.contextmanager
def torch_threads(threads: int | None) -> Iterator[None]:
    """Run the block with ``torch.set_num_threads(threads)``, restoring the caller's count after (None: untouched).

    Examples
    --------
    >>> before = torch.get_num_threads()
    >>> with torch_threads(1):
    ...     torch.get_num_threads()
    1
    >>> torch.get_num_threads() == before
    True
    """
    if threads is None:
        yield
        return
    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
        from klkit.errors import InvalidArgumentError

        raise InvalidArgumentError(f"`threads` must be None or a positive integer; found {threads!r}. Use e.g. 1.")
    before = torch.get_num_threads()
    torch.set_num_threads(int(threads))
    try:
        yield
    finally:
        torch.set_num_threads(before)


@contextlib.contextmanager
def isolated_rng(device: torch.device | None = None) -> Iterator[None]:
    """Run the block on forked copies of torch's CPU (and ``device``'s CUDA) generator, numpy's and Python's.

    Inside, a trainer may call ``torch.manual_seed`` and draw (dropout, initialisation) freely;
    on exit every global generator is back in the state the caller left it.

    Examples
    --------
    >>> before = torch.random.get_rng_state()
    >>> with isolated_rng():
    ...     _ = torch.manual_seed(5), torch.rand(3)
    >>> bool(torch.equal(before, torch.random.get_rng_state()))
    True
    """
    cuda = (
        [device.index if device.index is not None else torch.cuda.current_device()]
        if (device is not None and device.type == "cuda")
        else []
    )
    numpy_state = np.random.get_state()  # noqa: NPY002 (the caller's legacy global generator)
    python_state = random.getstate()
    try:
        with torch.random.fork_rng(devices=cuda):
            yield
    finally:
        np.random.set_state(numpy_state)  # noqa: NPY002
        random.setstate(python_state)


def resolve_device(device: str) -> torch.device:
    """``"auto"`` (CUDA when available, else CPU), ``"cpu"`` or ``"cuda"`` as a :class:`torch.device`.

    Raises
    ------
    DeviceUnavailableError
        ``"cuda"`` on a machine where ``torch.cuda.is_available()`` is False.
    InvalidArgumentError
        Any other string.

    Examples
    --------
    >>> resolve_device("cpu")
    device(type='cpu')
    """
    if device == "cpu":
        return torch.device("cpu")
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cuda":
        if not torch.cuda.is_available():
            raise DeviceUnavailableError(
                f"`device` must name a device this machine has; found 'cuda', but torch {torch.__version__} "
                "sees no CUDA GPU (torch.cuda.is_available() is False). Use --device cpu (or auto)."
            )
        return torch.device("cuda")
    from klkit.errors import InvalidArgumentError

    raise InvalidArgumentError(f"`device` must be 'auto', 'cpu' or 'cuda'; found {device!r}. Use 'auto'.")
