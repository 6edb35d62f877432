"""Reverse fits, KL(q‖target): Adam on reparameterised samples of q."""

from __future__ import annotations

from typing import Any

from klkit.fitting.family import Shape, build, detach, scale_from_cov

__all__ = ["reverse", "reverse_loss"]


def reverse_loss(q: Any, target: Any, shape: Shape, batch: int) -> Any:
    """Monte Carlo E_q[log q − log p] with reparameterised samples (per component for mixtures)."""
    from torch.distributions import MixtureSameFamily

    if isinstance(q, MixtureSameFamily):
        x = q.component_distribution.rsample((batch,))  # (batch, k) scalar / (batch, k, d)
        f = q.log_prob(x) - target.log_prob(x)  # (batch, k): the mixture's log-density at each component's draw
        return (q.mixture_distribution.probs * f.mean(0)).sum()
    x = q.rsample((batch,))
    return (q.log_prob(x) - target.log_prob(x)).mean()


def reverse(
    target: Any, pilot: Any, k: int, covariance: str, shape: Shape, steps: int, batch: int, learning_rate: float
) -> tuple[Any, float, int, list[float]]:
    import torch

    n = pilot.shape[0]
    loc = pilot[torch.randint(n, (k,))].clone()
    std = pilot.std(0)
    cov = torch.diag(std**2)[None].repeat(k, 1, 1)
    scale_param = scale_from_cov(cov, covariance, shape).clone()
    loc.requires_grad_(True)
    scale_param.requires_grad_(True)
    params = [loc, scale_param]
    logits = None
    if k > 1:
        logits = torch.zeros(k, dtype=pilot.dtype, requires_grad=True)
        params.append(logits)
    opt = torch.optim.Adam(params, lr=learning_rate)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda t: 1.0 - t / steps)
    trace: list[float] = []
    for _ in range(steps):
        q = build(shape, loc, scale_param, covariance, logits)
        loss = reverse_loss(q, target, shape, batch)
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        trace.append(float(loss.detach()))
    q = detach(build(shape, loc, scale_param, covariance, logits))
    with torch.no_grad():
        final = float(reverse_loss(q, target, shape, 20 * batch))
    return q, final, steps, trace
