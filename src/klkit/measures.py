"""Surprise, entropy, cross-entropy, KL and Jensen–Shannon divergence on arrays.

Each public function is short: distribution objects go to the package registered for them
(:func:`klkit._engine.measure_objects`), arrays through the engine's one front door
(:func:`klkit._engine.reduce_measure`): prepare (the inputs' own array library, the checks, each
kind's ``(log p, p)``), one path (numba kernels on numpy, torch tiles, fused autograd Functions, or
the generic array-API path the others are pinned to), finish (clamp to the bounds, base, dtype).
"""

from __future__ import annotations

from typing import Any, NamedTuple

from klkit._engine import (
    Kind,
    accepts_measure_objects,
    asarray,
    check_base,
    check_weights,
    errstate,
    in_base,
    namespace,
    reduce_measure,
    to_numpy,
)
from klkit._normalize import normalize
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


class Decomposition(NamedTuple):
    """``H(P, Q) = H(P) + KL(P‖Q)``, each term computed on its own (never as a difference)."""

    entropy: Any
    cross_entropy: Any
    kl_divergence: Any


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
        return in_base(-xp.log(x), base)


@accepts_measure_objects("entropy", objects=1)
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
    return reduce_measure("entropy", p, None, axis, base, kind, kind, validate)


@accepts_measure_objects("cross_entropy")
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
    return reduce_measure("cross_entropy", p, q, axis, base, kind, q_kind, validate)


@accepts_measure_objects("kl_divergence")
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
    return reduce_measure("kl_divergence", p, q, axis, base, kind, q_kind, validate)


@accepts_measure_objects("js_divergence")
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
    return reduce_measure("js_divergence", p, q, axis, base, kind, q_kind, validate, check_weights(weights))


@accepts_measure_objects("decompose")
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
    h = entropy(p, axis=axis, base=base, kind=kind, validate=validate)
    q_kind = kind if q_kind is None else q_kind
    ce = reduce_measure("cross_entropy", p, q, axis, base, kind, q_kind, False)
    kl = reduce_measure("kl_divergence", p, q, axis, base, kind, q_kind, validate)
    return Decomposition(h, ce, kl)
