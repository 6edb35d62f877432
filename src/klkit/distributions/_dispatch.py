"""What the measures of distribution objects share: options, the backend checks, scaling to a base.

:mod:`klkit.distributions.api` (entropy, cross-entropy, KL, Jensen–Shannon) and
:mod:`klkit.distributions.divergence_api` (Rényi, total variation, Hellinger, f-divergences)
both parse their options here, look up their closed forms here and finish their results the same way.
"""

from __future__ import annotations

import contextlib
import numbers
from typing import Any

from klkit._engine import NUMPY, errstate, log_of_base
from klkit.distributions.adapters import backend_of
from klkit.distributions.checks import check_categories, check_frozen
from klkit.distributions.montecarlo import batch_shape, log_density
from klkit.errors import BackendMismatchError, InvalidArgumentError, NotRegisteredError
from klkit.estimate import Estimate

__all__ = [
    "DEFAULT_N_SAMPLES",
    "OPTIONS",
    "broadcast",
    "closed_form",
    "family_note",
    "find_divergence",
    "find_kl",
    "finish",
    "finite",
    "is_estimate",
    "log_densities_at",
    "not_registered",
    "parse_options",
    "quiet",
    "same_library",
    "scale",
    "two_seeds",
    "zeros_of_batch",
]

DEFAULT_N_SAMPLES = 100_000


OPTIONS = ("method", "n_samples", "seed", "estimator")


def zeros_of_batch(p: Any, q: Any) -> Any:
    """Zeros of the broadcast batch shape of two distribution objects, in their library."""
    import numpy as np

    shape = np.broadcast_shapes(batch_shape(p), batch_shape(q))
    if type(p).__module__.startswith("torch"):
        import torch

        return torch.zeros(shape, dtype=p.mean.dtype if p.mean.is_floating_point() else torch.get_default_dtype())
    return np.zeros(shape)[()]


def two_seeds(seed: int | None) -> tuple[int | None, int | None]:
    """Independent seeds for the samples of p and of q (None stays None)."""
    import numpy as np

    if seed is None:
        return None, None
    a, b = np.random.SeedSequence(seed).generate_state(2)
    return int(a), int(b)


def parse_options(measure: str, options: dict[str, Any]) -> tuple[str, int, int | None, str]:
    """``(method, n_samples, seed, estimator)`` checked, with their defaults; unknown names raise."""
    unknown = sorted(set(options) - set(OPTIONS))
    if unknown:
        raise TypeError(
            f"`{measure}` got unknown option(s) {', '.join(map(repr, unknown))} for distribution objects; "
            f"valid options are method, n_samples, seed, estimator and base."
        )
    method = options.get("method", "auto")
    if method not in ("auto", "exact", "mc"):
        raise InvalidArgumentError(
            f"`method` must be 'auto', 'exact' or 'mc'; found {method!r}. Use method='auto' "
            "(a closed form where one is registered, else Monte Carlo), 'exact' to require "
            "a closed form, or 'mc' to sample."
        )
    n = options.get("n_samples")
    n = DEFAULT_N_SAMPLES if n is None else n
    if isinstance(n, bool) or not isinstance(n, numbers.Integral) or n < 2:
        raise InvalidArgumentError(f"`n_samples` must be an integer ≥ 2; found {n!r}. Try n_samples=100_000.")
    seed = options.get("seed")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0):
        raise InvalidArgumentError(
            f"`seed` must be None or a non-negative integer; found {seed!r}. Pass e.g. "
            "seed=0 for reproducible samples, or leave it None for fresh ones."
        )
    estimator = options.get("estimator", "k1")
    if estimator not in ("k1", "k2", "k3"):
        raise InvalidArgumentError(
            f"`estimator` must be 'k1', 'k2' or 'k3'; found {estimator!r}. k3 is unbiased and non-negative."
        )
    return method, int(n), None if seed is None else int(seed), estimator


def same_library(p: Any, q: Any) -> None:
    """The cheap checks every measure of two objects runs first, before any closed form: both objects from one
    library, scipy parameters inside their domains (:func:`~klkit.distributions.checks.check_frozen`), and
    Categorical laws over one set of categories (:func:`~klkit.distributions.checks.check_categories`).
    """
    check_frozen(p, "p")
    check_frozen(q, "q")
    check_categories(p, q)
    bp, bq = backend_of(p), backend_of(q)
    if "other" not in (bp, bq) and bp != bq:
        raise BackendMismatchError(
            f"`p` and `q` come from different libraries ({bp} and {bq}); build both with torch.distributions "
            "or both with scipy.stats."
        )


def family_note(x: Any, fx: Any) -> str:
    return "" if type(fx) is type(x) else f" (klkit family {type(fx).__name__})"


def log_densities_at(p: Any, q: Any, x: Any) -> tuple[Any, Any]:
    """(log p(x), log q(x)) broadcast together, for samples ``x`` of ``p`` (sample axis first)."""
    extra = len(batch_shape(q)) - len(batch_shape(p))
    if extra > 0:  # q's batch has more axes than p's: the same samples of p serve every q
        x = x.reshape((x.shape[0],) + (1,) * extra + tuple(x.shape[1:]))
    return broadcast(log_density(p, x), log_density(q, x))


def finite(x: Any) -> Any:
    import numpy as np

    return x.isfinite() if type(x).__module__.startswith("torch") else np.isfinite(x)


def broadcast(a: Any, b: Any) -> tuple[Any, Any]:
    if type(a).__module__.startswith("torch"):
        import torch

        return torch.broadcast_tensors(a, b)
    import numpy as np

    return tuple(np.broadcast_arrays(a, b))  # type: ignore[return-value]


def quiet(family: Any) -> Any:
    """numpy's floating-point warnings off (inf and nan are answers here); nothing to do for torch."""
    return errstate(NUMPY) if getattr(getattr(family, "xp", None), "name", "numpy") == "numpy" else _NULL


_NULL = contextlib.nullcontext()


def finish(value: Any, like: Any) -> Any:
    """numpy results as float64 arrays (numpy scalars for 0-d); torch results unchanged."""
    from klkit.distributions.adapters import is_torch_distribution

    if is_torch_distribution(like) or type(value).__module__.startswith("torch"):
        return value
    import numpy as np

    return np.asarray(value, dtype=np.float64)[()]


def is_estimate(x: Any) -> bool:
    return isinstance(x, Estimate)


def scale(value: Any, base: float | None) -> Any:
    if base is None:
        return value
    s = log_of_base(base)
    if is_estimate(value):
        return Estimate(value.value / s, value.standard_error / s, value.n_samples, value.method)
    return value / s


def find_divergence(measure: str, p: Any, q: Any, *, symmetric: bool) -> tuple[Any, Any, Any]:
    """(function, p', q') for a measure of :data:`~klkit.distributions.registry.DIVERGENCES`, or (None, …).

    Raw types first (a user's own registrations), then the adapted families; a symmetric measure
    also tries the pair the other way round, and then returns it in that order.
    """
    from klkit.distributions import registry
    from klkit.distributions.adapters import to_family

    fp, fq = to_family(p), to_family(q)
    for a, b in ((p, q), (fp, fq)):
        for x, y in ((a, b), (b, a)) if symmetric else ((a, b),):
            function = registry.lookup_divergence(measure, type(x), type(y))
            if function is not None:
                return function, x, y
    return None, fp, fq


def find_kl(p: Any, q: Any) -> tuple[Any, Any, Any]:
    """(function, p', q') for KL(p‖q): raw types first (user registrations), then the adapted families."""
    from klkit.distributions import registry
    from klkit.distributions.adapters import to_family

    function = registry.lookup_kl(type(p), type(q))
    if function is not None:
        return function, p, q
    fp, fq = to_family(p), to_family(q)
    return registry.lookup_kl(type(fp), type(fq)), fp, fq


_SYMMETRIC = {"total_variation", "hellinger_distance", "js_divergence"}
_WORDS = {
    "total_variation": "total variation",
    "hellinger_distance": "Hellinger distance",
    "renyi_divergence": "Rényi divergence",
    "js_divergence": "Jensen–Shannon divergence",
}


def closed_form(measure: str, p: Any, q: Any, method: str, *args: Any) -> Any:
    """The registered closed form of a measure of :mod:`~klkit.distributions.divergence_api` (None when there is
    none, or it does not cover these parameters; ``method='exact'`` raises then)."""
    if method == "mc":
        return None
    function, a, b = find_divergence(measure, p, q, symmetric=measure in _SYMMETRIC)
    if function is None:
        if method == "exact":
            raise not_registered(measure, p, q, a, b)
        return None
    try:
        with quiet(a):
            return finish(function(a, b, *args), p)
    except NotRegisteredError:
        if method == "exact":
            raise
        return None


def not_registered(measure: str, p: Any, q: Any, fp: Any, fq: Any) -> NotRegisteredError:
    """The error for ``method='exact'`` without a closed form: the pair, what is registered, and the fix."""
    from klkit.distributions import registry

    pairs = registry.registered_divergences(measure)
    if measure == "hellinger_distance":
        pairs = sorted(
            set(pairs) | set(registry.registered_divergences("renyi_divergence")),
            key=lambda m: (m[0].__name__, m[1].__name__),
        )
    listed = ", ".join(f"({a.__name__}, {b.__name__})" for a, b in pairs)
    return NotRegisteredError(
        f"no closed-form {_WORDS[measure]} is registered for the pair ({type(p).__name__}{family_note(p, fp)}, "
        f"{type(q).__name__}{family_note(q, fq)}); closed forms exist for: {listed}. Use method='mc' (or 'auto') "
        f"for a Monte Carlo estimate, or add one with register_divergence({measure!r}, "
        f"{type(fp).__name__}, {type(fq).__name__})."
    )
