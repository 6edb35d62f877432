r"""Checks that two distribution objects can be compared at all, before any sampling.

A KL divergence, cross-entropy or Jensen–Shannon divergence compares two laws on
**one** space. Three ways of handing klkit two laws on different spaces used to
give a number anyway; they now raise:

- different **event shapes** (``MultivariateNormal`` of dimension 3 against a
  batch of three scalar ``Normal``\ s): the densities are on ℝ³ and ℝ, and the
  Monte Carlo average broadcast over the samples instead of comparing them;
- a **discrete and a continuous** law (``Poisson`` against ``Normal``, either
  order). The two are mutually singular: the discrete law puts all its mass on a
  countable set, which has probability 0 under the continuous one, and the
  continuous law puts all its mass off that set. Neither is absolutely continuous
  with respect to the other, so KL(P‖Q) = +∞ in **both** directions (and H(P, Q)
  = +∞). A finite number obtained by subtracting a log-density from a
  log-probability mass compares incommensurable quantities (a pmf is a
  probability, a pdf a probability per unit length) and is not a KL. klkit raises
  rather than return +∞ because this pairing is nearly always a modelling
  mistake; discretise the continuous law, or compare two laws of one kind;
- an **unfrozen** ``scipy.stats`` distribution (``stats.norm`` instead of
  ``stats.norm(0, 1)``): it has no parameters;
- two ``torch.distributions.Categorical`` laws over **different numbers of
  categories** (their event shape is () either way): the probability vectors
  would broadcast against each other, comparing [1] with [½, ¼, ¼] as if it were
  [1, 1, 1]. Pad the shorter one with zero-probability categories.
"""

from __future__ import annotations

import sys
from typing import Any

import numpy as np

from klkit.errors import IncompatibleDistributionsError, InvalidArgumentError

__all__ = [
    "categories",
    "check_categories",
    "check_frozen",
    "check_pair",
    "check_parameters",
    "event_shape",
    "is_discrete",
]

_SCIPY_DISCRETE_MULTIVARIATE = frozenset(
    {"multinomial_frozen", "dirichlet_multinomial_frozen", "multivariate_hypergeom_frozen"}
)


def check_frozen(x: Any, name: str) -> None:
    """Raise a ``TypeError`` for a scipy distribution class instance that has not been frozen.

    Examples
    --------
    >>> from scipy import stats
    >>> check_frozen(stats.norm(0, 1), "p")
    >>> check_frozen(stats.norm, "p")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    TypeError: `p` must be a frozen scipy.stats distribution ... e.g. stats.norm(loc, scale).
    """
    stats = sys.modules.get("scipy.stats")
    if stats is None:
        return
    generic = (stats.rv_continuous, stats.rv_discrete, stats._multivariate.multi_rv_generic)
    if isinstance(x, generic) and not hasattr(x, "dist"):
        short = getattr(x, "name", None) or type(x).__name__.removesuffix("_gen")
        raise TypeError(
            f"`{name}` must be a frozen scipy.stats distribution (parameters fixed); found the unfrozen "
            f"{type(x).__name__}. Freeze it with its parameters, e.g. stats.{short}(loc, scale)."
        )
    check_parameters(x, name)


def check_parameters(x: Any, name: str) -> None:
    r"""Raise :class:`~klkit.errors.InvalidArgumentError` for a frozen scipy law with a parameter outside its domain.

    scipy itself answers NaN for such a law (``stats.norm(0, -1).entropy()``) and raises from its
    sampler; klkit raises before any closed form or Monte Carlo, naming the parameter, the value
    found, its domain and where in the batch. Each shape parameter is checked against the domain
    scipy declares for it (``_shape_info``), ``scale`` against :math:`(0, \infty)`, ``loc`` against
    NaN, then the joint check of the law (``_argcheck``).

    Examples
    --------
    >>> from scipy import stats
    >>> check_parameters(stats.gamma(2.0, scale=3.0), "p")
    >>> check_parameters(stats.gamma([2.0, -1.0]), "q")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    klkit.errors.InvalidArgumentError: `q` = scipy.stats.gamma has a = -1.0 at batch element (1,) ...
    """
    if not (hasattr(x, "dist") and hasattr(x, "args")):
        return
    dist = x.dist
    shapes, loc, *rest = dist._parse_args(*x.args, **x.kwds)
    scale = rest[0] if rest else 1.0
    infos = dist._shape_info() if hasattr(dist, "_shape_info") else []
    checks = []
    for info, value in zip(infos, shapes, strict=False):
        lo, hi = info.domain
        inc_lo, inc_hi = info.inclusive
        v = np.asarray(value, dtype=np.float64)
        with np.errstate(invalid="ignore"):
            ok = ((v > lo) | (inc_lo & (v == lo))) & ((v < hi) | (inc_hi & (v == hi)))
            if info.integrality:
                ok &= v == np.floor(v)
        interval = f"{'[' if inc_lo else '('}{_number(lo)}, {_number(hi)}{']' if inc_hi else ')'}"
        checks.append((info.name, v, ok, ("an integer in " if info.integrality else "in ") + interval))
    v = np.asarray(scale, dtype=np.float64)
    checks.append(("scale", v, v > 0, "in (0, inf)"))
    v = np.asarray(loc, dtype=np.float64)
    checks.append(("loc", v, ~np.isnan(v), "a number (not NaN)"))
    for parameter, value, ok, rule in checks:
        if not np.all(ok):
            raise _bad_parameter(name, dist.name, parameter, value, ok, rule)
    with np.errstate(all="ignore"):
        joint = np.asarray(dist._argcheck(*(np.asarray(s) for s in shapes))) if shapes else np.asarray(True)
    if not np.all(joint):
        values = ", ".join(f"{i.name} = {np.asarray(s).tolist()}" for i, s in zip(infos, shapes, strict=False))
        raise InvalidArgumentError(
            f"`{name}` = scipy.stats.{dist.name} with {values}: the parameters together are outside the domain "
            "scipy accepts for it (scipy would return NaN for every measure). Pass valid parameters."
        )


def _number(v: float) -> str:
    return "inf" if v == float("inf") else "-inf" if v == float("-inf") else "0" if 0 < v < 1e-300 else f"{v:g}"


def _bad_parameter(name: str, law: str, parameter: str, value: Any, ok: Any, rule: str) -> InvalidArgumentError:
    ok = np.broadcast_to(ok, np.shape(value))
    bad = np.argwhere(~ok)
    where = f" at batch element {tuple(int(i) for i in bad[0])} ({len(bad)} of {ok.size} invalid)" if ok.ndim else ""
    found = float(np.asarray(value)[tuple(bad[0])]) if ok.ndim else float(value)
    return InvalidArgumentError(
        f"`{name}` = scipy.stats.{law} has {parameter} = {found!r}{where}; {parameter} must be {rule}. "
        f"scipy would answer NaN there; klkit refuses. Build the law with {parameter} {rule}."
    )


def event_shape(d: Any) -> tuple[int, ...] | None:
    """The event shape of a torch or frozen scipy distribution; None when it cannot be told."""
    if hasattr(d, "event_shape") and hasattr(d, "batch_shape"):
        return tuple(d.event_shape)
    if hasattr(d, "dist") and hasattr(d, "args"):  # univariate scipy
        return ()
    kind = type(d).__name__
    if hasattr(d, "dim") and isinstance(d.dim, int):  # multivariate_normal, multivariate_t
        return (d.dim,)
    if kind in ("dirichlet_frozen",):
        return (len(np.atleast_1d(d.alpha)),)
    if kind == "multinomial_frozen":
        return (int(np.shape(d.p)[-1]),)
    try:
        return tuple(np.shape(d.rvs(size=2, random_state=0))[1:])
    except (AttributeError, TypeError, ValueError):
        return None


def is_discrete(d: Any) -> bool | None:
    """True for a law on a countable set, False for a density, None when it cannot be told."""
    support = getattr(d, "support", None)
    if support is not None and hasattr(support, "is_discrete"):  # torch
        return bool(support.is_discrete)
    stats = sys.modules.get("scipy.stats")
    if stats is not None and hasattr(d, "dist"):
        if isinstance(d.dist, stats.rv_discrete):
            return True
        if isinstance(d.dist, stats.rv_continuous):
            return False
    if type(d).__module__.startswith("scipy.stats"):
        return type(d).__name__ in _SCIPY_DISCRETE_MULTIVARIATE
    return None


def categories(d: Any) -> int | None:
    """The number of categories of a ``torch.distributions.Categorical`` (None for any other law).

    Examples
    --------
    >>> import torch
    >>> categories(torch.distributions.Categorical(probs=torch.tensor([0.5, 0.25, 0.25])))
    3
    """
    torch = sys.modules.get("torch")
    if torch is None or not isinstance(d, torch.distributions.Categorical):
        return None
    return int(d.param_shape[-1])


def check_categories(p: Any, q: Any) -> None:
    """Raise :class:`~klkit.errors.IncompatibleDistributionsError` for Categorical laws over different numbers of
    categories (they would broadcast); a cheap check that every measure of two objects runs first.

    Examples
    --------
    >>> import torch
    >>> C = torch.distributions.Categorical
    >>> check_categories(C(probs=torch.tensor([1.0])), C(probs=torch.tensor([0.5, 0.25, 0.25])))  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    klkit.errors.IncompatibleDistributionsError: `p` and `q` must be Categorical laws over the same categories; ...
    """
    kp, kq = categories(p), categories(q)
    if kp is not None and kq is not None and kp != kq:
        short, k = ("p", kq) if kp < kq else ("q", kp)
        raise IncompatibleDistributionsError(
            f"`p` and `q` must be Categorical laws over the same categories; found {kp} categories in p and {kq} in "
            f"q (their probabilities would broadcast, not compare). Pad `{short}` with zero-probability categories "
            f"up to {k}: Categorical(probs=torch.nn.functional.pad(probs, (0, {abs(kp - kq)}))), or logits padded "
            "with -inf."
        )


def check_pair(p: Any, q: Any) -> None:
    """Raise :class:`~klkit.errors.IncompatibleDistributionsError` when ``p`` and ``q`` live on different spaces.

    Examples
    --------
    >>> from scipy import stats
    >>> check_pair(stats.norm(0, 1), stats.t(3))
    >>> check_pair(stats.poisson(3), stats.norm(3, 1))  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    klkit.errors.IncompatibleDistributionsError: `p` (rv_discrete_frozen) is discrete and `q` ... KL(p‖q) = +inf ...
    """
    check_frozen(p, "p")
    check_frozen(q, "q")
    check_categories(p, q)
    kinds = is_discrete(p), is_discrete(q)
    if None not in kinds and kinds[0] != kinds[1]:
        word = {True: "discrete", False: "continuous"}
        raise IncompatibleDistributionsError(
            f"`p` ({type(p).__name__}) is {word[kinds[0]]} and `q` ({type(q).__name__}) is {word[kinds[1]]}: "
            "the two laws are mutually singular (the countable support of the discrete one has probability 0 "
            "under the continuous one), so KL(p‖q) = +inf in both directions and comparing a pmf with a pdf "
            "gives no KL. Compare two discrete laws (e.g. discretise the continuous one on the integers) or two "
            "continuous ones."
        )
    ep, eq = event_shape(p), event_shape(q)
    if ep is not None and eq is not None and ep != eq:
        raise IncompatibleDistributionsError(
            f"`p` and `q` must have the same event shape (they are densities on one space); found p with event "
            f"shape {ep} ({type(p).__name__}) and q with event shape {eq} ({type(q).__name__}). "
            f"{_event_fix(p, q, ep, eq)}"
        )


def _event_fix(p: Any, q: Any, ep: tuple[int, ...], eq: tuple[int, ...]) -> str:
    """How to make the event shapes agree: reinterpret the smaller one's batch axes as event axes."""
    name, d, missing = ("q", q, len(ep) - len(eq)) if len(ep) > len(eq) else ("p", p, len(eq) - len(ep))
    if missing > 0 and hasattr(d, "batch_shape"):
        return (
            f"If the batch axes of `{name}` are independent coordinates, wrap it: "
            f"torch.distributions.Independent({name}, {missing}) (e.g. Independent(Normal(loc, scale), 1))."
        )
    return "Build both over the same event space (same dimension and the same number of event axes)."
