"""f-divergences on arrays: named generators (dedicated sums) and a user's callable."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from klkit._engine import (
    FName,
    Kind,
    accepts_measure_objects,
    check_f,
    errstate,
    finish_result,
    prepare_pair,
)
from klkit.divergences._terms import callable_f_sum, chi2_sum, hellinger_squared_sum, js_sum, total_variation_sum
from klkit.measures import kl_divergence

__all__ = ["f_divergence"]


@accepts_measure_objects("f_divergence", args=("f",))
def f_divergence(
    p: Any,
    q: Any,
    /,
    f: FName | Callable[[Any], Any],
    *,
    axis: int = -1,
    kind: Kind = "probs",
    q_kind: Kind | None = None,
    validate: bool = True,
    **distribution_options: Any,
) -> Any:
    r"""f-divergence :math:`D_f(P\|Q) = \sum_i q_i\, f(p_i / q_i)`, f convex with :math:`f(1) = 0`.

    Terms with :math:`q_i = 0 < p_i` are :math:`p_i f'(\infty)`, :math:`f'(\infty) = \lim_{t\to\infty}
    f(t)/t`. In nats. Support rule (KL's): :math:`p_i > 0` means positive in the working dtype, so a
    probability that underflowed to 0 (logits far below the others) contributes :math:`q_i f(0)`.
    Named generators run dedicated code: "chi2", "js" and "hellinger" as sums of per-outcome terms of
    one sign that do not cancel near P = Q (exactly 0 where P = Q), "kl" and "reverse_kl" as KL:

    ============  ===========================================================  ====================================
    ``f``         :math:`f(t)`                                                 equals
    ============  ===========================================================  ====================================
    "kl"          :math:`t \log t`                                             ``kl_divergence(p, q)``
    "reverse_kl"  :math:`-\log t`                                              ``kl_divergence(q, p)``
    "tv"          :math:`\tfrac12 |t - 1|`                                     ``total_variation(p, q)``
    "hellinger"   :math:`\tfrac12 (\sqrt t - 1)^2`                             ``hellinger_distance(p, q) ** 2``
    "chi2"        :math:`(t - 1)^2`                                            Pearson :math:`\chi^2 = e^{D_2} - 1`
    "js"          :math:`\tfrac12[t\log\tfrac{2t}{1+t} + \log\tfrac{2}{1+t}]`  ``js_divergence(p, q)``
    ============  ===========================================================  ====================================

    A callable ``f`` is applied elementwise to the ratios :math:`t = p_i/q_i` on
    :math:`q_i > 0` (an array of the inputs' library, so torch keeps autograd); it must define
    ``f(0)`` as its limit (e.g. ``scipy.special.xlogy(t, t)``, not ``t * log(t)``). Its
    :math:`f'(\infty)` is unknown to klkit, so a slice with :math:`q_i = 0 < p_i` raises.

    Parameters
    ----------
    p, q : array_like or torch.Tensor
        Distributions with outcomes along ``axis``; their shapes broadcast.
    f : str or callable
        One of "kl", "reverse_kl", "tv", "hellinger", "chi2", "js", or a function of an array.
    axis, kind, q_kind, validate
        As in :func:`total_variation`.

    Returns
    -------
    ndarray or torch.Tensor
        The broadcast shape without ``axis``, in the inputs' dtype.

    Raises
    ------
    ValueError
        An unknown name; a callable with :math:`f(1) \ne 0`, one that returns NaN or an array
        of another shape, or one met with :math:`q_i = 0 < p_i`; invalid distributions and
        options (as :func:`klkit.kl_divergence`).
    TypeError
        ``f`` neither a name nor callable; numpy and torch inputs mixed.

    References
    ----------
    .. [1] I. Csiszár, "Information-type measures of difference of probability distributions and
       indirect observations", Studia Sci. Math. Hungarica 2, 1967.
    .. [2] S. M. Ali and S. D. Silvey, "A general class of coefficients of divergence of one
       distribution from another", J. R. Stat. Soc. B 28(1), 1966.

    Examples
    --------
    >>> import klkit
    >>> round(float(klkit.f_divergence([0.5, 0.5], [0.9, 0.1], "chi2")), 6)  # 0.4²/0.9 + 0.4²/0.1
    1.777778
    >>> round(float(klkit.f_divergence([0.5, 0.5], [0.9, 0.1], lambda t: (t - 1) ** 2)), 6)
    1.777778
    """
    opts = {"axis": axis, "kind": kind, "q_kind": q_kind, "validate": validate}
    check_f(f)
    if isinstance(f, str):
        if f == "kl":
            return kl_divergence(p, q, **opts)
        if f == "reverse_kl":
            return kl_divergence(
                q, p, axis=axis, kind=kind if q_kind is None else q_kind, q_kind=kind, validate=validate
            )
        x = prepare_pair(p, q, axis, kind, q_kind, validate, logs=f == "chi2")  # only χ² reads the logs
        with errstate(x.xp):
            value = {"tv": total_variation_sum, "hellinger": hellinger_squared_sum, "js": js_sum, "chi2": chi2_sum}[f](
                x
            )
        return finish_result(value, x)
    x = prepare_pair(p, q, axis, kind, q_kind, validate)
    return finish_result(callable_f_sum(x, f), x)
