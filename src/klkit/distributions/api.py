"""Entropy, cross-entropy and KL of distribution objects: exact if registered, else Monte Carlo.

These are what :func:`klkit.entropy`, :func:`klkit.cross_entropy` and
:func:`klkit.kl_divergence` call when given ``torch.distributions`` or frozen
``scipy.stats`` objects.

Options (keyword-only)
----------------------
method : {'auto', 'exact', 'mc'}, default 'auto'
    'exact' uses a registered closed form or raises :class:`~klkit.errors.NotRegisteredError`;
    'mc' always samples; 'auto' uses the closed form when one is registered, else samples.
n_samples : int, default 100_000
    Samples per batch element for Monte Carlo.
seed : int, optional
    Seed for Monte Carlo; same seed, same answer (global generators are left untouched).
estimator : {'k1', 'k2', 'k3'}, default 'k1'
    Monte Carlo KL estimator (:func:`klkit.estimators.mc_kl`). k1 and k3 are
    unbiased; **k2 is biased** (it matches KL only to second order in log(q/p)).
    k1 is the default here: its variance is finite whenever Var_p[log(p/q)] is,
    while k3's needs E_p[(q/p)²] < ∞, which fails when q has heavier tails than p
    (e.g. N(0, 1) against a Student t); k3 is best when p and q are close.
base : float, optional
    None for nats, 2 for bits.

Closed forms return arrays with the parameters' batch shape (torch in → torch
out with gradients; scipy in → numpy out); Monte Carlo returns an
:class:`~klkit.estimators.Estimate`.
"""

from __future__ import annotations

import contextlib
import numbers
from typing import Any, Literal

from klkit._backend import log_of_base
from klkit._validation import check_base
from klkit.distributions import registry
from klkit.distributions._ops import NUMPY
from klkit.distributions.adapters import backend_of, to_family
from klkit.distributions.montecarlo import batch_shape, draw, log_density, mc_mean
from klkit.errors import BackendMismatchError, InvalidArgumentError, NotRegisteredError

__all__ = ["cross_entropy", "entropy", "kl_divergence"]

Method = Literal["auto", "exact", "mc"]
DEFAULT_N_SAMPLES = 100_000
_OPTIONS = ("method", "n_samples", "seed", "estimator")


def kl_divergence(p: Any, q: Any, /, *, base: float | None = None, **options: Any) -> Any:
    r"""KL(p‖q) = E_p[log p(X) − log q(X)] for two distribution objects.

    Parameters
    ----------
    p, q : torch.distributions.Distribution or frozen scipy.stats distribution
        Both from the same library; parameters broadcast.
    base : float, optional
        None for nats, 2 for bits.
    **options
        ``method``, ``n_samples``, ``seed``, ``estimator`` (see the module docstring).

    Returns
    -------
    ndarray, torch.Tensor or Estimate
        The closed form (batch shape of the parameters) or a Monte Carlo :class:`~klkit.estimators.Estimate`.

    Raises
    ------
    NotRegisteredError
        ``method='exact'`` for a pair without a closed form (the message lists what is registered).
    TypeError
        An unknown option, or objects from different libraries.
    ValueError
        A bad option value.

    Examples
    --------
    >>> from scipy import stats
    >>> import klkit
    >>> float(klkit.kl_divergence(stats.norm(0, 1), stats.norm(1, 1)))  # ½ (μp − μq)²
    0.5
    >>> e = klkit.kl_divergence(stats.norm(0, 1), stats.t(5), seed=0)  # no closed form: Monte Carlo
    >>> type(e).__name__, e.n_samples
    ('Estimate', 100000)
    """
    method, n, seed, estimator = _options("kl_divergence", options)
    base = check_base(base)
    _same_backend(p, q)
    if method != "mc":
        function, fp, fq = _find_kl(p, q)
        if function is not None:
            try:
                with _quiet(fp):
                    return _scale(_finish(function(fp, fq), p), base)
            except NotRegisteredError:
                if method == "exact":
                    raise
        elif method == "exact":
            raise _not_registered_kl(p, q, fp, fq)
    from klkit.estimators import mc_kl

    x = draw(p, n, seed)
    extra = len(batch_shape(q)) - len(batch_shape(p))
    if extra > 0:  # q's batch has more axes than p's: the same samples of p serve every q
        x = x.reshape((x.shape[0],) + (1,) * extra + tuple(x.shape[1:]))
    log_p, log_q = _broadcast(log_density(p, x), log_density(q, x))
    return mc_kl(log_p, log_q, estimator=estimator, base=base)


def entropy(p: Any, /, *, base: float | None = None, **options: Any) -> Any:
    r"""Entropy H(P) = −E_P[log p(X)] (differential for densities) of a distribution object.

    Monte Carlo: the mean of :math:`-\log p(x_i)` over :math:`x_i \sim p`, with its standard error.

    Examples
    --------
    >>> import math
    >>> from scipy import stats
    >>> import klkit
    >>> bool(abs(klkit.entropy(stats.norm(0, 1)) - 0.5 * math.log(2 * math.pi * math.e)) < 1e-12)
    True
    """
    method, n, seed, _ = _options("entropy", options)
    base = check_base(base)
    if method != "mc":
        fp = p
        function = registry.lookup_entropy(type(p))
        if function is None:
            fp = to_family(p)
            function = registry.lookup_entropy(type(fp))
        if function is not None:
            try:
                with _quiet(fp):
                    return _scale(_finish(function(fp), p), base)
            except NotRegisteredError:  # a formula that covers only part of its type (e.g. affine transforms)
                if method == "exact":
                    raise
        elif method == "exact":
            names = ", ".join(t.__name__ for t in registry.registered_entropies())
            raise NotRegisteredError(
                f"no closed-form entropy is registered for {type(p).__name__}"
                f"{_family_note(p, fp)}; registered families: {names}. "
                "Use method='mc' for a Monte Carlo estimate, or register one with register_entropy."
            )
    x = draw(p, n, seed)
    return _scale(mc_mean(-log_density(p, x), "MC −log p"), base)


def cross_entropy(p: Any, q: Any, /, *, base: float | None = None, **options: Any) -> Any:
    r"""Cross-entropy H(P, Q) = −E_P[log q(X)] = H(P) + KL(P‖Q) of two distribution objects.

    Exact when both the entropy of ``p`` and KL(p‖q) have closed forms (their
    sum; no difference of large terms is taken); else the Monte Carlo mean of
    :math:`-\log q(x_i)`, :math:`x_i \sim p`.

    Examples
    --------
    >>> from scipy import stats
    >>> import klkit
    >>> h = klkit.cross_entropy(stats.norm(0, 1), stats.norm(1, 1))
    >>> bool(abs(h - (klkit.entropy(stats.norm(0, 1)) + 0.5)) < 1e-12)
    True
    """
    method, n, seed, estimator = _options("cross_entropy", options)
    base = check_base(base)
    _same_backend(p, q)
    if method != "mc":
        sub = "exact" if method == "exact" else "auto"
        h = entropy(p, method="exact" if sub == "exact" else "auto", n_samples=n, seed=seed)
        kl = kl_divergence(p, q, method=sub, n_samples=n, seed=seed, estimator=estimator)
        if not _is_estimate(h) and not _is_estimate(kl):
            return _scale(h + kl, base)
    x = draw(p, n, seed)
    return _scale(mc_mean(-log_density(q, x), "MC −log q"), base)


# ---------------------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------------------
def _options(measure: str, options: dict[str, Any]) -> tuple[str, int, int | None, str]:
    unknown = sorted(set(options) - set(_OPTIONS))
    if unknown:
        raise TypeError(
            f"`{measure}` got unknown option(s) {', '.join(map(repr, unknown))} for distribution objects; "
            f"valid options are method, n_samples, seed, estimator and base."
        )
    method = options.get("method", "auto")
    if method not in ("auto", "exact", "mc"):
        raise InvalidArgumentError(f"`method` must be 'auto', 'exact' or 'mc'; found {method!r}.")
    n = options.get("n_samples")
    n = DEFAULT_N_SAMPLES if n is None else n
    if isinstance(n, bool) or not isinstance(n, numbers.Integral) or n < 2:
        raise InvalidArgumentError(f"`n_samples` must be an integer ≥ 2; found {n!r}. Try n_samples=100_000.")
    seed = options.get("seed")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0):
        raise InvalidArgumentError(f"`seed` must be None or a non-negative integer; found {seed!r}.")
    estimator = options.get("estimator", "k1")
    if estimator not in ("k1", "k2", "k3"):
        raise InvalidArgumentError(
            f"`estimator` must be 'k1', 'k2' or 'k3'; found {estimator!r}. k3 is unbiased and non-negative."
        )
    return method, int(n), None if seed is None else int(seed), estimator


def _same_backend(p: Any, q: Any) -> None:
    bp, bq = backend_of(p), backend_of(q)
    if "other" not in (bp, bq) and bp != bq:
        raise BackendMismatchError(
            f"`p` and `q` come from different libraries ({bp} and {bq}); build both with torch.distributions "
            "or both with scipy.stats."
        )


def _find_kl(p: Any, q: Any) -> tuple[Any, Any, Any]:
    """(function, p', q'): raw types first (user registrations), then the adapted families."""
    function = registry.lookup_kl(type(p), type(q))
    if function is not None:
        return function, p, q
    fp, fq = to_family(p), to_family(q)
    return registry.lookup_kl(type(fp), type(fq)), fp, fq


def _family_note(x: Any, fx: Any) -> str:
    return "" if type(fx) is type(x) else f" (klkit family {type(fx).__name__})"


def _not_registered_kl(p: Any, q: Any, fp: Any, fq: Any) -> NotRegisteredError:
    partners = sorted({b.__name__ for a, b in registry.registered_pairs() if issubclass(type(fp), a)})
    listed = ", ".join(partners) if partners else "nothing"
    mixture = ("; for Gaussian mixtures, klkit.distributions.mixture_kl also gives deterministic bounds"
               if "Mixture" in type(p).__name__ + type(q).__name__ else "")
    return NotRegisteredError(
        f"no closed-form KL is registered for the pair ({type(p).__name__}{_family_note(p, fp)}, "
        f"{type(q).__name__}{_family_note(q, fq)}); for p = {type(fp).__name__} the registered q types are: "
        f"{listed}. Use method='mc' (or 'auto') for a Monte Carlo estimate, or add one with register_kl{mixture}."
    )


def _broadcast(a: Any, b: Any) -> tuple[Any, Any]:
    if type(a).__module__.startswith("torch"):
        import torch

        return torch.broadcast_tensors(a, b)
    import numpy as np

    return tuple(np.broadcast_arrays(a, b))  # type: ignore[return-value]


def _quiet(family: Any) -> Any:
    """numpy's floating-point warnings off (inf and nan are answers here); nothing to do for torch."""
    return NUMPY.errstate() if getattr(getattr(family, "xp", None), "name", "numpy") == "numpy" else _NULL


_NULL = contextlib.nullcontext()


def _finish(value: Any, like: Any) -> Any:
    """numpy results as float64 arrays (numpy scalars for 0-d); torch results unchanged."""
    from klkit.distributions.adapters import is_torch_distribution

    if is_torch_distribution(like) or type(value).__module__.startswith("torch"):
        return value
    import numpy as np

    return np.asarray(value, dtype=np.float64)[()]


def _is_estimate(x: Any) -> bool:
    from klkit.estimators import Estimate

    return isinstance(x, Estimate)


def _scale(value: Any, base: float | None) -> Any:
    if base is None:
        return value
    s = log_of_base(base)
    if _is_estimate(value):
        from klkit.estimators import Estimate

        return Estimate(value.value / s, value.standard_error / s, value.n_samples, value.method)
    return value / s
