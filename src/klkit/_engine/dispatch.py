"""Objects that are not arrays (distribution objects): one hook, registered from the layer above.

The array measures never import the packages that understand such objects. A package that does
(:mod:`klkit.distributions`, imported by ``import klkit``) registers a predicate that recognises
its objects and a handler that evaluates a measure on them; the public measures ask
:func:`is_measure_object` and hand over with :func:`measure_objects`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np

from klkit._engine.arrays import is_torch_array

__all__ = ["is_measure_object", "measure_objects", "register_object_measures"]

Handler = Callable[[str, tuple[Any, ...], tuple[Any, ...], "float | None", dict[str, Any]], Any]


class _Registration(NamedTuple):
    predicate: Callable[[Any], bool]
    handler: Handler
    options: tuple[str, ...]


_REGISTERED: list[_Registration] = []


def register_object_measures(
    predicate: Callable[[Any], bool], handler: Handler, *, options: tuple[str, ...] = ()
) -> None:
    """Let the public measures accept the objects ``predicate`` recognises.

    Parameters
    ----------
    predicate : callable
        ``predicate(x) -> bool``: ``x`` is one of the objects ``handler`` evaluates.
    handler : callable
        ``handler(measure, objects, args, base, options)``: the value of the public function named
        ``measure`` on ``objects``; ``args`` follow the objects positionally (the order of a Rényi
        divergence, the f of an f-divergence), ``options`` are the keyword options.
    options : tuple of str
        The keyword options the handler accepts besides ``base``.

    Examples
    --------
    >>> from klkit._engine import is_measure_object
    >>> is_measure_object([0.5, 0.5])
    False
    """
    entry = _Registration(predicate, handler, tuple(options))
    if entry not in _REGISTERED:
        _REGISTERED.append(entry)


def is_measure_object(x: Any) -> bool:
    """``x`` is an object a registered handler evaluates (arrays, lists and numbers never are)."""
    if isinstance(x, (np.ndarray, list, tuple, float, int)) or is_torch_array(x):
        return False
    return any(entry.predicate(x) for entry in _REGISTERED)


def measure_objects(
    measure: str, objects: tuple[Any, ...], base: float | None, options: dict[str, Any], args: tuple[Any, ...] = ()
) -> Any:
    """Hand ``objects`` to the registered handler (for distributions: method, n_samples, seed, estimator);
    ``args`` follow the objects positionally (the order α of a Rényi divergence, the f of an f-divergence)."""
    known = {name for entry in _REGISTERED for name in entry.options}
    unknown = sorted(set(options) - known)
    if unknown:
        names = ", ".join(f"`{k}`" for k in unknown)
        raise TypeError(
            f"`{measure}` got an unknown keyword argument {names}. klkit reduces over `axis` (not `dim`) and "
            "returns one value per slice (no `reduction`: call .mean() or .sum() on the result); the options "
            "are axis, base, kind, q_kind and validate, plus method, n_samples, seed and estimator for "
            "distribution objects."
        )
    entry = next((e for e in _REGISTERED if all(e.predicate(x) for x in objects)), None)
    if entry is None or not all(is_measure_object(x) for x in objects):
        raise TypeError(
            f"`{measure}` got {', '.join(sorted(options))}: these options apply only when every input is a "
            "torch.distributions or frozen scipy.stats distribution; found "
            + ", ".join(type(x).__name__ for x in objects)
            + ". Drop the options for arrays."
        )
    return entry.handler(measure, objects, args, base, options)
