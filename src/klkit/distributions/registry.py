"""The closed-form registry: ``register_kl``, ``register_entropy``, ``register_divergence``, most-specific dispatch.

A KL formula is registered for a pair of types ``(P, Q)``; a lookup for the
types of two objects picks, among the registered pairs that both types are
subclasses of, the one that is most specific in both places. If two pairs
tie (neither more specific in both), the lookup raises and names the pair to
register that breaks the tie. Lookups are cached; every registration clears
the cache, so the order of registration never matters.

The other measures between two laws (:data:`DIVERGENCES`: Rényi divergence,
total variation, Hellinger distance, Jensen–Shannon divergence) have one table
each, filled with :func:`register_divergence` and read with
:func:`lookup_divergence` under the same rules.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple, TypeVar

__all__ = [
    "DIVERGENCES",
    "PairInfo",
    "lookup_divergence",
    "lookup_entropy",
    "lookup_kl",
    "pair_table",
    "register_divergence",
    "register_entropy",
    "register_infinite_kl",
    "register_kl",
    "registered_divergences",
    "registered_entropies",
    "registered_pairs",
    "unregister",
]

F = TypeVar("F", bound=Callable[..., Any])

_KL: dict[tuple[type, type], Callable[..., Any]] = {}
_KL_CACHE: dict[tuple[type, type], Callable[..., Any] | None] = {}
_ENTROPY: dict[type, Callable[..., Any]] = {}
_ENTROPY_CACHE: dict[type, Callable[..., Any] | None] = {}

# The measures with a table of their own, and the signature a registered function has.
DIVERGENCES: dict[str, str] = {
    "renyi_divergence": "function(p, q, alpha) -> D_alpha(p‖q) in nats (alpha a float >= 0, != 1)",
    "total_variation": "function(p, q) -> sup_A |P(A) - Q(A)| in [0, 1]",
    "hellinger_distance": "function(p, q) -> H(p, q) = sqrt(1 - ∫sqrt(pq)) in [0, 1]",
    "js_divergence": "function(p, q) -> ½ KL(p‖m) + ½ KL(q‖m) in nats, m = ½(p + q)",
}
_DIVERGENCE: dict[str, dict[tuple[type, type], Callable[..., Any]]] = {name: {} for name in DIVERGENCES}
_DIVERGENCE_CACHE: dict[tuple[str, type, type], Callable[..., Any] | None] = {}


class PairInfo(NamedTuple):
    """One registered KL pair, for tables."""

    p: type
    q: type
    finite: bool
    function: Callable[..., Any]


def _check_type(value: Any, name: str) -> None:
    if not isinstance(value, type):
        raise TypeError(
            f"`{name}` must be a class (e.g. klkit.distributions.Normal); found "
            f"{type(value).__name__} {value!r}. Pass the type, not an instance."
        )


def register_kl(type_p: type, type_q: type, *, override: bool = False) -> Callable[[F], F]:
    r"""Register ``function(p, q)`` as the closed form of KL(p‖q) for ``p: type_p``, ``q: type_q``.

    The function receives the two objects after adaptation: instances of the
    families in :mod:`klkit.distributions.families` for torch and scipy objects
    klkit knows, or the objects themselves for user types. It returns one value
    per batch element, in the parameters' backend.

    Parameters
    ----------
    type_p, type_q : type
        The classes of ``p`` and ``q``; subclasses inherit the formula unless a
        more specific pair is registered.
    override : bool, default False
        Replace an existing registration of exactly this pair.

    Returns
    -------
    callable
        A decorator that registers and returns the function unchanged.

    Raises
    ------
    TypeError
        If a type is not a class.
    ValueError
        If the pair is registered already and ``override`` is False.

    Examples
    --------
    >>> import klkit.distributions as kd
    >>> class Point:  # a user's own "distribution": a point mass
    ...     def __init__(self, x):
    ...         self.x = x
    >>> @kd.register_kl(Point, Point)
    ... def _kl_point_point(p, q):
    ...     return 0.0 if p.x == q.x else float("inf")
    >>> kd.lookup_kl(Point, Point) is _kl_point_point
    True
    >>> kd.unregister("kl", Point, Point) is _kl_point_point  # and gone again
    True
    """
    _check_type(type_p, "type_p")
    _check_type(type_q, "type_q")

    def decorator(function: F) -> F:
        if (type_p, type_q) in _KL and not override:
            raise ValueError(
                f"KL({type_p.__name__} ‖ {type_q.__name__}) is registered already "
                f"(by {_KL[type_p, type_q].__qualname__}); pass override=True to replace it."
            )
        _KL[type_p, type_q] = function
        _KL_CACHE.clear()  # the most specific match may have changed
        return function

    return decorator


def register_infinite_kl(type_p: type, *types_q: type, reason: str) -> None:
    """Register KL(p‖q) = +inf for pairs whose supports make ``q = 0`` where ``p > 0``.

    The answer is an explicit ``+inf`` of the batch shape (built with a fill,
    never by masked assignment, so autograd graphs stay intact).
    """

    def infinite(p: Any, q: Any) -> Any:
        return p.xp.full_like(p.zero() + q.zero(), float("inf"))

    infinite.infinite = True  # type: ignore[attr-defined]
    infinite.reason = reason  # type: ignore[attr-defined]
    infinite.__qualname__ = infinite.__name__ = f"_kl_{type_p.__name__.lower()}_infinite"
    for type_q in types_q:
        register_kl(type_p, type_q)(infinite)


def register_entropy(type_: type, *, override: bool = False) -> Callable[[F], F]:
    r"""Register ``function(p)`` as the closed-form entropy of ``type_`` (and its subclasses).

    Raises
    ------
    ValueError
        If ``type_`` is registered already and ``override`` is False.

    Examples
    --------
    >>> import klkit.distributions as kd
    >>> class Point:
    ...     pass
    >>> @kd.register_entropy(Point)
    ... def _entropy_point(p):
    ...     return 0.0
    >>> kd.lookup_entropy(Point) is _entropy_point
    True
    >>> kd.unregister("entropy", Point) is _entropy_point  # and gone again
    True
    """
    _check_type(type_, "type_")

    def decorator(function: F) -> F:
        if type_ in _ENTROPY and not override:
            raise ValueError(
                f"the entropy of {type_.__name__} is registered already "
                f"(by {_ENTROPY[type_].__qualname__}); pass override=True to replace it."
            )
        _ENTROPY[type_] = function
        _ENTROPY_CACHE.clear()
        return function

    return decorator


def lookup_kl(type_p: type, type_q: type) -> Callable[..., Any] | None:
    """The most specific registered KL function for ``(type_p, type_q)``, or None.

    Raises
    ------
    TypeError
        If two registered pairs match equally well (register the pair that breaks the tie).
    """
    key = (type_p, type_q)
    try:
        return _KL_CACHE[key]
    except KeyError:
        pass
    function = _most_specific(_KL, type_p, type_q, f"KL({type_p.__name__} ‖ {type_q.__name__})", "register_kl(")
    _KL_CACHE[key] = function
    return function


def _most_specific(
    table: dict[tuple[type, type], Callable[..., Any]], type_p: type, type_q: type, what: str, register: str
) -> Callable[..., Any] | None:
    """The function of the pair in ``table`` most specific in both places (None if none matches)."""
    matches = [m for m in table if issubclass(type_p, m[0]) and issubclass(type_q, m[1])]
    best = [
        m for m in matches if not any(o != m and issubclass(o[0], m[0]) and issubclass(o[1], m[1]) for o in matches)
    ]
    if len(best) > 1:
        names = " and ".join(f"({a.__name__}, {b.__name__})" for a, b in best)
        raise TypeError(
            f"{what} is ambiguous: {names} match equally well. "
            f"Register {register}{type_p.__name__}, {type_q.__name__}) to break the tie."
        )
    return table[best[0]] if best else None


def lookup_entropy(type_: type) -> Callable[..., Any] | None:
    """The entropy function registered for ``type_`` or its nearest base class, or None."""
    try:
        return _ENTROPY_CACHE[type_]
    except KeyError:
        pass
    function = next((_ENTROPY[c] for c in type_.__mro__ if c in _ENTROPY), None)
    _ENTROPY_CACHE[type_] = function
    return function


def registered_pairs() -> list[tuple[type, type]]:
    """Every registered ``(type_p, type_q)``, sorted by name.

    Examples
    --------
    >>> import klkit.distributions as kd
    >>> (kd.Normal, kd.Normal) in kd.registered_pairs()
    True
    """
    return sorted(_KL, key=lambda m: (m[0].__name__, m[1].__name__))


def registered_entropies() -> list[type]:
    """Every type with a registered entropy, sorted by name."""
    return sorted(_ENTROPY, key=lambda t: t.__name__)


def pair_table() -> list[PairInfo]:
    """:class:`PairInfo` rows for every registered pair (``finite=False`` for the +inf registrations)."""
    return [PairInfo(p, q, not getattr(_KL[p, q], "infinite", False), _KL[p, q]) for p, q in registered_pairs()]


# ---------------------------------------------------------------------------------------------------
# The other measures: one table per name in DIVERGENCES
# ---------------------------------------------------------------------------------------------------
def _check_measure(measure: Any) -> str:
    if measure not in DIVERGENCES:
        raise ValueError(
            f"`measure` must be one of {', '.join(map(repr, DIVERGENCES))}; found {measure!r}. "
            "KL pairs are registered with register_kl, entropies with register_entropy."
        )
    return measure


def register_divergence(measure: str, type_p: type, type_q: type, *, override: bool = False) -> Callable[[F], F]:
    r"""Register a closed form of ``measure`` for ``p: type_p``, ``q: type_q`` (as :func:`register_kl` does for KL).

    The function receives the adapted objects (family records for torch and scipy objects klkit
    knows, the user's objects otherwise) and, for ``"renyi_divergence"``, the order ``alpha``;
    it returns one value per batch element in the parameters' backend, or raises
    :class:`~klkit.errors.NotRegisteredError` for parameters it does not cover (the caller
    then falls back to Monte Carlo). The signatures are listed in :data:`DIVERGENCES`.
    Total variation, Hellinger and Jensen–Shannon are symmetric: a pair registered as
    ``(A, B)`` also answers ``(B, A)``. A Hellinger distance is also derived from a registered
    Rényi divergence of order ½ (:math:`H^2 = 1 - e^{-D_{1/2}/2}`).

    Parameters
    ----------
    measure : {'renyi_divergence', 'total_variation', 'hellinger_distance', 'js_divergence'}
    type_p, type_q : type
        The classes of ``p`` and ``q``; subclasses inherit the formula.
    override : bool, default False
        Replace an existing registration of exactly this pair.

    Returns
    -------
    callable
        A decorator that registers and returns the function unchanged.

    Raises
    ------
    ValueError
        An unknown ``measure``, or a pair registered already without ``override``.
    TypeError
        A type that is not a class.

    Examples
    --------
    >>> import klkit.distributions as kd
    >>> class Point:
    ...     def __init__(self, x):
    ...         self.x = x
    >>> @kd.register_divergence("total_variation", Point, Point)
    ... def _tv_point_point(p, q):
    ...     return 0.0 if p.x == q.x else 1.0
    >>> kd.lookup_divergence("total_variation", Point, Point) is _tv_point_point
    True
    >>> kd.unregister("total_variation", Point, Point) is _tv_point_point  # and gone again
    True
    """
    _check_measure(measure)
    _check_type(type_p, "type_p")
    _check_type(type_q, "type_q")

    def decorator(function: F) -> F:
        table = _DIVERGENCE[measure]
        if (type_p, type_q) in table and not override:
            raise ValueError(
                f"{measure}({type_p.__name__}, {type_q.__name__}) is registered already "
                f"(by {table[type_p, type_q].__qualname__}); pass override=True to replace it."
            )
        table[type_p, type_q] = function
        _DIVERGENCE_CACHE.clear()
        return function

    return decorator


def lookup_divergence(measure: str, type_p: type, type_q: type) -> Callable[..., Any] | None:
    """The most specific function registered for ``measure`` and exactly this order of types, or None.

    Raises
    ------
    ValueError
        An unknown ``measure``.
    TypeError
        Two registered pairs that match equally well.
    """
    key = (_check_measure(measure), type_p, type_q)
    try:
        return _DIVERGENCE_CACHE[key]
    except KeyError:
        pass
    function = _most_specific(
        _DIVERGENCE[measure],
        type_p,
        type_q,
        f"{measure}({type_p.__name__}, {type_q.__name__})",
        f"register_divergence({measure!r}, ",
    )
    _DIVERGENCE_CACHE[key] = function
    return function


def registered_divergences(measure: str) -> list[tuple[type, type]]:
    """Every ``(type_p, type_q)`` registered for ``measure``, sorted by name.

    Examples
    --------
    >>> import klkit.distributions as kd
    >>> (kd.Normal, kd.Normal) in kd.registered_divergences("renyi_divergence")
    True
    """
    return sorted(_DIVERGENCE[_check_measure(measure)], key=lambda m: (m[0].__name__, m[1].__name__))


def unregister(measure: str, *types: type) -> Callable[..., Any]:
    """Remove a registration (a user's own, or one to replace) and return its function.

    ``measure`` is ``"kl"`` (two types), ``"entropy"`` (one type) or a measure of :data:`DIVERGENCES`
    (two types).

    Raises
    ------
    KeyError
        Nothing is registered for these types (the message lists the fix).

    Examples
    --------
    >>> import klkit.distributions as kd
    >>> class Dot:
    ...     pass
    >>> f = kd.register_entropy(Dot)(lambda p: 0.0)
    >>> kd.unregister("entropy", Dot) is f, kd.lookup_entropy(Dot)
    (True, None)
    """
    if measure == "kl":
        table, key = _KL, types
    elif measure == "entropy":
        table, key = _ENTROPY, types[0] if len(types) == 1 else types
    else:
        table, key = _DIVERGENCE[_check_measure(measure)], types
    if key not in table:
        names = ", ".join(getattr(t, "__name__", repr(t)) for t in types)
        raise KeyError(f"no {measure} is registered for ({names}); registered_pairs() and friends list what is.")
    for cache in (_KL_CACHE, _ENTROPY_CACHE, _DIVERGENCE_CACHE):
        cache.clear()
    return table.pop(key)
