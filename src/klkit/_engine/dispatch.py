"""Objects that are not arrays (distribution objects): one hook, registered from the layer above.

The array measures never import the packages that understand such objects. A package that does
(:mod:`klkit.distributions`, imported by ``import klkit``) registers a predicate that recognises
its objects and a handler that evaluates a measure on them; the public measures ask
:func:`is_measure_object` and hand over with :func:`measure_objects`.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any, NamedTuple, TypeVar

import numpy as np

from klkit._engine.arrays import is_torch_array

__all__ = ["accepts_measure_objects", "is_measure_object", "measure_objects", "register_object_measures"]

F = TypeVar("F", bound=Callable[..., Any])

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


# The options of the array measures with their defaults: given to a distribution object, a changed one is refused.
ARRAY_OPTION_DEFAULTS: dict[str, Any] = {
    "axis": -1,
    "kind": "probs",
    "q_kind": None,
    "validate": True,
    "weights": None,
    "keepdims": False,
}
# Measures without a unit: `base` does not apply to them.
_UNITLESS = {
    "total_variation": "total variation is a probability (in [0, 1])",
    "hellinger_distance": "the Hellinger distance is in [0, 1]",
    "f_divergence": "an f-divergence is in the unit its f gives",
}
_ARGUMENT_NAMES = ("p", "q")


def measure_objects(
    measure: str,
    objects: tuple[Any, ...],
    base: float | None,
    options: dict[str, Any],
    args: tuple[Any, ...] = (),
    *,
    array_options: dict[str, Any] | None = None,
) -> Any:
    """Hand ``objects`` to the registered handler (for distributions: method, n_samples, seed, estimator);
    ``args`` follow the objects positionally (the order α of a Rényi divergence, the f of an f-divergence).

    Refuses, naming what was found and the fix: arrays mixed with distribution objects, options for distribution
    objects given with arrays, options for arrays (``array_options`` away from their defaults) given with
    distribution objects, ``base`` for a measure without a unit, and unknown options.
    """
    _check_known(measure, options)
    found = ", ".join(f"`{name}` {_describe(x)}" for name, x in zip(_ARGUMENT_NAMES, objects, strict=False))
    is_object = [is_measure_object(x) for x in objects]
    if any(is_object) and not all(is_object):
        raise TypeError(
            f"`{measure}` needs arrays or distribution objects, not both; found {found}. Pass arrays for both "
            "(e.g. probabilities) or distribution objects for both (torch.distributions or frozen scipy.stats)."
        )
    if not any(is_object):
        names = ", ".join(f"`{k}`" for k in sorted(options))
        raise TypeError(
            f"`{measure}` got {names}: options for distribution objects (torch.distributions or frozen scipy.stats); "
            f"found {found}, whose values are measured exactly. Drop {names} for arrays."
        )
    changed = {k: v for k, v in (array_options or {}).items() if v != ARRAY_OPTION_DEFAULTS[k]}
    if changed:
        given = ", ".join(f"{k}={v!r}" for k, v in sorted(changed.items()))
        raise TypeError(
            f"`{measure}` got {given}, for arrays only; found {found}: distribution objects carry their own "
            f"parameters and support. Drop {', '.join(f'`{k}`' for k in sorted(changed))} for distribution objects."
        )
    entry = next(e for e in _REGISTERED if all(e.predicate(x) for x in objects))
    return entry.handler(measure, objects, args, base, options)


def _check_known(measure: str, options: dict[str, Any]) -> None:
    if "base" in options and measure in _UNITLESS:
        raise TypeError(
            f"`{measure}` takes no `base`: {_UNITLESS[measure]}, so it has no unit to convert; found "
            f"base={options['base']!r}. Drop `base`."
        )
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


def _describe(x: Any) -> str:
    """'a numpy array', 'a torch tensor', 'a list', 'torch.distributions.Normal' …"""
    if isinstance(x, np.ndarray):
        return "a numpy array"
    if is_torch_array(x):
        return "a torch tensor"
    if isinstance(x, (list, tuple)):
        return f"a {type(x).__name__}"
    if hasattr(x, "dist") and hasattr(x.dist, "name"):  # a frozen scipy.stats distribution
        return f"a frozen scipy.stats.{x.dist.name}"
    kind = type(x)
    if kind.__module__.startswith("torch.distributions"):
        return f"a torch.distributions.{kind.__qualname__}"
    return f"a {kind.__module__.split('.')[0]}.{kind.__qualname__}"


def accepts_measure_objects(measure: str, *, objects: int = 2, args: tuple[str, ...] = ()) -> Callable[[F], F]:
    """Let the public array measure ``measure`` take distribution objects too: the one place where a call is
    routed to :func:`measure_objects` (when an input is such an object, or an option only objects take was given)
    instead of the array arithmetic.

    Parameters
    ----------
    measure : str
        The public name, handed to the registered handler and quoted in errors.
    objects : int
        How many leading positional arguments are the distributions (1 for entropy, 2 for the divergences).
    args : tuple of str
        The names of the arguments that follow them and go to the handler too (the order α, the f), given
        positionally or by name.

    Examples
    --------
    >>> @accepts_measure_objects("demo", objects=1)
    ... def demo(p, /, *, axis=-1, **distribution_options):
    ...     return sum(p)
    >>> demo([0.25, 0.75])
    1.0
    """

    def decorate(func: F) -> F:
        parameters = inspect.signature(func).parameters
        takes = {name for name, par in parameters.items() if par.kind is not inspect.Parameter.VAR_KEYWORD}
        array_defaults = {k: parameters[k].default for k in ARRAY_OPTION_DEFAULTS if k in parameters}

        @functools.wraps(func)
        def wrapper(*positional: Any, **options: Any) -> Any:
            inputs = positional[:objects]
            extra = options.keys() - takes
            if not extra and not any(is_measure_object(x) for x in inputs):
                return func(*positional, **options)
            given = positional[objects : objects + len(args)]
            following = given + tuple(options[name] for name in args[len(given) :] if name in options)
            return measure_objects(
                measure,
                inputs,
                options.get("base"),
                {k: options[k] for k in extra},
                following,
                array_options={k: options.get(k, default) for k, default in array_defaults.items()},
            )

        return wrapper  # type: ignore[return-value]

    return decorate
