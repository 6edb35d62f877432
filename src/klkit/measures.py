"""Surprise, entropy, cross-entropy, KL and Jensen–Shannon divergence on arrays.

One code path serves numpy (and Python lists) and torch: the backend is the
inputs' own, chosen per call. Large numpy inputs take fused kernels
(:mod:`klkit._kernels`); everything else is computed in log space, in column
chunks when the inputs are large, so that peak extra memory stays a small
fraction of one input.
"""

from __future__ import annotations

import math
from typing import Any, Literal, NamedTuple

import numpy as np

from klkit import _kernels
from klkit._backend import NumpyOps, TorchOps, log_of_base, namespace
from klkit._validation import (
    CHECKS,
    Kind,
    broadcast_shape,
    check_axis,
    check_base,
    check_kind,
    check_not_empty,
    check_probs,
)
from klkit.errors import InvalidDistributionError

__all__ = [
    "Decomposition",
    "cross_entropy",
    "decompose",
    "entropy",
    "js_divergence",
    "kl_divergence",
    "normalize",
    "surprise",
]

Measure = Literal["entropy", "cross_entropy", "kl_divergence", "js_divergence"]
_MODES = {"entropy": _kernels.ENTROPY, "cross_entropy": _kernels.CROSS_ENTROPY,
          "kl_divergence": _kernels.KL}
_FAST_MIN = 1 << 16  # numpy inputs with at least this many elements take the kernels
_CHUNK_MIN = 1 << 18  # inputs larger than this are processed in column chunks
_CHUNKS = 16  # ... about this many, so temporaries stay near 1/16 of one input
_LOG2 = math.log(2.0)


class Decomposition(NamedTuple):
    """``H(P, Q) = H(P) + KL(P‖Q)``, each term computed on its own (never as a difference)."""

    entropy: Any
    cross_entropy: Any
    kl_divergence: Any


# ---------------------------------------------------------------------------
# Public API
# ---------------------------------------------------------------------------


def surprise(p: Any, /, *, base: float | None = None) -> Any:
    r"""Surprise (self-information) of each probability: :math:`I(p) = -\log_b p`.

    Parameters
    ----------
    p : array_like or torch.Tensor
        Probabilities in [0, 1], any shape; evaluated elementwise.
    base : float, optional
        Logarithm base: None for nats (default), 2 for bits.

    Returns
    -------
    ndarray or torch.Tensor
        Same shape as ``p``; ``+inf`` where ``p = 0``, 0 where ``p = 1``.

    Raises
    ------
    ValueError
        If ``p`` has entries outside [0, 1] or NaN, or ``base`` is invalid.

    Examples
    --------
    >>> import klkit
    >>> float(klkit.surprise(0.5, base=2))
    1.0
    >>> float(klkit.surprise(0.25) - 2 * klkit.surprise(0.5))  # independent events add
    0.0
    """
    base = check_base(base)
    ops = namespace(p)
    x = ops.asarray(p)
    bad = ops.isnan(x) | (x < 0) | (x > 1)
    if ops.any(bad):
        found = np.asarray(ops.to_numpy(x))[np.asarray(ops.to_numpy(bad))]
        raise InvalidDistributionError(
            f"`p` must hold probabilities in [0, 1]; found {found.size} entr"
            f"{'y' if found.size == 1 else 'ies'} outside, first {found.flat[0]!r}. "
            "Pass probabilities, not counts or log-probabilities."
        )
    with ops.errstate():
        return _in_base(-ops.log(x), base)


def entropy(p: Any, /, *, axis: int = -1, base: float | None = None, kind: Kind = "probs",
            validate: bool = True, **distribution_options: Any) -> Any:
    r"""Shannon entropy :math:`H(P) = -\sum_i p_i \log p_i` along ``axis``.

    Parameters
    ----------
    p : array_like or torch.Tensor
        The distribution, outcomes along ``axis``, any batch shape.
    axis : int, default -1
        The axis holding the outcomes; the result has one value per slice.
    base : float, optional
        None for nats (default), 2 for bits, any ``b > 0, b != 1``.
    kind : {'probs', 'log_probs', 'logits'}, default 'probs'
        What ``p`` holds. Logits are normalised with a log-sum-exp.
    validate : bool, default True
        Check ``p`` (see Notes); False skips the checks for speed.

    Returns
    -------
    ndarray or torch.Tensor
        Shape of ``p`` without ``axis``; numpy in, numpy out (same float dtype);
        torch in, torch out (same dtype and device, differentiable).

    Raises
    ------
    ValueError
        Probabilities negative, NaN, infinite or not summing to 1 within √ε of
        the dtype (1.5e-8 for float64, 3.5e-4 for float32); log-probabilities
        > 0, NaN or with logsumexp ≠ 0; NaN or +inf logits, or a slice of
        only -inf; an empty or out-of-range ``axis``; a bad ``base`` or ``kind``.
    TypeError
        Non-integer ``axis``, or numpy and torch inputs mixed.

    Notes
    -----
    :math:`0 \log 0 = 0`. klkit never renormalises silently; see :func:`normalize`.

    References
    ----------
    .. [1] C. E. Shannon, "A Mathematical Theory of Communication", 1948.

    Examples
    --------
    >>> import klkit
    >>> float(klkit.entropy([0.5, 0.5], base=2))  # a fair coin carries one bit
    1.0
    >>> round(float(klkit.entropy([0.9, 0.1])), 6)
    0.325083
    """
    if distribution_options or _is_distribution(p):
        return _for_distributions("entropy", (p,), base, distribution_options)
    return _reduce("entropy", p, None, axis, base, kind, kind, validate)


def cross_entropy(p: Any, q: Any, /, *, axis: int = -1, base: float | None = None,
                  kind: Kind = "probs", q_kind: Kind | None = None, validate: bool = True,
                  **distribution_options: Any) -> Any:
    r"""Cross-entropy :math:`H(P, Q) = -\sum_i p_i \log q_i` along ``axis``.

    The expected surprise under ``q`` of outcomes drawn from ``p``; with ``p``
    one-hot labels and ``q`` a model's prediction it is the classification loss.
    ``p > 0`` where ``q = 0`` gives ``+inf``. Options as in :func:`kl_divergence`.

    Examples
    --------
    >>> import klkit
    >>> round(float(klkit.cross_entropy([0.5, 0.5], [0.9, 0.1])), 6)
    1.203973
    >>> d = klkit.decompose([0.5, 0.5], [0.9, 0.1])
    >>> bool(abs(d.cross_entropy - (d.entropy + d.kl_divergence)) < 1e-15)
    True
    """
    if distribution_options or _is_distribution(p) or _is_distribution(q):
        return _for_distributions("cross_entropy", (p, q), base, distribution_options)
    return _reduce("cross_entropy", p, q, axis, base, kind, q_kind, validate)


def kl_divergence(p: Any, q: Any, /, *, axis: int = -1, base: float | None = None,
                  kind: Kind = "probs", q_kind: Kind | None = None, validate: bool = True,
                  **distribution_options: Any) -> Any:
    r"""KL(p‖q), the Kullback–Leibler divergence of ``q`` from ``p``, along ``axis``.

    .. math:: \mathrm{KL}(P \,\|\, Q) = \sum_i p_i (\log p_i - \log q_i)

    The reverse KL is ``kl_divergence(q, p)``. Terms with ``p_i = 0`` are 0;
    ``p_i > 0`` where ``q_i = 0`` gives ``+inf``. Computed in log space, never
    as ``H(P, Q) - H(P)``; rounding below 0 is clamped to 0.

    Parameters
    ----------
    p, q : array_like or torch.Tensor
        Distributions with outcomes along ``axis``; their shapes broadcast.
    axis : int, default -1
        The outcome axis; one value per slice is returned.
    base : float, optional
        None for nats (default), 2 for bits, any ``b > 0, b != 1``.
    kind : {'probs', 'log_probs', 'logits'}, default 'probs'
        What ``p`` holds.
    q_kind : {'probs', 'log_probs', 'logits'}, optional
        What ``q`` holds; defaults to ``kind``.
    validate : bool, default True
        Check the inputs (rules under Raises of :func:`entropy`).

    Returns
    -------
    ndarray or torch.Tensor
        The broadcast shape without ``axis``; numpy → numpy (float32 stays
        float32), torch → torch (dtype, device and autograd kept).

    Raises
    ------
    ValueError
        Invalid distributions, shapes that do not broadcast, a bad ``axis``,
        ``base`` or ``kind`` (see :func:`entropy`).
    TypeError
        numpy and torch inputs mixed, or a non-integer ``axis``.

    References
    ----------
    .. [1] S. Kullback and R. A. Leibler, "On Information and Sufficiency", 1951.

    Examples
    --------
    >>> import klkit
    >>> round(float(klkit.kl_divergence([0.5, 0.5], [0.9, 0.1])), 6)
    0.510826
    >>> round(float(klkit.kl_divergence([0.9, 0.1], [0.5, 0.5])), 6)  # not symmetric
    0.368064
    >>> float(klkit.kl_divergence([0.5, 0.5], [1.0, 0.0]))
    inf
    """
    if distribution_options or _is_distribution(p) or _is_distribution(q):
        return _for_distributions("kl_divergence", (p, q), base, distribution_options)
    return _reduce("kl_divergence", p, q, axis, base, kind, q_kind, validate)


def js_divergence(p: Any, q: Any, /, *, axis: int = -1, base: float | None = None,
                  kind: Kind = "probs", q_kind: Kind | None = None, validate: bool = True) -> Any:
    r"""Jensen–Shannon divergence :math:`\tfrac12 KL(P\|M) + \tfrac12 KL(Q\|M)`, :math:`M = \tfrac12(P+Q)`.

    Symmetric, finite and at most :math:`\log 2` (1 bit). Options as in
    :func:`kl_divergence`.

    References
    ----------
    .. [1] J. Lin, "Divergence measures based on the Shannon entropy", 1991.

    Examples
    --------
    >>> import klkit
    >>> float(klkit.js_divergence([1.0, 0.0], [0.0, 1.0], base=2))  # disjoint supports
    1.0
    """
    return _reduce("js_divergence", p, q, axis, base, kind, q_kind, validate)


def decompose(p: Any, q: Any, /, *, axis: int = -1, base: float | None = None,
              kind: Kind = "probs", q_kind: Kind | None = None, validate: bool = True) -> Decomposition:
    r"""``Decomposition(entropy, cross_entropy, kl_divergence)`` of ``p`` and ``q``.

    Each term is computed directly so that :math:`H(P,Q) = H(P) + KL(P\|Q)` can be
    checked numerically. Options as in :func:`kl_divergence`.

    Examples
    --------
    >>> import klkit
    >>> d = klkit.decompose([0.5, 0.5], [0.9, 0.1], base=2)
    >>> round(float(d.entropy), 6), round(float(d.cross_entropy), 6), round(float(d.kl_divergence), 6)
    (1.0, 1.736966, 0.736966)
    """
    h = entropy(p, axis=axis, base=base, kind=kind, validate=validate)
    q_kind = kind if q_kind is None else q_kind
    ce = _reduce("cross_entropy", p, q, axis, base, kind, q_kind, False)
    kl = _reduce("kl_divergence", p, q, axis, base, kind, q_kind, validate)
    return Decomposition(h, ce, kl)


def normalize(x: Any, /, *, axis: int = -1) -> Any:
    r"""Rescale non-negative weights to probabilities: :math:`x_i / \sum_j x_j` along ``axis``.

    The explicit renormalisation klkit never does on its own.

    Raises
    ------
    ValueError
        Negative, NaN or infinite entries, or a slice summing to 0.

    Examples
    --------
    >>> import klkit
    >>> klkit.normalize([1.0, 3.0]).tolist()
    [0.25, 0.75]
    """
    ops = namespace(x)
    arr = ops.asarray(x)
    ax = check_axis(axis, arr.ndim)
    moved = ops.moveaxis(arr, ax, -1)
    bad = ~ops.isfinite(moved) | (moved < 0)
    if ops.any(bad):
        raise InvalidDistributionError(
            "`x` must hold finite, non-negative weights to be normalised; found "
            f"{int(np.sum(ops.to_numpy(bad)))} negative, NaN or infinite entries. "
            "Use kind='logits' for scores of any sign."
        )
    total = ops.sum(moved)
    if ops.any(total == 0):
        raise InvalidDistributionError(
            "`x` must have a positive sum along `axis` to be normalised; found a slice of zeros. "
            "Drop empty slices or add a prior count (e.g. x + 1)."
        )
    return ops.moveaxis(moved / total[..., None], -1, ax)


# ---------------------------------------------------------------------------
# Implementation
# ---------------------------------------------------------------------------


def _is_distribution(x: Any) -> bool:
    """A ``torch.distributions.Distribution`` or a frozen ``scipy.stats`` distribution."""
    import sys

    td = sys.modules.get("torch.distributions")
    if td is not None and isinstance(x, td.Distribution):
        return True
    return hasattr(x, "dist") and hasattr(x, "args") and hasattr(x, "rvs")


def _for_distributions(measure: str, dists: tuple[Any, ...], base: float | None, options: dict[str, Any]) -> Any:
    """Hand distribution objects to :mod:`klkit.distributions` (method, n_samples, seed, estimator)."""
    if not all(_is_distribution(d) for d in dists):
        names = ", ".join(sorted(options)) or "distribution objects"
        raise TypeError(
            f"`{measure}` got {names}: these options apply only when every input is a "
            "torch.distributions or frozen scipy.stats distribution; found "
            + ", ".join(type(d).__name__ for d in dists) + ". Drop the options for arrays."
        )
    from klkit.distributions import api  # lazy: distributions sit above measures

    return getattr(api, measure)(*dists, base=base, **options)


def _in_base(value: Any, base: float | None) -> Any:
    return value if base is None else value / log_of_base(base)


def _reduce(measure: Measure, p: Any, q: Any, axis: int, base: float | None, kind: Any,
            q_kind: Any, validate: bool) -> Any:
    """Validate the options and inputs, evaluate the measure, convert the result."""
    two = measure != "entropy"
    kind = check_kind(kind)
    q_kind = kind if q_kind is None else check_kind(q_kind, "q_kind")
    base = check_base(base)
    ops = namespace(p, q) if two else namespace(p)
    P = ops.asarray(p)
    Q = ops.asarray(q) if two else None
    shape = broadcast_shape(P.shape, Q.shape) if two else tuple(P.shape)
    ax = check_axis(axis, len(shape))
    check_not_empty(shape[ax], axis)
    if isinstance(ops, TorchOps):
        out_dtype = ops.torch.result_type(P, Q) if two else P.dtype
        if two and P.device != Q.device:
            raise InvalidDistributionError(
                f"`p` and `q` must be on the same device; found {P.device} and {Q.device}. "
                "Move one with .to(device)."
            )
    else:
        out_dtype = np.result_type(P, Q) if two else P.dtype
    P = ops.moveaxis(ops.broadcast_to(P, shape) if two else P, ax, -1)
    Q = ops.moveaxis(ops.broadcast_to(Q, shape), ax, -1) if two else None

    value = _fast_numpy(measure, P, Q, kind, q_kind, validate) if isinstance(ops, NumpyOps) else None
    if value is None:
        if validate:
            CHECKS[kind](P, "p", ops)
            if two:
                CHECKS[q_kind](Q, "q", ops)
        with ops.errstate():
            value = _evaluate(measure, P, Q, kind, q_kind, ops)
    if measure != "cross_entropy":  # rounding may not cross the mathematical bounds
        value = ops.clamp(value, 0.0, _LOG2 if measure == "js_divergence" else None)
    return ops.finish(_in_base(value, base), out_dtype)


def _fast_numpy(measure: Measure, P: np.ndarray, Q: np.ndarray | None, kind: str, q_kind: str,
                validate: bool) -> np.ndarray | None:
    """Large, C-contiguous float32/float64 numpy inputs of one kind: the fused kernels."""
    if (measure not in _MODES or kind != q_kind or kind == "log_probs" or P.size < _FAST_MIN
            or P.dtype not in (np.float32, np.float64) or not P.flags.c_contiguous):
        return None
    if Q is not None and (Q.dtype != P.dtype or not Q.flags.c_contiguous):
        return None
    batch = P.shape[:-1]
    P2 = P.reshape(-1, P.shape[-1])
    Q2 = None if Q is None else Q.reshape(P2.shape)
    mode = _MODES[measure]
    if kind == "probs":
        value, psum, qsum, bad = _kernels.probs_rows(P2, Q2, mode)
        if validate:
            tol = math.sqrt(np.finfo(P.dtype).eps)
            if bad.any() or np.any(np.abs(psum - 1) > tol) or (Q2 is not None and np.any(np.abs(qsum - 1) > tol)):
                check_probs(P, "p", NumpyOps())  # raises with the details
                check_probs(Q, "q", NumpyOps())
    else:
        value, lse_p, lse_q, bad = _kernels.logits_rows(P2, P2 if Q2 is None else Q2, mode)
        if validate and (bad.any() or np.isneginf(lse_p).any() or np.isneginf(lse_q).any()):
            CHECKS["logits"](P, "p", NumpyOps())
            CHECKS["logits"](Q, "q", NumpyOps())
    return value.reshape(batch)


def _safe_log(x: Any, ops: Any) -> Any:
    """``log x`` with ``log 0 = -inf`` and a zero (not NaN) gradient at 0."""
    positive = x > 0
    return ops.where(positive, ops.log(ops.where(positive, x, 1.0)), -math.inf)


def _normaliser(x: Any, kind: str, ops: Any, chunks: list[slice]) -> Any:
    """Per-slice log-sum-exp (keepdims) of logits in column chunks; None otherwise."""
    if kind != "logits" or len(chunks) == 1:
        return None
    top = ops.amax(x, keepdims=True)
    total = sum(ops.sum(ops.exp(x[..., c] - top))[..., None] for c in chunks)
    return top + ops.log(total)


def _log_and_prob(x: Any, kind: str, lse: Any, dtype: Any, ops: Any) -> tuple[Any, Any]:
    """(log p, p) of one chunk in the compute dtype."""
    x = ops.cast(x, dtype)
    if kind == "probs":
        return _safe_log(x, ops), x
    logp = (ops.log_softmax(x) if lse is None else x - lse) if kind == "logits" else x
    return logp, ops.exp(logp)


def _evaluate(measure: Measure, P: Any, Q: Any, kind: str, q_kind: str, ops: Any) -> Any:
    """The measure along the last axis, in column chunks when the inputs are large."""
    n = P.shape[-1]
    size = math.prod(P.shape)
    width = n if size <= _CHUNK_MIN else max(1, -(-n // _CHUNKS))
    chunks = [slice(c, min(c + width, n)) for c in range(0, n, width)]
    dtype = ops.compute_dtype(P) if Q is None else ops.compute_dtype(ops.asarray(P[..., :0] + Q[..., :0]))
    lse_p = _normaliser(P, kind, ops, chunks)
    lse_q = None if Q is None else _normaliser(Q, q_kind, ops, chunks)
    total = 0.0
    for c in chunks:
        logp, p = _log_and_prob(P[..., c], kind, lse_p, dtype, ops)
        positive = p > 0
        if measure == "entropy":
            term = -p * ops.where(positive, logp, 0.0)
        else:
            logq, q = _log_and_prob(Q[..., c], q_kind, lse_q, dtype, ops)
            if measure == "cross_entropy":
                term = -p * ops.where(positive, logq, 0.0)
            elif measure == "kl_divergence":
                term = p * ops.where(positive, logp - logq, 0.0)
            else:
                term = _js_term(logp, p, logq, q, ops)
        total = total + ops.sum(term)
    return total


def _js_term(logp: Any, p: Any, logq: Any, q: Any, ops: Any) -> Any:
    """½ p log(p/m) + ½ q log(q/m) with log m = logaddexp(log p, log q) − log 2."""
    either = (p > 0) | (q > 0)
    logm = ops.logaddexp(ops.where(either, logp, 0.0), ops.where(either, logq, 0.0)) - _LOG2
    tp = p * ops.where(p > 0, logp - logm, 0.0)
    tq = q * ops.where(q > 0, logq - logm, 0.0)
    return 0.5 * (tp + tq)
