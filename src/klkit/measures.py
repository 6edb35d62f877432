"""Surprise, entropy, cross-entropy, KL and Jensen–Shannon divergence on arrays.

Every call starts at one door, :func:`klkit._xp.namespace`: the inputs' own array
library (numpy for lists), with no global backend. Behind it, one generic path
written against the Python array API (:func:`_evaluate`: log space, masks,
chunks) serves every library, autograd, half precision (accumulated in float32)
and ``torch.compile``; it is the reference the fast paths are pinned to by
``tests/test_differential.py``. The fast paths exist only where a benchmark
proves them: small numpy probabilities, and small CPU tensors outside autograd
through shared memory (:func:`_small_numpy`: one compiled pass), large numpy
arrays (the fused numba kernels of :mod:`klkit._kernels`), torch tensors without
autograd (library kernels on row tiles, :func:`_fast_torch`), and torch logits
under autograd (torch's own composition, :func:`_plain_torch_logits`, and from
16M elements the fused Functions of :mod:`klkit._torch_functions`). Whatever the path, an unvalidated
slice holding an entry outside its kind's domain gives NaN, and large inputs go
in chunks so that peak extra memory stays under 25% of one input (measured in
``tests/test_measures_memory.py``).
"""

from __future__ import annotations

import math
from typing import Any, Literal, NamedTuple

import array_api_compat
import numpy as np

from klkit import _kernels
from klkit._validation import (
    CHECKS,
    Kind,
    broadcast_shape,
    check_axis,
    check_base,
    check_kind,
    check_not_empty,
    check_streaming,
    check_validate,
    sum_tolerance,
)
from klkit._xp import (
    NUMPY,
    asarray,
    clamp_keep_gradient,
    compute_dtype,
    errstate,
    is_numpy,
    is_torch,
    is_torch_array,
    log_of_base,
    logsumexp,
    namespace,
    to_numpy,
)
from klkit.errors import InvalidArgumentError, InvalidDistributionError

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
_MODES = {"entropy": _kernels.ENTROPY, "cross_entropy": _kernels.CROSS_ENTROPY, "kl_divergence": _kernels.KL}
_FAST_MIN = 1 << 16  # numpy inputs with at least this many elements take the kernels
_CHUNK_MIN = 1 << 18  # inputs with more elements than this are processed in chunks
_CHUNK_BYTES = 320  # generic path: one chunk holds size · itemsize / _CHUNK_BYTES elements, so that
# its ~8 float64 temporaries stay under 20% of one input (float32: chunks of 1/80 of the input)
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
    xp = namespace(p, names=("p",))
    x = asarray(p, xp)
    bad = xp.isnan(x) | (x < 0) | (x > 1)
    if bool(xp.any(bad)):
        found = to_numpy(x)[to_numpy(bad)]
        raise InvalidDistributionError(
            f"`p` must hold probabilities in [0, 1]; found {found.size} entr"
            f"{'y' if found.size == 1 else 'ies'} outside, first {found.flat[0].item()!r}. "
            "Pass probabilities, not counts or log-probabilities."
        )
    with errstate(xp):
        return _in_base(-xp.log(x), base)


def entropy(
    p: Any,
    /,
    *,
    axis: int = -1,
    base: float | None = None,
    kind: Kind = "probs",
    validate: bool = True,
    **distribution_options: Any,
) -> Any:
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


def cross_entropy(
    p: Any,
    q: Any,
    /,
    *,
    axis: int = -1,
    base: float | None = None,
    kind: Kind = "probs",
    q_kind: Kind | None = None,
    validate: bool = True,
    **distribution_options: Any,
) -> Any:
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


def kl_divergence(
    p: Any,
    q: Any,
    /,
    *,
    axis: int = -1,
    base: float | None = None,
    kind: Kind = "probs",
    q_kind: Kind | None = None,
    validate: bool = True,
    **distribution_options: Any,
) -> Any:
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


def js_divergence(
    p: Any,
    q: Any,
    /,
    *,
    weights: tuple[float, float] | None = None,
    axis: int = -1,
    base: float | None = None,
    kind: Kind = "probs",
    q_kind: Kind | None = None,
    validate: bool = True,
    **distribution_options: Any,
) -> Any:
    r"""Jensen–Shannon divergence :math:`\tfrac12 KL(P\|M) + \tfrac12 KL(Q\|M)`, :math:`M = \tfrac12(P+Q)`.

    Symmetric, finite and at most :math:`\log 2` (1 bit). With ``weights=(w, 1 - w)`` it is the
    weighted divergence :math:`w\,KL(P\|M) + (1-w)\,KL(Q\|M)` with :math:`M = wP + (1-w)Q`, equal to
    :math:`H(M) - wH(P) - (1-w)H(Q)` and at most the entropy of the weights, :math:`h(w)`; it is
    symmetric only for :math:`w = \tfrac12`. Computed from the KL terms in log space, never as that
    difference of entropies. Other options as in :func:`kl_divergence`.

    Parameters
    ----------
    weights : (float, float), optional
        ``(w, 1 - w)``: the weights of P and Q in the mixture M, two numbers in [0, 1] summing
        to 1. None (default) means ``(0.5, 0.5)``.

    Raises
    ------
    ValueError
        ``weights`` not two numbers in [0, 1] summing to 1; otherwise as :func:`kl_divergence`.
    TypeError
        ``weights`` given with distribution objects (they apply to arrays only).

    References
    ----------
    .. [1] J. Lin, "Divergence measures based on the Shannon entropy", 1991.

    Examples
    --------
    >>> import klkit
    >>> float(klkit.js_divergence([1.0, 0.0], [0.0, 1.0], base=2))  # disjoint supports
    1.0
    >>> round(float(klkit.js_divergence([1.0, 0.0], [0.0, 1.0], weights=(0.3, 0.7), base=2)), 6)  # h(0.3)
    0.881291
    """
    if distribution_options or _is_distribution(p) or _is_distribution(q):
        if weights is not None:
            raise TypeError(
                "`weights` applies to arrays only; found distribution objects "
                f"({type(p).__name__}, {type(q).__name__}). Drop `weights`, or evaluate both on a grid as arrays."
            )
        return _for_distributions("js_divergence", (p, q), base, distribution_options)
    return _reduce("js_divergence", p, q, axis, base, kind, q_kind, validate, _check_weights(weights))


def decompose(
    p: Any,
    q: Any,
    /,
    *,
    axis: int = -1,
    base: float | None = None,
    kind: Kind = "probs",
    q_kind: Kind | None = None,
    validate: bool = True,
    **distribution_options: Any,
) -> Decomposition:
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
    if distribution_options or _is_distribution(p) or _is_distribution(q):
        return _for_distributions("decompose", (p, q), base, distribution_options)
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
    xp = namespace(x, names=("x",))
    arr = asarray(x, xp, "x")
    ax = check_axis(axis, arr.ndim)
    moved = xp.moveaxis(arr, ax, -1)
    bad = ~xp.isfinite(moved) | (moved < 0)
    if bool(xp.any(bad)):
        raise InvalidDistributionError(
            "`x` must hold finite, non-negative weights to be normalised; found "
            f"{int(np.sum(to_numpy(bad)))} negative, NaN or infinite entries. "
            "Use kind='logits' for scores of any sign."
        )
    total = xp.sum(moved, axis=-1)
    if bool(xp.any(total == 0)):
        raise InvalidDistributionError(
            "`x` must have a positive sum along `axis` to be normalised; found a slice of zeros. "
            "Drop empty slices or add a prior count (e.g. x + 1)."
        )
    return xp.moveaxis(moved / total[..., None], -1, ax)


# ---------------------------------------------------------------------------
# Implementation
# ---------------------------------------------------------------------------


def _is_distribution(x: Any) -> bool:
    """A ``torch.distributions.Distribution`` or a frozen ``scipy.stats`` distribution."""
    if isinstance(x, (np.ndarray, list, tuple, float, int)) or is_torch_array(x):
        return False
    import sys

    td = sys.modules.get("torch.distributions")
    if td is not None and isinstance(x, td.Distribution):
        return True
    if hasattr(x, "dist") and hasattr(x, "args") and hasattr(x, "rvs"):
        return True
    return type(x).__module__.startswith("scipy.stats") and hasattr(x, "rvs")  # multivariate or unfrozen


_DISTRIBUTION_OPTIONS = ("method", "n_samples", "seed", "estimator")


def _for_distributions(
    measure: str, dists: tuple[Any, ...], base: float | None, options: dict[str, Any], args: tuple[Any, ...] = ()
) -> Any:
    """Hand distribution objects to :mod:`klkit.distributions` (method, n_samples, seed, estimator);
    ``args`` follow the distributions positionally (the order α of a Rényi divergence, the f of an f-divergence)."""
    unknown = sorted(set(options) - set(_DISTRIBUTION_OPTIONS))
    if unknown:
        names = ", ".join(f"`{k}`" for k in unknown)
        raise TypeError(
            f"`{measure}` got an unknown keyword argument {names}. klkit reduces over `axis` (not `dim`) and "
            "returns one value per slice (no `reduction`: call .mean() or .sum() on the result); the options "
            "are axis, base, kind, q_kind and validate, plus method, n_samples, seed and estimator for "
            "distribution objects."
        )
    if not all(_is_distribution(d) for d in dists):
        raise TypeError(
            f"`{measure}` got {', '.join(sorted(options))}: these options apply only when every input is a "
            "torch.distributions or frozen scipy.stats distribution; found "
            + ", ".join(type(d).__name__ for d in dists)
            + ". Drop the options for arrays."
        )
    from klkit.distributions import api  # lazy: distributions sit above measures

    return getattr(api, measure)(*dists, *args, base=base, **options)


def _in_base(value: Any, base: float | None) -> Any:
    return value if base is None else value / log_of_base(base)


def _check_weights(weights: Any) -> tuple[float, float] | None:
    """``(w, 1 - w)`` as two floats; None for the default (½, ½)."""
    if weights is None:
        return None
    try:
        pair = tuple(float(w) for w in weights) if not isinstance(weights, (str, bytes)) else ()
    except (TypeError, ValueError):
        pair = ()
    if len(pair) != 2 or not all(0.0 <= w <= 1.0 for w in pair) or abs(pair[0] + pair[1] - 1.0) > 1e-12:
        raise InvalidArgumentError(
            f"`weights` must be two numbers in [0, 1] that sum to 1, (w, 1 - w); found {weights!r}. "
            "Pass e.g. weights=(0.3, 0.7), or None for the symmetric (0.5, 0.5)."
        )
    return None if pair == (0.5, 0.5) else pair


def _js_bound(weights: tuple[float, float] | None) -> float:
    """The largest Jensen–Shannon divergence (disjoint supports): the entropy of the weights."""
    if weights is None:
        return _LOG2
    return float(sum(-w * math.log(w) for w in weights if w > 0))


def _reduce(
    measure: Measure,
    p: Any,
    q: Any,
    axis: int,
    base: float | None,
    kind: Any,
    q_kind: Any,
    validate: Any,
    weights: tuple[float, float] | None = None,
) -> Any:
    """Validate the options and inputs, evaluate the measure, convert the result."""
    two = measure != "entropy"
    kind = check_kind(kind)
    q_kind = kind if q_kind is None else check_kind(q_kind, "q_kind")
    base = check_base(base)
    validate = check_validate(validate)
    xp = namespace(p, q) if two else namespace(p, names=("p",))
    P = asarray(p, xp, "p")
    Q = asarray(q, xp, "q") if two else None
    shape = broadcast_shape(P.shape, Q.shape) if two and P.shape != Q.shape else tuple(P.shape)
    ax = check_axis(axis, len(shape))
    check_not_empty(shape[ax], axis)
    out_dtype = P.dtype if not two or P.dtype == Q.dtype else xp.result_type(P, Q)
    if (
        two
        and not is_numpy(xp)
        and (P.device != Q.device if is_torch(xp) else array_api_compat.device(P) != array_api_compat.device(Q))
    ):
        raise InvalidDistributionError(
            f"`p` and `q` must be on the same device; found {array_api_compat.device(P)} and "
            f"{array_api_compat.device(Q)}. Move one with .to(device)."
        )
    last = ax == len(shape) - 1
    if two and tuple(P.shape) != shape:
        P = xp.broadcast_to(P, shape)
    if two and tuple(Q.shape) != shape:
        Q = xp.broadcast_to(Q, shape)
    P = P if last else xp.moveaxis(P, ax, -1)
    Q = Q if not two or last else xp.moveaxis(Q, ax, -1)

    value = None
    if is_numpy(xp):
        value = (
            _small_numpy(measure, P, Q, validate)
            if kind == q_kind == "probs" and P.size < _FAST_MIN
            else _fast_numpy(measure, P, Q, kind, q_kind, validate)
        )
    elif is_torch(xp) and kind == q_kind == "logits" and measure != "js_divergence" and _fused_pays(P, Q):
        value = _fused_torch_logits(measure, P, Q, validate, out_dtype)
    elif is_torch(xp) and kind == q_kind == "logits" and measure != "js_divergence" and _under_autograd(P, Q):
        value = _plain_torch_logits(measure, P, Q, out_dtype)
    elif is_torch(xp) and kind == q_kind == "probs" and _numpy_bridge(P, Q):
        value = _small_numpy(measure, P.numpy(), None if Q is None else Q.numpy(), validate)
        if value is not None:
            value = _clamp(value, None, NUMPY) if measure != "cross_entropy" else value
            return _finish(xp.from_numpy(np.asarray(_in_base(value, base))), out_dtype, xp)
    elif is_torch(xp):
        value, validate = _fast_torch(measure, P, Q, kind, q_kind, validate, xp)
    if value is None:
        if validate:
            for x, k, name in ((P, kind, "p"), (Q, q_kind, "q"))[: 1 + two]:
                _validate(x, k, name, xp)
        with errstate(xp):
            value = _evaluate(measure, P, Q, kind, q_kind, xp, _budget(P, Q, xp), guard=not validate, weights=weights)
    if measure != "cross_entropy":  # rounding may not cross the mathematical bounds
        value = _clamp(value, _js_bound(weights) if measure == "js_divergence" else None, xp)
    return _finish(_in_base(value, base), out_dtype, xp)


def _clamp(value: Any, upper: float | None, xp: Any) -> Any:
    """``value`` clamped to [0, upper]; NaN stays NaN."""
    if is_numpy(xp):  # in place: the value array is ours (the kernels' output or a reduction)
        value = np.maximum(value, 0.0, out=value if isinstance(value, np.ndarray) else None)
        return value if upper is None else np.minimum(value, upper)
    if is_torch(xp):  # gradients (and Hessians) as unclamped: rounding below 0 must not zero them
        return clamp_keep_gradient(value, 0.0, upper)
    return xp.clip(value, 0.0, upper)


def _finish(value: Any, dtype: Any, xp: Any) -> Any:
    """The result in the inputs' dtype; numpy 0-d results become numpy scalars."""
    if is_numpy(xp):
        return np.asarray(value, dtype=dtype)[()]
    return value if value.dtype == dtype else xp.astype(value, dtype)


def _budget(P: Any, Q: Any, xp: Any) -> int:
    """Elements per chunk of the generic path: the whole input when small or under autograd."""
    size = math.prod(P.shape)
    if size <= _CHUNK_MIN:
        return size
    if is_torch(xp) and _under_autograd(P, Q):
        return size  # autograd keeps every temporary anyway
    itemsize = xp.finfo(P.dtype).bits // 8
    return max(4096, size * itemsize // _CHUNK_BYTES)


def _validate(x: Any, kind: str, name: str, xp: Any) -> None:
    """The checks of ``kind``; streamed over column chunks for large inputs (bounded memory)."""
    size = math.prod(x.shape)
    if size <= _CHUNK_MIN:
        CHECKS[kind](x, name, xp)
    else:
        rows = size // x.shape[-1]
        itemsize = xp.finfo(x.dtype).bits // 8
        with errstate(xp):
            check_streaming(x, kind, name, xp, max(1, size * itemsize // _CHUNK_BYTES // rows))


def _fast_numpy(
    measure: Measure, P: np.ndarray, Q: np.ndarray | None, kind: str, q_kind: str, validate: bool
) -> np.ndarray | None:
    """Large, C-contiguous float32/float64 numpy inputs of one kind: the fused kernels.

    The kernels give NaN for every row holding an entry outside its kind's domain,
    as the generic path does; with ``validate`` such rows raise instead.
    """
    if (
        measure not in _MODES
        or kind != q_kind
        or kind == "log_probs"
        or P.size < _FAST_MIN
        or P.dtype not in (np.float32, np.float64)
        or not P.flags.c_contiguous
    ):
        return None
    if Q is not None and (Q.dtype != P.dtype or not Q.flags.c_contiguous):
        return None
    batch = P.shape[:-1]
    P2 = P.reshape(-1, P.shape[-1])
    Q2 = None if Q is None else Q.reshape(P2.shape)
    mode = _MODES[measure]
    xp = namespace(P)
    if kind == "probs":
        value, psum, qsum, bad = _kernels.probs_rows(P2, Q2, mode)
        if validate:
            _check_probs_summaries(P, Q, psum, qsum, bad)
    else:
        value, lse_p, lse_q, bad = _kernels.logits_rows(P2, P2 if Q2 is None else Q2, mode)
        if validate and (bad.any() or np.isneginf(lse_p).any() or np.isneginf(lse_q).any()):
            CHECKS["logits"](P, "p", xp)
            if Q is not None:
                CHECKS["logits"](Q, "q", xp)
    return value.reshape(batch)


_FUSED_MIN = 1 << 24  # torch logits under autograd with at least this many elements take the fused Functions


def _fused_pays(P: Any, Q: Any) -> bool:
    """Large logits under autograd: there the plain composition's full-size temporaries (several
    copies of the input, kept for backward) cost more time and memory than the fused Functions'
    extra passes over cache-sized tiles (``benchmarks/training_loop.py``). Smaller inputs under
    autograd take torch's own composition (:func:`_plain_torch_logits`), inputs without autograd
    the library kernels on tiles."""

    return _under_autograd(P, Q) and P.numel() >= _FUSED_MIN


def _under_autograd(P: Any, Q: Any) -> bool:
    import torch

    return torch.is_grad_enabled() and (P.requires_grad or (Q is not None and Q.requires_grad))


def _plain_torch_logits(measure: Measure, P: Any, Q: Any, dtype: Any) -> Any:
    """Logits under autograd with every logit of ``p`` finite: torch's own composition.

    ``log_softmax`` and ``kl_div`` are torch's fastest kernels here, and without a masked
    outcome in ``p`` no term is ``0 · inf``, so they need no masks. One host check decides
    (and, being "p finite, q's largest logit finite per slice", it is also the validation);
    otherwise, or while compiling, None hands over to the generic path, whose masks keep
    the gradients finite and whose checks name what is wrong.
    """
    import torch

    if torch.compiler.is_compiling() or dtype not in (torch.float32, torch.float64):
        return None
    ok = torch.isfinite(P.detach().sum())  # finite entries (a sum overflowing only costs the faster path)
    if Q is not None:
        ok = ok & torch.isfinite(Q.detach().amax(-1)).all()
    if not bool(ok):
        return None
    logp = torch.log_softmax(P.to(dtype), -1)
    if measure == "entropy":
        return -(logp.exp() * logp).sum(-1)
    logq = torch.log_softmax(Q.to(dtype), -1)
    if measure == "kl_divergence":
        return torch.nn.functional.kl_div(logq, logp, reduction="none", log_target=True).sum(-1)
    return -(logp.exp() * logq).sum(-1)


def _fused_torch_logits(measure: Measure, P: Any, Q: Any, validate: bool, dtype: Any) -> Any:
    """torch logits: the fused autograd Functions of :mod:`klkit._torch_functions`.

    They keep only the inputs and one log-sum-exp per row for backward (the gradient
    is softmax minus target), run in tiles, accumulate half precision in float32 and
    never sync with the host. A slice is valid when its largest logit is finite (NaN,
    +inf and all -inf fail): invalid slices are NaN, and validation is one host sync
    on that flag, which only on failure runs the checks that build the message.
    """
    import torch

    from klkit import _torch_functions as fused

    P = P if P.dtype == dtype else P.to(dtype)
    ok = torch.isfinite(P.detach().amax(-1))
    if measure == "entropy":
        value = fused.logits_entropy(P)
    else:
        Q = Q if Q.dtype == dtype else Q.to(dtype)
        ok = ok & torch.isfinite(Q.detach().amax(-1))
        value = (fused.logits_kl if measure == "kl_divergence" else fused.logits_cross_entropy_soft)(P, Q)
    if validate and not bool(ok.all()):
        xp = namespace(P)
        for x, name in ((P, "p"), (Q, "q"))[: 1 if Q is None else 2]:
            CHECKS["logits"](x, name, xp)  # raises with the details
    return torch.where(ok, value, math.nan)


def _small_numpy(measure: Measure, P: np.ndarray, Q: np.ndarray | None, validate: bool) -> np.ndarray | None:
    """Small numpy probabilities: the kernels' single-chunk entry (:func:`klkit._kernels.probs_rows_small`).

    On a short vector the cost of a call is interpreter overhead, not arithmetic: one
    compiled pass validates, applies ``0 · log 0 = 0`` and ``p > 0, q = 0 → inf``,
    corrects the rounding of ``p / q`` and gives NaN for rows outside the domain,
    with the same numerics as the large-input kernels.
    """
    if measure == "js_divergence" or P.dtype not in (np.float32, np.float64) or (Q is not None and Q.dtype != P.dtype):
        return None
    batch = P.shape[:-1]
    P2 = np.ascontiguousarray(P).reshape(-1, P.shape[-1])
    Q2 = None if Q is None else np.ascontiguousarray(Q).reshape(P2.shape)
    value, psum, qsum, bad = _kernels.probs_rows_small(P2, Q2, _MODES[measure])
    if validate:
        _check_probs_summaries(P, Q, psum, qsum, bad)
    return value.reshape(batch)


_SUM_TOLERANCE = {np.float32: sum_tolerance(np.float32), np.float64: sum_tolerance(np.float64)}


def _check_probs_summaries(P: np.ndarray, Q: np.ndarray | None, psum: float, qsum: float, bad: int) -> None:
    """The kernels' summaries (bad entries, row sums farthest from 1) against the probability rules;
    only a failure runs the full checks, which raise with the details."""
    tol = _SUM_TOLERANCE[P.dtype.type]
    if bad or abs(psum - 1) > tol or abs(qsum - 1) > tol:
        xp = namespace(P)
        for x, name in ((P, "p"), (Q, "q"))[: 1 if Q is None else 2]:
            CHECKS["probs"](x, name, xp)


# ---------------------------------------------------------------------------
# The generic path: any array-API library, autograd, half precision
# ---------------------------------------------------------------------------


def _safe_log(x: Any, xp: Any) -> Any:
    """``log x`` with ``log 0 = -inf`` and a zero (not NaN) gradient at 0."""
    positive = x > 0
    return xp.where(positive, xp.log(xp.where(positive, x, 1.0)), -math.inf)


def _log_softmax(x: Any, xp: Any) -> Any:
    if is_torch(xp):
        return xp.log_softmax(x, dim=-1)
    return x - logsumexp(x, xp, keepdims=True)


def _normaliser(x: Any, kind: str, xp: Any, chunks: list[slice], dtype: Any) -> Any:
    """Per-slice log-sum-exp (keepdims) of logits in column chunks; None otherwise."""
    if kind != "logits" or len(chunks) == 1:
        return None
    top = xp.astype(xp.max(x, axis=-1, keepdims=True), dtype)
    total = sum(xp.sum(xp.exp(xp.astype(x[..., c], dtype) - top), axis=-1, keepdims=True) for c in chunks)
    return top + xp.log(total)


def _out_of_domain(x: Any, kind: str, xp: Any) -> Any:
    """Per slice of a column chunk: an entry no valid input of ``kind`` holds (NaN; ±inf or
    negative probabilities; +inf log-probabilities). Logits are judged per whole slice."""
    if kind == "probs":
        return xp.any(~((x >= 0) & (x < math.inf)), axis=-1)
    if kind == "log_probs":
        return xp.any(~(x < math.inf), axis=-1)
    return None


def _invalid_logits(x: Any, kind: str, xp: Any) -> Any:
    """Per slice: logits with NaN or +inf, or only -inf (no finite maximum); None for other kinds."""
    return ~xp.isfinite(xp.max(x, axis=-1)) if kind == "logits" else None


def _log_and_prob(x: Any, kind: str, lse: Any, dtype: Any, xp: Any) -> tuple[Any, Any]:
    """(log p, p) of one chunk in the compute dtype."""
    x = xp.astype(x, dtype)
    if kind == "probs":
        return _safe_log(x, xp), x
    logp = (_log_softmax(x, xp) if lse is None else x - lse) if kind == "logits" else x
    return logp, xp.exp(logp)


def _evaluate(
    measure: Measure,
    P: Any,
    Q: Any,
    kind: str,
    q_kind: str,
    xp: Any,
    budget: int,
    guard: bool,
    weights: tuple[float, float] | None = None,
) -> Any:
    """The measure along the last axis, in chunks of at most ``budget`` elements when large.

    Blocks along the first axis first, then column chunks within a block (logits
    then take their log-sum-exp over the chunks before the terms). With ``guard``
    (unvalidated inputs), a slice holding an entry outside its kind's domain is NaN.
    """
    n = P.shape[-1]
    size = math.prod(P.shape)
    if size > budget and P.ndim > 1 and P.shape[0] > 1:
        step = max(1, P.shape[0] * budget // size)
        return xp.concat(
            [
                _evaluate(
                    measure,
                    P[i : i + step],
                    None if Q is None else Q[i : i + step],
                    kind,
                    q_kind,
                    xp,
                    budget,
                    guard,
                    weights,
                )
                for i in range(0, P.shape[0], step)
            ],
            axis=0,
        )
    width = n if size <= budget else max(1, budget // max(1, size // n))
    chunks = [slice(c, min(c + width, n)) for c in range(0, n, width)]
    dtype = compute_dtype(xp, P.dtype if Q is None else xp.result_type(P, Q))
    lse_p = _normaliser(P, kind, xp, chunks, dtype)
    lse_q = None if Q is None else _normaliser(Q, q_kind, xp, chunks, dtype)
    total = 0.0
    invalid = None
    if guard:
        for x, k in ((P, kind), (Q, q_kind))[: 1 if Q is None else 2]:
            bad = _invalid_logits(x, k, xp)
            if bad is not None:
                invalid = bad if invalid is None else invalid | bad
    for c in chunks:
        logp, p = _log_and_prob(P[..., c], kind, lse_p, dtype, xp)
        positive = p > 0
        if measure == "entropy":
            term = -p * xp.where(positive, logp, 0.0)
        else:
            logq, q = _log_and_prob(Q[..., c], q_kind, lse_q, dtype, xp)
            if measure == "cross_entropy":
                term = -p * xp.where(positive, logq, 0.0)
            elif measure == "kl_divergence":
                term = p * xp.where(positive, logp - logq, 0.0)
            else:
                term = _js_term(logp, p, logq, q, xp, weights)
        total = total + xp.sum(term, axis=-1)
        if guard:
            for x, k in ((P, kind), (Q, q_kind))[: 1 if Q is None else 2]:
                bad = _out_of_domain(x[..., c], k, xp)
                if bad is not None:
                    invalid = bad if invalid is None else invalid | bad
    return total if invalid is None else xp.where(invalid, math.nan, total)


def _js_term(logp: Any, p: Any, logq: Any, q: Any, xp: Any, weights: tuple[float, float] | None = None) -> Any:
    """½ p log(p/m) + ½ q log(q/m) with log m = logaddexp(log p, log q) − log 2; with weights (w, 1 − w),
    w p log(p/m) + (1 − w) q log(q/m) with log m = logaddexp(log w + log p, log(1 − w) + log q)."""
    either = (p > 0) | (q > 0)
    if weights is None:
        logm = xp.logaddexp(xp.where(either, logp, 0.0), xp.where(either, logq, 0.0)) - _LOG2
        tp = p * xp.where(p > 0, logp - logm, 0.0)
        tq = q * xp.where(q > 0, logq - logm, 0.0)
        return 0.5 * (tp + tq)
    wp, wq = weights
    if wp == 0.0 or wq == 0.0:  # M is Q (or P): the divergence is 0; keep the graph
        return 0.0 * (p + q)
    logm = xp.logaddexp(xp.where(either, logp, 0.0) + math.log(wp), xp.where(either, logq, 0.0) + math.log(wq))
    tp = p * xp.where(p > 0, logp - logm, 0.0)
    tq = q * xp.where(q > 0, logq - logm, 0.0)
    return wp * tp + wq * tq


# ---------------------------------------------------------------------------
# torch without autograd: fused library ops on tiles
# ---------------------------------------------------------------------------

_TILES = 10  # large torch inputs go in tiles of ~1/_TILES of the input: two tile-sized temporaries


def _fast_torch(measure: Measure, P: Any, Q: Any, kind: str, q_kind: str, validate: bool, xp: Any) -> tuple[Any, bool]:
    """KL, CE and entropy of torch tensors that need no gradient, from fused library ops.

    Each tile of rows goes through the kernels of the plain one-liner
    (``log_softmax``, ``softmax``, ``log``) and is reduced in place, so the
    temporaries stay two tiles (about 20% of one input). Rows too long for one tile
    are cut into equal pieces (a free view when the length has a divisor of the
    right size, else column slices), each normalised on its own and recombined with
    the chain rule (:func:`_chain`). Validation is folded in: per-row minima and
    sums for probabilities and, for logits, the value itself (NaN or infinite
    logits always give NaN), checked with one host sync; only a failure runs the
    detailed checks that build the message.

    Unvalidated inputs get the generic path's semantics: a row holding an entry
    outside its kind's domain is NaN (:func:`_domain_ok`).

    Returns ``(value, validate)``: ``value`` None hands over to the generic path
    (JS, autograd, half precision, ``torch.compile``, layouts that cannot be viewed
    as rows), and ``validate`` False says the inputs were checked already.
    """
    import torch

    if torch.compiler.is_compiling():  # the tiles sync with the host; the generic path does not
        return None, validate
    dtype = P.dtype if Q is None else torch.promote_types(P.dtype, Q.dtype)
    n = P.shape[-1]
    rows = math.prod(P.shape[:-1])
    if measure == "js_divergence" or dtype not in (torch.float32, torch.float64) or rows == 0 or _under_autograd(P, Q):
        return None, validate
    try:
        A = P.view(rows, n)
        B = None if Q is None else Q.view(rows, n)
    except RuntimeError:  # a broadcast or transposed layout that only a copy could flatten
        return None, validate
    size = rows * n
    # elements per tile: two compute-dtype temporaries stay near 2/_TILES of one input
    budget = max(1, size // _TILES * P.element_size() // dtype.itemsize)
    pieces = 1
    if size > _CHUNK_MIN and n > budget:  # rows longer than a tile: pieces of ~budget/rows
        pieces = _divisor(n, -(-size // budget))
        if A.is_contiguous() and (B is None or B.is_contiguous()):
            A = A.view(rows * pieces, n // pieces)
            B = None if B is None else B.view(rows * pieces, n // pieces)
        else:  # broadcast or strided rows: column slices instead
            pieces = 1
    width = A.shape[1]
    if size <= _CHUNK_MIN:
        rstep, cstep = A.shape[0], width
    elif width <= budget:
        rstep, cstep = budget // width, width
    else:  # no view into pieces: column slices (the kernels copy them: a third temporary)
        rstep, cstep = rows, max(1, 2 * budget // 3 // rows)
    A = A if A.dtype == dtype else A.to(dtype) if size <= _CHUNK_MIN else A
    B = B if B is None or B.dtype == dtype or size > _CHUNK_MIN else B.to(dtype)
    whole = rstep >= A.shape[0] and cstep >= width
    parts = [
        _torch_tile(
            measure,
            A if whole else A[r0 : r0 + rstep, c0 : c0 + cstep].to(dtype),
            B if whole or B is None else B[r0 : r0 + rstep, c0 : c0 + cstep].to(dtype),
            kind,
            q_kind,
            pieces > 1 or cstep < width,
            validate,
            torch,
        )
        for r0 in range(0, A.shape[0], rstep)
        for c0 in range(0, width, cstep)
    ]
    if cstep < width:  # (rows, tiles)
        out = [None if parts[0][j] is None else torch.stack([t[j] for t in parts], -1) for j in range(7)]
    else:  # (rows, pieces)
        out = [None if parts[0][j] is None else torch.cat([t[j] for t in parts]).view(rows, -1) for j in range(7)]
    value = out[0].squeeze(-1) if out[0].shape[-1] == 1 else _chain(measure, out, kind, q_kind, torch)
    ok = None  # per row: inside the kinds' domains, where the value alone would not tell
    for x, k, lse in ((P, kind, out[1]), (Q, q_kind, out[4]))[: 1 if Q is None else 2]:
        if k == "logits":  # whole rows give NaN by themselves; rows in pieces are judged by their lse
            row_ok = None if lse is None else torch.logsumexp(lse, -1).isfinite()
        else:  # validated inputs are in the domain already
            row_ok = None if validate else _domain_ok(x.view(rows, n), k, torch)
        if row_ok is not None:
            ok = row_ok if ok is None else ok & row_ok
    if validate:
        failed = value.isnan() if ok is None else value.isnan() | ~ok
        for k, low, mass in ((kind, out[2], out[3]), (q_kind, out[5], out[6])):
            if k != "logits" and low is not None:
                failed = failed | ~_check_stats(k, low, mass, dtype, torch)
        if bool(failed.any()):
            CHECKS[kind](P, "p", xp)  # raises with the details
            if Q is not None:
                CHECKS[q_kind](Q, "q", xp)
            if bool(value.isnan().any()):  # not expected; the generic path is the reference
                return None, False
    value = value if ok is None else torch.where(ok, value, math.nan)
    return value.reshape(P.shape[:-1]), False


_SMALL_TORCH = 1 << 12  # CPU tensors up to this many elements may take the numpy kernels


def _numpy_bridge(P: Any, Q: Any) -> bool:
    """Small CPU float32/float64 tensors outside autograd and ``torch.compile``: share their memory
    with numpy and take :func:`_small_numpy` (a torch op costs microseconds of dispatch each;
    the compiled kernel does the whole call in one). Same values, same dtype back."""
    import torch

    return (
        P.numel() <= _SMALL_TORCH
        and P.device.type == "cpu"
        and P.dtype in (torch.float32, torch.float64)
        and (Q is None or (Q.dtype == P.dtype and Q.device.type == "cpu"))
        and not _under_autograd(P, Q)
        and not torch.compiler.is_compiling()
    )


def _domain_ok(x: Any, kind: str, torch: Any) -> Any:
    """Per row: every entry lies in the domain of ``kind`` (reductions only, no temporaries)."""
    if kind == "probs":
        return (x.amin(-1) >= 0) & (x.sum(-1) < math.inf)  # +inf and NaN fail (so does a sum past the float range)
    top = x.amax(-1)  # NaN propagates into the maximum and fails both tests
    return top.isfinite() if kind == "logits" else top < math.inf  # logits: not all -inf either


def _divisor(n: int, least: int) -> int:
    """The smallest divisor of ``n`` in [least, 4·least]; 1 when there is none."""
    return next((k for k in range(least, min(n, 4 * least) + 1) if n % k == 0), 1)


def _check_stats(kind: str, low: Any, mass: Any, dtype: Any, torch: Any) -> Any:
    """Per-row pass/fail of the cheap checks: probs (min ≥ 0, Σ = 1), log_probs (max ≤ 0, lse = 0)."""
    tol = sum_tolerance(dtype)
    if kind == "probs":
        return (low.amin(-1) >= 0) & ((mass.sum(-1) - 1).abs() <= tol)
    return (low.amax(-1) <= tol) & (torch.logsumexp(mass, -1).abs() <= tol)


def _torch_tile(
    measure: Measure, a: Any, b: Any, kind: str, q_kind: str, column: bool, validate: bool, torch: Any
) -> tuple[Any, list, list]:
    """``(value, stats_p, stats_q)`` of one tile, per row.

    ``value`` is the measure with each tile of logits normalised on its own (see
    :func:`_chain`). ``stats`` is ``[lse, low, mass]``: the tile's log-sum-exp
    (logits in column tiles), its min (probs) or max (log_probs), and its mass
    (probs: Σp; log_probs: log Σ exp) when needed. Peak temporaries: two tiles.

    Terms with p = 0 beside log q = -inf (or log p = -inf) are 0 · inf = NaN; their
    limit is 0. Rows whose sum is NaN have those terms zeroed and are summed again,
    with ``0 · max|input|`` added so that NaN or infinite inputs still give NaN.
    """
    sp = _tile_stats(a, kind, column, validate)
    sq = None if b is None else _tile_stats(b, q_kind, column, validate)
    if measure == "entropy":
        term = _tile_log(a, kind, sp, torch)
        if kind == "probs":
            term.clamp_(min=torch.finfo(a.dtype).min)  # 0 · log 0 = 0 without a second pass
        term.mul_(_tile_prob(a, kind, torch))
    elif measure == "kl_divergence":
        logq = _tile_log(b, q_kind, sq, torch)
        term = _tile_log(a, kind, sp, torch)
        if kind == "probs":
            term.clamp_(min=torch.finfo(a.dtype).min)
        term.sub_(logq)
        del logq
        term.mul_(_tile_prob(a, kind, torch))
    else:
        term = _tile_log(b, q_kind, sq, torch).mul_(_tile_prob(a, kind, torch))
    value = term.sum(-1)
    if a.device.type != "cpu" or bool(value.isnan().any()):  # a sync is cheap on the CPU only
        guard = _guard(a, kind) if b is None else _guard(a, kind) + _guard(b, q_kind)
        again = term.nan_to_num_(nan=0.0, posinf=math.inf, neginf=-math.inf).sum(-1) + guard
        value = torch.where(value.isnan(), again, value)
    del term
    for x, k, st in ((a, kind, sp), (b, q_kind, sq)):  # normalisers not met on the way
        if x is not None and k == "log_probs" and st[2] is None and (validate or column):
            st[2] = torch.logsumexp(x, -1)
        if x is not None and k == "logits" and column and st[0] is None:
            st[0] = torch.logsumexp(x, -1)
    value = value if measure == "kl_divergence" else -value
    return (value, *sp, *(sq or (None, None, None)))


def _guard(x: Any, kind: str) -> Any:
    """0 per row, NaN if the row holds NaN or +inf (probabilities: or -inf; logits: or is all -inf)."""
    if kind == "probs":
        return 0.0 * x.sum(-1)
    top = x.amax(-1)
    return 0.0 * (top if kind == "logits" else top.masked_fill(top == -math.inf, 0.0))


def _tile_stats(x: Any, kind: str, column: bool, validate: bool) -> list:
    """``[lse, low, mass]`` of one tile as far as known before the measure (see :func:`_torch_tile`)."""
    stats = [None, None, None]
    if kind == "probs" and (validate or column):
        stats[1:] = x.amin(-1) if validate else None, x.sum(-1)
    elif (validate and kind == "log_probs") or (column and kind == "logits"):
        stats[1] = x.amax(-1)
    return stats


def _tile_log(x: Any, kind: str, stats: list, torch: Any) -> Any:
    """A new tensor holding log p̃ of the tile; records a column tile's log-sum-exp in ``stats``."""
    if kind == "probs":
        return torch.log(x)
    if kind == "log_probs":
        return x.clone()
    logp = torch.log_softmax(x, dim=-1)
    if stats[1] is not None:  # lse_t = max x − max log p̃ (the same entry); -inf for a tile of -inf
        top = stats[1]
        stats[0] = torch.where(top == -math.inf, top, top - logp.amax(-1))
    return logp


def _tile_prob(x: Any, kind: str, torch: Any) -> Any:
    """p̃ of the tile (``x`` itself for probs)."""
    if kind == "probs":
        return x
    if kind == "logits":
        return torch.softmax(x, dim=-1)
    return torch.exp(x)


def _chain(measure: Measure, out: list, kind: str, q_kind: str, torch: Any) -> Any:
    """Combine the pieces of each row with the chain rule of KL (and of entropy, cross-entropy).

    With piece t of logits normalised on its own, log p_i = log p̃_i + c_t where
    c_t = lse_t − lse and the piece's share is w_t = exp(c_t); for probabilities
    c_t = 0, w_t = 1. Then KL = Σ_t w_t [KL_t + m_t (c^p_t − c^q_t)] with
    m_t = Σ_{i∈t} p̃_i, CE = Σ_t w_t [CE_t − m_t c^q_t], H = Σ_t w_t [H_t − m_t c^p_t].
    ``out`` holds (rows, pieces) tensors: value, then lse, low, mass of p and of q.
    """
    value = out[0]
    cp = None if kind != "logits" else out[1] - torch.logsumexp(out[1], -1, keepdim=True)
    cq = None if q_kind != "logits" or out[4] is None else out[4] - torch.logsumexp(out[4], -1, keepdim=True)
    if measure == "entropy":
        shift = None if cp is None else -cp
    elif measure == "cross_entropy":
        shift = None if cq is None else -cq
    elif cp is None and cq is None:
        shift = None
    else:
        shift = (0.0 if cp is None else cp) - (0.0 if cq is None else cq)
    if cp is not None:  # p from logits: each piece has mass 1 and share exp(c_t)
        share = cp.exp()
        terms = share * (value if shift is None else value + shift)
        # a piece of p all -inf has no share (and NaN from its own softmax); NaN offsets stay NaN
        return (torch.where(share > 0, terms, 0.0) + 0.0 * cp.nan_to_num(neginf=0.0)).sum(-1)
    if shift is None:
        return value.sum(-1)
    mass = out[3] if kind == "probs" else out[3].exp()
    return (value + mass * shift).sum(-1)
