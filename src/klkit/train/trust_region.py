r"""The numerical pieces of a trust-region policy step (TRPO, Schulman et al., 2015, appendix C).

- :func:`conjugate_gradient`: solve :math:`A x = b` given only :math:`v \mapsto A v`;
- :func:`hessian_vector_product`: :math:`\nabla^2 f\, v` by double backpropagation, never forming the Hessian;
- :func:`fisher_operator` / :func:`fisher_vector_product`: the damped Fisher-vector product
  :math:`(F + \lambda I) v`, the Hessian of the mean KL between old and new policy at θ_old;
- :func:`backtracking_line_search`: shrink a step until the exact KL is within the budget and
  the surrogate improves.

:mod:`klkit.train.trpo` puts them together; they know nothing of policies or environments.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import NamedTuple

import torch

__all__ = [
    "LineSearchResult",
    "backtracking_line_search",
    "conjugate_gradient",
    "fisher_operator",
    "fisher_vector_product",
    "hessian_vector_product",
]


def conjugate_gradient(
    matvec: Callable[[torch.Tensor], torch.Tensor], b: torch.Tensor, *, max_steps: int = 15, tolerance: float = 1e-10
) -> torch.Tensor:
    r"""Solve :math:`A x = b` for symmetric positive-definite :math:`A`, given only :math:`v \mapsto A v`.

    Conjugate gradient (Hestenes & Stiefel, 1952), started at :math:`x_0 = 0`: exact after
    ``n`` steps for an ``n``-dimensional system (in exact arithmetic), and a good
    approximation after a few when the spectrum is clustered, which is why TRPO
    needs only ~10–15 Fisher-vector products and never forms :math:`F`.

    Parameters
    ----------
    matvec : callable
        ``v -> A v`` for 1-D tensors ``v``.
    b : Tensor, shape (n,)
        Right-hand side.
    max_steps : int, default 15
        Iteration limit.
    tolerance : float, default 1e-10
        Stop when the squared residual :math:`\|b - A x\|^2` falls below this.

    Returns
    -------
    Tensor, shape (n,)
        The approximate solution.

    Raises
    ------
    ValueError
        ``b`` not 1-D, or ``max_steps < 1``.

    Examples
    --------
    >>> A = torch.tensor([[4.0, 1.0], [1.0, 3.0]], dtype=torch.float64)
    >>> x = conjugate_gradient(lambda v: A @ v, torch.tensor([1.0, 2.0], dtype=torch.float64))
    >>> x.tolist()  # A^{-1} b = [1/11, 7/11]
    [0.09090909090909091, 0.6363636363636364]
    """
    if b.ndim != 1:
        raise ValueError(f"`b` must be a 1-D tensor; found shape {tuple(b.shape)}. Flatten it first.")
    if max_steps < 1:
        raise ValueError(f"`max_steps` must be at least 1; found {max_steps}.")
    x = torch.zeros_like(b)
    r = b.clone()  # residual b - A x
    p = b.clone()  # search direction
    rr = torch.dot(r, r)
    for _ in range(max_steps):
        if rr <= tolerance:
            break
        Ap = matvec(p)
        alpha = rr / torch.dot(p, Ap)
        x = x + alpha * p
        r = r - alpha * Ap
        rr_new = torch.dot(r, r)
        p = r + (rr_new / rr) * p
        rr = rr_new
    return x


def fisher_vector_product(
    mean_kl: Callable[[], torch.Tensor], params: Sequence[torch.Tensor], vector: torch.Tensor, *, damping: float = 0.0
) -> torch.Tensor:
    r"""The damped Fisher-vector product :math:`(F + \lambda I)\,v`, with :math:`F = \nabla^2_\theta \bar D`.

    :math:`\bar D(\theta)` is the mean KL(π_old‖π_θ) over states with π_old held fixed; at
    :math:`\theta = \theta_{old}` its Hessian is the Fisher information matrix. The product is
    a Hessian-vector product by double backpropagation,
    :math:`F v = \nabla_\theta\big(\nabla_\theta \bar D \cdot v\big)`, never forming :math:`F`.
    For many products at the same θ (conjugate gradient), :func:`fisher_operator` builds
    :math:`\nabla_\theta \bar D` once and reuses it.

    Parameters
    ----------
    mean_kl : callable
        ``() -> scalar Tensor``: the mean KL as a differentiable function of ``params``
        (in klkit's TRPO, :func:`klkit.kl_divergence` between π_old and π_θ, averaged).
    params : sequence of Tensor
        The parameters θ (``requires_grad=True``); ``vector`` is laid out as their concatenation.
    vector : Tensor, shape (n_params,)
    damping : float, default 0
        λ.

    Returns
    -------
    Tensor, shape (n_params,)

    Examples
    --------
    >>> theta = torch.tensor([0.5, -1.0], requires_grad=True)
    >>> kl = lambda: 0.5 * (3.0 * theta[0] ** 2 + theta[1] ** 2)  # Hessian diag(3, 1)
    >>> fisher_vector_product(kl, [theta], torch.tensor([1.0, 1.0]), damping=0.1).tolist()
    [3.0999999046325684, 1.100000023841858]
    """
    return fisher_operator(mean_kl, params, damping=damping)(vector)


def hessian_vector_product(
    gradient: torch.Tensor, params: Sequence[torch.Tensor], vector: torch.Tensor
) -> torch.Tensor:
    r""":math:`\nabla^2 f\, v = \nabla_\theta\big(\nabla_\theta f \cdot v\big)`, by double backpropagation.

    Parameters
    ----------
    gradient : Tensor, shape (n_params,)
        :math:`\nabla_\theta f`, flattened, computed with ``create_graph=True`` (its graph is kept,
        so the same gradient serves many products).
    params : sequence of Tensor
        θ, in the order ``gradient`` is laid out.
    vector : Tensor, shape (n_params,)
        :math:`v` (treated as a constant).

    Returns
    -------
    Tensor, shape (n_params,)
        Detached.

    Examples
    --------
    >>> theta = torch.tensor([1.0, 2.0], requires_grad=True)
    >>> f = theta[0] ** 2 * theta[1]  # Hessian [[2θ₁, 2θ₀], [2θ₀, 0]] = [[4, 2], [2, 0]]
    >>> g = torch.autograd.grad(f, [theta], create_graph=True)[0]
    >>> hessian_vector_product(g, [theta], torch.tensor([1.0, 0.0])).tolist()
    [4.0, 2.0]
    """
    hvp = torch.autograd.grad(torch.dot(gradient, vector.detach()), params, retain_graph=True)
    return torch.cat([h.reshape(-1) for h in hvp]).detach()


def fisher_operator(
    mean_kl: Callable[[], torch.Tensor], params: Sequence[torch.Tensor], *, damping: float = 0.0
) -> Callable[[torch.Tensor], torch.Tensor]:
    """``v -> (F + λI) v`` at the current θ, the KL's gradient graph built once (see :func:`fisher_vector_product`).

    The returned function is valid until ``params`` change.
    """
    params = list(params)
    grads = torch.autograd.grad(mean_kl(), params, create_graph=True)
    flat = torch.cat([g.reshape(-1) for g in grads])

    def product(vector: torch.Tensor) -> torch.Tensor:
        if flat.shape != vector.shape:
            raise ValueError(
                f"`vector` must have one entry per parameter ({flat.numel()}); found shape {tuple(vector.shape)}."
            )
        return hessian_vector_product(flat, params, vector) + damping * vector

    return product


class LineSearchResult(NamedTuple):
    """Outcome of :func:`backtracking_line_search`."""

    accepted: bool
    """Whether some trial step met both conditions."""
    fraction: float
    """α^k of the accepted step (0 when rejected)."""
    trials: int
    """Trial steps evaluated."""
    improvement: float
    """Surrogate improvement of the accepted step (of the last trial when rejected)."""
    kl: float
    """Mean KL of the accepted step (of the last trial when rejected)."""


def backtracking_line_search(
    evaluate: Callable[[float], tuple[float, float]], *, max_kl: float, shrink: float = 0.8, max_steps: int = 10
) -> LineSearchResult:
    r"""Try fractions :math:`1, \alpha, \alpha^2, \ldots` of a step; accept the first that keeps KL ≤ δ and improves.

    Parameters
    ----------
    evaluate : callable
        ``fraction -> (improvement, kl)``: the surrogate's improvement over the old
        policy and the mean KL(π_old‖π_new) at ``θ_old + fraction · Δ``. (The caller
        applies the step; TRPO leaves the parameters at θ_old when the search fails.)
    max_kl : float
        δ.
    shrink : float, default 0.8
        α in (0, 1).
    max_steps : int, default 10
        Trials before giving up.

    Returns
    -------
    LineSearchResult

    Examples
    --------
    >>> # improvement 2a - a² (best at a = 1), KL = a²: with δ = 0.25 only a ≤ 0.5 is allowed
    >>> r = backtracking_line_search(lambda a: (2 * a - a * a, a * a), max_kl=0.25, shrink=0.5)
    >>> r.accepted, r.fraction, r.trials
    (True, 0.5, 2)
    """
    if not 0 < shrink < 1:
        raise ValueError(f"`shrink` must be in (0, 1); found {shrink!r}.")
    if max_steps < 1:
        raise ValueError(f"`max_steps` must be at least 1; found {max_steps}.")
    improvement, kl = math.nan, math.nan
    for k in range(max_steps):
        fraction = shrink**k
        improvement, kl = evaluate(fraction)
        if kl <= max_kl and improvement > 0:
            return LineSearchResult(True, fraction, k + 1, improvement, kl)
    return LineSearchResult(False, 0.0, max_steps, improvement, kl)
