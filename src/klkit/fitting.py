r"""Forward vs reverse KL: fit an approximating family :math:`q` to a target distribution :math:`p`.

- **Forward** KL(p‖q) = E_p[log p − log q] needs only samples of the target: minimising it over
  :math:`q` is maximum likelihood on those samples, because E_p[log p] does not depend on q. The
  result is *mean-seeking* (mass-covering): q spreads over every mode of p.
- **Reverse** KL(q‖p) = E_q[log q − log p] needs the target's log-density at points drawn from q;
  it is minimised with reparameterised gradients. The result is *mode-seeking*: q settles on one
  mode, and which one depends on the start, hence several restarts.

Everything here is torch (``torch.distributions`` in, ``torch.distributions`` out).
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

from klkit.errors import InvalidArgumentError
from klkit.estimate import Estimate
from klkit.measures import kl_divergence

__all__ = ["FitResult", "Restart", "fit", "mass_covered"]

Family = Literal["gaussian", "gaussian_mixture"]
Divergence = Literal["forward", "reverse"]
Covariance = Literal["full", "diag"]


@dataclass
class Restart:
    """One restart of a fit.

    Attributes
    ----------
    index : int
        Restart number (0-based).
    loss : float
        Final loss: the negative mean log-likelihood of the target samples (forward), or the
        reverse KL estimate on a fresh sample (reverse).
    means : list
        The fitted component means, one list of coordinates per component.
    modes : list of int or None
        For each component, the index of the target mixture component whose mean is nearest
        ("which mode it found"); None when the target is not a ``MixtureSameFamily``.
    steps : int
        Optimiser steps (reverse) or EM iterations (forward mixture); 0 for a closed form.
    trace : list of float
        The loss after each step (reverse: the estimate on each mini-batch).
    distribution : torch.distributions.Distribution
        The q this restart ended at.
    """

    index: int
    loss: float
    means: list[list[float]]
    modes: list[int] | None
    steps: int
    trace: list[float] = field(default_factory=list, repr=False)
    distribution: Any = field(default=None, repr=False)


@dataclass
class FitResult:
    """The outcome of :func:`fit`.

    Attributes
    ----------
    distribution : torch.distributions.Distribution
        The fitted q (best restart); detached from any graph.
    forward_kl : Estimate or torch.Tensor
        KL(target‖q) at the optimum: a closed form (tensor) when klkit has one for the pair, else a
        Monte Carlo :class:`~klkit.estimators.Estimate` with its standard error.
    reverse_kl : Estimate or torch.Tensor
        KL(q‖target) at the optimum, likewise.
    trace : list of float
        The loss trace of the best restart.
    restarts : list of Restart
        One entry per restart, with the loss and the mode(s) it found.
    best : int
        Index of the restart kept.
    method : str
        How the fit was computed, e.g. "closed-form moment matching".
    family, divergence : str
        The arguments of the fit.
    """

    distribution: Any
    forward_kl: Any
    reverse_kl: Any
    trace: list[float]
    restarts: list[Restart]
    best: int
    method: str
    family: str
    divergence: str

    @property
    def modes_found(self) -> list[list[int] | None]:
        """``modes`` of each restart (which target component each restart landed on)."""
        return [r.modes for r in self.restarts]


# ---------------------------------------------------------------------------
# Public API
# ---------------------------------------------------------------------------


def fit(
    target: Any,
    *,
    family: Family = "gaussian",
    divergence: Divergence = "forward",
    components: int = 1,
    covariance: Covariance = "full",
    restarts: int | None = None,
    seed: int | None = None,
    n_samples: int = 50_000,
    steps: int = 1000,
    batch_size: int = 256,
    learning_rate: float = 0.1,
    eval_samples: int = 100_000,
) -> FitResult:
    r"""Fit ``family`` to ``target`` by minimising the forward KL(target‖q) or the reverse KL(q‖target).

    .. math::

        q_{\text{forward}} = \arg\min_q \mathrm{KL}(p\,\|\,q) = \arg\max_q \mathbb{E}_{x\sim p}[\log q(x)],
        \qquad
        q_{\text{reverse}} = \arg\min_q \mathbb{E}_{x\sim q}[\log q(x) - \log p(x)].

    Forward, single Gaussian: the maximum-likelihood Gaussian of ``n_samples`` target samples has a
    closed form, moment matching (sample mean and covariance). Forward, mixture: EM on the samples,
    best of ``restarts`` k-means++ starts. Reverse: Adam on reparameterised samples of q
    (``q.rsample``; for a mixture, a reparameterised sample of each component weighted by the
    mixture weights), with the learning rate decayed linearly to 0, best of ``restarts`` starts
    placed at random target samples.

    Parameters
    ----------
    target : torch.distributions.Distribution
        The distribution p; needs ``sample`` (forward and reverse) and ``log_prob`` (reverse and the
        KL reports). Scalar events (``event_shape == ()``) or vectors (``event_shape == (d,)``).
    family : {'gaussian', 'gaussian_mixture'}, default 'gaussian'
        The approximating family q.
    divergence : {'forward', 'reverse'}, default 'forward'
        Minimise KL(target‖q) ('forward') or KL(q‖target) ('reverse').
    components : int, default 1
        Mixture components (1 for 'gaussian').
    covariance : {'full', 'diag'}, default 'full'
        Covariance of each Gaussian for vector targets (ignored for scalar targets).
    restarts : int, optional
        Independent starts; default 1 for the forward Gaussian (a closed form), 5 for the forward
        mixture and 8 for reverse fits.
    seed : int, optional
        Seeds torch's generator inside ``torch.random.fork_rng``, so the fit is reproducible and the
        global RNG state is left as it was; None: not reproducible.
    n_samples : int, default 50000
        Target samples for forward fits.
    steps, batch_size, learning_rate : int, int, float
        Adam steps, samples of q per step (per component for mixtures) and initial learning rate of
        reverse fits.
    eval_samples : int, default 100000
        Samples for the Monte Carlo KL estimates reported at the optimum.

    Returns
    -------
    FitResult
        ``distribution``, ``forward_kl``, ``reverse_kl``, ``trace``, ``restarts``, ``method``.

    Raises
    ------
    ValueError
        Unknown ``family``, ``divergence`` or ``covariance``; ``components`` < 1, or != 1 with
        'gaussian'; non-positive counts; a target whose event is not a scalar or a vector.
    TypeError
        ``target`` is not a distribution with ``sample`` and ``log_prob``.

    References
    ----------
    .. [1] C. M. Bishop, *Pattern Recognition and Machine Learning*, 2006, §10.1.2 (Fig. 10.3).
    .. [2] D. P. Kingma and M. Welling, "Auto-Encoding Variational Bayes", 2014 (reparameterisation).

    Examples
    --------
    >>> import torch
    >>> from torch.distributions import Categorical, MixtureSameFamily, Normal
    >>> from klkit.fitting import fit
    >>> p = MixtureSameFamily(Categorical(torch.tensor([0.5, 0.5])), Normal(torch.tensor([-3.0, 3.0]), 1.0))
    >>> q = fit(p, divergence="forward", seed=0).distribution      # mean-seeking: covers both modes
    >>> round(float(q.mean), 1), round(float(q.stddev), 1)         # ≈ (0, √10)
    (0.0, 3.2)
    >>> r = fit(p, divergence="reverse", restarts=2, steps=200, eval_samples=2_000, seed=0)
    >>> round(abs(float(r.distribution.mean)), 1), round(float(r.distribution.stddev), 1)  # one mode
    (3.0, 1.0)
    """
    import torch

    opts = _check_options(
        target,
        family,
        divergence,
        components,
        covariance,
        restarts,
        n_samples,
        steps,
        batch_size,
        learning_rate,
        eval_samples,
    )
    with torch.random.fork_rng(devices=[]), _single_thread():
        if seed is not None:
            torch.manual_seed(seed)
        shape = _Shape.of(target)
        if divergence == "forward":
            x = shape.flat(target.sample((n_samples,)))  # (n, d)
            if family == "gaussian":
                runs, method = (
                    [_moment_match(x, covariance, shape)],
                    (
                        f"closed-form moment matching: the maximum-likelihood Gaussian of {n_samples:,} target "
                        "samples is their mean and covariance"
                    ),
                )
            else:
                runs = [_em(x, components, covariance, shape) for _ in range(opts["restarts"])]
                method = (
                    f"maximum likelihood by EM on {n_samples:,} target samples, best of "
                    f"{opts['restarts']} k-means++ starts"
                )
        else:
            pilot = shape.flat(target.sample((4096,)))
            runs = [
                _reverse(target, pilot, components, covariance, shape, steps, batch_size, learning_rate)
                for _ in range(opts["restarts"])
            ]
            method = (
                f"reparameterised gradients (Adam, {steps} steps of {batch_size} samples, learning rate "
                f"{learning_rate:g} decayed to 0), best of {opts['restarts']} starts at random target samples"
            )
        best = min(range(len(runs)), key=lambda i: runs[i][1])
        centres = _target_centres(target, shape)
        restart_list = [
            Restart(
                index=i,
                loss=loss,
                means=_means(q, shape),
                modes=_nearest(q, shape, centres),
                steps=n_steps,
                trace=trace,
                distribution=q,
            )
            for i, (q, loss, n_steps, trace) in enumerate(runs)
        ]
        q = runs[best][0]
        forward_kl = _kl(target, q, eval_samples)
        reverse_kl = _kl(q, target, eval_samples)
    return FitResult(
        distribution=q,
        forward_kl=forward_kl,
        reverse_kl=reverse_kl,
        trace=runs[best][3],
        restarts=restart_list,
        best=best,
        method=method,
        family=family,
        divergence=divergence,
    )


def mass_covered(target: Any, q: Any, *, level: float = 0.95, n_samples: int = 100_000) -> Estimate:
    r"""Fraction of the target's mass inside q's highest-density region of probability ``level``.

    .. math:: \Pr_{x\sim p}\big[q(x) \ge t\big], \qquad \Pr_{y\sim q}\big[q(y) \ge t\big] = \text{level}

    A mass-covering fit covers ≈ all of the target; a mode-seeking one only the mode it found.
    The threshold :math:`t` is the ``1 − level`` quantile of :math:`\log q(y)` over samples of q;
    the fraction is a Monte Carlo proportion with standard error :math:`\sqrt{f(1-f)/n}`.

    Examples
    --------
    >>> import torch
    >>> from torch.distributions import Normal
    >>> with torch.random.fork_rng(devices=[]):  # seeded here, the global generator left as it was
    ...     _ = torch.manual_seed(0)
    ...     e = mass_covered(Normal(0.0, 1.0), Normal(0.0, 1.0))
    >>> abs(e.value - 0.95) < 4 * e.standard_error
    True
    """
    import torch

    if not 0 < level < 1:
        raise InvalidArgumentError(f"`level` must lie in (0, 1); found {level!r}. Use e.g. 0.95.")
    n = _positive_int(n_samples, "n_samples")
    with torch.no_grad():
        threshold = torch.quantile(q.log_prob(q.sample((n,))).double(), 1.0 - level)
        inside = (q.log_prob(target.sample((n,))).double() >= threshold).double()
        f = float(inside.mean())
    return Estimate(f, math.sqrt(max(f * (1 - f), 0.0) / n), n, f"MC: target samples in q's {level:.0%} HDR")


@contextlib.contextmanager
def _single_thread() -> Iterator[None]:
    """Run with one intra-op torch thread, restoring the setting after.

    The tensors here are tiny (a few hundred samples): threads only add synchronisation, which costs
    10x or more on a busy machine.
    """
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


# ---------------------------------------------------------------------------
# Validation
# ---------------------------------------------------------------------------


def _positive_int(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InvalidArgumentError(f"`{name}` must be a positive integer; found {value!r}.")
    return value


def _check_options(
    target: Any,
    family: Any,
    divergence: Any,
    components: Any,
    covariance: Any,
    restarts: Any,
    n_samples: Any,
    steps: Any,
    batch_size: Any,
    learning_rate: Any,
    eval_samples: Any,
) -> dict[str, Any]:
    if not (hasattr(target, "sample") and hasattr(target, "log_prob")):
        raise TypeError(
            f"`target` must be a distribution with `sample` and `log_prob` (e.g. a "
            f"torch.distributions.MixtureSameFamily); found {type(target).__name__}."
        )
    for name, value, allowed in (
        ("family", family, ("gaussian", "gaussian_mixture")),
        ("divergence", divergence, ("forward", "reverse")),
        ("covariance", covariance, ("full", "diag")),
    ):
        if value not in allowed:
            raise InvalidArgumentError(f"`{name}` must be one of {', '.join(map(repr, allowed))}; found {value!r}.")
    _positive_int(components, "components")
    if family == "gaussian" and components != 1:
        raise InvalidArgumentError(
            f"`components` must be 1 with family='gaussian'; found {components}. "
            "Use family='gaussian_mixture' for several components."
        )
    for name, value in (
        ("n_samples", n_samples),
        ("steps", steps),
        ("batch_size", batch_size),
        ("eval_samples", eval_samples),
    ):
        _positive_int(value, name)
    if not (isinstance(learning_rate, (int, float)) and learning_rate > 0 and math.isfinite(learning_rate)):
        raise InvalidArgumentError(f"`learning_rate` must be a positive finite number; found {learning_rate!r}.")
    if restarts is None:
        restarts = 1 if (divergence == "forward" and family == "gaussian") else (5 if divergence == "forward" else 8)
    _positive_int(restarts, "restarts")
    return {"restarts": restarts}


# ---------------------------------------------------------------------------
# Shapes and building q
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class _Shape:
    """Scalar targets are handled as d = 1 internally; ``flat``/``unflat`` convert."""

    d: int
    scalar: bool

    @classmethod
    def of(cls, target: Any) -> _Shape:
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


def _build(shape: _Shape, loc: Any, scale_param: Any, covariance: str, logits: Any | None) -> Any:
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


def _scale_from_cov(cov: Any, covariance: str, shape: _Shape) -> Any:
    """Unconstrained scale parameter of a covariance (k, d, d)."""
    import torch

    if shape.scalar or covariance == "diag":
        return 0.5 * torch.log(torch.diagonal(cov, dim1=-2, dim2=-1))
    tril = torch.linalg.cholesky(cov)
    return torch.tril(tril, diagonal=-1) + torch.diag_embed(torch.log(torch.diagonal(tril, dim1=-2, dim2=-1)))


def _detach(q: Any) -> Any:
    """A copy of q built from detached parameters (no autograd history)."""
    from torch.distributions import Categorical, Independent, MixtureSameFamily, MultivariateNormal, Normal

    if isinstance(q, Normal):
        return Normal(q.loc.detach(), q.scale.detach())
    if isinstance(q, MultivariateNormal):
        return MultivariateNormal(q.loc.detach(), scale_tril=q.scale_tril.detach())
    if isinstance(q, Independent):
        return Independent(_detach(q.base_dist), q.reinterpreted_batch_ndims)
    if isinstance(q, MixtureSameFamily):
        return MixtureSameFamily(
            Categorical(logits=q.mixture_distribution.logits.detach()), _detach(q.component_distribution)
        )
    raise TypeError(f"cannot detach {type(q).__name__}")  # pragma: no cover - internal


# ---------------------------------------------------------------------------
# Forward: closed form and EM
# ---------------------------------------------------------------------------


def _moment_match(x: Any, covariance: str, shape: _Shape) -> tuple[Any, float, int, list[float]]:
    """The Gaussian MLE of samples x (n, d): sample mean and (biased, 1/n) covariance."""
    import torch

    mean = x.mean(0)
    centred = x - mean
    cov = centred.T @ centred / x.shape[0]
    if covariance == "diag" or shape.scalar:
        cov = torch.diag(torch.diagonal(cov))
    q = _build(shape, mean[None], _scale_from_cov(cov[None], covariance, shape), covariance, None)
    nll = -float(q.log_prob(shape.unflat(x)).mean())
    return q, nll, 0, [nll]


def _em(
    x: Any, k: int, covariance: str, shape: _Shape, max_iter: int = 300, tol: float = 1e-7
) -> tuple[Any, float, int, list[float]]:
    """EM for a k-component Gaussian mixture on x (n, d), k-means++ start; returns (q, final NLL, iterations, trace)."""
    import torch

    n, d = x.shape
    dtype = x.dtype
    eye = torch.eye(d, dtype=dtype)
    jitter = 1e-6 * torch.clamp(x.var(0).mean(), min=1e-12)
    # k-means++ start: each new centre drawn with probability ∝ squared distance to the nearest centre
    centres = x[torch.randint(n, (1,))]
    for _ in range(1, k):
        d2 = torch.cdist(x, centres).min(1).values ** 2
        centres = torch.cat([centres, x[torch.multinomial(d2 / d2.sum(), 1)]])
    cov = ((x - x.mean(0)).T @ (x - x.mean(0)) / n)[None].repeat(k, 1, 1) / k ** (2 / d) + jitter * eye
    if covariance == "diag" or shape.scalar:
        cov = torch.diag_embed(torch.diagonal(cov, dim1=-2, dim2=-1))
    logw = torch.full((k,), -math.log(k), dtype=dtype)
    mean = centres
    trace: list[float] = []
    for it in range(1, max_iter + 1):
        q = _build(shape, mean, _scale_from_cov(cov, covariance, shape), covariance, logw)
        comp_lp = q.component_distribution.log_prob(shape.unflat(x)[:, None] if shape.scalar else x[:, None, :])
        joint = comp_lp + logw  # (n, k)
        lse = torch.logsumexp(joint, 1)
        trace.append(-float(lse.mean()))
        resp = torch.exp(joint - lse[:, None])  # E-step: responsibilities (n, k)
        nk = resp.sum(0) + 1e-12
        logw = torch.log(nk / n)  # M-step
        mean = (resp.T @ x) / nk[:, None]
        diff = x[None] - mean[:, None]  # (k, n, d)
        cov = torch.einsum("kn,kni,knj->kij", resp.T, diff, diff) / nk[:, None, None] + jitter * eye
        if covariance == "diag" or shape.scalar:
            cov = torch.diag_embed(torch.diagonal(cov, dim1=-2, dim2=-1))
        if it > 1 and abs(trace[-2] - trace[-1]) < tol * max(1.0, abs(trace[-1])):
            break
    q = _build(shape, mean, _scale_from_cov(cov, covariance, shape), covariance, logw)
    nll = -float(q.log_prob(shape.unflat(x)).mean())
    trace.append(nll)
    return q, nll, it, trace


# ---------------------------------------------------------------------------
# Reverse: reparameterised gradients
# ---------------------------------------------------------------------------


def _reverse_loss(q: Any, target: Any, shape: _Shape, batch: int) -> Any:
    """Monte Carlo E_q[log q − log p] with reparameterised samples (per component for mixtures)."""
    from torch.distributions import MixtureSameFamily

    if isinstance(q, MixtureSameFamily):
        x = q.component_distribution.rsample((batch,))  # (batch, k) scalar / (batch, k, d)
        f = q.log_prob(x) - target.log_prob(x)  # (batch, k): the mixture's log-density at each component's draw
        return (q.mixture_distribution.probs * f.mean(0)).sum()
    x = q.rsample((batch,))
    return (q.log_prob(x) - target.log_prob(x)).mean()


def _reverse(
    target: Any, pilot: Any, k: int, covariance: str, shape: _Shape, steps: int, batch: int, learning_rate: float
) -> tuple[Any, float, int, list[float]]:
    import torch

    n = pilot.shape[0]
    loc = pilot[torch.randint(n, (k,))].clone()
    std = pilot.std(0)
    cov = torch.diag(std**2)[None].repeat(k, 1, 1)
    scale_param = _scale_from_cov(cov, covariance, shape).clone()
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
        q = _build(shape, loc, scale_param, covariance, logits)
        loss = _reverse_loss(q, target, shape, batch)
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        trace.append(float(loss.detach()))
    q = _detach(_build(shape, loc, scale_param, covariance, logits))
    with torch.no_grad():
        final = float(_reverse_loss(q, target, shape, 20 * batch))
    return q, final, steps, trace


# ---------------------------------------------------------------------------
# Reporting
# ---------------------------------------------------------------------------


def _component_means(q: Any, shape: _Shape) -> Any:
    """(k, d) means of q's components (k = 1 for a single Gaussian)."""
    from torch.distributions import MixtureSameFamily

    if isinstance(q, MixtureSameFamily):
        return shape.flat(q.component_distribution.mean)
    return shape.flat(q.mean[None] if shape.scalar else q.mean[None, :]).reshape(1, shape.d)


def _means(q: Any, shape: _Shape) -> list[list[float]]:
    return [[float(v) for v in row] for row in _component_means(q, shape).detach()]


def _target_centres(target: Any, shape: _Shape) -> Any | None:
    from torch.distributions import MixtureSameFamily

    if isinstance(target, MixtureSameFamily):
        return shape.flat(target.component_distribution.mean).detach()
    return None


def _nearest(q: Any, shape: _Shape, centres: Any | None) -> list[int] | None:
    import torch

    if centres is None:
        return None
    means = _component_means(q, shape).detach().to(centres.dtype)
    return [int(i) for i in torch.cdist(means, centres).argmin(1)]


def _kl(p: Any, q: Any, n: int) -> Any:
    """KL(p‖q) from klkit: the registered closed form when there is one (e.g. two Gaussians), else a Monte Carlo
    Estimate (k1, ``n`` samples of p) with its standard error. Seeded from torch's (forked, seeded) generator."""
    import torch

    seed = int(torch.randint(0, 2**31 - 1, (1,)))
    with torch.no_grad():
        return kl_divergence(p, q, n_samples=n, seed=seed, estimator="k1")
