"""The Gaussian families of :func:`klkit.fitting.fit`: event shapes, building q from free parameters, reports."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from klkit.errors import InvalidArgumentError

__all__ = ["Shape", "build", "component_means", "detach", "means", "nearest", "scale_from_cov", "target_centres"]


@dataclass(frozen=True)
class Shape:
    """Scalar targets are handled as d = 1 internally; ``flat``/``unflat`` convert."""

    d: int
    scalar: bool

    @classmethod
    def of(cls, target: Any) -> Shape:
        event = tuple(target.event_shape)
        batch = tuple(getattr(target, "batch_shape", ()))
        if batch != () or len(event) > 1:
            raise InvalidArgumentError(
                f"`target` must have batch_shape () and a scalar or vector event; found batch_shape {batch} and "
                f"event_shape {event}. Fit one distribution at a time; flatten matrix events."
            )
        return cls(d=event[0] if event else 1, scalar=not event)

    def flat(self, x: Any) -> Any:
        """(n,) or (n, d) samples → (n, d)."""
        return x.unsqueeze(-1) if self.scalar else x

    def unflat(self, x: Any) -> Any:
        return x.squeeze(-1) if self.scalar else x


def build(shape: Shape, loc: Any, scale_param: Any, covariance: str, logits: Any | None) -> Any:
    """q from unconstrained parameters.

    ``loc`` (k, d); ``scale_param`` log-scales (k, d) for diag / scalar, or (k, d, d) with the log of
    the diagonal on the diagonal and free strictly-lower entries for full; ``logits`` (k,) or None (k = 1).
    """
    import torch
    from torch.distributions import (
        Categorical,
        Independent,
        MixtureSameFamily,
        MultivariateNormal,
        Normal,
    )

    if shape.scalar:
        comp = Normal(loc[:, 0], scale_param.exp()[:, 0], validate_args=False)
    elif covariance == "diag":
        comp = Independent(Normal(loc, scale_param.exp(), validate_args=False), 1, validate_args=False)
    else:
        tril = torch.tril(scale_param, diagonal=-1) + torch.diag_embed(
            torch.diagonal(scale_param, dim1=-2, dim2=-1).exp()
        )
        comp = MultivariateNormal(loc, scale_tril=tril, validate_args=False)
    if logits is None:  # a single Gaussian: drop the component axis
        if shape.scalar:
            return Normal(loc[0, 0], scale_param.exp()[0, 0])
        if covariance == "diag":
            return Independent(Normal(loc[0], scale_param.exp()[0]), 1)
        return MultivariateNormal(loc[0], scale_tril=comp.scale_tril[0])
    return MixtureSameFamily(Categorical(logits=logits, validate_args=False), comp, validate_args=False)


def scale_from_cov(cov: Any, covariance: str, shape: Shape) -> Any:
    """Unconstrained scale parameter of a covariance (k, d, d)."""
    import torch

    if shape.scalar or covariance == "diag":
        return 0.5 * torch.log(torch.diagonal(cov, dim1=-2, dim2=-1))
    tril = torch.linalg.cholesky(cov)
    return torch.tril(tril, diagonal=-1) + torch.diag_embed(torch.log(torch.diagonal(tril, dim1=-2, dim2=-1)))


def detach(q: Any) -> Any:
    """A copy of q built from detached parameters (no autograd history)."""
    from torch.distributions import Categorical, Independent, MixtureSameFamily, MultivariateNormal, Normal

    if isinstance(q, Normal):
        return Normal(q.loc.detach(), q.scale.detach())
    if isinstance(q, MultivariateNormal):
        return MultivariateNormal(q.loc.detach(), scale_tril=q.scale_tril.detach())
    if isinstance(q, Independent):
        return Independent(detach(q.base_dist), q.reinterpreted_batch_ndims)
    if isinstance(q, MixtureSameFamily):
        return MixtureSameFamily(
            Categorical(logits=q.mixture_distribution.logits.detach()), detach(q.component_distribution)
        )
    raise TypeError(f"cannot detach {type(q).__name__}")  # pragma: no cover - internal


def component_means(q: Any, shape: Shape) -> Any:
    """(k, d) means of q's components (k = 1 for a single Gaussian)."""
    from torch.distributions import MixtureSameFamily

    if isinstance(q, MixtureSameFamily):
        return shape.flat(q.component_distribution.mean)
    return shape.flat(q.mean[None] if shape.scalar else q.mean[None, :]).reshape(1, shape.d)


def means(q: Any, shape: Shape) -> list[list[float]]:
    return [[float(v) for v in row] for row in component_means(q, shape).detach()]


def target_centres(target: Any, shape: Shape) -> Any | None:
    from torch.distributions import MixtureSameFamily

    if isinstance(target, MixtureSameFamily):
        return shape.flat(target.component_distribution.mean).detach()
    return None


def nearest(q: Any, shape: Shape, centres: Any | None) -> list[int] | None:
    import torch

    if centres is None:
        return None
    means = component_means(q, shape).detach().to(centres.dtype)
    return [int(i) for i in torch.cdist(means, centres).argmin(1)]
