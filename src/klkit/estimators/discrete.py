r"""Entropy, cross-entropy and KL divergence of discrete distributions from samples or counts.

Each function takes either raw ``samples`` (any hashable symbols: integers,
strings, rows of a 2-D array) or ``counts``, so that counting can happen
elsewhere (Dask, Spark, a database) and only the histogram comes here. Counts
are either an array aligned by position or a mapping ``{symbol: count}``.
"""

from __future__ import annotations

import math
import numbers
from typing import Any, Literal

import numpy as np

from klkit._engine import check_base, log_of_base
from klkit.errors import InvalidArgumentError, InvalidDistributionError, ShapeError
from klkit.estimate import Estimate
from klkit.estimators.checks import check_choice
from klkit.estimators.counts import METHOD_LABELS, chao_shen_entropy, symbol_counts

__all__ = ["discrete_cross_entropy", "discrete_entropy", "discrete_kl_divergence"]

EntropyMethod = Literal["plugin", "miller_madow", "chao_shen"]
DivergenceMethod = Literal["plugin", "miller_madow"]
Unseen = Literal["inf", "raise", "pseudocount"]
_ENTROPY_METHODS = ("plugin", "miller_madow", "chao_shen")
_DIVERGENCE_METHODS = ("plugin", "miller_madow")
_UNSEEN = ("inf", "raise", "pseudocount")


# ---------------------------------------------------------------------------
# Public API
# ---------------------------------------------------------------------------


def discrete_entropy(
    samples: Any = None, *, counts: Any = None, method: EntropyMethod = "plugin", base: float | None = None
) -> Estimate:
    r"""Shannon entropy :math:`H(P) = -\sum_i p_i \log p_i` estimated from samples of P or their counts.

    With :math:`n_i` the count of symbol :math:`i`, :math:`n = \sum_i n_i`,
    :math:`\hat p_i = n_i / n` and :math:`m` the number of symbols seen:

    - ``"plugin"``: :math:`\hat H = -\sum_i \hat p_i \log \hat p_i`, biased low by
      about :math:`(m - 1) / (2n)` nats.
    - ``"miller_madow"``: :math:`\hat H + (m - 1) / (2n)`, which removes that
      first-order bias (Miller, 1955).
    - ``"chao_shen"``: coverage-adjusted Horvitz–Thompson estimator for
      undersampled data (Chao & Shen, 2003): with :math:`f_1` the number of
      singletons, coverage :math:`C = 1 - f_1/n` (:math:`f_1 = n - 1` if every
      sample is a singleton), :math:`\tilde p_i = C \hat p_i` and
      :math:`\hat H = -\sum_i \tilde p_i \log \tilde p_i / (1 - (1 - \tilde p_i)^n)`.

    The standard error is the delta-method one of the plug-in estimator,
    :math:`\sqrt{(\sum_i \hat p_i \log^2 \hat p_i - \hat H^2)/n}`; it ignores the
    bias, which dominates when :math:`n` is not much larger than the number of
    symbols.

    Parameters
    ----------
    samples : array_like, optional
        Observed symbols: a 1-D array (numbers, strings, ...), or a 2-D array whose
        rows are the symbols (joint entropy of the columns).
    counts : array_like or Mapping, optional
        Non-negative integer counts, instead of ``samples``: a 1-D array (zeros
        allowed) or ``{symbol: count}``.
    method : {'plugin', 'miller_madow', 'chao_shen'}, default 'plugin'
    base : float, optional
        None for nats (default), 2 for bits.

    Returns
    -------
    Estimate
        numpy float64 ``value`` and ``standard_error``; ``n_samples`` is :math:`n`.

    Raises
    ------
    ValueError
        Both or neither of ``samples`` and ``counts``; empty input; counts that are
        negative, non-integer or NaN; an unknown ``method``; a bad ``base``.

    References
    ----------
    G. A. Miller, "Note on the bias of information estimates", 1955.
    A. Chao and T.-J. Shen, "Nonparametric estimation of Shannon's index of diversity when
    there are unseen species in sample", Environ. Ecol. Stat. 10, 2003.

    Examples
    --------
    >>> from klkit.estimators import discrete_entropy
    >>> print(discrete_entropy(["H", "T", "T", "H"], base=2))  # a fair coin: 1 bit
    1.0000 ± 0 (plug-in entropy, n=4)
    >>> e = discrete_entropy(counts=[30, 20, 0, 50], method="miller_madow")
    >>> round(e, 4)
    1.0397
    """
    check_choice(method, "method", _ENTROPY_METHODS)
    base = check_base(base)
    _, c = symbol_counts(samples, counts, "samples", "counts")
    n = int(c.sum())
    seen = c[c > 0].astype(np.float64)
    p = seen / n
    logp = np.log(p)
    h_plugin = float(-(p * logp).sum())
    if method == "plugin":
        h = h_plugin
    elif method == "miller_madow":
        h = h_plugin + (seen.size - 1) / (2.0 * n)
    else:
        h = chao_shen_entropy(seen, n)
    var = max(float((p * logp * logp).sum()) - h_plugin**2, 0.0) / n
    scale = log_of_base(base)
    return Estimate(np.float64(h / scale), np.float64(math.sqrt(var) / scale), n, f"{METHOD_LABELS[method]} entropy")


def _support_of_p(
    p_samples: Any,
    q_samples: Any,
    p_counts: Any,
    q_counts: Any,
    method: str,
    unseen: str,
    pseudocount: float,
    base: float | None,
    label: str,
) -> Any:
    """``(p, q, n_p, n_q, log base)`` on the symbols p has seen, or the ``+inf`` Estimate
    when one of them is unseen in q (after the ``unseen`` rule was applied)."""
    p, q, n_p, n_q, _ = _pair(p_samples, q_samples, p_counts, q_counts, method, unseen, pseudocount)
    scale = log_of_base(check_base(base))
    if np.any(q[p > 0] == 0):
        return Estimate(np.float64(np.inf), np.float64(np.nan), n_p, label)
    mask = p > 0
    return p[mask], q[mask], n_p, n_q, scale


def discrete_kl_divergence(
    p_samples: Any = None,
    q_samples: Any = None,
    *,
    p_counts: Any = None,
    q_counts: Any = None,
    method: DivergenceMethod = "plugin",
    unseen: Unseen = "inf",
    pseudocount: float = 1.0,
    base: float | None = None,
) -> Estimate:
    r"""KL(P‖Q) = :math:`\sum_i p_i \log(p_i / q_i)` estimated from samples (or counts) of P and of Q.

    Plug-in: :math:`\widehat{KL} = \sum_i \hat p_i \log(\hat p_i / \hat q_i)` over the
    symbols seen in P's sample. ``"miller_madow"`` subtracts the first-order bias
    of the plug-in estimator,
    :math:`(m_p - 1)/(2 n_p) + \sum_i \hat p_i (1 - \hat q_i) / (2 n_q \hat q_i)`
    (from :math:`E[\log \hat x] \approx \log x - (1 - x)/(2 n x)` for a multinomial
    frequency), and clips at 0.

    **Symbols unseen in Q** (seen in P's sample, count 0 in Q's) are never
    dropped; ``unseen`` decides:

    - ``"inf"`` (default): the plug-in :math:`\hat q_i = 0` makes the estimate
      ``+inf``, which is what the data say; the result is ``+inf`` with NaN error.
    - ``"raise"``: raise ``ValueError`` listing the unseen symbols.
    - ``"pseudocount"``: add ``pseudocount`` (1 = Laplace's add-one rule) to Q's
      count of every symbol in the union of both samples (and every position for
      array counts) before normalising. This is a prior on Q; it biases the
      estimate and its effect shrinks as :math:`n_q` grows.

    The standard error is the delta-method one for independent samples,
    :math:`\sqrt{(\sum \hat p \log^2(\hat p/\hat q) - \widehat{KL}^2)/n_p +
    (\sum \hat p^2/\hat q - 1)/n_q}`.

    Parameters
    ----------
    p_samples, q_samples : array_like, optional
        Symbols drawn from P and from Q (1-D, or 2-D with rows as symbols).
    p_counts, q_counts : array_like or Mapping, optional
        Counts instead of samples. Two arrays are aligned by position (same length);
        mappings ``{symbol: count}`` (or samples) are aligned by symbol. An array of
        counts cannot be aligned with samples or a mapping.
    method : {'plugin', 'miller_madow'}, default 'plugin'
    unseen : {'inf', 'raise', 'pseudocount'}, default 'inf'
    pseudocount : float, default 1.0
        Added to Q's counts when ``unseen="pseudocount"``; must be > 0.
    base : float, optional
        None for nats (default), 2 for bits.

    Returns
    -------
    Estimate
        ``n_samples`` is :math:`n_p`, the size of P's sample.

    Raises
    ------
    ValueError
        Missing or doubled inputs, bad counts, misaligned array counts, an unknown
        ``method`` or ``unseen``, a symbol unseen in Q with ``unseen="raise"``.
    TypeError
        Array counts mixed with samples or a mapping.

    Examples
    --------
    >>> from klkit.estimators import discrete_kl_divergence
    >>> e = discrete_kl_divergence(p_counts=[50, 50], q_counts=[25, 75])
    >>> round(e, 4)  # 0.5 log(0.5/0.25) + 0.5 log(0.5/0.75)
    0.1438
    >>> float(discrete_kl_divergence(["a", "b"], ["a", "a"]))  # 'b' unseen in Q
    inf
    >>> round(discrete_kl_divergence(["a", "b"], ["a", "a"], unseen="pseudocount"), 4)
    0.1438
    """
    label = f"{METHOD_LABELS[method]} KL"
    pair = _support_of_p(p_samples, q_samples, p_counts, q_counts, method, unseen, pseudocount, base, label)
    if isinstance(pair, Estimate):
        return pair
    pm, qm, n_p, n_q, scale = pair
    logratio = np.log(pm) - np.log(qm)
    kl = float((pm * logratio).sum())
    var = max(float((pm * logratio**2).sum()) - kl**2, 0.0) / n_p + max(float((pm * pm / qm).sum()) - 1.0, 0.0) / n_q
    if method == "miller_madow":
        kl = max(kl - (pm.size - 1) / (2.0 * n_p) - float((pm * (1 - qm) / qm).sum()) / (2.0 * n_q), 0.0)
    return Estimate(np.float64(kl / scale), np.float64(math.sqrt(var) / scale), n_p, label)


def discrete_cross_entropy(
    p_samples: Any = None,
    q_samples: Any = None,
    *,
    p_counts: Any = None,
    q_counts: Any = None,
    method: DivergenceMethod = "plugin",
    unseen: Unseen = "inf",
    pseudocount: float = 1.0,
    base: float | None = None,
) -> Estimate:
    r"""Cross-entropy :math:`H(P, Q) = -\sum_i p_i \log q_i` estimated from samples (or counts) of P and Q.

    Plug-in: :math:`-\sum_i \hat p_i \log \hat q_i`; ``"miller_madow"`` subtracts
    the first-order bias :math:`\sum_i \hat p_i (1 - \hat q_i)/(2 n_q \hat q_i)`.
    Inputs, alignment and the rule for symbols unseen in Q (``unseen``) are those
    of :func:`discrete_kl_divergence`; with ``unseen="inf"`` such a symbol makes
    the result ``+inf``. It is computed directly, not as entropy plus KL.

    Parameters
    ----------
    p_samples, q_samples, p_counts, q_counts, method, unseen, pseudocount, base
        As in :func:`discrete_kl_divergence`.

    Returns
    -------
    Estimate
        ``n_samples`` is :math:`n_p`. Standard error by the delta method,
        :math:`\sqrt{(\sum \hat p \log^2 \hat q - \hat H^2)/n_p + (\sum \hat p^2/\hat q - 1)/n_q}`.

    Raises
    ------
    ValueError, TypeError
        As in :func:`discrete_kl_divergence`.

    Examples
    --------
    >>> from klkit.estimators import discrete_cross_entropy
    >>> print(discrete_cross_entropy(p_counts=[1, 1], q_counts=[1, 1], base=2))
    1.0000 ± 0 (plug-in cross-entropy, n=2)
    """
    label = f"{METHOD_LABELS[method]} cross-entropy"
    pair = _support_of_p(p_samples, q_samples, p_counts, q_counts, method, unseen, pseudocount, base, label)
    if isinstance(pair, Estimate):
        return pair
    pm, qm, n_p, n_q, scale = pair
    logq = np.log(qm)
    ce = float(-(pm * logq).sum())
    var = max(float((pm * logq**2).sum()) - ce**2, 0.0) / n_p + max(float((pm * pm / qm).sum()) - 1.0, 0.0) / n_q
    if method == "miller_madow":
        ce -= float((pm * (1 - qm) / qm).sum()) / (2.0 * n_q)
    return Estimate(np.float64(ce / scale), np.float64(math.sqrt(var) / scale), n_p, label)


# ---------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------


def _pair(
    p_samples: Any, q_samples: Any, p_counts: Any, q_counts: Any, method: str, unseen: str, pseudocount: float
) -> tuple[np.ndarray, np.ndarray, int, int, np.ndarray | None]:
    """Aligned probability vectors of P and Q (after the unseen rule), their sample sizes, the symbols."""
    check_choice(method, "method", _DIVERGENCE_METHODS)
    check_choice(unseen, "unseen", _UNSEEN)
    if (
        isinstance(pseudocount, bool)
        or not isinstance(pseudocount, numbers.Real)
        or not (math.isfinite(pseudocount) and pseudocount > 0)
    ):
        raise InvalidArgumentError(
            f"`pseudocount` must be a finite number > 0; found {pseudocount!r}. Use 1 for Laplace's add-one rule."
        )
    sp, cp = symbol_counts(p_samples, p_counts, "p_samples", "p_counts")
    sq, cq = symbol_counts(q_samples, q_counts, "q_samples", "q_counts")
    if (sp is None) != (sq is None):
        raise TypeError(
            "an array of counts is aligned by position and cannot be matched with symbols from samples or a "
            "mapping; pass both as arrays of the same length, or give the counts as {symbol: count}."
        )
    if sp is None:
        if cp.size != cq.size:
            raise ShapeError(
                f"`p_counts` and `q_counts` must have the same length (aligned by position); found {cp.size} and "
                f"{cq.size}. Pad the shorter with zeros, or pass mappings {{symbol: count}}."
            )
        symbols = None
    else:
        try:
            both = np.concatenate([sp, sq])
        except ValueError:
            raise ShapeError(
                f"symbols of P and Q must have the same form; found shapes {sp.shape[1:]} and {sq.shape[1:]} per "
                "symbol. Pass samples with the same number of columns."
            ) from None
        symbols, inverse = np.unique(both, axis=0 if both.ndim == 2 else None, return_inverse=True)
        inverse = inverse.reshape(-1)
        k = len(symbols)
        cp = np.bincount(inverse[: len(sp)], weights=cp, minlength=k).astype(np.int64)
        cq = np.bincount(inverse[len(sp) :], weights=cq, minlength=k).astype(np.int64)
    n_p, n_q = int(cp.sum()), int(cq.sum())
    missing = (cp > 0) & (cq == 0)
    qf = cq.astype(np.float64)
    if missing.any() and unseen == "raise":
        names = (symbols[missing] if symbols is not None else np.nonzero(missing)[0])[:5]
        raise InvalidDistributionError(
            f"every symbol seen in P's sample must be seen in Q's for a finite plug-in estimate; found "
            f"{int(missing.sum())} unseen in Q, first {names.tolist()!r}. Pass unseen='pseudocount' to smooth "
            "Q (Laplace), unseen='inf' to get +inf, or draw more samples from Q."
        )
    if unseen == "pseudocount":
        qf = qf + pseudocount
    return cp / n_p, qf / qf.sum(), n_p, n_q, symbols
