"""Errors a training run raises for a user's mistake (each a :class:`klkit.errors.InvalidArgumentError`).

They subclass ``ValueError`` through :class:`~klkit.errors.InvalidArgumentError`, so ``except
ValueError`` keeps catching them; the CLI prints their message on one line and exits with code 2.
This module imports nothing heavy (no torch), so the CLI can name these classes cheaply.
"""

from __future__ import annotations

from klkit.errors import InvalidArgumentError

__all__ = ["ConfigMismatchError", "DeviceUnavailableError", "RunDirectoryError"]


class ConfigMismatchError(InvalidArgumentError):
    """A run directory holds a run whose configuration differs from the one asked for (resume refused)."""


class DeviceUnavailableError(InvalidArgumentError):
    """The requested device (e.g. ``"cuda"``) does not exist on this machine."""


class RunDirectoryError(InvalidArgumentError, FileNotFoundError):
    """A run directory is missing, or lacks the files a finished run has (``config.json``, weights)."""
