"""Named exceptions raised by klkit.

Each one subclasses the builtin a numpy/scipy/torch user would expect, so
``except ValueError`` keeps working while ``except klkit.errors.X`` can be
specific.
"""

from __future__ import annotations

__all__ = [
    "BackendMismatchError",
    "IncompatibleDistributionsError",
    "InvalidArgumentError",
    "InvalidDistributionError",
    "MonteCarloWarning",
    "NotRegisteredError",
    "ShapeError",
]


class InvalidArgumentError(ValueError):
    """An option (``axis``, ``base``, ``kind``, ...) has a value outside its domain."""


class InvalidDistributionError(ValueError):
    """An array is not a valid distribution of the declared ``kind``."""


class ShapeError(ValueError):
    """Shapes do not broadcast, or the reduction axis is empty or out of range."""


class BackendMismatchError(TypeError):
    """Inputs come from different array libraries (e.g. numpy and torch)."""


class NotRegisteredError(NotImplementedError):
    """No closed form is registered for the requested distribution type(s)."""


class IncompatibleDistributionsError(ValueError):
    """Two distribution objects live on different spaces (event shapes, or a discrete and a continuous law)."""


class MonteCarloWarning(UserWarning):
    """A Monte Carlo estimate whose standard error cannot be trusted (heavy tails, overflow, infinite mean)."""
