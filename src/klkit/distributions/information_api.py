"""Entropy, cross-entropy and KL of distribution objects: exact if registered, else Monte Carlo.

The options and return types are those described in :mod:`klkit.distributions.api`.
"""

from __future__ import annotations

from typing import Any

from klkit._engine import check_base
from klkit.distributions import registry
from klkit.distributions._dispatch import (
    family_note,
    find_kl,
    finish,
    finite,
    is_estimate,
    log_densities_at,
    parse_options,
    quiet,
    same_library,
    scale,
)
from klkit.distributions.adapters import to_family
from klkit.distributions.checks import check_frozen, check_pair
from klkit.distributions.mc_stream import TermStream, to_host
from klkit.distributions.montecarlo import batches, log_density
from klkit.errors import NotRegisteredError
from klkit.estimators import mc_kl
from klkit.estimators.sampled_kl import SAMPLED_KL

__all__ = ["cross_entropy", "decompose", "entropy", "kl_divergence"]


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
    method, n, seed, estimator = parse_options("kl_divergence", options)
    base = check_base(base)
    same_library(p, q)
    if method != "mc":
        function, fp, fq = find_kl(p, q)
        if function is not None:
            try:
                with quiet(fp):
                    return scale(finish(function(fp, fq), p), base)
            except NotRegisteredError:
                if method == "exact":
                    raise
        elif method == "exact":
            check_pair(p, q)
            raise _not_registered_kl(p, q, fp, fq)
    check_pair(p, q)
    return scale(_mc_kl(p, q, n, seed, estimator), base)


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
    method, n, seed, _ = parse_options("entropy", options)
    base = check_base(base)
    check_frozen(p, "p")
    if method != "mc":
        fp = p
        function = registry.lookup_entropy(type(p))
        if function is None:
            fp = to_family(p)
            function = registry.lookup_entropy(type(fp))
        if function is not None:
            try:
                with quiet(fp):
                    return scale(finish(function(fp), p), base)
            except NotRegisteredError:  # a formula that covers only part of its type (e.g. affine transforms)
                if method == "exact":
                    raise
        elif method == "exact":
            names = ", ".join(t.__name__ for t in registry.registered_entropies())
            raise NotRegisteredError(
                f"no closed-form entropy is registered for {type(p).__name__}"
                f"{family_note(p, fp)}; registered families: {names}. "
                "Use method='mc' for a Monte Carlo estimate, or register one with register_entropy."
            )
    stream = TermStream(n)
    for x in batches(p, n, seed):
        stream.add(-log_density(p, x))
    return scale(stream.estimate("MC −log p"), base)


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
    method, n, seed, estimator = parse_options("cross_entropy", options)
    base = check_base(base)
    same_library(p, q)
    if method != "mc":
        sub = "exact" if method == "exact" else "auto"
        h = entropy(p, method="exact" if sub == "exact" else "auto", n_samples=n, seed=seed)
        kl = kl_divergence(p, q, method=sub, n_samples=n, seed=seed, estimator=estimator)
        if not is_estimate(h) and not is_estimate(kl):
            return scale(h + kl, base)
    check_pair(p, q)
    stream = TermStream(n)
    for x in batches(p, n, seed):
        _, log_q = log_densities_at(p, q, x)
        stream.add(-log_q, finite(log_q))
    stream.warn_if_unreliable("cross-entropy H(p, q)", _ADVICE_CE, stacklevel=5)
    return scale(stream.estimate("MC −log q"), base)


def decompose(p: Any, q: Any, /, *, base: float | None = None, **options: Any) -> Any:
    r"""``Decomposition(entropy, cross_entropy, kl_divergence)`` of two distribution objects.

    Each term is computed on its own (exact where a closed form exists, else Monte Carlo
    with the same ``seed``), never one as the difference of the others, so
    :math:`H(P, Q) = H(P) + KL(P\|Q)` is a check, not an identity by construction.

    Examples
    --------
    >>> from scipy import stats
    >>> from klkit.distributions import api
    >>> d = api.decompose(stats.norm(0, 1), stats.norm(1, 1))
    >>> float(d.kl_divergence), bool(abs(d.cross_entropy - d.entropy - 0.5) < 1e-12)
    (0.5, True)
    """
    from klkit.measures import Decomposition

    parse_options("decompose", options)
    same_library(p, q)
    check_pair(p, q)
    return Decomposition(
        entropy(p, base=base, **options),
        cross_entropy(p, q, base=base, **options),
        kl_divergence(p, q, base=base, **options),
    )


# ---------------------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------------------


def _not_registered_kl(p: Any, q: Any, fp: Any, fq: Any) -> NotRegisteredError:
    partners = sorted({b.__name__ for a, b in registry.registered_pairs() if issubclass(type(fp), a)})
    listed = ", ".join(partners) if partners else "nothing"
    mixture = (
        "; for Gaussian mixtures, klkit.distributions.mixture_kl also gives deterministic bounds"
        if "Mixture" in type(p).__name__ + type(q).__name__
        else ""
    )
    return NotRegisteredError(
        f"no closed-form KL is registered for the pair ({type(p).__name__}{family_note(p, fp)}, "
        f"{type(q).__name__}{family_note(q, fq)}); for p = {type(fp).__name__} the registered q types are: "
        f"{listed}. Use method='mc' (or 'auto') for a Monte Carlo estimate, or add one with register_kl{mixture}."
    )


_ADVICE_K1 = "Use estimator='k1' (finite variance whenever Var_p[log p/q] is), or "
_ADVICE_KL = (
    "a closed form (method='exact', or add one with klkit.distributions.register_kl), or check "
    "whether KL(p‖q) is infinite (q's tails lighter than p's); more samples will not fix an infinite "
    "variance."
)
_ADVICE_CE = (
    "Use a closed form (method='exact', register_kl/register_entropy), or check whether H(p, q) is "
    "infinite (q's tails lighter than p's); more samples will not fix an infinite variance."
)


def _mc_kl(p: Any, q: Any, n: int, seed: int | None, estimator: str) -> Any:
    """Monte Carlo KL(p‖q) over batches of samples of p: :func:`klkit.estimators.mc_kl` per batch, merged."""
    stream = TermStream(n)
    for x in batches(p, n, seed):
        log_p, log_q = log_densities_at(p, q, x)
        batch = mc_kl(log_p, log_q, estimator=estimator)
        stream.add_summary(int(x.shape[0]), batch.value, batch.standard_error)
        terms, finite_ratio = _kl_terms(log_p, log_q, estimator)
        stream.track(terms, finite_ratio)
    advice = (_ADVICE_K1 if estimator != "k1" else "Use ") + _ADVICE_KL
    stream.warn_if_unreliable(f"KL(p‖q) with estimator={estimator!r}", advice, stacklevel=6)
    return stream.estimate(f"MC {estimator}")


def _kl_terms(log_p: Any, log_q: Any, estimator: str) -> tuple[Any, Any]:
    """The per-sample terms of the estimator (float64, host; :mod:`klkit.estimators.sampled_kl`) and where
    log(q/p) is finite."""
    import numpy as np

    lp, lq = to_host(log_p), to_host(log_q)
    with np.errstate(all="ignore"):
        log_r = lq - lp
        return np.asarray(SAMPLED_KL[estimator](log_r), dtype=np.float64), np.isfinite(log_r)
